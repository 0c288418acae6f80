# SPDX-License-Identifier: Apache-2.0
"""make mini's script: one local node brought up, initialised and verified, then removed."""
import os
import subprocess

from conftest import BUILD, ROOT


def test_mini_up_verifies_and_down_leaves_nothing(tmp_path):
    env = dict(os.environ, BUILD=str(BUILD), MINI_DIR=str(tmp_path / "mini"), MINI_PORT="9731")
    up = subprocess.run([str(ROOT / "scripts" / "mini"), "up"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "SIMULATED boot" in up.stdout and "test double" in up.stdout
        assert "PASS  event-log-replay" in up.stdout
        assert "PASS  pcr[15]" in up.stdout and "Verdict: PASS" in up.stdout
        assert up.stdout.rstrip().splitlines()[-1] == "Verification OK"
        status = subprocess.run([str(ROOT / "scripts" / "mini"), "status"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and "node up" in status.stdout
        # The node and the owner are in their own network namespaces, joined by a bridge.
        assert "https://10.77.0.11:9731" in up.stdout
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
        assert namespaces.count("cmini-") == 3, namespaces
    finally:
        down = subprocess.run([str(ROOT / "scripts" / "mini"), "down"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert down.returncode == 0
    assert not (tmp_path / "mini").exists()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "mini")], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cmini-" not in namespaces, "namespaces left behind: " + namespaces
