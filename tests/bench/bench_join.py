#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: N nodes joining at once against one join service (N = 200 by default; --nodes 50
is the earlier bench). One control plane (cloister-bootstrapper initialised by `cloister apply`,
then cloister-join-service on the same port) with its own swtpm; N simulated joining nodes, each
with its OWN swtpm (N distinct attestation keys, all pinned in the policy) and its own replayed
boot log (PCRs as the control plane's). Each join is a join-probe process
(tests/tools/join-probe.c) sending POST /v1/join over mutual attested TLS with fresh evidence
quoted by its node's swtpm. All N are started at once; every one must get HTTP 200 with a
ticket of its own (N distinct tokens), the audit log must show the N names admitted, each
exactly once as a new member (a client that asked again after its answer was lost is audited
"the same ticket again" and gets the same ticket: counted and printed), and members.json
exactly those N members: none lost, none twice. The baseline, measured in
the same run against the same join service, is the same N joins done one after another.
`--rounds` rounds (burst, then sequence; every join under a new name); the ratio is the median
of the per-round throughput ratios; a lone join's latency is the median of the sequential ones.

The variant: qemu-vtpm up to 63 nodes (the policy pins every node's attestation key, at most
64 keys: ATTEST_AK_PINS_MAX), sim-tdx beyond (--variant to choose): the production TDX
verification under a simulated platform's root that the owner's policy names, no keys to pin;
each node's own swtpm is its identity (its TPM quotes PCR 15 beside the TDX quote, docs/join.md,
"Members without a TPM attestation key"), and the control plane is a sim-tdx node too.

