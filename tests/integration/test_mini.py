# SPDX-License-Identifier: Apache-2.0
"""`cloister mini` (make mini): a local cluster brought up in a workspace, initialised, joined
and verified, then reached with `cloister mini exec` from the owner's network namespace, and
removed without a trace. Its requirements are checked first and what is missing is named."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, binary

WORKSPACE_FILES = {"cloister.json", "cloister-state.json", "cloister-mastersecret.json",
                   "cloister-init-secret", "cloister-admin.conf"}


def mini_env(tmp_path, port, **extra):
    return dict(os.environ, BUILD=str(BUILD), MINI_PORT=str(port),
                IMAGE_DIR=str(tmp_path / "no-image"), **extra)


def mini(env, ws, *args, cwd=None, timeout=180):
    """cloister -C WS mini ARGS, run from cwd (default: elsewhere than the workspace)."""
    return subprocess.run([str(binary("cloister")), "-C", str(ws), "mini", *args],
                          cwd=cwd or ws.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)


def namespaces():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def host_links():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip() for line in out.splitlines())


def assert_nothing_left(ws, extra=()):
    assert sorted(p.name for p in ws.iterdir()) == sorted(extra), list(ws.iterdir())
    left = subprocess.run(["pgrep", "-f", str(ws)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
    tag = hashlib.sha256(str(ws / "cloister-mini").encode()).hexdigest()[:6]
    assert f"cmini-{tag}" not in namespaces(), namespaces()


@pytest.fixture
def ws(tmp_path):
    d = tmp_path / "ws"
    d.mkdir()
    return d


def test_mini_up_in_a_workspace_joins_verifies_and_says_how_to_reach_it(tmp_path, ws):
    """Without a node image VMs cannot boot: mini says so and falls back to namespace nodes."""
    env = mini_env(tmp_path, 9731)
    (ws / "notes.txt").write_text("the user's own file\n")
    links, build_before = host_links(), set(os.listdir(BUILD))
    up = mini(env, ws, "up", "--nodes", "3")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "VMs cannot boot here (no node image at" in up.stdout
        assert "SIMULATED boot" in up.stdout and "test double" in up.stdout
        assert "node2 joined" in up.stdout and "node3 joined" in up.stdout
        # Every node verified from the owner's namespace with no option but the node: the
        # workspace gives the policy and the cluster ID (PCR 15).
        assert up.stdout.count("PASS  event-log-replay") == 3
        assert up.stdout.count("PASS  pcr[15]") == 3 and up.stdout.count("Verdict: PASS") == 3
        assert "\nVerification OK\n" in up.stdout
        # It ends saying how to reach it, with the workspace named as it was given.
        tail = up.stdout[up.stdout.index("Verification OK"):]
        assert f"cloister -C {ws} mini exec -- cloister verify --cluster" in tail
        assert f"cloister -C {ws} mini exec -- cloister verify --node 10.77.0.13:9731" in tail
        assert f"'cloister -C {ws} mini down' removes everything." in tail
        # The owner's files are the workspace's, as every cloister command reads them.
        assert WORKSPACE_FILES <= {p.name for p in ws.iterdir()}
        assert (ws / "cloister-mini" / "node1" / "bootstrapper.log").exists()
        assert set(os.listdir(BUILD)) == build_before  # nothing of it in the build tree
        state = json.loads((ws / "cloister-state.json").read_text())
        assert state["status"] == "initialized" and state["endpoint"] == "https://10.77.0.11:9731"
        # The host's network is unchanged: everything lives in the namespaces.
        assert host_links() == links
        assert namespaces().count("cmini-") == 5, namespaces()

        # mini exec: the same commands a user types, in the owner's namespace and workspace.
        r = mini(env, ws, "exec", "--", "cloister", "verify", "--cluster", cwd=ws)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.rstrip().splitlines()[-1] == "Verification OK"
        r = subprocess.run([str(binary("cloister")), "mini", "exec", "--", "cloister", "status"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        for i in (1, 2, 3):
            assert f"mini-node-{i}" in r.stdout and f"https://10.77.0.1{i}:9731" in r.stdout
        r = mini(env, ws, "exec", "--", "cloister", "verify", "--node", "10.77.0.12:9731")
        assert r.returncode == 0 and "PASS  pcr[15]" in r.stdout, r.stdout + r.stderr
        r = mini(env, ws, "exec", "--", "sh", "-c", "pwd; ip -o -4 addr show eth0; exit 3")
        assert r.returncode == 3, r.stderr
        assert r.stdout.splitlines()[0] == str(ws) and "10.77.0.2/24" in r.stdout
        status = mini(env, ws, "status", timeout=30)
        assert status.returncode == 0
        for i in (1, 2, 3):
            assert f"node{i} up" in status.stdout and f"https://10.77.0.1{i}:9731" in status.stdout
        # The join service recorded both admissions.
        audit = (ws / "cloister-mini" / "node1" / "state" / "audit.log").read_text()
        assert audit.count('"verdict":"admitted"') == 2
    finally:
        down = mini(env, ws, "down", timeout=60)
    assert down.returncode == 0, down.stderr
    # Only what mini wrote is gone: the user's file stays.
    assert_nothing_left(ws, extra=["notes.txt"])


def test_mini_up_with_debug_logs_every_command_it_runs_in_the_workspace(tmp_path, ws):
    """--debug reaches the cloister commands mini runs (through $CLOISTER_DEBUG) and those
    mini exec runs: all in the workspace's cloister-debug.log."""
    env = mini_env(tmp_path, 9740)
    up = subprocess.run([str(binary("cloister")), "--debug", "-C", str(ws), "mini", "up",
                         "--netns", "--nodes", "1"], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        r = mini(env, ws, "exec", "--", "cloister", "status")
        assert r.returncode == 0, r.stderr
        log = (ws / "cloister-debug.log").read_text()
        # mini up itself, then what it ran in the workspace: apply and the verifications.
        for command in (" --debug -C " + str(ws) + " mini up --netns --nodes 1",
                        "cloister apply --endpoint https://10.77.0.11:9740",
                        "cloister verify --cluster"):
            assert command in log, (command, log)
        assert "debug: Exit status 0." in log
        assert "cloister status" not in log  # no --debug, no $CLOISTER_DEBUG: not logged
    finally:
        down = mini(env, ws, "down", timeout=60)
    assert down.returncode == 0
    assert_nothing_left(ws, extra=["cloister-debug.log"])


def test_mini_up_fetches_the_log_of_a_worker_whose_join_failed_as_the_owner(tmp_path, ws):
    """Every 'kubeadm join' fails (the double, KUBEADM_DOUBLE_FAIL_JOIN): mini up sees node2's
    join fail, fetches its bootstrapper log with 'cloister logs' (attested, init secret
    proven) into the workspace and says where, then fails."""
    env = mini_env(tmp_path, 9742, KUBEADM_DOUBLE_FAIL_JOIN="1")
    up = mini(env, ws, "up", "--netns", "--nodes", "2")
    try:
        assert up.returncode == 1, up.stdout + up.stderr
        assert "mini: node2 did not join; its bootstrapper's log, fetched as the owner" in up.stderr
        saved = ws / "cloister-node-10.77.0.12-9742.log"
        assert f"(state join-failed, " in up.stderr and f"is saved in {saved.name}" in up.stderr, \
            up.stderr
        assert oct(saved.stat().st_mode & 0o777) == "0o600"
        text = saved.read_text()
        assert "kubeadm join failed" in text, text
        for secret in ("cloister-init-secret", "cloister-mastersecret.json"):
            raw = (ws / secret).read_text()
            values = [raw.strip()] if secret.endswith("secret") else \
                list(json.loads(raw).values())
            assert not any(str(v) in text for v in values if len(str(v)) > 16)
    finally:
        down = mini(env, ws, "down", timeout=60)
    assert down.returncode == 0, down.stderr
    # The node's log is the owner's to keep: down leaves it.
    assert_nothing_left(ws, extra=["cloister-node-10.77.0.12-9742.log"])


def test_mini_exec_without_a_cluster_says_how_to_start_one(tmp_path, ws):
    env = mini_env(tmp_path, 9732)
    r = mini(env, ws, "exec", "--", "cloister", "status", timeout=30)
    assert r.returncode == 1 and "cloister mini up" in r.stderr, r.stderr
    r = mini(env, ws, "exec", timeout=30)
    assert r.returncode == 2 and "which command" in r.stderr, r.stderr
    assert_nothing_left(ws)


def test_mini_up_refuses_a_workspace_of_another_cluster(tmp_path, ws):
    env = mini_env(tmp_path, 9733)
    (ws / "cloister-state.json").write_text('{"other": "cluster"}')
    r = mini(env, ws, "up", "--netns", "--nodes", "1", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "already holds cloister-state.json" in r.stderr and "-C DIR" in r.stderr
    assert (ws / "cloister-state.json").read_text() == '{"other": "cluster"}'
    assert_nothing_left(ws, extra=["cloister-state.json"])


def sandbox_path(tmp_path, without):
    """A PATH holding every program of the system's but those named."""
    d = tmp_path / "path"
    d.mkdir()
    for src in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        if not os.path.isdir(src):
            continue
        for name in os.listdir(src):
            if name not in without and not (d / name).exists():
                (d / name).symlink_to(os.path.join(src, name))
    return str(d)


def test_mini_names_every_missing_program_before_doing_anything(tmp_path, ws):
    env = mini_env(tmp_path, 9734)
    env["PATH"] = sandbox_path(tmp_path, {"swtpm", "swtpm_setup", "tpm2_pcrextend"})
    r = mini(env, ws, "up", "--netns", "--nodes", "1", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "missing:" in r.stderr
    for what in ("swtpm (apt-get install swtpm)", "swtpm_setup (apt-get install swtpm-tools)",
                 "tpm2_pcrextend (apt-get install tpm2-tools)"):
        assert what in r.stderr, r.stderr
    assert_nothing_left(ws)


def test_mini_vm_names_everything_vms_lack(tmp_path, ws):
    env = mini_env(tmp_path, 9742, CLOISTER_VM_MEMORY=str(1 << 30))
    env["PATH"] = sandbox_path(tmp_path, {"qemu-system-x86_64", "swtpm"})
    r = mini(env, ws, "up", "--vm", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    for what in ("no node image at", "qemu-system-x86_64 is missing (apt-get install "
                 "qemu-system-x86)", "swtpm is missing (apt-get install swtpm)",
                 "MiB of memory are needed for 2 VMs"):
        assert what in r.stderr, (what, r.stderr)
    assert r.stderr.count("\n") == 1  # one line
    assert_nothing_left(ws)


def test_mini_names_missing_memory(tmp_path, ws):
    env = mini_env(tmp_path, 9735, MINI_NODE_MEMORY_MIB=str(1 << 30))
    r = mini(env, ws, "up", "--netns", "--nodes", "2", timeout=60)
    assert r.returncode == 1 and "memory: 2147483648 MiB available for 2 node(s)" in r.stderr, \
        r.stderr
    assert_nothing_left(ws)


def test_mini_names_missing_disk_space(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        r = mini(mini_env(tmp_path, 9736), small, "up", "--netns", "--nodes", "3", timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"disk: 240 MiB free in {small} for 3 node(s)" in r.stderr, r.stderr
        assert_nothing_left(small)
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_mini_up_vm_without_an_image_names_the_cause_and_the_next_step(tmp_path, ws):
    r = mini(mini_env(tmp_path, 9737), ws, "up", "--vm", timeout=30)
    assert r.returncode != 0
    assert "VMs cannot boot here" in r.stderr and "make image" in r.stderr
    assert_nothing_left(ws)


def test_mini_refuses_a_bad_node_count_with_one_line(tmp_path, ws):
    r = mini(mini_env(tmp_path, 9738), ws, "up", "--netns", "--nodes", "0", timeout=30)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--nodes" in r.stderr
    assert_nothing_left(ws)


def test_installed_mini_brings_up_a_node_in_the_workspace_and_names_itself(tmp_path):
    """make install puts what mini runs under PREFIX/lib/cloister; the installed cloister finds
    it, keeps the cluster in the current directory and tells the user 'cloister mini', never a
    script path; mini exec finds the installed cloister."""
    prefix, ws = tmp_path / "prefix", tmp_path / "ws"
    ws.mkdir()
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"BUILD={BUILD}",
                        f"PREFIX={prefix}", "install"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("mini", "mini-vm", "mini-boot-log", "kubeadm-double", "vm/vmcluster.py"):
        assert (prefix / "lib" / "cloister" / f).exists(), f
    cli = prefix / "bin" / "cloister"
    env = {k: v for k, v in os.environ.items()
           if k not in ("BUILD", "MINI_DIR", "MINI_VM_DIR", "CLOISTER_MINI_SCRIPT", "IMAGE_DIR")}
    env["MINI_PORT"] = "9741"
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"  # no cloister of the build tree on it

    def installed(*args, timeout=180):
        return subprocess.run([str(cli), "mini", *args], cwd=ws, env=env, capture_output=True,
                              text=True, timeout=timeout)

    up = installed("up", "--nodes", "1")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "VMs cannot boot here (no node image" in up.stdout
        assert "\nVerification OK\n" in up.stdout
        assert "cloister mini exec -- cloister verify --cluster" in up.stdout
        assert "'cloister mini down' removes everything" in up.stdout
        assert "scripts/mini" not in up.stdout + up.stderr
        assert WORKSPACE_FILES <= {p.name for p in ws.iterdir()}
        assert installed("status", timeout=30).stdout.startswith("mini: node1 up")
        r = installed("exec", "--", "sh", "-c", "command -v cloister; cloister status")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == str(cli) and "mini-node-1" in r.stdout
    finally:
        down = installed("down", timeout=60)
    assert down.returncode == 0
    assert_nothing_left(ws)


def test_mini_up_cut_short_by_sigterm_leaves_no_namespace_process_or_file(tmp_path, ws):
    """A timeout (SIGTERM) or Ctrl-C in the middle of 'up' removes what was started."""
    work = ws / "cloister-mini"
    env = mini_env(tmp_path, 9751)
    p = subprocess.Popen([str(binary("cloister")), "-C", str(ws), "mini", "up", "--nodes", "2"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        # Wait until node1's bootstrapper runs: namespaces, swtpms and a process exist.
        deadline = time.monotonic() + 120
        while not (work / "node1" / "bootstrapper.pid").exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        ns = "cmini-" + hashlib.sha256(str(work).encode()).hexdigest()[:6] + "-"
        assert ns in namespaces()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "interrupted: removing what was started" in err, out + err
    assert_nothing_left(ws)
