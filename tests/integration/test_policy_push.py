# SPDX-License-Identifier: Apache-2.0
"""Owner-authenticated policy updates (docs/policy-update.md): `cloister policy push` changes
what a running cluster admits. Nodes are processes with their own swtpm (the join fixtures of
test_join.py); the policy pins the nodes' attestation keys, so a push that drops or adds a key
makes a node refused or admitted. Every update must carry the owner's authenticator (recomputed
here with Python's hmac and cryptography, independently of the C code) and a version that only
grows; each join service stores it, puts it in force and audits it with both digests."""
import base64
import hashlib
import hmac
import json
import re
import signal
import time

import json_schema
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import run
from test_join import (Cluster, audit_entries, member_policy, probe, reboot, restart,  # noqa: F401
                       cluster)


def write_config(cluster, nodes, version, name, change=None):
    """A cluster configuration whose policy pins exactly these nodes' keys, at policyVersion."""
    att = json.loads(cluster.policy(nodes, path=cluster.tmp / f"{name}-policy.json").read_text())
    if change:
        change(att)
    cfg = {"version": 1, "provider": "qemu", "attestation": att}
    if version is not None:
        cfg["policyVersion"] = version
    path = cluster.tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def push(cluster, config, *extra, ms=None):
    return run("cloister", "policy", "push", "--config", config, "--master-secret", ms or cluster.ms,
               "--state-file", cluster.tmp / "cloister-state.json", *extra)


def members(cluster, node=None):
    rc, out = probe(cluster, "--no-attest", "--get", "/v1/members",
                    *(["--url", node.url()] if node else []))
    assert rc == 0, out
    return json.loads(out.split(" ", 2)[2])


def authenticator(ms_path, cid, version, document):
    """The owner's authenticator, computed independently of libcloister."""
    secret = json.loads(ms_path.read_text())
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
               info=b"cloister/v1/policy-update").derive(base64.b64decode(secret["key"]))
    msg = f"pu1.{cid}.{version}.{hashlib.sha256(document).hexdigest()}"
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def post_update(cluster, tmp_path, document, version, auth=None, url=None):
    """POST /v1/policy from a client that does not attest (anyone on the network)."""
    if isinstance(document, dict):
        document = json.dumps(document)
    body = {"policy": document, "version": version,
            "authenticator": auth or authenticator(cluster.ms, cluster.cid, version,
                                                   document.encode())}
    path = tmp_path / f"update-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(body))
    rc, out = probe(cluster, "--no-attest", "--post", "/v1/policy", "--body", path,
                    *(["--url", url] if url else []))
    m = re.search(r"HTTP (\d+) (.*)", out)
    assert m, out
    return int(m.group(1)), m.group(2)


