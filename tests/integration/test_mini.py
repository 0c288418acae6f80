# SPDX-License-Identifier: Apache-2.0
"""`cloister mini` (make mini): a local cluster brought up, initialised, joined and verified,
then removed without a trace."""
import hashlib
import os
import signal
import subprocess
import time

from conftest import BUILD, ROOT, binary


def mini(env, *args, timeout=180):
    return subprocess.run([str(binary("cloister")), "mini", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_mini_up_joins_three_nodes_verifies_each_and_down_leaves_nothing(tmp_path):
    """Without a node image VMs cannot boot: mini says so and falls back to namespace nodes."""
    env = dict(os.environ, BUILD=str(BUILD), MINI_DIR=str(tmp_path / "mini"), MINI_PORT="9731",
               IMAGE_DIR=str(tmp_path / "no-image"), MINI_VM_DIR=str(tmp_path / "mini-vm"))
    up = mini(env, "up", "--nodes", "3")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "VMs cannot boot here (no node image at" in up.stdout
        assert "SIMULATED boot" in up.stdout and "test double" in up.stdout
        assert "node2 joined" in up.stdout and "node3 joined" in up.stdout
        # Every node verified from the owner's namespace: its boot log replays, PCR 15 holds
        # the cluster ID.
        assert up.stdout.count("PASS  event-log-replay") == 3
        assert up.stdout.count("PASS  pcr[15]") == 3 and up.stdout.count("Verdict: PASS") == 3
        assert up.stdout.rstrip().splitlines()[-1] == "Verification OK"
        status = mini(env, "status", timeout=30)
        assert status.returncode == 0
        for i in (1, 2, 3):
            assert f"node{i} up" in status.stdout and f"https://10.77.0.1{i}:9731" in status.stdout
        # Each node and the owner in their own network namespace, joined by a bridge.
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
        assert namespaces.count("cmini-") == 5, namespaces
        # The join service recorded both admissions.
        audit = (tmp_path / "mini" / "node1" / "state" / "audit.log").read_text()
        assert audit.count('"verdict":"admitted"') == 2
    finally:
        down = mini(env, "down", timeout=60)
    assert down.returncode == 0
    assert not (tmp_path / "mini").exists()
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "mini")], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "cmini-" not in namespaces, "namespaces left behind: " + namespaces


def test_mini_up_vm_without_an_image_names_the_cause_and_the_next_step(tmp_path):
    env = dict(os.environ, BUILD=str(BUILD), MINI_DIR=str(tmp_path / "mini"),
               IMAGE_DIR=str(tmp_path / "no-image"), MINI_VM_DIR=str(tmp_path / "mini-vm"))
    r = mini(env, "up", "--vm", timeout=30)
    assert r.returncode != 0
    assert "VMs cannot boot here" in r.stderr and "make image" in r.stderr
    assert not (tmp_path / "mini").exists() and not (tmp_path / "mini-vm").exists()


def test_mini_refuses_a_bad_node_count_with_one_line(tmp_path):
    env = dict(os.environ, BUILD=str(BUILD), MINI_DIR=str(tmp_path / "mini"),
               MINI_VM_DIR=str(tmp_path / "mini-vm"))
    r = mini(env, "up", "--netns", "--nodes", "0", timeout=30)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "--nodes" in r.stderr
    assert not (tmp_path / "mini").exists()


def test_installed_mini_brings_up_a_node_in_the_workspace_and_names_itself(tmp_path):
    """make install puts what mini runs under PREFIX/lib/cloister; the installed cloister finds
    it, keeps the cluster in the current directory and tells the user 'cloister mini', never a
    script path."""
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

    def installed(*args, timeout=180):
        return subprocess.run([str(cli), "mini", *args], cwd=ws, env=env, capture_output=True,
                              text=True, timeout=timeout)

    up = installed("up", "--nodes", "1")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "VMs cannot boot here (no node image" in up.stdout
        assert up.stdout.rstrip().splitlines()[-1] == "Verification OK"
        assert "'cloister mini down' removes everything" in up.stdout
        assert "scripts/mini" not in up.stdout + up.stderr
        assert (ws / "cloister-mini" / "owner" / "cloister-state.json").exists()
        assert installed("status", timeout=30).stdout.startswith("mini: node1 up")
    finally:
        down = installed("down", timeout=60)
    assert down.returncode == 0 and not (ws / "cloister-mini").exists()


def test_mini_up_cut_short_by_sigterm_leaves_no_namespace_process_or_file(tmp_path):
    """A timeout (SIGTERM) or Ctrl-C in the middle of 'up' removes what was started."""
    work = tmp_path / "mini"
    env = dict(os.environ, BUILD=str(BUILD), MINI_DIR=str(work), MINI_PORT="9751",
               IMAGE_DIR=str(tmp_path / "no-image"), MINI_VM_DIR=str(tmp_path / "mini-vm"))
    p = subprocess.Popen([str(binary("cloister")), "mini", "up", "--nodes", "2"], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until node1's bootstrapper runs: namespaces, swtpms and a process exist.
        deadline = time.monotonic() + 120
        while not (work / "node1" / "bootstrapper.pid").exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        ns = "cmini-" + hashlib.sha256(str(work).encode()).hexdigest()[:6] + "-"
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "interrupted: removing what was started" in err, out + err
    assert not work.exists()
    left = subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in namespaces, "namespaces left behind: " + namespaces
