# SPDX-License-Identifier: Apache-2.0
"""Same inputs, same image: a second build from scratch (debootstrap included) gives the UKI,
the root file system, the disk image and the predicted measurements of the first, byte for
byte."""
import hashlib
import subprocess

from conftest import BUILD, ROOT


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_second_image_build_from_scratch_gives_the_same_bytes_and_measurements(image_dir,
                                                                              tmp_path):
    out = tmp_path / "second"
    r = subprocess.run([ROOT / "image/build", "--build", BUILD, "--output", out],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "debootstrap done" in r.stdout  # built again, not copied
    for name in ("uki.efi", "root.squashfs", "root.verity", "image.raw", "measurements.json"):
        assert sha256(out / name) == sha256(image_dir / name), name
    # The signature is over the same bytes, with the same (development) key.
    assert (out / "measurements-DEVELOPMENT-ONLY.pub.pem").read_bytes() == \
        (image_dir / "measurements-DEVELOPMENT-ONLY.pub.pem").read_bytes()
