# SPDX-License-Identifier: Apache-2.0
"""`cloister upgrade apply --image-id` on a cluster made by `cloister create` (docs/upgrade.md,
"Clouds"), and the workspace's lock (one command changes a cluster at a time).

No cloud exists here. The Terraform workspace is the one `cloister create` and `create --workers`
make with the terraform test double (tests/doubles/terraform: exact argv and flags, -chdir, the
variables checked against the GCP module's declarations); the cluster behind it is a 2-node
namespace mini (node1 the single control plane, node2 a worker) whose state file records the
workspace as create's does. The double plays the managed instance groups: an apply that gives a
group a new image recreates that group's nodes one at a time, only if the module's update policy
is PROACTIVE, by `cloister mini reboot` of the node on the image version the test maps the image
ID to. What is checked is what the cluster shows: attestation with the new measurements, the
policy versions, the variables terraform was given and the order of everything."""
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT, binary, run
from test_create import INFRA, Env
from test_mini import mini, mini_env
from test_upgrade_apply import signed_measurements

PORT = 9743
OLD = "projects/my-project/global/images/cloister-1"
NEW = "projects/my-project/global/images/cloister-2"
HOLDER = re.compile(r"pid (\d+) \('cloister (upgrade apply|policy push)', since \d+\)")


@pytest.fixture
def cloud(tmp_path):
    """The mini cluster, with the Terraform workspace that create and create --workers made for
    it, and the double set to recreate its nodes."""
    ws = tmp_path / "ws"
    ws.mkdir()
    env = mini_env(tmp_path, PORT)
    r = mini(env, ws, "up", "--netns", "--nodes", "2", timeout=240)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        state = json.loads((ws / "cloister-state.json").read_text())
        cid = state["clusterId"]
        # create, then (as apply records the cluster ID) create --workers, in the owner's
        # directory beside; its workspace and its infrastructure record become the cluster's.
        owner = Env(tmp_path)
        owner.config(workerCount=1, imageId=OLD)
        r = owner.cloister("create", "-y")
        assert r.returncode == 0, r.stdout + r.stderr
        st = json.loads((owner.dir / "cloister-state.json").read_text())
        st.update(status="initialized", clusterId=cid)
        (owner.dir / "cloister-state.json").write_text(json.dumps(st))
        r = owner.cloister("create", "--workers", "-y")
        assert r.returncode == 0, r.stdout + r.stderr
        shutil.copytree(owner.dir / "cloister-terraform", ws / "cloister-terraform",
                        symlinks=True)
        state["infrastructure"] = st["infrastructure"]
        (ws / "cloister-state.json").write_text(json.dumps(state))
        calls = tmp_path / "calls.log"
        calls.unlink()
        env = dict(env, TF_DOUBLE_LOG=str(calls), TF_DOUBLE_ROLL=json.dumps({
            "nodes": {"worker": ["10.77.0.12:%d" % PORT], "control-plane": ["10.77.0.11:%d" % PORT]},
            "images": {NEW: "2", OLD: "1"},
            "command": [str(binary("cloister")), "-C", str(ws), "mini", "reboot", "{node}",
                        "--image-version", "{version}", "--join-policy",
                        str(ws / "cloister-upgrade-policy.json")]}))
        yield ws, env, calls
    finally:
        mini(env, ws, "down")


def owner_run(ws, env, *args, timeout=400):
    return subprocess.run([str(binary("cloister")), "-C", str(ws), "mini", "exec", "--", *args],
                          cwd=ws.parent, env=env, capture_output=True, text=True, timeout=timeout)


def apply_args(m, pub, *extra):
    return ["cloister", "upgrade", "apply", "--measurements", str(m), "--pubkey", str(pub),
            "--image-id", NEW, "--terraform", str(ROOT / "tests" / "doubles" / "terraform"),
            "--node-timeout", "120", *extra]


def tfvars(ws):
    return json.loads((ws / "cloister-terraform" / "terraform.tfvars.json").read_text())


