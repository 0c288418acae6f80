# SPDX-License-Identifier: Apache-2.0
"""Records reach a real systemd-journald with their fields (lib/base/journal.c speaks the
journal's native protocol itself, without libsystemd). journald runs in a private mount namespace
with its own /run/systemd and /run/log, so the host's journal, if any, is never touched."""
import json
import shutil
import subprocess

import pytest

from conftest import binary

JOURNALD = "/lib/systemd/systemd-journald"

SCRIPT = r"""
set -eu
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal
"$JOURNALD" & jpid=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
: > "$TMP/stderr"
JOURNAL_STREAM=$(stat -c %d:%i "$TMP/stderr") "$MEASURE" snp-launch --firmware "$TMP/missing.fd" \
    --vcpus 1 2>>"$TMP/stderr" && exit 9
journalctl --sync 2>/dev/null || sleep 1
journalctl -D /run/log/journal -o json -t cloister-measure > "$TMP/records.json"
kill "$jpid"; wait "$jpid" || true
"""


@pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("journalctl")
                    or not shutil.which(JOURNALD.split("/")[-1], path="/lib/systemd"),
                    reason="systemd-journald is not installed (package systemd)")
def test_error_reaches_journald_with_priority_errno_and_code_location(tmp_path):
    for d in ("/run/systemd", "/run/log"):  # mount points; their contents stay private
        subprocess.run(["mkdir", "-p", d], check=True)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT],
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "JOURNALD": JOURNALD,
                            "TMP": str(tmp_path), "MEASURE": str(binary("cloister-measure"))},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # Sent to the journal, so not written to the stream as well.
    assert (tmp_path / "stderr").read_text() == ""
    records = [json.loads(line) for line in (tmp_path / "records.json").read_text().splitlines()]
    assert len(records) == 1, records
    rec = records[0]
    assert rec["MESSAGE"] == f"{tmp_path}/missing.fd: cannot read: No such file or directory"
    assert rec["PRIORITY"] == "3" and rec["ERRNO"] == "2"
    assert rec["CODE_FILE"] == "measured-boot/measure-snp-launch.c"
    assert rec["CODE_FUNC"] == "read_firmware" and int(rec["CODE_LINE"]) > 0
    assert rec["_TRANSPORT"] == "journal"
