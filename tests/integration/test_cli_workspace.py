# SPDX-License-Identifier: Apache-2.0
"""The workspace (docs/workflows.md, "The workspace"): every verb takes its defaults from the
current directory or from -C DIR / --workspace DIR, given before or after the verb, as git's -C.
A real cluster on loopback (two nodes, each its own swtpm, the first initialised by `cloister
apply` run with no flag but the endpoint, the second joined through its join service); then
`verify --cluster`, `verify --node` and `status` with no flag at all, from the workspace and with
-C from elsewhere."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import binary, run
from test_join import Node, pcr15_expected

WORKSPACE_FILES = ("cloister.json", "cloister-state.json", "cloister-mastersecret.json",
                   "cloister-init-secret", "cloister-admin.conf")


def owner_policy(nodes):
    """The first node's measurements (PCR 15 zero: not a member yet), every node's AK pinned."""
    p = json.loads(nodes[0].policy.read_text())
    p["akTrust"]["akPublic"] = [json.loads(n.policy.read_text())["akTrust"]["akPublic"]
                                for n in nodes]
    return p


@pytest.fixture(scope="module")
def member(tmp_path_factory):
    """A workspace whose cluster is up: (workspace, control plane, worker, cluster ID)."""
    tmp = tmp_path_factory.mktemp("workspace")
    ws, nodes_dir = tmp / "ws", tmp / "nodes"
    ws.mkdir()
    nodes_dir.mkdir()
    cp, worker = Node(nodes_dir / "cp-1", "cp-1"), Node(nodes_dir / "worker-1", "worker-1")
    try:
        # The owner's files, each made by cloister itself into the workspace named by -C.
        assert run("cloister", "-C", ws, "master-secret", "generate").returncode == 0
        h = run("cloister", "init-secret", "generate", "-C", ws)
        assert h.returncode == 0, h.stderr
        r = run("cloister", "--workspace", ws, "config", "generate", "qemu", "--evidence",
                cp.evidence)
        assert r.returncode == 0, r.stderr
        config = json.loads((ws / "cloister.json").read_text())
        config["attestation"] = owner_policy([cp, worker])
        (ws / "cloister.json").write_text(json.dumps(config))
        join_policy = nodes_dir / "join-policy.json"
        join_policy.write_text(json.dumps(config["attestation"]))

        cp.start({"name": "cp-1", "role": "control-plane", "initSecretHash": h.stdout.strip()})
        cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
        # apply from the workspace: policy, secrets, state file and kubeconfig all its own.
        r = run("cloister", "apply", "--endpoint", cp.url(), cwd=ws)
        assert r.returncode == 0, r.stdout + r.stderr
        cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
        for f in WORKSPACE_FILES:
            assert (ws / f).exists(), f
        cp.wait_for(r"serving joins on 127\.0\.0\.1:" + cp.port)
        worker.start({"name": "worker-1", "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
                      "clusterId": cid}, "--join-policy", str(join_policy), "--join-timeout", "60",
                     env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
        worker.port = worker.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
        yield ws, cp, worker, cid
    finally:
        worker.stop()
        cp.stop()


def elsewhere(tmp_path):
    """A directory with no workspace file: a run there sees only what -C names."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def assert_cluster_verified(r, cid):
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"cluster {cid}" in r.stdout
    assert re.search(r"cp-1\s+control-plane\s+OK", r.stdout), r.stdout
    assert re.search(r"worker-1\s+worker\s+OK", r.stdout), r.stdout
    assert r.stdout.rstrip().splitlines()[-1] == "Verification OK"


def test_verify_cluster_needs_no_flag_in_the_workspace(member):
    ws, _, _, cid = member
    assert_cluster_verified(run("cloister", "verify", "--cluster", cwd=ws), cid)


def test_verify_cluster_with_workspace_given_before_or_after_the_verb(member, tmp_path):
    ws, _, _, cid = member
    away = elsewhere(tmp_path)
    for args in (["-C", ws, "verify", "--cluster"], ["verify", "--cluster", "-C", ws],
                 ["--workspace", ws, "verify", "--cluster"],
                 ["verify", f"--workspace={ws}", "--cluster"]):
        assert_cluster_verified(run("cloister", *args, cwd=away), cid)
    # Without it, the same command run there has no workspace file to go by.
    r = run("cloister", "verify", "--cluster", cwd=away)
    assert r.returncode == 2 and "cloister.json" in r.stderr, r.stderr


def test_verify_node_takes_the_cluster_id_from_the_workspace_state_file(member, tmp_path):
    """PCR 15 is checked against the recorded cluster ID: with nothing but --node."""
    ws, _, worker, cid = member
    for kw in ({"cwd": ws}, {"cwd": elsewhere(tmp_path)}):
        args = ["verify", "--node", f"127.0.0.1:{worker.port}"]
        if kw["cwd"] != ws:
            args = ["-C", ws] + args
        r = run("cloister", *args, **kw)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"PASS\s+pcr\[15\]", r.stdout), r.stdout
        assert r.stdout.rstrip().splitlines()[-1] == "Verification OK"


