# SPDX-License-Identifier: Apache-2.0
"""The node's log after a failed join: every node's metadata carries the owner's init-secret hash
(the same for the whole cluster), and a joining node's bootstrapper answers POST /v1/log with this
boot's log records to whoever proves the init secret, as /v1/init does (same scrypt check, same
per-address backoff). With --failed-join-linger it keeps serving after its join gave up.
'cloister logs' attests the node against the workspace's policy (PCR 15 zero, or this cluster's
ID) before it sends anything, and saves the log in the workspace (0600). Real bootstrappers, each
with its own swtpm; kubeadm is the test double."""
import json
import os
import socket
import stat
import time

import json_schema
from conftest import run
from test_join import cluster  # noqa: F401 (fixture)
from test_node_log import secrets_of


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hash_of(secret):
    r = run("cloister", "init-secret", "hash", "--file", secret)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def start_worker(cluster, w, policy, *, init_hash, env_extra=None, timeout=30):  # noqa: F811
    meta = {"name": w.name, "role": "worker", "peers": [f"127.0.0.1:{cluster.cp.port}"],
            "clusterId": cluster.cid}
    if init_hash:
        meta["initSecretHash"] = init_hash
    env = dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cluster.cp.state), **(env_extra or {}))
    w.start(meta, "--join-policy", str(policy), "--join-timeout", str(timeout),
            "--failed-join-linger", "120", env=env)


def logs(cluster, w, *args, secret=None):  # noqa: F811
    """The owner's 'cloister logs', run in the cluster's workspace (state file, init secret)."""
    return run("cloister", "logs", "--node", f"127.0.0.1:{w.port}", "--policy",
               cluster.tmp / "policy.json", "--init-secret-file",
               secret or cluster.tmp / "init-secret", *args, cwd=cluster.tmp)


def failed_join(cluster, tmp_path, name="worker-1", init_hash=True):  # noqa: F811
    """A worker whose kubeadm join fails (after PCR 15 was extended): it keeps serving."""
    cp, w = cluster.node("cp-1"), cluster.node(name)
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    flag = tmp_path / "fail-once"
    flag.write_text("")
    start_worker(cluster, w, policy,
                 init_hash=hash_of(cluster.tmp / "init-secret") if init_hash else None,
                 env_extra={"KUBEADM_DOUBLE_FAIL_ONCE": str(flag)})
    w.port = w.wait_for(r"join failed; serving node state and log on 127\.0\.0\.1:(\d+)").group(1)
    assert w.proc.poll() is None
    return w


def test_a_failed_joins_log_is_saved_for_the_owner_without_secrets(cluster, tmp_path):  # noqa: F811
    w = failed_join(cluster, tmp_path)
    r = logs(cluster, w)
    assert r.returncode == 0, r.stdout + r.stderr
    saved = cluster.tmp / f"cloister-node-127.0.0.1-{w.port}.log"
    assert f"is saved in {saved.name}" in r.stdout and "state join-failed" in r.stdout, r.stdout
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    text = saved.read_text()
    # Why the join failed, as the node logged it, and its own records only.
    assert "kubeadm join failed" in text, text
    node_out = w.log.read_text()
    for line in text.splitlines():
        assert line.split(": ", 1)[1] in node_out, line
    for s in secrets_of(cluster.ms, cluster.tmp / "init-secret"):
        assert s not in text and s not in node_out
    # PCR 15 is held to zero or to this cluster's ID: without the state file that names the
    # cluster, the node (PCR 15 extended by its join) is refused before anything is sent.
    elsewhere = tmp_path / "no-state"
    elsewhere.mkdir()
    r = run("cloister", "logs", "--node", f"127.0.0.1:{w.port}", "--policy",
            cluster.tmp / "policy.json", "--init-secret-file", cluster.tmp / "init-secret",
            cwd=elsewhere)
    assert r.returncode == 1 and "nothing was sent" in r.stderr and "PCR 15" in r.stderr, r.stderr
    assert not list(elsewhere.iterdir())
    assert w.log.read_text().count("log sent to the owner") == 1
    # The node says so in words: verify -o json names its state, in the documented schema.
    r = run("cloister", "-o", "json", "verify", "--node", f"127.0.0.1:{w.port}", "--policy",
            cluster.tmp / "policy.json", cwd=cluster.tmp)
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    assert doc["state"] == "join-failed", r.stdout
    # --file OUT: saved there instead.
    out = tmp_path / "w1.log"
    r = logs(cluster, w, "--file", out)
    assert r.returncode == 0 and f"is saved in {out}" in r.stdout, r.stdout + r.stderr
    assert "kubeadm join failed" in out.read_text()


