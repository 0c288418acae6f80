# SPDX-License-Identifier: Apache-2.0
"""The node image's Kubernetes (image/kubernetes.json, image/kubepins.py, image/build --kind):
the pins file itself, and fetch-and-verify against a loopback HTTP mirror that this test starts,
serving small files whose SHA-256 the test writes into a temporary pins file. A cloud image only
from files whose hashes match; a mismatch fatal whatever the kind; what cannot be had makes a
test image in auto and an error in cloud. The full image build is not run here (it takes
minutes): the build's own steps are called on their own (kubernetes_kind, install_kubernetes)."""
import copy
import hashlib
import http.server
import importlib.machinery
import importlib.util
import json
import re
import socket
import sys
import threading

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "image"))
import kubepins  # noqa: E402

PINS = ROOT / "image" / "kubernetes.json"
IMAGE_LIST = sorted(["registry.k8s.io/kube-apiserver:v1.35.1",
                     "registry.k8s.io/kube-controller-manager:v1.35.1",
                     "registry.k8s.io/kube-scheduler:v1.35.1", "registry.k8s.io/kube-proxy:v1.35.1",
                     "registry.k8s.io/pause:3.10.1", "registry.k8s.io/etcd:3.6.6-0",
                     "registry.k8s.io/coredns/coredns:v1.13.1"])


