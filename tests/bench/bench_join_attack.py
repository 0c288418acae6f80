#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: joins under a hostile load (issue 17). One control plane (cloister-bootstrapper
initialised by `cloister apply`, then cloister-join-service) with its own swtpm; 50 joining
nodes, each with its own swtpm (as in bench_join.py), each a join-probe process from its own
loopback address (127.0.1.i; why: bench_join.py), one after another (so that each join's time is
what the attack adds to a lone join), or all at once with --at-once (then each also waits for
the others). While they join, all at once:

- 600 slow-loris TCP connections (tests/integration/attackers.py), each dripping one byte of a
  TLS ClientHello every 2 s and reconnecting when closed, 50 from each of 127.0.0.2-13;
- 300 clients holding large bodies (tests/tools/atls-hold --mode large-body: aTLS without
  evidence, the headers of a 1 MiB POST /v1/join and most of its body, then nothing; reconnecting
  when closed), 50 from each of 127.0.0.40-45;
- 100 clients guessing the master secret (atls-hold --mode wrong-init: POST /v1/init with a
  random secret, again and again, one connection at a time each), 10 from each of
  127.0.0.50-59.

Baseline, measured in the same run against the same join service before the attack: a lone
join's latency (the median of LONE joins one after another) and the service's resident memory
at rest (its monitor and network process, not the kubeadm calls). Targets:
- every one of the 50 joins gets HTTP 200 with its own ticket, each name admitted once in the
  audit log (besides "the same ticket again" for a client that asked again), each within a
  lone join's time plus the handshake deadline (10 s, RPC_DEADLINE_SEC_DEFAULT):
  slowest / (lone + deadline) <= 1;
- peak resident memory during the attack (sampled every 0.2 s) <= idle + 64 MiB;
- the audit log grows by at most (joins + 100) KiB: the admissions, and a bounded number of
  entries for the refusals (unattested refusals are counted, not logged one by one).
A joining client whose call fails below HTTP or is answered 409 or 503 tries again as the
bootstrapper does (0.5 s, doubling up to 5 s, at most 20 attempts; its latency includes them);
the retries are printed. The
attackers' own counts (connections made, closed by the server, answers) show the attack was on.

Usage: bench_join_attack.py BUILD_DIR [--joins N] [--at-once]   (default 50, one after another).
Writes BUILD_DIR/bench/join-attack.json (join-attack-at-once.json with --at-once). Exit status
0 only if every join succeeded and every target held."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_join import ATTEMPTS, PREP_WORKERS, Bench, cpu_seconds, pct, source  # noqa: E402

JOINS = 50
LONE = 3
LORIS = 600
LARGE_BODY = (300, 50, 40)  # clients, per address, first address 127.0.0.N
WRONG_INIT = (100, 10, 50)
DEADLINE_S = 10  # RPC_DEADLINE_SEC_DEFAULT: from accept to a whole request
RSS_MARGIN_KIB = 64 * 1024


