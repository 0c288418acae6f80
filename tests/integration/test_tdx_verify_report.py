# SPDX-License-Identifier: Apache-2.0
"""cloister attestation verify-report --type tdx on real Intel TDX quotes and Intel's collateral
(../shared/testdata/tdx, README there)."""
import json

from conftest import TESTDATA

TDX = TESTDATA / "tdx"
UPTODATE = TDX / "dcapqvl-b0c06f-uptodate"
OUTOFDATE = TDX / "zkdcap-00806f05"


def verify(cloister, quote, *extra):
    return cloister("attestation", "verify-report", "--type", "tdx", "--quote", quote, *extra)


def policy(tmp_path, **tdx):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"version": 1, "variant": "tdx", "tdx": tdx}))
    return p


def test_uptodate_quote_with_collateral_passes_the_default_policy(cloister):
    r = verify(cloister, UPTODATE / "quote.bin", "--collateral", UPTODATE,
               "--at", "2025-07-19T10:00:34Z")
    assert r.returncode == 0, r.stdout + r.stderr
    for line in ("PASS  tdx-quote-signature", "PASS  tdx-pck-chain", "PASS  tdx-crl",
                 "PASS  tdx-tcb-info-signature", "PASS  tdx-qe-identity-signature",
                 "status               UpToDate", "platform level       0: UpToDate",
                 "TDX module           TDX_01: UpToDate", "advisories           none",
                 "FMSPC b0c06f000000", "Verdict: PASS"):
        assert line in r.stdout, line


def test_outofdate_quote_fails_by_default_and_passes_a_policy_accepting_it(cloister, tmp_path):
    args = ("--collateral", OUTOFDATE, "--at", "2025-02-20T10:55:27Z")
    r = verify(cloister, OUTOFDATE / "quote.bin", *args)
    assert r.returncode == 1
    assert "FAIL  tdx-tcb-status" in r.stdout
    assert "advisories           INTEL-SA-00960, INTEL-SA-00982, INTEL-SA-00986" in r.stdout
    assert "Verdict: FAIL: tdx-tcb-status" in r.stdout
    p = policy(tmp_path, acceptedTcbStatuses=["UpToDate", "OutOfDate"])
    r = verify(cloister, OUTOFDATE / "quote.bin", *args, "--policy", p, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "pass"
    assert out["tcb"]["status"] == "OutOfDate"
    assert out["tcb"]["platformLevel"] == 1
    assert out["tcb"]["advisoryIds"] == ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]
    assert out["quote"]["pck"]["fmspc"] == "00806f050000"
    assert {c["name"] for c in out["checks"]} >= {"tdx-quote-signature", "tdx-tcb-status",
                                                  "tdx-debug", "tdx-sept-ve-disable"}


def test_stale_collateral_and_expired_tcb_signer_are_named(cloister):
    r = verify(cloister, UPTODATE / "quote.bin", "--collateral", UPTODATE, "--at", "2025-08-01")
    assert r.returncode == 1
    assert "FAIL  tdx-collateral-stale" in r.stdout and "is stale" in r.stdout
    r = verify(cloister, OUTOFDATE / "quote.bin", "--collateral", OUTOFDATE, "--at", "2025-06-01")
    assert r.returncode == 1
    assert "FAIL  tdx-tcb-info-chain" in r.stdout


def test_negative_quotes_are_refused_naming_the_check(cloister):
    for name, check in (("header_byte", "tdx-quote-signature"),
                        ("pck_cert_byte", "tdx-pck-signature"),
                        ("root_cert_byte", "tdx-pck-root")):
        r = verify(cloister, TDX / "negative" / f"tdx_SPR_E4.{name}.dat", "--at", "2023-07-01",
                   "--no-collateral")
        assert r.returncode == 1, name
        assert f"FAIL  {check}" in r.stdout, name
    r = verify(cloister, TDX / "negative" / "tdx_SPR_E4.version_byte.dat")
    assert r.returncode == 1
    assert "tdx-quote-version" in r.stderr and "unsupported format" in r.stderr


