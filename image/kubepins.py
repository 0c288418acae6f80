# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes pins of image/kubernetes.json: read and checked, each pinned file fetched and its
SHA-256 verified before anything uses it, and the image kind decided (image/README.md,
"Kubernetes").

Kinds: "cloud" carries the real, pinned Kubernetes; "test" carries the kubeadm test double. The
rules (image/build --kind auto|cloud|test):
- a file whose pinned sha256 is null is never fetched: the image cannot be a cloud image;
- a file that cannot be fetched (no route, refused, HTTP error, cut off): --kind cloud fails
  naming it, its URL and the next step; --kind auto builds the test image and says why;
- a file that arrives with another SHA-256, or larger than its bound, is ALWAYS fatal, whatever
  the kind asked for: a tampered mirror or a wrong pin must stop the build, never turn it quietly
  into a test image.

Imported by image/build and by tests/integration/test_image_kubernetes.py (which serves files
from a loopback mirror); it runs nothing it fetches."""
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

KINDS = ("auto", "cloud", "test")
# No pinned file is near this (kube-apiserver.tar is about 100 MiB): a larger answer is not it.
MAX_FILE_BYTES = 1 << 30
# Each read of the answer waits at most this long.
TIMEOUT_S = 30
CHUNK = 1 << 20
VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# A path below baseUrl: plain segments only (no "..", no query, no scheme).
PATH_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
BINARIES = ("kubeadm", "kubelet", "kubectl")
IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause",
          "etcd", "coredns")
# The images that carry the Kubernetes version itself as their tag.
VERSIONED_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


class PinsError(Exception):
    """image/kubernetes.json is malformed: fix the file."""


class FetchError(Exception):
    """Fatal: the build must stop (a hash mismatch, an oversized answer, or a file --kind cloud
    needs that could not be had). The message names the file, the URL and the next step."""


def _fail(path, msg):
    raise PinsError(f"{path}: {msg}")


def load(path):
    """The pins, every field checked. Raises PinsError naming the field."""
    path = Path(path)
    try:
        pins = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PinsError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(pins, dict):
        _fail(path, "not a JSON object")
    version = pins.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        _fail(path, f".version: '{version}' is not a release version vMAJOR.MINOR.PATCH")
    base = pins.get("baseUrl")
    if not isinstance(base, str) or not base.startswith("https://") or not base.endswith(
            f"/{version}/"):
        _fail(path, f".baseUrl: an https:// URL ending in '/{version}/' is required "
              "(every file is of the pinned version)")
    for section, names in (("binaries", BINARIES), ("images", IMAGES)):
        entries = pins.get(section)
        if not isinstance(entries, dict) or sorted(entries) != sorted(names):
            _fail(path, f".{section}: exactly {', '.join(names)} are required")
        for name in names:
            e = entries[name]
            where = f".{section}.{name}"
            if not isinstance(e, dict):
                _fail(path, f"{where}: not an object")
            p = e.get("path")
            if not isinstance(p, str) or not PATH_RE.match(p) or ".." in p.split("/"):
                _fail(path, f"{where}.path: a relative path of plain segments is required")
            sha = e.get("sha256")
            if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha)):
                _fail(path, f"{where}.sha256: 64 lower-case hex digits or null")
            if sha is not None and not e.get("readFrom"):
                _fail(path, f"{where}.readFrom: say where the sha256 was read")
            if section == "images":
                ref = e.get("image")
                if not isinstance(ref, str) or ":" not in ref:
                    _fail(path, f"{where}.image: an image reference NAME:TAG is required")
                if name in VERSIONED_IMAGES and ref.rsplit(":", 1)[1] != version:
                    _fail(path, f"{where}.image: tag must be the pinned version {version}")
    return pins


def files(pins):
    """(name, entry) of every pinned file: the binaries, then the image archives."""
    return [(n, pins["binaries"][n]) for n in BINARIES] + \
        [(n, pins["images"][n]) for n in IMAGES]


def url_of(pins, entry, mirror=None):
    """Where a file is fetched: the mirror's base (an http:// or https:// URL) or baseUrl, plus
    the file's path."""
    base = mirror if mirror else pins["baseUrl"]
    if not base.endswith("/"):
        base += "/"
    return base + entry["path"]


def check_mirror(mirror):
    """--kubernetes-mirror: http or https, a host, no query or fragment."""
    u = urllib.parse.urlsplit(mirror)
    if u.scheme not in ("http", "https") or not u.netloc or u.query or u.fragment:
        raise PinsError(f"--kubernetes-mirror '{mirror}': an http:// or https:// URL of the "
                        "directory that holds the release's files (bin/linux/amd64/..., "
                        "images/...) is required")


