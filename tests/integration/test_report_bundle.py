# SPDX-License-Identifier: Apache-2.0
"""Report bundles (docs/bundle.md, "Report bundles"): `cloister attestation verify-report ...
--bundle OUT` keeps a real SEV-SNP report or TDX quote exactly as given, with every certificate,
CRL and collateral it used, the policy, the time and every check; `cloister verify --bundle IN`
verifies it again in a fresh directory of a network namespace with no network, at the times the
testdata READMEs give, prints verify-report's own table, refuses any edited byte and any time
past a certificate's or the collateral's window. The evidence is every real report in
../shared/testdata/snp and ../shared/testdata/tdx (README there: expected outcomes)."""
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

import json_schema
from conftest import TESTDATA, binary, run

SNP = TESTDATA / "snp"
TDX = TESTDATA / "tdx"
CHOSEN_BY = "not recorded (imported report)"
HEADER_LINES = 4  # verify --bundle's lines before verify-report's own output


@dataclass
class Case:
    """One real report: how verify-report is given it, when (the README's time), the outcome the
    README expects there, and a time past one of its certificates or its collateral window."""
    id: str
    args: list
    at: str
    rc: int
    passed: list = field(default_factory=list)  # checks that must pass
    failed: set = field(default_factory=set)  # exactly the checks that must fail
    policy: dict = None
    after: str = None
    after_check: str = None


def report_measurement(folder):
    """MEASUREMENT of a recorded report: 48 bytes at offset 0x90 (SNP ABI, ATTESTATION_REPORT)."""
    return (SNP / folder / "report.bin").read_bytes()[0x90:0x90 + 48].hex()


def snp(folder, cert="vcek.der", *extra):
    return ["--type", "snp", "--report", SNP / folder / "report.bin", "--vcek",
            SNP / folder / cert, "--chain", SNP / folder / "chain.pem", *extra]


def tdx(quote, *extra):
    return ["--type", "tdx", "--quote", quote, *extra]


