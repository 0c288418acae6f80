#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: joins with the membership in etcd (docs/membership.md) against the same joins
with local files, in one run, on one join service. bench_join.py's setup (one control plane,
NODES joining nodes each with its own swtpm and pinned AK, join-probe clients over mutual aTLS)
and a real 3-member etcd with mutual TLS (tests/integration/etcd_cluster.py). Each round
restarts the join service with local files (the baseline), then with --etcd-endpoints (the
candidate), and runs NODES joins at once then NODES one after another in each; every join must
get HTTP 200 and the audit log must show exactly its admissions. The ratio is the median over
rounds of candidate joins/s over baseline joins/s: below 1, etcd costs that share.

A node is one member (its attestation key is indexed), so between the burst and the sequence
the nodes' member records of the phase just measured are removed (members.json rewritten,
their keys deleted from etcd) while the join service is stopped, outside any timing: each phase
admits every node anew, under a new name.

Usage: bench_join_etcd.py BUILD_DIR. Writes BUILD_DIR/bench/join-etcd.json."""
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODES = 20
ROUNDS = 2


def main():
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
    if not build.is_absolute():
        build = ROOT / build
    build = build.resolve()
    os.environ["CLOISTER_BUILD"] = str(build)
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    sys.dont_write_bytecode = True
    import bench_join as bj  # noqa: E402
    import test_join as tj  # noqa: E402
    from etcd_cluster import EtcdCluster  # noqa: E402

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = bj.Bench(build, tj, NODES, "qemu-vtpm")
    etcd = None
    results = {"local": [], "etcd": []}

    def reset(prefix):
        """The members named prefix-NN forgotten, in members.json and in etcd."""
        path = b.cp.state / "members.json"
        doc = json.loads(path.read_text())
        doc["members"] = [m for m in doc["members"] if not m["name"].startswith(prefix)]
        path.write_text(json.dumps(doc))
        p = f"/cloister/v1/{b.cluster.cid}/"
        gone = [k for k, v in etcd.get_prefix(p).items()
                if k.startswith(p + "members/" + prefix) or
                ((k.startswith(p + "disks/") or k.startswith(p + "aks/")) and
                 v.startswith(prefix))]
        for k in gone:
            r = etcd.ctl("del", k)
            if r.returncode != 0:
                raise RuntimeError(f"etcdctl del {k}: {r.stderr}")
    try:
        b.prepare()
        b.new_cluster("cluster-etcd")  # one cluster for every phase: reset() forgets members
        etcd = EtcdCluster(b.tmp / "etcd")
        etcd.start()
        seen = 0
        for r in range(1, ROUNDS + 1):
            for mode in ("local", "etcd"):
                extra = [str(a) for a in etcd.client_args()] if mode == "etcd" else []
                times = []
                for phase in ("b", "s"):
                    # The members are forgotten while no join service runs: one with etcd
                    # rewrites its local cache from etcd while the keys are being deleted.
                    tj.stop_join_service(b.cp)
                    if phase == "s":
                        reset(f"{mode}b{r}-")
                    tj.start_join_service(b.cp, *extra)
                    seen = len(b.cluster.audit())
                    run = b.burst if phase == "b" else b.sequential
                    times.append(run(f"{mode}{phase}{r}")[0])
                    seen += b.admissions(seen, f"{mode}{phase}{r}")
                tj.stop_join_service(b.cp)
                reset(f"{mode}s{r}-")
                burst_s, seq_s = times
                if b.failures:
                    raise RuntimeError("joins failed")
                results[mode].append((NODES / burst_s, NODES / seq_s))
                print(f"# round {r} {mode:5}: {NODES} at once {NODES / burst_s:.2f} joins/s, "
                      f"one after another {NODES / seq_s:.2f} joins/s")
        # Every etcd-mode admission is in the chain there (the independent check of
        # test_membership_etcd.chain), once.
        from test_membership_etcd import chain  # noqa: E402
        admitted = [e["node"] for e in chain(b.cluster, etcd) if e["event"] == "admission"]
        want = sorted([f"etcd{k}{r}-{i:03d}" for r in range(1, ROUNDS + 1) for k in "bs"
                       for i in range(1, NODES + 1)] + [b.cp.name])
        if sorted(admitted) != want:
            extra = sorted(set(admitted) - set(want))[:5]
            missing = sorted(set(want) - set(admitted))[:5]
            raise RuntimeError(f"etcd's chain holds {len(admitted)} admissions, want "
                               f"{len(want)} (not expected: {extra}; missing: {missing})")
    except (Exception, tj.pytest.fail.Exception) as e:
        b.failures.append(("", f"{type(e).__name__}: {e}"))
        b.report_failure()
        return 1
    finally:
        if etcd:
            etcd.stop()
        b.cleanup()

    rows = []
    for i, what in enumerate(("concurrent", "sequential")):
        base = statistics.median(x[i] for x in results["local"])
        cand = statistics.median(x[i] for x in results["etcd"])
        ratio = statistics.median(e[i] / l[i] for l, e in zip(results["local"], results["etcd"]))
        rows.append({"name": f"joins-per-second-{what}-etcd-vs-local", "baseline": base,
                     "candidate": cand, "ratio": ratio})
    print(f"{'name':40} {'baseline':>10} {'candidate':>10} {'ratio':>8}")
    for row in rows:
        print(f"{row['name']:40} {row['baseline']:10.2f} {row['candidate']:10.2f} "
              f"{row['ratio']:8.3f}")
    print(f"# baseline: the same join service with local files; candidate: with --etcd-endpoints "
          f"(3-member etcd on loopback, mutual TLS); {ROUNDS} rounds of {NODES} joins at once and "
          f"{NODES} one after another; medians")
    out = build / "bench" / "join-etcd.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"nodes": NODES, "rounds": ROUNDS, "cpus": os.cpu_count(),
                               "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