def test_verify_node_fails_when_the_workspace_records_another_cluster(member, tmp_path):
    """The ID really comes from the state file: another cluster's ID makes PCR 15 fail."""
    ws, _, worker, cid = member
    other = tmp_path / "other"
    shutil.copytree(ws, other)
    state = json.loads((other / "cloister-state.json").read_text())
    state["clusterId"] = "ab" * 32
    (other / "cloister-state.json").write_text(json.dumps(state))
    r = run("cloister", "-C", other, "verify", "--node", f"127.0.0.1:{worker.port}")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"FAIL\s+pcr\[15\]", r.stdout), r.stdout
    # ... against the value for the ID the state file names, not the configuration's policy's.
    assert pcr15_expected("ab" * 32) in r.stdout, r.stdout


def test_status_needs_no_flag_in_the_workspace(member, tmp_path):
    ws, _, _, _ = member
    for args, cwd in ((["status"], ws), (["status", "-C", ws], elsewhere(tmp_path))):
        r = run("cloister", *args, cwd=cwd)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"cp-1\s+control-plane", r.stdout), r.stdout
        assert re.search(r"worker-1\s+worker", r.stdout), r.stdout


OWNER_CALLS = (["status"], ["node", "remove", "no-such-node"], ["policy", "push"])


def test_verbs_that_call_the_cluster_refuse_a_cluster_id_other_than_the_state_files(member,
                                                                                   tmp_path):
    """status, node remove and policy push take --node, --cluster-id and --state-file alike
    (cli_target_resolve): an ID that contradicts the workspace's state file is refused before any
    connection, naming the verb and the file."""
    ws, cp, _, cid = member
    # A copy whose configuration could be pushed (policy push wants a version first).
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    config = json.loads((copy / "cloister.json").read_text())
    config["policyVersion"] = 1
    (copy / "cloister.json").write_text(json.dumps(config))
    other = ("0" if cid[0] != "0" else "1") + cid[1:]
    for verb in OWNER_CALLS:
        r = run("cloister", "-C", copy, *verb, "--cluster-id", other)
        assert r.returncode == 2, (verb, r.stdout, r.stderr)
        name = " ".join(verb[:2]) if verb[0] != "node" else "node remove"
        assert f"{name}: --cluster-id differs from the cluster ID in cloister-state.json" \
            in r.stderr, (verb, r.stderr)
    # Nothing was removed or pushed: the member list is as it was.
    r = run("cloister", "-C", ws, "status")
    assert r.returncode == 0 and re.search(r"worker-1\s+worker", r.stdout), r.stdout + r.stderr


def test_verbs_that_call_the_cluster_take_node_alone_with_the_state_files_cluster_id(member):
    """--node without --cluster-id: the join service named, attested against the ID the state
    file records (node remove then reaches it: the name is not a member, nothing removed)."""
    ws, cp, _, _ = member
    r = run("cloister", "-C", ws, "node", "remove", "no-such-node", "--node", cp.url())
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no-such-node is not a member of the cluster" in r.stderr, r.stderr
    assert "worker-1" in r.stderr, r.stderr


def test_apply_again_in_the_workspace_only_attests_the_member(member, tmp_path):
    """The state file gives the endpoint, cloister.json the policy: nothing to type."""
    ws, _, _, cid = member
    r = run("cloister", "apply", "-C", ws, cwd=elsewhere(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already initialised" in r.stdout and cid in r.stdout


def test_relative_paths_on_the_command_line_are_the_workspaces(member, tmp_path):
    """As git -C: the run happens in DIR, so a relative --state-file names DIR's file."""
    ws, _, _, cid = member
    r = run("cloister", "-C", ws, "verify", "--cluster", "--config", "cloister.json",
            "--state-file", "cloister-state.json", cwd=elsewhere(tmp_path))
    assert_cluster_verified(r, cid)


def test_a_missing_workspace_is_a_usage_error_naming_it(tmp_path):
    for args in (["-C", tmp_path / "nope", "status"], ["status", "--workspace", tmp_path / "nope"]):
        r = run("cloister", *args)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("error:") == 1 and str(tmp_path / "nope") in r.stderr
        assert "does not exist" in r.stderr
    (tmp_path / "file").write_text("")
    r = run("cloister", "-C", tmp_path / "file", "status")
    assert r.returncode == 2 and "is not a directory" in r.stderr, r.stderr
    r = run("cloister", "status", "-C")
    assert r.returncode == 2 and "needs a directory" in r.stderr, r.stderr


def test_an_unreadable_workspace_is_a_failure_naming_it(tmp_path):
    """As an unprivileged user: a directory it may not enter."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    exe = shutil.which("setpriv")
    if os.geteuid() != 0 or not exe:
        pytest.skip("needs root and setpriv to run as another user")
    r = subprocess.run([exe, "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(binary("cloister")), "-C", str(locked), "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert str(locked) in r.stderr and "Permission denied" in r.stderr, r.stderr
    assert r.stderr.count("error:") == 1


def test_options_after_a_double_dash_are_not_taken_as_the_workspace(tmp_path):
    """'--' ends cloister's own options: what follows is another program's ('mini exec')."""
    r = run("cloister", "-C", tmp_path, "frobnicate", "--", "-C", "/nonexistent")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, r.stderr


def test_recover_without_node_attests_the_control_plane_the_state_file_records(member, tmp_path):
    """Nothing but the workspace: the endpoint comes from cloister-state.json. The node is a
    running member, so recover refuses it before sending anything, naming that endpoint."""
    ws, cp, _, _ = member
    r = run("cloister", "-C", ws, "recover", cwd=elsewhere(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"no --node: the first control plane cloister-state.json records, {cp.url()}" in \
        r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors and cp.url() in r.stderr, r.stderr
