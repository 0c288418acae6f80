# SPDX-License-Identifier: Apache-2.0
"""Fairness between addresses in the join service (issue 17, docs/join.md "Under load"): one
address flooding it with handshakes (each makes a TPM quote in the monitor) delays another
address's `GET /v1/node` and join by a bounded amount, derived from a lone request's time
measured in the same test; refusals reported from the event loop never make it wait for the
monitor; the monitor reads the boot event log once, not per quote. Nodes are join-probe
processes on loopback with their own swtpm; the attacker comes from another loopback address
(tests/tools/atls-hold --mode handshakes). swtpm quotes in a few milliseconds, a real TPM in
~60 ms and more: the fault build's CLOISTER_FAULT=slow-quote:MS gives each quote a TPM's time,
so that a flood costs what it costs on a node."""
import json
import os
import statistics
import subprocess
import time

from attackers import counts, hold
from conftest import BUILD
from test_join import KUBEADM, cluster  # noqa: F401 (fixture)
from test_join_concurrency import probe, ticket
from test_key_release import stop_join_service

ATTACKER = "127.0.0.5"
FLOOD = 60  # handshakes the attacker keeps going at once (the per-address cap is 64)
# Steps one address runs at once: half the handshake workers (RPC_HANDSHAKE_WORKERS_DEFAULT 8).
CAP = 4
QUOTE_MS = 300  # a slow TPM: the attacker's rate (8 a second) alone would keep it busy


def timed(fn, *args):
    t0 = time.monotonic()
    rc, out = fn(*args)
    return rc, out, time.monotonic() - t0


def get_node(cluster):
    return probe(cluster, "--no-attest", "--get", "/v1/node")


def join(cluster, node):
    return probe(cluster, "--tcti", node.tpm.tcti, "--name", node.name)


def test_one_address_flooding_handshakes_delays_another_s_node_query_and_join_boundedly(cluster):
    """Quotes take 300 ms (slow-quote). An address keeps 60 handshakes going (each ClientHello
    makes the monitor quote, and the attacker leaves as soon as the quote arrives). Another
    address's GET /v1/node and join complete within (CAP + 2) lone times plus a second: its
    handshake waits for at most the attacker's CAP steps already running and one turn, never
    behind the attacker's queue (before: one first-in, first-out queue of up to 256 steps, each
    a quote: about 50 quotes, 15 s). The attacker is served meanwhile."""
    cp, w0, w1 = cluster.node("cp-1"), cluster.node("worker-0"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w0, w1]))
    stop_join_service(cp)
    js, log = start_fault_join_service(cp, f"slow-quote:{QUOTE_MS}")
    try:
        run_flood(cluster, cp, w0, w1, log)
    finally:
        js.terminate()
        js.wait(timeout=30)


def run_flood(cluster, cp, w0, w1, log):
    lone_gets = []
    for _ in range(3):
        rc, out, took = timed(get_node, cluster)
        assert rc == 0, out
        lone_gets.append(took)
    lone_get = statistics.median(lone_gets)
    rc, out, lone_join = timed(join, cluster, w0)
    assert rc == 0, out
    ticket(out)

    tool, policy, port = BUILD / "tests" / "atls-hold", cluster.tmp / "policy.json", int(cp.port)
    attack_s = int(8 + 3 * (CAP + 2) * lone_get + (CAP + 2) * lone_join + 10)
    flood = hold(tool, policy, cluster.cid, port, "handshakes", ATTACKER, FLOOD, attack_s)
    try:
        time.sleep(3)  # the attacker's burst spent, its handshakes queued and running
        gets = []
        for _ in range(3):
            rc, out, took = timed(get_node, cluster)
            assert rc == 0, out
            gets.append(took)
        rc, out, join_took = timed(join, cluster, w1)
        assert rc == 0, out
        assert ticket(out)["token"]
    finally:
        result = counts(flood)
    report = {"loneGet": lone_get, "gets": gets, "loneJoin": lone_join, "join": join_took,
              "attacker": result}
    print(json.dumps(report))
    # The attack was real: the server made evidence for the attacker throughout.
    assert result["connected"] >= FLOOD and result["flights"] >= 10, report
    assert max(gets) <= (CAP + 2) * lone_get + 1.0, report
    assert join_took <= (CAP + 2) * lone_join + 1.0, report


