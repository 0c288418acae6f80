# SPDX-License-Identifier: Apache-2.0
"""A real etcd cluster for tests (Debian's etcd-server): three members on loopback ports, every
link mutual TLS with certificates made here by openssl (a CA; one certificate per member for
clients and peers, naming 127.0.0.1; a client certificate for the join services; another CA's
client certificate that etcd must refuse). Members can be stopped and started again to take the
quorum away and give it back. The fixture stops every member when the test ends, and on SIGTERM
(conftest.py turns it into KeyboardInterrupt, which unwinds the fixtures)."""
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj",
            f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_cert(d: Path, ca: str, name: str, usage: str, san: str | None):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    ext = d / f"{name}.ext"
    lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
             f"extendedKeyUsage={usage}"]
    if san:
        lines.append(f"subjectAltName={san}")
    ext.write_text("\n".join(lines) + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext.name, cwd=d)
    os.chmod(d / f"{name}.key", 0o600)


class EtcdMember:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"m{index}"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data = cluster.base / f"data-{self.name}"
        self.log = cluster.base / f"{self.name}.log"
        self.proc = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"https://127.0.0.1:{self.peer_port}"

    def start(self, state="new"):
        pki = self.cluster.pki
        args = [ETCD, "--name", self.name, "--data-dir", str(self.data),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.cluster.initial_cluster(),
                "--initial-cluster-state", state,
                "--initial-cluster-token", self.cluster.token,
                "--cert-file", pki / "member.crt", "--key-file", pki / "member.key",
                "--client-cert-auth", "--trusted-ca-file", pki / "etcd-ca.crt",
                "--peer-cert-file", pki / "member.crt", "--peer-key-file", pki / "member.key",
                "--peer-client-cert-auth", "--peer-trusted-ca-file", pki / "etcd-ca.crt",
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-outputs", "stderr"]
        f = open(self.log, "a")
        self.proc = subprocess.Popen([str(a) for a in args], stdout=f, stderr=subprocess.STDOUT)
        f.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


class EtcdCluster:
    def __init__(self, base: Path, size=3):
        self.base = base
        self.pki = base / "pki"
        self.pki.mkdir(parents=True)
        self.token = f"cloister-test-{os.getpid()}-{time.time_ns()}"
        make_ca(self.pki, "etcd-ca")
        make_cert(self.pki, "etcd-ca", "member", "serverAuth,clientAuth",
                  "IP:127.0.0.1,DNS:localhost")
        make_cert(self.pki, "etcd-ca", "join-service", "clientAuth", None)
        # A client certificate from a CA etcd does not trust.
        make_ca(self.pki, "other-ca")
        make_cert(self.pki, "other-ca", "stranger", "clientAuth", None)
        self.members = [EtcdMember(self, i) for i in range(size)]

    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self):
        return ",".join(m.url for m in self.members)

    def client_args(self):
        """The join service's options for this cluster."""
        return ["--etcd-endpoints", self.endpoints, "--etcd-cert", self.pki / "join-service.crt",
                "--etcd-key", self.pki / "join-service.key", "--etcd-ca", self.pki / "etcd-ca.crt"]

    def start(self):
        for m in self.members:
            m.start()
        self.wait_healthy()

    def ctl(self, *args, endpoints=None, timeout=20, input=None):
        """etcdctl (v3 API) with the join service's client certificate."""
        return subprocess.run(
            ["etcdctl", "--endpoints", endpoints or self.endpoints,
             "--cacert", str(self.pki / "etcd-ca.crt"), "--cert", str(self.pki / "join-service.crt"),
             "--key", str(self.pki / "join-service.key"), "--command-timeout=5s", *map(str, args)],
            capture_output=True, text=True, timeout=timeout, env=dict(os.environ, ETCDCTL_API="3"),
            input=input)

    def wait_healthy(self, timeout=60):
        deadline = time.time() + timeout
        while True:
            live = [m for m in self.members if m.proc]
            for m in live:
                assert m.proc.poll() is None, m.log.read_text()[-3000:]
            r = self.ctl("endpoint", "health", endpoints=",".join(m.url for m in live))
            if r.returncode == 0:
                return
            assert time.time() < deadline, r.stdout + r.stderr
            time.sleep(0.3)

    def get_prefix(self, prefix):
        """{key: value} under prefix, read with etcdctl (an independent reader)."""
        r = self.ctl("get", "--prefix", prefix, "-w", "json")
        assert r.returncode == 0, r.stderr
        import base64
        kvs = json.loads(r.stdout).get("kvs", [])
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
                .decode() for kv in kvs}

    def stop(self):
        for m in self.members:
            m.stop()


@pytest.fixture
def etcd(tmp_path):
    c = EtcdCluster(tmp_path / "etcd")
    try:
        c.start()
        yield c
    finally:
        c.stop()
