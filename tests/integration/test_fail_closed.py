# SPDX-License-Identifier: Apache-2.0
"""The node's side of re-attestation (docs/reattestation.md, "The node's side: fail-closed"): a
member started with --fail-closed-after SEC attests its join services again and again (aTLS, GET
/v1/node, the policy its join used: its own image PCRs, PCR 15 = its cluster). When none has
passed for more than SEC seconds (the join service stopped, or something else answering at its
address), it stops serving what it serves beyond its evidence (POST /v1/log: 'cloister logs' is
refused) and its GET /v1/node says fail-closed; once one passes again it serves again. Real
bootstrappers and join service, each node with its own swtpm; kubeadm is the test double."""
import json
import os
import re
import subprocess
import time

from conftest import BUILD, run
from test_join import cluster, start_join_service, stop_join_service  # noqa: F401 (fixture)
from test_node_log_join import hash_of, logs

FAIL_CLOSED_AFTER = 4


def node_answer(cluster, w):  # noqa: F811
    """The worker's GET /v1/node, its evidence verified (this cluster's PCR 15)."""
    p = subprocess.run([str(BUILD / "tests" / "join-probe"), "--policy",
                        str(cluster.tmp / "policy.json"), "--cluster-id", cluster.cid,
                        "--url", f"https://127.0.0.1:{w.port}", "--no-attest", "--get", "/v1/node"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout[p.stdout.index("{"):])


def watch(cluster, w):  # noqa: F811
    return node_answer(cluster, w)["joinServiceAttestation"]


def wait_until(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_member_that_cannot_attest_its_join_service_fails_closed_then_serves_again(
        cluster, tmp_path):  # noqa: F811
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    meta = {"name": w.name, "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
            "clusterId": cluster.cid, "initSecretHash": hash_of(cluster.tmp / "init-secret")}
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30", "--fail-closed-after",
            str(FAIL_CLOSED_AFTER), "--join-service-attest-interval", "1",
            env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    w.wait_for(r"attesting 1 join service\(s\) every 1 s; fail-closed after 4 s")

    # The join service passes: the node serves its log to the owner.
    s = wait_until("a pass", lambda: (lambda x: x if x["passes"] >= 1 else None)(watch(cluster, w)))
    assert s["failClosed"] is False and s["lastJoinService"] == f"127.0.0.1:{cp.port}"
    assert s["failClosedAfter"] == FAIL_CLOSED_AFTER and s["lastAttested"]
    r = logs(cluster, w)
    assert r.returncode == 0, r.stdout + r.stderr

    # The join service stops: within the grace period the node still serves...
    stop_join_service(cp)
    stopped = time.time()
    r = logs(cluster, w)
    assert r.returncode == 0, r.stdout + r.stderr
    # ...past it, it is fail-closed: the log is refused, its status answer says why.
    s = wait_until("fail-closed", lambda: (lambda x: x if x["failClosed"] else None)(
        watch(cluster, w)), timeout=30)
    took = time.time() - stopped
    assert FAIL_CLOSED_AFTER <= took <= FAIL_CLOSED_AFTER + 8, took
    assert s["failClosedSince"] and f"127.0.0.1:{cp.port}" in s["lastError"], s
    r = logs(cluster, w)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "fail-closed" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "FAIL-CLOSED: no join service of this cluster has passed attestation" in w.log.read_text()
    assert re.search(r"POST /v1/log refused: this node is fail-closed", w.log.read_text())
    # GET /v1/node (the evidence) is still served: the owner can still attest the node.
    assert node_answer(cluster, w)["state"] == "member"

    # The join service is back: the next pass opens the node again.
    start_join_service(cp)
    s = wait_until("open again", lambda: (lambda x: x if not x["failClosed"] else None)(
        watch(cluster, w)), timeout=30)
    assert s["lastError"] == "" and s["failClosedSince"] is None
    r = logs(cluster, w)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passes attestation again: serving again" in w.log.read_text()


def test_an_impostor_at_the_join_services_address_does_not_keep_the_node_open(
        cluster, tmp_path):  # noqa: F811
    """Something that answers at the join service's address but is not a join service of this
    cluster (here a genuine node of the same image whose key the owner trusts, in no cluster:
    PCR 15 zero) does not count as a pass."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    impostor = cluster.node("impostor")
    policy = cluster.policy([cp, w, impostor])
    cluster.init(cp, policy)
    meta = {"name": w.name, "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
            "clusterId": cluster.cid, "initSecretHash": hash_of(cluster.tmp / "init-secret")}
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30", "--fail-closed-after",
            str(FAIL_CLOSED_AFTER), "--join-service-attest-interval", "1",
            env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    wait_until("a pass", lambda: watch(cluster, w)["passes"] >= 1)
    # The join service stops; a fresh node (PCR 15 zero: in no cluster) serves init on its port.
    stop_join_service(cp)
    impostor.port = cp.port
    impostor.start({"name": "impostor", "role": "control-plane"}, "--insecure-no-init-secret")
    impostor.wait_for(r"serving init on 127\.0\.0\.1:" + str(cp.port))
    s = wait_until("fail-closed", lambda: (lambda x: x if x["failClosed"] else None)(
        watch(cluster, w)), timeout=30)
    assert "PCR 15" in s["lastError"], s
    r = logs(cluster, w)
    assert r.returncode != 0 and "fail-closed" in r.stdout + r.stderr, r.stdout + r.stderr
