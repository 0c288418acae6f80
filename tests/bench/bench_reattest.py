#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: continuous re-attestation's cost (docs/reattestation.md). One control plane
(cloister-bootstrapper initialised by `cloister apply`, then cloister-join-service) re-attests
NODES joined workers, each a cloister-bootstrapper process with its OWN swtpm, boot log, state
disk and pinned attestation key (the fixtures of tests/integration/test_join.py), every INTERVAL
seconds (the policy's reattestation section; 60 s, the default, unless told otherwise). Nodes are
prepared PREP_WORKERS at a time and join JOIN_BATCH at a time (bounded memory and startup).
The cluster's policy trusts any attestation key (akTrust insecure-any, --insecure-allow-any-ak):
a pinned list holds at most 64 keys and ek-cert is not possible over aTLS; each member is still
held to the key it joined with (see main()).

Once every member passed once, the join service is watched for INTERVALS intervals, sampled
every second from /proc: the CPU time (user + system, /proc/PID/stat) of its whole process tree
(the monitor, the network process, the re-attestation process and any child the monitor ran
and reaped: its cutime/cstime) and the resident memory (VmRSS) of each. No `cloister status`
runs inside the window (it attests every member itself): the attempts made are counted from the
records before and after it.

The baseline, in the same run against the same members: `cloister verify --node` of a member,
the CPU of the CLI process (getrusage of the children), REPEAT times.

Lines (name baseline candidate ratio target PASS|FAIL):
  reattest-attempt-vs-verify-node   one verify --node's CPU, one attempt's join-service CPU;
                                    target: an attempt costs no more than one verify --node
  reattest-cpu-share-one-core       1 core, the join service's CPU share over the window;
                                    target < 5 % (the issue's: 100 members at 60 s)
  reattest-rss-first-vs-last        the tree's RSS at the end of the first interval, at the end
                                    of the last; target <= 1.05 (bounded: no growth)
  reattest-jitter-busiest-second    NODES+1 (all at once), the most attempts that ended in one
                                    second of the last interval; target <= 0.10 (asserted
                                    from 50 members: uniform over 60 s is under 2 a second)
The CPU share's target is only asserted at 100 or more members and a 60 s interval: a run told
otherwise prints it with "(not the target configuration)".

Environment: BENCH_REATTEST_NODES (100), BENCH_REATTEST_INTERVAL (60),
BENCH_REATTEST_INTERVALS (4), BENCH_REATTEST_REPEAT (10).
Usage: bench_reattest.py BUILD_DIR. Writes BUILD_DIR/bench/reattest.json. Exit status 0 only if
every line passed."""
import calendar
import json
import os
import resource
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = int(os.environ.get("BENCH_REATTEST_NODES", "100"))
INTERVAL = int(os.environ.get("BENCH_REATTEST_INTERVAL", "60"))
INTERVALS = int(os.environ.get("BENCH_REATTEST_INTERVALS", "4"))
REPEAT = int(os.environ.get("BENCH_REATTEST_REPEAT", "10"))
PREP_WORKERS = 4
JOIN_BATCH = 10
TARGET_SHARE = 0.05
TARGET_ATTEMPT_VS_VERIFY = 1.0
TARGET_RSS_GROWTH = 1.05
TARGET_BUSIEST_SECOND = 0.10
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def stat(pid):
    """(ppid, utime + stime, cutime + cstime) in seconds, from /proc/PID/stat."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[1]), (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK


def rss(pid):
    """Resident memory of one process, bytes (/proc/PID/statm: resident pages)."""
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * PAGE


def tree(root):
    """root and every live descendant."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = stat(d)[0]
            except (OSError, IndexError, ValueError):
                pass
    out, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        out += frontier
    return out


def sample(monitor):
    """(CPU seconds of the tree so far, {pid: rss}): the monitor's own time and its reaped
    children's, every live descendant's own time."""
    cpu, mem = 0.0, {}
    for pid in tree(monitor):
        try:
            _, own, reaped = stat(pid)
            mem[pid] = rss(pid)
        except (OSError, IndexError, ValueError):
            continue  # exited in between: its time reaches the monitor's cutime once reaped
        cpu += own + (reaped if pid == monitor else 0)
    return cpu, mem


def line(name, baseline, candidate, ratio, op, target, unasserted=None):
    """One result line; unasserted: why the target does not apply to this run (shown, not
    judged)."""
    ok = ratio <= target if op == "<=" else ratio < target
    verdict = f"(not asserted: {unasserted})" if unasserted else "PASS" if ok else "FAIL"
    print(f"{name:34} {baseline:12.6f} {candidate:12.6f} {ratio:8.3f} {op}{target:<5.2f} "
          f"{verdict}")
    return {"name": name, "baseline": baseline, "candidate": candidate, "ratio": ratio,
            "target": f"{op}{target}", "pass": ok or bool(unasserted),
            "asserted": not unasserted}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = Path(sys.argv[1])
    build = (build if build.is_absolute() else ROOT / build).resolve()
    os.environ["CLOISTER_BUILD"] = str(build)
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.dont_write_bytecode = True  # no __pycache__ left in tests/integration
    import test_join as tj  # noqa: E402
    from conftest import run  # noqa: E402

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = tj.Node.start
    tj.Node.start = lambda self, metadata, *extra, env=None: start(
        self, metadata, *extra, "--insecure-allow-any-ak", env=env)
    tmp = Path(tempfile.mkdtemp(prefix="cloister-bench-reattest-"))
    cluster = tj.Cluster(tmp)
    started = time.monotonic()
    try:
        made = {}

        def make(name):
            made[name] = tj.Node(tmp / name, name)

        names = ["cp-1"] + [f"worker-{i:03d}" for i in range(1, NODES + 1)]
        pool = ThreadPoolExecutor(PREP_WORKERS)
        try:
            errors = [f.exception() for f in [pool.submit(make, n) for n in names]]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            cluster.nodes = [made[n] for n in names if n in made]
        if any(errors):
            sys.exit(f"bench-reattest: preparing the nodes failed: {next(e for e in errors if e)!r}")
        cp, workers = made["cp-1"], [made[n] for n in names[1:]]
        # The baseline's policy: worker-001's attestation key pinned, PCR 15 left to
        # --cluster-id, as an owner verifying one node writes it.
        member_policy = tmp / "member.json"
        cluster.policy([workers[0]], member_policy)
        # The cluster's: a pinned list holds at most 64 keys (ATTEST_AK_PINS_MAX) and ek-cert
        # needs a credential activation aTLS cannot do, so 100 members take akTrust
        # insecure-any (--insecure-allow-any-ak on every bootstrapper, see start()).
        # Re-attestation still holds each member to the key it joined with (akDigest), and
        # each attempt's verification is the pinned one's minus one key comparison (plus the
        # INSECURE warning it logs).
        policy = cluster.policy([cp])
        doc = json.loads(policy.read_text())
        doc["akTrust"] = {"mode": "insecure-any"}
        doc["reattestation"] = {"intervalSeconds": INTERVAL}
        policy.write_text(json.dumps(doc))
        cluster.init(cp, policy)
        print(f"# prepared 1 control plane + {NODES} workers (own swtpm, boot log, state disk) "
              f"in {time.monotonic() - started:.0f} s", flush=True)
        t = time.monotonic()
        for i in range(0, NODES, JOIN_BATCH):
            batch = workers[i:i + JOIN_BATCH]
            for w in batch:
                cluster.join(w, policy, timeout=600)
            for w in batch:
                w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)",
                                    timeout=900).group(1)
        print(f"# {NODES} workers joined ({JOIN_BATCH} at a time) in "
              f"{time.monotonic() - t:.0f} s", flush=True)
        log = cp.log.read_text()
        monitor = cp.proc.pid
        roles = {monitor: "monitor",
                 int(re.search(r"network process (\d+) serves", log).group(1)): "network",
                 int(re.search(r"re-attestation process (\d+)", log).group(1)): "reattest"}

        def members():
            r = run("cloister", "status", "--policy", policy, "--state-file",
                    tmp / "cloister-state.json", "-o", "json")
            if r.returncode != 0:
                sys.exit(f"bench-reattest: cloister status failed: {r.stdout}{r.stderr}")
            return {n["name"]: n["reattestation"] for n in json.loads(r.stdout)["nodes"]}

        everyone = [cp.name, *(w.name for w in workers)]
        # Every member attested once before the window (its first time: within one interval).
        deadline = time.monotonic() + 3 * INTERVAL + 120
        while True:
            before = members()
            if all((before.get(n) or {}).get("verdict") == "pass" for n in everyone):
                break
            if time.monotonic() > deadline:
                bad = {n: (before.get(n) or {}).get("verdict") for n in everyone}
                sys.exit("bench-reattest: not every member passed re-attestation in time: "
                         + str({n: v for n, v in bad.items() if v != "pass"}))
            time.sleep(max(5, INTERVAL // 4))

        # The window: one sample a second, nothing else asked of the join service.
        samples = []  # (monotonic, cpu, {pid: rss})
        t0 = time.monotonic()
        end = t0 + INTERVALS * INTERVAL
        while True:
            now = time.monotonic()
            cpu, mem = sample(monitor)
            samples.append((now, cpu, mem))
            if now >= end:
                break
            time.sleep(max(0.0, min(1.0, end - now)))
        after = members()
        if cp.proc.poll() is not None:
            sys.exit(f"bench-reattest: the join service exited ({cp.proc.returncode})")
        failed = {n: (after.get(n) or {}).get("verdict") for n in everyone}
        failed = {n: v for n, v in failed.items() if v != "pass"}
        if failed:
            sys.exit(f"bench-reattest: members did not pass every time: {failed}")
        attempts = sum(after[n]["attempts"] - before[n]["attempts"] for n in everyone)
        # A low share must come from cheap attempts, not from attempts not made: every member
        # is asked about once an interval (jitter +-20 %).
        expected = len(everyone) * INTERVALS
        if attempts < 0.8 * expected:
            sys.exit(f"bench-reattest: {attempts} attempts in {INTERVALS} intervals, expected "
                     f"about {expected}: the schedule is not keeping up")

        # Baseline: verify --node of the first worker, the CLI's own CPU.
        p = json.loads(member_policy.read_text())
        p["measurements"].pop("15", None)
        member_policy.write_text(json.dumps(p))
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(REPEAT):
            r = subprocess.run([str(build / "bin" / "cloister"), "verify", "--node",
                                f"127.0.0.1:{workers[0].port}", "--policy", str(member_policy),
                                "--cluster-id", cluster.cid], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"bench-reattest: verify --node failed: {r.stdout}{r.stderr}")
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        verify_cpu = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / REPEAT
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    finally:
        cluster.stop()
        for pidfile in tmp.glob("*/tpm/pid"):  # a node whose preparation failed half-way
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        subprocess.run(["rm", "-rf", str(tmp)])

    elapsed = samples[-1][0] - samples[0][0]
    cpu = samples[-1][1] - samples[0][1]
    share = cpu / elapsed
    per_attempt = cpu / max(attempts, 1)
    # Per 10 s (CPU times tick every 10 ms: a second holds too few): the spread of the load,
    # where a schedule without jitter would show as peaks.
    per_10s = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples[::10], samples[10::10])]
    # Memory: the whole tree, and per process, at the end of each interval of the window.
    marks = [min(samples, key=lambda s: abs(s[0] - (t0 + k * INTERVAL)))
             for k in range(1, INTERVALS + 1)]
    rss_total = [sum(s[2].values()) for s in marks]
    rss_by_role = {role: [s[2].get(pid, 0) for s in marks] for pid, role in roles.items()}
    # Jitter: when each member's last attempt ended (second resolution), in the last interval.
    ends = [calendar.timegm(time.strptime(after[n]["lastResult"], "%Y-%m-%dT%H:%M:%SZ"))
            for n in everyone]
    counts = {}
    for e in ends:
        counts[e] = counts.get(e, 0) + 1
    busiest = max(counts.values())
    span = max(ends) - min(ends)

    print(f"# {NODES + 1} members (the control plane's own node included) re-attested every "
          f"{INTERVAL} s (+-20 % jitter), watched {elapsed:.0f} s ({INTERVALS} intervals): "
          f"{attempts} attempts, all passed; join service CPU {cpu:.2f} s "
          f"(per 10 s: min {min(per_10s):.2%}, median {statistics.median(per_10s):.2%}, "
          f"max {max(per_10s):.2%} of a core)")
    print("# join service RSS at the end of each interval (MiB): total "
          + ", ".join(f"{v / 2**20:.1f}" for v in rss_total) + "; "
          + "; ".join(f"{role} " + ", ".join(f"{v / 2**20:.1f}" for v in vals)
                      for role, vals in rss_by_role.items()))
    print(f"# last attempts of the {NODES + 1} members span {span:.0f} s; busiest second "
          f"{busiest}; uniform would be {(NODES + 1) / INTERVAL:.1f} a second")
    print(f"# baseline: cloister verify --node of worker-001, {REPEAT} times: "
          f"{verify_cpu * 1e3:.1f} ms CPU each (the CLI process, start-up included)")
    print(f"# machine: {os.cpu_count()} CPUs; {uptime}")
    print(f"{'name':34} {'baseline':>12} {'candidate':>12} {'ratio':>8} {'target':7} result")
    target_config = NODES >= 100 and INTERVAL == 60
    results = [
        line("reattest-attempt-vs-verify-node", verify_cpu, per_attempt,
             per_attempt / verify_cpu, "<=", TARGET_ATTEMPT_VS_VERIFY),
        line("reattest-cpu-share-one-core", 1.0, share, share, "<", TARGET_SHARE,
             None if target_config else "the target is for 100 members at 60 s"),
        line("reattest-rss-first-vs-last", rss_total[0] / 2**20, rss_total[-1] / 2**20,
             rss_total[-1] / rss_total[0], "<=", TARGET_RSS_GROWTH),
        line("reattest-jitter-busiest-second", NODES + 1, busiest, busiest / (NODES + 1), "<=",
             TARGET_BUSIEST_SECOND, None if NODES >= 50 else "fewer than 50 members"),
    ]
    out = build / "bench" / "reattest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "members": NODES + 1, "workers": NODES, "intervalSeconds": INTERVAL,
        "intervals": INTERVALS, "windowSeconds": round(elapsed, 1), "attempts": attempts,
        "joinServiceCpuSeconds": round(cpu, 3), "cpuShareOfOneCore": round(share, 5),
        "cpuSharePer10sMin": round(min(per_10s), 5),
        "cpuSharePer10sMedian": round(statistics.median(per_10s), 5),
        "cpuSharePer10sMax": round(max(per_10s), 5),
        "cpuPerAttemptSeconds": round(per_attempt, 6),
        "verifyNodeCpuSeconds": round(verify_cpu, 6),
        "rssBytesPerInterval": {"total": rss_total, **rss_by_role},
        "lastAttemptSpreadSeconds": span, "busiestSecondAttempts": busiest,
        "targetConfiguration": target_config, "cpus": os.cpu_count(), "uptime": uptime,
        "results": results}, indent=2) + "\n")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
