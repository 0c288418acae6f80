# SPDX-License-Identifier: Apache-2.0
"""verify-report --type tdx without --collateral takes the collateral of the quote's FMSPC from a
PCS (here a loopback HTTP stand-in serving Intel's real collateral at PCS v4 / PCCS paths with the
issuer chains URL-encoded in the response headers, as Intel does), caches it, and asks nothing
more once cached; failures of the service are retried, then reported; what it serves is verified
exactly as files."""
import http.server
import json
import threading
from urllib.parse import quote, urlparse, parse_qs

import pytest

from conftest import TESTDATA

TDX = TESTDATA / "tdx"
UPTODATE = TDX / "dcapqvl-b0c06f-uptodate"
AT = "2025-07-19T10:00:34Z"
FMSPC = "b0c06f000000"

ROUTES = {
    "/tdx/certification/v4/tcb": ("tcb_info.json", "TCB-Info-Issuer-Chain",
                                  "tcb_info_issuer_chain.pem", {"fmspc": [FMSPC]}),
    "/tdx/certification/v4/qe/identity": ("qe_identity.json", "SGX-Enclave-Identity-Issuer-Chain",
                                          "qe_identity_issuer_chain.pem", {}),
    "/sgx/certification/v4/pckcrl": ("pck_crl.der", "SGX-PCK-CRL-Issuer-Chain",
                                     "pck_crl_issuer_chain.pem",
                                     {"ca": ["platform"], "encoding": ["der"]}),
    "/sgx/certification/v4/rootcacrl": ("root_ca_crl.der", None, None, {}),
}


