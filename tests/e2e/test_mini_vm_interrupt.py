# SPDX-License-Identifier: Apache-2.0
"""`cloister mini up --vm` cut short (a timeout's SIGTERM, Ctrl-C): the VMs, their swtpms, the
network namespace and the workspace are gone afterwards."""
import hashlib
import os
import signal
import subprocess
import time

from conftest import BUILD


def test_mini_vm_up_cut_short_by_sigterm_stops_the_vms_and_removes_everything(image_dir,
                                                                            tmp_path):
    work = (tmp_path / "mini-vm").resolve()
    env = dict(os.environ, BUILD=str(BUILD), IMAGE_DIR=str(image_dir), MINI_VM_DIR=str(work),
               MINI_DIR=str(tmp_path / "mini"))
    ws = tmp_path / "ws"  # the workspace: the owner's files go there, and must go again
    ws.mkdir()
    p = subprocess.Popen([str(BUILD / "bin" / "cloister"), "mini", "up", "--vm", "--nodes", "1"],
                         env=env, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        # Wait until node1's VM runs and has printed something: QEMU, swtpm and the namespace.
        deadline = time.monotonic() + 600
        console = work / "node1" / "console-1.log"
        while not (console.exists() and console.stat().st_size > 0):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.2)
        ns = "cvm-" + hashlib.sha256(str(work).encode()).hexdigest()[:6]
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert subprocess.run(["pgrep", "-f", f"qemu-system.*{work}"]).returncode == 0
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "interrupted" in err, out + err
    assert not work.exists()
    assert list(ws.iterdir()) == [], list(ws.iterdir())
    left = subprocess.run(["pgrep", "-af", str(work)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in namespaces, "namespace left behind: " + namespaces
