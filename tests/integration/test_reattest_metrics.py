# SPDX-License-Identifier: Apache-2.0
"""GET /metrics of the join service (docs/reattestation.md, "Metrics"): Prometheus text on a
loopback listener (--metrics-listen), served by the confined network process with the monitor's
records. Scraped while members are re-attested (interval 2 s), parsed strictly as the text
format 0.0.4, the gauges follow a member whose PCR changes (failed, cordoned) and a member name
chosen to break the format stays one escaped label value. Nodes are processes on loopback with
their own swtpm (the fixtures of test_join.py and test_reattestation.py)."""
import json
import os
import re
import signal
import urllib.error
import urllib.request

import pytest

from conftest import run
from test_join import Cluster, start_join_service, stop_join_service
from test_reattestation import (policy_with, reboot_measured, start_serving, wait_until,
                                kubectl_calls)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_metrics(text):
    """The text exposition format 0.0.4, strictly: HELP/TYPE comments, then samples whose label
    values are quoted with only \\\\, \\" and \\n escaped. Returns {(name, frozenset(labels)):
    value} and {name: type}; any other line fails the test."""
    samples, types = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter"), line
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, _, body, value = m.groups()
        assert name in types, f"{name} without # TYPE"
        labels = {}
        rest = body or ""
        while rest:
            lm = LABEL.match(rest)
            assert lm, f"malformed labels in {line!r}"
            raw = lm.group(2)
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda e: {"n": "\n"}.get(e.group(1), e.group(1)),
                                         raw)
            rest = rest[lm.end():]
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(value)
    return samples, types


class Metrics:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=10) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return parse_metrics(r.read().decode())[0]

    def member(self, name, metric, **labels):
        s = self.scrape()
        role = [dict(k[1]).get("role") for k in s if k[0] == metric and
                dict(k[1]).get("member") == name]
        if not role:
            return None
        want = dict(member=name, role=role[0], **labels)
        return s.get((metric, frozenset(want.items())))

    def verdict(self, name):
        s = self.scrape()
        on = [dict(k[1])["verdict"] for k, v in s.items()
              if k[0] == "cloister_reattest_verdict" and dict(k[1])["member"] == name and v == 1]
        assert len(on) <= 1, on
        return on[0] if on else None


def listening_pid(port, candidates):
    """The process (of candidates) holding the listening socket on port."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if int(f[1].split(":")[1], 16) == port and f[3] == "0A":
                inode = f[9]
    assert inode
    for pid in candidates:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                pass
    return None


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = open(f"/proc/{p}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p))
    return out


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


def with_metrics(cluster):
    """The control plane's join service started again with --metrics-listen on a free port."""
    cp = cluster.cp
    stop_join_service(cp)
    log = start_join_service(cp, "--metrics-listen", "127.0.0.1:0")
    m = re.search(r"metrics on 127\.0\.0\.1:0 \(port (\d+), loopback only", log.read_text())
    assert m, log.read_text()
    return Metrics(int(m.group(1))), int(m.group(1))


