# SPDX-License-Identifier: Apache-2.0
"""A Kubernetes version change through `cloister upgrade apply` (docs/upgrade.md, "Kubernetes
versions") on the namespace mini, with the kubeadm test double (tests/doubles/kubeadm), which
plays the image's kubeadm and kubelet at the release the node's image carries and refuses what
kubeadm and Kubernetes' version skew policy refuse (a skipped minor version, a downgrade, a
kubelet newer than the control plane).

The cluster starts on the simulated image 1 carrying the release one minor version below the pin
(image/kubernetes.json: v1.35.1), and moves to image 2 carrying the pin. PROVEN WITH THE DOUBLE
ONLY: no real kubeadm, kubelet or API server runs here."""
import json
import os
import signal
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import ROOT, binary, run
from test_mini import mini, mini_env
from test_upgrade_apply import owner

PORT = 9752
PINNED = json.loads((ROOT / "image" / "kubernetes.json").read_text())["version"]
_MINOR = int(PINNED.split(".")[1])
# The release before the pin, and two after a cluster on it.
FROM = f"v1.{_MINOR - 1}.3"
SKIP = f"v1.{_MINOR + 1}.0"
DOWN = f"v1.{_MINOR - 2}.9"
KUBEADM = ROOT / "tests" / "doubles" / "kubeadm"


def test_the_versions_are_the_pinned_one_and_the_minor_version_before_it():
    assert PINNED == "v1.35.1" and FROM == "v1.34.3"


@pytest.fixture
def cluster(tmp_path):
    """A 2-node namespace mini (node1 the single control plane, node2 a worker) whose image
    carries Kubernetes FROM; torn down whatever happens."""
    ws = tmp_path / "ws"
    ws.mkdir()
    env = mini_env(tmp_path, PORT)
    r = mini(env, ws, "up", "--netns", "--nodes", "2", "--kubernetes-version", FROM, timeout=240)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield ws, env
    finally:
        mini(env, ws, "down")