def calls_of(path):
    """(command, chdir) per terraform call and ('recreate', node, group, image) per node the
    double's instance groups recreated, in order."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        c = json.loads(line)
        if "recreate" in c:
            out.append(("recreate", c["recreate"], c["group"], c["image"]))
        else:
            argv = c["argv"][1:]
            if argv[0].startswith("-chdir="):
                assert argv[0] == "-chdir=cloister-terraform", argv
                argv = argv[1:]
            out.append(tuple(argv))
    return out


ROLL = [("init", "-input=false", "-no-color"), ("plan", "-input=false", "-no-color", "-out=tfplan"),
        ("apply", "-input=false", "-no-color", "-auto-approve", "tfplan")]


def test_cloud_upgrade_rolls_workers_then_the_control_plane_through_terraform_and_admits_only_the_new_image(
        tmp_path, cloud):
    ws, env, calls = cloud
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    m, pub, pcr11_new = signed_measurements(tmp_path, "2", 2)
    before_vars = tfvars(ws)
    assert before_vars["image_id"] == OLD and before_vars["cluster_id"]

    # The plan names the terraform steps, the variable each sets, and the order.
    r = owner_run(ws, env, *apply_args(m, pub, "--dry-run"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "nodes replaced by GCP: the image in the Terraform workspace" in out, out
    assert "2.1 terraform in cloister-terraform/: worker_image_id = %s in " \
           "terraform.tfvars.json, then init, plan and apply: the worker group" % NEW in out, out
    assert "2.2 recreated by its group: mini-node-2 (worker" in out, out
    assert "2.3 terraform in cloister-terraform/: image_id = %s" % NEW in out, out
    assert "2.4 recreated by its group: mini-node-1 (control-plane" in out, out
    assert "single control plane, through the owner's recovery path" in out
    assert "dry run: nothing was changed" in out
    assert tfvars(ws) == before_vars and not (ws / "cloister-upgrade.json").exists()
    assert [c[0] for c in calls_of(calls) if c[0] != "version"] == []

    r = owner_run(ws, env, *apply_args(m, pub))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "policy version 1 admits both 'current' and '2'" in out
    assert out.index("the worker group: image %s" % NEW) < out.index(
        "mini-node-2: a member again, attested with measurement set '2'") < out.index(
        "the control-plane group: image %s" % NEW) < out.index("recovered https://10.77.0.11") < \
        out.index("mini-node-1: a member again, attested with measurement set '2'") < out.index(
        "policy version 2 admits only '2'") < out.index("upgrade done")

    # Terraform: the worker group first (worker_image_id), its node recreated, then the
    # control plane's (image_id); each with exactly create's commands and flags in the workspace.
    seq = [c for c in calls_of(calls) if c[0] != "version"]
    assert seq == ROLL + [("recreate", "10.77.0.12:%d" % PORT, "worker", NEW)] + ROLL + [
        ("recreate", "10.77.0.11:%d" % PORT, "control-plane", NEW)], seq
    after = tfvars(ws)
    assert after["image_id"] == NEW and "worker_image_id" not in after
    assert {k: v for k, v in after.items() if k != "image_id"} == {
        k: v for k, v in before_vars.items() if k != "image_id"}
    for n in (node1, node2):
        assert (n / "image-version").read_text().strip() == "2"
    assert "Rejoined cluster" in (node2 / "bootstrapper.log").read_text()

    config = json.loads((ws / "cloister.json").read_text())
    assert config["policyVersion"] == 2 and "measurementSets" not in config["attestation"]
    assert config["attestation"]["measurements"]["11"]["expected"] == pcr11_new
    st = json.loads((ws / "cloister-upgrade.json").read_text())
    assert st["step"] == "done" and st["imageId"] == NEW
    r = owner_run(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr


def test_cloud_upgrade_stops_on_a_terraform_failure_says_how_to_resume_and_resumes(tmp_path,
                                                                                   cloud):
    ws, env, calls = cloud
    node2 = ws / "cloister-mini" / "node2"
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    r = owner_run(ws, dict(env, TF_DOUBLE_FAIL="apply"), *apply_args(m, pub))
    assert r.returncode != 0, r.stdout + r.stderr
    err = r.stderr
    assert "terraform apply failed" in err and "Quota" in err, err
    assert "upgrade stopped at step replace: terraform did not roll the worker group" in err, err
    assert "cloister-terraform/terraform-output.log" in err
    assert "upgraded to '2': none" in err
    assert "run 'cloister upgrade apply' again: it resumes from cloister-upgrade.json" in err
    st = json.loads((ws / "cloister-upgrade.json").read_text())
    assert st["step"] == "replace" and not any(n["rebooted"] for n in st["nodes"])
    assert (node2 / "image-version").read_text().strip() == "1"
    # The cluster admits both images meanwhile; no node was recreated.
    assert json.loads((ws / "cloister.json").read_text())["policyVersion"] == 1
    assert not [c for c in calls_of(calls) if c[0] == "recreate"]

    # The next command, with nothing given, resumes: terraform runs again for the workers.
    r = owner_run(ws, env, "cloister", "upgrade", "apply", "--terraform",
                  str(ROOT / "tests" / "doubles" / "terraform"), "--node-timeout", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming the upgrade 'current' -> '2' at step replace" in r.stdout
    assert "upgrade done" in r.stdout
    assert [c[1:3] for c in calls_of(calls) if c[0] == "recreate"] == [
        ("10.77.0.12:%d" % PORT, "worker"), ("10.77.0.11:%d" % PORT, "control-plane")]
    assert tfvars(ws)["image_id"] == NEW


def test_a_second_upgrade_or_a_policy_push_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over(
        tmp_path, cloud):
    ws, env, calls = cloud
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    running = ws / "cloister-terraform" / ".double-apply-running"
    p = subprocess.Popen([str(binary("cloister")), "-C", str(ws), "mini", "exec", "--",
                          *apply_args(m, pub)], cwd=ws.parent,
                         env=dict(env, TF_DOUBLE_SLOW_APPLY="120"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 200
        while not running.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.3)
        assert running.exists(), p.stdout.read() if p.poll() is not None else "no apply"
        # While the first is in terraform apply: a second upgrade and a push are refused.
        for args in (apply_args(m, pub), ["cloister", "policy", "push"]):
            r = owner_run(ws, env, *args)
            assert r.returncode != 0, r.stdout + r.stderr
            assert "refused: another command is changing this cluster" in r.stderr, r.stderr
            holder = HOLDER.search(r.stderr)
            assert holder and holder.group(2) == "upgrade apply", r.stderr
            cmdline = open("/proc/%s/cmdline" % holder.group(1), "rb").read().split(b"\0")
            assert b"upgrade" in cmdline and b"apply" in cmdline, cmdline
            assert "cloister-workspace.lock" in r.stderr and "Wait until it ends" in r.stderr
        assert json.loads((ws / "cloister.json").read_text())["policyVersion"] == 1
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
    # The holder was killed (its lock file and its recorded pid remain): the next command takes
    # the lock over and resumes the roll.
    killed = HOLDER.search((ws / "cloister-workspace.lock").read_text()).group(1)
    assert killed == holder.group(1)
    r = owner_run(ws, env, "cloister", "upgrade", "apply", "--terraform",
                  str(ROOT / "tests" / "doubles" / "terraform"), "--node-timeout", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming the upgrade" in r.stdout and "upgrade done" in r.stdout
    # The file names its last holder: the command that took it over, not the killed one.
    assert HOLDER.search((ws / "cloister-workspace.lock").read_text()).group(1) != killed


def test_a_held_workspace_lock_refuses_policy_push_and_one_left_by_a_killed_process_does_not(
        tmp_path):
    """The lock alone (no cluster): an flock held by another process refuses, naming what it
    recorded; the same file left by a process killed with SIGKILL refuses nothing."""
    lock = tmp_path / "cloister-workspace.lock"
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import fcntl, sys, time\n"
         "f = open(sys.argv[1], 'w')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\n"
         "f.write(\"pid 4242 ('cloister upgrade apply', since 1)\\n\"); f.flush()\n"
         "print('held', flush=True)\n"
         "time.sleep(120)\n", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = run("cloister", "policy", "push", "--config", "missing.json", cwd=tmp_path)
        assert r.returncode != 0
        assert "policy push: refused: another command is changing this cluster (pid 4242 " \
               "('cloister upgrade apply', since 1) holds ./cloister-workspace.lock)" in r.stderr, \
            r.stderr
        assert "missing.json" not in r.stderr  # refused before anything was read
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert "pid 4242" in lock.read_text()
    r = run("cloister", "policy", "push", "--config", "missing.json", cwd=tmp_path)
    assert r.returncode != 0 and "another command" not in r.stderr, r.stderr
    assert "missing.json" in r.stderr, r.stderr


def test_the_lock_holders_text_reaches_the_terminal_as_printable_ascii(tmp_path):
    """The lock file is only text, writable by whoever could write the workspace: its bytes are
    shown with control characters (a terminal's escape sequences) as '?'."""
    lock = tmp_path / "cloister-workspace.lock"
    holder = subprocess.Popen(
        ["/usr/bin/python3", "-c",
         "import fcntl, sys, time\n"
         "f = open(sys.argv[1], 'wb')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\n"
         "f.write(b'pid 7 \\x1b]0;owned\\x07\\xff'); f.flush()\n"
         "print('held', flush=True)\n"
         "time.sleep(120)\n", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = subprocess.run([str(binary("cloister")), "policy", "push", "--config", "c.json"],
                           cwd=tmp_path, capture_output=True, timeout=60)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert r.returncode != 0
    assert b"(pid 7 ?]0;owned?? holds ./cloister-workspace.lock)" in r.stderr, r.stderr
    assert b"\x1b" not in r.stderr and b"\x07" not in r.stderr


def cloud_workspace(tmp_path, provider="gcp", **tf):
    """A workspace whose state file records a cluster made by create on provider (no cluster
    runs: these refusals come before anything is contacted)."""
    ws = tmp_path / "ws"
    (ws / "cloister-terraform").mkdir(parents=True)
    m1 = tmp_path / "measurements-1.json"
    m1.write_text(subprocess.run(
        [str(ROOT / "scripts" / "mini-boot-log"), "--predict", "--image-version", "1",
         "--measurements-version", "1"], capture_output=True, text=True, check=True).stdout)
    r = run("cloister", "config", "generate", "qemu", "--file", "cloister.json",
            "--measurements", m1, cwd=ws)
    assert r.returncode == 0, r.stderr
    c = json.loads((ws / "cloister.json").read_text())
    c["attestation"]["akTrust"] = {"mode": "insecure-any"}
    (ws / "cloister.json").write_text(json.dumps(c))
    (ws / "cloister-state.json").write_text(json.dumps({
        "version": 1, "status": "initialized", "clusterId": "ab" * 32,
        "endpoint": "https://127.0.0.1:1",  # a closed port: nothing is contacted anyway
        "infrastructure": {"provider": provider, "workspace": "cloister-terraform"}}))
    v = {"name": "c", "image_id": OLD, "control_plane_count": 1, **tf}
    (ws / "cloister-terraform" / "terraform.tfvars.json").write_text(json.dumps(v))
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    return ws, m, pub


@pytest.mark.parametrize("provider,why", [
    ("azure", "not built for Azure: the scale sets' upgrade mode is Manual"),
    ("aws", "not built for AWS: an auto scaling group has no instance refresh here"),
])
def test_cloud_upgrade_on_azure_and_aws_is_refused_saying_why_and_changes_nothing(
        tmp_path, provider, why):
    ws, m, pub = cloud_workspace(tmp_path, provider)
    before = (ws / "cloister.json").read_bytes()
    r = run("cloister", "upgrade", "apply", "--measurements", m, "--pubkey", pub, "--image-id",
            NEW, cwd=ws)
    assert r.returncode != 0 and why in r.stderr and "Nothing was changed" in r.stderr, r.stderr
    assert (ws / "cloister.json").read_bytes() == before
    assert not (ws / "cloister-upgrade.json").exists()


def test_cloud_upgrade_needs_an_image_id_and_refuses_several_control_planes_or_the_same_image(
        tmp_path):
    ws, m, pub = cloud_workspace(tmp_path, control_plane_count=3)
    base = ["cloister", "upgrade", "apply", "--measurements", str(m), "--pubkey", str(pub)]
    r = run(*base, cwd=ws)
    assert r.returncode != 0 and "this cluster runs in gcp: give --image-id ID" in r.stderr, \
        r.stderr
    r = run(*base, "--image-id", "projects/p/global/images/x y", cwd=ws)
    assert r.returncode != 0 and "--image-id: the new image's ID" in r.stderr, r.stderr
    r = run(*base, "--image-id", NEW, cwd=ws)
    assert r.returncode != 0 and "this cluster has several control planes" in r.stderr, r.stderr
    assert "Nothing was changed" in r.stderr
    v = json.loads((ws / "cloister-terraform" / "terraform.tfvars.json").read_text())
    v["control_plane_count"] = 1
    (ws / "cloister-terraform" / "terraform.tfvars.json").write_text(json.dumps(v))
    r = run(*base, "--image-id", OLD, cwd=ws)
    assert r.returncode != 0 and "the cluster runs that image already" in r.stderr, r.stderr
    # Terraform is looked for before step 1 (it is needed at step 2).
    r = run(*base, "--image-id", NEW, "--terraform", str(tmp_path / "no-terraform"), cwd=ws)
    assert r.returncode != 0 and "no-terraform: not an executable file" in r.stderr, r.stderr
    assert "Terraform is needed to roll the nodes (above). Nothing was changed." in r.stderr
    assert not (ws / "cloister-upgrade.json").exists()


def test_a_resumed_cloud_upgrade_refuses_another_image_id_than_the_one_under_way(tmp_path):
    ws, m, pub = cloud_workspace(tmp_path)
    (ws / "cloister-upgrade.json").write_text(json.dumps({
        "version": 1, "step": "replace", "from": "current", "to": "2", "measurements": str(m),
        "bothPolicyVersion": 1, "newPolicyVersion": 2, "bothPolicy": {}, "target": {},
        "nodes": [], "imageId": NEW}))
    before = (ws / "cloister-upgrade.json").read_bytes()
    r = run("cloister", "upgrade", "apply", "--measurements", m, "--pubkey", pub, "--image-id",
            "projects/my-project/global/images/cloister-3", cwd=ws)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "An upgrade to image %s is under way, at step replace" % NEW in r.stderr, r.stderr
    assert (ws / "cloister-upgrade.json").read_bytes() == before


@pytest.mark.parametrize("policy,rolled", [("PROACTIVE", True), ("OPPORTUNISTIC", False)])
def test_the_double_recreates_nodes_on_a_new_image_only_under_the_modules_proactive_policy(
        tmp_path, policy, rolled):
    """The GCP module as create copies it, with its update policy as given: a second apply with
    a new worker image recreates the worker (the command runs) only if the policy is PROACTIVE,
    as on GCP, where an OPPORTUNISTIC group leaves every running node on the old template."""
    ws = tmp_path / "cloister-terraform"
    shutil.copytree(ROOT / "terraform" / "gcp", ws)
    group = ws / "modules" / "node_group" / "main.tf"
    text = group.read_text()
    assert text.count('type                  = "PROACTIVE"') == 1
    group.write_text(text.replace('type                  = "PROACTIVE"',
                                  'type                  = "%s"' % policy))
    v = {"name": "c", "project": "p", "region": "europe-west4", "zone": "europe-west4-a",
         "tee": "snp", "control_plane_instance_type": "n2d-standard-4",
         "worker_instance_type": "n2d-standard-4", "image_id": OLD, "cluster_id": "ab" * 32,
         "init_secret_hash": "scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$" + "1c" * 32}
    marker = tmp_path / "recreated"
    env = dict(os.environ, TF_DOUBLE_LOG=str(tmp_path / "calls.log"), TF_DOUBLE_ROLL=json.dumps({
        "nodes": {"worker": ["w1"], "control-plane": ["cp1"]}, "images": {NEW: "2", OLD: "1"},
        "command": ["/bin/sh", "-c", 'echo "$0 $1" >> "$2"', "{node}", "{version}",
                    str(marker)]}))
    double = str(ROOT / "tests" / "doubles" / "terraform")
    for image in (OLD, NEW):
        (ws / "terraform.tfvars.json").write_text(json.dumps(dict(v, worker_image_id=image)))
        for cmd in ROLL:
            r = subprocess.run([double, "-chdir=%s" % ws, *cmd], env=env, capture_output=True,
                               text=True, timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
    assert (marker.read_text() if marker.exists() else "") == ("w1 2\n" if rolled else "")
