# SPDX-License-Identifier: Apache-2.0
"""A local Cloister cluster of QEMU VMs booted from the node image (build/image/image.raw).

Used by `scripts/mini-vm` (`cloister mini up --vm`) and by tests/e2e. Everything lives in one
directory and one network namespace (no change to the host's network), except the owner's files
when a workspace is given (`cloister mini up --vm`: cloister.json, the state file, the secrets and
the kubeconfig go into the workspace, as with namespace nodes; down() removes them again):

- the namespace holds a bridge (br0, 10.78.0.1/24: where the owner's CLI runs) and one tap per VM;
- each node is a VM (OVMF 4M code, its own copy of the 4M variables, its own swtpm with its state
  in the workspace, the image read-only, a virtio state disk with a GPT partition named
  cloister-state) whose metadata, address and join policy come through fw_cfg;
- the owner's policy is the image's signed, predicted measurements (`cloister config
  fetch-measurements` from a file:// URL) plus every node's attestation key (trust on first use,
  read from each swtpm before its VM first boots: local clusters only).

QEMU runs under TCG here (vmharness.accelerator()). Waiting is on console output, with deadlines,
never fixed sleeps.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import vmharness

PORT = 9000
SUBNET = "10.78.0"
OWNER_IP = f"{SUBNET}.1"
STATE_DISK_MIB = 128
LINUX_FS_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
MEMORY_MIB = int(os.environ.get("CLOISTER_VM_MEMORY", "768"))


# The owner's files, as every cloister command finds them in a workspace; with a workspace
# given (cloister mini up --vm), the ones written there, and removed again by down().
WORKSPACE_FILES = ("cloister.json", "cloister-state.json", "cloister-mastersecret.json",
                   "cloister-init-secret", "cloister-admin.conf",
                   "cloister-audit-checkpoints.json")


class ClusterError(Exception):
    pass


def run(args, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run([str(a) for a in args], **{k: v for k, v in kw.items() if k != "check"})
    if kw["check"] and r.returncode != 0:
        raise ClusterError(f"{' '.join(str(a) for a in args)} failed ({r.returncode}):\n"
                           f"{(r.stdout or '')[-2000:]}{(r.stderr or '')[-2000:]}")
    return r


def wait_until(what, predicate, timeout, alive=None, progress=None, stall=None):
    """Polls predicate with backoff (50 ms doubling, capped at 1 s) until it is true.

    With progress (a function whose value changes while the work advances, e.g. the size of a
    console log) and stall, the deadline is derived from progress: the wait fails once progress
    has not changed for stall seconds, and timeout is only an outer bound. A slow (contended)
    machine then makes it slower, not fail."""
    start = time.monotonic()
    deadline = start + timeout
    delay = 0.05
    last, last_change = (progress() if progress else None), start
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and not alive():
            raise ClusterError(f"{what}: the VM stopped")
        now = time.monotonic()
        if progress is not None:
            current = progress()
            if current != last:
                last, last_change = current, now
            elif now - last_change > stall:
                raise ClusterError(f"{what}: no progress for {stall} s "
                                   f"(waited {now - start:.0f} s in all)")
        if now > deadline:
            raise ClusterError(f"{what}: not after {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


# swtpm making a fresh state takes a few seconds, far more on a loaded machine (a CI run saw
# more than 10 s): the wait ends when the socket is there or swtpm has exited, and this is only
# an outer bound.
SWTPM_WAIT_S = 120


def wait_for_swtpm(what, path, proc):
    if len(str(path)) + len(".ctrl") > 107:
        raise ClusterError(f"{what}: {path} is too long for a unix socket ({len(str(path))} "
                           f"bytes; at most {107 - len('.ctrl')} here): use a shorter workspace "
                           f"path (-C DIR)")

    def ready():
        if proc.poll() is not None:
            raise ClusterError(f"{what}: swtpm exited ({proc.returncode}) before making {path}")
        return path.exists()
    wait_until(what, ready, SWTPM_WAIT_S)


# Waits on a VM end when its console has shown nothing new for STALL_S seconds (it stopped making
# progress), not after a fixed time; LIMIT_S is only an outer bound. Under TCG the longest quiet
# stretch of a healthy boot is well under a minute on an idle machine.
STALL_S = int(os.environ.get("CLOISTER_VM_STALL", "300"))
LIMIT_S = 4 * 3600
RESTART_LOOP = re.compile(r"(cloister-[a-z-]+\.service): Scheduled restart job, restart counter is "
                          r"at ([5-9]|\d\d+)\b")


class Node:
    def __init__(self, cluster, index, role, image_dir):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index}"
        self.role = role
        self.image_dir = Path(image_dir)
        self.dir = cluster.dir / self.name
        self.ip = f"{SUBNET}.{10 + index}"
        self.endpoint = f"{self.ip}:{PORT}"
        self.boots = 0
        self.agent_socket = self.dir / "agent.sock"
        self.agent = None
        self.qemu = None
        self.swtpm = None
        self.console = None

    # --- before the first boot -------------------------------------------------------------
    def prepare(self):
        d = self.dir
        (d / "tpm").mkdir(parents=True)
        run(["swtpm_setup", "--tpm2", "--tpmstate", d / "tpm", "--createek", "--pcr-banks",
             "sha256"])
        shutil.copy(vmharness.OVMF_VARS, d / "vars.fd")
        with open(d / "state.raw", "wb") as f:
            f.truncate(STATE_DISK_MIB << 20)
        run(["sfdisk", "-q", d / "state.raw"],
            input=f'label: gpt\nstart=2048, type={LINUX_FS_TYPE}, name="cloister-state"\n')
        # The node's attestation key, read from its swtpm before the VM ever runs (the AK is a
        # primary key: the same every time the TPM makes it).
        sock = d / "tpm-data.sock"
        p = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={d / 'tpm'}",
                              "--server", f"type=unixio,path={sock}", "--ctrl",
                              f"type=unixio,path={sock}.ctrl", "--flags",
                              "startup-clear"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_swtpm("swtpm socket", sock, p)
            run([self.cluster.cli, "attestation", "issue", "--tcti", f"swtpm:path={sock}",
                 "--binding", "00" * 32, "--output-file", d / "ak-evidence.json"])
        finally:
            p.terminate()
            p.wait(timeout=10)
        run([self.cluster.cli, "attestation", "policy", d / "ak-evidence.json",
             d / "ak-policy.json"])
        return json.loads((d / "ak-policy.json").read_text())["akTrust"]["akPublic"]

    # --- running -------------------------------------------------------------------------------
    def start(self, metadata, join_policy=None, image=None):
        """Boots the VM (a power-on: a fresh swtpm process on the node's TPM state)."""
        d = self.dir
        self.boots += 1
        (d / "metadata.json").write_text(json.dumps(metadata))
        if join_policy is not None:
            (d / "join-policy.json").write_text(json.dumps(join_policy))
        self.console = d / f"console-{self.boots}.log"
        # QEMU drives the TPM through the control socket alone (swtpm then takes no other
        # client: the VM's TPM is the VM's).
        ctrl = d / "swtpm.sock"
        ctrl.unlink(missing_ok=True)
        self.swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={d / 'tpm'}", "--ctrl",
             f"type=unixio,path={ctrl}", "--flags", "startup-clear",
             "--pid", f"file={d / 'swtpm.pid'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(d / "swtpm.log", "a"),
            start_new_session=True)
        wait_for_swtpm("swtpm control socket", ctrl, self.swtpm)
        image = Path(image or self.image_dir / "image.raw")
        args = ["ip", "netns", "exec", self.cluster.ns, "qemu-system-x86_64",
                "-accel", vmharness.accelerator(), "-machine", "q35", "-m", str(MEMORY_MIB),
                "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
                "-serial", f"file:{self.console}",
                "-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
                "-pidfile", d / "qemu.pid",
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={vmharness.OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={d / 'vars.fd'}",
                "-drive", f"if=none,id=boot,format=raw,readonly=on,file={image}",
                "-device", "virtio-blk-pci,drive=boot",
                "-drive", f"if=none,id=state,format=raw,file={d / 'state.raw'}",
                "-device", "virtio-blk-pci,drive=state",
                "-netdev", f"tap,id=n0,ifname=tap{self.index},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:78:00:{self.index:02x}",
                "-chardev", f"socket,id=chrtpm,path={ctrl}",
                "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
                "-fw_cfg", f"name=opt/cloister/metadata,file={d / 'metadata.json'}",
                "-fw_cfg", f"name=opt/cloister/network,string={self.ip}/24",
                # The TEST image's command channel (image/rootfs-test: cloister-test-agent);
                # a cloud image has nothing behind the port.
                "-device", "virtio-serial-pci,romfile=",
                "-chardev", f"socket,id=agent,path={self.agent_socket},server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=org.cloister.test"]
        if join_policy is not None:
            args += ["-fw_cfg", f"name=opt/cloister/join-policy,file={d / 'join-policy.json'}"]
        self._agent_close()
        self.agent_socket.unlink(missing_ok=True)
        self.qemu = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                                     stdout=open(d / "qemu.log", "a"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started_at = time.monotonic()

    def running(self):
        return self.qemu is not None and self.qemu.poll() is None

    def console_text(self):
        try:
            return self.console.read_text(errors="replace")
        except (FileNotFoundError, AttributeError):
            return ""

    def console_size(self):
        try:
            return self.console.stat().st_size
        except (FileNotFoundError, AttributeError):
            return 0

    def wait_console(self, pattern, stall=STALL_S):
        """Waits for pattern on the console while the console keeps growing (stall: seconds
        without a new byte before it gives up)."""
        rx = re.compile(pattern)

        def found():
            text = self.console_text()
            # A unit in a restart loop keeps the console growing without progress.
            looping = RESTART_LOOP.search(text)
            if looping:
                raise ClusterError(f"{self.name}: {looping.group(1)} keeps failing "
                                   f"(restarted {looping.group(2)} times)")
            return rx.search(text)

        try:
            return wait_until(f"{self.name}: '{pattern}' on the console", found, LIMIT_S,
                              alive=self.running, progress=self.console_size, stall=stall)
        except ClusterError as e:
            tail = "\n".join(self.console_text().splitlines()[-40:])
            raise ClusterError(f"{e}\n--- {self.console} (last lines) ---\n{tail}") from None

    def report(self):
        """The boot report (image/rootfs/usr/lib/cloister/boot-report) of the current boot."""
        self.wait_console(r"cloister-report: done")
        out = {}
        for m in re.finditer(r"cloister-report: (\S+) (.*)", self.console_text()):
            out.setdefault(m.group(1), []).append(m.group(2).strip())
        return out

    # --- the TEST image's command channel ----------------------------------------------------
    def guest(self, *argv, stdin="", timeout=120, background=False, check=True):
        """Runs argv (a vector, no shell) as root in the guest through the TEST image's
        virtio-serial channel (image/rootfs-test/usr/lib/cloister/test-agent). Returns a
        CompletedProcess; with background, the command is started and its pid returned."""
        if self.agent is None:
            self.wait_console(r"cloister-test-agent: TEST IMAGE")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(self.agent_socket))
            self.agent = (s, s.makefile("rwb"))
        s, f = self.agent
        s.settimeout(timeout + 60)
        req = {"argv": [str(a) for a in argv], "stdin": stdin, "timeout": timeout,
               "background": background}
        f.write(json.dumps(req).encode() + b"\n")
        f.flush()
        line = f.readline()
        if not line:
            self._agent_close()
            raise ClusterError(f"{self.name}: the test agent closed its channel")
        out = json.loads(line)
        if background:
            if out["rc"] != 0:
                raise ClusterError(f"{self.name}: cannot start {argv}: {out.get('stderr')}")
            return out["pid"]
        r = subprocess.CompletedProcess(list(argv), out["rc"], out["stdout"], out["stderr"])
        if check and r.returncode != 0:
            raise ClusterError(f"{self.name}: {' '.join(map(str, argv))} failed "
                               f"({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return r

    def _agent_close(self):
        if self.agent is not None:
            for x in reversed(self.agent):
                try:
                    x.close()
                except OSError:
                    pass
            self.agent = None

    def qmp(self, command):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(self.dir / "qmp.sock"))
        f = s.makefile("rw")
        f.readline()
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while True:
                line = json.loads(f.readline())
                if "return" in line or "error" in line:
                    break
        s.close()

    def poweroff(self, timeout=120):
        """ACPI power button: systemd shuts down cleanly (the disk mapper closes the disk)."""
        if self.running():
            try:
                self.qmp("system_powerdown")
                self.qemu.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.kill()
        self._stop_swtpm()

    def kill(self):
        self._agent_close()
        if self.qemu is not None and self.qemu.poll() is None:
            os.killpg(self.qemu.pid, signal.SIGKILL)
            self.qemu.wait(timeout=30)
        self._stop_swtpm()

    def _stop_swtpm(self):
        if self.swtpm is not None and self.swtpm.poll() is None:
            self.swtpm.terminate()
            try:
                self.swtpm.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.swtpm.kill()


class Cluster:
    def __init__(self, workdir, build, image_dir=None, log=print, workspace=None,
                 reattestation=None):
        """workspace: where the owner's files go (cloister mini up --vm: the workspace, as for
        namespace nodes); by default workdir/owner. reattestation: the owner's policy's
        reattestation section (docs/reattestation.md), e.g. a short interval for a test; by
        default none (the join service's defaults)."""
        self.reattestation = reattestation
        self.dir = Path(workdir).resolve()
        self.build = Path(build).resolve()
        self.cli = self.build / "bin/cloister"
        self.image_dir = Path(image_dir or self.build / "image").resolve()
        self.log = log
        tag = hashlib.sha256(str(self.dir).encode()).hexdigest()[:6]
        self.ns = f"cvm-{tag}"
        self.owner = Path(workspace).resolve() if workspace else self.dir / "owner"
        # What this cluster wrote into a given workspace: absolute paths, removed by down().
        self.written = self.dir / "workspace-files"
        self.nodes = []

    # --- network -------------------------------------------------------------------------------
    def netns_up(self, count):
        self.netns_down()
        run(["ip", "netns", "add", self.ns])
        ns = ["ip", "-n", self.ns]
        run(ns + ["link", "set", "lo", "up"])
        run(ns + ["link", "add", "br0", "type", "bridge"])
        run(ns + ["addr", "add", f"{OWNER_IP}/24", "dev", "br0"])
        run(ns + ["link", "set", "br0", "up"])
        for i in range(1, count + 1):
            run(ns + ["tuntap", "add", f"tap{i}", "mode", "tap"])
            run(ns + ["link", "set", f"tap{i}", "master", "br0", "up"])

    def netns_down(self):
        r = run(["ip", "netns", "list"], check=False)
        if self.ns in r.stdout.split():
            pids = run(["ip", "netns", "pids", self.ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", self.ns], check=False)

    def capture(self, node, path):
        """tcpdump on the host side of node's tap (everything its NIC sends and receives, as the
        provider's network sees it), written to path; stop it with stop_capture()."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, "tcpdump", "-i", f"tap{node.index}",
                              "-n", "-s", "0", "-B", "32768", "-U", "-w", str(path)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on" once the capture runs: nothing sent after that is missed.
        said = ""
        while "listening on" not in said:
            line = p.stderr.readline()
            if not line:
                p.wait()
                raise ClusterError(f"tcpdump on tap{node.index} did not start "
                                   f"({p.returncode}): {said}")
            said += line
        p.capture_path = Path(path)
        return p

    @staticmethod
    def stop_capture(p, quiet=2.0, limit=60):
        """Stops a capture once tcpdump has written what it was given: its file unchanged for
        quiet seconds (a loaded machine leaves packets in the kernel's buffer a while, and
        tcpdump stops without reading them). Returns the packets the kernel dropped (0, or the
        capture is not the whole traffic)."""
        deadline = time.monotonic() + limit
        size, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now_size = p.capture_path.stat().st_size if p.capture_path.exists() else 0
            if now_size != size:
                size, since = now_size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        m = re.search(r"(\d+) packets? dropped by kernel", err or "")
        if not m:
            raise ClusterError(f"tcpdump said nothing of dropped packets: {err}")
        return int(m.group(1))

    def owner_cli(self, *args, check=True, timeout=600, watch=None):
        """The owner's CLI in the owner's namespace. With watch (a node the command waits on),
        it may run as long as that node's console keeps growing (the node works on it)."""
        argv = [str(a) for a in ("ip", "netns", "exec", self.ns, self.cli, *args)]
        if watch is None:
            return run(argv, check=check, timeout=timeout)
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as p:
            try:
                wait_until(f"{' '.join(argv[4:6])} (waiting on {watch.name})",
                           lambda: p.poll() is not None, LIMIT_S,
                           progress=watch.console_size, stall=STALL_S)
            except ClusterError:
                p.kill()
                out, err = p.communicate()
                raise ClusterError(f"{' '.join(argv)}: {watch.name} made no progress for "
                                   f"{STALL_S} s:\n{out[-2000:]}{err[-2000:]}") from None
            out, err = p.communicate()
        r = subprocess.CompletedProcess(argv, p.returncode, out, err)
        if check and r.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed ({r.returncode}):\n"
                               f"{out[-2000:]}{err[-2000:]}")
        return r

    # --- the cluster ---------------------------------------------------------------------------
    def check_image(self):
        for f in ("image.raw", "measurements.json", "measurements.json.sig",
                  "measurements-DEVELOPMENT-ONLY.pub.pem"):
            if not (self.image_dir / f).exists():
                raise ClusterError(f"{self.image_dir / f} is missing: build the node image "
                                   "first (make image)")

    def prepare(self, count, spare=0):
        """Workspace, network, TPMs and the owner's configuration for count nodes (node1 the
        control plane) and spare extra TPMs whose AKs are pinned too (tests)."""
        self.check_image()
        if self.dir.exists():
            self.down()
        taken = [f for f in WORKSPACE_FILES if (self.owner / f).exists()]
        if taken:
            raise ClusterError(f"{self.owner} already holds {' '.join(taken)} (another "
                               "cluster's workspace?): run mini in an empty directory, e.g. "
                               "'cloister -C DIR mini up --vm', or move them away")
        self.dir.mkdir(parents=True)
        self.owner.mkdir(parents=True, exist_ok=True)
        self.written.write_text("".join(f"{self.owner / f}\n" for f in WORKSPACE_FILES))
        self.netns_up(count + spare)
        self.nodes = [Node(self, i, "control-plane" if i == 1 else "worker", self.image_dir)
                      for i in range(1, count + spare + 1)]
        self.log(f"{count + spare} node(s): a TPM (swtpm) each, a 128 MiB state disk, "
                 f"addresses {SUBNET}.11...; owner at {OWNER_IP} in network namespace {self.ns}")
        aks = [n.prepare() for n in self.nodes]
        cfg = self.owner / "cloister.json"
        run([self.cli, "config", "generate", "qemu", "--file", cfg, "--name", "mini",
             "--evidence", self.nodes[0].dir / "ak-evidence.json"])
        self.log("the owner's policy: the image's signed measurements (fetched from a file:// "
                 "URL, checked with the DEVELOPMENT key) and the nodes' AKs (trust on first use)")
        run([self.cli, "config", "fetch-measurements", "--config", cfg, "--url",
             f"file://{self.image_dir / 'measurements.json'}", "--pubkey",
             self.image_dir / "measurements-DEVELOPMENT-ONLY.pub.pem"])
        conf = json.loads(cfg.read_text())
        if conf.get("measurementsSource", {}).get("imageKind") == "test":
            self.log("the image is a TEST image (the kubeadm test double, no Kubernetes: "
                     "image/README.md, 'Kubernetes'): not for production")
        conf["attestation"]["akTrust"]["akPublic"] = aks
        if self.reattestation is not None:
            conf["attestation"]["reattestation"] = self.reattestation
        cfg.write_text(json.dumps(conf, indent=2))
        self.config = cfg
        self.policy = conf["attestation"]
        init = self.policy.copy()
        init["measurements"] = {k: v for k, v in self.policy["measurements"].items() if k != "15"}
        self.policy_initialized = self.dir / "policy-initialized.json"
        self.policy_initialized.write_text(json.dumps(init, indent=2))
        self.init_hash = run([self.cli, "init-secret", "generate", "--file",
                              self.owner / "cloister-init-secret"]).stdout.strip()
        run([self.cli, "master-secret", "generate", "--file",
             self.owner / "cloister-mastersecret.json"])

    def worker_metadata(self, node):
        # The owner's init-secret hash on every node: a worker whose join fails gives its log
        # to the owner who proves the secret ('cloister logs').
        return {"name": node.name, "role": "worker", "peers": [self.nodes[0].endpoint],
                "clusterId": self.cluster_id, "initSecretHash": self.init_hash}

    def up(self, count=2, spare=0):
        t0 = time.monotonic()
        self.prepare(count, spare)
        cp = self.nodes[0]
        self.log(f"booting {cp.name} (control plane): OVMF measures the UKI into the vTPM")
        cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": self.init_hash})
        cp.wait_console(r"serving init on")
        self.log(f"{cp.name} serves init after {time.monotonic() - cp.started_at:.0f} s; "
                 "cloister apply (attest first, secrets after)")
        r = self.owner_cli("apply", "--endpoint", f"https://{cp.endpoint}", "--config",
                           self.config, "--init-secret-file", self.owner / "cloister-init-secret",
                           "--state-file", self.owner / "cloister-state.json",
                           "--master-secret", self.owner / "cloister-mastersecret.json",
                           "--kubeconfig", self.owner / "cloister-admin.conf",
                           "--timeout", "3600", watch=cp)
        (self.dir / "apply.txt").write_text(r.stdout)
        m = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout)
        if not m:
            raise ClusterError(f"apply printed no cluster ID:\n{r.stdout}")
        self.cluster_id = m.group(1)
        cp.wait_console(r"serving joins")
        for node in self.nodes[1:count]:
            self.log(f"booting {node.name} (worker): it joins through {cp.name}'s join service")
            node.start(self.worker_metadata(node), join_policy=self.policy)
        for node in self.nodes[1:count]:
            m = node.wait_console(r"Joined cluster|join failed; serving node state and log")
            if m.group(0) != "Joined cluster":
                # Its bootstrapper keeps serving its log to the owner: fetched, as the owner.
                r, path = self.fetch_log(node)
                raise ClusterError(f"{node.name} did not join; " + (
                    f"its bootstrapper's log, fetched as the owner, is saved in {path}"
                    if r.returncode == 0 else
                    f"its log could not be fetched: {r.stderr.strip()}"))
            self.log(f"{node.name} joined, {time.monotonic() - node.started_at:.0f} s after "
                     "power-on")
        self.log(f"up in {time.monotonic() - t0:.0f} s")

    def fetch_log(self, node):
        """'cloister logs' as the owner: the node attested against the owner's configuration
        (PCR 15 zero, or the state file's cluster), then proven the init secret; its
        bootstrapper log of this boot saved in the owner's directory. (result, path)"""
        path = self.owner / f"cloister-node-{node.endpoint.replace(':', '-')}.log"
        r = self.owner_cli("logs", "--node", node.endpoint, "--config", self.config,
                           "--init-secret-file", self.owner / "cloister-init-secret",
                           "--state-file", self.owner / "cloister-state.json", "--file", path,
                           check=False)
        return r, path

    def verify_cluster(self, output="text"):
        return self.owner_cli("verify", "--cluster", "--policy", self.policy_initialized,
                              "--state-file", self.owner / "cloister-state.json", "-o", output,
                              check=False)

    def verify_node(self, node, output="json"):
        return self.owner_cli("verify", "--node", node.endpoint, "--policy",
                              self.policy_initialized, "--cluster-id", self.cluster_id,
                              "-o", output, check=False)

    def status(self, output="json"):
        """cloister status as the owner: every member attested, and each join service's
        re-attestation records (docs/reattestation.md)."""
        return self.owner_cli("status", "--policy", self.policy_initialized, "--state-file",
                              self.owner / "cloister-state.json", "-o", output, check=False)

    def down(self):
        for node in self.nodes:
            node.kill()
        # Processes of an earlier run (mini up exits and leaves its VMs running).
        for pidfile in list(self.dir.glob("node*/qemu.pid")) + list(self.dir.glob("node*/swtpm.pid")):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                pass
        self.netns_down()
        # The owner's files this cluster wrote (and only those: known names, listed at prepare).
        if self.written.exists():
            for line in self.written.read_text().splitlines():
                f = Path(line)
                if f.is_absolute() and f.name in WORKSPACE_FILES:
                    f.unlink(missing_ok=True)
        if self.dir.exists():
            shutil.rmtree(self.dir)