def signed(tmp_path, image_version, kubernetes_version, name=None, measurements_version=2):
    """The simulated image's measurements file (naming the release it carries, or none),
    signed with a P-256 key made here; (file, public key)."""
    args = [str(ROOT / "scripts" / "mini-boot-log"), "--predict", "--image-version",
            image_version, "--measurements-version", str(measurements_version)]
    if kubernetes_version:
        args += ["--kubernetes-version", kubernetes_version]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    path = tmp_path / (name or f"measurements-{image_version}-{kubernetes_version}.json")
    path.write_text(out)
    key, pub = tmp_path / "key.pem", tmp_path / "pub.pem"
    if not key.exists():
        k = ec.generate_private_key(ec.SECP256R1())
        key.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        pub.write_bytes(k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    r = run("cloister-measure", "sign", "--key", key, path)
    assert r.returncode == 0, r.stderr
    return path, pub


def apply(m, pub, *extra):
    return ["cloister", "upgrade", "apply", "--measurements", str(m), "--pubkey", str(pub),
            "--node-timeout", "120", *extra]


def recorded(node):
    """The release a node's state disk runs, as its node state records it."""
    d = node.state if hasattr(node, "state") else node / "state"
    return json.loads((d / "node-state.json").read_text()).get("kubernetesVersion")


def upgrade_log(ws):
    p = ws / "cloister-mini" / "node1" / "state" / "kubeadm-upgrade.log"
    return p.read_text().splitlines() if p.exists() else []


def test_kubernetes_upgrade_runs_kubeadm_upgrade_apply_on_the_control_plane_then_upgrade_node_on_the_worker(
        tmp_path, cluster):
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    # Recorded at init and at join: the release each state disk runs.
    assert recorded(node1) == FROM and recorded(node2) == FROM
    assert json.loads((ws / "cloister.json").read_text())["kubernetesVersion"] == FROM
    m, pub = signed(tmp_path, "2", PINNED)

    # What changes, said before anything does.
    r = owner(ws, env, "cloister", "upgrade", "check", "--measurements", str(m), "--pubkey",
              str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Kubernetes: {FROM} -> {PINNED} (changes: 'cloister upgrade apply " \
        f"--kubernetes-version {PINNED}'" in r.stdout, r.stdout

    # The image carries another release: the change must be asked for; nothing changes.
    before = (ws / "cloister.json").read_bytes()
    r = owner(ws, env, *apply(m, pub))
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"the new image carries Kubernetes {PINNED} and the cluster runs {FROM}" in r.stderr
    assert f"add --kubernetes-version {PINNED}" in r.stderr and "Nothing was changed" in r.stderr
    assert (ws / "cloister.json").read_bytes() == before
    assert not (ws / "cloister-upgrade.json").exists()

    # The plan: the control plane first.
    r = owner(ws, env, *apply(m, pub, "--kubernetes-version", PINNED, "--dry-run"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Kubernetes {FROM} -> {PINNED}" in r.stdout
    assert f"'kubeadm upgrade apply {PINNED}'" in r.stdout
    assert r.stdout.index("mini-node-1 (control-plane") < r.stdout.index("mini-node-2 (worker")
    assert "dry run: nothing was changed" in r.stdout
    assert (ws / "cloister.json").read_bytes() == before

    r = owner(ws, env, *apply(m, pub, "--kubernetes-version", PINNED))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.index("mini-node-1: a member again") < out.index("mini-node-2: replacing"), out
    assert "recovered https://10.77.0.11" in out
    assert f"upgrade done: every node runs '2' and Kubernetes {PINNED}" in out

    # The double's log: upgrade apply on the control plane (the cluster moved from FROM), then
    # upgrade node on the worker (its kubelet moved, the control plane already on the pin).
    assert upgrade_log(ws) == [
        f"{node1 / 'state'}: kubeadm upgrade apply {PINNED}: cluster {FROM} -> {PINNED}",
        f"{node2 / 'state'}: kubeadm upgrade node: kubelet {FROM} -> {PINNED} "
        f"(control plane {PINNED})"], upgrade_log(ws)
    log1 = (node1 / "bootstrapper.log").read_text()
    log2 = (node2 / "bootstrapper.log").read_text()
    assert f"kubeadm upgrade apply (node mini-node-1, to Kubernetes {PINNED})" in log1
    assert f"kubeadm upgrade node (node mini-node-2, to Kubernetes {PINNED})" in log2
    # Recorded: each state disk, the double's cluster and kubelets, the configuration.
    assert recorded(node1) == PINNED and recorded(node2) == PINNED
    assert (node1 / "state" / "kubernetes-version").read_text().strip() == PINNED
    for n in (node1, node2):
        assert (n / "state" / "kubelet-version").read_text().strip() == PINNED
        assert (n / "image-version").read_text().strip() == "2"
    config = json.loads((ws / "cloister.json").read_text())
    assert config["kubernetesVersion"] == PINNED
    assert config["measurementsSource"]["kubernetesVersion"] == PINNED
    state = json.loads((ws / "cloister-upgrade.json").read_text())
    assert (state["step"], state["kubernetesFrom"], state["kubernetesTo"]) == \
        ("done", FROM, PINNED)
    r = owner(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr

    # The same image again: nothing to roll, and never back down.
    old, pub2 = signed(tmp_path, "3", FROM, measurements_version=3)
    r = owner(ws, env, *apply(old, pub2, "--kubernetes-version", FROM))
    assert r.returncode != 0 and "is never downgraded" in r.stderr, r.stderr


def test_kubernetes_upgrade_refuses_a_skipped_minor_version_a_downgrade_and_a_version_the_image_does_not_carry_before_anything_changes(
        tmp_path, cluster):
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    before = (ws / "cloister.json").read_bytes()
    cases = []
    m, pub = signed(tmp_path, "2", SKIP)
    cases.append((apply(m, pub, "--kubernetes-version", SKIP),
                  [f"Kubernetes {FROM} -> {SKIP}: {SKIP} skips a minor version from {FROM}",
                   f"Upgrade to a v1.{_MINOR} release first"]))
    m, pub = signed(tmp_path, "2", DOWN)
    cases.append((apply(m, pub, "--kubernetes-version", DOWN),
                  [f"{DOWN} is older than {FROM}: Kubernetes is never downgraded"]))
    m, pub = signed(tmp_path, "2", PINNED)
    cases.append((apply(m, pub, "--kubernetes-version", "v1.35.0"),
                  [f"--kubernetes-version v1.35.0, but the new image carries Kubernetes {PINNED}",
                   f"Give --kubernetes-version {PINNED}"]))
    m, pub = signed(tmp_path, "2", None, name="unnamed.json")
    cases.append((apply(m, pub, "--kubernetes-version", PINNED),
                  ["the new image's measurements file names no Kubernetes release"]))
    for args, says in cases:
        for dry in ([], ["--dry-run"]):
            r = owner(ws, env, *args, *dry)
            assert r.returncode != 0, r.stdout + r.stderr
            for s in says:
                assert s in r.stderr, (args, r.stderr)
            assert "Nothing was changed" in r.stderr
            # Refused before step 1: no policy pushed, no node touched, no kubeadm run.
            assert "step 1" not in r.stdout
            assert (ws / "cloister.json").read_bytes() == before
            assert not (ws / "cloister-upgrade.json").exists()
            assert not (ws / "cloister-upgrade-target.json").exists()
    for n in (node1, node2):
        assert (n / "image-version").read_text().strip() == "1"
        assert recorded(n) == FROM
    assert upgrade_log(ws) == []
    r = owner(ws, env, "cloister", "status", "-o", "json")
    assert [js["policyVersion"] for js in json.loads(r.stdout)["joinServices"]] == [0]
    r = owner(ws, env, "cloister", "upgrade", "apply", "--kubernetes-version", "1.35")
    assert r.returncode != 0 and "a Kubernetes release v1.MINOR.PATCH" in r.stderr


def test_kubernetes_upgrade_killed_after_the_control_plane_resumes_with_the_worker(
        tmp_path, cluster):
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    m, pub = signed(tmp_path, "2", PINNED)
    p = subprocess.Popen([str(binary("cloister")), "-C", str(ws), "mini", "exec", "--",
                          *apply(m, pub, "--kubernetes-version", PINNED)], cwd=ws.parent,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    seen = []
    try:
        for line in p.stdout:
            seen.append(line)
            if line.startswith("mini-node-1: a member again"):
                os.killpg(p.pid, signal.SIGKILL)
                break
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
    assert any(x.startswith("mini-node-1: a member again") for x in seen), "".join(seen)
    state = json.loads((ws / "cloister-upgrade.json").read_text())
    assert state["step"] == "replace" and state["kubernetesTo"] == PINNED
    assert {n["name"]: n["upgraded"] for n in state["nodes"]} == {
        "mini-node-1": True, "mini-node-2": False}, state["nodes"]
    # Half way: the control plane on the new release, the worker's kubelet one minor behind it
    # (within the skew policy), and the cluster verifies.
    assert recorded(node1) == PINNED
    assert upgrade_log(ws)[0] == \
        f"{node1 / 'state'}: kubeadm upgrade apply {PINNED}: cluster {FROM} -> {PINNED}"

    # Resumed by the next command: the control plane is not upgraded again, the worker is.
    r = owner(ws, env, "cloister", "upgrade", "apply")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resuming the upgrade 'current' -> '2', Kubernetes {PINNED} at step replace" \
        in r.stdout
    assert "mini-node-1: replacing" not in r.stdout
    assert "mini-node-2: a member again" in r.stdout and "upgrade done" in r.stdout
    lines = upgrade_log(ws)
    applies = [x for x in lines if "upgrade apply" in x]
    nodes = [x for x in lines if "upgrade node" in x]
    # One upgrade of the cluster; the worker's upgrade node after it (run again only if the kill
    # cut its first reboot short, which the double accepts as kubeadm does: the same release).
    assert len(applies) == 1 and lines[0] == applies[0], lines
    assert nodes and all(x.startswith(f"{node2 / 'state'}: kubeadm upgrade node") for x in nodes)
    assert recorded(node1) == PINNED and recorded(node2) == PINNED
    assert json.loads((ws / "cloister.json").read_text())["kubernetesVersion"] == PINNED
    r = owner(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr


def double(cluster_dir, node_dir, own, *args):
    """The kubeadm double as a node whose image carries own."""
    osr = node_dir / "os-release"
    osr.write_text(f"KUBERNETES_VERSION={own}\n")
    env = dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cluster_dir),
               KUBEADM_DOUBLE_OS_RELEASE=str(osr))
    return subprocess.run([str(KUBEADM), *args], env=env, capture_output=True, text=True)


@pytest.fixture
def double_cluster(tmp_path):
    """What the double's init leaves: the cluster's release, an admin kubeconfig, and a worker's
    kubelet.conf and kubelet release."""
    cp, worker = tmp_path / "cp", tmp_path / "worker"
    cp.mkdir()
    worker.mkdir()
    (cp / "admin.conf").write_text("users:\n- name: kubernetes-admin\n")
    (cp / "kubernetes-version").write_text(FROM + "\n")
    (cp / "kubelet-version").write_text(FROM + "\n")
    (worker / "kubelet.conf").write_text("# kubelet.conf\n")
    (worker / "kubelet-version").write_text(FROM + "\n")
    return cp, worker


def test_kubeadm_double_refuses_a_worker_before_its_control_plane(double_cluster):
    cp, worker = double_cluster
    r = double(cp, worker, PINNED, "upgrade", "node", "--kubeconfig", str(worker / "kubelet.conf"))
    assert r.returncode != 0
    assert f"the control plane runs {FROM}, this kubelet would be {PINNED}" in r.stderr
    assert (worker / "kubelet-version").read_text().strip() == FROM
    # In order: the control plane, then the worker.
    r = double(cp, cp, PINNED, "upgrade", "apply", PINNED, "--yes", "--kubeconfig",
               str(cp / "admin.conf"))
    assert r.returncode == 0, r.stderr
    r = double(cp, worker, PINNED, "upgrade", "node", "--kubeconfig", str(worker / "kubelet.conf"))
    assert r.returncode == 0, r.stderr
    assert (worker / "kubelet-version").read_text().strip() == PINNED
    assert [x.split(": ", 1)[1] for x in (cp / "kubeadm-upgrade.log").read_text().splitlines()] \
        == [f"kubeadm upgrade apply {PINNED}: cluster {FROM} -> {PINNED}",
            f"kubeadm upgrade node: kubelet {FROM} -> {PINNED} (control plane {PINNED})"]


def test_kubeadm_double_refuses_a_skipped_minor_version_a_downgrade_and_another_release_than_its_own(
        double_cluster):
    cp, _ = double_cluster
    kc = ["--yes", "--kubeconfig", str(cp / "admin.conf")]
    r = double(cp, cp, SKIP, "upgrade", "apply", SKIP, *kc)
    assert r.returncode != 0 and f"{SKIP} skips a minor version from {FROM}" in r.stderr
    r = double(cp, cp, DOWN, "upgrade", "apply", DOWN, *kc)
    assert r.returncode != 0 and f"{DOWN} is older than {FROM}" in r.stderr
    r = double(cp, cp, FROM, "upgrade", "apply", PINNED, *kc)
    assert r.returncode != 0 and "it upgrades to its own release only" in r.stderr
    r = double(cp, cp, PINNED, "upgrade", "apply", PINNED, "--kubeconfig", str(cp / "admin.conf"))
    assert r.returncode != 0 and "expected upgrade apply vX.Y.Z --yes" in r.stderr
    assert (cp / "kubernetes-version").read_text().strip() == FROM
    assert not (cp / "kubeadm-upgrade.log").exists()


def test_bootstrapper_refuses_a_skipped_release_a_downgrade_and_a_worker_ahead_of_its_control_plane_then_follows_in_order(
        tmp_path):
    """The bootstrapper's own rule, whatever the CLI does (nodes on loopback, test_join.py's
    cluster): the state disk's recorded release against the image's, at each boot."""
    from test_join import Cluster, reboot

    cluster = Cluster(tmp_path)
    try:
        cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
        policy = cluster.policy([cp, w1])

        def osrel(node, release):
            p = node.base / "os-release"
            p.write_text(f'IMAGE_VERSION="1"\nKUBERNETES_VERSION="{release}"\n')
            return ["--os-release", str(p)], dict(
                os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state),
                KUBEADM_DOUBLE_OS_RELEASE=str(p))

        def boot(node, release, meta_extra=()):
            extra, env = osrel(node, release)
            meta = json.loads((node.base / "metadata.json").read_text())
            if meta.get("peers"):
                extra += ["--join-policy", str(policy), "--join-timeout", "30",
                          "--failed-join-linger", "0"]
            node.start(meta, *extra, env=env)

        # Init and join on images carrying the pin: recorded.
        secret = tmp_path / "init-secret"
        h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
        (cp.base / "metadata.json").write_text(json.dumps(
            {"name": cp.name, "role": "control-plane", "initSecretHash": h}))
        boot(cp, PINNED)
        cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
        state = tmp_path / "cloister-state.json"
        r = run("cloister", "apply", "--endpoint", cp.url(), "--policy", policy,
                "--init-secret-file", secret, "--state-file", state, "--master-secret",
                cluster.ms, "--kubeconfig", tmp_path / "admin.conf")
        assert r.returncode == 0, r.stdout + r.stderr
        cluster.cid = json.loads(state.read_text())["clusterId"]
        cp.wait_for("serving joins on")
        cluster.cp = cp
        (w1.base / "metadata.json").write_text(json.dumps(
            {"name": w1.name, "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
             "clusterId": cluster.cid}))
        boot(w1, PINNED)
        w1.wait_for("serving node state")
        assert recorded(cp) == PINNED and recorded(w1) == PINNED

        nxt = f"v1.{_MINOR + 1}.0"
        for release, says in ((f"v1.{_MINOR + 2}.0", "skips a minor version"),
                              (FROM, "is never downgraded"),
                              (nxt, f"the cluster's control plane runs {PINNED}: the control "
                                    "plane is upgraded first")):
            reboot(w1)
            boot(w1, release)
            w1.wait_for("join failed|refused to come back", timeout=90)
            assert w1.proc.wait(timeout=60) != 0
            log = w1.log.read_text()
            assert f"this image carries Kubernetes {release}" in log and says in log, log
            assert recorded(w1) == PINNED
            assert "upgrade" not in (w1.state / "kubeadm.log").read_text()

        # In order: the control plane (through recovery: kubeadm upgrade apply before it serves
        # joins), then the worker (kubeadm upgrade node after its rejoin).
        reboot(cp)
        boot(cp, nxt)
        cp.wait_for(r"serving recovery on 127\.0\.0\.1:" + cp.port)
        r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
                "--master-secret", cluster.ms, "--state-file", state)
        assert r.returncode == 0, r.stdout + r.stderr
        cp.wait_for("serving joins on")
        assert recorded(cp) == nxt
        reboot(w1)
        boot(w1, nxt)
        w1.wait_for("serving node state")
        assert recorded(w1) == nxt
        assert [x.split(": ", 1)[1] for x in (cp.state / "kubeadm-upgrade.log").read_text()
                .splitlines()] == [
            f"kubeadm upgrade apply {nxt}: cluster {PINNED} -> {nxt}",
            f"kubeadm upgrade node: kubelet {PINNED} -> {nxt} (control plane {nxt})"]
    finally:
        cluster.stop()