NO_COLLATERAL = {"requireCollateral": False}
CASES = [
    # snp/: VCEK valid 2023-01-24..2030-01-24.
    Case("snp-trustee-milan", snp("trustee-milan"), "2025-06-01", 0, ["snp-authenticity"],
         after="2030-02-01", after_check="snp-validity"),
    # With AMD's Milan CRL: fresh until its nextUpdate 2026-05-12.
    Case("snp-trustee-milan-crl", snp("trustee-milan", "vcek.der", "--crl",
                                      SNP / "roots" / "crl_milan.pem"),
         "2026-05-01", 0, ["snp-authenticity"], after="2026-06-01", after_check="snp-crl"),
    # Authentic, debug allowed: passes without a policy ...
    Case("snp-gsg-milan-debug", snp("gsg-milan-debug"), "2025-06-01", 0, ["snp-authenticity"],
         after="2029-10-01", after_check="snp-validity"),
    # ... and a production policy with a TCB minimum above ucode 68 refuses it, on both.
    Case("snp-gsg-milan-debug-production", snp("gsg-milan-debug"), "2025-06-01", 1,
         ["snp-authenticity"], {"snp-debug", "snp-tcb-microcode"},
         policy={"version": 1, "variant": "sev-snp",
                 "snp": {"minTcb": {"microcode": 69},
                         "measurements": [report_measurement("gsg-milan-debug")]}},
         after="2029-10-01", after_check="snp-validity"),
    # VLEK expired 2025-12-10.
    Case("snp-trustee-milan-vlek", snp("trustee-milan-vlek", "vlek.der"), "2025-06-01", 0,
         ["snp-authenticity"], after="2026-01-01", after_check="snp-validity"),
    # tdx/ with Intel's collateral: UpToDate at its day; the PCK CRL's window ends before August.
    Case("tdx-dcapqvl-uptodate", tdx(TDX / "dcapqvl-b0c06f-uptodate" / "quote.bin", "--collateral",
                                     TDX / "dcapqvl-b0c06f-uptodate"),
         "2025-07-19T10:00:34Z", 0,
         ["tdx-quote-signature", "tdx-pck-chain", "tdx-crl", "tdx-tcb-info-signature",
          "tdx-qe-identity-signature", "tdx-tcb-status"],
         after="2025-08-01", after_check="tdx-collateral-stale"),
    # OutOfDate: the default policy refuses it; its TCB signing certificate expired 2025-05-21.
    Case("tdx-zkdcap-outofdate", tdx(TDX / "zkdcap-00806f05" / "quote.bin", "--collateral",
                                     TDX / "zkdcap-00806f05"),
         "2025-02-20T10:55:27Z", 1, ["tdx-quote-signature", "tdx-tcb-info-signature"],
         {"tdx-tcb-status"}, after="2025-06-01", after_check="tdx-tcb-info-chain"),
    Case("tdx-zkdcap-outofdate-accepted", tdx(TDX / "zkdcap-00806f05" / "quote.bin",
                                              "--collateral", TDX / "zkdcap-00806f05"),
         "2025-02-20T10:55:27Z", 0, ["tdx-quote-signature", "tdx-tcb-status"],
         policy={"version": 1, "variant": "tdx",
                 "tdx": {"acceptedTcbStatuses": ["UpToDate", "OutOfDate"]}},
         after="2025-06-01", after_check="tdx-tcb-info-chain"),
    # Quotes whose collateral is the PCK chain they carry (no TCB info published with them).
    # The SPR laboratory quote leaves SEPT_VE_DISABLE clear: its policy says so.
    Case("tdx-spr-e4-v4", tdx(TDX / "spr-e4-quote-v4.dat", "--no-collateral"), "2023-07-01", 0,
         ["tdx-quote-signature", "tdx-pck-chain"],
         policy={"version": 1, "variant": "tdx",
                 "tdx": dict(NO_COLLATERAL, requireSeptVeDisable=False)},
         after="2029-09-21", after_check="tdx-pck-validity"),
    Case("tdx-v5-sample", tdx(TDX / "quote-v5-sample.dat", "--no-collateral"), "2026-02-03", 0,
         ["tdx-quote-signature", "tdx-pck-chain"],
         policy={"version": 1, "variant": "tdx", "tdx": NO_COLLATERAL},
         after="2035-01-01", after_check="tdx-pck-validity"),
    # With its CCEL event log, replayed to the quote's RTMRs from the bundle too.
    Case("tdx-gce-cos113-ccel", tdx(TDX / "gce-cos113" / "quote.dat", "--no-collateral",
                                    "--event-log", TDX / "gce-cos113" / "ccel_data.dat"),
         "2025-02-20", 0, ["tdx-quote-signature", "tdx-rtmr-replay"],
         policy={"version": 1, "variant": "tdx", "tdx": NO_COLLATERAL},
         after="2032-01-01", after_check="tdx-pck-validity"),
]