def load_build():
    """image/build as a module (it has no .py name), for its steps on their own."""
    loader = importlib.machinery.SourceFileLoader("image_build", str(ROOT / "image" / "build"))
    spec = importlib.util.spec_from_loader("image_build", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Mirror:
    """A loopback HTTP server serving files (path -> bytes); it records the paths asked for."""

    def __init__(self):
        self.files, self.requests, self.send_length = {}, [], True
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if mirror.send_length:  # else the body ends when the connection closes
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror():
    m = Mirror()
    yield m
    m.stop()


def real_pins():
    return kubepins.load(PINS)


def pinned_mirror(mirror, tmp_path, kubeadm=None):
    """A pins file whose every sha256 is that of a small file the mirror serves."""
    pins = copy.deepcopy(real_pins())
    for name, e in kubepins.files(pins):
        body = kubeadm if (name == "kubeadm" and kubeadm) else f"{name} of the test\n".encode()
        mirror.files[e["path"]] = body
        e["sha256"] = hashlib.sha256(body).hexdigest()
        e["readFrom"] = "this test"
    path = tmp_path / "kubernetes.json"
    path.write_text(json.dumps(pins))
    return kubepins.load(path)


def unused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# The pins file itself.

def test_pins_file_pins_a_supported_version_with_hashes_or_null():
    pins = real_pins()
    raw = json.loads(PINS.read_text())
    m = re.match(r"^v1\.(\d+)\.(\d+)$", pins["version"])
    # v1.30 left support in 2025; v1.35 is the oldest minor supported on 2026-12-07.
    assert m and int(m.group(1)) >= 35, pins["version"]
    for section in ("binaries", "images"):
        for name, e in raw[section].items():
            assert e["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", e["sha256"]), name
            if e["sha256"] is not None:
                assert e["readFrom"], name
    for name, e in kubepins.files(pins):
        url = kubepins.url_of(pins, e)
        assert url.startswith(f"https://dl.k8s.io/release/{pins['version']}/"), url
        if e.get("checksumUrl"):
            assert e["checksumUrl"] == url + ".sha256", name


def test_pins_file_binaries_are_pinned_and_image_tags_are_the_version():
    pins = real_pins()
    for name in kubepins.BINARIES:
        e = pins["binaries"][name]
        assert re.fullmatch(r"[0-9a-f]{64}", e["sha256"]), name
        assert e["path"] == f"bin/linux/amd64/{name}"
        assert e["checksumUrl"].endswith(f"/{pins['version']}/bin/linux/amd64/{name}.sha256")
    for name in kubepins.VERSIONED_IMAGES:
        assert pins["images"][name]["image"] == f"registry.k8s.io/{name}:{pins['version']}"
        assert pins["images"][name]["path"] == f"bin/linux/amd64/{name}.tar"
    # The pinned images are exactly the list this test holds for the release.
    assert kubepins.check_image_list(pins, "\n".join(IMAGE_LIST)) == []


@pytest.mark.parametrize("change,message", [
    (lambda p: p["binaries"]["kubelet"].update(sha256="ABC"), "kubelet.sha256: 64 lower-case"),
    (lambda p: p["binaries"]["kubelet"].update(sha256="A" * 64), "kubelet.sha256: 64 lower-case"),
    (lambda p: p["binaries"]["kubectl"].update(readFrom=None), "kubectl.readFrom"),
    (lambda p: p.update(baseUrl="https://dl.k8s.io/release/v1.30.0/"), ".baseUrl"),
    (lambda p: p.update(version="1.35.1"), ".version"),
    (lambda p: p["binaries"]["kubeadm"].update(path="../kubeadm"), "kubeadm.path"),
    (lambda p: p["images"]["kube-proxy"].update(image="registry.k8s.io/kube-proxy:v1.30.0"),
     "kube-proxy.image: tag must be the pinned version"),
    (lambda p: p["images"].pop("etcd"), ".images: exactly"),
])
def test_pins_file_malformed_is_refused_naming_the_field(tmp_path, change, message):
    raw = json.loads(PINS.read_text())
    change(raw)
    path = tmp_path / "kubernetes.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(kubepins.PinsError, match=re.escape(message)):
        kubepins.load(path)


# Fetch and verify.

@pytest.mark.parametrize("kind", ["auto", "cloud"])
def test_every_hash_matching_gives_a_cloud_kind_with_the_verified_files(mirror, tmp_path, kind):
    pins = pinned_mirror(mirror, tmp_path)
    res = kubepins.resolve(pins, kind, tmp_path / "dl", mirror=mirror.url, log=lambda m: None)
    assert res.kind == "cloud" and res.reasons == []
    assert sorted(res.files) == sorted(kubepins.BINARIES + kubepins.IMAGES)
    for name, path in res.files.items():
        assert path.read_bytes() == f"{name} of the test\n".encode()
    assert not list((tmp_path / "dl").glob("*.part"))


@pytest.mark.parametrize("kind", ["auto", "cloud"])
def test_a_wrong_hash_is_fatal_in_every_kind_and_nothing_is_kept(mirror, tmp_path, kind):
    pins = pinned_mirror(mirror, tmp_path)
    mirror.files["bin/linux/amd64/kubelet"] = b"a tampered kubelet\n"
    with pytest.raises(kubepins.FetchError) as e:
        kubepins.resolve(pins, kind, tmp_path / "dl", mirror=mirror.url, log=lambda m: None)
    msg = str(e.value)
    assert "kubelet" in msg and f"{mirror.url}bin/linux/amd64/kubelet" in msg
    assert hashlib.sha256(b"a tampered kubelet\n").hexdigest() in msg
    assert "fatal whatever --kind says" in msg and "Next step" in msg
    assert not (tmp_path / "dl" / "kubelet").exists()
    assert not (tmp_path / "dl" / "kubelet.part").exists()


def test_a_wrong_hash_is_fatal_in_auto_even_when_another_file_is_missing(mirror, tmp_path):
    """A missing file must not turn a tampered mirror into a quiet test image."""
    pins = pinned_mirror(mirror, tmp_path)
    del mirror.files["bin/linux/amd64/kubeadm"]                    # first: HTTP 404
    mirror.files["bin/linux/amd64/kube-proxy.tar"] = b"other bytes"  # later: tampered
    with pytest.raises(kubepins.FetchError, match="kube-proxy"):
        kubepins.resolve(pins, "auto", tmp_path / "dl", mirror=mirror.url, log=lambda m: None)


def test_an_answer_larger_than_the_bound_is_fatal(mirror, tmp_path):
    pins = pinned_mirror(mirror, tmp_path)
    with pytest.raises(kubepins.FetchError, match="more than the 8 any pinned file has"):
        kubepins.resolve(pins, "auto", tmp_path / "dl", mirror=mirror.url, max_bytes=8,
                         log=lambda m: None)


def test_an_answer_without_a_length_is_cut_at_the_bound_and_fatal(mirror, tmp_path):
    pins = pinned_mirror(mirror, tmp_path)
    mirror.send_length = False
    with pytest.raises(kubepins.FetchError, match="more than 8 bytes: not the pinned file"):
        kubepins.resolve(pins, "auto", tmp_path / "dl", mirror=mirror.url, max_bytes=8,
                         log=lambda m: None)
    assert not list((tmp_path / "dl").iterdir())
    # Within the bound, the same answers are verified and taken.
    res = kubepins.resolve(pins, "cloud", tmp_path / "dl", mirror=mirror.url, log=lambda m: None)
    assert res.kind == "cloud"


def test_an_unreachable_mirror_gives_a_test_kind_in_auto(mirror, tmp_path):
    pins = pinned_mirror(mirror, tmp_path)
    url = f"http://127.0.0.1:{unused_port()}/"
    res = kubepins.resolve(pins, "auto", tmp_path / "dl", mirror=url, log=lambda m: None)
    assert res.kind == "test" and res.files == {}
    assert res.reasons[0].startswith(f"kubeadm: {url}bin/linux/amd64/kubeadm: ")
    # One refused connection: the other files from that host are not tried again.
    assert "not tried" in res.reasons[-1] and len(res.reasons) == 10


def test_an_unreachable_mirror_is_an_error_in_cloud_kind_naming_file_url_next_step(tmp_path,
                                                                                   mirror):
    pins = pinned_mirror(mirror, tmp_path)
    url = f"http://127.0.0.1:{unused_port()}/"
    with pytest.raises(kubepins.FetchError) as e:
        kubepins.resolve(pins, "cloud", tmp_path / "dl", mirror=url, log=lambda m: None)
    msg = str(e.value)
    assert msg.startswith("--kind cloud: Kubernetes v1.35.1: cannot fetch")
    assert f"kubeadm: {url}bin/linux/amd64/kubeadm" in msg
    assert "--kubernetes-mirror URL" in msg and "--kind test" in msg


def test_a_file_missing_on_the_mirror_gives_test_in_auto_after_checking_the_rest(mirror, tmp_path):
    pins = pinned_mirror(mirror, tmp_path)
    del mirror.files["images/etcd-3.6.6-0.tar"]
    res = kubepins.resolve(pins, "auto", tmp_path / "dl", mirror=mirror.url, log=lambda m: None)
    assert res.kind == "test"
    assert res.reasons == [f"etcd: {mirror.url}images/etcd-3.6.6-0.tar: HTTP 404 Not Found"]
    assert len(mirror.requests) == 10               # every file was fetched and checked
    assert list((tmp_path / "dl").iterdir()) == []  # and none is kept


def test_a_null_hash_gives_a_test_kind_and_nothing_is_fetched(mirror, tmp_path):
    """The real pins: the image archives have no published hash read here."""
    res = kubepins.resolve(real_pins(), "auto", tmp_path / "dl", mirror=mirror.url,
                           log=lambda m: None)
    assert res.kind == "test"
    assert [r.split(":")[0] for r in res.reasons] == ["kube-apiserver", "kube-controller-manager",
                                                      "kube-scheduler", "kube-proxy", "pause",
                                                      "etcd", "coredns"]
    assert mirror.requests == []


def test_a_null_hash_is_an_error_in_cloud_kind_naming_where_it_is_published(mirror, tmp_path):
    with pytest.raises(kubepins.FetchError) as e:
        kubepins.resolve(real_pins(), "cloud", tmp_path / "dl", log=lambda m: None)
    msg = str(e.value)
    assert ("kube-apiserver: no SHA-256 pinned (published at https://dl.k8s.io/release/v1.35.1/"
            "bin/linux/amd64/kube-apiserver.tar.sha256") in msg
    assert "Next step: record each file's SHA-256" in msg
    assert mirror.requests == []


def test_kind_test_fetches_nothing(mirror, tmp_path):
    pins = pinned_mirror(mirror, tmp_path)
    res = kubepins.resolve(pins, "test", tmp_path / "dl", mirror=mirror.url)
    assert res.kind == "test" and mirror.requests == []


@pytest.mark.parametrize("mirror_url", ["file:///srv/k8s", "ftp://host/x", "http://", "http://h/?a=b"])
def test_a_mirror_that_is_not_an_http_url_is_refused(mirror_url):
    with pytest.raises(kubepins.PinsError, match="--kubernetes-mirror"):
        kubepins.check_mirror(mirror_url)


# The build's own steps.

def test_build_auto_with_null_hashes_says_loudly_it_builds_a_test_image(tmp_path, capsys):
    build = load_build()
    pins, kube = build.kubernetes_kind("auto", None, tmp_path)
    out = capsys.readouterr().out
    assert kube.kind == "test"
    assert "building a TEST image (the kubeadm test double, no Kubernetes)" in out
    assert "not for production" in out and "kube-apiserver: no SHA-256 pinned" in out


def test_build_kind_cloud_fails_naming_the_unpinned_files(tmp_path, capsys):
    build = load_build()
    with pytest.raises(SystemExit) as e:
        build.kubernetes_kind("cloud", None, tmp_path)
    assert "--kind cloud: Kubernetes v1.35.1 is not fully pinned" in str(e.value.code)
    assert "kube-apiserver.tar.sha256" in str(e.value.code)


def fake_kubeadm(listing):
    """A kubeadm served by the mirror (its hash pinned by the test): it checks its arguments and
    lists images as 'kubeadm config images list' does."""
    return ("#!/bin/sh\n"
            '[ "$*" = "config images list --kubernetes-version v1.35.1" ] || '
            '{ echo "unexpected arguments: $*" >&2; exit 2; }\n'
            f"printf '%s\\n' {' '.join(listing)}\n").encode()


def test_build_cloud_kind_from_a_mirror_checks_kubeadms_image_list(mirror, tmp_path, monkeypatch):
    build = load_build()
    pinned_mirror(mirror, tmp_path, kubeadm=fake_kubeadm(IMAGE_LIST))
    monkeypatch.setattr(build, "ROOT", tmp_path / "root")
    (tmp_path / "root" / "image").mkdir(parents=True)
    (tmp_path / "root" / "image" / "kubernetes.json").write_text(
        (tmp_path / "kubernetes.json").read_text())
    pins, kube = build.kubernetes_kind("cloud", mirror.url, tmp_path / "work")
    assert kube.kind == "cloud"

    # And one that lists another etcd: the pins are wrong, the build stops.
    other = [x if "etcd" not in x else "registry.k8s.io/etcd:3.6.5-0" for x in IMAGE_LIST]
    pinned_mirror(mirror, tmp_path, kubeadm=fake_kubeadm(other))
    (tmp_path / "root" / "image" / "kubernetes.json").write_text(
        (tmp_path / "kubernetes.json").read_text())
    with pytest.raises(SystemExit) as e:
        build.kubernetes_kind("auto", mirror.url, tmp_path / "work2")
    msg = str(e.value.code)
    assert "kubeadm lists registry.k8s.io/etcd:3.6.5-0, not pinned" in msg
    assert "pinned registry.k8s.io/etcd:3.6.6-0, kubeadm does not list it" in msg


def test_build_installs_a_cloud_images_kubernetes_and_its_units(mirror, tmp_path):
    build = load_build()
    pins = pinned_mirror(mirror, tmp_path)
    res = kubepins.resolve(pins, "cloud", tmp_path / "dl", mirror=mirror.url, log=lambda m: None)
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr/bin").mkdir(parents=True)
    build.install_kubernetes(rootfs, pins, res)
    for name in kubepins.BINARIES:
        assert (rootfs / "usr/bin" / name).read_bytes() == f"{name} of the test\n".encode()
        assert (rootfs / "usr/bin" / name).stat().st_mode & 0o777 == 0o755
    unit = (rootfs / "usr/lib/systemd/system/cloister-kubernetes-images.service").read_text()
    imports = re.findall(r"^ExecStart=/usr/bin/ctr --namespace k8s.io images import "
                         r"/usr/share/cloister/kubernetes-images/(\S+)\.tar$", unit, re.M)
    assert imports == list(kubepins.IMAGES) and "@IMPORTS@" not in unit
    for name in kubepins.IMAGES:
        assert (rootfs / f"usr/share/cloister/kubernetes-images/{name}.tar").exists()
    conf = (rootfs / "etc/containerd/config.toml").read_text()
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in conf and "SystemdCgroup = true" in conf
    assert (rootfs / "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf").exists()
