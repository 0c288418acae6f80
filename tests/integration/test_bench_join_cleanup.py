# SPDX-License-Identifier: Apache-2.0
"""The join benchmarks clean up when cut short (issue 17: `make bench` killed by a timeout left
processes running for 20 minutes). Each is started small, sent SIGTERM in the middle of its run
(the joins' cluster up; for the attack bench, the attack on), and must exit leaving no process
of its own (swtpm, join service, join-probe, atls-hold: every one names the bench's directory
on its command line) and no directory."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, ROOT


def processes_naming(path):
    """The processes whose command line contains path."""
    found = []
    needle = str(path).encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "cmdline").read_bytes():
                found.append((int(d.name), (d / "cmdline").read_bytes().replace(b"\0", b" ")))
        except OSError:
            pass
    return found


def wait_for_line(proc, prefix, timeout):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return
    pytest.fail(f"no '{prefix}' line (exit {proc.poll()}):\n{''.join(seen)}")


@pytest.mark.parametrize("script,args,mark,after", [
    # Stopped in its first phase (a cluster being made, the nodes' swtpms running): 3 joins in
    # 1 round end within 6 s of "# prepared" on an idle machine, so the stop comes sooner.
    ("bench_join.py", ["--nodes", "4", "--rounds", "2"], "# prepared", 1.0),
    ("bench_join_attack.py", ["--joins", "2"], "# attack on", 3.0),
])
def test_join_bench_cut_short_by_sigterm_leaves_no_process_and_no_directory(
        script, args, mark, after):
    # A short TMPDIR: swtpm's unix socket paths must stay under 108 bytes.
    tmp_path = Path(tempfile.mkdtemp(prefix="cbj-"))
    try:
        run_and_stop(tmp_path, script, args, mark, after)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def run_and_stop(tmp_path, script, args, mark, after):
    env = dict(os.environ, TMPDIR=str(tmp_path), CLOISTER_BUILD=str(BUILD))
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "bench" / script), str(BUILD),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        wait_for_line(proc, mark, 300)
        time.sleep(after)
        (work,) = list(tmp_path.glob("cloister-bench-join-*"))
        assert processes_naming(work), "nothing of the bench was running when it was stopped"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    # swtpm is told to stop, and exits on its own time: a few seconds at most.
    deadline = time.monotonic() + 15
    while processes_naming(work) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_naming(work) == []
    assert not work.exists()