Each client comes from ITS OWN loopback address (node i from 127.0.1.i, join-probe --source:
loopback is all of 127.0.0.0/8, so binding the socket is enough, no network namespace needed).
The join service is fair per source address (docs/join.md, "Fair between addresses": a token
bucket and at most half the handshake workers per address): N clients from 127.0.0.1 would be
one address throttled against itself, which is not what N nodes on a network are. They are
still held to the server's bucket for all addresses together (a burst of 64 handshakes, then 16
a second): that bound is part of what is measured. A client whose call fails below HTTP (a
connect timeout while it waits its turn, no answer within the client's 30 s) or is answered
409 (its earlier attempt still in progress) or 503 (busy) tries again after 0.5 s, doubling
up to 5 s, at most 20 attempts, as the bootstrapper does until its join timeout; the retries
are counted and printed, and a client's latency includes them.

Re-attestation is off in the bench's policy ("reattestation": {"enabled": false}): the probes
are no nodes that serve GET /v1/node, and re-attesting 200 unreachable members every minute is
not the join's work.

Targets (issue 17): throughput of the burst >= 1.7x the sequence; p99 client latency in the
burst <= 3x a lone join. The second cannot hold for a burst much larger than the machine's
parallelism: the last of N clients started together waits for the N-1 others, so its latency is
at least about N / (burst throughput), i.e. N / (ratio x sequential throughput) = N / ratio lone
joins (about 118 lone joins at N = 200 and ratio 1.7). It is measured and reported as it is.

Every join runs the kubeadm test double (`kubeadm token create`, a Python script) inside the
join service: it stands in for kubeadm, whose cost is not the join service's. Its own cost is
measured (one standalone call after each sequential join) and printed apart, and so is the join
service's own CPU time per join (user + system of its monitor and network processes, the
double's processes not counted), in the burst and in the sequence. So is the CPU of every part of
a join on this machine (the service, the double's calls as the service waited for them, the
join-probe clients, their swtpms), and from it the lower bound on the burst's p99: N joins need
N x (CPU a join) on the machine's CPUs, so the last client waits at least N x CPU / CPUs; and the
requests the service dropped (their client closed before a handler took them) or whose answer it
discarded (the client closed while the handler ran), from the line it logs when it stops.

Preparing the nodes (swtpm_setup, PCR replay, one evidence each for its AK) is outside every
clock, at most PREP_WORKERS at a time.

Usage: bench_join.py BUILD_DIR [--nodes N] [--rounds R]   (BUILD_DIR absolute, or relative to
the repository root). Writes BUILD_DIR/bench/join.json (join-50.json for --nodes 50, any other
N: join-N.json). Exit status 0 only if every join succeeded and every target held."""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = 200
PREP_WORKERS = 4
PROBE_TIMEOUT = 600  # seconds for one client, or for the whole burst
ROUNDS = 3  # each: the burst, then the same joins one after another; ratios are the median
ATTEMPTS = 20  # a client's tries (below HTTP, or a 409 "in progress"), as the bootstrapper retries
THROUGHPUT_TARGET = 1.7  # burst joins/s over sequential joins/s, at least
P99_TARGET = 3.0  # p99 burst latency over a lone join's, at most
AK_PINS_MAX = 64  # ATTEST_AK_PINS_MAX: a qemu-vtpm policy pins at most this many keys


def source(i):
    """Node i's own loopback address (1 <= i <= 254*254)."""
    return f"127.0.{1 + (i - 1) // 254}.{1 + (i - 1) % 254}"


def cpu_seconds(pid):
    """User + system CPU of the join service: its monitor (pid) and its network process (a
    child named cloister-join*), not the kubeadm calls they make."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [str(pid)] + subprocess.run(["pgrep", "-P", str(pid), "cloister-join"],
                                       capture_output=True, text=True).stdout.split()
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / tick


def own_and_reaped_cpu(pid):
    """(utime + stime, cutime + cstime) of one process in seconds: its own CPU and that of the
    children it has waited for (the join service's monitor waits for each kubeadm double call);
    (0, 0) once it is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick


def reaped_children_cpu():
    """User + system CPU of this bench's children it has waited for (the join-probe clients)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def running_cmdline(pid):
    """pid's command line, b"" once it has exited (or is a zombie)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class ProbeNode:
    """A joining node as the probe needs it: its own swtpm with the control plane's boot
    replayed into its PCRs, and its AK (from one evidence) for the policy; for sim-tdx only the
    swtpm (its identity: PCR 15 is all its quote covers). No disk: the probe only joins."""

    def __init__(self, tj, base, name, variant="qemu-vtpm"):
        base.mkdir()
        self.base, self.name, self.proc = base, name, None
        self.tpm = tj.Swtpm(base / "tpm")
        if variant == "sim-tdx":
            return
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tpm.tcti)
        lines = subprocess.run([str(ROOT / "scripts" / "mini-boot-log"), str(base / "boot.log")],
                               capture_output=True, text=True, check=True).stdout.split()
        for pcr, digest in zip(lines[::2], lines[1::2]):
            subprocess.run(["tpm2_pcrextend", f"{pcr}:sha256={digest}"], env=env, check=True,
                           capture_output=True)
        self.evidence, self.policy = base / "evidence.json", base / "policy.json"
        r = tj.run("cloister", "attestation", "issue", "--tcti", self.tpm.tcti, "--binding",
                   "00" * 32, "--event-log", base / "boot.log", "--output-file", self.evidence)
        if r.returncode != 0:
            raise RuntimeError(f"{name}: attestation issue: {r.stderr}")
        r = tj.run("cloister", "attestation", "policy", self.evidence, self.policy)
        if r.returncode != 0:
            raise RuntimeError(f"{name}: attestation policy: {r.stderr}")

    def stop(self):
        self.tpm.stop()


def pct(values, p):
    """Percentile p (0..100) with linear interpolation between the closest ranks."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"({path}: {e})"


class Bench:
    def __init__(self, build, tj, nodes, variant=None):
        self.build, self.tj, self.n = build, tj, nodes
        self.variant = variant or ("qemu-vtpm" if nodes < AK_PINS_MAX else "sim-tdx")
        self.tmp = Path(tempfile.mkdtemp(prefix="cloister-bench-join-"))
        self.cluster = None
        self.cp = None
        self.nodes = []
        self.running = []  # join-probe processes not yet known to have exited
        self.failures = []  # (client name or "", what went wrong)
        self.tokens = []  # every ticket's token received: all distinct
        self.retries, self.retry_reasons = 0, {}
        self.again = self.busy = 0  # audit entries of clients that asked again
        self.phase, self.counts = None, {}  # the join service's request counters per phase

    # --- preparation (before any clock starts) ----------------------------------------------
    def prepare(self):
        """The joining nodes, made once: every phase joins them to a cluster of its own."""
        made = {}

        def make(name):
            made[name] = ProbeNode(self.tj, self.tmp / name, name, self.variant)  # under the GIL

        names = [f"node-{i:03d}" for i in range(1, self.n + 1)]
        pool = ThreadPoolExecutor(PREP_WORKERS)
        try:
            futures = [pool.submit(make, name) for name in names]
            errors = [f.exception() for f in futures if f.exception() is not None]
        finally:
            # Interrupted: nothing more is started; cleanup() stops whatever was made.
            pool.shutdown(wait=True, cancel_futures=True)
            self.nodes = [made[n] for n in names if n in made]
        if errors:
            raise RuntimeError(f"preparing the nodes failed: {errors[0]!r}")

    @staticmethod
    def no_reattestation(path):
        p = json.loads(path.read_text())
        p["reattestation"] = {"enabled": False}
        path.write_text(json.dumps(p))
        return path

    def new_cluster(self, tag):
        """A fresh control plane and join service for one phase (outside its clock), the
        previous one stopped: one attestation key is one member, so each phase's N joins need
        a cluster where these nodes are not members yet. Returns the audit entries it starts
        with (its init)."""
        if self.cluster is not None:
            self.cluster.stop()
            self.counts[self.phase] = self.stopped_counts(self.cp)
        self.phase = tag.removeprefix("cluster-")
        base = self.tmp / tag
        base.mkdir()
        if self.variant == "sim-tdx":
            import test_join_tdx  # noqa: E402 (next to test_join, on the same path)
            self.cluster = test_join_tdx.TdxCluster(base)
            self.cp = self.cluster.node("cp")
            self.policy = self.no_reattestation(self.cluster.policy())
            self.cluster.init(self.cp, self.policy)
            return len(self.cluster.audit())
        self.cluster = self.tj.Cluster(base)
        self.cp = self.cluster.node("cp")
        self.policy = self.no_reattestation(self.cluster.policy([self.cp, *self.nodes]))
        pinned = json.loads(self.policy.read_text())["akTrust"]["akPublic"]
        if len(set(pinned)) != self.n + 1:
            raise RuntimeError(f"expected {self.n + 1} distinct pinned AKs, got {len(set(pinned))}")
        self.cluster.init(self.cp, self.policy)
        return len(self.cluster.audit())

    # --- CPU per part of a join ----------------------------------------------------------------
    def cpu_snapshot(self):
        """CPU seconds so far of each part of a join on this machine: the join service (its
        monitor and network process), the kubeadm double calls it waited for, the join-probe
        clients the bench waited for, and the nodes' swtpms."""
        swtpm = 0.0
        for node in self.nodes:
            try:
                swtpm += own_and_reaped_cpu(int(node.tpm.pidfile.read_text()))[0]
            except (OSError, ValueError):
                pass
        return {"service": cpu_seconds(self.cp.proc.pid),
                "double": own_and_reaped_cpu(self.cp.proc.pid)[1],
                "clients": reaped_children_cpu(), "swtpms": swtpm}

    @staticmethod
    def cpu_delta(a, b):
        return {k: b[k] - a[k] for k in a}

    def stopped_counts(self, cp):
        """The request counters a stopped join service logged (none from a build before they
        were): {"dropped": N, "discarded": M} or {}."""
        try:
            # The last: the bootstrapper's init server logged its own before it handed over.
            m = re.findall(r"rpc: stopped; (\d+) requests? dropped .*?(\d+) answers? discarded",
                           cp.log.read_text(errors="replace"))
        except OSError:
            return {}
        return {"dropped": int(m[-1][0]), "discarded": int(m[-1][1])} if m else {}

    # --- joins --------------------------------------------------------------------------------
    def probe_argv(self, i, node, name):
        return [str(self.build / "tests" / "join-probe"), "--policy", str(self.policy),
                "--cluster-id", self.cluster.cid, "--url", self.cp.url(),
                "--tcti", node.tpm.tcti, "--name", name, "--source", source(i),
                "--attempts", str(ATTEMPTS)] + (
                    ["--attest", "sim-tdx", "--sim-tdx-root", str(self.cluster.root)]
                    if self.variant == "sim-tdx" else [])

    def launch(self, i, node, name):
        out = self.tmp / f"{name}.out"
        with open(out, "w") as f, open(self.tmp / f"{name}.err", "w") as e:
            p = subprocess.Popen(self.probe_argv(i, node, name), stdout=f, stderr=e)
        self.running.append(p)
        return p, out

    def check(self, name, p, out):
        """The client's answer: HTTP 200 and its ticket (the token kept, to find duplicates).
        Its retries (stderr) are counted."""
        text = out.read_text(errors="replace")
        err = (self.tmp / f"{name}.err").read_text(errors="replace")
        self.retries += err.count("join-probe: attempt ")
        for line in err.splitlines():
            if line.startswith("join-probe: attempt "):
                why = line.split(": ", 2)[2].rsplit("; again in", 1)[0]
                why = why.replace(self.cp.url() + "/v1/join: ", "")  # one cluster per phase
                self.retry_reasons[why] = self.retry_reasons.get(why, 0) + 1
        if p.returncode != 0 or not text.startswith("HTTP 200 "):
            self.failures.append((name, f"exit {p.returncode}: {(text + err).strip()[:500]}"))
            return
        self.tokens.append(json.loads(text.split(" ", 2)[2])["token"])

    def burst(self, prefix):
        """All clients started at once; each one's latency from its start to its exit."""
        names = [f"{prefix}-{i:03d}" for i in range(1, self.n + 1)]
        procs = []
        cpu0 = cpu_seconds(self.cp.proc.pid)
        parts0 = self.cpu_snapshot()
        t0 = time.perf_counter()
        for i, (node, name) in enumerate(zip(self.nodes, names), 1):
            p, out = self.launch(i, node, name)
            procs.append((name, p, out, time.perf_counter()))
        launched = time.perf_counter() - t0
        latency = {}
        deadline = time.monotonic() + PROBE_TIMEOUT
        while len(latency) < len(procs):
            for name, p, out, started in procs:
                if name not in latency and p.poll() is not None:
                    latency[name] = time.perf_counter() - started
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(self.cp.proc.pid) - cpu0
        self.parts_burst = self.cpu_delta(parts0, self.cpu_snapshot())
        retries = self.retries
        for name, p, out, _ in procs:
            if p.poll() is None:
                self.failures.append((name, f"still running after {PROBE_TIMEOUT} s"))
            else:
                self.check(name, p, out)
        ok = sum(1 for _, p, _, _ in procs if p.returncode == 0)
        print(f"# {prefix}: {ok} of {self.n} clients HTTP 200 in {elapsed:.1f} s, "
              f"{self.retries - retries} retries; the join service's CPU {cpu:.1f} s; load "
              f"average {os.getloadavg()[0]:.2f}", flush=True)
        return elapsed, launched, list(latency.values()), cpu

    def sequential(self, prefix):
        """One join after another; after each (outside its timing) one standalone call of the
        kubeadm double, so both are measured under the same load on the machine."""
        latency, double = [], []
        elapsed = cpu = 0.0
        self.parts_seq = {"service": 0.0, "double": 0.0, "clients": 0.0, "swtpms": 0.0}
        for i, node in enumerate(self.nodes, 1):
            name = f"{prefix}-{i:03d}"
            cpu0 = cpu_seconds(self.cp.proc.pid)
            parts0 = self.cpu_snapshot()
            started = time.perf_counter()
            p, out = self.launch(i, node, name)
            try:
                p.wait(timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.failures.append((name, f"still running after {PROBE_TIMEOUT} s"))
                break
            latency.append(time.perf_counter() - started)
            elapsed += latency[-1]
            cpu += cpu_seconds(self.cp.proc.pid) - cpu0
            for k, v in self.cpu_delta(parts0, self.cpu_snapshot()).items():
                self.parts_seq[k] += v
            self.check(name, p, out)
            double.append(self.double_call(i))
        return elapsed, latency, double, cpu

    def admissions(self, since, prefix):
        """The audit entries after the first `since` ones: exactly N new admissions, one per
        name prefix-001..prefix-N; besides them only "the same ticket again" admissions and
        409 "in progress" refusals of clients that asked again (counted); members.json holds
        exactly those N members of this prefix, once each; every ticket's token received so far
        is distinct. The chain is checked by audit_entries."""
        entries = self.cluster.audit()[since:]
        again = [e for e in entries if e["verdict"] == "admitted"
                 and "the same ticket again" in e.get("reason", "")]
        admitted = sorted(e["node"] for e in entries if e["verdict"] == "admitted"
                          and e not in again)
        busy = [e for e in entries if e["verdict"] != "admitted"
                and "in progress" in e.get("reason", "")]
        others = [e for e in entries if e["verdict"] != "admitted" and e not in busy]
        self.again += len(again)
        self.busy += len(busy)
        expired = sum(1 for e in others if "nonce expired" in e.get("reason", ""))
        print(f"# audit log ({prefix}): {len(admitted)} new members admitted ({len(set(admitted))} "
              f"names), {len(again)} 'the same ticket again', {len(busy)} 'in progress' "
              f"refusals, {len(others)} other entries ({expired} 'nonce expired': a request "
              f"that waited over 120 s between its handshake and the monitor)", flush=True)
        want = [f"{prefix}-{i:03d}" for i in range(1, self.n + 1)]
        if admitted != want or others:
            self.failures.append(("",
                f"audit log ({prefix}): {len(admitted)} admissions (want exactly {self.n}, one "
                f"per {prefix}-NNN), {len(others)} other entries: "
                + "; ".join(f"{e['node']}: {e['verdict']} {e.get('reason', '')}"
                            for e in others[:10])))
        members = json.loads((self.cp.state / "members.json").read_text())["members"]
        mine = sorted(m["name"] for m in members if m["name"].startswith(prefix + "-"))
        if mine != want:
            self.failures.append(("", f"members.json ({prefix}): {len(mine)} members, "
                                      f"{len(set(mine))} distinct (want exactly {self.n})"))
        if len(set(self.tokens)) != len(self.tokens):
            self.failures.append(("", f"{len(self.tokens) - len(set(self.tokens))} tokens "
                                      f"received twice"))
        return len(entries)

    def double_call(self, i):
        """One `kubeadm token create` of the double on its own, timed: in a scratch directory,
        not the cluster's (its tokens.json stays as the joins left it)."""
        scratch = self.tmp / "double"
        if not scratch.exists():
            scratch.mkdir()
            (scratch / "admin.conf").write_text("user: kubernetes-admin\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEADM_DOUBLE_")}
        # As the join service calls it: the token in a configuration on a pipe.
        argv = [str(self.tj.KUBEADM), "token", "create", "--config", "/dev/stdin",
                "--kubeconfig", str(scratch / "admin.conf")]
        config = json.dumps({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
                             "bootstrapTokens": [{
                                 "token": f"bench{i % 10}.{os.urandom(8).hex()}", "ttl": "15m0s",
                                 "usages": ["signing", "authentication"],
                                 "groups": ["system:bootstrappers:kubeadm:default-node-token"]}]})
        t = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True, input=config, text=True)
        return time.perf_counter() - t

    # --- diagnostics and cleanup ----------------------------------------------------------
    def report_failure(self):
        print("bench-join: FAILED", file=sys.stderr)
        # Clients failing the same way are listed once, with their names.
        same = {}
        for who, what in self.failures:
            same.setdefault(what, []).append(who)
        for what, who in same.items():
            names = ", ".join(w for w in who if w)
            print(f"  {len(who)} x {what}" + (f"  [{names}]" if names else ""), file=sys.stderr)
        if self.cp is not None:
            state = self.cp.proc.poll() if self.cp.proc else "not started"
            print(f"--- control plane (exit status: {state}), last lines of {self.cp.log}:",
                  file=sys.stderr)
            print(tail(self.cp.log), file=sys.stderr)
            print("--- kubeadm-join-service.log:", file=sys.stderr)
            print(tail(self.cp.state / "kubeadm-join-service.log", 20), file=sys.stderr)

    def cleanup(self):
        for p in self.running:
            if p.poll() is None:
                p.kill()
                p.wait()
        # Each step on its own: one that fails (a swtpm that does not answer its shutdown) must
        # not leave the others running; the sweeps below catch what it left.
        for stop in ([self.cluster.stop] if self.cluster is not None else []) + \
                [node.stop for node in self.nodes]:
            try:
                stop()  # the cluster: SIGTERM to the join service, then its swtpm
            except Exception as e:  # noqa: BLE001 (cleanup goes on, and says what failed)
                print(f"bench-join: cleanup: {e!r}", file=sys.stderr)
        # A node whose preparation failed half-way is in no list: its swtpm pid file is.
        pids = []
        for pidfile in self.tmp.glob("**/tpm/pid"):
            try:
                pid = int(pidfile.read_text())
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if b"swtpm" in cmd and str(self.tmp).encode() in cmd:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
        deadline = time.monotonic() + 10
        for pid in pids:
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.05)
        # Last, whatever still names this bench's directory (a swtpm a SIGTERM in the middle of
        # preparation left out of every list, one that did not stop in time): killed, so a bench
        # cut short leaves nothing running (the CI saw swtpms survive the steps above).
        me = str(self.tmp).encode()
        left = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                if me in (d / "cmdline").read_bytes():
                    os.kill(int(d.name), signal.SIGKILL)
                    left.append(int(d.name))
            except (OSError, ValueError):
                continue
        deadline = time.monotonic() + 10
        for pid in left:
            # Gone, or a zombie (an empty command line: it holds nothing any more).
            while running_cmdline(pid) and time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=str(ROOT / "build"))
    ap.add_argument("--nodes", type=int, default=NODES, help="joins at once (default 200)")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="rounds (default 3)")
    ap.add_argument("--variant", choices=["qemu-vtpm", "sim-tdx"],
                    help="the nodes' attestation (default: qemu-vtpm below 64 nodes, else "
                         "sim-tdx)")
    args = ap.parse_args()
    n = args.nodes
    if not 1 <= n <= 1000 or args.rounds < 1:
        ap.error("--nodes takes 1 to 1000, --rounds at least 1")
    build = Path(args.build)
    if not build.is_absolute():
        build = ROOT / build
    build = build.resolve()
    for need in (build / "bin" / "cloister-bootstrapper", build / "tests" / "join-probe"):
        if not need.exists():
            print(f"bench-join: {need} is not built (make BUILD={build} all "
                  f"{build}/tests/join-probe)", file=sys.stderr)
            return 2
    # The integration helpers find the binaries through CLOISTER_BUILD when first imported.
    os.environ["CLOISTER_BUILD"] = str(build)
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.dont_write_bytecode = True  # no __pycache__ left in tests/integration
    import test_join as tj  # noqa: E402

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.variant == "qemu-vtpm" and n >= AK_PINS_MAX:
        ap.error(f"qemu-vtpm: a policy pins at most {AK_PINS_MAX} keys (the control plane's "
                 f"and {AK_PINS_MAX - 1} nodes'); use --variant sim-tdx")
    b = Bench(build, tj, n, args.variant)
    try:
        t = time.perf_counter()
        b.prepare()
        prep = time.perf_counter() - t
        print(f"# prepared {n} {b.variant} nodes (own swtpm"
              + (", boot replayed, AK pinned" if b.variant == "qemu-vtpm" else "")
              + f") in {prep:.1f} s, "
              f"{PREP_WORKERS} at a time; load average {os.getloadavg()[0]:.2f}", flush=True)
        rounds = []
        for r in range(1, args.rounds + 1):
            # Each phase meets a freshly initialised join service (outside the clock), whose
            # audit log then holds its init, exactly these admissions and nothing else.
            seen = b.new_cluster(f"cluster-load{r}")
            burst_s, launch_s, burst_lat, burst_cpu = b.burst(f"load{r}")
            b.admissions(seen, f"load{r}")
            # A burst that failed is reported, and still measured against its sequence.
            seen = b.new_cluster(f"cluster-seq{r}")
            seq_s, seq_lat, double, seq_cpu = b.sequential(f"seq{r}")
            b.admissions(seen, f"seq{r}")
            if not seq_lat or not burst_lat:
                break
            rounds.append((burst_s, launch_s, burst_lat, seq_s, seq_lat, double, burst_cpu,
                           seq_cpu, b.parts_burst, b.parts_seq))
            print(f"# round {r}: {n} at once {n / burst_s:.2f} joins/s, one after another "
                  f"{n / seq_s:.2f} joins/s, ratio {seq_s / burst_s:.3f}; p99 at once "
                  f"{pct(burst_lat, 99):.2f} s, lone p50 {pct(seq_lat, 50):.3f} s; load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            if b.failures:
                break
        if b.cp.proc.poll() is not None:
            b.failures.append(("", f"the join service exited ({b.cp.proc.returncode})"))
        if b.failures:
            b.report_failure()  # the figures of the rounds measured follow
            if not rounds:
                return 1
    except (Exception, tj.pytest.fail.Exception) as e:  # pytest.fail is a BaseException
        b.failures.append(("", f"{type(e).__name__}: {e}"))
        b.report_failure()
        return 1
    finally:
        b.cleanup()
        if b.cp is not None and b.phase is not None:
            b.counts[b.phase] = b.stopped_counts(b.cp)

    burst_rate = statistics.median(n / x[0] for x in rounds)
    seq_rate = statistics.median(n / x[3] for x in rounds)
    ratio = statistics.median(x[3] / x[0] for x in rounds)  # throughput ratio per round
    launch_s = statistics.median(x[1] for x in rounds)
    burst_lat = [v for x in rounds for v in x[2]]
    seq_lat = [v for x in rounds for v in x[4]]
    p50, p95 = pct(seq_lat, 50), pct(seq_lat, 95)
    bp50, bp95, bp99 = pct(burst_lat, 50), pct(burst_lat, 95), pct(burst_lat, 99)
    double_s = statistics.median(v for x in rounds for v in x[5])
    share = double_s / p50
    burst_cpu = statistics.median(x[6] / n for x in rounds)
    seq_cpu = statistics.median(x[7] / n for x in rounds)
    p99_ratio = bp99 / p50
    parts = {k: statistics.median(x[8][k] / n for x in rounds) for k in rounds[0][8]}
    parts_seq = {k: statistics.median(x[9][k] / n for x in rounds) for k in rounds[0][9]}
    per_join = sum(parts_seq.values())
    cpus = os.cpu_count()
    # The burst's N joins need N x (CPU a join) on `cpus` CPUs at best, so the last client's
    # latency is at least that over cpus; with a join's CPU as in the sequence (no retries).
    bound = n * per_join / cpus
    burst_counts = [b.counts.get(f"load{r}", {}) for r in range(1, len(rounds) + 1)]
    dropped = (sum(c["dropped"] for c in burst_counts) if all(burst_counts) else None)
    discarded = (sum(c["discarded"] for c in burst_counts) if all(burst_counts) else None)
    results = []

    def line(name, baseline, candidate, r, op, target, note):
        ok = r >= target if op == ">=" else r <= target
        print(f"{name:34} {baseline:12.3f} {candidate:12.3f} {r:8.3f} {op}{target:<5.2f} "
              f"{'PASS' if ok else 'FAIL'}  ({note})")
        results.append({"name": name, "baseline": baseline, "candidate": candidate, "ratio": r,
                        "op": op, "target": target, "pass": ok})

    print(f"# {len(rounds)} rounds of {n} joins at once and {n} one after another, each join a "
          f"{b.variant} join-probe process from its own loopback address with its own swtpm's "
          f"fresh "
          f"evidence over mutual aTLS; all HTTP 200 with distinct tokens; audit log and "
          f"members.json: exactly {n} admissions and members per burst and per sequence")
    print(f"{'name':34} {'baseline':>12} {'candidate':>12} {'ratio':>8} {'target':7}")
    line(f"joins-per-second-{n}-concurrent", seq_rate, burst_rate, ratio, ">=",
         THROUGHPUT_TARGET, f"joins/s; baseline: the same {n} joins one after another; medians")
    line(f"join-p99-latency-{n}-concurrent", p50, bp99, p99_ratio, "<=", P99_TARGET,
         f"seconds; baseline: a lone join (p50 of the sequential joins), candidate: p99 of the "
         f"burst's client latencies; at least ~{n / max(ratio, 1e-9):.0f} lone joins for the "
         f"last of {n} at this throughput")
    each = ", ".join(f"{x[0]:.2f}" for x in rounds)
    print(f"# concurrent: {n} joins in {each} s ({launch_s * 1e3:.0f} ms to start all clients); "
          f"client latency min {min(burst_lat) * 1e3:.0f} ms, p50 {bp50 * 1e3:.0f} ms, p95 "
          f"{bp95 * 1e3:.0f} ms, p99 {bp99 * 1e3:.0f} ms, max {max(burst_lat) * 1e3:.0f} ms; "
          f"{b.retries} retries by the clients, {b.again} 'the same ticket again' admissions "
          f"and {b.busy} 'in progress' refusals in the audit logs"
          + (" (" + "; ".join(f"{c} x {w}" for w, c in b.retry_reasons.items()) + ")"
             if b.retries else ""))
    each = ", ".join(f"{x[3]:.2f}" for x in rounds)
    print(f"# sequential: {n} joins in {each} s; single join latency p50 {p50 * 1e3:.0f} ms, "
          f"p95 {p95 * 1e3:.0f} ms")
    print(f"# the join service's own CPU (monitor + network process, user + system, kubeadm "
          f"double not counted): {burst_cpu * 1e3:.1f} ms a join in the burst, "
          f"{seq_cpu * 1e3:.1f} ms a join in the sequence")
    for what, pp in (("burst", parts), ("sequence", parts_seq)):
        print(f"# CPU a join in the {what} (user + system): join service {pp['service'] * 1e3:.1f} "
              f"ms, kubeadm double (as the service runs it) {pp['double'] * 1e3:.1f} ms, client "
              f"(join-probe) {pp['clients'] * 1e3:.1f} ms, its swtpm {pp['swtpms'] * 1e3:.1f} ms; "
              f"{sum(pp.values()) * 1e3:.1f} ms in all")
    print(f"# lower bound on the burst's p99 on {cpus} CPUs with the clients on this machine: "
          f"N x CPU a join (sequence) / CPUs = {n} x {per_join * 1e3:.1f} ms / {cpus} = "
          f"{bound:.2f} s, against {P99_TARGET:g}x a lone join = {P99_TARGET * p50:.2f} s: "
          + ("the p99 target is out of reach here" if bound > P99_TARGET * p50
             else "the p99 target is not ruled out by CPU alone"))
    if dropped is not None:
        print(f"# the join service dropped {dropped} requests whose client had closed before a "
              f"handler took them, and discarded {discarded} answers (client gone while its "
              f"handler ran), in the burst")
    else:
        print("# the join service's dropped-request counters: not logged by this build")
    print(f"# the kubeadm double (a Python script standing in for `kubeadm token create`, run "
          f"once per join inside the join service) costs {double_s * 1e3:.0f} ms a call on its "
          f"own, ~{share:.0%} of a lone join; not the join service's cost")
    print(f"# machine: {os.cpu_count()} CPUs, load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = build / "bench" / ("join.json" if n == NODES else f"join-{n}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "nodes": n, "variant": b.variant, "rounds": len(rounds), "cpus": os.cpu_count(),
        "loadAverage": os.getloadavg(),
        "concurrent": {"seconds": [x[0] for x in rounds], "joinsPerSecond": burst_rate,
                       "launchSeconds": launch_s, "latencyMinMs": min(burst_lat) * 1e3,
                       "latencyP50Ms": bp50 * 1e3, "latencyP95Ms": bp95 * 1e3,
                       "latencyP99Ms": bp99 * 1e3, "latencyMaxMs": max(burst_lat) * 1e3,
                       "clientRetries": b.retries, "sameTicketAgain": b.again,
                       "inProgressRefusals": b.busy, "serviceCpuMsPerJoin": burst_cpu * 1e3,
                       "cpuMsPerJoin": {k: v * 1e3 for k, v in parts.items()},
                       "droppedJobs": dropped, "discardedAnswers": discarded},
        "sequential": {"seconds": [x[3] for x in rounds], "joinsPerSecond": seq_rate,
                       "serviceCpuMsPerJoin": seq_cpu * 1e3,
                       "cpuMsPerJoin": {k: v * 1e3 for k, v in parts_seq.items()}},
        "p99LowerBoundSeconds": bound,
        "singleJoinLatencyP50Ms": p50 * 1e3, "singleJoinLatencyP95Ms": p95 * 1e3,
        "kubeadmDoubleTokenCreateMs": double_s * 1e3,
        "joinFailures": [f"{who}: {what}"[:300] for who, what in b.failures],
        "results": results,
    }, indent=2) + "\n")
    failed = sum(not r["pass"] for r in results)
    print(f"bench: {len(results) - failed} passed, {failed} failed"
          + (f"; {len(b.failures)} join failures (above)" if b.failures else ""))
    return 1 if failed or b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