def test_a_node_waiting_to_join_gives_its_log_with_pcr15_still_zero(cluster, tmp_path):  # noqa: F811
    """The join service refuses the worker (its AK is not in the cluster's policy) and the
    worker keeps asking: it is attested with PCR 15 zero, and its log says why it waits."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp]))
    owner_policy = cluster.policy([cp, w])  # the owner's policy pins the worker's AK
    w.port = free_port()
    start_worker(cluster, w, owner_policy, init_hash=hash_of(cluster.tmp / "init-secret"),
                 timeout=120)
    w.wait_for(r"refused this node")
    r = logs(cluster, w)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "state joining" in r.stdout, r.stdout
    text = (cluster.tmp / f"cloister-node-127.0.0.1-{w.port}.log").read_text()
    assert "refused this node" in text, text


def test_a_wrong_init_secret_gets_no_log_and_is_slowed_down(cluster, tmp_path):  # noqa: F811
    w = failed_join(cluster, tmp_path)
    other = tmp_path / "other-secret"
    assert run("cloister", "init-secret", "generate", "--file", other).returncode == 0
    r = logs(cluster, w, secret=other)
    assert r.returncode == 1 and "refused its log (HTTP 403)" in r.stderr, r.stderr
    assert "init secret does not match" in r.stderr, r.stderr
    assert not list(cluster.tmp.glob("cloister-node-*.log"))
    # Right after a wrong one, the same address waits its turn (429, as for init): the owner's
    # CLI is deferred, then served.
    start = time.monotonic()
    r = run("cloister", "-v", "logs", "--node", f"127.0.0.1:{w.port}", "--policy",
            cluster.tmp / "policy.json", "--init-secret-file", cluster.tmp / "init-secret",
            cwd=cluster.tmp)
    assert r.returncode == 0, r.stderr
    assert "The node defers secrets (too many wrong init secrets from 127.0.0.1" in r.stderr, r.stderr
    assert time.monotonic() - start >= 0.9
    assert "log request refused: " in w.log.read_text()


def test_a_node_without_an_init_secret_hash_gives_its_log_to_no_one(cluster, tmp_path):  # noqa: F811
    w = failed_join(cluster, tmp_path, init_hash=False)
    r = logs(cluster, w)
    assert r.returncode == 1 and "HTTP 403" in r.stderr and "no init-secret hash" in r.stderr, r.stderr
    assert not list(cluster.tmp.glob("cloister-node-*.log"))


def test_a_node_that_does_not_attest_as_the_policy_says_never_gets_the_secret(cluster, tmp_path):  # noqa: F811
    """A worker booted from another image (PCR 4 differs) whose metadata holds the right hash:
    the CLI refuses it before sending anything, so no POST /v1/log ever reaches it."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1", alter=4)
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    start_worker(cluster, w, policy, init_hash=hash_of(cluster.tmp / "init-secret"), timeout=3)
    w.port = w.wait_for(r"join failed; serving node state and log on 127\.0\.0\.1:(\d+)").group(1)
    r = logs(cluster, w)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "was not attested as the policy says, so nothing was sent" in r.stderr, r.stderr
    assert "PCR 4" in r.stderr, r.stderr
    assert not list(cluster.tmp.glob("cloister-node-*.log"))
    time.sleep(0.5)
    out = w.log.read_text()
    assert "log request" not in out and "log sent" not in out, out


def test_logs_usage_errors_and_json(cluster, tmp_path):  # noqa: F811
    r = run("cloister", "logs", cwd=tmp_path)
    assert r.returncode == 2 and "--node" in r.stderr, r.stderr
    r = run("cloister", "logs", "--node", "127.0.0.1:99999", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    r = run("cloister", "-o", "json", "logs", "--node", "127.0.0.1:1", cwd=tmp_path)
    assert r.returncode == 2 and "prints no JSON result" in r.stderr, r.stderr
    assert json.loads(r.stdout)["error"]
    r = run("cloister", "logs", "--help")
    assert r.returncode == 0 and "Usage: cloister logs --node" in r.stdout
