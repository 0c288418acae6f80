# SPDX-License-Identifier: Apache-2.0
"""Continuous re-attestation (docs/reattestation.md): the join service attests every member
again on a short schedule (2-3 s here), over aTLS with its own nonce, through the member's
GET /v1/node; a member whose PCRs change is failed and the policy's response happens (kubectl,
the test double beside kubeadm, checks the command it is given; a cordoned member gets no disk
key); a member that stops answering is unreachable, not failed; a member stalling its TLS
handshake delays nobody else. Nodes are processes on loopback, each with its own swtpm (the
fixtures of test_join.py)."""
import base64
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import ROOT, run
from test_join import Cluster, Node, audit_entries, reboot, restart  # noqa: F401
from test_join_privsep import NETWORK_ROOT, forms, found_in

INTERVAL = 2


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    for n in c.nodes:
        if n.proc and n.proc.poll() is None:
            try:
                n.proc.send_signal(signal.SIGCONT)
            except OSError:
                pass
    c.stop()


def policy_with(cluster, nodes, **section):
    p = cluster.policy(nodes)
    doc = json.loads(p.read_text())
    doc["reattestation"] = dict({"intervalSeconds": INTERVAL, "timeoutSeconds": 3,
                                 "unreachableAfter": 2}, **section)
    p.write_text(json.dumps(doc))
    return p


def set_cluster_policy(cluster, **section):
    """The join service's policy file replaced (renamed into place: reloaded)."""
    path = cluster.cp.state / "cluster-policy.json"
    doc = json.loads(path.read_text())
    doc["reattestation"].update(section)
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(doc))
    os.rename(tmp, path)


