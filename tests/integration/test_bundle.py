# SPDX-License-Identifier: Apache-2.0
"""Evidence bundles (docs/bundle.md): `cloister verify --cluster --bundle OUT` keeps what the
verification was given, `cloister verify --bundle IN` verifies it again offline (in a network
namespace with no network, from a fresh directory), any edited byte is refused, and `cloister
policy test` shows which nodes a new policy would refuse. The cluster is test_join.py's: nodes as
processes on loopback, each with its own swtpm."""
import base64
import hashlib
import json
import os
import random
import re
import shutil
import subprocess

import pytest

import json_schema
from conftest import BUILD, binary, run
from test_cli_workspace import member  # noqa: F401 (fixture)
from test_join import Cluster, member_policy


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A control plane and a worker, verified once with --bundle; the cluster keeps running."""
    tmp = tmp_path_factory.mktemp("bundle")
    cluster = Cluster(tmp)
    try:
        cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
        policy = cluster.policy([cp, w1])
        cluster.init(cp, policy)
        cluster.join(w1, policy)
        w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
        mpol = member_policy(cluster, tmp)
        out = tmp / "cluster.bundle"
        r = run("cloister", "verify", "--cluster", "--policy", mpol, "--state-file",
                tmp / "cloister-state.json", "--bundle", out)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.rstrip().endswith("Verification OK")
        yield cluster, out, mpol, r.stdout
    finally:
        cluster.stop()


def offline(*args, cwd=None):
    """cloister in a new network namespace: no interface up, no route anywhere."""
    return subprocess.run(["unshare", "--net", str(binary("cloister")), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def entries(path):
    doc = json.loads(path.read_bytes())
    return {k: base64.b64decode(v) for k, v in doc["entries"].items()}


def test_bundle_holds_each_nodes_evidence_nonce_key_binding_policy_and_audit_log(recorded):
    cluster, out, mpol, _ = recorded
    doc = json.loads(out.read_bytes())
    assert doc["format"] == "cloister-bundle" and doc["version"] == 1
    e = entries(out)
    for name, data in e.items():
        assert doc["manifest"][name] == hashlib.sha256(data).hexdigest(), name
    meta = json.loads(e["bundle.json"])
    assert meta["kind"] == "cluster" and meta["clusterId"] == cluster.cid
    assert [(n["name"], n["verdict"]) for n in meta["nodes"]] == [("cp-1", "pass"),
                                                                  ("worker-1", "pass")]
    assert e["policy.json"] == mpol.read_bytes()
    for i in range(2):
        ev = json.loads(e[f"nodes/{i}/evidence"])
        assert ev["variant"] == "qemu-vtpm"
        assert len(e[f"nodes/{i}/nonce"]) == 32 and len(e[f"nodes/{i}/binding"]) == 32
        # The binding is what docs/atls.md says the nonce and key give (checked here in Python).
        assert e[f"nodes/{i}/binding"] == binding(e[f"nodes/{i}/nonce"], e[f"nodes/{i}/spki"])
    # Two verifications never share a nonce.
    assert e["nodes/0/nonce"] != e["nodes/1/nonce"]
    # The join service's audit log, byte for byte, with its head.
    assert e["audit/0/log"] == (cluster.cp.state / "audit.log").read_bytes()
    assert meta["auditLogs"][0]["head"]


def test_bundle_verifies_offline_in_a_fresh_directory_without_network(recorded, tmp_path):
    cluster, out, _, live = recorded
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    shutil.copy(out, fresh / "b")
    r = offline("verify", "--bundle", "b", cwd=fresh)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified offline" in r.stdout and r.stdout.rstrip().endswith("Verification OK")
    # The same table as the live verify.
    table = lambda s: [l for l in s.splitlines() if l.startswith(("cp-1", "worker-1", "audit"))]
    assert table(r.stdout) == table(live)
    j = offline("verify", "--bundle", "b", "-o", "json", cwd=fresh)
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["command"] == "cloister verify --cluster"
    # A script can tell a replay from a live verify.
    assert doc["bundle"]["file"] == "b"
    assert doc["bundle"]["verifiedAt"] == doc["bundle"]["recorded"]
    assert "not provably fresh" in doc["bundle"]["nonce"]
    assert {n["name"]: n["verdict"]["result"] for n in doc["nodes"]} == {"cp-1": "pass",
                                                                           "worker-1": "pass"}


def test_verify_bundle_shuts_itself_off_the_network_before_reading(recorded, tmp_path):
    """Not only no network around it: the process installs a filter under which socket() and
    connect() fail, before it opens the bundle."""
    _, out, _, _ = recorded
    trace = tmp_path / "trace"
    # (LeakSanitizer cannot run under ptrace: a sanitizer build checks leaks in the other tests.)
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-o", str(trace), "-e", "trace=seccomp,openat,socket",
                        str(binary("cloister")), "verify", "--bundle", str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    calls = trace.read_text().splitlines()
    # (libseccomp probes the kernel first with calls that fail; the load is the one that works.)
    filt = next(i for i, l in enumerate(calls)
                if "seccomp(SECCOMP_SET_MODE_FILTER" in l and l.rstrip().endswith("= 0"))
    opened = next(i for i, l in enumerate(calls) if str(out) in l and "openat" in l)
    assert filt < opened


def test_every_sampled_single_byte_edit_of_a_bundle_is_refused(recorded, tmp_path):
    _, out, _, _ = recorded
    data = out.read_bytes()
    rnd = random.Random(23)
    positions = sorted(set(rnd.randrange(len(data)) for _ in range(40)) | {0, len(data) - 1})
    for pos in positions:
        edited = bytearray(data)
        edited[pos] = (edited[pos] + 1 + rnd.randrange(254)) % 256
        p = tmp_path / "edited"
        p.write_bytes(bytes(edited))
        r = run("cloister", "verify", "--bundle", p)
        assert r.returncode == 1, (pos, r.stdout, r.stderr)
        assert "refused" in r.stderr or "FAILED" in r.stdout, (pos, r.stderr)


def binding(nonce, spki):
    """docs/atls.md: SHA-256("cloister-atls-v1" 0 variant 0 role 0 nonce SHA-256(SPKI))."""
    label = b"cloister-atls-v1\0qemu-vtpm\0server\0"
    return hashlib.sha256(label + nonce + hashlib.sha256(spki).digest()).digest()


def rewrite(path, out, change, rebind=True, meta=None):
    """The bundle with change applied to its entries, manifest (and, with rebind, node 1's
    recorded binding) recomputed: an edit that neither the manifest nor the recorded binding
    catches any more, so the evidence's own checks must."""
    doc = json.loads(path.read_bytes())
    e = {k: base64.b64decode(v) for k, v in doc["entries"].items()}
    change(e)
    if meta:
        m = json.loads(e["bundle.json"])
        meta(m)
        e["bundle.json"] = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
    if rebind:
        e["nodes/1/binding"] = binding(e["nodes/1/nonce"], e["nodes/1/spki"])
    doc["entries"] = {k: base64.b64encode(v).decode() for k, v in e.items()}
    doc["manifest"] = {k: hashlib.sha256(v).hexdigest() for k, v in e.items()}
    out.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return out


