# SPDX-License-Identifier: Apache-2.0
"""The image build's signed measurements file carries the TDX RTMRs predicted from the disk it
built (docs/tdx.md, "RTMR prediction"): RTMR1 from the image's GPT, UKI and kernel, RTMR2 and
RTMR3 zero (Debian's systemd-stub 254 and the bookworm kernel do not measure into the CC
protocol), inside the signature."""
import json
import subprocess

from conftest import BUILD


def measure(*args):
    return subprocess.run([str(BUILD / "bin" / "cloister-measure"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_image_measurements_carry_the_tdx_rtmrs_predicted_from_its_disk(image_dir):
    m = json.loads((image_dir / "measurements.json").read_text())
    r = measure("image", image_dir / "image.raw", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert m["tdx"] == json.loads(r.stdout)["tdx"]
    assert set(m["tdx"]) == {"rtmr1", "rtmr2", "rtmr3"}
    assert m["tdx"]["rtmr1"] != "00" * 48
    assert m["tdx"]["rtmr2"] == m["tdx"]["rtmr3"] == "00" * 48
    r = measure("verify", "--pubkey", image_dir / "measurements-DEVELOPMENT-ONLY.pub.pem",
                image_dir / "measurements.json", image_dir / "measurements.json.sig")
    assert r.returncode == 0, r.stderr
