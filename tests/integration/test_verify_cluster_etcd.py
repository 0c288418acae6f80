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
from test_membership_etcd import chain, prefix, two  # noqa: F401 (fixture)


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