def offline(*args, cwd=None):
    """cloister in a new network namespace: no interface up, no route anywhere."""
    return subprocess.run(["unshare", "--net", str(binary("cloister")), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def record(case, directory):
    """verify-report --bundle, as a user runs it; returns (bundle path, live result)."""
    args = list(case.args)
    if case.policy:
        p = directory / f"{case.id}.policy.json"
        p.write_text(json.dumps(case.policy))
        args += ["--policy", p]
    out = directory / f"{case.id}.bundle"
    r = run("cloister", "attestation", "verify-report", *args, "--at", case.at, "--bundle", out)
    return out, r


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("report-bundles")
    return {c.id: (c, *record(c, d)) for c in CASES}


def entries(path):
    doc = json.loads(path.read_bytes())
    return {k: base64.b64decode(v) for k, v in doc["entries"].items()}


def meta(path):
    return json.loads(entries(path)["bundle.json"])


def check_lines(stdout):
    return [l for l in stdout.splitlines() if l.startswith(("PASS ", "FAIL "))]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_real_report_bundle_verifies_offline_in_a_fresh_directory_as_the_readme_expects(
        case, recorded, tmp_path):
    _, out, live = recorded[case.id]
    # The live verification gave the README's outcome, and wrote the bundle either way.
    assert live.returncode == case.rc, live.stdout + live.stderr
    assert out.exists(), live.stderr
    lines = check_lines(live.stdout)
    for name in case.passed:
        assert any(l.startswith(f"PASS  {name} ") for l in lines), (name, live.stdout)
    assert {l.split()[1] for l in lines if l.startswith("FAIL")} == case.failed, live.stdout

    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    shutil.copy(out, fresh / "b")
    r = offline("verify", "--bundle", "b", cwd=fresh)
    assert r.returncode == case.rc, r.stdout + r.stderr
    head, body = r.stdout.splitlines()[:HEADER_LINES], r.stdout.splitlines()[HEADER_LINES:]
    assert "verified offline at" in head[0] and "verify-report --type" in head[0]
    assert f"chosen by: {CHOSEN_BY}" in head[1]
    assert "freshness: not provable" in head[2]
    # verify-report's own output, line for line: the report, every check, the verdict.
    assert body == live.stdout.splitlines()

    j = offline("verify", "--bundle", "b", "-o", "json", cwd=fresh)
    assert j.returncode == case.rc, j.stderr
    doc = json.loads(j.stdout)
    json_schema.validate(doc)
    assert doc["command"] == "cloister attestation verify-report"
    assert doc["bundle"]["kind"] == "report" and doc["bundle"]["chosenBy"] == CHOSEN_BY
    assert doc["bundle"]["verifiedAt"] == doc["bundle"]["recorded"]
    assert doc["verdict"]["freshness"] == "not-checked"
    assert [(c["name"], c["result"]) for c in doc["checks"]] == \
        [(c["name"], c["result"]) for c in meta(out)["checks"]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_report_bundle_verified_after_a_certificate_or_collateral_window_fails_on_it(
        case, recorded, tmp_path):
    _, out, _ = recorded[case.id]
    r = offline("verify", "--bundle", out, "--at", case.after, cwd=tmp_path)
    assert r.returncode == 1, r.stdout
    assert f"FAIL  {case.after_check} " in r.stdout, r.stdout
    assert f"Verdict: FAIL: {case.after_check}" in r.stdout
    # Another time is another verification, not an edited record: no record complaint.
    assert "refused" not in r.stderr, r.stderr


def test_report_bundle_keeps_every_input_byte_for_byte_and_says_nobody_chose_report_data(
        recorded):
    _, out, _ = recorded["snp-trustee-milan-crl"]
    e = entries(out)
    report = (SNP / "trustee-milan" / "report.bin").read_bytes()
    assert e["snp/report"] == report
    assert e["snp/vcek"] == (SNP / "trustee-milan" / "vcek.der").read_bytes()
    assert e["snp/chain"] == (SNP / "trustee-milan" / "chain.pem").read_bytes()
    assert e["snp/crl"] == (SNP / "roots" / "crl_milan.pem").read_bytes()
    m = meta(out)
    assert m["kind"] == "report" and m["type"] == "snp"
    assert m["time"] == "2026-05-01T00:00:00Z" and m["policy"] is None
    # SNP ABI table 21: REPORT_DATA at 0x50, 64 bytes; as found, never chosen here.
    assert m["binding"] == {"reportData": report[0x50:0x90].hex(), "chosenBy": CHOSEN_BY}
    # No nonce or TLS key a report bundle could pretend to.
    assert not any(k.startswith("nodes/") for k in e)
    assert {i["entry"] for i in m["inputs"]} == set(e) - {"bundle.json"}

    _, out, _ = recorded["tdx-zkdcap-outofdate-accepted"]
    e, m = entries(out), meta(out)
    coll = TDX / "zkdcap-00806f05"
    quote = (coll / "quote.bin").read_bytes()
    assert e["tdx/quote"] == quote  # the whole 8000-byte buffer, trailing zeros too
    for f in ("tcb_info.json", "tcb_info_issuer_chain.pem", "qe_identity.json",
              "qe_identity_issuer_chain.pem", "pck_crl.der", "pck_crl_issuer_chain.pem",
              "root_ca_crl.der"):
        assert e[f"tdx/collateral/{f}"] == (coll / f).read_bytes(), f
    policy = json.loads(e["policy.json"])
    assert policy["tdx"]["acceptedTcbStatuses"] == ["UpToDate", "OutOfDate"]
    # TDX quote v4: 48-byte header, REPORTDATA at offset 520 of the TD report body.
    assert m["binding"]["reportData"] == quote[48 + 520:48 + 584].hex()
    assert m["verdict"] == "pass" and m["time"] == "2025-02-20T10:55:27Z"
    assert {c["name"] for c in m["checks"]} >= {"tdx-quote-signature", "tdx-tcb-status"}

    _, out, _ = recorded["tdx-gce-cos113-ccel"]
    assert entries(out)["tdx/event-log"] == (TDX / "gce-cos113" / "ccel_data.dat").read_bytes()


def test_every_sampled_single_byte_edit_of_a_report_bundle_is_refused(recorded, tmp_path):
    rnd = random.Random(23)
    for cid in ("snp-trustee-milan-crl", "tdx-dcapqvl-uptodate"):
        _, out, _ = recorded[cid]
        data = out.read_bytes()
        positions = sorted(set(rnd.randrange(len(data)) for _ in range(30)) | {0, len(data) - 1})
        for pos in positions:
            edited = bytearray(data)
            edited[pos] = (edited[pos] + 1 + rnd.randrange(254)) % 256
            p = tmp_path / "edited"
            p.write_bytes(bytes(edited))
            r = run("cloister", "verify", "--bundle", p)
            assert r.returncode == 1, (cid, pos, r.stdout, r.stderr)
            assert "refused" in r.stderr, (cid, pos, r.stderr)


def rewrite(path, out, change):
    """The bundle with change(entries, record) applied and its manifest recomputed: an edit the
    container no longer catches, so what the evidence or the record says must."""
    doc = json.loads(path.read_bytes())
    e = {k: base64.b64decode(v) for k, v in doc["entries"].items()}
    m = json.loads(e["bundle.json"])
    change(e, m)
    e["bundle.json"] = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    doc["entries"] = {k: base64.b64encode(v).decode() for k, v in e.items()}
    doc["manifest"] = {k: hashlib.sha256(v).hexdigest() for k, v in e.items()}
    out.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return out


def flip(e, name, offset):
    b = bytearray(e[name])
    b[offset] ^= 0x01
    e[name] = bytes(b)


def test_an_edit_with_the_manifest_recomputed_is_refused_naming_what_no_longer_holds(recorded,
                                                                                     tmp_path):
    def report_byte(e, m):  # inside the signed part (MEASUREMENT, 0x90)
        flip(e, "snp/report", 0x90)

    def vcek_byte(e, m):  # inside the VCEK's signed TBS
        flip(e, "snp/vcek", 200)

    def report_data(e, m):  # the record claims other REPORT_DATA
        m["binding"]["reportData"] = "00" * 64

    def chosen_by(e, m):  # the record claims the CLI chose it
        m["binding"]["chosenBy"] = "the recording CLI"

    def recorded_result(e, m):  # the record claims a refused check passed
        for c in m["checks"]:
            c["result"] = "pass"
        m["verdict"] = "pass"

    def recorded_verdict(e, m):
        m["verdict"] = "pass"

    def policy_removed(e, m):  # the production policy dropped from the record
        del e["policy.json"]
        m["policy"] = None
        m["inputs"] = [i for i in m["inputs"] if i["entry"] != "policy.json"]

    def time_moved(e, m):  # recorded after the VCEK expired
        m["time"], m["timeEpoch"] = "2029-10-01T00:00:00Z", 1885507200

    def extra_entry(e, m):
        e["nodes/0/nonce"] = bytes(32)

    def report_truncated(e, m):  # no longer an SEV-SNP report at all
        e["snp/report"] = e["snp/report"][:1000]

    snp_debug = recorded["snp-gsg-milan-debug-production"][1]
    for change, words in ((report_byte, "verified again it is snp-signature fail"),
                          (vcek_byte, "verified again it is snp-"),
                          (report_data, "REPORT_DATA the report does not hold"),
                          (chosen_by, "binding.chosenBy"),
                          (recorded_result, "the bundle records check"),
                          (recorded_verdict, "verdict pass is not what its checks say"),
                          (policy_removed, "the bundle records check"),
                          (time_moved, "the bundle records check"),
                          (extra_entry, "entries its inputs do not list"),
                          (report_truncated, "Refused: the bundle's snp/report")):
        r = run("cloister", "verify", "--bundle", rewrite(snp_debug, tmp_path / "b", change))
        assert r.returncode == 1, (change.__name__, r.stdout, r.stderr)
        assert words in r.stdout + r.stderr, (change.__name__, r.stdout, r.stderr)

    def tcb_info_byte(e, m):  # inside the signed tcbInfo object
        name = "tdx/collateral/tcb_info.json"
        i = e[name].index(b'"fmspc":"') + len('"fmspc":"')
        e[name] = e[name][:i] + (b"1" if e[name][i:i + 1] != b"1" else b"2") + e[name][i + 1:]

    def quote_body_byte(e, m):  # a TD body byte: the quote's signature
        flip(e, "tdx/quote", 48 + 100)

    def crl_byte(e, m):
        flip(e, "tdx/collateral/pck_crl.der", 40)

    def collateral_removed(e, m):
        del e["tdx/collateral/qe_identity.json"]
        m["inputs"] = [i for i in m["inputs"] if i["entry"] != "tdx/collateral/qe_identity.json"]

    def recorded_refusal(e, m):  # the record claims a passed check failed
        m["checks"][0]["result"] = "fail"
        m["verdict"] = "fail"

    uptodate = recorded["tdx-dcapqvl-uptodate"][1]
    for change, words in ((report_data, "REPORT_DATA the quote does not hold"),
                          (recorded_refusal, "the bundle records check 1 as tdx-"),
                          (tcb_info_byte, "verified again it is tdx-tcb-info-signature fail"),
                          (quote_body_byte, "verified again it is tdx-quote-signature fail"),
                          (crl_byte, "verified again it is tdx-"),
                          (collateral_removed, "incomplete collateral")):
        r = run("cloister", "verify", "--bundle", rewrite(uptodate, tmp_path / "t", change))
        assert r.returncode == 1, (change.__name__, r.stdout, r.stderr)
        assert words in r.stdout + r.stderr, (change.__name__, r.stdout, r.stderr)


def test_report_bundle_verified_under_another_policy_judges_it_under_that_policy(recorded,
                                                                                 tmp_path):
    _, out, _ = recorded["snp-gsg-milan-debug"]
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"version": 1, "variant": "sev-snp",
                                  "snp": {"minTcb": {"microcode": 69},
                                          "measurements": [report_measurement("gsg-milan-debug")]}}))
    r = offline("verify", "--bundle", out, "--policy", strict, cwd=tmp_path)
    assert r.returncode == 1
    assert "against " + str(strict) in r.stdout
    assert "FAIL  snp-debug " in r.stdout and "FAIL  snp-tcb-microcode " in r.stdout
    # A policy for the other kind of report is refused by name, as verify-report refuses it.
    other = tmp_path / "tdx.json"
    other.write_text(json.dumps({"version": 1, "variant": "tdx", "tdx": {"mrTd": ["00" * 48]}}))
    r = offline("verify", "--bundle", out, "--policy", other, cwd=tmp_path)
    assert r.returncode == 1 and "not for SEV-SNP" in r.stderr