def test_metrics_follow_a_member_that_fails_reattestation_and_escape_hostile_names(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="cordon")
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    # A member record whose name would end its label and add a series of its own, were it not
    # escaped (names are the joining node's choice; this one is written into the membership).
    hostile = 'evil"} 1\ncloister_join_members 9\n\\'
    path = cp.state / "members.json"
    doc = json.loads(path.read_text())
    doc["members"].append({"name": hostile, "role": "worker", "endpoint": "127.0.0.1:1",
                           "diskUuid": "00000000-0000-4000-8000-000000000001", "akDigest": "",
                           "admitted": "2026-12-07T00:00:00Z"})
    path.write_text(json.dumps(doc))
    metrics, port = with_metrics(cluster)

    # Served by the network process (uid 65534, not the monitor that holds the secrets).
    holder = listening_pid(port, [cp.proc.pid] + children(cp.proc.pid))
    assert holder and holder != cp.proc.pid
    status = open(f"/proc/{holder}/status").read()
    assert re.search(r"^Uid:\s+65534\s", status, re.M), status

    wait_until("the membership read", lambda: metrics.scrape()[("cloister_join_members",
                                                                 frozenset())] == 3)
    s, types = parse_metrics(urllib.request.urlopen(metrics.url, timeout=10).read().decode())
    assert types["cloister_reattest_member_attempts_total"] == "counter"
    assert s[("cloister_reattest_interval_seconds", frozenset())] == 2
    assert s[("cloister_reattest_enabled", frozenset())] == 1
    assert s[("cloister_join_policy_version", frozenset())] == 0  # never pushed
    # The network process's own counters of load it shed, after the monitor's text: nothing
    # shed here (tests/unit/test-rpc.c makes them count).
    for name in ("cloister_join_requests_dropped_total", "cloister_join_answers_discarded_total",
                 "cloister_join_handshakes_delayed_total", "cloister_join_handshakes_closed_total"):
        assert types[name] == "counter" and s[(name, frozenset())] == 0, name
    assert types["cloister_join_requests_waiting"] == "gauge"
    assert s[("cloister_join_requests_waiting", frozenset())] == 0
    # The hostile name is one label value, read back exactly; it added no series.
    names = {dict(k[1]).get("member") for k in s if k[0] == "cloister_reattest_verdict"}
    assert names == {"cp-1", "worker-1", hostile}, names
    assert len([k for k in s if k[0] == "cloister_reattest_cordoned"]) == 3

    wait_until("worker-1 passes in /metrics", lambda: metrics.verdict("worker-1") == "pass",
               timeout=30)
    last = metrics.member("worker-1", "cloister_reattest_last_attested_timestamp_seconds")
    assert last > 0
    assert 0 <= metrics.member("worker-1", "cloister_reattest_seconds_since_last_attested") < 30
    assert metrics.member("worker-1", "cloister_reattest_consecutive_failures") == 0
    assert metrics.member("worker-1", "cloister_reattest_cordoned") == 0
    assert metrics.member("worker-1", "cloister_reattest_response", response="none") == 1
    assert metrics.member("worker-1", "cloister_reattest_member_passes_total") >= 1
    wait_until("the hostile record unreachable",
               lambda: metrics.member(hostile, "cloister_reattest_unreachable") == 1, timeout=30)
    rounds = metrics.scrape()[("cloister_reattest_attempts_total", frozenset())]
    assert rounds >= 3

    # worker-1 reboots measured differently (PCR 9): the gauges say failed, cordoned.
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait(timeout=20)
    last = metrics.member("worker-1", "cloister_reattest_last_attested_timestamp_seconds")
    reboot_measured(w, extend_pcr=9)
    start_serving(w, cluster, policy)
    wait_until("worker-1 failed in /metrics", lambda: metrics.verdict("worker-1") == "failed",
               timeout=30)
    wait_until("worker-1 cordoned in /metrics",
               lambda: metrics.member("worker-1", "cloister_reattest_cordoned") == 1)
    assert metrics.member("worker-1", "cloister_reattest_response", response="cordoned") == 1
    assert metrics.member("worker-1", "cloister_reattest_response", response="none") == 0
    assert metrics.member("worker-1", "cloister_reattest_verdict", verdict="pass") == 0
    assert metrics.member("worker-1", "cloister_reattest_unreachable") == 0
    wait_until("two failures in a row",
               lambda: metrics.member("worker-1", "cloister_reattest_consecutive_failures") >= 2,
               timeout=30)
    # Its last pass stays what it was; the time since grows.
    assert metrics.member("worker-1", "cloister_reattest_last_attested_timestamp_seconds") == last
    assert metrics.member("worker-1", "cloister_reattest_seconds_since_last_attested") >= 2
    assert metrics.scrape()[("cloister_reattest_attempts_total", frozenset())] > rounds
    assert {"verb": "cordon", "node": "worker-1"} in kubectl_calls(cluster)

    # Nothing but GET /metrics.
    for path_, method in (("/v1/members", "GET"), ("/metrics", "POST")):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path_}", method=method,
                                     data=b"" if method == "POST" else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code in (404, 501)


