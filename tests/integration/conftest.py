# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: where the binaries are, and how to run them."""
import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CLOISTER_BUILD", ROOT / "build"))
TESTDATA = Path(os.environ.get("CLOISTER_TESTDATA", ROOT.parent / "shared" / "testdata"))


def binary(name: str) -> Path:
    path = BUILD / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run 'make' first")
    return path


def run(name: str, *args, check=False, input=None, cwd=None, env=None):
    """Runs a Cloister binary with an argument vector; returns CompletedProcess (text mode)."""
    return subprocess.run([str(binary(name)), *map(str, args)], capture_output=True, text=True,
                          input=input, cwd=cwd, env=env, check=check, timeout=120)


# A run cut short by SIGTERM (a CI job's or make's timeout) unwinds as Ctrl-C does: pytest then
# tears the fixtures down (VMs, swtpms, namespaces, processes) instead of leaving them running.
signal.signal(signal.SIGTERM, signal.default_int_handler)

@pytest.fixture
def cloister():
    return lambda *args, **kw: run("cloister", *args, **kw)


@pytest.fixture
def testdata():
    return TESTDATA


class Swtpm:
    """A fresh swtpm with its own state directory and unix sockets; stopped by the fixture."""

    def __init__(self, base: Path):
        self.dir = base
        state = base / "state"
        state.mkdir(parents=True)
        subprocess.run(["swtpm_setup", "--tpm2", "--tpmstate", str(state), "--createek",
                        "--pcr-banks", "sha256", "--overwrite"], check=True, capture_output=True)
        self.sock = base / "sock"
        self.pidfile = base / "pid"
        subprocess.run(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                        "--server", f"type=unixio,path={self.sock}",
                        "--ctrl", f"type=unixio,path={self.sock}.ctrl",
                        "--flags", "startup-clear", "--pid", f"file={self.pidfile}", "--daemon"],
                       check=True, capture_output=True)
        self.tcti = f"swtpm:path={self.sock}"

    def stop(self):
        try:
            os.kill(int(self.pidfile.read_text()), 15)
        except (OSError, ValueError):
            pass


@pytest.fixture
def swtpm(tmp_path):
    t = Swtpm(tmp_path / "tpm")
    yield t
    t.stop()
