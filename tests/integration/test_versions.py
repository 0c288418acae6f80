# SPDX-License-Identifier: Apache-2.0
"""Versions: every node reports what it runs over attested TLS (GET /v1/node "versions": its
Cloister version, and the image and Kubernetes versions its image build recorded in os-release),
'cloister verify' and 'cloister status' show them, and the CLI warns when a node's Cloister
version is beyond the support policy (docs/versions.md). Nodes are processes on loopback with
their own swtpm (the test_join.py cluster), given an os-release file as the image build writes it.
The node of another Cloister version is the real bootstrapper with its version string changed in
a copy of the binary."""
import json
import shutil

import pytest

import json_schema
import test_join
from conftest import ROOT, binary, run
from test_join import Cluster, Node, member_policy

# The release the image carries is the one 'cloister apply' asks for by default (the pin): a node
# refuses an init of another (docs/upgrade.md, "Kubernetes versions").
K8S = json.loads((ROOT / "image" / "kubernetes.json").read_text())["version"]
OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nIMAGE_ID=cloister-node\n'
              f'IMAGE_VERSION="v0.1.0-42-gfeedbee"\nKUBERNETES_VERSION="{K8S}"\n')


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    osrel = tmp_path / "os-release"
    osrel.write_text(OS_RELEASE)
    start = Node.start

    def start_with_os_release(self, metadata, *extra, env=None):
        start(self, metadata, *extra, "--os-release", str(osrel), env=env)

    monkeypatch.setattr(Node, "start", start_with_os_release)
    c = Cluster(tmp_path)
    yield c
    c.stop()


def cli_version():
    return json.loads(run("cloister", "-o", "json", "version").stdout)["version"]


