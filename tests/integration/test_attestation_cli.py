# SPDX-License-Identifier: Apache-2.0
"""cloister attestation issue/show/verify against a real swtpm, and cloister-measure eventlog
against real boot logs. Policies are built here from the TPM structures with Python's
cryptography package, independently of the C code."""
import base64
import json
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import TESTDATA, Swtpm, run

BINDING = "ab" * 32


def ak_spki_b64(ak_public: bytes) -> str:
    """DER SubjectPublicKeyInfo of an ECC P-256 TPMT_PUBLIC (TPM 2.0 Part 2, 12.2.4)."""
    typ, name_alg, attrs, policy_len = struct.unpack(">HHIH", ak_public[:10])
    assert typ == 0x0023, "the Cloister AK is ECC"
    off = 10 + policy_len
    sym, = struct.unpack(">H", ak_public[off:off + 2]); off += 2
    assert sym == 0x0010
    scheme, = struct.unpack(">H", ak_public[off:off + 2]); off += 2
    off += 2 if scheme != 0x0010 else 0
    curve, kdf = struct.unpack(">HH", ak_public[off:off + 4]); off += 4
    assert curve == 0x0003 and kdf == 0x0010
    xl, = struct.unpack(">H", ak_public[off:off + 2]); x = ak_public[off + 2:off + 2 + xl]; off += 2 + xl
    yl, = struct.unpack(">H", ak_public[off:off + 2]); y = ak_public[off + 2:off + 2 + yl]
    key = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                        ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def issue(cloister, swtpm, tmp_path, name="evidence.json", **kw):
    out = tmp_path / name
    args = ["attestation", "issue", "--tcti", swtpm.tcti, "--binding", kw.get("binding", BINDING),
            "--event-log", "", "--output-file", out]
    r = cloister(*args)
    assert r.returncode == 0, r.stderr
    return out, json.loads(out.read_text())


def policy_for(evidence, tmp_path, mutate=None):
    pcrs = evidence["tpm"]["pcrs"]
    p = {"version": 1, "variant": "qemu-vtpm",
         "measurements": {k: {"expected": v} for k, v in pcrs.items()},
         "akTrust": {"mode": "pinned",
                     "akPublic": ak_spki_b64(base64.b64decode(evidence["tpm"]["akPublic"]))}}
    if mutate:
        mutate(p)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(p))
    return path


def test_issue_then_verify_passes_and_lists_every_pcr(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding", BINDING)
    assert r.returncode == 0, r.stdout + r.stderr
    for i in range(16):
        assert f"pcr[{i}]" in r.stdout
    assert "Verdict: PASS" in r.stdout


def test_verify_json_output_has_checks_and_verdict(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding",
                 BINDING, "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "pass" and out["verdict"]["freshness"] == "checked"
    names = {c["name"] for c in out["checks"]}
    assert {"variant", "ak-trust", "quote-signature", "binding", "pcr-digest", "pcr"} <= names


def test_pcr_mismatch_names_pcr_expected_and_actual(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)

    def bad_pcr4(p):
        p["measurements"]["4"]["expected"] = "ee" * 32

    pol = policy_for(ev, tmp_path, bad_pcr4)
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding",
                 BINDING, "-o", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "fail"
    assert out["verdict"]["check"] == "pcr" and out["verdict"]["index"] == 4
    assert out["verdict"]["expected"] == "ee" * 32
    assert out["verdict"]["actual"] == ev["tpm"]["pcrs"]["4"]
    text = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding", BINDING)
    assert "FAIL  pcr[4]" in text.stdout and "ee" * 32 in text.stdout


def test_warn_only_mismatch_passes_with_warning(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)

    def warn(p):
        p["measurements"]["1"] = {"expected": "11" * 32, "warnOnly": True}

    pol = policy_for(ev, tmp_path, warn)
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding", BINDING)
    assert r.returncode == 0, r.stdout
    assert "WARN  pcr[1]" in r.stdout and "(warn-only)" in r.stdout


def verify(cloister, ev_path, pol, *args):
    return cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, *args)


def verdict_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("Verdict:")]


