# SPDX-License-Identifier: Apache-2.0
"""The image build lists the SEV-SNP launch measurements of its guests in the signed
measurements file (image/build --snp-firmware, --snp-vcpus, --snp-vcpu-types): one entry per vCPU
count and type, each what cloister-measure snp-launch computes for that firmware, inside the
signature."""
import hashlib
import json
import subprocess

from conftest import BUILD

FIRMWARE = "/usr/share/ovmf/OVMF.fd"  # image/build's default --snp-firmware


def measure(*args):
    return subprocess.run([str(BUILD / "bin" / "cloister-measure"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_image_measurements_list_the_snp_launch_measurement_of_each_default_vcpu_count_and_type(
        image_dir):
    m = json.loads((image_dir / "measurements.json").read_text())
    entries = m["snp"]["launchMeasurements"]
    assert sorted((e["vcpus"], e["vcpuType"]) for e in entries) == \
        sorted((n, t) for n in (1, 2, 4) for t in ("EPYC-Milan", "EPYC-Genoa"))
    for e in entries:
        assert e["vmm"] == "qemu", e
        r = measure("snp-launch", "--firmware", FIRMWARE, "--vcpus", e["vcpus"], "--vcpu-type",
                    e["vcpuType"], "--vmm", "qemu", "--guest-features", e["guestFeatures"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == e["measurement"], e
    assert len({e["measurement"] for e in entries}) == len(entries)
    # The entries are inside what the development key signed.
    r = measure("verify", "--pubkey", image_dir / "measurements-DEVELOPMENT-ONLY.pub.pem",
                image_dir / "measurements.json", image_dir / "measurements.json.sig")
    assert r.returncode == 0, r.stderr
    # The manifest names the firmware they hold for.
    manifest = json.loads((image_dir / "manifest.json").read_text())
    with open(FIRMWARE, "rb") as f:
        assert manifest["files"]["snp-firmware"] == hashlib.sha256(f.read()).hexdigest()
