# SPDX-License-Identifier: Apache-2.0
"""`cloister verify --cluster` against join services whose membership is in etcd
(docs/membership.md): it reads the one membership and the one audit chain there (through one join
service), not the union of each join service's own files: a member admitted through one join
service is not reported unaudited by the other. It still finds an entry edited directly in etcd,
and a member record written into etcd without its admission entry. Two join services (two
control planes) on a real 3-member etcd with mutual TLS, and a real worker joined through the
first (the second's own log holds no admission of it: before, that was reported)."""
import json
import subprocess

import json_schema

from etcd_cluster import etcd  # noqa: F401 (fixture)
from conftest import binary
from test_join import cluster, member_policy, verify_cluster  # noqa: F401 (fixture)
from test_membership_etcd import chain, members, prefix, probe, two  # noqa: F401 (fixture)


def verify(cluster, tmp_path):
    r = verify_cluster(cluster, tmp_path, "-o", "json")
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    return r.returncode, doc


def test_verify_cluster_reads_the_one_chain_in_etcd_and_finds_an_edited_entry_and_an_unaudited_member(
        cluster, etcd, two, tmp_path):
    cp1, cp2, racers = two
    w = racers[0]
    cluster.join(w, cluster.tmp / "keys-only.json")
    w.wait_for("serving node state", timeout=120)
    entries = chain(cluster, etcd)
    assert [e["node"] for e in entries if e["event"] == "admission"] == ["cp-1", "cp-2", w.name]

    # Every member's admission is in the one chain: nothing is unaudited, the chain passes, and
    # it is the chain etcd holds (the independent reader counts the same entries).
    rc, doc = verify(cluster, tmp_path)
    assert rc == 0, doc
    assert sorted(n["name"] for n in doc["nodes"]) == ["cp-1", "cp-2", w.name]
    assert all(n["verdict"]["result"] == "pass" for n in doc["nodes"]), doc["nodes"]
    c = doc["clusterChain"]
    assert c["verdict"]["result"] == "pass" and c["readThrough"] == cp1.url(), c
    assert c["entries"] == len(entries)
    text = verify_cluster(cluster, tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.count("the cluster's audit chain in etcd (read through") == 1, text.stdout
    assert "Verification OK" in text.stdout

    # An entry edited in etcd (the worker's admission, its reason changed): the chain breaks.
    p = prefix(cluster)
    (key,) = [k for k, v in etcd.get_prefix(p + "audit/").items()
              if json.loads(v)["node"] == w.name and json.loads(v)["event"] == "admission"]
    original = etcd.get_prefix(key)[key]
    edited = json.loads(original)
    edited["reason"] = "admitted by hand"
    edited = json.dumps(edited, sort_keys=True, separators=(",", ":")) + "\n"
    assert etcd.ctl("put", key, edited).returncode == 0
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1
    c = doc["clusterChain"]
    assert c["verdict"]["result"] == "fail" and "audit chain broken" in c["verdict"]["reason"], c
    assert doc["verdict"]["result"] == "fail"
    assert etcd.ctl("put", key, original).returncode == 0
    rc, doc = verify(cluster, tmp_path)
    assert rc == 0, doc

    # A member written into etcd by hand, without an admission entry: reported as such.
    ghost = {"name": "ghost", "role": "worker", "endpoint": "127.0.0.1:1",
             "diskUuid": "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4aff", "akDigest": "ab" * 32,
             "admitted": "2026-12-07T10:00:00Z"}
    assert etcd.ctl("put", p + "members/ghost",
                    json.dumps(ghost, separators=(",", ":"))).returncode == 0
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1
    (g,) = [n for n in doc["nodes"] if n["name"] == "ghost"]
    assert any("the cluster's audit chain holds no admission of it" in r for r in g["reasons"]), g
    others = [n for n in doc["nodes"] if n["name"] != "ghost"]
    assert all(n["verdict"]["result"] == "pass" for n in others), others
    assert doc["clusterChain"]["verdict"]["result"] == "pass"


def status(cluster, tmp_path, *extra):
    from conftest import run
    from test_join import member_policy
    return run("cloister", "status", "--policy", member_policy(cluster, tmp_path), "--state-file",
               cluster.tmp / "cloister-state.json", *extra)


def test_status_shows_etcd_health_per_join_service_as_members_stop_and_quorum_is_lost(
        cluster, etcd, two, tmp_path):
    """`cloister status`: each join service says how etcd looks from where it is (each endpoint
    read once, linearizably): all answer; one member stopped, named with its error, quorum held;
    two stopped, quorum lost, and the membership shown is said to be the join service's last
    copy (on which verify --cluster does not pass)."""
    cp1, cp2, _ = two

    def health():
        r = status(cluster, tmp_path, "-o", "json")
        doc = json.loads(r.stdout)
        json_schema.validate(doc)
        return {js["joinService"]: js for js in doc["joinServices"]}

    h = health()
    assert sorted(h) == sorted([cp1.url(), cp2.url()])
    for js in h.values():
        assert js["membership"] == "etcd"
        e = js["etcd"]
        assert (e["configured"], e["answering"], e["quorum"]) == (3, 3, True), e
        assert all(x["answers"] and x["error"] is None for x in e["endpoints"]), e
    text = status(cluster, tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.count("etcd as it sees it: 3 of 3 members answer, quorum held") == 2

    etcd.members[2].stop()
    h = health()
    for js in h.values():
        e = js["etcd"]
        assert (e["answering"], e["quorum"]) == (2, True), e
        (down,) = [x for x in e["endpoints"] if not x["answers"]]
        assert down["endpoint"].endswith(f":{etcd.members[2].client_port}") and down["error"], e
    text = status(cluster, tmp_path)
    assert "etcd as it sees it: 2 of 3 members answer, quorum held" in text.stdout, text.stdout
    assert "does not answer" in text.stdout

    etcd.members[1].stop()
    text = status(cluster, tmp_path)
    assert text.stdout.count("etcd as it sees it: 0 of 3 members answer, quorum lost") == 2, \
        text.stdout + text.stderr
    assert "the membership shown is its last copy" in text.stdout
    assert "cp-1" in text.stdout and "cp-2" in text.stdout
    h = health()
    assert all(js["membership"] == "etcd-cache" and not js["etcd"]["quorum"] for js in h.values())
    # verify --cluster does not pass on a last copy.
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1 and "clusterChain" not in doc, doc
    assert all(log["verdict"]["result"] == "fail" and
               "etcd does not answer it" in log["verdict"]["reason"] for log in doc["auditLogs"])
    etcd.members[1].start(state="existing")
    etcd.members[2].start(state="existing")
    etcd.wait_healthy()


def test_verify_cluster_reports_a_chain_of_empty_entries_in_etcd_as_broken_and_does_not_hang(
        cluster, etcd, two, tmp_path):
    """A page of 64 entries, each emptied in etcd (by whoever holds an etcd client key): the join
    service serves it as an empty page with "more"; the verifier must call that broken, not ask
    for the same page again and again."""
    p = prefix(cluster)
    for seq in range(1, 65):
        assert etcd.ctl("put", p + "audit/%020d" % seq, "").returncode == 0
    try:
        r = subprocess.run(
            [str(binary("cloister")), "verify", "--cluster", "--policy",
             str(member_policy(cluster, tmp_path)), "--state-file",
             str(cluster.tmp / "cloister-state.json"), "-o", "json"],
            capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("verify --cluster still asking for the same empty page after 60 s")
    assert r.returncode == 1, r.stdout + r.stderr
    c = json.loads(r.stdout)["clusterChain"]
    assert c["verdict"]["result"] == "fail" and "holds no entry" in c["verdict"]["reason"], c


def entry_hash(cluster, etcd, seq):
    key = prefix(cluster) + f"audit/{seq:020d}"
    return json.loads(etcd.get_prefix(key)[key])["hash"]


def roll_back(cluster, etcd, to):
    """etcd put back to an older consistent state: the chain's entries after entry `to` gone, the
    head naming entry `to` (chain and head consistent, as an older snapshot of etcd holds them),
    and the members those entries admitted gone with their index keys."""
    p = prefix(cluster)
    entries = chain(cluster, etcd)
    later = entries[to:]
    ops = [f"del {p}audit/{e['seq']:020d}" for e in later]
    ops.append(f"put {p}audit-head " + json.dumps({"hash": entry_hash(cluster, etcd, to),
                                                    "seq": to}, separators=(",", ":")))
    records = {k: json.loads(v) for k, v in etcd.get_prefix(p + "members/").items()}
    for e in later:
        if e["event"] == "admission" and p + "members/" + e["node"] in records:
            r = records[p + "members/" + e["node"]]
            ops += [f"del {p}members/{e['node']}", f"del {p}disks/{r['diskUuid']}",
                    f"del {p}aks/{r['akDigest']}"]
    r = etcd.ctl("txn", "--interactive=false", input="\n" + "\n".join(ops) + "\n\n\n")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    assert len(chain(cluster, etcd)) == to


def test_a_rollback_of_etcd_to_an_older_consistent_chain_is_found_by_verify_cluster(
        cluster, etcd, two, tmp_path):
    """The chain in etcd is consistent after a rollback (older entries, a head naming the last):
    its hashes alone cannot tell. verify --cluster finds it through the last head this workspace
    saw verify (cloister-audit-checkpoints.json, "clusterChains"), and through the last entry the
    join service it reads through wrote itself (kept on that join service's disk and served with
    each page); that join service also refuses to append to the rolled-back chain (fail
    closed)."""
    cp1, cp2, racers = two
    records = cluster.tmp / "cloister-audit-checkpoints.json"
    rc, out = probe(cluster, cp1, "--tcti", racers[0].tpm.tcti, "--name", "worker-a",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4ab1")
    assert rc == 0, out
    after_a = len(chain(cluster, etcd))
    # worker-b through cp-2: the last entry is cp-2's, not that of cp-1 (read through).
    rc, out = probe(cluster, cp2, "--tcti", racers[1].tpm.tcti, "--name", "worker-b",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4ab2")
    assert rc == 0, out
    n = len(chain(cluster, etcd))
    # (The workers are join-probe clients that serve no node state: they do not attest, so the
    # verdict is about the chain here.)
    rc, doc = verify(cluster, tmp_path)
    assert doc["clusterChain"]["verdict"]["result"] == "pass", doc["clusterChain"]
    assert doc["clusterChain"]["readThrough"] == cp1.url()
    rec = json.loads(records.read_text())["clusterChains"]
    assert rec == [{"clusterId": cluster.cid, "seq": n, "hash": entry_hash(cluster, etcd, n)}]

    # Rolled back below what this workspace saw (cp-1's own last entry is still there).
    roll_back(cluster, etcd, after_a)
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1, doc
    c = doc["clusterChain"]
    assert c["verdict"]["result"] == "fail", c
    assert c["verdict"]["reason"].startswith(
        f"rolled back: this workspace saw the chain in etcd end at entry {n} in an earlier "
        f"verify, and it now ends at entry {after_a}"), c
    text = verify_cluster(cluster, tmp_path)
    assert text.returncode == 1 and "chain BROKEN: rolled back" in text.stdout, text.stdout
    # The record is not lowered by a failed verify.
    assert json.loads(records.read_text())["clusterChains"][0]["seq"] == n

    # The chain grows again through cp-1 (its own last entry is still there): as long as the
    # chain this workspace saw, but another entry at its end.
    rc, out = probe(cluster, cp1, "--tcti", racers[2].tpm.tcti, "--name", "worker-c",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4ab3")
    assert rc == 0, out
    assert len(chain(cluster, etcd)) == n
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1, doc
    reason = doc["clusterChain"]["verdict"]["reason"]
    assert reason.startswith(f"rewritten: entry {n} is not the one this workspace saw"), reason
    # cp-2 wrote entry n itself: the chain holds another there, and it appends nothing to it.
    rc, out = probe(cluster, cp2, "--tcti", racers[3].tpm.tcti, "--name", "worker-d",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4ab4")
    assert rc == 1 and "diskKey" not in out, out
    assert f"was rewritten: entry {n} is not the one this join service wrote" in out, out
    assert "worker-d" not in members(cluster, etcd) and len(chain(cluster, etcd)) == n

    # Rolled back below cp-1's own last entry (worker-c's), in a workspace that never saw the
    # chain: cp-1 says what it wrote, and the chain no longer holds it.
    roll_back(cluster, etcd, after_a)
    records.unlink()
    rc, doc = verify(cluster, tmp_path)
    assert rc == 1, doc
    reason = doc["clusterChain"]["verdict"]["reason"]
    assert reason.startswith(f"rolled back: the join service it was read through wrote entry "
                             f"{n} itself, and the chain in etcd now ends at entry "
                             f"{after_a}"), reason
    # cp-1 appends nothing to it: a join through it is refused with the reason, nothing written.
    rc, out = probe(cluster, cp1, "--tcti", racers[4].tpm.tcti, "--name", "worker-e",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4ab5")
    assert rc == 1 and "diskKey" not in out, out
    assert "went back" in out, out
    assert len(chain(cluster, etcd)) == after_a
    assert "worker-e" not in members(cluster, etcd)
