# SPDX-License-Identifier: Apache-2.0
"""--state-mount: the node's state directory lives on its encrypted state disk, which the disk
mapper mounts. After a reboot an initialized disk stays locked at boot (setup --allow-locked):
node-state.json cannot be read, so the metadata decides (peers: rejoin; a control plane without
peers: recovery), and once the join service or the owner released the key (and it opened the
disk), the bootstrapper runs `cloister-disk-mapper setup --key-file -` with the key on its stdin,
before PCR 15 is extended.

The host has no device-mapper, so --disk-mapper is a stand-in that does what setup does to the
system and nothing else: it checks the key it got on stdin against the real LUKS2 image with the
real `cloister-disk-mapper check-header --key-file -`, then bind-mounts a directory (the "file
system" on the disk) on --mount and each --bind path from it, as setup does. Each node runs in a
mount namespace of its own (unshare), so a reboot (the process ends) unmounts everything, and
the stand-in runs first as the boot's cloister-disk-mapper.service would (setup --allow-locked,
no key). Mode decisions, the key's path into the disk mapper, the mount check and the order
against PCR 15 are the bootstrapper's own; the rest is test_join.py's cluster."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, binary, run
from test_join import KUBEADM, Cluster, Node, read_pcr15, reboot, restart, verify_cluster

FAKE_DISK_MAPPER = r'''
import hashlib, json, os, subprocess, sys

REAL = %(real)r


def log(msg):
    print("stand-in disk mapper: " + msg, flush=True)


def opt(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def setup(argv, key):
    device, mount = opt(argv, "--device"), opt(argv, "--mount")
    binds = [b for b in (opt(argv, "--bind") or "").split(",") if b]
    state = json.loads(subprocess.run([REAL, "status", "--device", device, "-o", "json"],
                                      capture_output=True, text=True).stdout)["state"]
    with open(device + ".calls", "a") as f:
        f.write(json.dumps({"argv": argv, "state": state,
                            "key": hashlib.sha256(key).hexdigest() if key is not None else None})
                + "\n")
    if state in ("initialized", "rekeying") and key is None:
        if "--allow-locked" in argv:
            print(f"{device}: {state}, left locked: its key comes from the join service (rejoin) "
                  "or the owner (recover); the bootstrapper opens it", flush=True)
            return 0
        log(f"{device} is initialized: its key comes from the join service")
        return 1
    if key is not None:
        r = subprocess.run([REAL, "check-header", "--device", device, "--key-file", "-"],
                           input=key, capture_output=True)
        if r.returncode != 0:
            log("the key does not open " + device + ": " + r.stderr.decode().strip())
            return 1
    if os.environ.get("STAND_IN_FAIL_MOUNT") == "1":
        log("failing the mount, as the test asked")
        return 1
    fs = device + ".fs"
    os.makedirs(mount, exist_ok=True)
    subprocess.run(["mount", "--bind", fs, mount], check=True)
    for b in binds:
        os.makedirs(mount + b, exist_ok=True)
        os.makedirs(b, exist_ok=True)
        subprocess.run(["mount", "--bind", mount + b, b], check=True)
    log(f"{device} mounted on {mount}" + (" (opened with the key from stdin)" if key else ""))
    return 0


argv = sys.argv[1:]
if argv[0] == "boot":
    # cloister-disk-mapper.service at boot, then the bootstrapper.
    sep = argv.index("--")
    device, mount, binds = argv[1:4]
    if setup(["setup", "--device", device, "--allow-locked", "--mount", mount, "--bind", binds],
             None) != 0:
        sys.exit(1)
    os.execv(argv[sep + 1], argv[sep + 1:])
if argv[0] != "setup":
    sys.exit(f"stand-in disk mapper: unexpected {argv!r}")
key = sys.stdin.buffer.read() if opt(argv, "--key-file") == "-" else None
sys.exit(setup(argv, key))
'''


class MountedNode(Node):
    """A node whose state directory is on its state disk (--state-mount)."""

    def __init__(self, base, name, fake, alter=None):
        super().__init__(base, name, alter)
        self.fake = fake
        self.root = base / "root"
        self.mount = self.root / "var" / "lib" / "cloister-state"
        self.view = self.root / "var" / "lib" / "cloister"  # --state-dir, a bind from the disk
        self.binds = [self.view, self.root / "etc" / "kubernetes"]
        self.fs = base / "state.img.fs"  # what the disk's file system holds
        # Outside the node's mount namespace, the state is where the disk keeps it.
        self.state = self.fs / str(self.view).lstrip("/")
        self.state.mkdir(parents=True)
        self.view.mkdir(parents=True)

    def calls(self):
        p = self.base / "state.img.calls"
        return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []

    def start(self, metadata, *extra, env=None):
        (self.base / "metadata.json").write_text(json.dumps(metadata))
        self.logf = open(self.log, "w")
        binds = ",".join(map(str, self.binds))
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             sys.executable, str(self.fake), "boot", str(self.disk), str(self.mount), binds, "--",
             str(binary("cloister-bootstrapper")), "--tcti", self.tpm.tcti, "--listen",
             f"127.0.0.1:{self.port or 0}", "--state-disk", str(self.disk), "--first-boot-key",
             str(self.first), "--state-dir", str(self.view), "--kubeadm", str(KUBEADM),
             "--metadata", f"local:{self.base / 'metadata.json'}", "--event-log",
             str(self.boot_log), "--state-mount", str(self.mount), "--state-bind", binds,
             "--disk-mapper", str(self.fake), *extra],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def cluster(tmp_path):
    fake = tmp_path / "disk-mapper-stand-in"
    fake.write_text("#!" + sys.executable + "\n" +
                    FAKE_DISK_MAPPER % {"real": str(BUILD / "bin" / "cloister-disk-mapper")})
    fake.chmod(0o755)
    c = Cluster(tmp_path)
    c.mounted = lambda name: c.nodes.append(MountedNode(tmp_path / name, name, fake)) or c.nodes[-1]
    yield c
    c.stop()


def key_digest(cluster, node):
    return hashlib.sha256(cluster.disk_key(node)).hexdigest()


def setup_calls_with_a_key(node):
    return [c for c in node.calls() if c["key"] is not None]


def test_rebooted_worker_opens_its_locked_disk_with_the_released_key_then_extends_pcr15(
        cluster, tmp_path):
    cp, w = cluster.node("cp-1"), cluster.mounted("worker-1")
    policy = cluster.policy([cp, w])
    cid = cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    # First boot: the disk was new and mounted at boot; everything went onto it.
    assert [c["state"] for c in w.calls()] == ["new"] and setup_calls_with_a_key(w) == []
    assert json.loads((w.state / "node-state.json").read_text())["clusterId"] == cid
    (w.state / "data.txt").write_text("written before the reboot")

    reboot(w)
    restart(w, cluster, policy)
    w.wait_for("serving node state")
    log = w.log.read_text()
    # At boot the disk mapper left it locked, and the bootstrapper knew it was.
    assert "initialized, left locked: its key comes from the join service (rejoin) or the " \
           "owner (recover); the bootstrapper opens it" in log
    assert "the state disk is initialized and locked" in log and "the join service (rejoin)" in log
    # The disk mapper got exactly the disk key the owner derives, on stdin, never in argv.
    (call,) = setup_calls_with_a_key(w)
    assert call["key"] == key_digest(cluster, w)
    argv = call["argv"]
    assert argv[:2] == ["setup", "--device"] and argv[argv.index("--key-file") + 1] == "-"
    assert argv[argv.index("--mount") + 1] == str(w.mount)
    assert argv[argv.index("--bind") + 1] == ",".join(map(str, w.binds))
    key_hex = cluster.disk_key(w).hex()
    assert all(key_hex not in a for a in argv) and key_hex not in log
    # Mounted (the disk mapper's line) before PCR 15 was extended (the rejoin's line).
    assert log.index(f"{w.disk} mounted on {w.mount}") < log.index("Rejoined cluster " + cid)
    assert (w.state / "data.txt").read_text() == "written before the reboot"
    assert (w.state / "kubeadm.log").read_text().count("joined as a worker") == 1
    assert [e["event"] for e in cluster.audit()] == ["admission", "rejoin"]
    # PCR 15 holds the cluster ID again: verify attests every member with it.
    assert verify_cluster(cluster, tmp_path).returncode == 0


def test_mount_failure_after_rejoin_leaves_pcr15_zero(cluster, tmp_path):
    """The key opens the disk but the disk mapper cannot mount it: the node must not claim its
    cluster (PCR 15) with its state unreadable."""
    cp, w = cluster.node("cp-1"), cluster.mounted("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    reboot(w)
    meta = json.loads((w.base / "metadata.json").read_text())
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30",
            env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state), STAND_IN_FAIL_MOUNT="1"))
    assert w.proc.wait(timeout=60) != 0
    log = w.log.read_text()
    assert "failing the mount, as the test asked" in log
    assert "The disk mapper could not open and mount the state disk (exit status 1" in log
    assert "Rejoined" not in log
    assert read_pcr15(w.tpm.tcti) == "00" * 32
    assert len(setup_calls_with_a_key(w)) == 1


def test_join_cut_short_after_the_rekey_is_finished_after_a_reboot_through_the_locked_disk(
        cluster, tmp_path):
    """kubeadm join fails after the re-key and PCR 15; the machine reboots. The disk is then
    initialized and locked, so the node rejoins for its key; once it is mounted there is no
    node-state.json: the node finishes its join (a new ticket, kubeadm join), then serves."""
    cp, w = cluster.node("cp-1"), cluster.mounted("worker-1")
    policy = cluster.policy([cp, w])
    cid = cluster.init(cp, policy)
    flag = tmp_path / "fail-once"
    flag.write_text("")
    meta = {"name": w.name, "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
            "clusterId": cid}
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30",
            env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state),
                     KUBEADM_DOUBLE_FAIL_ONCE=str(flag)))
    assert w.proc.wait(timeout=60) != 0 and "kubeadm join failed" in w.log.read_text()
    assert not (w.state / "node-state.json").exists()

    reboot(w)
    restart(w, cluster, policy)
    w.wait_for("serving node state")
    log = w.log.read_text()
    assert "the state disk is initialized and locked" in log
    assert "holds no " in log and "finishing that join now" in log
    assert log.index(f"{w.disk} mounted on {w.mount}") < log.index("finishing that join now")
    assert "resuming a join that was cut short after the disk was re-keyed" in log
    assert f"Joined cluster {cid} as worker" in log
    assert json.loads((w.state / "node-state.json").read_text())["clusterId"] == cid
    assert "joined as a worker" in (w.state / "kubeadm.log").read_text()
    assert [c["key"] for c in setup_calls_with_a_key(w)] == [key_digest(cluster, w)]
    assert [e["event"] for e in cluster.audit()] == ["admission", "rejoin", "admission"]
    assert verify_cluster(cluster, tmp_path).returncode == 0


def test_recovery_opens_the_control_planes_locked_disk_before_reading_its_state(
        cluster, tmp_path):
    """Full outage: the control plane's disk is locked at boot, so it serves recovery without
    reading node-state.json (it cannot); a wrong master secret never reaches the disk mapper;
    the owner's opens the disk, the recorded cluster ID is read from it, and the join service
    takes over on the mounted state. The worker (plain state directory) then rejoins."""
    cp, w = cluster.mounted("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cid = cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    for n in (cp, w):
        reboot(n)
    restart(cp, cluster, policy)
    cp.wait_for(r"serving recovery on 127\.0\.0\.1:" + cp.port)
    assert "the state disk is initialized and locked" in cp.log.read_text()
    assert "the owner ('cloister recover')" in cp.log.read_text()
    restart(w, cluster, policy)

    other = tmp_path / "other-ms.json"
    assert run("cloister", "master-secret", "generate", "--file", other).returncode == 0
    r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
            "--master-secret", other, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 1 and "does not open" in r.stderr, r.stderr
    assert setup_calls_with_a_key(cp) == []

    r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 0 and cid in r.stdout, r.stdout + r.stderr
    cp.wait_for("serving joins on")
    (call,) = setup_calls_with_a_key(cp)
    assert call["key"] == key_digest(cluster, cp)
    log = cp.log.read_text()
    assert log.index(f"{cp.disk} mounted on {cp.mount}") < log.index("Recovered cluster " + cid)
    assert cluster.disk_key(cp).hex() not in log
    w.wait_for("serving node state", timeout=90)
    assert verify_cluster(cluster, tmp_path).returncode == 0
    events = [e["event"] for e in cluster.audit()]
    assert "recovery" in events and events[-1] == "rejoin"


def test_state_bind_needs_state_mount_and_mount_must_be_absolute(tmp_path):
    r = run("cloister-bootstrapper", "--state-disk", "x", "--first-boot-key", "y", "--state-dir",
            tmp_path, "--state-bind", "/var/lib/cloister")
    assert r.returncode == 2 and "--state-bind needs --state-mount" in r.stderr
    r = run("cloister-bootstrapper", "--state-disk", "x", "--first-boot-key", "y", "--state-dir",
            tmp_path, "--state-mount", "var/lib/cloister-state")
    assert r.returncode == 2 and "--state-mount: an absolute path" in r.stderr