class Unavailable(Exception):
    """The file could not be had (no route, refused, HTTP error, cut off): not a verdict on its
    bytes."""


def fetch(url, sha256, dest, max_bytes=MAX_FILE_BYTES, timeout=TIMEOUT_S):
    """Fetches url into dest, streaming it through SHA-256 into dest.part, which becomes dest
    only if the digest equals sha256. Raises Unavailable if it cannot be had, FetchError (fatal)
    if it is larger than max_bytes or its digest differs."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"{url}: announces {int(length)} bytes, more than the "
                                 f"{max_bytes} any pinned file has: not the pinned file")
            with open(part, "wb") as out:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"{url}: more than {max_bytes} bytes: not the pinned "
                                         "file")
                    h.update(chunk)
                    out.write(chunk)
    except FetchError:
        part.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        raise Unavailable(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise Unavailable(str(reason)) from None
    got = h.hexdigest()
    if got != sha256:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: SHA-256 {got}, but the pin is {sha256}")
    os.replace(part, dest)
    return size


class Result:
    """What resolve() decided: kind "cloud" (files: name -> verified local path) or "test"
    (reasons: why not cloud)."""

    def __init__(self, kind, files=None, reasons=None):
        self.kind, self.files, self.reasons = kind, files or {}, reasons or []


def resolve(pins, kind, dest, mirror=None, max_bytes=MAX_FILE_BYTES, timeout=TIMEOUT_S,
            log=print):
    """Decides the image kind and, for "cloud", fetches and verifies every pinned file into
    dest. Raises FetchError when the build must stop."""
    if kind not in KINDS:
        raise PinsError(f"--kind '{kind}': one of {', '.join(KINDS)}")
    if kind == "test":
        return Result("test", reasons=["--kind test was asked for"])
    version = pins["version"]
    unpinned = [(n, e) for n, e in files(pins) if e["sha256"] is None]
    if unpinned:
        lines = [f"{n}: no SHA-256 pinned (published at "
                 f"{e.get('checksumUrl') or 'no URL: no archive is published'}; fetched from "
                 f"{url_of(pins, e, mirror)})" for n, e in unpinned]
        if kind == "cloud":
            raise FetchError(
                f"--kind cloud: Kubernetes {version} is not fully pinned in image/kubernetes.json:"
                "\n  " + "\n  ".join(lines) + "\nNext step: record each file's SHA-256 from the "
                "release's published checksum file (its checksumUrl) with where it was read "
                "(readFrom), or build with --kind test (the kubeadm double).")
        return Result("test", reasons=lines)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    got, missing = {}, []
    dead_hosts = {}
    for name, e in files(pins):
        url = url_of(pins, e, mirror)
        host = urllib.parse.urlsplit(url).netloc
        if host in dead_hosts:
            missing.append(f"{name}: {url}: not tried ({host}: {dead_hosts[host]})")
            continue
        try:
            size = fetch(url, e["sha256"], dest / name, max_bytes=max_bytes, timeout=timeout)
        except FetchError as err:
            raise FetchError(
                f"{name}: {err}.\nThis is fatal whatever --kind says: the server or the network "
                "served other bytes than the release published (a tampered mirror, or a wrong "
                f"pin). Next step: compare with {e.get('checksumUrl') or 'the published digest'}"
                ", and fetch from another mirror; never change the pin to what arrived.") \
                from None
        except Unavailable as err:
            missing.append(f"{name}: {url}: {err}")
            if not str(err).startswith("HTTP "):
                dead_hosts[host] = str(err)
            continue
        log(f"{name}: {url}: {size} bytes, SHA-256 verified")
        got[name] = dest / name
    if missing:
        for p in got.values():
            p.unlink(missing_ok=True)
        if kind == "cloud":
            raise FetchError(
                f"--kind cloud: Kubernetes {version}: cannot fetch\n  " + "\n  ".join(missing) +
                "\nNext step: build where the URL is reachable, or serve the release's files "
                "from a mirror (--kubernetes-mirror URL, make image KUBERNETES_MIRROR=URL), or "
                "build a test image with --kind test.")
        return Result("test", reasons=missing)
    return Result("cloud", files=got)


def check_image_list(pins, output):
    """Compares 'kubeadm config images list --kubernetes-version V' output (of the verified
    kubeadm) with the pinned images. Returns the differences, empty if they agree."""
    listed = sorted(line.strip() for line in output.splitlines() if line.strip())
    pinned = sorted(pins["images"][n]["image"] for n in IMAGES)
    return [f"kubeadm lists {x}, not pinned" for x in listed if x not in pinned] + \
        [f"pinned {x}, kubeadm does not list it" for x in pinned if x not in listed]