def test_verify_report_bundle_shuts_itself_off_the_network_before_reading(recorded, tmp_path):
    _, out, _ = recorded["tdx-dcapqvl-uptodate"]
    trace = tmp_path / "trace"
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-o", str(trace), "-e", "trace=seccomp,openat,socket",
                        str(binary("cloister")), "verify", "--bundle", str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    calls = trace.read_text().splitlines()
    filt = next(i for i, l in enumerate(calls)
                if "seccomp(SECCOMP_SET_MODE_FILTER" in l and l.rstrip().endswith("= 0"))
    opened = next(i for i, l in enumerate(calls) if str(out) in l and "openat" in l)
    assert filt < opened
    assert not any(l.startswith(tuple("0123456789")) and "socket(" in l and "= -1" not in l
                   for l in calls[filt:]), "a socket was opened after the filter"


def test_report_bundle_is_never_overwritten_and_policy_test_says_what_it_is(recorded, tmp_path):
    case, out, _ = recorded["snp-trustee-milan"]
    before = out.read_bytes()
    r = run("cloister", "attestation", "verify-report", *case.args, "--bundle", out)
    assert r.returncode == 1 and "never overwritten" in r.stderr
    assert out.read_bytes() == before
    pol = tmp_path / "p.json"
    pol.write_text(json.dumps({"version": 1, "variant": "sev-snp",
                               "snp": {"minTcb": {"microcode": 1},
                                       "measurements": [report_measurement("trustee-milan")]}}))
    r = run("cloister", "policy", "test", "--policy", pol, "--bundle", out)
    assert r.returncode == 1
    assert "verify --bundle FILE --policy NEW" in r.stderr