def rss_kib(pid):
    """Resident memory of the join service: its monitor (pid) and network process."""
    total = 0
    pids = [str(pid)] + subprocess.run(["pgrep", "-P", str(pid), "cloister-join"],
                                       capture_output=True, text=True).stdout.split()
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_event = pid, 0, threading.Event()

    def run(self):
        while not self.stop_event.wait(0.2):
            self.peak = max(self.peak, rss_kib(self.pid))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default=str(ROOT / "build"))
    ap.add_argument("--joins", type=int, default=JOINS, help="joins under attack (default 50)")
    ap.add_argument("--at-once", action="store_true",
                    help="start the joins all at once (default: one after another)")
    args = ap.parse_args()
    n = args.joins
    if not 1 <= n <= 500:
        ap.error("--joins takes 1 to 500")
    build = Path(args.build)
    if not build.is_absolute():
        build = ROOT / build
    build = build.resolve()
    for need in (build / "bin" / "cloister-bootstrapper", build / "tests" / "join-probe",
                 build / "tests" / "atls-hold"):
        if not need.exists():
            print(f"bench-join-attack: {need} is not built (make BUILD={build} all "
                  f"{build}/tests/join-probe {build}/tests/atls-hold)", file=sys.stderr)
            return 2
    os.environ["CLOISTER_BUILD"] = str(build)
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.dont_write_bytecode = True
    import test_join as tj  # noqa: E402
    from attackers import Attack, counts, hold  # noqa: E402


    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Nodes 1..LONE join alone (the baseline), LONE+1..LONE+n under attack: one attestation
    # key is one member, so every join has a node of its own.
    b = Bench(build, tj, LONE + n)
    holders = []
    try:
        t = time.perf_counter()
        b.prepare()
        print(f"# prepared {LONE + n} nodes (own swtpm, boot replayed, AK pinned) in "
              f"{time.perf_counter() - t:.1f} s, {PREP_WORKERS} at a time", flush=True)
        since = b.new_cluster("cluster")
        cp = b.cp
        lone = []
        for i in range(1, LONE + 1):
            t = time.perf_counter()
            p, out = b.launch(i, b.nodes[i - 1], f"lone-{i}")
            p.wait(timeout=120)
            lone.append(time.perf_counter() - t)
            b.check(f"lone-{i}", p, out)
        if b.failures:
            raise RuntimeError("a lone join failed")
        lone_s = statistics.median(lone)
        time.sleep(1)
        idle = max(rss_kib(cp.proc.pid) for _ in range(3))
        log = cp.state / "audit.log"
        log_before = log.stat().st_size
        entries_before = len(b.cluster.audit())
        sampler = Sampler(cp.proc.pid)
        sampler.start()
        tool, port = build / "tests" / "atls-hold", int(cp.port)
        # Long enough for the joins one after another; ended as soon as they are done.
        attack_s = int(DEADLINE_S * 1.5 + (lone_s + DEADLINE_S) * n + 60)
        cpu0 = cpu_seconds(cp.proc.pid)
        with Attack(port, slow_loris=LORIS) as loris:
            for total, per, first in (LARGE_BODY,):
                holders += [("large-body", hold(tool, b.policy, b.cluster.cid, port, "large-body",
                                                f"127.0.0.{first + a}", per, attack_s))
                            for a in range(total // per)]
            total, per, first = WRONG_INIT
            holders += [("wrong-init", hold(tool, b.policy, b.cluster.cid, port, "wrong-init",
                                            f"127.0.0.{first + k // per}", 1, attack_s))
                        for k in range(total)]
            print(f"# attack on: {LORIS} slow loris, {LARGE_BODY[0]} large-body and "
                  f"{WRONG_INIT[0]} wrong-init clients (for up to {attack_s} s)", flush=True)
            # The attack at full strength: every slow-loris connection open and closed at the
            # deadline at least once, the server's handshake buckets drained by the attackers.
            time.sleep(DEADLINE_S)
            rss_attack_only = rss_kib(cp.proc.pid)
            procs = []
            latency = {}
            t0 = time.perf_counter()
            deadline = time.monotonic() + attack_s
            for i in range(LONE + 1, LONE + n + 1):
                name = f"attacked-{i - LONE:03d}"
                p, out = b.launch(i, b.nodes[i - 1], name)
                procs.append((name, p, out, time.perf_counter()))
                if not args.at_once:  # one after another: each join's own time under attack
                    try:
                        p.wait(timeout=max(1.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        break
                    latency[name] = time.perf_counter() - procs[-1][3]
            while len(latency) < n and time.monotonic() < deadline:
                for name, p, out, started in procs:
                    if name not in latency and p.poll() is not None:
                        latency[name] = time.perf_counter() - started
                time.sleep(0.01)
            joins_s = time.perf_counter() - t0
            for name, p, out, _ in procs:
                if p.poll() is None:
                    b.failures.append((name, "still running at the end of the attack"))
                else:
                    b.check(name, p, out)
            attack_cpu = cpu_seconds(cp.proc.pid) - cpu0
            kinds = {}
            for _, p in holders:  # the joins are done: the attack ends (atls-hold on SIGTERM)
                p.send_signal(signal.SIGTERM)
            for kind, p in holders:
                c = counts(p)
                k = kinds.setdefault(kind, {"clients": 0, "connected": 0, "closedByServer": 0,
                                            "answers4xx": 0, "answersOther": 0})
                k["clients"] += 1 if kind == "wrong-init" else LARGE_BODY[1]
                k["connected"] += c["connected"]
                k["closedByServer"] += c["closedByServer"]
                k["answers4xx"] += c["answers"]["4xx"]
                k["answersOther"] += c["answers"]["other"]
            holders = []
        sampler.stop_event.set()
        sampler.join()
        if cp.proc.poll() is not None:
            b.failures.append(("", f"the join service exited ({cp.proc.returncode})"))
        entries = b.cluster.audit()[since:]
        admitted = sorted(e["node"] for e in entries if e["event"] == "admission"
                          and "the same ticket again" not in e.get("reason", ""))
        want = sorted([f"lone-{i}" for i in range(1, LONE + 1)]
                      + [f"attacked-{i:03d}" for i in range(1, n + 1)])
        if admitted != want:
            b.failures.append(("", f"audit log: {len(admitted)} admissions, want exactly "
                                   f"{len(want)}, one per join"))
        if len(set(b.tokens)) != len(b.tokens):
            b.failures.append(("", "a token was received twice"))
        growth = log.stat().st_size - log_before
        new_entries = b.cluster.audit()[entries_before:]
        if b.failures:
            b.report_failure()
            return 1
    except (Exception, tj.pytest.fail.Exception) as e:
        b.failures.append(("", f"{type(e).__name__}: {e}"))
        b.report_failure()
        return 1
    finally:
        for _, p in holders:
            p.kill()
            p.wait()
        b.cleanup()

    lat = list(latency.values())
    slowest = max(lat)
    bound_kib = n + 100
    results = []

    def line(name, baseline, candidate, r, op, target, note):
        ok = r >= target if op == ">=" else r <= target
        print(f"{name:34} {baseline:12.3f} {candidate:12.3f} {r:8.3f} {op}{target:<5.2f} "
              f"{'PASS' if ok else 'FAIL'}  ({note})")
        results.append({"name": name, "baseline": baseline, "candidate": candidate, "ratio": r,
                        "op": op, "target": target, "pass": ok})

    refusals = [e for e in new_entries if e["event"] != "admission"]
    how = "at once" if args.at_once else "one after another"
    print(f"# {n} joins {how}, each from its own address with its own swtpm, while {LORIS} "
          f"slow-loris connections, {LARGE_BODY[0]} large-body clients and {WRONG_INIT[0]} "
          f"wrong-init-secret clients were active: all HTTP 200, distinct tokens, "
          f"{len(admitted)} admissions in the audit log ({LONE} lone + {n})")
    print(f"{'name':34} {'baseline':>12} {'candidate':>12} {'ratio':>8} {'target':7}")
    line(f"join-under-attack-{n}-{'at-once' if args.at_once else 'one-by-one'}-slowest",
         lone_s + DEADLINE_S, slowest,
         slowest / (lone_s + DEADLINE_S), "<=", 1.0,
         f"seconds; baseline: a lone join ({lone_s:.2f} s, median of {LONE}) + the {DEADLINE_S} s "
         f"deadline; candidate: the slowest of the {n}")
    line("join-under-attack-peak-rss", (idle + RSS_MARGIN_KIB) / 1024, sampler.peak / 1024,
         sampler.peak / (idle + RSS_MARGIN_KIB), "<=", 1.0,
         f"MiB; baseline: idle {idle / 1024:.1f} MiB + 64 MiB; candidate: the peak, sampled "
         f"every 0.2 s")
    line("join-under-attack-audit-growth", bound_kib, growth / 1024, growth / 1024 / bound_kib,
         "<=", 1.0, f"KiB; bound: (joins + 100) KiB; {len(new_entries)} entries, "
         f"{len(new_entries) - len(refusals)} admissions, {len(refusals)} others")
    print(f"# joins under attack: {n} in {joins_s:.2f} s; client latency min {min(lat):.2f} s, "
          f"p50 {pct(lat, 50):.2f} s, p95 {pct(lat, 95):.2f} s, max {slowest:.2f} s; lone joins "
          f"{', '.join(f'{x:.2f}' for x in lone)} s; {b.retries} retries by the "
          f"clients" + (" (" + "; ".join(f"{c} x {w}" for w, c in b.retry_reasons.items()) + ")"
                        if b.retries else ""))
    print(f"# resident memory: idle {idle / 1024:.1f} MiB, attack alone (before the joins) "
          f"{rss_attack_only / 1024:.1f} MiB, peak {sampler.peak / 1024:.1f} MiB; the join "
          f"service's own CPU during the attack {attack_cpu:.1f} s")
    print(f"# slow loris: {loris.connected} connections made, {loris.closed_by_server} closed by "
          f"the server, errors {loris.errors or 'none'}")
    for kind, k in kinds.items():
        print(f"# {kind}: {k['clients']} clients, {k['connected']} connections made, "
              f"{k['closedByServer']} closed by the server, answers 4xx {k['answers4xx']}, "
              f"other {k['answersOther']}")
    print(f"# audit log: +{growth} bytes; entries other than admissions: "
          + ("; ".join(f"{e['event']} {e.get('verdict', '')} {e.get('reason', '')[:80]}"
                        for e in refusals[:5]) or "none"))
    print(f"# machine: {os.cpu_count()} CPUs, load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = build / "bench" / ("join-attack-at-once.json" if args.at_once else "join-attack.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "joins": n, "atOnce": args.at_once, "cpus": os.cpu_count(), "loadAverage": os.getloadavg(),
        "attack": {"slowLoris": LORIS, "largeBody": LARGE_BODY[0], "wrongInit": WRONG_INIT[0],
                   "seconds": attack_s, "slowLorisConnected": loris.connected,
                   "slowLorisClosedByServer": loris.closed_by_server, "holders": kinds},
        "loneJoinSeconds": lone, "joinsSeconds": joins_s,
        "latency": {"minS": min(lat), "p50S": pct(lat, 50), "p95S": pct(lat, 95),
                    "maxS": slowest},
        "clientRetries": b.retries, "rssKiB": {"idle": idle, "attackOnly": rss_attack_only,
                                               "peak": sampler.peak},
        "auditGrowthBytes": growth, "auditEntries": len(new_entries),
        "serviceCpuSeconds": attack_cpu, "attempts": ATTEMPTS,
        "sources": [source(1), source(LONE + n)],
        "results": results,
    }, indent=2) + "\n")
    failed = sum(not r["pass"] for r in results)
    print(f"bench: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