def test_verify_and_status_show_what_each_node_runs(cluster, tmp_path):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    ours = cli_version()
    want = {"cloister": ours, "image": "v0.1.0-42-gfeedbee", "kubernetes": K8S,
            "imageKind": None}
    pol = member_policy(cluster, tmp_path)
    # A worker (its bootstrapper answers) and the control plane (its join service does).
    for node in (w1, cp):
        r = run("cloister", "verify", "--node", f"127.0.0.1:{node.port}", "--policy", pol,
                "--cluster-id", cluster.cid, "-o", "json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        json_schema.validate(doc)
        assert doc["versions"] == want, (node.name, doc["versions"])
        assert "warning" not in r.stderr, r.stderr
    r = run("cloister", "verify", "--node", f"127.0.0.1:{w1.port}", "--policy", pol,
            "--cluster-id", cluster.cid)
    assert f"runs Cloister {ours}, image v0.1.0-42-gfeedbee, Kubernetes {K8S}" in r.stdout

    state = cluster.tmp / "cloister-state.json"
    r = run("cloister", "status", "--policy", pol, "--state-file", state)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split()[-3:] == ["CLOISTER", "IMAGE", "KUBERNETES"], header
    for name in ("cp-1", "worker-1"):
        (row,) = [x for x in rows if x.startswith(name + " ")]
        assert row.split()[-3:] == [ours, "v0.1.0-42-gfeedbee", K8S], row
    doc = json.loads(run("cloister", "status", "--policy", pol, "--state-file", state, "-o",
                         "json").stdout)
    json_schema.validate(doc)
    assert {n["name"]: n["versions"] for n in doc["nodes"]} == {"cp-1": want, "worker-1": want}
    doc = json.loads(run("cloister", "verify", "--cluster", "--policy", pol, "--state-file", state,
                         "-o", "json").stdout)
    assert all(n["versions"] == want for n in doc["nodes"]), doc["nodes"]


TEST_NOTE = "(TEST image: kubeadm double, not for production)"


def test_verify_and_status_name_a_test_image_as_such(cluster, tmp_path):
    """The image build's os-release of a test image (image/build): each node says so, and status
    says it next to the image's version; the configuration's measurements of a test image too."""
    (tmp_path / "os-release").write_text(
        OS_RELEASE + 'VARIANT="TEST image"\nVARIANT_ID=kubeadm-double\nCLOISTER_IMAGE_KIND=test\n')
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    pol = member_policy(cluster, tmp_path)
    r = run("cloister", "verify", "--node", f"127.0.0.1:{w1.port}", "--policy", pol,
            "--cluster-id", cluster.cid)
    assert r.returncode == 0, r.stderr
    assert f"image v0.1.0-42-gfeedbee {TEST_NOTE}, Kubernetes {K8S}" in r.stdout, r.stdout
    state = cluster.tmp / "cloister-state.json"
    r = run("cloister", "status", "--policy", pol, "--state-file", state)
    assert r.returncode == 0, r.stderr
    for name in ("cp-1", "worker-1"):
        assert f"{name}: image v0.1.0-42-gfeedbee {TEST_NOTE}" in r.stdout.splitlines(), r.stdout
    doc = json.loads(run("cloister", "status", "--policy", pol, "--state-file", state, "-o",
                         "json").stdout)
    json_schema.validate(doc)
    assert {n["versions"]["imageKind"] for n in doc["nodes"]} == {"test"}

    # A configuration that took the measurements of a test image: status says so too.
    cfg_path = tmp_path / "cloister.json"
    g = run("cloister", "config", "generate", "qemu", "--file", cfg_path)
    assert g.returncode == 0, g.stderr
    cfg = json.loads(cfg_path.read_text())
    cfg["attestation"] = json.loads(pol.read_text())
    cfg["measurementsSource"] = {"measurementsVersion": 5, "image": "cloister-node",
                                 "imageVersion": "v0.1.0-42-gfeedbee", "imageKind": "test",
                                 "created": "2026-12-07T00:00:00Z", "sha256": "ab" * 32,
                                 "source": "file:///m.json", "signatureChecked": True}
    cfg_path.write_text(json.dumps(cfg))
    r = run("cloister", "status", "--config", cfg_path, "--state-file", state)
    assert r.returncode == 0, r.stderr
    assert f"the configuration's measurements are of image v0.1.0-42-gfeedbee {TEST_NOTE}" in \
        r.stdout, r.stdout


def test_a_node_of_a_cloud_image_is_not_called_a_test_image(cluster, tmp_path):
    (tmp_path / "os-release").write_text(OS_RELEASE + "CLOISTER_IMAGE_KIND=cloud\n")
    cp = cluster.node("cp-1")
    cluster.init(cp, cluster.policy([cp]))
    pol = member_policy(cluster, tmp_path)
    r = run("cloister", "status", "--policy", pol, "--state-file", cluster.tmp / "cloister-state.json",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [n["versions"]["imageKind"] for n in json.loads(r.stdout)["nodes"]] == ["cloud"]
    r = run("cloister", "status", "--policy", pol, "--state-file", cluster.tmp / "cloister-state.json")
    assert "TEST image" not in r.stdout, r.stdout


def bootstrapper_of_version(tmp_path, version):
    """The real bootstrapper, its version string (and only that) changed in a copy."""
    ours = cli_version().encode() + b"\0"
    theirs = version.encode() + b"\0"
    assert len(ours) == len(theirs)
    data = binary("cloister-bootstrapper").read_bytes()
    assert data.count(ours) >= 1
    d = tmp_path / f"cloister-{version}"
    d.mkdir()
    out = d / "cloister-bootstrapper"
    out.write_bytes(data.replace(ours, theirs))
    out.chmod(0o755)
    for sibling in ("cloister-join-service", "cloister-disk-mapper"):
        shutil.copy(binary(sibling), d / sibling)
    r = run_path(out, "--version")
    assert r.stdout.strip() == f"cloister-bootstrapper {version}", r.stdout
    return out


def run_path(path, *args):
    import subprocess
    return subprocess.run([str(path), *map(str, args)], capture_output=True, text=True, timeout=30)


def test_a_node_newer_than_the_cli_is_warned_about_with_the_next_step(cluster, tmp_path,
                                                                      monkeypatch):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    newer = bootstrapper_of_version(tmp_path, "0.9.0")
    real = test_join.binary
    monkeypatch.setattr(test_join, "binary",
                        lambda name: newer if name == "cloister-bootstrapper" else real(name))
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    pol = member_policy(cluster, tmp_path)
    r = run("cloister", "verify", "--node", f"127.0.0.1:{w1.port}", "--policy", pol,
            "--cluster-id", cluster.cid)
    assert r.returncode == 0, r.stderr  # a warning, not a failure: the attestation decides
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("warning:")]
    assert f"https://127.0.0.1:{w1.port} runs Cloister 0.9.0, newer than this CLI " \
           f"({cli_version()}): upgrade the CLI first, then the nodes (docs/versions.md)" in line
    r = run("cloister", "status", "--policy", pol, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 0 and "runs Cloister 0.9.0, newer than this CLI" in r.stderr, r.stderr
    (row,) = [x for x in r.stdout.splitlines() if x.startswith("worker-1 ")]
    assert "0.9.0" in row.split()
    # The control plane, of this CLI's version, is not warned about.
    assert f"127.0.0.1:{cp.port} runs" not in r.stderr
