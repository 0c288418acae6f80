#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: TCP throughput between two member VMs through the WireGuard mesh (their
cloister0 addresses) against the same two VMs without it (their underlay addresses on the
bridge), measured alternately in the same run; reported as a ratio (docs/mesh.md).

The cluster is tests/vm/vmcluster.py's (the node image, its bootstrapper with --mesh kernel);
the streams are meshprobe's python3 sender and receiver, run in the guests through the TEST
image's command channel, so a TEST image is required (make image IMAGE_KIND=test, or auto here).
Under TCG the guests' CPU (WireGuard's ChaCha20-Poly1305 and the copies) bounds both figures:
the ratio is informational, the absolute figures are this machine's, recorded with it.

CLOISTER_BENCH_MESH_NODES=3 (default 2: the control plane and a worker): a control plane and two
workers, measured between the workers.

Usage: bench_mesh_vm.py BUILD_DIR. Writes BUILD_DIR/bench/mesh-vm.json.
"""
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vm"))
import meshprobe  # noqa: E402
import vmcluster  # noqa: E402

NODES = int(os.environ.get("CLOISTER_BENCH_MESH_NODES", "2"))
ROUNDS = 3
BYTES = 4 << 20
PORT = 5301


def main(build):
    build = (ROOT / build).resolve() if not Path(build).is_absolute() else Path(build)
    image = build / "image"
    if not (image / "image.raw").exists():
        print(f"mesh-vm: {image}/image.raw is missing: run 'make image' first", file=sys.stderr)
        return 1
    kind = json.loads((image / "manifest.json").read_text()).get("imageKind")
    if kind != "test":
        print(f"mesh-vm: SKIPPED: a {kind} image has no command channel to run the streams in "
              "the guests (make image IMAGE_KIND=test)")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="cloister-bench-mesh-"))
    cluster = vmcluster.Cluster(tmp / "cluster", build, image,
                                log=lambda m: print(f"mesh-vm: {m}", flush=True))
    mesh, plain = [], []
    try:
        cluster.up(NODES)
        if NODES == 2 and "control planes do not join the mesh yet" in \
                cluster.nodes[0].console_text():
            print("mesh-vm: SKIPPED: the control plane does not join the mesh yet "
                  "(docs/mesh.md); CLOISTER_BENCH_MESH_NODES=3 measures it between two workers")
            return 0
        a, b = cluster.nodes[NODES - 2], cluster.nodes[NODES - 1]
        _, (addr_b, _) = meshprobe.wait_for_peering(a, b)
        runs = (("mesh", addr_b, mesh), ("plain", b.ip, plain))
        for label, dest, _ in runs:
            meshprobe.start_receiver(b, dest, PORT, f"/run/cloister-bench-{label}")
        for i in range(ROUNDS):
            for label, dest, results in runs:
                r = meshprobe.send(a, dest, PORT, BYTES, f"bench-{label}-")
                if "error" in r:
                    raise vmcluster.ClusterError(f"{label}: no connection to {dest}: {r}")
                got = meshprobe.received(b, f"/run/cloister-bench-{label}")
                if got[-1:] != [(BYTES, r["sha256"])]:
                    raise vmcluster.ClusterError(f"{label}: {got} arrived, not {BYTES} bytes")
                results.append(BYTES / r["seconds"] / 1e6)
            print(f"mesh-vm: round {i + 1}: mesh {mesh[-1]:.2f} MB/s, without it "
                  f"{plain[-1]:.2f} MB/s", flush=True)
    finally:
        cluster.down()
    m, p = statistics.median(mesh), statistics.median(plain)
    print(f"mesh-vm-tcp-throughput {p:.2f}MB/s {m:.2f}MB/s {m / p:.2f}x (informational: "
          f"TCG, {vmcluster.MEMORY_MIB} MiB, 1 vCPU per VM, {BYTES >> 20} MiB per stream, "
          f"median of {ROUNDS}; {platform.node()}, {os.cpu_count()} CPUs)")
    dest = build / "bench" / "mesh-vm.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({"name": "mesh-vm-tcp-throughput", "unit": "MB/s",
                                "baseline": plain, "candidate": mesh, "ratio": m / p,
                                "bytesPerStream": BYTES, "nodes": NODES,
                                "accelerator": vmcluster.vmharness.accelerator(),
                                "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                                            "loadavg": os.getloadavg()},
                                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                               indent=2))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build"))
