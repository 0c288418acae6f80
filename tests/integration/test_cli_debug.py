# SPDX-License-Identifier: Apache-2.0
"""--debug anywhere on the command line: the run's records, debug level included, appended to the
workspace's cloister-debug.log (0600) under a header with the time and the command line, and the
file named on stderr; stderr itself shows what it shows without --debug. No secret reaches the
file: a real init of a cluster (master secret, salt, init secret sent; the admin kubeconfig
received) is run with --debug and the file searched for every one of them."""
import base64
import json
import os
import re
import stat

from conftest import binary, run
from test_join import Node

LOG = "cloister-debug.log"
HEADER = re.compile(r"^==== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ cloister \S+ .*pid \d+, workspace (.+)$")


def headers(path):
    return [m.group(1) for m in map(HEADER.match, path.read_text().splitlines()) if m]


def test_debug_appends_a_private_log_in_the_workspace_and_says_where(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    r = run("cloister", "--debug", "status", cwd=ws)
    assert r.returncode == 2  # no policy here: a usage error, recorded too
    log = ws / LOG
    assert f"Debug log: {log}" in r.stderr.splitlines()[0]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert headers(log) == [str(ws)]
    assert "==== " + str(binary("cloister")) + " --debug status" in text
    assert re.search(r"\d\dZ error: status: give --policy", text), text
    assert re.search(r"\d\dZ debug: Exit status 2: usage error", text), text
    # stderr is as without --debug: no debug records there.
    assert not any(line.startswith("debug:") for line in r.stderr.splitlines()), r.stderr
    # A second run, --debug after the command and the workspace named from elsewhere: appended.
    r = run("cloister", "status", "--debug", "-C", ws, cwd=tmp_path)
    assert headers(log) == [str(ws), str(ws)], log.read_text()
    assert text in log.read_text() and not (tmp_path / LOG).exists()


def test_without_debug_no_log_is_written(tmp_path):
    run("cloister", "status", cwd=tmp_path)
    assert not (tmp_path / LOG).exists()


def test_debug_records_what_verbose_shows_on_stderr(tmp_path):
    """The file gets the debug records -v would print."""
    (tmp_path / "cloister.json").write_text("{}")
    v = run("cloister", "-v", "status", "--node", "127.0.0.1:1", "--cluster-id", "ab" * 32,
            cwd=tmp_path)
    d = run("cloister", "--debug", "status", "--node", "127.0.0.1:1", "--cluster-id", "ab" * 32,
            cwd=tmp_path)
    shown = [line[len("debug: "):] for line in v.stderr.splitlines() if line.startswith("debug:")]
    assert shown, v.stderr
    text = (tmp_path / LOG).read_text()
    for line in shown:
        assert line in text, (line, text)
    assert not any(line.startswith("debug:") for line in d.stderr.splitlines())


def test_a_log_file_others_could_read_is_made_private(tmp_path):
    log = tmp_path / LOG
    log.write_text("earlier\n")
    log.chmod(0o644)
    run("cloister", "--debug", "version", cwd=tmp_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().startswith("earlier\n")


def test_a_symlink_in_place_of_the_log_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / LOG).symlink_to(target)
    r = run("cloister", "--debug", "version", cwd=tmp_path)
    assert r.returncode == 1 and "--debug: cannot write" in r.stderr, r.stderr
    assert target.read_text() == ""


def test_a_log_file_of_another_user_is_refused(tmp_path):
    """Records of the owner's commands never go into a file someone else controls."""
    log = tmp_path / LOG
    log.write_text("")
    os.chown(log, 65534, 65534)
    r = run("cloister", "--debug", "version", cwd=tmp_path)
    assert r.returncode == 1 and "is not a regular file of yours" in r.stderr, r.stderr
    assert log.read_text() == ""


def secret_strings(ws):
    """Every form in which a secret of this workspace could be written out."""
    ms = json.loads((ws / "cloister-mastersecret.json").read_text())
    init = (ws / "cloister-init-secret").read_text().strip()
    out = set()
    for b64 in (ms["key"], ms["salt"], init):
        raw = base64.b64decode(b64)
        out |= {b64, raw.hex(), raw.hex().upper()}
        out.add(base64.b64encode(raw).decode().rstrip("="))
    kubeconfig = ws / "cloister-admin.conf"
    if kubeconfig.exists():
        for key in re.findall(r"client-key-data: (\S+)", kubeconfig.read_text()):
            out.add(key)
            out.add(key[:40])
    return out


def test_no_secret_reaches_the_debug_log_of_an_init(tmp_path):
    ws, nodes = tmp_path / "ws", tmp_path / "nodes"
    ws.mkdir()
    nodes.mkdir()
    cp = Node(nodes / "cp-1", "cp-1")
    try:
        assert run("cloister", "-C", ws, "--debug", "master-secret", "generate").returncode == 0
        h = run("cloister", "-C", ws, "init-secret", "generate", "--debug")
        assert h.returncode == 0
        assert run("cloister", "-C", ws, "config", "generate", "qemu", "--evidence",
                   cp.evidence).returncode == 0
        config = json.loads((ws / "cloister.json").read_text())
        config["attestation"] = json.loads(cp.policy.read_text())
        (ws / "cloister.json").write_text(json.dumps(config))
        cp.start({"name": "cp-1", "role": "control-plane", "initSecretHash": h.stdout.strip()})
        cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
        # A failed apply first (nothing listens there), then the real one, then the rest of
        # what touches the secrets, each with --debug and -v.
        assert run("cloister", "-C", ws, "--debug", "-v", "apply", "--endpoint",
                   "127.0.0.1:1", "--timeout", "2").returncode == 1
        r = run("cloister", "-C", ws, "--debug", "-v", "apply", "--endpoint", cp.url())
        assert r.returncode == 0, r.stderr
        cp.wait_for(r"serving joins on 127\.0\.0\.1:" + cp.port)
        for args in (["apply"], ["verify", "--node", f"127.0.0.1:{cp.port}"],
                     ["control-plane", "authorize", "cp-2"], ["init-secret", "hash"],
                     ["master-secret", "check"]):
            r = run("cloister", "-C", ws, "--debug", "-v", *args)
            assert r.returncode == 0, (args, r.stderr)
    finally:
        cp.stop()
    text = (ws / LOG).read_text()
    assert len(headers(ws / LOG)) == 9, text
    assert "debug:" in text and "Exit status 0" in text
    secrets = secret_strings(ws)
    assert len(secrets) >= 12
    for s in secrets:
        assert s not in text, f"a secret ({s[:6]}...) is in the debug log"