def status(cluster, tmp_path, config):
    r = run("cloister", "status", "--config", config, "--state-file",
            cluster.tmp / "cloister-state.json", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {js["joinService"]: js for js in json.loads(r.stdout)["joinServices"]}


def policy_updates(entries):
    return [e for e in entries if e["event"] == "policy-update"]


def test_push_changes_who_is_admitted_audits_both_digests_and_survives_a_restart(cluster,
                                                                                 tmp_path):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    # At init, worker-2's key is not pinned: it cannot join.
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    old_digest = members(cluster)["policyDigest"]
    assert members(cluster)["policyVersion"] == 0  # never pushed: the init's policy

    # Version 1: worker-1 out, worker-2 in.
    v1 = write_config(cluster, [cp, w2], 1, "v1")
    r = push(cluster, v1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"{re.escape(cp.url())}\s+0\s+1\s+updated", r.stdout), r.stdout
    m = members(cluster)
    assert m["policyVersion"] == 1 and m["policyDigest"] != old_digest
    # What is stored is the document pushed, byte for byte.
    stored = (cp.state / "cluster-policy.json").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == m["policyDigest"]
    record = json.loads((cp.state / "policy-version.json").read_text())
    assert record["version"] == 1 and record["policyDigest"] == m["policyDigest"]
    assert record["policy"].encode() == stored
    (update,) = policy_updates(cluster.audit())
    assert update["verdict"] == "admitted" and update["policyDigest"] == m["policyDigest"]
    assert f"policy version 1 (sha256:{m['policyDigest']}) replaces version 0 " \
           f"(sha256:{old_digest})" == update["reason"], update
    # `cloister status` shows the version per join service.
    st = status(cluster, tmp_path, v1)
    assert st[cp.url()]["policyVersion"] == 1 and st[cp.url()]["policyDigest"] == m["policyDigest"]
    text = run("cloister", "status", "--config", v1, "--state-file",
               cluster.tmp / "cloister-state.json")
    assert f"join service {cp.url()} enforces policy sha256:{m['policyDigest']} (version 1)" \
        in text.stdout, text.stdout

    # Newly allowed: worker-2 joins now.
    cluster.join(w2, v1.with_name("v1-policy.json"))
    w2.wait_for("serving node state")
    # Newly disallowed: worker-1, rebooted, is refused on its rejoin (its key is no longer
    # trusted) and gets no key.
    reboot(w1)
    restart(w1, cluster, policy)
    deadline = time.time() + 60
    while time.time() < deadline:
        refusals = [e for e in cluster.audit() if e["event"] == "refusal" and
                    e["policyDigest"] == m["policyDigest"] and "attestation key" in e["reason"]]
        if refusals:
            break
        time.sleep(0.5)
    assert refusals, cluster.audit()
    assert "Rejoined" not in w1.log.read_text()
    w1.stop()
    events = [e["event"] for e in cluster.audit()]
    assert events.count("admission") == 2 and "rejoin" not in events

    # verify --cluster still validates the chain with the update in it.
    r = run("cloister", "verify", "--cluster", "--config", v1, "--state-file",
            cluster.tmp / "cloister-state.json", "-o", "json")
    out = json.loads(r.stdout)
    (log,) = out["auditLogs"]
    assert log["verdict"]["result"] == "pass", log
    verdicts = {n["name"]: n["verdict"]["result"] for n in out["nodes"]}
    assert verdicts["cp-1"] == "pass" and verdicts["worker-2"] == "pass", out

    # A restart of the join service (a power cycle and the owner's recovery): the update holds,
    # even after a stop between its two writes (the record written, the policy file not yet:
    # the record is the commit, put in force at the next start).
    reboot(cp)
    (cp.state / "cluster-policy.json").write_bytes(policy.read_bytes())
    restart(cp, cluster, policy)
    cp.wait_for(r"serving recovery on 127\.0\.0\.1:" + cp.port)
    r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 0, r.stdout + r.stderr
    cp.wait_for("serving joins on .*", timeout=60)
    time.sleep(0.5)
    m2 = members(cluster)
    assert m2["policyVersion"] == 1 and m2["policyDigest"] == m["policyDigest"], m2
    # The same push again is a no-op success, and the log gains no entry for it.
    r = push(cluster, v1)
    assert r.returncode == 0 and "unchanged" in r.stdout, r.stdout + r.stderr
    assert len(policy_updates(cluster.audit())) == 1
    # Nothing older goes back in: version 0's document pushed as version 1 is another document
    # under a version taken.
    r = push(cluster, write_config(cluster, [cp, w1], 1, "v1-other"))
    assert r.returncode == 1 and "push this one as a new version" in r.stdout, r.stdout + r.stderr
    assert members(cluster)["policyDigest"] == m["policyDigest"]


def test_updates_without_the_owner_key_older_versions_and_weak_policies_change_nothing(
        cluster, tmp_path):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    v2 = write_config(cluster, [cp, w1], 2, "v2")
    v1_doc = json.loads(policy.read_text())
    v1_doc["eventLog"] = "required"
    # Version 1 first (posted as the owner would, over the documented format), then version 2.
    code, body = post_update(cluster, tmp_path, v1_doc, 1)
    assert code == 200 and json.loads(body)["changed"] is True, body
    r = push(cluster, v2)
    assert r.returncode == 0, r.stdout + r.stderr
    in_force = members(cluster)
    assert in_force["policyVersion"] == 2
    n_updates = len(policy_updates(cluster.audit()))

    def unchanged():
        m = members(cluster)
        assert (m["policyVersion"], m["policyDigest"]) == (2, in_force["policyDigest"])
        assert len(policy_updates(cluster.audit())) == n_updates

    # Another master secret (another owner): refused.
    other = tmp_path / "other-ms.json"
    assert run("cloister", "master-secret", "generate", "--file", other).returncode == 0
    r = push(cluster, write_config(cluster, [cp], 3, "v3"), ms=other)
    assert r.returncode == 1 and "not authenticated by this cluster's owner" in r.stdout, r.stdout
    unchanged()
    # Anyone on the network, without the key: a made-up authenticator, or none that fits.
    code, body = post_update(cluster, tmp_path, v1_doc, 9, auth="ab" * 32)
    assert code == 403 and "not authenticated" in body, body
    code, body = post_update(cluster, tmp_path, v1_doc, 9, auth="nothex")
    assert code == 400, body
    # Over the typed protocol's bounds: refused by the network process, the monitor keeps its
    # channels.
    for _ in range(12):
        code, body = post_update(cluster, tmp_path, v1_doc, 9, auth="ab" * 40)
        assert code == 400 and "64 hex digits" in body, body
    # The owner's genuine update for another cluster (one master secret may serve several).
    doc = json.dumps(v1_doc)
    code, body = post_update(cluster, tmp_path, doc, 9,
                             auth=authenticator(cluster.ms, "cd" * 32, 9, doc.encode()))
    assert code == 403 and "not authenticated" in body, body
    # Version 1 replayed (the owner's own, captured): older than the version held.
    code, body = post_update(cluster, tmp_path, v1_doc, 1)
    assert code == 403 and "older than version 2" in body, body
    # The same version with another document.
    code, body = post_update(cluster, tmp_path, v1_doc, 2)
    assert code == 409 and "another policy" in body, body
    # Authenticated, but a document that is no policy, or one that does not pin the image.
    code, body = post_update(cluster, tmp_path, '{"variant": "qemu-vtpm", "measurements": ', 5)
    assert code == 400, body
    weak = json.loads(policy.read_text())
    weak["measurements"]["11"]["warnOnly"] = True
    code, body = post_update(cluster, tmp_path, weak, 5)
    assert code == 403 and "PCR 11" in body, body
    anyak = json.loads(policy.read_text())
    anyak["akTrust"] = {"mode": "insecure-any"}
    code, body = post_update(cluster, tmp_path, anyak, 5)
    assert code == 403 and "insecure-any" in body, body
    # Another variant (a well-formed SEV-SNP policy): a running cluster's does not change.
    snp = {"variant": "sev-snp", "version": 1, "snp": {
        "allowDebug": False, "allowMigrationAgent": False, "allowSmt": True,
        "measurements": ["ab" * 48], "minGuestSvn": 0, "vmpl": 0,
        "minTcb": {"bootloader": 3, "microcode": 115, "snp": 8, "tee": 0}}}
    code, body = post_update(cluster, tmp_path, snp, 5)
    assert code == 403 and "variant" in body, body
    unchanged()
    # Each refusal is in the log, and the chain still verifies.
    reasons = [e["reason"] for e in cluster.audit() if e["event"] == "refusal"]
    assert any("policy update refused: the policy update is not authenticated" in x
               for x in reasons), reasons
    r = run("cloister", "verify", "--cluster", "--config", v2, "--state-file",
            cluster.tmp / "cloister-state.json")
    assert r.returncode == 0, r.stdout + r.stderr
    # A configuration without policyVersion is refused before anything is sent.
    r = push(cluster, write_config(cluster, [cp], None, "noversion"))
    assert r.returncode != 0 and "policyVersion" in r.stderr, r.stderr

    # The policy file replaced by hand: enforced, but no longer the pushed version (null).
    by_hand = cp.state / "by-hand.json"
    by_hand.write_text(json.dumps(dict(v1_doc, eventLog="ignore")))
    by_hand.rename(cp.state / "cluster-policy.json")
    assert members(cluster)["policyVersion"] is None
    # A damaged version record (its policy cut): every update refused until it is repaired.
    record = cp.state / "policy-version.json"
    good = record.read_bytes()
    rec = json.loads(good)
    rec["policy"] = rec["policy"][:-1]
    record.write_text(json.dumps(rec))
    r = push(cluster, write_config(cluster, [cp, w1], 3, "v3"))
    assert r.returncode == 1 and "is damaged" in r.stdout, r.stdout + r.stderr
    assert members(cluster)["policyVersion"] is None
    record.write_bytes(good)
    r = push(cluster, write_config(cluster, [cp, w1], 3, "v3"))
    assert r.returncode == 0 and members(cluster)["policyVersion"] == 3, r.stdout + r.stderr


def test_push_to_two_join_services_with_one_down_reports_each_and_completes_when_run_again(
        cluster, tmp_path):
    cp1, cp2, cp3 = cluster.node("cp-1"), cluster.node("cp-2"), cluster.node("cp-3")
    policy = cluster.policy([cp1, cp2, cp3])
    cluster.init(cp1, policy)
    cluster.join(cp2, policy, role="control-plane")
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    v2 = write_config(cluster, [cp1, cp2, cp3], 2, "v2",
                      change=lambda a: a.update(eventLog="required"))
    # cp-2 down.
    cp2.proc.send_signal(signal.SIGTERM)
    cp2.proc.wait(timeout=20)
    r = push(cluster, v2)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(rf"{re.escape(cp1.url())}\s+0\s+2\s+updated", r.stdout), r.stdout
    assert re.search(rf"{re.escape(cp2.url())}\s+-\s+-\s+not reached", r.stdout), r.stdout
    assert "1 of 2 join services hold policy version 2" in r.stderr, r.stderr
    # The same as JSON (valid against docs/json-result.schema.json).
    r = push(cluster, v2, "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    assert doc["version"] == 2 and doc["verdict"]["result"] == "fail"
    assert {(j["joinService"], j["before"], j["now"], j["result"]) for j in doc["joinServices"]} \
        == {(cp1.url(), 2, 2, "unchanged"), (cp2.url(), None, None, "failed")}, doc
    # cp-2 back (power cycle, rejoin through cp-1, its join service again).
    reboot(cp2)
    restart(cp2, cluster, policy)
    cp2.wait_for(r"serving joins on 127\.0\.0\.1:" + cp2.port, timeout=90)
    assert members(cluster, cp2)["policyVersion"] == 0
    r = push(cluster, v2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"{re.escape(cp1.url())}\s+2\s+2\s+unchanged", r.stdout), r.stdout
    assert re.search(rf"{re.escape(cp2.url())}\s+0\s+2\s+updated", r.stdout), r.stdout
    st = status(cluster, tmp_path, v2)
    assert st[cp1.url()]["policyVersion"] == st[cp2.url()]["policyVersion"] == 2
    assert st[cp1.url()]["policyDigest"] == st[cp2.url()]["policyDigest"]
    assert (cp1.state / "cluster-policy.json").read_bytes() == \
        (cp2.state / "cluster-policy.json").read_bytes()
    (update,) = policy_updates(audit_entries(cp2.state / "audit.log"))
    assert "policy version 2" in update["reason"]
    # A control plane that joins later starts at that version (it comes in its ticket with the
    # policy): the owner's older update, replayed to it, is refused from the start.
    cluster.join(cp3, policy, role="control-plane")
    cp3.port = cp3.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    assert members(cluster, cp3)["policyVersion"] == 2
    assert (cp3.state / "policy-version.json").read_bytes() == \
        (cp1.state / "policy-version.json").read_bytes()
    v1_doc = json.loads(policy.read_text())
    code, body = post_update(cluster, tmp_path, v1_doc, 1, url=cp3.url())
    assert code == 403 and "older than version 2" in body, body
