# SPDX-License-Identifier: Apache-2.0
"""The other direction (docs/tdx.md, "The other direction"): a real TD's evidence carries no
collateral, a join service's too, so the joining node (its bootstrapper) and the owner's CLI
(apply, verify --node, verify --cluster) take its platform's collateral from their own cache,
filled from Intel PCS or a PCCS when missing or stale (here a loopback stand-in serving the
simulated platform's collateral); --pcs-cache DIR alone is that cache and nothing else. The
default policy (requireCollateral) is never weakened: a platform not in the cache is refused
naming its FMSPC and the next step, revoked or stale collateral is refused.

The nodes are sim-tdx (the production TDX verification under a simulated root, one PCK CA for every
node under it as Intel has one) started with --sim-tdx-no-collateral: their evidence is the quote
alone, as a real TD's."""
import datetime
import http.server
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from conftest import BUILD, run
from test_join_tdx import TdxCluster, TdxNode
from test_join_tdx_collateral import FMSPC, Pcs, pcs  # noqa: F401 (fixture)


class BareNode(TdxNode):
    """A sim-tdx node whose evidence carries no collateral (bootstrapper and join service)."""
    pcs = None

    def start(self, metadata, *extra, env=None):
        super().start(metadata, "--sim-tdx-no-collateral", "--tdx-pcs-url", self.pcs, *extra,
                      env=env)


