# SPDX-License-Identifier: Apache-2.0
"""The e2e suite: the node image (make image) booted as QEMU VMs with OVMF and swtpm."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CLOISTER_BUILD", ROOT / "build")).resolve()
IMAGE = Path(os.environ.get("CLOISTER_IMAGE_DIR", BUILD / "image")).resolve()
sys.path.insert(0, str(ROOT / "tests" / "vm"))


# A run cut short by SIGTERM (a CI job's or make's timeout) unwinds as Ctrl-C does: pytest then
# tears the fixtures down (VMs, swtpms, namespaces, processes) instead of leaving them running.
signal.signal(signal.SIGTERM, signal.default_int_handler)

@pytest.fixture(scope="session")
def image_dir():
    if not (IMAGE / "image.raw").exists():
        pytest.fail(f"{IMAGE}/image.raw is missing: run 'make image' (make test-e2e does)")
    return IMAGE


@pytest.fixture(scope="session", autouse=True)
def busy_loops():
    """CLOISTER_E2E_BUSY=N (make test-e2e E2E_BUSY=N): N busy loops compete for the CPUs while
    the suite runs, to prove that a slow machine makes it slower, not fail (the waits follow the
    VMs' progress: tests/vm/vmcluster.py)."""
    n = int(os.environ.get("CLOISTER_E2E_BUSY", "0") or 0)
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    if n:
        print(f"\ne2e: {n} busy loop(s) compete for the CPUs")
    yield
    for p in loops:
        p.kill()
        p.wait()