def test_quote_without_collateral_is_authentic_but_fails_the_default_policy(cloister, tmp_path):
    r = verify(cloister, TDX / "gce-cos113" / "quote.dat", "--at", "2025-02-20", "--no-collateral")
    assert r.returncode == 1
    assert "PASS  tdx-quote-signature" in r.stdout
    assert "FAIL  tdx-tcb-status" in r.stdout and "--collateral DIR" in r.stdout
    # The SPR quote leaves SEPT_VE_DISABLE clear: refused even when collateral is waived.
    p = policy(tmp_path, requireCollateral=False)
    r = verify(cloister, TDX / "spr-e4-quote-v4.dat", "--at", "2023-07-01", "--policy", p,
               "--no-collateral")
    assert r.returncode == 1
    assert "FAIL  tdx-sept-ve-disable" in r.stdout
    r = verify(cloister, TDX / "gce-cos113" / "quote.dat", "--at", "2025-02-20", "--policy", p,
               "--no-collateral")
    assert r.returncode == 0, r.stdout


def test_policy_mismatch_prints_expected_and_actual(cloister, tmp_path):
    rtmr0 = "00" * 48
    p = policy(tmp_path, requireCollateral=False, rtmr0=[rtmr0])
    r = verify(cloister, TDX / "gce-cos113" / "quote.dat", "--at", "2025-02-20", "--policy", p,
               "--no-collateral")
    assert r.returncode == 1
    assert "FAIL  tdx-rtmr0" in r.stdout
    assert f"expected {rtmr0}" in r.stdout


def test_help_and_usage_errors(cloister):
    r = cloister("attestation", "verify-report", "--type", "tdx", "--help")
    assert r.returncode == 0 and "--collateral DIR" in r.stdout
    r = cloister("attestation", "verify-report", "--type", "tdx")
    assert r.returncode != 0 and "--quote FILE is required" in r.stderr
    r = verify(cloister, TDX / "spr-e4-quote-v4.dat", "--collateral", "/nonexistent")
    assert r.returncode != 0 and "tcb_info.json" in r.stderr


def test_ccel_log_replays_and_a_changed_event_names_its_rtmr(cloister, tmp_path):
    gce = TDX / "gce-cos113"
    args = ("--at", "2025-02-20", "--no-collateral", "--event-log", gce / "ccel_data.dat",
            "--ccel-table", gce / "ccel_table.dat")
    r = verify(cloister, gce / "quote.dat", *args)
    assert "PASS  tdx-rtmr-replay" in r.stdout and "44 events" in r.stdout, r.stdout
    log = bytearray((gce / "ccel_data.dat").read_bytes())
    # The first event after the Spec ID record (MR index 1 = RTMR0): one digest byte changed.
    first = 32 + int.from_bytes(log[28:32], "little")
    assert int.from_bytes(log[first:first + 4], "little") == 1
    log[first + 12 + 2] ^= 1
    changed = tmp_path / "ccel.bin"
    changed.write_bytes(bytes(log))
    r = verify(cloister, gce / "quote.dat", "--at", "2025-02-20", "--no-collateral",
               "--event-log", changed,
               "--ccel-table", gce / "ccel_table.dat")
    assert r.returncode == 1
    assert "FAIL  tdx-rtmr-replay" in r.stdout and "RTMR0" in r.stdout


def test_tdx_evidence_document_verifies_with_attestation_verify(cloister, tmp_path):
    import base64
    gce = TDX / "gce-cos113"
    mrtd = (gce / "quote.dat").read_bytes()[48 + 136:48 + 184].hex()
    evidence = tmp_path / "evidence.json"
    evidence.write_text(json.dumps({"version": 1, "variant": "tdx", "tdx": {
        "quote": base64.b64encode((gce / "quote.dat").read_bytes()).decode()}}))
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"version": 1, "variant": "tdx",
                             "tdx": {"mrTd": [mrtd], "requireCollateral": False}}))
    args = ("attestation", "verify", "--evidence", evidence, "--policy", p, "--at", "2025-02-20")
    r = cloister(*args, "--binding", "00" * 32)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tdx-quote-signature" in r.stdout and "tdx-mrtd" in r.stdout
    r = cloister(*args, "--binding", "11" * 32)
    assert r.returncode == 1
    assert "tdx-report-data" in r.stdout
    # A policy that pins nothing is refused when it is read.
    p.write_text(json.dumps({"version": 1, "variant": "tdx", "tdx": {}}))
    r = cloister(*args, "--binding", "00" * 32)
    assert r.returncode != 0 and "does not pin mrTd" in r.stderr
    # RTMRs alone pin nothing (the TD extends them itself): refused too.
    p.write_text(json.dumps({"version": 1, "variant": "tdx",
                             "tdx": {"rtmr0": ["00" * 48], "requireCollateral": False}}))
    r = cloister(*args)
    assert r.returncode != 0 and "does not pin mrTd" in r.stderr, r.stderr
