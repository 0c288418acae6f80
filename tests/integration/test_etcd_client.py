# SPDX-License-Identifier: Apache-2.0
"""The etcd client (lib/etcd) over the wire, through tests/tools/etcd-probe: against a real
3-member etcd with mutual TLS (etcd_cluster.py), and against a hostile etcd (a TLS server here
that answers what a broken or malicious member could: oversized, malformed, an older revision
than one already seen, keys outside the prefix, nothing at all). Each hostile answer is refused
with its reason, and the client does not crash."""
import base64
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BUILD
from etcd_cluster import EtcdCluster, etcd, free_port  # noqa: F401 (fixture)

import subprocess


def probe(endpoints, pki, *args, cert="join-service", ca="etcd-ca", timeout_ms=None):
    cmd = [str(BUILD / "tests" / "etcd-probe"), "--endpoints", endpoints,
           "--cert", str(pki / f"{cert}.crt"), "--key", str(pki / f"{cert}.key"),
           "--ca", str(pki / f"{ca}.crt")]
    if timeout_ms:
        cmd += ["--timeout-ms", str(timeout_ms)]
    p = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_client_puts_reads_and_creates_once_over_mutual_tls(etcd):
    rc, out = probe(etcd.endpoints, etcd.pki, "put", "/cloister/v1/t/a", "one")
    assert rc == 0 and out.startswith("ok "), out
    rc, out = probe(etcd.endpoints, etcd.pki, "get", "/cloister/v1/t/a")
    assert rc == 0 and out.split()[2] == "one", out
    rc, out = probe(etcd.endpoints, etcd.pki, "get", "/cloister/v1/t/none")
    assert rc == 0 and out.split()[2] == "absent", out
    rc, out = probe(etcd.endpoints, etcd.pki, "create", "/cloister/v1/t/b", "first")
    assert rc == 0 and out.split()[2] == "created", out
    rc, out = probe(etcd.endpoints, etcd.pki, "create", "/cloister/v1/t/b", "second")
    assert rc == 0 and out.split()[2] == "exists", out
    assert etcd.get_prefix("/cloister/v1/t/b") == {"/cloister/v1/t/b": "first"}
    # Outside the prefix: refused before anything is sent.
    rc, out = probe(etcd.endpoints, etcd.pki, "put", "/registry/secrets/x", "v")
    assert rc == 1 and "error 22 etcd-key" in out, out
    assert etcd.get_prefix("/registry/") == {}


def test_client_goes_on_to_the_next_endpoint_when_one_is_down(etcd):
    dead = f"https://127.0.0.1:{free_port()}"
    rc, out = probe(f"{dead},{etcd.members[1].url}", etcd.pki, "put", "/cloister/v1/t/c", "v")
    assert rc == 0, out
    etcd.members[0].stop()
    rc, out = probe(etcd.endpoints, etcd.pki, "get", "/cloister/v1/t/c")
    assert rc == 0 and out.split()[2] == "v", out


def test_client_refused_with_a_certificate_etcd_does_not_trust_and_refuses_a_stranger_etcd(etcd):
    rc, out = probe(etcd.endpoints, etcd.pki, "put", "/cloister/v1/t/d", "v", cert="stranger")
    assert rc == 1 and out.startswith("error"), out
    assert etcd.get_prefix("/cloister/v1/t/d") == {}
    # etcd's certificate checked against another CA: not etcd, as far as we know.
    rc, out = probe(etcd.endpoints, etcd.pki, "get", "/cloister/v1/t/d", ca="other-ca")
    assert rc == 1 and "error" in out, out


class Hostile:
    """A TLS server speaking the gateway's paths, answering as mode says."""

    def __init__(self, pki, modes):
        self.modes = list(modes)
        self.requests = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, body))
                mode = outer.modes.pop(0) if len(outer.modes) > 1 else outer.modes[0]
                if mode == "hang":
                    time.sleep(5)
                    return
                status, data = mode
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki / "member.crt", pki / "member.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def answer(revision, key="/cloister/v1/t/a", value="v"):
    return (200, json.dumps({"header": {"revision": str(revision)},
                             "kvs": [{"key": b64(key), "create_revision": "2",
                                      "mod_revision": "2", "version": "1",
                                      "value": b64(value)}], "count": "1"}).encode())


@pytest.fixture
def pki(tmp_path):
    c = EtcdCluster(tmp_path / "etcd")  # certificates only; no member is started
    return c.pki


@pytest.mark.parametrize("name,modes,expect", [
    ("oversized", [(200, b'{"header":{"revision":"5"},"pad":"' + b"a" * (5 << 20) + b'"}')],
     "error 90 rpc-response-size"),
    ("malformed", [(200, b'{"header":{"revision":"5"}')], "error 74"),
    ("outside-prefix", [answer(5, key="/registry/secrets/kube-system/x")], "error 74 etcd-key"),
    ("another-key", [answer(5, key="/cloister/v1/t/b")], "error 71 etcd-range-key"),
    ("revision-out-of-order", [(200, json.dumps({"header": {"revision": "5"}, "kvs": [
        {"key": b64("/cloister/v1/t/a"), "create_revision": "9", "mod_revision": "9",
         "version": "1"}], "count": "1"}).encode())], "error 71 etcd-kv-revisions"),
    ("error-status", [(503, b'{"error":"etcdserver: no leader\\u001b[2J","code":14}')],
     "etcd refused the request (HTTP 503): etcdserver: no leader?[2J"),
])
def test_client_refuses_a_hostile_etcds_answer(pki, name, modes, expect):
    h = Hostile(pki, modes)
    try:
        rc, out = probe(h.url, pki, "get", "/cloister/v1/t/a")
        assert rc == 1 and expect in out, out
        assert "\x1b" not in out
    finally:
        h.close()


def test_client_refuses_an_answer_older_than_one_it_has_seen(pki):
    """A member behind the cluster (or a replayed answer) after a fresher one: refused."""
    h = Hostile(pki, [answer(100), answer(99)])
    try:
        rc, out = probe(h.url, pki, "--repeat", "2", "get", "/cloister/v1/t/a")
        lines = out.splitlines()
        assert rc == 1 and lines[0].startswith("ok 100 v"), out
        assert lines[1].startswith("error 71 etcd-revision") and "older" in lines[1], out
    finally:
        h.close()


def test_client_gives_up_on_a_member_that_never_answers_within_its_timeout(pki):
    h = Hostile(pki, ["hang"])
    try:
        t = time.time()
        rc, out = probe(h.url, pki, "get", "/cloister/v1/t/a", timeout_ms=500)
        assert rc == 1 and "no etcd member answered" in out, out
        assert time.time() - t < 4
        # A write that may have arrived is not sent again: reported as a timeout.
        n = len(h.requests)
        rc, out = probe(h.url, pki, "put", "/cloister/v1/t/a", "v", timeout_ms=500)
        assert rc == 1 and "error 110" in out, out
        assert len(h.requests) == n + 1
    finally:
        h.close()
