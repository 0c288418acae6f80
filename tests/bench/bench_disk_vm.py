#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: sequential throughput through the mapped state disk vs the raw disk, inside a
QEMU guest (device-mapper exists only there). Three rounds, interleaved raw / mapped / mapped
with integrity on equal-sized virtio disks; the ratio is the median of per-round ratios.
Under TCG every number is emulated CPU work: only the ratios mean something, and they are far
below what hardware AES (AES-NI) gives on a real node."""
import json
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "vm"))
import vmharness  # noqa: E402

MIB = 128
ROUNDS = 3
GUEST = r"""
export DM_DISABLE_UDEV=1
mkdir -p /run/cryptsetup
printf 'bench-key-0123456789abcdef012345' > /tmp/k
DM=/bin/cloister-disk-mapper
$DM format --device /dev/vdb --key-file /tmp/k --integrity off > /dev/null 2>&1 || report "FAIL format plain"
$DM format --device /dev/vdc --key-file /tmp/k --integrity on > /dev/null 2>&1 || report "FAIL format integrity"
$DM open --device /dev/vdb --key-file /tmp/k --name plain > /dev/null 2>&1 || report "FAIL open plain"
$DM open --device /dev/vdc --key-file /tmp/k --name integ > /dev/null 2>&1 || report "FAIL open integrity"
t() { cut -d' ' -f1 /proc/uptime | tr -d .; }
run() {
        s=$(t); dd if=/dev/zero of=$2 bs=1M count=@MIB@ oflag=direct 2>/dev/null; e=$(t)
        report "R $1 write $((e - s))"
        s=$(t); dd if=$2 of=/dev/null bs=1M count=@MIB@ iflag=direct 2>/dev/null; e=$(t)
        report "R $1 read $((e - s))"
}
report HARNESS-BEGIN
for round in 1 2 3; do
        run raw /dev/vda
        run mapped /dev/mapper/plain
        run integrity /dev/mapper/integ
done
report HARNESS-END
poweroff -f
""".replace("@MIB@", str(MIB))


def main():
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build")
    out = build / "bench" / "disk.json"
    work = build / "bench" / "disk-vm"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    parts = vmharness.debian_parts(work)
    disks = []
    for name in ("raw", "plain", "integrity"):
        p = work / f"{name}.img"
        with open(p, "wb") as f:
            f.truncate((MIB + 40) * 1024 * 1024)
        disks.append(p)
    tree = vmharness.Initramfs(work / "initramfs")
    tree.add_binary(build / "bin" / "cloister-disk-mapper")
    tree.add_modules(parts["modules"], ["virtio_pci", "virtio_blk", "dm-mod", "dm-crypt", "ecb",
                                        "xts", "algif_skcipher", "algif_hash", "dm-integrity",
                                        "authenc"])
    tree.add_text("/init", vmharness.INIT_PRELUDE + GUEST, 0o755)
    initrd = tree.build(work / "initrd.cpio")
    body = vmharness.run_guest(work / "vm", kernel=parts["kernel"], initrd=initrd, disks=disks,
                               memory=768, timeout=900)
    if "FAIL" in body:
        print(body)
        return 1
    times = {}
    for line in body.splitlines():
        f = line.split()
        if f[:1] == ["R"]:
            times.setdefault((f[1], f[2]), []).append(max(int(f[3]), 1))
    results = []
    print(f"{'name':34} {'baseline':>12} {'candidate':>12} {'ratio':>8}")
    for kind in ("mapped", "integrity"):
        for op in ("write", "read"):
            raw, cand = times[("raw", op)], times[(kind, op)]
            # Throughput ratio per round = raw time / candidate time.
            ratio = statistics.median(r / c for r, c in zip(raw, cand))
            raw_mb = MIB / (statistics.median(raw) / 100)
            cand_mb = MIB / (statistics.median(cand) / 100)
            name = f"disk-{op}-{kind}-vs-raw"
            print(f"{name:34} {raw_mb:10.1f}MB {cand_mb:10.1f}MB {ratio:8.3f} "
                  "(TCG guest: relative only)")
            results.append({"name": name, "rawMBps": raw_mb, "candidateMBps": cand_mb,
                            "ratio": ratio})
    out.write_text(json.dumps({"mib": MIB, "rounds": ROUNDS, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    # A run cut short (make bench under a timeout, Ctrl-C) still tears its VMs, swtpms and
    # namespace down: SIGTERM unwinds through the finally blocks like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