@pytest.fixture
def tdx(tmp_path, pcs):  # noqa: F811 (the fixture imported above)
    c = TdxCluster(tmp_path)
    # The platform's collateral as Intel's PCS would serve it: one simulated platform under the
    # cluster's root (the nodes share its PCK CA), served by the stand-in.
    out = tmp_path / "pcs-files"
    out.mkdir()
    r = subprocess.run([str(BUILD / "tests" / "tdx-sim-quote"), "00" * 64, str(out), "--root",
                        str(c.root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    Pcs.dir = out
    BareNode.pcs = pcs
    yield c
    c.stop()


class JoinServicePcs(Pcs):
    """The same stand-in, for the join service alone: its requests counted apart."""
    requests = []


@pytest.fixture
def js_pcs():
    JoinServicePcs.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JoinServicePcs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tdx/certification/v4"
    server.shutdown()


def bare(tdx, name):
    n = BareNode(tdx.tmp / name, name, tdx.root)
    tdx.nodes.append(n)
    return n


def init(tdx, cp, *cli):
    """tdx.init(), with the CLI's collateral options: apply must verify cp's bare evidence."""
    secret = tdx.tmp / "init-secret"
    h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
    cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": h})
    cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
    r = run("cloister", "apply", "--endpoint", cp.url(), "--policy", tdx.policy(),
            "--init-secret-file", secret, "--state-file", tdx.tmp / "cloister-state.json",
            "--master-secret", tdx.ms, "--cluster-name", "joins", "--kubeconfig",
            tdx.tmp / "admin.conf", *cli)
    assert r.returncode == 0, r.stdout + r.stderr
    tdx.cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
    cp.wait_for(r"serving joins on 127\.0\.0\.1:" + cp.port)
    tdx.cp = cp


def verify_node(tdx, node, *args):
    return run("cloister", "verify", "--node", f"127.0.0.1:{node.port}", "--policy",
               tdx.tmp / "policy.json", "--cluster-id", tdx.cid, *args)


def test_a_node_joins_a_join_service_whose_evidence_carries_no_collateral_from_its_cache(
        tdx, pcs, js_pcs, tmp_path):
    # The join service has a cache of its own, which its refresher fills once a member's
    # re-attestation names the platform: when that round comes depends on the machine's load
    # (it once made 12 requests of the 8 counted below). It asks a stand-in of its own, so that
    # Pcs.requests counts the owner's CLI and the joining node only.
    BareNode.pcs = js_pcs
    cp = bare(tdx, "cp-1")
    owner_cache = tmp_path / "owner-cache"
    # apply: the owner's cache is empty, so the platform's collateral is fetched into it (4 items).
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", owner_cache)
    assert (owner_cache / f"fmspc-{FMSPC}" / "tcb_info.json").exists()
    assert len(Pcs.requests) == 4, Pcs.requests
    # The worker's bootstrapper verifies the join service's bare evidence with collateral it
    # fetches into its own cache (its state dir's, as the join service it may become uses).
    w = tdx.node("worker-1")
    w.start({"name": "worker-1", "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
             "clusterId": tdx.cid}, "--join-policy", str(tdx.policy()), "--join-timeout", "30",
            "--tdx-pcs-url", pcs,
            env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
    w.wait_for("serving node state")
    assert (w.state / "tdx-collateral" / f"fmspc-{FMSPC}" / "tcb_info.json").exists()
    assert len(Pcs.requests) == 8, Pcs.requests
    assert [e["verdict"] for e in tdx.audit()][-1] == "admitted"
    # verify --node from the owner's cache alone (offline): every TDX check, the collateral's
    # source named; no request.
    r = verify_node(tdx, cp, "--pcs-cache", owner_cache)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"PASS\s+tdx-collateral-cache", r.stdout), r.stdout
    assert f"FMSPC {FMSPC}, PCK CA platform from the collateral cache" in r.stdout, r.stdout
    assert re.search(r"PASS\s+tdx-tcb-status", r.stdout), r.stdout
    assert r.stdout.rstrip().endswith("Verification OK"), r.stdout
    # verify --cluster: the join service (bare) and the worker, from the same cache.
    r = run("cloister", "verify", "--cluster", "--policy", tdx.tmp / "policy.json", "--state-file",
            tdx.tmp / "cloister-state.json", "--pcs-cache", owner_cache, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert {"cp-1", "worker-1"} <= set(nodes), nodes
    assert all(n["verdict"]["result"] == "pass" for n in nodes.values()), nodes
    assert len(Pcs.requests) == 8, Pcs.requests
    # The other verbs that attest nodes take the user's cache ($XDG_CACHE_HOME/cloister/tdx).
    xdg = tmp_path / "xdg"
    shutil.copytree(owner_cache, xdg / "cloister" / "tdx")
    r = run("cloister", "status", "--policy", tdx.tmp / "policy.json", "--state-file",
            tdx.tmp / "cloister-state.json", env=dict(os.environ, XDG_CACHE_HOME=str(xdg)))
    assert r.returncode == 0 and "worker-1" in r.stdout, r.stdout + r.stderr
    assert len(Pcs.requests) == 8, Pcs.requests
    # The join service, whenever it fetched, fetched each item once: its cache is used too.
    assert len(JoinServicePcs.requests) == len(set(JoinServicePcs.requests)) <= 4, \
        JoinServicePcs.requests


def test_a_platform_missing_from_the_cache_is_refused_naming_the_fmspc_and_the_next_step(
        tdx, pcs, tmp_path):
    cp = bare(tdx, "cp-1")
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", tmp_path / "owner-cache")
    # --pcs-cache alone is offline: an empty cache refuses, never fetches, and says what to do.
    before = len(Pcs.requests)
    r = verify_node(tdx, cp, "--pcs-cache", tmp_path / "empty")
    assert r.returncode != 0, r.stdout
    out = r.stdout + r.stderr
    assert f"no TDX collateral cached for FMSPC {FMSPC} (PCK CA platform)" in out, out
    assert "verify-report --type tdx" in out and "drop --pcs-cache" in out, out
    assert re.search(r"FAIL\s+tdx-collateral-missing", r.stdout), r.stdout
    assert len(Pcs.requests) == before
    r = run("cloister", "verify", "--cluster", "--policy", tdx.tmp / "policy.json", "--state-file",
            tdx.tmp / "cloister-state.json", "--pcs-cache", tmp_path / "empty")
    # The join service itself is refused before its membership list is read, naming why.
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"no TDX collateral cached for FMSPC {FMSPC}" in r.stderr, r.stdout + r.stderr
    # A service that does not know the platform: the joining node is refused, saying so.
    Pcs.dir = None
    w = tdx.node("worker-1")
    w.start({"name": "worker-1", "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
             "clusterId": tdx.cid}, "--join-policy", str(tdx.policy()), "--join-timeout", "3",
            "--tdx-pcs-url", pcs)
    w.proc.wait(timeout=90)
    log = w.log.read_text()
    assert w.proc.returncode != 0, log
    assert f"cannot get the TDX collateral of FMSPC {FMSPC}" in log, log[-3000:]


def root_crl(root_pem, revoked=(), days=(-1, 30)):
    """A root CA CRL signed by the simulated root's key (DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    pem = root_pem.read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(
        b"-----BEGIN PRIVATE KEY-----" + pem.split(b"-----BEGIN PRIVATE KEY-----")[1]
        .split(b"-----END PRIVATE KEY-----")[0] + b"-----END PRIVATE KEY-----\n", None)
    now = datetime.datetime.utcnow()
    b = (x509.CertificateRevocationListBuilder().issuer_name(cert.subject)
         .last_update(now + datetime.timedelta(days=days[0]))
         .next_update(now + datetime.timedelta(days=days[1])))
    for serial in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now - datetime.timedelta(days=1)).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_revoked_and_stale_collateral_in_the_cache_is_refused(tdx, pcs, tmp_path):
    cp = bare(tdx, "cp-1")
    good = tmp_path / "owner-cache"
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", good)
    # The root CA CRL revokes the PCK CA (serial 2 under the simulated root).
    revoked = tmp_path / "revoked-cache"
    shutil.copytree(good, revoked)
    (revoked / "root_ca_crl.der").write_bytes(root_crl(tdx.root, revoked=[2]))
    r = verify_node(tdx, cp, "--pcs-cache", revoked)
    assert r.returncode != 0 and re.search(r"FAIL\s+tdx-pck-revoked", r.stdout), r.stdout
    assert "Verification FAILED" in r.stdout
    # A root CA CRL past its nextUpdate, offline: taken from the cache, reported STALE, refused.
    stale = tmp_path / "stale-cache"
    shutil.copytree(good, stale)
    (stale / "root_ca_crl.der").write_bytes(root_crl(tdx.root, days=(-40, -1)))
    r = verify_node(tdx, cp, "--pcs-cache", stale)
    assert r.returncode != 0 and re.search(r"FAIL\s+tdx-collateral-stale", r.stdout), r.stdout
    assert "STALE" in r.stdout and "drop --pcs-cache" in r.stdout, r.stdout
    # Online, the stale item is fetched again (the service has a current one): it passes.
    before = len(Pcs.requests)
    r = verify_node(tdx, cp, "--pcs-cache", stale, "--pcs-url", pcs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Pcs.requests) == before + 1, Pcs.requests[before:]
    # The refused caches change nothing the good one says.
    assert verify_node(tdx, cp, "--pcs-cache", good).returncode == 0


def test_the_configurations_tdx_pcs_url_is_where_the_cli_fetches_and_a_wrong_one_is_refused(
        tdx, pcs, tmp_path):
    cp = bare(tdx, "cp-1")
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", tmp_path / "owner-cache")
    policy = json.loads((tdx.tmp / "policy.json").read_text())
    config = tmp_path / "cloister.json"
    config.write_text(json.dumps({"version": 1, "provider": "qemu", "attestation": policy,
                                  "tdxPcsUrl": pcs}))
    xdg = tmp_path / "xdg"
    before = len(Pcs.requests)
    r = run("cloister", "verify", "--node", f"127.0.0.1:{cp.port}", "--config", config,
            "--cluster-id", tdx.cid, env=dict(os.environ, XDG_CACHE_HOME=str(xdg)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(Pcs.requests) == before + 4, Pcs.requests[before:]
    assert (xdg / "cloister" / "tdx" / f"fmspc-{FMSPC}" / "tcb_info.json").exists()
    config.write_text(json.dumps({"version": 1, "provider": "qemu", "attestation": policy,
                                  "tdxPcsUrl": "https://pcs.example/sgx/certification/v4"}))
    r = run("cloister", "verify", "--node", f"127.0.0.1:{cp.port}", "--config", config,
            "--cluster-id", tdx.cid)
    assert r.returncode != 0 and ".tdxPcsUrl" in r.stderr, r.stdout + r.stderr
    assert "/tdx/certification/v4" in r.stderr
    r = run("cloister", "verify", "--node", f"127.0.0.1:{cp.port}", "--policy",
            tdx.tmp / "policy.json", "--pcs-url", "https://pcs.example/v4")
    assert r.returncode == 2 and "--pcs-url https://pcs.example/v4" in r.stderr, r.stderr


def test_without_home_the_user_cache_is_never_the_shared_tmp_directory(tdx, pcs, tmp_path):
    """With no $XDG_CACHE_HOME and no $HOME (a service, cron, env -i), the cache once fell back
    to /tmp/.cache/cloister/tdx: a directory any local user can create first and fill (planted
    or rolled-back collateral, symlinks that send the verifier's writes elsewhere). The cache is
    then the account's home directory's (passwd); a relative or empty $XDG_CACHE_HOME or $HOME is
    ignored, as the XDG base directory specification says."""
    import pwd
    cp = bare(tdx, "cp-1")
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", tmp_path / "owner-cache")
    bundle = tmp_path / "cp.bundle"
    r = verify_node(tdx, cp, "--pcs-cache", tmp_path / "owner-cache", "--bundle", bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    home = pwd.getpwuid(os.getuid()).pw_dir
    expected = f"{home}/.cache/cloister/tdx"
    base = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME")}
    for env in (base, dict(base, HOME="relative", XDG_CACHE_HOME=""),
                dict(base, XDG_CACHE_HOME="relative/dir")):
        # verify --bundle is offline: it reads the user's cache and names it when the platform
        # is missing there (the simulated platform is in no real user's cache).
        r = run("cloister", "verify", "--bundle", bundle, env=env)
        out = r.stdout + r.stderr
        assert r.returncode != 0, out
        assert f"no TDX collateral cached for FMSPC {FMSPC}" in out, out
        assert "/tmp/.cache" not in out and "relative" not in out, out
        assert f" in {expected}:" in out, out


def test_a_pcs_that_asks_to_wait_cannot_hold_a_verification_past_its_bound(tdx, pcs, tmp_path):
    """A slow or hostile PCS (or whoever answers for a plain-http PCCS) once held a verification
    (and a join: the bootstrapper's source is the same) for minutes: each of the four items
    retried 3 times after a Retry-After of up to 60 s, each request up to 20 s, whatever
    --timeout said. One lookup is now bounded (ATTEST_TDX_PCS_BUDGET_MS, 60 s): a wait that
    would end past it is reported at once, naming the service's answer."""
    import http.server
    import threading
    import time

    class Busy(http.server.BaseHTTPRequestHandler):
        requests = []

        def do_GET(self):
            Busy.requests.append(self.path)
            self.send_response(429)
            self.send_header("Retry-After", "60")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    cp = bare(tdx, "cp-1")
    init(tdx, cp, "--pcs-url", pcs, "--pcs-cache", tmp_path / "owner-cache")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tdx/certification/v4"
        start = time.monotonic()
        r = verify_node(tdx, cp, "--pcs-cache", tmp_path / "empty", "--pcs-url", url)
        elapsed = time.monotonic() - start
    finally:
        server.shutdown()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert elapsed < 30, (elapsed, out)
    assert f"cannot get the TDX collateral of FMSPC {FMSPC}" in out, out
    assert "HTTP 429" in out and "no time left to retry" in out, out
    assert len(Busy.requests) == 1, Busy.requests
