#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Re-attestation's cost (docs/reattestation.md): one control plane (cloister-bootstrapper
initialised by `cloister apply`, then cloister-join-service) re-attesting NODES joined workers,
each a bootstrapper process with its OWN swtpm (the fixtures of tests/integration/test_join.py),
every INTERVAL seconds. Measured over WINDOW seconds once every member passed: the CPU time
(user + system, /proc/PID/stat) of the join service's monitor, its network process and its
re-attestation process, and the attempts they made. The baseline, in the same run against the
same members: `cloister verify --node` of a member, CPU of the CLI process (getrusage of the
children), REPEAT times.

Prints the cost of one re-attestation (join-service CPU per attempt) against one verify --node,
and the join service's CPU share of one core at NODES members and INTERVAL. The issue's target
is NODES=100 at the default interval (60 s): under 5 % of one core. Not part of `make bench`
yet: 100 members with their own swtpm and bootstrapper are heavy on a shared 2-CPU machine; run
it alone:

    BENCH_REATTEST_NODES=100 BENCH_REATTEST_INTERVAL=60 BENCH_REATTEST_WINDOW=300 \\
        tests/bench/bench_reattest.py build

Usage: bench_reattest.py BUILD_DIR. Writes BUILD_DIR/bench/reattest.json."""
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = int(os.environ.get("BENCH_REATTEST_NODES", "100"))
INTERVAL = int(os.environ.get("BENCH_REATTEST_INTERVAL", "60"))
WINDOW = int(os.environ.get("BENCH_REATTEST_WINDOW", str(5 * INTERVAL)))
REPEAT = int(os.environ.get("BENCH_REATTEST_REPEAT", "10"))
TARGET_SHARE = 0.05


def cpu_seconds(pid):
    """user + system time of one process (all its threads), from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build = Path(sys.argv[1])
    build = build if build.is_absolute() else ROOT / build
    os.environ["CLOISTER_BUILD"] = str(build)
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from conftest import run  # noqa: E402
    from test_join import Cluster  # noqa: E402

    with tempfile.TemporaryDirectory(prefix="bench-reattest-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cp = cluster.node("cp-1")
            workers = [cluster.node(f"worker-{i}") for i in range(1, NODES + 1)]
            policy = cluster.policy([cp, *workers])
            doc = json.loads(policy.read_text())
            doc["reattestation"] = {"intervalSeconds": INTERVAL}
            policy.write_text(json.dumps(doc))
            cluster.init(cp, policy)
            for w in workers:
                cluster.join(w, policy, timeout=600)
            for w in workers:
                w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)",
                                    timeout=900).group(1)
            log = cp.log.read_text()
            pids = [cp.proc.pid,
                    int(re.search(r"network process (\d+) serves", log).group(1)),
                    int(re.search(r"re-attestation process (\d+)", log).group(1))]

            def members():
                r = run("cloister", "status", "--policy", policy, "--state-file",
                        cluster.tmp / "cloister-state.json", "-o", "json")
                return {n["name"]: n["reattestation"] for n in json.loads(r.stdout)["nodes"]}

            # Every member attested once before the window (one interval, jitter included).
            deadline = time.time() + 3 * INTERVAL + 120
            while time.time() < deadline:
                m = members()
                if all((m.get(w.name) or {}).get("verdict") == "pass" for w in workers):
                    break
                time.sleep(2)
            else:
                sys.exit("bench_reattest: not every member passed re-attestation in time")
            before = members()
            cpu0 = sum(cpu_seconds(p) for p in pids)
            t0 = time.time()
            time.sleep(WINDOW)
            cpu1 = sum(cpu_seconds(p) for p in pids)
            elapsed = time.time() - t0
            after = members()
            attempts = sum(after[w.name]["attempts"] - before[w.name]["attempts"]
                           for w in workers)
            # The `cloister status` calls above are served by the network process too: a
            # handful of requests, counted in, against hundreds of re-attestations.

            # Baseline: verify --node of the first worker, the CLI's own CPU.
            member_policy = cluster.tmp / "member.json"
            p = json.loads(policy.read_text())
            p["measurements"].pop("15")
            member_policy.write_text(json.dumps(p))
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            for _ in range(REPEAT):
                r = subprocess.run([str(build / "bin" / "cloister"), "verify", "--node",
                                    f"127.0.0.1:{workers[0].port}", "--policy",
                                    str(member_policy), "--cluster-id", cluster.cid],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"bench_reattest: verify --node failed: {r.stdout}{r.stderr}")
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            verify_cpu = ((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)) / REPEAT
        finally:
            cluster.stop()

    per_attempt = (cpu1 - cpu0) / max(attempts, 1)
    share = (cpu1 - cpu0) / elapsed
    result = {"nodes": NODES, "intervalSeconds": INTERVAL, "windowSeconds": round(elapsed, 1),
              "attempts": attempts, "joinServiceCpuSeconds": round(cpu1 - cpu0, 3),
              "cpuPerAttemptSeconds": round(per_attempt, 5),
              "verifyNodeCpuSeconds": round(verify_cpu, 5),
              "ratioAttemptToVerify": round(per_attempt / verify_cpu, 3) if verify_cpu else None,
              "cpuShareOfOneCore": round(share, 4), "targetShare": TARGET_SHARE}
    (build / "bench").mkdir(parents=True, exist_ok=True)
    (build / "bench" / "reattest.json").write_text(json.dumps(result, indent=2) + "\n")
    ok = NODES < 100 or INTERVAL != 60 or share < TARGET_SHARE
    print(f"reattest  {NODES} members every {INTERVAL} s: join service {share:.2%} of one core "
          f"over {elapsed:.0f} s ({attempts} attempts); one attempt {per_attempt * 1000:.1f} ms "
          f"CPU = {result['ratioAttemptToVerify']}x one verify --node ({verify_cpu * 1000:.1f} ms)"
          f"  {'PASS' if ok else 'FAIL'}"
          f"{'' if NODES >= 100 and INTERVAL == 60 else ' (not the target configuration)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