def start_fault_join_service(cp, fault):
    log = cp.base / "js-fault.log"
    f = open(log, "w")
    proc = subprocess.Popen([str(BUILD / "tests" / "cloister-join-service-fault"), "--tcti",
                             cp.tpm.tcti, "--listen", f"127.0.0.1:{cp.port}", "--state-dir",
                             str(cp.state), "--kubeadm", str(KUBEADM), "--event-log",
                             str(cp.boot_log)],
                            stdout=f, stderr=subprocess.STDOUT,
                            env=dict(os.environ, CLOISTER_FAULT=fault))
    deadline = time.time() + 30
    while "serving joins on" not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.1)
    return proc, log


def test_refusals_reported_from_the_event_loop_never_wait_for_the_monitor(cluster):
    """Each refusal report takes 3 s to reach the monitor (the fault build's
    slow-refusal-report:3000, what a monitor busy on every channel does to its caller). Five
    requests without evidence to POST /v1/join, refused on the event loop, are answered 403
    at once, and another client's GET /v1/node right after is as fast as a lone one: the loop
    queued the reports (before, it sent each itself and waited 3 s per refusal, 15 s in all).
    The reports still reach the audit log."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    stop_join_service(cp)
    js, log = start_fault_join_service(cp, "slow-refusal-report:3000")
    try:
        lone = min(timed(get_node, cluster)[2] for _ in range(2))
        t0 = time.monotonic()
        for _ in range(5):
            rc, out = probe(cluster, "--no-attest")
            assert rc != 0 and out.startswith("HTTP 403 "), out
        refusals_took = time.monotonic() - t0
        rc, out, took = timed(get_node, cluster)
        assert rc == 0, out
        report = {"lone": lone, "fiveRefusals": refusals_took, "getAfter": took}
        print(json.dumps(report))
        assert refusals_took < 5 * (lone + 1.0), report
        assert took <= 2 * lone + 1.0, report
        # Written by the monitor, one after another (3 s each): the first is there soon.
        deadline = time.monotonic() + 30
        while not any(e["event"] == "refusal" and "did not attest" in e.get("reason", "")
                      for e in cluster.audit()):
            assert time.monotonic() < deadline, cluster.audit()
            time.sleep(0.5)
    finally:
        js.terminate()
        js.wait(timeout=30)


def test_monitor_reads_the_event_log_once_not_per_quote(cluster):
    """After the join service's first quote the boot event log on disk is overwritten with
    garbage: the next handshake's evidence still carries the log as it was (read once, at the
    first quote), so the client's policy check passes. Re-read per quote, the garbage went into
    the evidence and the client refused the join service."""
    cp = cluster.node("cp-1")
    cluster.init(cp, cluster.policy([cp]))
    rc, out = get_node(cluster)
    assert rc == 0, out
    original = cp.boot_log.read_bytes()
    try:
        cp.boot_log.write_bytes(b"\xff" * len(original))
        rc, out = get_node(cluster)
        assert rc == 0, out
    finally:
        cp.boot_log.write_bytes(original)


ATTEST, EBUSY = 9, 16  # JOIN_PRIVSEP_ATTEST; the monitor's refusal past its rate


def test_monitor_makes_quotes_for_a_compromised_network_process_at_most_at_its_rate(cluster):
    """A compromised network process (the fault build's fake network) asks the monitor for 200
    quotes, one after another, as fast as the monitor answers. It makes at most its burst (64)
    and 16 a second; the others are refused at once with EBUSY, before the TPM, naming the
    limit."""
    from test_join_privsep import as_compromised_network, client_key, message, reply

    cp = cluster.node("cp-1")
    cluster.init(cp, cluster.policy([cp]))
    _, spki = client_key()
    n = 200
    t0 = time.monotonic()
    replies = [reply(r) for r in as_compromised_network(
        cluster, [(0, message(ATTEST, os.urandom(32), spki)) for _ in range(n)])]
    elapsed = time.monotonic() - t0
    made = [r for r in replies if r[1] == 0]
    refused = [r for r in replies if r[1] != 0]
    print(json.dumps({"made": len(made), "refused": len(refused), "elapsed": elapsed}))
    for _, status, (detail, answer) in refused:
        assert status == -EBUSY and answer == "", (status, detail)
        assert "at most 16 quotes a second" in detail, detail
    assert len(made) <= 64 + 16 * elapsed + 1, (len(made), elapsed)
    assert refused, "the monitor made every quote (a TPM slower than 16 a second?)"