def status(cluster):
    """cloister status -o json: each member's re-attestation record, by name."""
    r = run("cloister", "status", "--policy", cluster.tmp / "policy.json", "--state-file",
            cluster.tmp / "cloister-state.json", "--timeout", "5", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {n["name"]: n["reattestation"] for n in json.loads(r.stdout)["nodes"]}


def wait_until(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def reattest_events(cluster, node):
    return [e for e in cluster.audit() if e["node"] == node and
            (e["event"].startswith("reattest-") or e["event"] == "eviction")]


def kubectl_calls(cluster):
    p = cluster.cp.state / "kubectl-calls.log"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


def reboot_measured(node, extend_pcr=None):
    """A power cycle (test_join.reboot); with extend_pcr, the new boot measures one more thing
    into that PCR through the node's own TPM: its PCRs differ from what it joined with."""
    reboot(node)
    if extend_pcr is not None:
        env = dict(os.environ, TPM2TOOLS_TCTI=node.tpm.tcti)
        subprocess.run(["tpm2_pcrextend", f"{extend_pcr}:sha256={'ab' * 32}"], env=env, check=True)


def start_serving(node, cluster, policy):
    """The node started again after a reboot: it asks for its disk key (rejoin), and serves
    GET /v1/node meanwhile."""
    restart(node, cluster, policy)
    node.wait_for(r"rejoin: this node's disk belongs to cluster")
    return time.time()


def test_member_whose_pcr_changes_is_failed_within_two_intervals_cordoned_then_passes_again(
        cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="cordon")
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    first = wait_until("worker-1 passes re-attestation",
                       lambda: (status(cluster).get("worker-1") or {}).get("verdict") == "pass" and
                       status(cluster)["worker-1"])
    assert first["lastAttested"] and first["response"] == "none" and first["checks"] == ""

    # PCR 9 changes: the node comes back measured differently (its rejoin is refused by the
    # policy), and serves GET /v1/node meanwhile.
    reboot_measured(w, extend_pcr=9)
    t0 = start_serving(w, cluster, policy)
    failed = wait_until("a reattest-failed entry",
                        lambda: [e for e in reattest_events(cluster, "worker-1")
                                 if e["event"] == "reattest-failed"], timeout=30)
    elapsed = time.time() - t0
    # Within two intervals of its first answer (plus the handshake itself on a busy machine).
    assert elapsed <= 2 * INTERVAL + 3, elapsed
    e = failed[0]
    assert e["verdict"] == "refused" and "PCR 9" in e["reason"], e
    assert "response: cordoned" in e["reason"], e
    assert len(e["evidenceDigest"]) == 64
    wait_until("kubectl cordon worker-1",
               lambda: {"verb": "cordon", "node": "worker-1"} in kubectl_calls(cluster))
    st = status(cluster)["worker-1"]
    assert st["verdict"] == "failed" and st["response"] == "cordoned" and "PCR 9" in st["checks"]
    r = run("cloister", "status", "--policy", cluster.tmp / "policy.json", "--state-file",
            cluster.tmp / "cloister-state.json", "--timeout", "5")
    line = [x for x in r.stdout.splitlines() if x.startswith("re-attestation: worker-1 ")]
    assert len(line) == 1 and "failed (" in line[0] and "PCR 9" in line[0], r.stdout
    assert re.search(r"last passed \d{4}-\d\d-\d\dT[\d:]+Z \(\d+ s ago\), response: cordoned$",
                     line[0]), line[0]
    # Reported once, not every interval.
    time.sleep(2 * INTERVAL)
    assert len([e for e in reattest_events(cluster, "worker-1")
                if e["event"] == "reattest-failed"]) == 1

    # The PCR is back (a new boot, measured as before): it passes, the cordon is lifted, and it
    # rejoins with its disk key.
    w.proc.kill()  # a power cut: it is still asking for its key
    w.proc.wait(timeout=20)
    reboot_measured(w)
    start_serving(w, cluster, policy)
    wait_until("a reattest-passed entry",
               lambda: [e for e in reattest_events(cluster, "worker-1")
                        if e["event"] == "reattest-passed"], timeout=30)
    wait_until("kubectl uncordon worker-1",
               lambda: {"verb": "uncordon", "node": "worker-1"} in kubectl_calls(cluster))
    w.wait_for("Rejoined cluster " + cluster.cid, timeout=90)
    wait_until("worker-1 passes with PCR 15 set again",
               lambda: status(cluster)["worker-1"]["verdict"] == "pass")
    # While it reboots it may also be unreachable for a while (a slow machine, a sanitizer
    # build): that is its own kind; failed once, then passed once.
    events = [e["event"] for e in reattest_events(cluster, "worker-1")
              if e["event"] != "reattest-unreachable"]
    assert events == ["reattest-failed", "reattest-passed"]
    passed = [e for e in reattest_events(cluster, "worker-1") if e["event"] == "reattest-passed"]
    assert passed[0]["verdict"] == "admitted"
    # The log's chain holds (test_join.audit_entries checks every link) and the C verifier
    # accepts the new entry kinds.
    audit_entries(cluster.cp.state / "audit.log")
    r = run("cloister", "verify", "--cluster", "--policy", cluster.tmp / "policy.json",
            "--state-file", cluster.tmp / "cloister-state.json")
    assert "audit chain broken" not in r.stdout, r.stdout


def test_policy_reloaded_to_refuse_a_members_measurements_fails_it_and_restored_passes(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)")
    wait_until("worker-1 passes", lambda: (status(cluster).get("worker-1") or {}).get(
        "verdict") == "pass")
    path = cp.state / "cluster-policy.json"
    good = path.read_text()
    doc = json.loads(good)
    doc["measurements"]["11"]["expected"] = "cd" * 32  # the owner no longer accepts this UKI
    path.with_suffix(".new").write_text(json.dumps(doc))
    os.rename(path.with_suffix(".new"), path)
    t0 = time.time()
    failed = wait_until("worker-1 failed under the new policy",
                        lambda: [e for e in reattest_events(cluster, "worker-1")
                                 if e["event"] == "reattest-failed"], timeout=30)
    assert time.time() - t0 <= 2 * INTERVAL + 3
    assert "PCR 11" in failed[0]["reason"] and failed[0]["policyDigest"], failed[0]
    path.with_suffix(".new").write_text(good)
    os.rename(path.with_suffix(".new"), path)
    wait_until("worker-1 passes again",
               lambda: [e for e in reattest_events(cluster, "worker-1")
                        if e["event"] == "reattest-passed"], timeout=30)


def test_evicted_member_is_removed_from_the_membership_and_its_node_deleted(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="evict")
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    wait_until("worker-1 passes", lambda: (status(cluster).get("worker-1") or {}).get(
        "verdict") == "pass")
    reboot_measured(w, extend_pcr=4)
    start_serving(w, cluster, policy)
    wait_until("an eviction entry", lambda: [e for e in reattest_events(cluster, "worker-1")
                                             if e["event"] == "eviction"], timeout=30)
    members = json.loads((cp.state / "members.json").read_text())["members"]
    assert "worker-1" not in [m["name"] for m in members]
    assert "worker-1" not in status(cluster)
    calls = wait_until("kubectl delete node worker-1",
                       lambda: {"verb": "delete-node", "node": "worker-1"} in kubectl_calls(cluster)
                       and kubectl_calls(cluster))
    assert calls == [{"verb": "cordon", "node": "worker-1"},
                     {"verb": "delete-node", "node": "worker-1"}]
    assert [e["event"] for e in reattest_events(cluster, "worker-1")] == [
        "reattest-failed", "eviction"]


def test_killed_member_is_unreachable_not_failed_and_a_stalled_one_delays_no_other(cluster):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = policy_with(cluster, [cp, w1, w2], onUnreachable="cordon")
    cluster.init(cp, policy)
    for w in (w1, w2):
        cluster.join(w, policy)
    for w in (w1, w2):
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    wait_until("both pass", lambda: all((status(cluster).get(n) or {}).get("verdict") == "pass"
                                        for n in ("worker-1", "worker-2")))

    # worker-2 stalls: its kernel accepts the connection, its TLS handshake never comes. Each
    # of its attempts waits out the 3 s timeout; worker-1 is attested every interval all along.
    before = status(cluster)["worker-1"]["passes"]
    w2.proc.send_signal(signal.SIGSTOP)
    t0 = time.time()
    wait_until("worker-2 unreachable",
               lambda: [e for e in reattest_events(cluster, "worker-2")
                        if e["event"] == "reattest-unreachable"], timeout=40)
    span = time.time() - t0
    after = status(cluster)["worker-1"]
    # One pass per interval (jitter +-20 %) over the whole span, not one per 3 s timeout.
    assert after["passes"] - before >= int(span / (INTERVAL * 1.2)) - 1, (before, after, span)
    assert after["verdict"] == "pass"
    e = [e for e in reattest_events(cluster, "worker-2") if e["event"] == "reattest-unreachable"][0]
    assert "did not finish" in e["reason"] and "response: cordoned" in e["reason"], e
    w2.proc.send_signal(signal.SIGCONT)
    wait_until("worker-2 recovers", lambda: [e for e in reattest_events(cluster, "worker-2")
                                             if e["event"] == "reattest-passed"], timeout=30)

    # worker-1 is killed: nothing listens at its endpoint. Unreachable after two intervals,
    # never failed; cordoned (onUnreachable).
    w1.proc.send_signal(signal.SIGKILL)
    w1.proc.wait(timeout=10)
    wait_until("worker-1 unreachable",
               lambda: [e for e in reattest_events(cluster, "worker-1")
                        if e["event"] == "reattest-unreachable"], timeout=30)
    st = status(cluster)["worker-1"]
    assert st["verdict"] == "unreachable" and st["response"] == "cordoned"
    assert "refused" in st["checks"]
    assert "reattest-failed" not in [e["event"] for e in reattest_events(cluster, "worker-1")]
    wait_until("kubectl cordon worker-1",
               lambda: {"verb": "cordon", "node": "worker-1"} in kubectl_calls(cluster))

    # Cordoned: no key material. With re-attestation paused (the policy reloaded), the rebooted
    # worker-1 asks for its disk key and is refused, the audit log saying why.
    set_cluster_policy(cluster, enabled=False)
    time.sleep(1)
    reboot_measured(w1)
    start_serving(w1, cluster, policy)
    refusal = wait_until("a rejoin refused as cordoned",
                         lambda: [e for e in cluster.audit() if e["node"] == "worker-1" and
                                  e["event"] == "refusal" and "cordoned" in e["reason"]],
                         timeout=60)
    assert refusal
    assert "Rejoined" not in w1.log.read_text()
    # Re-attestation on again: it passes (rebooted, PCR 15 zero), the cordon is lifted, and its
    # next rejoin succeeds.
    set_cluster_policy(cluster, enabled=True)
    w1.wait_for("Rejoined cluster " + cluster.cid, timeout=120)
    wait_until("kubectl uncordon worker-1",
               lambda: {"verb": "uncordon", "node": "worker-1"} in kubectl_calls(cluster))


def test_another_genuine_node_at_a_members_address_fails_on_its_attestation_key(cluster):
    """The owner's policy admits both TPMs, the image is the same: only the attestation key the
    member joined with tells that the node now answering at its address is not the member
    (a host re-routing the address to a node of its choice)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    other = Node(cluster.tmp / "other-machine", "worker-1")
    cluster.nodes.append(other)
    policy = policy_with(cluster, [cp, w, other], unreachableAfter=100)
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    wait_until("worker-1 passes", lambda: (status(cluster).get("worker-1") or {}).get(
        "verdict") == "pass")
    w.proc.kill()
    w.proc.wait(timeout=10)
    # The other machine, same name, at worker-1's address: its join is refused (another
    # attestation key under an admitted name) and it serves GET /v1/node meanwhile.
    other.port = w.port
    cluster.join(other, policy, timeout=60)
    failed = wait_until("a reattest-failed entry",
                        lambda: [e for e in reattest_events(cluster, "worker-1")
                                 if e["event"] == "reattest-failed"], timeout=40)
    assert "attestation-key" in failed[0]["reason"], failed[0]
    st = status(cluster)["worker-1"]
    assert st["verdict"] == "failed" and "another attestation key" in st["checks"]


def test_reattestation_process_is_confined_and_holds_no_secret_after_attesting_members(cluster):
    """The process that parses members' TLS and HTTP: uid 65534 in the empty root on every
    thread, no capabilities, seccomp, no descriptor but its channel and stdio, and none of the
    cluster's secrets in its memory after real re-attestations (the scan finds them in the
    monitor, so it can fail)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)")
    wait_until("worker-1 passes twice", lambda: ((status(cluster).get("worker-1") or {}).get(
        "passes") or 0) >= 2)
    pid = int(re.search(r"re-attestation process (\d+)", cp.log.read_text()).group(1))
    st = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    assert int(st["PPid"]) == cp.proc.pid
    for tid in os.listdir(f"/proc/{pid}/task"):
        t = dict(line.split(":", 1) for line in
                 open(f"/proc/{pid}/task/{tid}/status").read().splitlines())
        assert t["Uid"].split() == ["65534"] * 4 and t["Gid"].split() == ["65534"] * 4, tid
        assert t["Seccomp"].strip() == "2" and t["NoNewPrivs"].strip() == "1", tid
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(t[cap].strip(), 16) == 0, (tid, cap)
    assert os.readlink(f"/proc/{pid}/root") == NETWORK_ROOT
    held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
            if int(fd) > 2]
    assert all(h.startswith("socket:") for h in held), held
    secret = json.loads(cluster.ms.read_text())
    secrets = {**forms("master secret", base64.b64decode(secret["key"])),
               **forms("disk key", cluster.disk_key(w))}
    assert found_in(pid, secrets) == set()
    assert found_in(cp.proc.pid, secrets)


