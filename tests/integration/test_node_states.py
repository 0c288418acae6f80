# SPDX-License-Identifier: Apache-2.0
"""States, not PCRs: a node that is already a member, one waiting for 'cloister recover', one
recovered already, one in no cluster yet, and a join service that refuses a node because of its
policy, each said in words with the next step, through the CLI (and the joining node's log). The
PCR values stay available under -v. Nodes are processes on loopback with their own swtpm (the
test_join.py cluster)."""
import hashlib
import json
import os
import re
import subprocess

import pytest

from conftest import BUILD, run
from test_join import Cluster, member_policy, read_pcr15, reboot, restart


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def node_state(node, policy, *extra):
    """The state 'cloister verify --node -o json' reports for node."""
    r = run("cloister", "verify", "--node", node.url(), "--policy", policy, *extra, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["state"]


def errors(r):
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


def fresh_apply(cluster, node, policy, tmp_path, *extra):
    """'cloister apply' from a new workspace, as an owner who does not know the node's state."""
    ws = tmp_path / "elsewhere"
    ws.mkdir(exist_ok=True)
    ms = ws / "cloister-mastersecret.json"
    if not ms.exists():
        assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    secret = ws / "init-secret"
    if not secret.exists():
        assert run("cloister", "init-secret", "generate", "--file", secret).returncode == 0
    r = run("cloister", *extra, "apply", "--endpoint", node.url(), "--policy", policy,
            "--init-secret-file", secret, "--master-secret", ms, cwd=ws)
    return r, ws


def test_apply_to_a_member_says_it_is_already_one_and_sends_nothing(cluster, tmp_path):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    r, ws = fresh_apply(cluster, w1, policy, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = errors(r)
    assert f"{w1.url()} is already a member of a cluster" in line, line
    assert "nothing to initialise, nothing was sent" in line and "cloister verify --node" in line
    # In words: no PCR on the line, and no state written for a cluster that was never made.
    assert "PCR" not in r.stderr, r.stderr
    assert not (ws / "cloister-state.json").exists()
    # The PCR detail under -v.
    r, _ = fresh_apply(cluster, w1, policy, tmp_path, "-v")
    assert r.returncode == 1 and re.search(r"PCR 15 is [0-9a-f]{64}, expected 0{64}", r.stderr), \
        r.stderr
    # verify says the state too.
    assert node_state(w1, member_policy(cluster, tmp_path), "--cluster-id", cluster.cid) == \
        "member"


def outage(cluster, policy, nodes):
    for n in nodes:
        n.wait_for("serving node state|serving joins")
    for n in nodes:
        reboot(n)
    restart(cluster.cp, cluster, policy)
    cluster.cp.wait_for(r"serving recovery on 127\.0\.0\.1:" + cluster.cp.port)


def test_apply_to_a_control_plane_waiting_for_recovery_names_cloister_recover(cluster, tmp_path):
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    outage(cluster, policy, [cp])
    r, ws = fresh_apply(cluster, cp, policy, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = errors(r)
    assert "waits for 'cloister recover'" in line and "nothing was sent" in line, line
    assert f"cloister recover --node {cp.url()}" in line, line
    assert not (ws / "cloister-state.json").exists()
    assert node_state(cp, policy) == "awaiting-recovery"


def test_recover_twice_says_the_node_recovered_already(cluster, tmp_path):
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    outage(cluster, policy, [cp])
    args = ("recover", "--node", cp.url().removeprefix("https://"), "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    r = run("cloister", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    cp.wait_for("serving joins on")
    r = run("cloister", *args)
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = errors(r)
    assert f"is a member of cluster {cluster.cid[:16]}... again" in line, line
    assert "nothing to recover, nothing was sent" in line and "cloister verify --cluster" in line
    assert "PCR" not in r.stderr


def test_a_node_waiting_for_recovery_whose_pcr15_is_set_refuses_the_right_master_secret(
        cluster, tmp_path):
    """Recovery is served only while PCR 15 is zero. Here PCR 15 of a control plane waiting for
    recovery takes this cluster's value from outside (as no node does), and the owner's right
    master secret comes raw (join-probe: the CLI would see PCR 15 set and refuse first). The node
    answers 409 already-member and recovers nothing: PCR 15 unchanged, no join service started."""
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    outage(cluster, policy, [cp])
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
        bytes.fromhex(cluster.cid)).hexdigest()], check=True, capture_output=True,
        env=dict(os.environ, TPM2TOOLS_TCTI=cp.tpm.tcti))
    pcr15 = read_pcr15(cp.tpm.tcti)
    secret = json.loads(cluster.ms.read_text())
    body = tmp_path / "recover.json"
    body.write_text(json.dumps({"masterSecret": secret["key"], "salt": secret["salt"]}))
    r = subprocess.run([str(BUILD / "tests" / "join-probe"), "--no-attest", "--policy", str(policy),
                        "--cluster-id", cluster.cid, "--url", cp.url(), "--post", "/v1/recover",
                        "--body", str(body)], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "HTTP 409" in out, out
    assert "already-member" in out and "nothing to recover" in out, out
    assert read_pcr15(cp.tpm.tcti) == pcr15
    assert "serving joins" not in cp.log.read_text().split("serving recovery")[-1]


def test_recovery_refuses_a_master_secret_that_opens_the_disk_but_derives_another_cluster(
        cluster, tmp_path):
    """The master secret must be the recorded cluster's, not only open the disk: here the node's
    recorded measurement salt was changed (a state that does not match its disk), so the owner's
    secret still opens the disk but derives another cluster ID. Recovery is refused, PCR 15 stays
    zero, the recorded state is untouched."""
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    outage(cluster, policy, [cp])
    st = cp.state / "node-state.json"
    doc = json.loads(st.read_text())
    doc["measurementSalt"] = os.urandom(len(bytes.fromhex(doc["measurementSalt"]))).hex()
    st.write_text(json.dumps(doc))
    before = st.read_text()
    r = run("cloister", "recover", "--node", cp.url().removeprefix("https://"), "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "this master secret is not the recorded cluster's" in r.stderr, r.stderr
    assert read_pcr15(cp.tpm.tcti) == "00" * 32
    assert st.read_text() == before
    assert "serving joins" not in cp.log.read_text().split("serving recovery")[-1]


def test_recover_of_a_node_in_no_cluster_says_so_with_the_nodes_own_words(cluster, tmp_path):
    cp, fresh = cluster.node("cp-1"), cluster.node("fresh")
    policy = cluster.policy([cp, fresh])
    cluster.init(cp, policy)
    h = run("cloister", "init-secret", "generate", "--file", tmp_path / "fresh-secret").stdout.strip()
    fresh.start({"name": "fresh", "role": "control-plane", "initSecretHash": h})
    fresh.port = fresh.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
    r = run("cloister", "recover", "--node", f"127.0.0.1:{fresh.port}", "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = errors(r)
    # The node's refusal (HTTP 409, code not-initialized) in its own words.
    assert "node fresh is in no cluster yet: nothing to recover" in line, line
    assert f"cloister apply --endpoint 127.0.0.1:{fresh.port}" in line, line
    assert "nothing was changed" in line
    assert "POST /v1/recover refused" in fresh.log.read_text()
    assert node_state(fresh, policy) == "uninitialized"


def test_a_join_refused_by_the_policy_says_so_at_the_joining_node(cluster):
    """The owner's policy does not pin this worker's attestation key: the join service refuses
    its evidence in the handshake. The worker's log says that its evidence was refused and what
    to do, not that a connection closed; the join service's audit log has the check."""
    cp, ok, stranger = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-9")
    policy = cluster.policy([cp, ok])
    cluster.init(cp, policy)
    cluster.join(stranger, policy, timeout=3)
    assert stranger.proc.wait(timeout=60) != 0
    log = stranger.log.read_text()
    assert "refused this node's evidence: it does not meet the policy there" in log, log
    assert "have the owner change the cluster's policy" in log
    assert "connection closed before an answer" not in log, log
    (refusal,) = {e["reason"] for e in cluster.audit() if e["verdict"] == "refused"}
    assert "attestation key is not a key pinned in the policy" in refusal, refusal


def test_a_join_service_of_another_image_is_named_in_words_with_the_pcr(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1", alter=9)
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy, timeout=2)
    assert w.proc.wait(timeout=60) != 0
    log = w.log.read_text()
    assert re.search(r"the join service 127\.0\.0\.1:\d+ runs another image than this node "
                     r"\(PCR 9 differs", log), log
    assert "boot this node from the cluster's image" in log
