# SPDX-License-Identifier: Apache-2.0
"""verify-report fetches the VCEK and chain from a KDS (here a local HTTP server on loopback that
serves the recorded certificates at AMD's paths), caches them, and never fetches again."""
import http.server
import threading
from urllib.parse import urlparse, parse_qs

import pytest

from conftest import TESTDATA

SNP = TESTDATA / "snp"
HWID = ("c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f"
        "8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e")


class Kds(http.server.BaseHTTPRequestHandler):
    requests = []
    throttle = 0

    def do_GET(self):
        Kds.requests.append(self.path)
        if Kds.throttle > 0:
            Kds.throttle -= 1
            self.send_response(429)
            self.end_headers()
            return
        u = urlparse(self.path)
        if u.path == "/vcek/v1/Milan/cert_chain":
            body = (SNP / "trustee-milan" / "chain.pem").read_bytes()
        elif u.path == f"/vcek/v1/Milan/{HWID}" and parse_qs(u.query) == {
                "blSPL": ["3"], "teeSPL": ["0"], "snpSPL": ["8"], "ucodeSPL": ["115"]}:
            body = (SNP / "trustee-milan" / "vcek.der").read_bytes()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def kds():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Kds)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    Kds.requests = []
    Kds.throttle = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def verify(cloister, kds, cache, *extra):
    return cloister("attestation", "verify-report", "--type", "snp",
                    "--report", SNP / "trustee-milan" / "report.bin", "--product", "Milan",
                    "--kds-url", kds, "--cache-dir", cache, *extra)


def test_first_verification_fetches_then_the_cache_serves(cloister, kds, tmp_path):
    r = verify(cloister, kds, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Kds.requests) == 2
    assert any(p.startswith(f"/vcek/v1/Milan/{HWID}?blSPL=3") for p in Kds.requests)
    r = verify(cloister, kds, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Kds.requests) == 2, "a cached (chip, TCB) must not be fetched again"


def test_offline_with_empty_cache_says_what_is_missing(cloister, kds, tmp_path):
    r = verify(cloister, kds, tmp_path / "cache", "--offline")
    assert r.returncode == 1
    assert "offline" in r.stderr and "not in the cache" in r.stderr
    assert Kds.requests == []


def test_rate_limited_request_is_retried_after_backoff(cloister, kds, tmp_path):
    # One 429, then success after the first backoff (10 s: the KDS allows about one request
    # per 10 s per client).
    Kds.throttle = 1
    r = verify(cloister, kds, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Kds.requests) == 3