def test_a_refused_real_report_is_kept_with_its_refusal_and_refused_again_offline(tmp_path):
    """README negative/: each refused; the bundle keeps the refusal, the replay repeats it."""
    cases = [(SNP / "negative" / "snp_trustee_test-report.byte42.bin", "trustee-milan", "vcek.der",
              "snp-signature"),
             (SNP / "negative" / "snp_trustee_test-report.byte384_reported_tcb.bin",
              "trustee-milan", "vcek.der", "snp-"),
             (SNP / "negative" / "snp_trustee_test-vlek-report.byte42.bin", "trustee-milan-vlek",
              "vlek.der", "snp-signature")]
    for report, folder, cert, check in cases:
        out = tmp_path / (report.name + ".bundle")
        r = run("cloister", "attestation", "verify-report", "--type", "snp", "--report", report,
                "--vcek", SNP / folder / cert, "--chain", SNP / folder / "chain.pem", "--at",
                "2025-06-01", "--bundle", out)
        assert r.returncode == 1 and f"FAIL  {check}" in r.stdout, r.stdout
        assert meta(out)["verdict"] == "fail"
        again = offline("verify", "--bundle", out, cwd=tmp_path)
        assert again.returncode == 1
        assert again.stdout.splitlines()[HEADER_LINES:] == r.stdout.splitlines()


