# SPDX-License-Identifier: Apache-2.0
"""`cloister node remove NAME` (docs/membership.md, "Removing a member"): the owner takes a
member out of the cluster's membership in etcd, so that its name, disk and attestation key can be
admitted again. Two join services (two control planes) on a real 3-member etcd with mutual TLS
(the fixtures of test_membership_etcd.py). The removal is authenticated with the owner's key (the
policy update's, recomputed here with Python's hmac and cryptography, independently of the C
code) over the cluster and the member's admission as recorded; a request not made with it,
altered, replayed, or made for an earlier admission is refused and changes nothing. Without etcd
a removal is refused, saying why."""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import json_schema
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import run
from etcd_cluster import etcd  # noqa: F401 (fixture)
from test_join import cluster, member_policy, verify_cluster  # noqa: F401 (fixture)
from test_membership_etcd import chain, members, prefix, probe, two  # noqa: F401 (fixture)

UUID = "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a01"


def authenticator(ms_path, cid, record, name):
    """The owner's removal authenticator, computed independently of libcloister."""
    secret = json.loads(ms_path.read_text())
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
               info=b"cloister/v1/policy-update").derive(base64.b64decode(secret["key"]))
    msg = (f"nr1.{cid}.{record['diskUuid'].lower()}.{record['akDigest']}."
           f"{record['admitted']}.{name}")
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def post_removal(cluster, cp, tmp_path, body):
    """POST /v1/node-remove from a client that does not attest (anyone on the network)."""
    path = tmp_path / f"removal-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(body))
    rc, out = probe(cluster, cp, "--no-attest", "--post", "/v1/node-remove", "--body", path)
    m = re.search(r"HTTP (\d+) (.*)", out)
    assert m, out
    return int(m.group(1)), m.group(2)


def removal_body(cluster, record, member, ms=None, **change):
    name = member
    body = {"name": name, "diskUuid": record["diskUuid"], "akDigest": record["akDigest"],
            "admitted": record["admitted"],
            "authenticator": authenticator(ms or cluster.ms, cluster.cid, record, name)}
    body.update(change)
    return body


def node_remove(cluster, tmp_path, name, cp=None, *extra):
    where = (["--node", f"127.0.0.1:{cp.port}", "--cluster-id", cluster.cid] if cp else
             ["--state-file", cluster.tmp / "cloister-state.json"])
    return run("cloister", "node", "remove", name, "--policy", member_policy(cluster, tmp_path),
               "--master-secret", cluster.ms, *where, *extra)


def membership_state(cluster, etcd):
    """Everything a removal changes: members, index keys, the removals done."""
    p = prefix(cluster)
    return {k: v for k, v in etcd.get_prefix(p).items() if not k.startswith(p + "audit")}


