# SPDX-License-Identifier: Apache-2.0
"""`cloister mini up --vm` in a workspace, as `mini up` with namespace nodes: the owner's files
(cloister.json, the state file, the secrets, the kubeconfig) land in the workspace, not in
cloister-mini-vm/owner/, so `cloister mini exec -- cloister status` and `verify --cluster` work
there with no file option against the VMs; `mini down` removes what up wrote, and only that.
One cluster boot: a single VM (the control plane; joins are test_vm_cluster.py's)."""
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD

WORKSPACE_FILES = {"cloister.json", "cloister-state.json", "cloister-mastersecret.json",
                   "cloister-init-secret", "cloister-admin.conf"}


def mini(env, ws, *args, timeout=600):
    return subprocess.run([str(BUILD / "bin" / "cloister"), "-C", str(ws), "mini", *args],
                          cwd=ws.parent, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def short_tmp():
    """A short directory: swtpm's unix sockets live in the workspace and their paths must stay
    under 108 bytes (pytest's own tmp_path grows with every run on a machine)."""
    d = Path(tempfile.mkdtemp(prefix="cmw-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_mini_up_vm_puts_the_owners_files_in_the_workspace_and_exec_reaches_the_vms(image_dir,
                                                                                   short_tmp):
    tmp_path = short_tmp
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("the user's own file\n")
    env = dict(os.environ, BUILD=str(BUILD), IMAGE_DIR=str(image_dir))
    work = ws / "cloister-mini-vm"
    up = mini(env, ws, "up", "--vm", "--nodes", "1", timeout=3600)
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        assert "Verification OK" in up.stdout, up.stdout[-4000:]
        # The owner's files are the workspace's; none is left in the cluster's directory.
        assert WORKSPACE_FILES <= {p.name for p in ws.iterdir()}, list(ws.iterdir())
        assert not (work / "owner").exists()
        assert not any((work / f).exists() for f in WORKSPACE_FILES)
        assert "cloister mini exec -- cloister status" in up.stdout

        # The commands a user types, in the owner's namespace and the workspace, no file option.
        st = mini(env, ws, "exec", "--", "cloister", "status")
        assert st.returncode == 0, st.stdout + st.stderr
        assert "node1" in st.stdout and "https://10.78.0.11:9000" in st.stdout, st.stdout
        # The image of this machine is a test image (image/README.md, "Kubernetes"): the node
        # booted from it says so, and so do the measurements the configuration took.
        assert "the image is a TEST image" in up.stdout + up.stderr, up.stdout[-4000:]
        test_image = "(TEST image: kubeadm double, not for production)"
        assert any(x.startswith("node1: image ") and x.endswith(test_image)
                   for x in st.stdout.splitlines()), st.stdout
        assert "the configuration's measurements are of image " in st.stdout, st.stdout
        v = mini(env, ws, "exec", "--", "cloister", "verify", "--cluster")
        assert v.returncode == 0, v.stdout + v.stderr
        assert v.stdout.rstrip().splitlines()[-1] == "Verification OK", v.stdout
        # An auditor's copy: a bundle of the VMs' evidence verifies in a fresh directory with
        # no network at all (docs/bundle.md).
        b = mini(env, ws, "exec", "--", "cloister", "verify", "--cluster", "--bundle",
                 "vm.bundle")
        assert b.returncode == 0, b.stdout + b.stderr
        auditor = tmp_path / "auditor"
        auditor.mkdir()
        os.replace(ws / "vm.bundle", auditor / "vm.bundle")
        off = subprocess.run(["unshare", "--net", str(BUILD / "bin" / "cloister"), "verify",
                              "--bundle", "vm.bundle"], cwd=auditor, capture_output=True,
                             text=True, timeout=300)
        assert off.returncode == 0 and "Verification OK" in off.stdout, off.stdout + off.stderr
        assert "node1" in off.stdout, off.stdout
        pwd = mini(env, ws, "exec", "--", "pwd")
        assert pwd.returncode == 0 and pwd.stdout.strip() == str(ws), pwd.stdout + pwd.stderr
    finally:
        down = mini(env, ws, "down", timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    # What up wrote is gone; the user's own file stays.
    assert sorted(p.name for p in ws.iterdir()) == ["notes.txt"], list(ws.iterdir())
    ns = "cvm-" + hashlib.sha256(str(work.resolve()).encode()).hexdigest()[:6]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert ns not in namespaces, namespaces
    left = subprocess.run(["pgrep", "-af", str(work)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "processes left behind: " + left.stdout