def test_right_binding_passes_with_freshness_checked(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = verify(cloister, ev_path, pol, "--binding", BINDING)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  binding" in r.stdout
    assert verdict_lines(r.stdout) == ["Verdict: PASS"]
    assert "Freshness: NOT checked" not in r.stdout and "NOT checked" not in r.stderr


def test_replayed_evidence_against_another_binding_fails_naming_binding_and_nonce(
        cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = verify(cloister, ev_path, pol, "--binding", "cd" * 32)
    assert r.returncode == 1
    assert "FAIL  binding" in r.stdout
    [line] = verdict_lines(r.stdout)
    assert line.startswith("Verdict: FAIL:") and "nonce" in line, line
    j = verify(cloister, ev_path, pol, "--binding", "cd" * 32, "-o", "json")
    assert j.returncode == 1
    out = json.loads(j.stdout)
    assert out["verdict"]["result"] == "fail" and out["verdict"]["freshness"] == "checked"
    assert out["verdict"]["check"] == "binding" and "nonce" in out["verdict"]["reason"]
    assert out["verdict"]["expected"] == "cd" * 32 and out["verdict"]["actual"] == BINDING


def test_replayed_evidence_without_binding_exits_1_and_says_freshness_not_checked(
        cloister, swtpm, tmp_path):
    # Issued for someone else's nonce earlier: every check but freshness passes for a replay.
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = verify(cloister, ev_path, pol)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "SKIP  binding" in r.stdout
    assert "Freshness: NOT checked (no --binding given)" in r.stdout
    assert "replaying" in r.stdout
    [line] = verdict_lines(r.stdout)
    assert line.startswith("Verdict: FAIL: freshness NOT checked"), line
    assert "--binding HEX" in line and "--no-binding" in line
    assert "Verdict: PASS" not in r.stdout
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "freshness NOT checked" in errors[0], r.stderr

    j = verify(cloister, ev_path, pol, "-o", "json")
    assert j.returncode == 1, j.stderr
    out = json.loads(j.stdout)
    assert out["verdict"]["result"] == "fail" and out["verdict"]["freshness"] == "not-checked"
    assert out["verdict"]["check"] == "freshness"
    assert "NOT checked" in out["verdict"]["reason"]
    assert {"name": "binding", "result": "skip"}.items() <= next(
        c for c in out["checks"] if c["name"] == "binding").items()


def test_replayed_evidence_without_binding_fails_even_when_a_pcr_fails_too(
        cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)

    def bad_pcr4(p):
        p["measurements"]["4"]["expected"] = "ee" * 32

    pol = policy_for(ev, tmp_path, bad_pcr4)
    r = verify(cloister, ev_path, pol)
    assert r.returncode == 1
    assert "Freshness: NOT checked (no --binding given)" in r.stdout
    [line] = verdict_lines(r.stdout)
    assert line.startswith("Verdict: FAIL:") and "PCR" in line.upper(), line


def test_no_binding_exits_0_and_still_says_freshness_not_checked_in_text_and_json(
        cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    r = verify(cloister, ev_path, pol, "--no-binding")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SKIP  binding" in r.stdout
    assert "Freshness: NOT checked (--no-binding)" in r.stdout
    assert verdict_lines(r.stdout) == ["Verdict: PASS (freshness not checked: --no-binding)"]
    assert "NOT checked" in r.stderr and "replaying" in r.stderr

    j = verify(cloister, ev_path, pol, "--no-binding", "-o", "json")
    assert j.returncode == 0, j.stderr
    out = json.loads(j.stdout)
    assert out["verdict"]["result"] == "pass" and out["verdict"]["freshness"] == "not-checked"
    assert out["verdict"]["reason"] is None and out["verdict"]["check"] is None


def test_no_binding_does_not_hide_a_failing_check(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)

    def bad_pcr4(p):
        p["measurements"]["4"]["expected"] = "ee" * 32

    pol = policy_for(ev, tmp_path, bad_pcr4)
    j = verify(cloister, ev_path, pol, "--no-binding", "-o", "json")
    assert j.returncode == 1
    out = json.loads(j.stdout)
    assert out["verdict"]["result"] == "fail" and out["verdict"]["freshness"] == "not-checked"
    assert out["verdict"]["check"] == "pcr" and out["verdict"]["index"] == 4


def test_binding_together_with_no_binding_is_a_usage_error(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    for order in (["--binding", BINDING, "--no-binding"], ["--no-binding", "--binding", BINDING]):
        r = verify(cloister, ev_path, pol, *order)
        assert r.returncode == 2
        assert r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
        assert "--binding and --no-binding" in lines[0] and "--help" in lines[0]


def test_verify_help_documents_no_binding_and_the_exit_status(cloister):
    r = cloister("attestation", "verify", "--help")
    assert r.returncode == 0
    assert "--no-binding" in r.stdout and "Exit status:" in r.stdout
    assert "not-checked" in r.stdout


# Evidence changed after the TPM signed it, or signed by another TPM: each is refused by the check
# that owns it, end to end through the CLI, with a binding (freshness is not what fails).

def verify_json(cloister, ev_path, pol):
    r = verify(cloister, ev_path, pol, "--binding", BINDING, "-o", "json")
    return r.returncode, json.loads(r.stdout) if r.stdout else {}, r.stderr


def test_verify_refuses_evidence_whose_quote_signature_has_one_byte_changed(
        cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    rc, out, err = verify_json(cloister, ev_path, pol)
    assert rc == 0 and out["verdict"]["result"] == "pass", err
    # TPMT_SIGNATURE (TPM 2.0 Part 2, 11.3.4): sigAlg, hash, then r as a TPM2B; byte 10 is in r.
    sig = bytearray(base64.b64decode(ev["tpm"]["signature"]))
    assert sig[:2] == b"\x00\x18" and len(sig) > 10  # TPM_ALG_ECDSA
    sig[10] ^= 0x01
    ev["tpm"]["signature"] = base64.b64encode(bytes(sig)).decode()
    ev_path.write_text(json.dumps(ev))
    rc, out, err = verify_json(cloister, ev_path, pol)
    assert rc == 1 and out["verdict"]["result"] == "fail", (out, err)
    assert out["verdict"]["check"] == "quote-signature", out["verdict"]
    assert not any(c["name"] == "quote-signature" and c["result"] == "pass"
                   for c in out["checks"])


def test_verify_refuses_evidence_whose_pcr_value_was_changed_even_when_the_policy_expects_it(
        cloister, swtpm, tmp_path):
    """The quote signs a digest over the PCR values; the document lists them. A changed value in
    the document, with a policy that expects the changed value, is refused on the digest."""
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    forged = "ee" * 32
    assert ev["tpm"]["pcrs"]["4"] != forged
    ev["tpm"]["pcrs"]["4"] = forged
    ev_path.write_text(json.dumps(ev))
    pol = policy_for(ev, tmp_path)
    assert json.loads(pol.read_text())["measurements"]["4"]["expected"] == forged
    rc, out, err = verify_json(cloister, ev_path, pol)
    assert rc == 1 and out["verdict"]["result"] == "fail", (out, err)
    assert out["verdict"]["check"] == "pcr-digest", out["verdict"]
    text = verify(cloister, ev_path, pol, "--binding", BINDING)
    assert text.returncode == 1 and "Verdict: PASS" not in text.stdout, text.stdout


@pytest.fixture
def other_swtpm(tmp_path):
    t = Swtpm(tmp_path / "other-tpm")
    yield t
    t.stop()


def test_verify_with_a_pinned_policy_refuses_genuine_evidence_of_another_tpm(
        cloister, swtpm, other_swtpm, tmp_path):
    """Two fresh TPMs report the same PCRs: only the pinned attestation key tells them apart."""
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    other_path, other = issue(cloister, other_swtpm, tmp_path, name="other.json")
    assert other["tpm"]["pcrs"] == ev["tpm"]["pcrs"]
    assert other["tpm"]["akPublic"] != ev["tpm"]["akPublic"]
    other_pol = tmp_path / "other-policy.json"
    other_pol.write_text(policy_for(other, tmp_path).read_text())
    pol = policy_for(ev, tmp_path)
    # Each TPM's evidence verifies against the policy pinning its own key ...
    for path, policy in ((ev_path, pol), (other_path, other_pol)):
        rc, out, err = verify_json(cloister, path, policy)
        assert rc == 0 and out["verdict"]["result"] == "pass", (out, err)
    # ... and the other TPM's not against the policy pinning the first one's.
    rc, out, err = verify_json(cloister, other_path, pol)
    assert rc == 1 and out["verdict"]["result"] == "fail", (out, err)
    assert out["verdict"]["check"] == "ak-trust", out["verdict"]


def test_show_prints_pcrs_and_says_not_verified(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    r = cloister("attestation", "show", ev_path)
    assert r.returncode == 0
    assert "NOT verified" in r.stdout and "PCR  0:" in r.stdout


@pytest.mark.parametrize("mutation,message", [
    (lambda d: d.update(version=2), ".version"),
    (lambda d: d.update(extra=1), ".extra: unknown key"),
    (lambda d: d["tpm"]["pcrs"].update({"04": "00" * 32}), "not a PCR index"),
    (lambda d: d.update(variant="sev-snp"), "carries no 'tpm'"),
    # A TDX node's evidence may carry its TPM's quote as its identity, never instead of the quote.
    (lambda d: d.update(variant="tdx"), ".tdx: required key is missing"),
])
def test_malformed_evidence_is_refused_with_the_key(cloister, swtpm, tmp_path, mutation, message):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    mutation(ev)
    ev_path.write_text(json.dumps(ev))
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding", BINDING)
    assert r.returncode == 1
    assert message in r.stderr


def test_policy_without_ak_trust_is_refused(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path, lambda p: p.pop("akTrust"))
    r = cloister("attestation", "verify", "--evidence", ev_path, "--policy", pol, "--binding", BINDING)
    assert r.returncode == 1
    assert ".akTrust: required key is missing" in r.stderr


def expected_pcrs():
    return json.loads((TESTDATA / "tpm" / "eventlogs" / "expected-pcrs.json").read_text())


@pytest.mark.parametrize("log", sorted(expected_pcrs()))
def test_measure_eventlog_replay_reproduces_real_logs(log):
    for bank, pcrs in expected_pcrs()[log].items():
        r = run("cloister-measure", "eventlog", "replay", TESTDATA / "tpm" / "eventlogs" / log,
                "--bank", bank, "-o", "json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["bank"] == bank
        for idx, value in pcrs.items():
            assert out["pcrs"][idx] == value, f"{log} {bank} PCR {idx}"


def test_measure_eventlog_show_lists_decoded_events():
    r = run("cloister-measure", "eventlog", "show", TESTDATA / "tpm" / "eventlogs" / "rhel8-uefi.bin")
    assert r.returncode == 0
    assert "EV_EFI_VARIABLE_DRIVER_CONFIG" in r.stdout and ":SecureBoot" in r.stdout
    assert "GCE Virtual Firmware" in r.stdout


def test_measure_truncated_log_gives_one_line_error(tmp_path):
    data = (TESTDATA / "tpm" / "eventlogs" / "rhel8-uefi.bin").read_bytes()[:1000]
    (tmp_path / "t.bin").write_bytes(data)
    r = run("cloister-measure", "eventlog", "replay", tmp_path / "t.bin")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "at byte" in r.stderr


def test_attestation_policy_never_replaces_an_existing_policy_without_force(cloister, swtpm,
                                                                            tmp_path):
    ev_path, _ = issue(cloister, swtpm, tmp_path)
    out = tmp_path / "policy.json"
    anchor = '{"a trust anchor": "the owner wrote this"}\n'
    out.write_text(anchor)
    r = cloister("attestation", "policy", ev_path, out)
    assert r.returncode == 1 and "already exists" in r.stderr and "--force" in r.stderr, r.stderr
    assert out.read_text() == anchor
    r = cloister("attestation", "policy", ev_path, out, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["akTrust"]["mode"] == "pinned"
