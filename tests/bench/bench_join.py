#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: 50 nodes joining at once against one join service. One control plane
(cloister-bootstrapper initialised by `cloister apply`, then cloister-join-service on the same
port) with its own swtpm; 50 simulated joining nodes, each with its OWN swtpm (50 distinct
attestation keys, all pinned in the policy) and its own replayed boot log. Each join is a
join-probe process (tests/tools/join-probe.c) sending POST /v1/join over mutual attested TLS
with fresh evidence quoted by its node's swtpm. All 50 are started at once; every one must get
HTTP 200 and the audit log must show exactly 50 admissions. The baseline, measured in the same
run against the same join service, is the same 50 joins done one after another. Three rounds
(burst, then sequence; every join under a new name), and the ratio is the median of the
per-round throughput ratios; single-join latency comes from the sequential joins.

Every join runs the kubeadm test double (`kubeadm token create`, a Python script) inside the
join service: it dominates a join's time and stands in for kubeadm, whose cost is not the join
service's. Its own cost is measured here too, and printed.

Usage: bench_join.py BUILD_DIR   (absolute, or relative to the repository root)
Writes BUILD_DIR/bench/join.json. Exit status 0 only if every join succeeded."""
import json
import os
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
NODES = 50
PREP_WORKERS = 4
PROBE_TIMEOUT = 120  # seconds for one client, or for the whole burst
ROUNDS = 3  # each: the burst, then the same joins one after another; ratios are the median


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
    def __init__(self, build, tj):
        self.build, self.tj = build, tj
        self.tmp = Path(tempfile.mkdtemp(prefix="cloister-bench-join-"))
        self.cluster = None
        self.cp = None
        self.nodes = []
        self.running = []  # join-probe processes not yet known to have exited
        self.failures = []  # (client name or "", what went wrong)

    # --- preparation (before any clock starts) ----------------------------------------------
    def prepare(self):
        tj = self.tj
        self.cluster = tj.Cluster(self.tmp)
        made = {}

        def make(name):
            n = tj.Node(self.tmp / name, name)
            made[name] = n  # under the GIL; the order is restored below
            return n

        names = ["cp-1"] + [f"node-{i:02d}" for i in range(1, NODES + 1)]
        pool = ThreadPoolExecutor(PREP_WORKERS)
        try:
            futures = [pool.submit(make, name) for name in names]
            errors = [f.exception() for f in futures if f.exception() is not None]
        finally:
            # Interrupted: nothing more is started. The cluster stops whatever was made.
            pool.shutdown(wait=True, cancel_futures=True)
            self.cluster.nodes = [made[n] for n in names if n in made]
        if errors:
            raise RuntimeError(f"preparing the nodes failed: {errors[0]!r}")
        self.cp, self.nodes = made["cp-1"], [made[n] for n in names[1:]]
        policy = self.cluster.policy([self.cp, *self.nodes])
        pinned = json.loads(policy.read_text())["akTrust"]["akPublic"]
        if len(set(pinned)) != NODES + 1:
            raise RuntimeError(f"expected {NODES + 1} distinct pinned AKs, got {len(set(pinned))}")
        self.cluster.init(self.cp, policy)
        self.policy = policy

    # --- joins --------------------------------------------------------------------------------
    def probe_argv(self, node, name):
        return [str(self.build / "tests" / "join-probe"), "--policy", str(self.policy),
                "--cluster-id", self.cluster.cid, "--url", self.cp.url(),
                "--tcti", node.tpm.tcti, "--name", name]

    def launch(self, node, name):
        out = self.tmp / f"{name}.out"
        f = open(out, "w")
        p = subprocess.Popen(self.probe_argv(node, name), stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.running.append(p)
        return p, out

    def check(self, name, p, out):
        text = out.read_text(errors="replace")
        if p.returncode != 0 or not text.startswith("HTTP 200 "):
            self.failures.append((name, f"exit {p.returncode}: {text.strip()[:500]}"))

    def burst(self, prefix):
        """All clients started at once; each one's latency from its start to its exit."""
        names = [f"{prefix}-{i:02d}" for i in range(1, NODES + 1)]
        procs = []
        t0 = time.perf_counter()
        for node, name in zip(self.nodes, names):
            p, out = self.launch(node, name)
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
        for name, p, out, _ in procs:
            if p.poll() is None:
                self.failures.append((name, f"still running after {PROBE_TIMEOUT} s"))
            else:
                self.check(name, p, out)
        return elapsed, launched, list(latency.values())

    def sequential(self, prefix):
        """One join after another; after each (outside its timing) one standalone call of the
        kubeadm double, so both are measured under the same load on the machine."""
        latency, double = [], []
        elapsed = 0.0
        for i, node in enumerate(self.nodes, 1):
            name = f"{prefix}-{i:02d}"
            started = time.perf_counter()
            p, out = self.launch(node, name)
            try:
                p.wait(timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.failures.append((name, f"still running after {PROBE_TIMEOUT} s"))
                break
            latency.append(time.perf_counter() - started)
            elapsed += latency[-1]
            self.check(name, p, out)
            double.append(self.double_call(i))
        return elapsed, latency, double

    def admissions(self, since, prefix):
        """The audit entries after the first `since` ones: exactly NODES admissions, one per
        name prefix-01..prefix-NN, and nothing else. The chain is checked by audit_entries."""
        entries = self.cluster.audit()[since:]
        admitted = sorted(e["node"] for e in entries if e["verdict"] == "admitted")
        others = [e for e in entries if e["verdict"] != "admitted"]
        want = [f"{prefix}-{i:02d}" for i in range(1, NODES + 1)]
        if admitted != want or others:
            self.failures.append(("",
                f"audit log ({prefix}): {len(admitted)} admissions (want exactly {NODES}, one per "
                f"{prefix}-NN), {len(others)} other entries: "
                + "; ".join(f"{e['node']}: {e['verdict']} {e.get('reason', '')}"
                            for e in others[:10])))
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
        if self.cluster is not None:
            self.cluster.stop()  # SIGTERM to the join service, then every node's swtpm
        # A node whose preparation failed half-way is in no list: its swtpm pid file is.
        pids = []
        for pidfile in self.tmp.glob("*/tpm/pid"):
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
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
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
    b = Bench(build, tj)
    try:
        t = time.perf_counter()
        b.prepare()
        prep = time.perf_counter() - t
        print(f"# prepared 1 control plane + {NODES} nodes (own swtpm, boot log, AK pinned) "
              f"in {prep:.1f} s")
        rounds, seen = [], 0
        for r in range(1, ROUNDS + 1):
            # The burst first: in round 1 it meets the freshly initialised join service, whose
            # audit log then holds exactly these NODES admissions and nothing else.
            burst_s, launch_s, burst_lat = b.burst(f"load{r}")
            seen += b.admissions(seen, f"load{r}")
            if b.failures:
                break
            seq_s, seq_lat, double = b.sequential(f"seq{r}")
            seen += b.admissions(seen, f"seq{r}")
            if b.failures:
                break
            rounds.append((burst_s, launch_s, burst_lat, seq_s, seq_lat, double))
            print(f"# round {r}: {NODES} at once {NODES / burst_s:.2f} joins/s, one after "
                  f"another {NODES / seq_s:.2f} joins/s, ratio {seq_s / burst_s:.3f}")
        if b.cp.proc.poll() is not None:
            b.failures.append(("", f"the join service exited ({b.cp.proc.returncode})"))
        if b.failures:
            b.report_failure()
            return 1
    except (Exception, tj.pytest.fail.Exception) as e:  # pytest.fail is a BaseException
        b.failures.append(("", f"{type(e).__name__}: {e}"))
        b.report_failure()
        return 1
    finally:
        b.cleanup()

    burst_rate = statistics.median(NODES / x[0] for x in rounds)
    seq_rate = statistics.median(NODES / x[3] for x in rounds)
    ratio = statistics.median(x[3] / x[0] for x in rounds)  # throughput ratio per round
    name = f"joins-per-second-{NODES}-concurrent"
    launch_s = statistics.median(x[1] for x in rounds)
    burst_lat = [v for x in rounds for v in x[2]]
    seq_lat = [v for x in rounds for v in x[4]]
    p50, p95 = pct(seq_lat, 50), pct(seq_lat, 95)
    bp50, bp95 = pct(burst_lat, 50), pct(burst_lat, 95)
    double_s = statistics.median(v for x in rounds for v in x[5])
    share = double_s / statistics.median(seq_lat)
    print(f"# {ROUNDS} rounds of {NODES} joins at once and {NODES} one after another, each join "
          f"a join-probe process with its own swtpm's fresh evidence over mutual aTLS; all "
          f"HTTP 200, audit log: exactly {NODES} admissions per burst and per sequence")
    print(f"{'name':34} {'baseline':>12} {'candidate':>12} {'ratio':>8}")
    print(f"{name:34} {seq_rate:12.2f} {burst_rate:12.2f} "
          f"{ratio:8.3f} (baseline: the same {NODES} joins one after another; medians)")
    each = ", ".join(f"{x[0]:.2f}" for x in rounds)
    print(f"# concurrent: {NODES} joins in {each} s ({launch_s * 1e3:.0f} ms to start all "
          f"clients); client latency min {min(burst_lat) * 1e3:.0f} ms, p50 {bp50 * 1e3:.0f} ms, "
          f"p95 {bp95 * 1e3:.0f} ms, max {max(burst_lat) * 1e3:.0f} ms")
    each = ", ".join(f"{x[3]:.2f}" for x in rounds)
    print(f"# sequential: {NODES} joins in {each} s; single join latency p50 {p50 * 1e3:.0f} ms, "
          f"p95 {p95 * 1e3:.0f} ms")
    print(f"# the kubeadm double (a Python script standing in for `kubeadm token create`, run "
          f"once per join inside the join service) costs {double_s * 1e3:.0f} ms a call on its "
          f"own, ~{share:.0%} of a single join: it dominates, and it is not the join service's "
          f"cost")
    out = build / "bench" / "join.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "nodes": NODES, "rounds": ROUNDS, "cpus": os.cpu_count(),
        "concurrent": {"seconds": [x[0] for x in rounds], "joinsPerSecond": burst_rate,
                       "launchSeconds": launch_s, "latencyMinMs": min(burst_lat) * 1e3,
                       "latencyP50Ms": bp50 * 1e3, "latencyP95Ms": bp95 * 1e3,
                       "latencyMaxMs": max(burst_lat) * 1e3},
        "sequential": {"seconds": [x[3] for x in rounds], "joinsPerSecond": seq_rate},
        "singleJoinLatencyP50Ms": p50 * 1e3, "singleJoinLatencyP95Ms": p95 * 1e3,
        "kubeadmDoubleTokenCreateMs": double_s * 1e3,
        "results": [{"name": name, "baseline": seq_rate,
                     "candidate": burst_rate, "ratio": ratio}],
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
