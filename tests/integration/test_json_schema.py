# SPDX-License-Identifier: Apache-2.0
"""-o json, one schema: every command that prints a result document is run here (passing,
failing, and failing before any check), and what it prints on stdout is validated against
docs/json-result.schema.json (docs/json.md) by tests/integration/json_schema.py, a validator on
Python's standard library. The commands without a result document refuse -o json with an error
document."""
import json

import pytest

import json_schema
from conftest import TESTDATA, run
from test_attestation_cli import BINDING, issue, policy_for
from test_join import Cluster, member_policy
from test_measurements_sign import DOC, keys  # noqa: F401 (fixture)

SNP = TESTDATA / "snp"
TDX = TESTDATA / "tdx" / "dcapqvl-b0c06f-uptodate"
EVENTLOG = TESTDATA / "tpm" / "eventlogs" / "debian-10.bin"


def document(r, rc):
    """The one document r printed on stdout, valid against the schema; exit status rc."""
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    return doc


def error_document(r, command, code):
    doc = document(r, 2 if code == "EUSAGE" else 1)  # exit status 2: a usage error
    assert doc["command"] == command and doc["error"]["code"] == code, doc
    # The error is the line on stderr, in full, not another text.
    assert doc["error"]["message"] in r.stderr, (doc, r.stderr)
    return doc["error"]


def test_the_validator_refuses_documents_that_break_the_schema():
    """Each document differs from a valid one in one place the schema fixes."""
    good = {"schemaVersion": 1, "command": "cloister verify", "node": "https://127.0.0.1:9000",
            "versions": {"cloister": "0.1.0", "image": None, "kubernetes": "v1.30.0"},
            "state": "member",
            "checks": [{"name": "pcr", "index": 4, "result": "pass", "enforced": True,
                        "expected": "aa", "actual": "aa", "detail": "PCR 4"}],
            "verdict": {"result": "pass", "reason": None, "check": None, "index": None,
                        "expected": None, "actual": None, "freshness": "checked"}}
    json_schema.validate(good)
    bad = [
        lambda d: d.update(schemaVersion=2),
        lambda d: d.pop("verdict"),
        lambda d: d["checks"][0].update(result="ok"),
        lambda d: d["checks"][0].update(expected=""),
        lambda d: d["checks"][0].pop("actual"),
        lambda d: d["checks"][0].update(extra=1),
        lambda d: d["verdict"].update(result="fail"),  # a failure without a reason
        lambda d: d["verdict"].update(reason="why"),  # a pass with one
        lambda d: d.update(error={"message": "x"}),
        lambda d: d.update(command="cloister verify extra words"),
        lambda d: d["versions"].update(image=""),
        lambda d: d["versions"].pop("kubernetes"),
        lambda d: d.update(state="busy"),
    ]
    for change in bad:
        d = json.loads(json.dumps(good))
        change(d)
        with pytest.raises(AssertionError):
            json_schema.validate(d)


def test_attestation_verify_pass_fail_and_error_documents(cloister, swtpm, tmp_path):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    args = ("attestation", "verify", "--evidence", ev_path, "--policy", pol)
    doc = document(cloister(*args, "--binding", BINDING, "-o", "json"), 0)
    assert doc["command"] == "cloister attestation verify"
    assert doc["verdict"]["result"] == "pass" and doc["verdict"]["freshness"] == "checked"
    pcr4 = next(c for c in doc["checks"] if c["name"] == "pcr" and c["index"] == 4)
    assert pcr4["result"] == "pass" and pcr4["actual"] == ev["tpm"]["pcrs"]["4"]
    # -o before the verb is the same document.
    before = document(cloister("-o", "json", *args, "--binding", BINDING), 0)
    assert before["checks"] == doc["checks"]

    doc = document(cloister(*args, "--binding", "cd" * 32, "-o", "json"), 1)
    assert doc["verdict"]["result"] == "fail" and doc["verdict"]["check"] == "binding"
    assert doc["verdict"]["expected"] == "cd" * 32 and doc["verdict"]["actual"] == BINDING
    doc = document(cloister(*args, "--no-binding", "-o", "json"), 0)
    assert doc["verdict"]["freshness"] == "not-checked"

    err = error_document(cloister("attestation", "verify", "--evidence", tmp_path / "missing.json",
                                  "--policy", pol, "--binding", BINDING, "-o", "json"),
                         "cloister attestation verify", "ENOENT")
    assert "missing.json" in err["cause"] and err["nextStep"]


