# SPDX-License-Identifier: Apache-2.0
"""The node's log after a failed apply: the bootstrapper keeps this boot's log records in memory
(64 KiB at most) and hands them, with a failed init's answer over attested TLS, to the one who
proved the init secret; 'cloister apply' saves them in the workspace (0600) and says where. A
wrong init secret gets nothing. The log carries no secret: none of the master secret, its salt or
the init secret, in any encoding, is in it."""
import base64
import json
import os
import stat

from conftest import run
from test_bootstrapper_init import node, start_bootstrapper, stop  # noqa: F401 (fixture)


def apply(node, url, ws, ms, init_secret=None):  # noqa: F811
    return run("cloister", "apply", "--init-secret-file", init_secret or node["init_secret"],
               "--endpoint", url, "--policy", node["policy"], "--master-secret", ms,
               "--kubeconfig", ws / "admin.conf", cwd=ws)


def secrets_of(ms, init_secret):
    """Every form in which the owner's secrets could leak into a text."""
    m = json.loads(ms.read_text())
    out = set()
    for b64 in (m["key"], m["salt"], init_secret.read_text().strip()):
        raw = base64.b64decode(b64)
        out |= {b64, raw.hex(), raw.hex().upper(), base64.urlsafe_b64encode(raw).decode()}
    return out


def test_a_failed_init_gives_the_owner_the_nodes_log_without_secrets(swtpm, node, tmp_path):  # noqa: F811
    ws = tmp_path / "ws"
    ws.mkdir()
    ms = ws / "cloister-mastersecret.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    flag = tmp_path / "fail-once"
    flag.write_text("x")
    p, url = start_bootstrapper(swtpm, node, env=dict(os.environ, KUBEADM_DOUBLE_FAIL_ONCE=str(flag)))
    try:
        r = apply(node, url, ws, ms)
    finally:
        stop(p)
    node_stderr = p.stderr.read()
    assert r.returncode == 1 and "kubeadm init failed" in r.stderr, r.stderr
    port = url.rsplit(":", 1)[1]
    saved = ws / f"cloister-node-127.0.0.1-{port}.log"
    assert f"is saved in {saved.name}" in r.stderr, r.stderr
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    text = saved.read_text()
    # This boot's records, as the node logged them: the failure and what led to it.
    assert "error: init: kubeadm init failed" in text, text
    for line in text.splitlines():
        assert line.split(": ", 1)[1] in node_stderr, line
    for s in secrets_of(ms, node["init_secret"]):
        assert s not in text
    assert len(text.encode()) <= 64 * 1024


def test_a_wrong_init_secret_gets_no_log(swtpm, node, tmp_path):  # noqa: F811
    ws = tmp_path / "ws"
    ws.mkdir()
    ms = ws / "cloister-mastersecret.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    other = tmp_path / "other-secret"
    assert run("cloister", "init-secret", "generate", "--file", other).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = apply(node, url, ws, ms, init_secret=other)
    finally:
        stop(p)
    assert r.returncode == 1 and "init secret does not match" in r.stderr, r.stderr
    assert "log" not in r.stderr
    assert not list(ws.glob("cloister-node-*.log"))