def test_an_edit_with_the_manifest_recomputed_is_refused_by_the_evidence_itself(recorded,
                                                                                tmp_path):
    _, out, _, _ = recorded

    def nonce(e):
        e["nodes/1/nonce"] = bytes(32)

    def recorded_binding(e):
        e["nodes/1/binding"] = bytes(32)

    def pcr(e):
        ev = json.loads(e["nodes/1/evidence"])
        ev["tpm"]["pcrs"]["4"] = "00" * 32
        e["nodes/1/evidence"] = json.dumps(ev).encode()

    def key(e):
        e["nodes/1/spki"] = e["nodes/0/spki"]

    def nonce_alone(e):
        e["nodes/1/nonce"] = bytes(32)

    # rebind: the recorded binding made to match the edit too, or left as it was recorded
    for change, rebind, words in ((nonce, True, "bound to another nonce or key"),
                                  (nonce_alone, False, "recorded binding"),
                                  (recorded_binding, False, "recorded binding"),
                                  (pcr, True, "PCR"), (key, True, "bound to another nonce or key")):
        r = run("cloister", "verify", "--bundle",
                rewrite(out, tmp_path / "b", change, rebind=rebind))
        assert r.returncode == 1, (change.__name__, r.stdout)
        line = next(l for l in r.stdout.splitlines() if l.startswith("worker-1"))
        assert "FAILED" in line, (change.__name__, r.stdout)
        assert words.lower() in r.stdout.lower(), (change.__name__, r.stdout)
        assert next(l for l in r.stdout.splitlines() if l.startswith("cp-1")).split()[2] == "OK"