def test_jitter_spreads_fifty_members_over_the_interval(cluster):
    """The schedule alone, measured: 50 member records whose endpoints are closed ports (each
    attempt fails at once, in the monitor, so what is seen is when it was made). New members
    get their first attempt at random within one interval, later ones interval x (1 +- 20 %):
    they are not all asked at once, in the first interval nor after."""
    cp = cluster.node("cp-1")
    policy = policy_with(cluster, [cp], intervalSeconds=10, unreachableAfter=1000)
    cluster.init(cp, policy)
    path = cp.state / "members.json"
    doc = json.loads(path.read_text())
    for i in range(50):
        doc["members"].append({"name": f"m-{i}", "role": "worker", "endpoint": "127.0.0.1:1",
                               "diskUuid": f"00000000-0000-4000-8000-{i:012d}",
                               "akDigest": "", "admitted": "2026-12-07T00:00:00Z"})
    path.with_suffix(".new").write_text(json.dumps(doc))
    os.rename(path.with_suffix(".new"), path)

    def seconds():
        """Each fake member's last attempt, as seconds since the epoch (the record's
        resolution)."""
        r = run("cloister", "status", "--policy", cluster.tmp / "policy.json", "--state-file",
                cluster.tmp / "cloister-state.json", "--timeout", "2", "-o", "json")
        out = {}
        for n in json.loads(r.stdout)["nodes"]:
            x = n["reattestation"]
            if n["name"].startswith("m-") and x and x["lastResult"]:
                out[n["name"]] = (time.mktime(time.strptime(x["lastResult"],
                                                            "%Y-%m-%dT%H:%M:%SZ")), x["attempts"])
        return out

    time.sleep(12)  # one interval, and the membership read (each second)
    t = time.time()
    first = seconds()
    print(f"cloister status with 50 unreachable members: {time.time() - t:.1f} s")
    assert len(first) == 50, sorted(first)
    spread = [t for t, _ in first.values()]
    per_second = {t: spread.count(t) for t in spread}
    # Uniform over 10 s: about 5 a second; all at once would be 50 in one or two seconds.
    assert max(per_second.values()) <= 15, per_second
    assert max(spread) - min(spread) >= 6, per_second
    # Three intervals later: still spread (the jitter keeps them from lining up).
    time.sleep(25)
    later = seconds()
    assert all(a >= 3 for _, a in later.values()), later
    spread = [t for t, _ in later.values()]
    per_second = {t: spread.count(t) for t in spread}
    assert max(per_second.values()) <= 15 and max(spread) - min(spread) >= 6, per_second


def test_kubectl_double_refuses_anything_but_the_three_commands(tmp_path):
    conf = tmp_path / "admin.conf"
    conf.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers:\n- user:\n"
                    "    client-certificate-data: x\n")
    k = str(ROOT / "tests" / "doubles" / "kubectl")
    ok = subprocess.run([k, "--kubeconfig", str(conf), "cordon", "worker-1"], capture_output=True)
    assert ok.returncode == 0
    for bad in (["cordon", "Worker_1"], ["drain", "worker-1"], ["delete", "pod", "x"],
                ["cordon", "a", "b"]):
        r = subprocess.run([k, "--kubeconfig", str(conf), *bad], capture_output=True, text=True)
        assert r.returncode != 0 and "kubectl double" in r.stderr, bad
    r = subprocess.run([k, "--kubeconfig", str(tmp_path / "none"), "cordon", "w"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert [json.loads(l) for l in (tmp_path / "kubectl-calls.log").read_text().splitlines()] == [
        {"verb": "cordon", "node": "worker-1"}]