def test_an_edited_record_is_refused_before_any_verdict_is_printed(recorded, tmp_path):
    """The record is held to the verification first: a script reading -o json gets an error
    document, never a passing verdict next to a refusal."""
    _, out, _ = recorded["tdx-dcapqvl-uptodate"]

    def recorded_refusal(e, m):
        m["checks"][0]["result"] = "fail"
        m["verdict"] = "fail"

    edited = rewrite(out, tmp_path / "b", recorded_refusal)
    r = run("cloister", "verify", "--bundle", edited, "-o", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    assert "verdict" not in doc and "the bundle records check 1" in doc["error"]["message"]
    r = run("cloister", "verify", "--bundle", edited)
    assert r.returncode == 1 and r.stdout == "", r.stdout


def test_each_refused_real_tdx_quote_is_kept_with_its_refusal_or_not_kept_if_unreadable(tmp_path):
    """README tdx/negative/: spr-e4-quote-v4.dat with one byte changed, each refused. A quote
    that parses is kept with its refusal and refused again offline, naming the same check; one
    that does not parse (version, signed-data size) leaves no bundle."""
    policy = tmp_path / "lab.json"
    policy.write_text(json.dumps({"version": 1, "variant": "tdx",
                                  "tdx": dict(NO_COLLATERAL, requireSeptVeDisable=False)}))
    expected = {"version_byte": "tdx-quote-version", "signed_data_size": "tdx-quote-size",
                "certchain_byte": "tdx-pck-chain", "root_cert_byte": "tdx-pck-root",
                "intermediate_cert_byte": "tdx-pck-intermediate",
                "pck_cert_byte": "tdx-pck-signature", "header_byte": "tdx-quote-signature",
                "td_body_byte": "tdx-quote-signature"}
    for what, check in expected.items():
        out = tmp_path / f"{what}.bundle"
        r = run("cloister", "attestation", "verify-report", "--type", "tdx", "--quote",
                TDX / "negative" / f"tdx_SPR_E4.{what}.dat", "--no-collateral", "--policy",
                policy, "--at", "2023-07-01", "--bundle", out)
        assert r.returncode == 1, (what, r.stdout)
        if what in ("version_byte", "signed_data_size"):
            assert f"[check {check}]" in r.stderr and not out.exists(), (what, r.stderr)
            continue
        assert f"Verdict: FAIL: {check}" in r.stdout, (what, r.stdout)
        assert meta(out)["verdict"] == "fail"
        again = offline("verify", "--bundle", out, cwd=tmp_path)
        assert again.returncode == 1, (what, again.stderr)
        assert again.stdout.splitlines()[HEADER_LINES:] == r.stdout.splitlines(), what