class Pcs(http.server.BaseHTTPRequestHandler):
    requests = []
    fail = []          # statuses to answer first, one per request
    retry_after = None
    override = {}      # file name -> bytes served instead
    repeat_chain = False
    chain_value = None  # served instead of the URL-encoded chain ("" leaves the header out)

    def do_GET(self):
        Pcs.requests.append(self.path)
        if Pcs.fail:
            self.send_response(Pcs.fail.pop(0))
            if Pcs.retry_after is not None:
                self.send_header("Retry-After", Pcs.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        u = urlparse(self.path)
        route = ROUTES.get(u.path)
        if not route or parse_qs(u.query) != route[3]:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        name, header, chain, _ = route
        body = Pcs.override.get(name) or (UPTODATE / name).read_bytes()
        self.send_response(200)
        if header and Pcs.chain_value is not None:
            if Pcs.chain_value:
                self.send_header(header, Pcs.chain_value)
        elif header:
            self.send_header(header, quote((UPTODATE / chain).read_text(), safe=""))
            if Pcs.repeat_chain:
                self.send_header(header, quote((UPTODATE / chain).read_text(), safe=""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def pcs():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pcs)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    Pcs.requests, Pcs.fail, Pcs.retry_after, Pcs.override = [], [], None, {}
    Pcs.repeat_chain, Pcs.chain_value = False, None
    yield f"http://127.0.0.1:{server.server_address[1]}/tdx/certification/v4"
    server.shutdown()


def verify(cloister, pcs, cache, *extra, at=AT):
    return cloister("attestation", "verify-report", "--type", "tdx",
                    "--quote", UPTODATE / "quote.bin", "--at", at,
                    "--pcs-url", pcs, "--cache-dir", cache, *extra)


def test_first_verification_fetches_the_second_makes_zero_pcs_requests(cloister, pcs, tmp_path):
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS  tdx-tcb-info-signature" in r.stdout and "PASS  tdx-crl" in r.stdout
    assert f"Collateral: FMSPC {FMSPC}, PCK CA platform: fetched and cached" in r.stdout
    assert "Verdict: PASS" in r.stdout
    assert sorted(urlparse(p).path for p in Pcs.requests) == sorted(ROUTES)
    Pcs.requests = []
    r = verify(cloister, pcs, tmp_path / "cache", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "pass" and out["tcb"]["status"] == "UpToDate"
    assert out["collateralSource"]["fetched"] == 0 and out["collateralSource"]["stale"] == 0
    assert Pcs.requests == []
    # Offline, the same cache serves.
    r = verify(cloister, pcs, tmp_path / "cache", "--offline")
    assert r.returncode == 0, r.stdout + r.stderr
    assert Pcs.requests == []


def test_offline_with_an_empty_cache_names_what_is_missing(cloister, pcs, tmp_path):
    r = verify(cloister, pcs, tmp_path / "empty", "--offline")
    assert r.returncode == 1
    assert f"offline and the TCB info for FMSPC {FMSPC} is not in the cache" in r.stderr, r.stderr
    assert "--collateral DIR" in r.stderr
    assert Pcs.requests == []


def test_rate_limit_and_server_errors_are_retried_then_reported(cloister, pcs, tmp_path):
    Pcs.fail, Pcs.retry_after = [429, 503], "1"
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Pcs.requests) == 4 + 2
    Pcs.requests, Pcs.fail, Pcs.retry_after = [], [500] * 10, "0"
    r = verify(cloister, pcs, tmp_path / "other")
    assert r.returncode == 1
    assert "HTTP server error" in r.stderr and "after retries" in r.stderr, r.stderr
    assert len(Pcs.requests) == 4  # the first try and 3 retries
    # A Retry-After longer than a verifier should wait is reported, not waited for.
    Pcs.requests, Pcs.fail, Pcs.retry_after = [], [429], "3600"
    r = verify(cloister, pcs, tmp_path / "third")
    assert r.returncode == 1
    assert "HTTP 429" in r.stderr and "wait 3600 s" in r.stderr, r.stderr
    assert len(Pcs.requests) == 1


def test_tampered_tcb_info_from_the_service_is_refused_as_from_a_file(cloister, pcs, tmp_path):
    tcb = (UPTODATE / "tcb_info.json").read_bytes()
    tampered = tcb.replace(b'"UpToDate"', b'"UpToDaTe"', 1)
    assert tampered != tcb
    tampered = tcb.replace(b'"tcbEvaluationDataNumber":17', b'"tcbEvaluationDataNumber":18', 1)
    assert tampered != tcb
    Pcs.override = {"tcb_info.json": tampered}
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode == 1
    assert "FAIL  tdx-tcb-info-signature" in r.stdout, r.stdout
    folder = tmp_path / "files"
    folder.mkdir()
    for f in UPTODATE.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "tcb_info.json").write_bytes(tampered)
    f = cloister("attestation", "verify-report", "--type", "tdx", "--quote",
                 UPTODATE / "quote.bin", "--at", AT, "--collateral", folder)
    assert f.returncode == 1
    assert [l for l in r.stdout.splitlines() if l.startswith("FAIL")] == \
        [l for l in f.stdout.splitlines() if l.startswith("FAIL")]


def test_stale_cache_entry_past_next_update_is_reported_stale(cloister, pcs, tmp_path):
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
    Pcs.requests = []
    # Offline a month later: the cached collateral is taken, reported stale, and fails as stale.
    r = verify(cloister, pcs, tmp_path / "cache", "--offline", at="2025-08-20")
    assert r.returncode == 1
    assert Pcs.requests == []
    assert "STALE" in r.stderr and "past its nextUpdate" in r.stderr
    assert "run without --offline to refresh it" in r.stderr
    assert "FAIL  tdx-collateral-stale" in r.stdout, r.stdout
    # Online, a refresh is tried; the service has nothing newer: still stale, said so.
    r = verify(cloister, pcs, tmp_path / "cache", at="2025-08-20")
    assert r.returncode == 1
    # The root CA CRL is valid until later: kept; the three past their nextUpdate are asked again.
    assert sorted(urlparse(p).path for p in Pcs.requests) == sorted(
        p for p in ROUTES if not p.endswith("rootcacrl"))
    assert "from the service is past its nextUpdate" in r.stdout
    assert "FAIL  tdx-collateral-stale" in r.stdout
    # The service down: the stale copy is reported with the failed refresh.
    Pcs.requests, Pcs.fail, Pcs.retry_after = [], [503] * 100, "0"
    r = verify(cloister, pcs, tmp_path / "cache", at="2025-08-20")
    assert r.returncode == 1
    assert "the refresh failed" in r.stdout and "FAIL  tdx-collateral-stale" in r.stdout
    # One round of retries for the first stale item; the others are not tried against a service
    # that just failed (a down PCS costs one wait, not one per item).
    assert len(Pcs.requests) == 4
    assert "not tried: the service failed the previous request" in r.stdout


def test_pcs_url_not_a_tdx_base_is_refused_with_the_expected_form(cloister, pcs, tmp_path):
    r = verify(cloister, pcs.replace("/tdx/certification/v4", ""), tmp_path / "cache")
    assert r.returncode != 0
    assert "ending in /tdx/certification/v4" in r.stderr
    assert Pcs.requests == []


def test_a_repeated_issuer_chain_header_is_refused_not_merged(cloister, pcs, tmp_path):
    Pcs.repeat_chain = True
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode != 0
    assert "a response header is malformed or repeated" in r.stderr, r.stderr
    assert len(Pcs.requests) == 1  # refused at once, not retried
    assert not (tmp_path / "cache").exists()


def test_a_missing_or_oversized_issuer_chain_header_is_refused(cloister, pcs, tmp_path):
    Pcs.chain_value = ""
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode != 0
    assert "lacks the TCB-Info-Issuer-Chain header" in r.stderr, r.stderr
    Pcs.requests, Pcs.chain_value = [], "A" * (17 * 1024)
    r = verify(cloister, pcs, tmp_path / "cache")
    assert r.returncode != 0
    assert "a response header is larger than 16384 bytes" in r.stderr, r.stderr
    assert len(Pcs.requests) == 1
    assert not (tmp_path / "cache").exists()