@pytest.mark.parametrize("address", ["0.0.0.0:9100", "[::]:9100", "192.0.2.1:9100",
                                     "localhost:9100", "10.0.0.1:0"])
def test_metrics_listener_refuses_an_address_that_is_not_loopback(address, tmp_path):
    r = run("cloister-join-service", "--state-dir", tmp_path, "--metrics-listen", address)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not a loopback address" in r.stderr and address in r.stderr, r.stderr
    # The bootstrapper, which hands it to the join service a control plane becomes, says so at
    # once too (not after the join).
    r = run("cloister-bootstrapper", "--state-disk", tmp_path / "d", "--first-boot-key",
            tmp_path / "k", "--state-dir", tmp_path, "--metrics-listen", address)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not a loopback address" in r.stderr and address in r.stderr, r.stderr


def test_cordon_survives_a_join_service_restart_until_the_member_passes_again(cluster):
    """A cordon is kept on the state disk (reattest-cordons.json): after a restart of the join
    service the member stays cordoned — its rejoin gets no key — although this run never saw it
    fail; once it passes again the cordon is lifted and it rejoins."""
    from test_reattestation import set_cluster_policy, status
    from test_join import reboot
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="cordon")
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    wait_until("worker-1 passes",
               lambda: (status(cluster).get("worker-1") or {}).get("verdict") == "pass")
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait(timeout=20)
    reboot_measured(w, extend_pcr=9)
    start_serving(w, cluster, policy)
    wait_until("worker-1 cordoned",
               lambda: status(cluster)["worker-1"]["response"] == "cordoned", timeout=30)
    # The verdict is served as soon as it is reached; the cordon is written to the state disk
    # right after, outside the re-attestation lock (a moment later on a loaded machine).
    wait_until("the cordon saved", lambda: (cp.state / "reattest-cordons.json").exists(),
               timeout=10)
    saved = json.loads((cp.state / "reattest-cordons.json").read_text())
    assert [c["name"] for c in saved["cordoned"]] == ["worker-1"] and "PCR 9" in \
        saved["cordoned"][0]["checks"], saved

    # worker-1 loses power; re-attestation is paused (so that this run's records alone could
    # never cordon it) and the join service restarts.
    w.proc.kill()
    w.proc.wait(timeout=20)
    set_cluster_policy(cluster, enabled=False)
    stop_join_service(cp)
    start_join_service(cp)
    st = status(cluster)["worker-1"]
    assert st["response"] == "cordoned" and st["verdict"] == "pending", st
    assert "cordoned before the join service restarted" in st["checks"], st

    # It boots measured as before and asks for its disk key: refused, cordoned.
    since = len(cluster.audit())
    reboot(w)
    start_serving(w, cluster, policy)
    wait_until("a rejoin refused as cordoned",
               lambda: [e for e in cluster.audit()[since:] if e["node"] == "worker-1" and
                        e["event"] == "refusal" and "cordoned" in e["reason"]], timeout=60)
    assert "Rejoined" not in w.log.read_text()
    # Re-attestation on again: it passes (PCR 15 zero: rejoining), the cordon is lifted (in the
    # file too) and its next rejoin succeeds.
    set_cluster_policy(cluster, enabled=True)
    w.wait_for("Rejoined cluster " + cluster.cid, timeout=120)
    wait_until("kubectl uncordon worker-1",
               lambda: {"verb": "uncordon", "node": "worker-1"} in kubectl_calls(cluster))
    assert json.loads((cp.state / "reattest-cordons.json").read_text())["cordoned"] == []
