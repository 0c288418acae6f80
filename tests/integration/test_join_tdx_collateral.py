# SPDX-License-Identifier: Apache-2.0
"""TDX joins whose evidence carries no collateral, as a real TD's does (docs/tdx.md, "Joins and the
collateral cache"): the join service's monitor serves the collateral from its cache to the network
process (which verifies in the handshake, shut in an empty root) and to its own verification,
never fetching on a join's path; the cache is filled once online (verify-report) or by the join
service's refresher, from a loopback PCS stand-in that serves the joining simulated platform's
collateral and counts requests. sim-tdx nodes (join-probe --no-tdx-collateral) under the owner's
policy anchored at the simulator's root."""
import http.server
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import BUILD, run
from test_join_tdx import TdxCluster, TdxNode, last_refusal

FMSPC = "5e5170000000"  # the simulator's


class Pcs(http.server.BaseHTTPRequestHandler):
    """Intel PCS v4's paths, serving the files join-probe --tdx-collateral-out wrote."""
    dir = None
    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)  # a subclass counts its own (a second stand-in)
        routes = {
            "/tdx/certification/v4/tcb?fmspc=": ("tcb_info.json", "TCB-Info-Issuer-Chain",
                                                 "tcb_info_issuer_chain.pem"),
            "/tdx/certification/v4/qe/identity": ("qe_identity.json",
                                                  "SGX-Enclave-Identity-Issuer-Chain",
                                                  "qe_identity_issuer_chain.pem"),
            "/sgx/certification/v4/pckcrl?ca=": ("pck_crl.der", "SGX-PCK-CRL-Issuer-Chain",
                                                 "tcb_info_issuer_chain.pem"),
            "/sgx/certification/v4/rootcacrl": ("root_ca_crl.der", None, None),
        }
        for prefix, (body, header, chain) in routes.items():
            if self.path.startswith(prefix) and Pcs.dir and (Pcs.dir / body).exists():
                data = (Pcs.dir / body).read_bytes()
                self.send_response(200)
                if header:
                    self.send_header(header, quote((Pcs.dir / chain).read_text(), safe=""))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def pcs():
    Pcs.requests, Pcs.dir = [], None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pcs)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tdx/certification/v4"
    server.shutdown()


class CachedCp(TdxNode):
    """A control plane whose join service refreshes from the PCS stand-in."""
    wrapper = None

    def start(self, metadata, *extra, env=None):
        super().start(metadata, "--join-service", str(self.wrapper), *extra, env=env)


@pytest.fixture
def tdx(tmp_path, pcs):
    c = TdxCluster(tmp_path)
    wrapper = tmp_path / "join-service-with-pcs"
    wrapper.write_text("#!/bin/sh\nexec %s --tdx-pcs-url %s \"$@\"\n"
                       % (BUILD / "bin" / "cloister-join-service", pcs))
    wrapper.chmod(0o755)
    CachedCp.wrapper = wrapper
    yield c
    c.stop()


def start_cp(tdx):
    cp = CachedCp(tdx.tmp / "cp-1", "cp-1", tdx.root)
    tdx.nodes.append(cp)
    tdx.init(cp, tdx.policy())
    return cp


def probe(tdx, node, outdir, name="worker-1"):
    """A genuine sim-tdx node whose evidence carries no collateral; it writes its platform's
    collateral to outdir first and waits for outdir/go."""
    outdir.mkdir()
    return subprocess.Popen(
        [str(BUILD / "tests" / "join-probe"), "--policy", str(tdx.tmp / "policy.json"),
         "--cluster-id", tdx.cid, "--url", tdx.cp.url(), "--tcti", node.tpm.tcti, "--attest",
         "sim-tdx", "--sim-tdx-root", str(tdx.root), "--no-tdx-collateral",
         "--tdx-collateral-out", str(outdir), "--name", name],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path, timeout=60):
    end = time.time() + timeout
    while not path.exists():
        assert time.time() < end, f"{path} did not appear"
        time.sleep(0.1)


def test_tdx_join_without_collateral_is_admitted_from_the_cache_with_zero_pcs_requests(tdx, pcs):
    cp = start_cp(tdx)
    node = tdx.node("worker-1")
    out = tdx.tmp / "platform"
    p = probe(tdx, node, out)
    wait_for(out / "quote.bin")
    Pcs.dir = out
    # The named next step, once online: verify-report fetches the platform's collateral into the
    # join service's cache (it then refuses the simulated quote itself: not Intel's root).
    cache = cp.state / "tdx-collateral"
    run("cloister", "attestation", "verify-report", "--type", "tdx", "--quote", out / "quote.bin",
        "--pcs-url", pcs, "--cache-dir", cache)
    assert (cache / f"fmspc-{FMSPC}" / "tcb_info.json").exists()
    fetched = len(Pcs.requests)
    assert fetched == 4, Pcs.requests
    (out / "go").touch()
    stdout, _ = p.communicate(timeout=90)
    assert p.returncode == 0 and "HTTP 200" in stdout, stdout
    # Verified in the handshake (network process) and again by the monitor: no PCS request.
    assert len(Pcs.requests) == fetched, Pcs.requests
    assert [e["verdict"] for e in tdx.audit()][-1] == "admitted"


def test_tdx_join_with_an_empty_cache_is_refused_naming_the_fmspc_and_the_refresher_fetches_it(
        tdx, pcs):
    cp = start_cp(tdx)
    node = tdx.node("worker-1")
    out = tdx.tmp / "platform"
    p = probe(tdx, node, out)
    wait_for(out / "quote.bin")
    Pcs.dir = out  # the service knows the platform; the join service's cache does not
    (out / "go").touch()
    stdout, _ = p.communicate(timeout=90)
    assert p.returncode != 0, stdout
    # Refused, never delayed: nothing was fetched for the join.
    refusal = last_refusal(tdx)
    assert "no TDX collateral cached for FMSPC " + FMSPC in refusal["reason"], refusal
    assert "verify-report --type tdx" in refusal["reason"], refusal
    assert "refresher" in refusal["reason"], refusal
    # The monitor saw the platform: its refresher fetches its collateral, off the join's path.
    end = time.time() + 30
    cache = cp.state / "tdx-collateral" / f"fmspc-{FMSPC}" / "tcb_info.json"
    while not cache.exists() and time.time() < end:
        time.sleep(0.2)
    assert cache.exists(), (Pcs.requests, cp.log.read_text()[-2000:])
