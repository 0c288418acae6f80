# SPDX-License-Identifier: Apache-2.0
"""The join service's TLS handshakes run on handshake workers, one step at a time, never on the
event loop (lib/rpc/rpc-server.c, docs/join.md "Under load"). The fault build's
CLOISTER_FAULT=slow-verify:MS makes each check of a client's evidence in the handshake take MS
milliseconds longer (a slow policy fetch, a loaded machine): other clients' handshakes and
requests go on meanwhile, and slow handshakes overlap instead of queueing behind one another.
Nodes are join-probe processes on loopback, each with its own swtpm."""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import BUILD, run
from test_join import KUBEADM, cluster  # noqa: F401 (fixture)
from test_join_concurrency import probe, ticket
from test_key_release import stop_join_service

FAULT = BUILD / "tests" / "cloister-join-service-fault"


def start_fault_join_service(cp, fault):
    log = cp.base / "js-fault.log"
    f = open(log, "w")
    proc = subprocess.Popen([str(FAULT), "--tcti", cp.tpm.tcti, "--listen",
                             f"127.0.0.1:{cp.port}", "--state-dir", str(cp.state),
                             "--kubeadm", str(KUBEADM)],
                            stdout=f, stderr=subprocess.STDOUT,
                            env=dict(os.environ, CLOISTER_FAULT=fault))
    deadline = time.time() + 30
    while "serving joins on" not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


def status(cluster):
    t0 = time.time()
    r = run("cloister", "status", "--policy", cluster.tmp / "policy.json",
            "--state-file", cluster.tmp / "cloister-state.json")
    return r, time.time() - t0


def test_a_slow_evidence_check_holds_up_no_other_client(cluster):
    """One joining node's evidence takes 5 s to check in the handshake: meanwhile the owner's
    `cloister status` (its own handshakes and requests, no client evidence) is answered at
    once, and the slow join still completes. (With the handshake on the loop, status waited
    the 5 s out behind it.)"""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    stop_join_service(cp)
    js = start_fault_join_service(cp, "slow-verify:5000")
    log = cp.base / "js-fault.log"
    try:
        with ThreadPoolExecutor(1) as pool:
            t0 = time.time()
            slow = pool.submit(probe, cluster, "--tcti", w.tpm.tcti, "--name", w.name)
            # Until the service is inside the slow check of the node's evidence.
            while "checking a client's evidence" not in log.read_text():
                assert time.time() - t0 < 30 and not slow.done(), log.read_text()
                time.sleep(0.05)
            r, took = status(cluster)
            slow_running = not slow.done()
            rc, out = slow.result()
            slow_took = time.time() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        assert took < 4.0, took
        assert slow_running
        assert rc == 0, out
        assert ticket(out)["token"]
        assert slow_took >= 5.0, slow_took
    finally:
        js.terminate()
        js.wait(timeout=20)


def test_slow_evidence_checks_of_four_joins_overlap_instead_of_queueing(cluster):
    """Four joins at once, each client's evidence taking 3 s to check in the handshake: on
    the handshake workers they overlap (about 3 s and a lone join's time), where one after
    another on the loop they took at least 12 s. All four are admitted, each once."""
    n = 4
    cp = cluster.node("cp-1")
    nodes = [cluster.node(f"worker-{i}") for i in range(n)]
    cluster.init(cp, cluster.policy([cp, *nodes]))
    stop_join_service(cp)
    js = start_fault_join_service(cp, "slow-verify:3000")
    try:
        start = time.time()
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(probe, cluster, "--tcti", w.tpm.tcti, "--name", w.name)
                       for w in nodes]
            results = [f.result() for f in futures]
        elapsed = time.time() - start
        assert all(rc == 0 for rc, _ in results), [out for rc, out in results if rc]
        assert len({ticket(out)["token"] for _, out in results}) == n
        admitted = [e["node"] for e in cluster.audit() if e["event"] == "admission"]
        assert sorted(admitted) == sorted(w.name for w in nodes)
        assert elapsed < n * 3 * 0.75, elapsed
    finally:
        js.terminate()
        js.wait(timeout=20)