def policy_test(*args):
    return run("cloister", "policy", "test", *args)


def test_policy_test_with_an_unchanged_policy_lists_no_node_and_exits_0(recorded):
    _, out, mpol, _ = recorded
    r = policy_test("--policy", mpol, "--bundle", out, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert [(n["name"], n["current"], n["new"], n["changes"]) for n in doc["nodes"]] == [
        ("cp-1", "pass", "pass", []), ("worker-1", "pass", "pass", [])]
    text = policy_test("--policy", mpol, "--bundle", out)
    assert text.returncode == 0 and "No node would be refused" in text.stdout


def test_policy_test_without_one_nodes_ak_pin_lists_exactly_that_node_and_check(recorded,
                                                                               tmp_path):
    cluster, out, mpol, _ = recorded
    p = json.loads(mpol.read_text())
    w1_ak = json.loads(cluster.nodes[1].policy.read_text())["akTrust"]["akPublic"]
    p["akTrust"]["akPublic"] = [k for k in p["akTrust"]["akPublic"] if k != w1_ak]
    new = tmp_path / "new.json"
    new.write_text(json.dumps(p))
    r = policy_test("--policy", new, "--bundle", out, "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert nodes["cp-1"]["new"] == "pass" and nodes["cp-1"]["changes"] == []
    assert nodes["worker-1"]["current"] == "pass" and nodes["worker-1"]["new"] == "fail"
    assert [(c["name"], c["current"], c["new"]) for c in nodes["worker-1"]["changes"]] == [
        ("ak-trust", "pass", "fail")], nodes["worker-1"]
    assert doc["verdict"]["result"] == "fail" and "1 of 2" in doc["verdict"]["reason"]
    text = policy_test("--policy", new, "--bundle", out)
    assert text.returncode == 1
    row = next(l for l in text.stdout.splitlines() if l.startswith("worker-1"))
    assert row.split()[1:4] == ["OK", "REFUSED", "ak-trust"], row


def test_policy_test_with_a_changed_pcr_lists_every_node_with_that_pcr(recorded, tmp_path):
    _, out, mpol, _ = recorded
    p = json.loads(mpol.read_text())
    p["measurements"]["9"]["expected"] = "ab" * 32
    new = tmp_path / "new.json"
    new.write_text(json.dumps(p))
    r = policy_test("--policy", new, "--bundle", out, "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    for n in json.loads(r.stdout)["nodes"]:
        assert n["new"] == "fail"
        assert [(c["name"], c["index"], c["expected"]) for c in n["changes"]] == [
            ("pcr", 9, "ab" * 32)], n


def test_policy_test_cluster_collects_fresh_evidence_then_compares(recorded, tmp_path):
    cluster, _, mpol, _ = recorded
    p = json.loads(mpol.read_text())
    p["measurements"]["4"]["expected"] = "cd" * 32
    new = tmp_path / "new.json"
    new.write_text(json.dumps(p))
    r = policy_test("--policy", new, "--cluster", "--current", mpol, "--state-file",
                    cluster.tmp / "cloister-state.json")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(("cp-1", "worker-1"))]
    assert [(x[0], x[1], x[2], x[3]) for x in rows] == [("cp-1", "OK", "REFUSED", "pcr[4]"),
                                                        ("worker-1", "OK", "REFUSED", "pcr[4]")]
    same = policy_test("--policy", mpol, "--cluster", "--current", mpol, "--state-file",
                       cluster.tmp / "cloister-state.json")
    assert same.returncode == 0, same.stdout + same.stderr


def test_verify_bundle_against_another_policy_and_at_another_time(recorded, tmp_path):
    _, out, mpol, _ = recorded
    p = json.loads(mpol.read_text())
    p["measurements"]["11"]["expected"] = "ef" * 32
    other = tmp_path / "other.json"
    other.write_text(json.dumps(p))
    r = run("cloister", "verify", "--bundle", out, "--policy", other)
    assert r.returncode == 1 and "PCR 11" in r.stdout, r.stdout
    # qemu-vtpm with a pinned AK has no certificate to expire: any time verifies.
    r = run("cloister", "verify", "--bundle", out, "--at", "2030-01-01")
    assert r.returncode == 0 and "verified offline at 2030-01-01T00:00:00Z" in r.stdout, r.stdout
    assert run("cloister", "verify", "--node", "127.0.0.1:1", "--at", "2030-01-01").returncode == 2


def test_verify_node_bundle_verifies_offline_with_the_live_documents_schema(recorded, tmp_path):
    cluster, _, mpol, _ = recorded
    out = tmp_path / "node.bundle"
    live = run("cloister", "verify", "--node", f"127.0.0.1:{cluster.nodes[1].port}", "--policy",
               mpol, "--cluster-id", cluster.cid, "--bundle", out, "-o", "json")
    assert live.returncode == 0, live.stdout + live.stderr
    meta = json.loads(entries(out)["bundle.json"])
    assert meta["kind"] == "node" and meta["clusterId"] == cluster.cid
    # A kept bundle is never overwritten: refused before any node is asked, the file stays.
    kept = out.read_bytes()
    again = run("cloister", "verify", "--node", f"127.0.0.1:{cluster.nodes[1].port}", "--policy",
                mpol, "--cluster-id", cluster.cid, "--bundle", out)
    assert again.returncode == 1 and "is never overwritten" in again.stderr, again.stderr
    assert again.stdout == "" and out.read_bytes() == kept
    r = offline("verify", "--bundle", out, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc, ldoc = json.loads(r.stdout), json.loads(live.stdout)
    json_schema.validate(doc)
    assert doc["command"] == "cloister verify" and doc["verdict"]["result"] == "pass"
    assert [c for c in doc["checks"]] == [c for c in ldoc["checks"]]
    assert (doc["node"], doc["state"], doc["versions"]) == (ldoc["node"], ldoc["state"],
                                                            ldoc["versions"])
    text = offline("verify", "--bundle", out)
    assert text.returncode == 0 and "PASS  pcr[15]" in text.stdout, text.stdout


def test_bundle_and_policy_test_documents_follow_the_schema(recorded, tmp_path):
    _, out, mpol, _ = recorded
    for args in (("verify", "--bundle", out), ("policy", "test", "--policy", mpol, "--bundle", out)):
        r = run("cloister", *args, "-o", "json")
        assert r.returncode == 0, r.stderr
        json_schema.validate(json.loads(r.stdout))
    bad = tmp_path / "bad"
    bad.write_bytes(out.read_bytes()[:-2])
    r = run("cloister", "verify", "--bundle", bad, "-o", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    assert "refused" in doc["error"]["message"]


def test_an_edited_entry_is_named_and_a_respelled_bundle_is_refused(recorded, tmp_path):
    _, out, _, _ = recorded
    doc = json.loads(out.read_bytes())
    # One byte of node 1's nonce, still valid base64: its manifest digest no longer holds.
    b64 = doc["entries"]["nodes/1/nonce"]
    doc["entries"]["nodes/1/nonce"] = ("B" if b64[0] != "B" else "C") + b64[1:]
    p = tmp_path / "b"
    p.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    r = run("cloister", "verify", "--bundle", p)
    assert r.returncode == 1
    assert "the entry 'nodes/1/nonce' does not match its manifest digest" in r.stderr, r.stderr
    # The same document spelt otherwise (a space after a colon): every digest holds, but it is
    # not the file cloister wrote.
    data = out.read_bytes()
    p.write_bytes(data.replace(b'"format":', b'"format": ', 1))
    r = run("cloister", "verify", "--bundle", p)
    assert r.returncode == 1
    assert "differs from the form cloister writes at byte" in r.stderr, r.stderr


def test_offline_audit_check_finds_an_altered_entry_and_a_member_without_admission(recorded,
                                                                                   tmp_path):
    _, out, _, _ = recorded

    def alter(e):
        e["audit/0/log"] = e["audit/0/log"].replace(b'"worker-1"', b'"worker-9"', 1)

    r = run("cloister", "verify", "--bundle", rewrite(out, tmp_path / "a", alter, rebind=False))
    assert r.returncode == 1 and "chain BROKEN" in r.stdout, r.stdout

    # An empty log with no head is a valid chain, but the member its join service lists has no
    # admission in it.
    def empty(e):
        e["audit/0/log"] = b""

    def no_head(m):
        m["auditLogs"][0]["head"] = None

    r = run("cloister", "verify", "--bundle",
            rewrite(out, tmp_path / "b", empty, rebind=False, meta=no_head))
    assert r.returncode == 1, r.stdout
    row = next(l for l in r.stdout.splitlines() if l.startswith("worker-1"))
    assert "FAILED" in row and "holds no admission" in row, r.stdout


@pytest.fixture
def sim_snp_node(tmp_path):
    """A node attesting with the SEV-SNP simulator over aTLS (tests/tools/sim-snp-node): its
    evidence carries a VCEK and an ASK, valid from a day ago for 25 years."""
    policy = tmp_path / "sim-snp-policy.json"
    p = subprocess.Popen([str(BUILD / "tests" / "sim-snp-node"), str(policy)],
                         stdout=subprocess.PIPE, text=True)
    try:
        port = re.match(r"serving on 127\.0\.0\.1:(\d+)", p.stdout.readline()).group(1)
        yield port, policy
    finally:
        p.terminate()
        p.wait(timeout=20)


def test_sim_snp_bundle_verifies_offline_and_fails_on_the_vcek_after_its_expiry(sim_snp_node,
                                                                              tmp_path):
    port, policy = sim_snp_node
    out = tmp_path / "snp.bundle"
    live = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy", policy,
               "--bundle", out, cwd=tmp_path)
    assert live.returncode == 0, live.stdout + live.stderr
    assert json.loads(entries(out)["nodes/0/evidence"])["variant"] == "sim-snp"
    r = offline("verify", "--bundle", out)
    assert r.returncode == 0 and "PASS  snp-authenticity" in r.stdout, r.stdout + r.stderr
    # 2060: after the simulated VCEK's notAfter; the failure names that certificate.
    late = offline("verify", "--bundle", out, "--at", "2060-01-01", "-o", "json")
    assert late.returncode == 1, late.stdout + late.stderr
    verdict = json.loads(late.stdout)["verdict"]
    assert verdict["check"] == "snp-validity" and "SEV-VCEK" in verdict["reason"], verdict
    early = offline("verify", "--bundle", out, "--at", "2020-01-01")
    assert early.returncode == 1 and "SEV-VCEK (simulated) is not valid" in early.stdout


def test_sim_snp_host_data_bound_to_the_cluster_id_passes_only_for_that_cluster(tmp_path):
    """snp.hostDataFromClusterId: verify --node binds the cluster ID it is given (the check failed
    for every node before the CLI bound it), a node launched for another cluster fails at
    snp-host-data, and the bundle's offline verification binds the recorded ID the same way."""
    cid, other = "ab" * 32, "cd" * 32
    policy = tmp_path / "sim-snp-policy.json"
    p = subprocess.Popen([str(BUILD / "tests" / "sim-snp-node"), str(policy), cid],
                         stdout=subprocess.PIPE, text=True)
    try:
        port = re.match(r"serving on 127\.0\.0\.1:(\d+)", p.stdout.readline()).group(1)
        out = tmp_path / "snp.bundle"
        ok = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy", policy,
                 "--cluster-id", cid, "--bundle", out, cwd=tmp_path)
        assert ok.returncode == 0 and "PASS  snp-host-data" in ok.stdout, ok.stdout + ok.stderr
        wrong = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy", policy,
                    "--cluster-id", other, cwd=tmp_path)
        assert wrong.returncode == 1 and "FAIL  snp-host-data" in wrong.stdout, \
            wrong.stdout + wrong.stderr
        r = offline("verify", "--bundle", out)
        assert r.returncode == 0 and "PASS  snp-host-data" in r.stdout, r.stdout + r.stderr
    finally:
        p.terminate()
        p.wait(timeout=20)


def test_a_refused_nodes_evidence_is_kept_and_a_fixed_policy_would_admit_it(recorded, tmp_path):
    """A verification that fails still writes its bundle, with the refused node's evidence as
    received (recorded before the verdict): policy test then shows the fix admits it."""
    cluster, _, mpol, _ = recorded
    p = json.loads(mpol.read_text())
    w1_ak = json.loads(cluster.nodes[1].policy.read_text())["akTrust"]["akPublic"]
    p["akTrust"]["akPublic"] = [k for k in p["akTrust"]["akPublic"] if k != w1_ak]
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps(p))
    out = tmp_path / "failed.bundle"
    r = run("cloister", "verify", "--cluster", "--policy", strict, "--state-file",
            cluster.tmp / "cloister-state.json", "--bundle", out)
    assert r.returncode == 1 and "Verification FAILED" in r.stdout, r.stdout + r.stderr
    meta = json.loads(entries(out)["bundle.json"])
    w1 = next(n for n in meta["nodes"] if n["name"] == "worker-1")
    assert w1["verdict"] == "fail" and w1["evidence"] is True
    assert run("cloister", "verify", "--bundle", out).returncode == 1
    fixed = policy_test("--policy", mpol, "--bundle", out)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    row = next(l for l in fixed.stdout.splitlines() if l.startswith("worker-1"))
    assert row.split()[1:4] == ["REFUSED", "OK", "ak-trust"], row


def test_in_a_workspace_the_bundle_keeps_the_configurations_policy(member, tmp_path):
    """verify --cluster --bundle with no other flag: the policy is cloister.json's attestation
    object, and policy test --cluster takes it as the current one."""
    ws, _, _, cid = member
    out = tmp_path / "ws.bundle"
    r = run("cloister", "verify", "--cluster", "--bundle", out, cwd=ws)
    assert r.returncode == 0, r.stdout + r.stderr
    e = entries(out)
    attestation = json.loads((ws / "cloister.json").read_text())["attestation"]
    assert json.loads(e["policy.json"]) == attestation
    assert json.loads(e["bundle.json"])["clusterId"] == cid
    assert offline("verify", "--bundle", out, cwd=tmp_path).returncode == 0
    same = tmp_path / "same.json"
    same.write_text(json.dumps(attestation))
    r = run("cloister", "policy", "test", "--policy", same, "--cluster", cwd=ws)
    assert r.returncode == 0 and "No node would be refused" in r.stdout, r.stdout + r.stderr