def test_verify_report_snp_and_tdx_documents(cloister, tmp_path):
    snp = ("attestation", "verify-report", "--type", "snp", "--report",
           SNP / "trustee-milan" / "report.bin", "--chain", SNP / "trustee-milan" / "chain.pem")
    doc = document(cloister(*snp, "--vcek", SNP / "trustee-milan" / "vcek.der", "-o", "json"), 0)
    assert doc["type"] == "snp" and doc["verdict"]["result"] == "pass"
    assert doc["verdict"]["freshness"] == "not-checked"  # a stored report
    assert doc["report"]["product"] == "Milan"
    # The VCEK of another report: a failed check, its name in the verdict.
    doc = document(cloister(*snp, "--vcek", SNP / "gsg-milan-debug" / "vcek.der", "-o", "json"), 1)
    assert doc["verdict"]["result"] == "fail" and doc["verdict"]["check"], doc["verdict"]
    assert any(c["result"] == "fail" for c in doc["checks"])

    tdx = ("attestation", "verify-report", "--type", "tdx", "--quote", TDX / "quote.bin",
           "--collateral", TDX, "--at", "2025-07-19T10:00:34Z", "-o", "json")
    doc = document(cloister(*tdx), 0)
    assert doc["type"] == "tdx" and doc["tcb"]["status"] == "UpToDate"
    # Judged years later: the collateral has expired; the verdict names the check.
    late = list(tdx)
    late[late.index("2025-07-19T10:00:34Z")] = "2099-01-01"
    doc = document(cloister(*late), 1)
    assert doc["verdict"]["result"] == "fail" and doc["verdict"]["reason"]

    err = error_document(cloister("attestation", "verify-report", "--type", "tdx", "--quote",
                                  tmp_path / "none.bin", "-o", "json"),
                         "cloister attestation verify-report", "ENOENT")
    assert "none.bin" in err["message"]


def test_cloister_measure_documents(tmp_path, keys):  # noqa: F811
    doc = document(run("cloister-measure", "eventlog", "replay", EVENTLOG, "-o", "json"), 0)
    assert doc["command"] == "cloister-measure eventlog replay" and doc["bank"] == "sha1"
    assert doc["pcrs"]["0"] and doc["events"] > 0
    doc = document(run("cloister-measure", "eventlog", "show", EVENTLOG, "--bank", "sha384", "-o",
                       "json"), 0)
    assert doc["events"] and all(e["digest"] is None for e in doc["events"])

    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    assert run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f).returncode == 0
    verify = ("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f,
              tmp_path / "m.json.sig", "-o", "json")
    doc = document(run(*verify), 0)
    assert doc["verdict"]["result"] == "pass"
    assert doc["measurements"]["measurementsVersion"] == 7
    f.write_text(json.dumps(DOC) + " ")
    doc = document(run(*verify), 1)
    assert doc["verdict"]["result"] == "fail"
    assert doc["checks"][0] == dict(doc["checks"][0], name="measurements-signature", result="fail")

    err = error_document(run("cloister-measure", "eventlog", "replay", EVENTLOG, "--bank",
                             "sha384", "-o", "json"), "cloister-measure eventlog replay", "ENOENT")
    assert "sha384" in err["cause"] and err["nextStep"].startswith("Pick one of those")


def test_snp_launch_document_keeps_its_fields_in_the_envelope():
    from test_snp_launch import LAUNCH_CASES, case_args
    case = LAUNCH_CASES[0]
    doc = document(run("cloister-measure", "snp-launch", *case_args(case), "-o", "json"), 0)
    assert doc["command"] == "cloister-measure snp-launch"
    assert doc["measurement"] == case["expected"]