def test_owner_removes_a_member_its_rejoin_is_refused_everywhere_and_its_name_disk_and_key_are_free(
        cluster, etcd, two, tmp_path):
    cp1, cp2, racers = two
    old, new = racers[0], racers[1]
    rc, out = probe(cluster, cp1, "--tcti", old.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    record = members(cluster, etcd)["worker-1"]

    # Removed through the other join service (it never admitted the node), -o json.
    r = node_remove(cluster, tmp_path, "worker-1", cp2, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    assert doc["command"] == "cloister node remove"
    assert doc["removed"] == "worker-1" and doc["role"] == "worker"
    assert doc["diskUuid"] == UUID and doc["admitted"] == record["admitted"]
    assert doc["verdict"]["result"] == "pass", doc

    # Gone from etcd with its index keys; the removal is recorded as carried out.
    p = prefix(cluster)
    assert "worker-1" not in members(cluster, etcd)
    assert p + "disks/" + UUID not in etcd.get_prefix(p + "disks/")
    assert p + "aks/" + record["akDigest"] not in etcd.get_prefix(p + "aks/")
    assert list(etcd.get_prefix(p + "removals/").values()) == ["worker-1"]
    # The audit chain is whole and ends with who removed what, when.
    entries = chain(cluster, etcd)
    last = entries[-1]
    assert last["event"] == "removal" and last["node"] == "worker-1", last
    assert last["verdict"] == "refused" and last["role"] == "worker"
    assert "removed by the cluster's owner" in last["reason"] and UUID in last["reason"]
    assert record["admitted"] in last["reason"] and re.match(r"\d{4}-\d\d-\d\dT", last["time"])
    # The removing join service's cache follows etcd.
    assert "worker-1" not in [m["name"] for m in json.loads(
        (cp2.state / "members.json").read_text())["members"]]

    # Its rejoin is refused, with the reason, through either join service.
    for cp in (cp1, cp2):
        rc, out = probe(cluster, cp, "--tcti", old.tpm.tcti, "--name", "worker-1", "--rejoin",
                        UUID)
        assert rc == 1 and "diskKey" not in out, out
        assert "not a member of the cluster (etcd)" in out, out

    # Its name is free: a new node takes it; its disk and its key are free too.
    rc, out = probe(cluster, cp1, "--tcti", new.tpm.tcti, "--name", "worker-1", "--disk-uuid",
                    "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a02")
    assert rc == 0, out
    rc, out = probe(cluster, cp2, "--tcti", old.tpm.tcti, "--name", "worker-2", "--disk-uuid",
                    UUID)
    assert rc == 0, out
    m = members(cluster, etcd)
    assert m["worker-1"]["diskUuid"] == "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a02"
    assert m["worker-2"]["akDigest"] == record["akDigest"]
    # Both refused rejoins are in the one chain, between the removal and the new admissions.
    assert [e["event"] for e in chain(cluster, etcd) if e["node"] in ("worker-1", "worker-2")] \
        == ["admission", "removal", "refusal", "refusal", "admission", "admission"]

    # A text-mode removal says what happened.
    r = node_remove(cluster, tmp_path, "worker-2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "worker-2 (worker, disk " + UUID in r.stdout and "rejoin is refused" in r.stdout


def test_removals_not_the_owners_altered_replayed_or_for_an_earlier_admission_change_nothing(
        cluster, etcd, two, tmp_path):
    cp1, cp2, racers = two
    w = racers[0]
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    record = members(cluster, etcd)["worker-1"]
    before = membership_state(cluster, etcd)
    other = tmp_path / "other-mastersecret.json"
    assert run("cloister", "master-secret", "generate", "--file", other).returncode == 0

    refused = [
        # Another key: not the owner's.
        (removal_body(cluster, record, "worker-1", ms=other), 403,
         "not authenticated by this cluster's owner"),
        # No authenticator worth the name.
        (removal_body(cluster, record, "worker-1", authenticator="ab" * 32), 403,
         "not authenticated by this cluster's owner"),
        (removal_body(cluster, record, "worker-1", authenticator="AB" * 32), 400,
         "not 64 lowercase hex digits"),
        # The owner's authenticator, but the request altered: another member named.
        (removal_body(cluster, record, "worker-1", name="cp-1"), 403,
         "not authenticated by this cluster's owner"),
        (removal_body(cluster, record, "worker-1", diskUuid="7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a99"),
         403, "not authenticated by this cluster's owner"),
        # A field in a form no record has.
        (removal_body(cluster, record, "worker-1", admitted="2026.01.01"), 400,
         "in a form no record has"),
        (removal_body(cluster, record, "worker-1", extra="x"), 400, "extra"),
    ]
    for body, status, why in refused:
        for cp in (cp1, cp2):
            code, detail = post_removal(cluster, cp, tmp_path, body)
            assert (code, why in detail) == (status, True), (body, code, detail)
    assert membership_state(cluster, etcd) == before
    # Each refusal is audited; the member's admission is its last word in the chain.
    entries = chain(cluster, etcd)
    assert [e["event"] for e in entries if e["node"] == "worker-1"] == ["admission"]
    assert any("node removal refused: the removal is not authenticated" in e["reason"]
               for e in entries if e["event"] == "refusal")

    # The owner's removal made for this admission, held back while the member rejoins (which
    # records a new admission time): refused then as made for an earlier admission.
    held = removal_body(cluster, record, "worker-1")
    time.sleep(1.1)
    rc, out = probe(cluster, cp2, "--tcti", w.tpm.tcti, "--name", "worker-1", "--rejoin", UUID)
    assert rc == 0, out
    assert members(cluster, etcd)["worker-1"]["admitted"] != record["admitted"]
    code, detail = post_removal(cluster, cp1, tmp_path, held)
    assert code == 409 and "another admission" in detail and "Run 'cloister node remove" in detail
    assert "worker-1" in members(cluster, etcd)

    # The owner's removal of the current admission passes once; replayed, through either join
    # service, it is refused and changes nothing (nor after the name is admitted again).
    current = removal_body(cluster, members(cluster, etcd)["worker-1"], "worker-1")
    code, detail = post_removal(cluster, cp1, tmp_path, current)
    assert code == 200, detail
    assert "worker-1" not in members(cluster, etcd)
    after = membership_state(cluster, etcd)
    for cp in (cp1, cp2):
        code, detail = post_removal(cluster, cp, tmp_path, current)
        assert code == 409 and "carried out already" in detail, detail
    assert membership_state(cluster, etcd) == after
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    readmitted = membership_state(cluster, etcd)
    code, detail = post_removal(cluster, cp2, tmp_path, current)
    assert code == 409 and "carried out already" in detail, detail
    assert membership_state(cluster, etcd) == readmitted
    assert [e["event"] for e in chain(cluster, etcd) if e["node"] == "worker-1"] == \
        ["admission", "rejoin", "removal", "admission"]


def test_removing_an_unknown_name_or_a_join_services_own_node_is_a_clear_error(cluster, etcd, two,
                                                                              tmp_path):
    cp1, cp2, _ = two
    before = membership_state(cluster, etcd)
    # The CLI: the join service lists no such member.
    r = node_remove(cluster, tmp_path, "nobody")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "nobody is not a member of the cluster" in r.stderr and "cp-1" in r.stderr, r.stderr
    assert "Nothing was removed" in r.stderr
    err = json.loads(node_remove(cluster, tmp_path, "nobody", None, "-o", "json").stdout)
    json_schema.validate(err)
    assert err["command"] == "cloister node remove" and err["error"]["code"] == "ENOENT", err
    assert "nobody is not a member" in err["error"]["message"], err
    # The join service: the owner's removal of a name that is no member.
    ghost = {"diskUuid": UUID, "akDigest": "", "admitted": "2026-12-07T10:00:00Z"}
    code, detail = post_removal(cluster, cp1, tmp_path, removal_body(cluster, ghost, "nobody"))
    assert code == 404 and "nobody is not a member of the cluster" in detail, detail
    # A join service's own node: it would register itself again at its next start.
    r = node_remove(cluster, tmp_path, "cp-2", cp2)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "HTTP 403" in r.stderr and "this join service's own node" in r.stderr, r.stderr
    assert "cp-2" in members(cluster, etcd)
    assert membership_state(cluster, etcd) == before
    chain(cluster, etcd)


def test_without_etcd_a_removal_is_refused_saying_why_and_the_member_stays(cluster, tmp_path):
    """Local files (no --etcd-endpoints): each join service's members.json is its own; a removal
    from one would leave the member admitted by the others, so it is refused, with the reason."""
    from test_join import probe as probe_local
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    rc, out = probe_local(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    r = node_remove(cluster, tmp_path, "worker-1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "HTTP 403" in r.stderr and "local files" in r.stderr and "etcd" in r.stderr, r.stderr
    assert "worker-1" in [m["name"] for m in json.loads(
        (cp.state / "members.json").read_text())["members"]]
    assert not [e for e in cluster.audit() if e["event"] == "removal"]


def test_verify_cluster_reports_a_removed_member_written_back_into_etcd(cluster, etcd, two,
                                                                       tmp_path):
    """The owner removes worker-1; its record is then put back into etcd by hand (whoever holds
    an etcd client key). The chain holds worker-1's admission, but its removal after it: the
    membership and the chain disagree, and verify --cluster must say so for worker-1."""
    cp1, cp2, racers = two
    rc, out = probe(cluster, cp1, "--tcti", racers[0].tpm.tcti, "--name", "worker-1",
                    "--disk-uuid", UUID)
    assert rc == 0, out
    p = prefix(cluster)
    saved = {k: v for k, v in etcd.get_prefix(p).items()
             if k in (p + "members/worker-1", p + "disks/" + UUID) or k.startswith(p + "aks/")
             and v == "worker-1"}
    assert len(saved) == 3, saved
    r = node_remove(cluster, tmp_path, "worker-1", cp2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "worker-1" not in members(cluster, etcd)
    for k, v in saved.items():
        assert etcd.ctl("put", k, v).returncode == 0
    assert "worker-1" in members(cluster, etcd)

    r = verify_cluster(cluster, tmp_path, "-o", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1
    (w,) = [n for n in doc["nodes"] if n["name"] == "worker-1"]
    assert any("the cluster's audit chain holds no admission of it" in x for x in w["reasons"]), w
    # The others are as they were; the chain itself is whole.
    assert doc["clusterChain"]["verdict"]["result"] == "pass", doc["clusterChain"]


def test_a_removed_control_plane_is_not_registered_again_by_its_own_join_service_restarting(
        cluster, etcd, two, tmp_path):
    """A control plane's join service registers its own node in etcd at start (the first control
    plane has no other to admit it). A removal must stick: cp-2 removed by the owner through
    cp-1, its join service restarted, does not write itself back (before, it did, silently); it
    says why, audits it in the cluster's chain, and refuses every join with the reason. It comes
    back only through the attested path: a join as a control plane through cp-1, with the owner's
    authorization; then its join service finds itself a member again."""
    from test_join import reboot
    from test_membership_etcd import start_js, stop
    cp1, cp2, racers = two
    mine = next(m for m in json.loads((cp2.state / "members.json").read_text())["members"]
                if m["name"] == "cp-2")
    r = node_remove(cluster, tmp_path, "cp-2", cp1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cp-2" not in members(cluster, etcd)
    p = prefix(cluster)
    assert etcd.get_prefix(p + "removed-disks/")[p + "removed-disks/" + mine["diskUuid"]] == "cp-2"
    assert etcd.get_prefix(p + "removed-aks/")[p + "removed-aks/" + mine["akDigest"]] == "cp-2"

    stop(cp2)
    log = start_js(cp2, etcd)
    assert "cp-2" not in members(cluster, etcd)
    text = log.read_text()
    assert "was removed from the cluster's membership" in text, text
    assert "does not register it again" in text and "join anew as a control plane" in text, text
    (refusal,) = [e for e in chain(cluster, etcd) if e["node"] == "cp-2" and
                  e["event"] == "refusal"]
    assert refusal["reason"].startswith("a control plane's join service refused to register its "
                                        "own node: cp-2"), refusal
    # Every join is refused with the reason, and nothing is written.
    before = membership_state(cluster, etcd)
    rc, out = probe(cluster, cp2, "--tcti", racers[0].tpm.tcti, "--name", "worker-5",
                    "--disk-uuid", "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a55")
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert "own node is not a member of the cluster" in out and "was removed" in out, out
    assert membership_state(cluster, etcd) == before

    # Back through the attested path: a fresh boot, joined as a control plane through cp-1.
    stop(cp2)
    reboot(cp2)
    rc, out = probe(cluster, cp1, "--tcti", cp2.tpm.tcti, "--name", "cp-2", "--control-plane",
                    "--authorization", cluster.authorize("cp-2"), "--disk-uuid",
                    mine["diskUuid"])
    assert rc == 0, out
    assert members(cluster, etcd)["cp-2"]["akDigest"] == mine["akDigest"]
    n_refusals = len([e for e in chain(cluster, etcd) if e["event"] == "refusal"])
    # What its bootstrapper does after the join: PCR 15 = this cluster.
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
        bytes.fromhex(cluster.cid)).hexdigest()], check=True,
        env=dict(os.environ, TPM2TOOLS_TCTI=cp2.tpm.tcti))
    log = start_js(cp2, etcd)
    assert "not registered" not in log.read_text(), log.read_text()
    assert len([e for e in chain(cluster, etcd) if e["event"] == "refusal"]) == n_refusals
    assert [e["event"] for e in chain(cluster, etcd) if e["node"] == "cp-2"][-1] == "admission"
