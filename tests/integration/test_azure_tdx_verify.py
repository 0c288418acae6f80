# SPDX-License-Identifier: Apache-2.0
"""cloister attestation verify on azure-tdx evidence written here, independently of the C writer:
a swtpm's RSA-2048 restricted signing key made as Azure's paravisor makes its AK (tpm2-tools),
its TPM quote of the binding, runtime data naming that key as HCLAkPub inside an HCL report of
type TDX, and a simulator's TD quote (tests/tools/tdx-sim-quote) whose REPORTDATA[0:32] is
SHA-256 of the runtime data, with the simulator's collateral. There is no Azure TDX evidence in
../shared/testdata; each part here is a real component, and sim-azure-tdx names the simulator's
root in its policy (docs/tdx.md, "The azure-tdx variant")."""
import base64
import hashlib
import json
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from conftest import BUILD

BINDING = "5a" * 32
COLLATERAL = {"tcbInfo": "tcb_info.json", "tcbInfoIssuerChain": "tcb_info_issuer_chain.pem",
              "qeIdentity": "qe_identity.json",
              "qeIdentityIssuerChain": "qe_identity_issuer_chain.pem",
              "pckCrl": "pck_crl.der", "rootCaCrl": "root_ca_crl.der"}
AK_ATTRS = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|noda"


def tpm2(swtpm, tool, *args):
    subprocess.run([tool, "-T", swtpm.tcti, *map(str, args)], check=True, capture_output=True,
                   timeout=60)
    # No resource manager behind the socket: drop the transient objects the tool left.
    subprocess.run(["tpm2_flushcontext", "-T", swtpm.tcti, "-t"], check=True,
                   capture_output=True, timeout=60)


def b64(data):
    return base64.b64encode(data).decode()


def hcl_report(runtime):
    """az-cvm-vtpm's layout: "HCLA" header, 1184-byte hardware report area (a TDREPORT), IGVM
    request data (report type 4 = TDX, hash type 1 = SHA-256), the runtime data."""
    out = bytearray(b"HCLA" + struct.pack("<III", 2, 0x4C0 + 20 + len(runtime), 2) + bytes(16))
    out += bytes(1184)
    out += struct.pack("<IIIII", 20 + len(runtime), 1, 4, 1, len(runtime)) + runtime
    return bytes(out)


@pytest.fixture
def azure_tdx(swtpm, tmp_path):
    """Writes evidence of the given TD (debug or not) and runtime data; returns a function
    (tamper=None, debug=False, variant="sim-azure-tdx") -> (evidence path, policy path)."""
    ak = tmp_path / "ak.ctx"
    tpm2(swtpm, "tpm2_createprimary", "-C", "e", "-g", "sha256", "-G",
         "rsa2048:rsassa-sha256:null", "-a", AK_ATTRS, "-c", ak)
    tpm2(swtpm, "tpm2_readpublic", "-c", ak, "-f", "der", "-o", tmp_path / "ak.der")
    n = load_der_public_key((tmp_path / "ak.der").read_bytes()).public_numbers().n
    n64 = base64.urlsafe_b64encode(n.to_bytes(256, "big")).decode().rstrip("=")
    tpm2(swtpm, "tpm2_quote", "-c", ak, "-l", "sha256:0,1,2,3,4,5,6,7", "-q", BINDING,
         "-m", tmp_path / "quote.msg", "-s", tmp_path / "quote.sig", "-g", "sha256",
         "-o", tmp_path / "pcrs.bin", "-F", "values")
    raw = (tmp_path / "pcrs.bin").read_bytes()
    assert len(raw) == 8 * 32
    pcrs = {str(i): raw[32 * i:32 * i + 32].hex() for i in range(8)}

    def make(tamper=None, debug=False, variant="sim-azure-tdx"):
        runtime = json.dumps({"keys": [{"kid": "HCLAkPub", "kty": "RSA", "e": "AQAB", "n": n64,
                                        "key_ops": ["sign"]}],
                              "vm-configuration": {"tpm-enabled": True},
                              "user-data": "00" * 64}, separators=(",", ":")).encode()
        td = tmp_path / ("td-debug" if debug else "td")
        td.mkdir(exist_ok=True)
        report_data = hashlib.sha256(runtime).hexdigest() + "00" * 32
        subprocess.run([str(BUILD / "tests" / "tdx-sim-quote"), report_data, str(td)]
                       + (["--debug"] if debug else []), check=True, timeout=60)
        if tamper == "runtime-data":
            runtime = runtime.replace(b'"user-data":"00', b'"user-data":"01')
        evidence = {"version": 1, "variant": variant,
                    "tdx": {"quote": b64((td / "quote.bin").read_bytes()),
                            "hclReport": b64(hcl_report(runtime)),
                            "collateral": {k: b64((td / f).read_bytes())
                                           for k, f in COLLATERAL.items()}},
                    "tpm": {"quote": b64((tmp_path / "quote.msg").read_bytes()),
                            "signature": b64((tmp_path / "quote.sig").read_bytes()),
                            "pcrs": pcrs}}
        tdx_policy = {"mrTd": ["42" * 48]}
        if variant.startswith("sim-"):
            tdx_policy["trustedRoot"] = (td / "root.pem").read_text()
        policy = {"version": 1, "variant": variant, "tdx": tdx_policy,
                  "measurements": {k: {"expected": v} for k, v in pcrs.items()}}
        e, p = tmp_path / f"evidence-{variant}.json", tmp_path / f"policy-{variant}.json"
        e.write_text(json.dumps(evidence))
        p.write_text(json.dumps(policy))
        return e, p

    return make


def verify(cloister, e, p, *extra):
    return cloister("attestation", "verify", "--evidence", e, "--policy", p, *extra)


def test_azure_tdx_evidence_passes_with_its_binding_and_names_every_link(cloister, azure_tdx):
    e, p = azure_tdx()
    r = verify(cloister, e, p, "--binding", BINDING)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verdict: PASS" in r.stdout
    r = verify(cloister, e, p, "--binding", BINDING, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "pass" and out["verdict"]["freshness"] == "checked"
    passed = {c["name"] for c in out["checks"] if c["result"] == "pass"}
    assert passed >= {"tdx-pck-chain", "tdx-quote-signature", "tdx-tcb-status", "tdx-mrtd",
                      "tdx-debug", "tdx-sept-ve-disable", "azure-runtime-data",
                      "quote-signature", "binding", "pcr-digest", "pcr"}


def test_azure_tdx_evidence_refused_for_another_nonce_changed_runtime_data_or_debug_td(
        cloister, azure_tdx):
    e, p = azure_tdx()
    r = verify(cloister, e, p, "--binding", "5b" * 32)
    assert r.returncode == 1
    assert "Verdict: FAIL" in r.stdout and "binding" in r.stdout
    e, p = azure_tdx(tamper="runtime-data")
    r = verify(cloister, e, p, "--binding", BINDING, "-o", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["verdict"]["check"] == "azure-runtime-data"
    e, p = azure_tdx(debug=True)
    r = verify(cloister, e, p, "--binding", BINDING, "-o", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["verdict"]["check"] == "tdx-debug"


def test_simulated_evidence_labelled_azure_tdx_fails_at_intels_root(cloister, azure_tdx):
    e, p = azure_tdx(variant="azure-tdx")
    r = verify(cloister, e, p, "--binding", BINDING, "-o", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["verdict"]["check"] == "tdx-pck-root"
