# SPDX-License-Identifier: Apache-2.0
"""The e2e suite: the node image (make image) booted as QEMU VMs with OVMF and swtpm."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CLOISTER_BUILD", ROOT / "build")).resolve()
IMAGE = Path(os.environ.get("CLOISTER_IMAGE_DIR", BUILD / "image")).resolve()
sys.path.insert(0, str(ROOT / "tests" / "vm"))


@pytest.fixture(scope="session")
def image_dir():
    if not (IMAGE / "image.raw").exists():
        pytest.fail(f"{IMAGE}/image.raw is missing: run 'make image' (make test-e2e does)")
    return IMAGE
