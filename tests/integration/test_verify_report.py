# SPDX-License-Identifier: Apache-2.0
"""cloister attestation verify-report on real AMD SEV-SNP reports (../shared/testdata/snp)."""
import json

from conftest import TESTDATA

SNP = TESTDATA / "snp"


def report_measurement(folder):
    """MEASUREMENT of a recorded report: 48 bytes at offset 0x90 (SNP ABI, ATTESTATION_REPORT)."""
    return (SNP / folder / "report.bin").read_bytes()[0x90:0x90 + 48].hex()


def verify(cloister, folder, cert="vcek.der", *extra, report=None):
    return cloister("attestation", "verify-report", "--type", "snp",
                    "--report", report or SNP / folder / "report.bin",
                    "--vcek", SNP / folder / cert, "--chain", SNP / folder / "chain.pem", *extra)


def test_milan_vcek_report_is_authentic_and_printed_readably(cloister):
    r = verify(cloister, "trustee-milan")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reported TCB         bootloader 3, TEE 0, SNP 8, microcode 115" in r.stdout
    assert "PASS  snp-authenticity" in r.stdout and "Verdict: PASS" in r.stdout


def test_vlek_report_verifies_only_inside_its_validity(cloister):
    r = verify(cloister, "trustee-milan-vlek", "vlek.der", "--at", "2025-06-01")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signed by            VLEK" in r.stdout
    r = verify(cloister, "trustee-milan-vlek", "vlek.der")
    assert r.returncode == 1
    assert "snp-validity" in r.stdout


def test_debug_report_is_authentic_but_a_production_policy_refuses_it(cloister, tmp_path):
    r = verify(cloister, "gsg-milan-debug")
    assert r.returncode == 0
    assert "DEBUG ALLOWED" in r.stdout and "firmware             1.49 build 3" in r.stdout
    pol = tmp_path / "p.json"
    # Its own launch measurement pinned: what fails is the debug flag and the TCB alone.
    pol.write_text(json.dumps({"version": 1, "variant": "sev-snp",
                               "snp": {"minTcb": {"microcode": 69},
                                       "measurements": [report_measurement("gsg-milan-debug")]}}))
    r = verify(cloister, "gsg-milan-debug", "vcek.der", "--policy", pol, "-o", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    failed = {c["name"] for c in out["checks"] if c["result"] != "pass"}
    assert failed == {"snp-debug", "snp-tcb-microcode"}


def test_flipped_signature_byte_is_refused(cloister):
    r = verify(cloister, "trustee-milan", report=SNP / "negative" / "snp_trustee_test-report.byte42.bin")
    assert r.returncode == 1
    assert "FAIL  snp-signature" in r.stdout


def test_report_with_another_products_chain_is_refused(cloister):
    r = cloister("attestation", "verify-report", "--type", "snp",
                 "--report", SNP / "trustee-milan" / "report.bin",
                 "--vcek", SNP / "trustee-milan" / "vcek.der",
                 "--chain", SNP / "roots" / "ask_ark_genoa.pem")
    assert r.returncode == 1
    assert "snp-chain" in r.stdout


def test_stale_crl_is_refused_and_fresh_one_accepted(cloister):
    ok = verify(cloister, "trustee-milan", "vcek.der", "--crl", SNP / "roots" / "crl_milan.pem",
                "--at", "2026-05-01")
    assert ok.returncode == 0, ok.stdout
    stale = verify(cloister, "trustee-milan", "vcek.der", "--crl", SNP / "roots" / "crl_milan.pem",
                   "--at", "2026-06-01")
    assert stale.returncode == 1 and "stale" in stale.stdout


def test_policy_that_pins_neither_measurement_nor_tcb_is_refused_at_load(cloister, tmp_path):
    """'"snp": {}' would accept any launch measurement on an all-zero TCB: refused before the
    report is looked at, naming what to set; so is a minimum TCB alone (any image on patched
    firmware); a launch measurement loads."""
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps({"version": 1, "variant": "sev-snp", "snp": {}}))
    r = verify(cloister, "trustee-milan", "vcek.der", "--policy", pol)
    assert r.returncode == 1 and "Verdict: PASS" not in r.stdout
    assert "pins neither a launch measurement" in r.stdout + r.stderr, r.stdout + r.stderr
    # A minimum TCB alone pins no image: refused when loaded, naming what to add.
    pol.write_text(json.dumps({"version": 1, "variant": "sev-snp",
                               "snp": {"minTcb": {"microcode": 115}}}))
    r = verify(cloister, "trustee-milan", "vcek.der", "--policy", pol)
    assert r.returncode == 1 and "Verdict: PASS" not in r.stdout
    assert ".snp pins no image" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "cloister-measure snp-launch" in r.stdout + r.stderr, r.stdout + r.stderr
    pol.write_text(json.dumps({"version": 1, "variant": "sev-snp",
                               "snp": {"measurements": [report_measurement("trustee-milan")]}}))
    r = verify(cloister, "trustee-milan", "vcek.der", "--policy", pol)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_failure_without_values_prints_no_empty_lines_and_the_verdict_names_it(cloister):
    r = verify(cloister, "trustee-milan", "vcek.der", "--at", "2099-01-01")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    fail = next(i for i, line in enumerate(lines) if line.startswith("FAIL  snp-validity"))
    assert not lines[fail + 1].strip().startswith("expected"), r.stdout
    assert lines[-1].startswith("Verdict: FAIL: snp-validity: SEV-VCEK is not valid"), lines[-1]
    assert not any(line.rstrip() in ("expected", "actual") for line in lines), r.stdout


def test_a_policy_of_another_variant_is_refused_not_replaced_by_snp_defaults(cloister, tmp_path):
    pol = tmp_path / "vtpm.json"
    pol.write_text(json.dumps({"version": 1, "variant": "qemu-vtpm",
                               "measurements": {"4": {"expected": "00" * 32}},
                               "akTrust": {"mode": "insecure-any"}}))
    r = verify(cloister, "trustee-milan", "vcek.der", "--policy", pol)
    assert r.returncode == 1 and "Verdict" not in r.stdout, r.stdout
    assert "variant qemu-vtpm, not for SEV-SNP" in r.stderr and "sev-snp" in r.stderr, r.stderr