def test_commands_without_a_result_document_refuse_json_with_an_error_document(tmp_path):
    for args, command in ((("apply",), "cloister apply"),
                          (("config", "generate", "qemu"), "cloister config generate"),
                          (("mini", "status"), "cloister mini status")):
        err = error_document(run("cloister", "-o", "json", *args, cwd=tmp_path), command, "EUSAGE")
        assert err["cause"] == f"{command} prints no JSON result"
        assert err["nextStep"].startswith("Drop -o json")
    # -o json after the command: the same refusal, not an unknown option.
    err = error_document(run("cloister", "apply", "-o", "json", cwd=tmp_path), "cloister apply",
                         "EUSAGE")
    assert err["cause"] == "cloister apply prints no JSON result"
    err = error_document(run("cloister-measure", "authenticode", "x.efi", "-o", "json"),
                         "cloister-measure authenticode", "EUSAGE")
    assert err["cause"] == "cloister-measure authenticode prints no JSON result"
    # Their help is still text.
    r = run("cloister", "-o", "json", "apply", "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage:")
    doc = document(run("cloister", "-o", "json", "version"), 0)
    assert doc["command"] == "cloister version"


def test_verify_refused_connection_is_an_error_document_naming_the_next_step(tmp_path, swtpm,
                                                                            cloister):
    ev_path, ev = issue(cloister, swtpm, tmp_path)
    pol = policy_for(ev, tmp_path)
    err = error_document(cloister("verify", "--node", "127.0.0.1:1", "--policy", pol, "-o",
                                  "json"), "cloister verify", "ECONNREFUSED")
    assert "connection was refused" in err["cause"]
    assert err["nextStep"].startswith("Check the address and port")
    # A usage error before anything else: still a document.
    err = error_document(cloister("verify", "--node", "127.0.0.1:99999", "--policy", pol, "-o",
                                  "json"), "cloister verify", "EUSAGE")
    assert "65535" in err["message"]


@pytest.fixture
def members(tmp_path):
    c = Cluster(tmp_path)
    cp, w1 = c.node("cp-1"), c.node("worker-1")
    policy = c.policy([cp, w1])
    c.init(cp, policy)
    c.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    yield c
    c.stop()


def test_verify_node_verify_cluster_and_status_documents(members, tmp_path):
    c = members
    pol = member_policy(c, tmp_path)
    state = c.tmp / "cloister-state.json"
    doc = document(run("cloister", "verify", "--node", f"127.0.0.1:{c.cp.port}", "--policy", pol,
                       "--cluster-id", c.cid, "-o", "json"), 0)
    assert doc["node"] == f"https://127.0.0.1:{c.cp.port}"
    pcr15 = next(x for x in doc["checks"] if x["name"] == "pcr" and x["index"] == 15)
    assert pcr15["result"] == "pass" and pcr15["actual"] != "00" * 32

    doc = document(run("cloister", "verify", "--cluster", "--policy", pol, "--state-file", state,
                       "-o", "json"), 0)
    assert doc["command"] == "cloister verify --cluster" and doc["clusterId"] == c.cid
    assert {n["name"]: n["verdict"]["result"] for n in doc["nodes"]} == {
        "cp-1": "pass", "worker-1": "pass"}
    # Each member's checks come along, as verify --node prints them.
    assert all(any(x["name"] == "pcr" and x["index"] == 15 for x in n["checks"])
               for n in doc["nodes"])

    doc = document(run("cloister", "status", "--policy", pol, "--state-file", state, "-o",
                       "json"), 0)
    assert doc["command"] == "cloister status"
    assert {n["name"] for n in doc["nodes"]} == {"cp-1", "worker-1"}
    assert all(j["policyDigest"] for j in doc["joinServices"])

    # The join service down: the cluster cannot be read, an error document says so.
    c.cp.stop()
    err = error_document(run("cloister", "status", "--policy", pol, "--state-file", state, "-o",
                             "json"), "cloister status", "ECONNREFUSED")
    assert err["nextStep"]
