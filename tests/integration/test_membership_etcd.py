# SPDX-License-Identifier: Apache-2.0
"""One membership for the whole cluster: two join services (two control planes of one cluster)
keep members and the audit chain in one real 3-member etcd (etcd_cluster.py, mutual TLS).
Claims on a name or a disk made at the same moment through both are decided by etcd
transactions: exactly one is admitted. A member admitted through one rejoins through the other.
With etcd's quorum gone, joins are refused with the reason and nothing is half-written. The
chain in etcd is checked by an independent reader (Python, docs/audit-log.md's algorithm)."""
import hashlib
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BUILD, binary
from etcd_cluster import etcd  # noqa: F401 (fixture)
from test_join import KUBEADM, cluster  # noqa: F401 (fixture)

# The kubeadm double is made slow, as a real kubeadm is, so that both join services have read
# the membership and are past their own checks before either records its admission.
SLOW_KUBEADM = "2.0"


def start_js(cp, etcd, slow=SLOW_KUBEADM, fault=None):
    """cp's join service on etcd (None: local files); fault: the build with fault points
    (CLOISTER_FAULT=fault)."""
    log = cp.base / f"js-etcd-{len(list(cp.base.glob('js-etcd-*.log')))}.log"
    exe = BUILD / "tests" / "cloister-join-service-fault" if fault else binary(
        "cloister-join-service")
    env = dict(os.environ, KUBEADM_DOUBLE_SLEEP=slow)
    if fault:
        env["CLOISTER_FAULT"] = fault
    cp.proc = subprocess.Popen(
        [str(exe), "--tcti", cp.tpm.tcti, "--listen",
         f"127.0.0.1:{cp.port}", "--state-dir", str(cp.state), "--kubeadm", str(KUBEADM),
         "--event-log", str(cp.boot_log), *map(str, etcd.client_args() if etcd else [])],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    for _ in range(300):
        if "serving joins on" in log.read_text():
            cp.js_log = log
            return log
        assert cp.proc.poll() is None, log.read_text()
        time.sleep(0.1)
    pytest.fail(log.read_text())


def stop(cp):
    if cp.proc and cp.proc.poll() is None:
        cp.proc.terminate()
        cp.proc.wait(timeout=30)


def probe(cluster, cp, *args):
    p = subprocess.run([str(BUILD / "tests" / "join-probe"), "--policy",
                        str(cluster.tmp / "policy.json"), "--cluster-id", cluster.cid, "--url",
                        cp.url(), *map(str, args)], capture_output=True, text=True, timeout=180)
    return p.returncode, p.stdout + p.stderr


def prefix(cluster):
    return f"/cloister/v1/{cluster.cid}/"


def members(cluster, etcd):
    p = prefix(cluster) + "members/"
    return {k[len(p):]: json.loads(v) for k, v in etcd.get_prefix(p).items()}


def chain(cluster, etcd):
    """The audit chain in etcd, verified as docs/audit-log.md's Python check verifies a file:
    canonical form, hash, seq and prev of every entry, and the head naming the last."""
    p = prefix(cluster)
    kvs = etcd.get_prefix(p + "audit/")
    entries, prev = [], "0" * 64
    for n, key in enumerate(sorted(kvs), 1):
        line = kvs[key]
        assert key == p + "audit/" + f"{n:020d}", key
        obj = json.loads(line)
        assert json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n" == line
        h = obj.pop("hash")
        assert hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"))
                              .encode()).hexdigest() == h
        assert obj["seq"] == n and obj["prev"] == prev
        prev = h
        entries.append(obj)
    head = etcd.get_prefix(p + "audit-head").get(p + "audit-head")
    if entries:
        assert json.loads(head) == {"hash": prev, "seq": len(entries)}
    else:
        assert head is None
    return entries


@pytest.fixture
def two(cluster, etcd):
    """cp-1 (init) and cp-2 (joined as a control plane through cp-1), both join services then
    started on one etcd; racers: nodes whose keys the policy trusts."""
    cp1, cp2 = cluster.node("cp-1"), cluster.node("cp-2")
    racers = [cluster.node(f"r-{i}") for i in range(6)]
    policy = cluster.policy([cp1, cp2, *racers])
    cluster.init(cp1, policy)
    keys_only = json.loads(policy.read_text())
    keys_only["measurements"] = {}
    (cluster.tmp / "keys-only.json").write_text(json.dumps(keys_only))
    cluster.join(cp2, cluster.tmp / "keys-only.json", role="control-plane")
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    for cp in (cp1, cp2):
        stop(cp)
    for cp in (cp1, cp2):
        start_js(cp, etcd)
    yield cp1, cp2, racers
    for cp in (cp1, cp2):
        stop(cp)


def test_both_join_services_register_themselves_in_one_membership_with_one_chain(cluster, etcd,
                                                                                  two):
    m = members(cluster, etcd)
    assert sorted(m) == ["cp-1", "cp-2"]
    assert all(r["role"] == "control-plane" and len(r["akDigest"]) == 64 for r in m.values())
    # Each disk and key is indexed to its member.
    p = prefix(cluster)
    disks = etcd.get_prefix(p + "disks/")
    assert sorted(disks.values()) == ["cp-1", "cp-2"]
    entries = chain(cluster, etcd)
    assert sorted(e["node"] for e in entries) == ["cp-1", "cp-2"]


def race(cluster, cps, claims):
    with ThreadPoolExecutor(len(claims)) as pool:
        futures = [pool.submit(probe, cluster, cp, *args) for cp, args in zip(cps, claims)]
        return [f.result() for f in futures]


@pytest.mark.parametrize("rounds", [3])
def test_one_name_or_disk_claimed_through_two_join_services_at_once_admits_exactly_one(
        cluster, etcd, two, rounds):
    """Round by round, two nodes (two TPMs, two disks) claim one name at the same moment, one
    through each join service; in the last round two names claim one disk. Each time exactly one
    is admitted; the other is refused with 409, names the holder, and its refusal is audited in
    the cluster's chain. etcd's membership holds the winner only."""
    cp1, cp2, racers = two
    for k in range(rounds):
        a, b = racers[2 * k], racers[2 * k + 1]
        ua, ub = f"0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a{k}0", f"0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a{k}1"
        if k < rounds - 1:
            name = f"node-{k}"
            claims = [("--tcti", a.tpm.tcti, "--name", name, "--disk-uuid", ua),
                      ("--tcti", b.tpm.tcti, "--name", name, "--disk-uuid", ub)]
        else:
            claims = [("--tcti", a.tpm.tcti, "--name", "disk-a", "--disk-uuid", ua),
                      ("--tcti", b.tpm.tcti, "--name", "disk-b", "--disk-uuid", ua)]
        results = race(cluster, [cp1, cp2], claims)
        assert sorted(rc for rc, _ in results) == [0, 1], results
        (loser,) = [out for rc, out in results if rc]
        (winner,) = [i for i, (rc, _) in enumerate(results) if rc == 0]
        assert "HTTP 409" in loser and "diskKey" not in loser, loser
        assert "member" in loser, loser
        # Both were past their own checks: the claim was decided by the etcd transaction.
        assert "claimed through another join service" in loser, loser
        m = members(cluster, etcd)
        if k < rounds - 1:
            assert m[name]["diskUuid"] == (ua, ub)[winner]
        else:
            assert [r["diskUuid"] for r in m.values()].count(ua) == 1
            assert ("disk-a", "disk-b")[winner] in m and ("disk-a", "disk-b")[1 - winner] not in m
    entries = chain(cluster, etcd)
    assert len([e for e in entries if e["event"] == "admission"]) == 2 + rounds
    assert len([e for e in entries if e["event"] == "refusal"]) >= rounds


def test_a_member_admitted_through_one_join_service_rejoins_through_the_other(cluster, etcd,
                                                                              two):
    cp1, cp2, racers = two
    w = racers[0]
    uuid = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53"
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", uuid)
    assert rc == 0, out
    # cp-2 never admitted it; its membership is etcd's.
    rc, out = probe(cluster, cp2, "--tcti", w.tpm.tcti, "--name", "worker-1", "--rejoin", uuid)
    assert rc == 0 and "diskKey" in out, out
    entries = chain(cluster, etcd)
    assert [e["event"] for e in entries if e["node"] == "worker-1"] == ["admission", "rejoin"]
    # Another TPM under its name is refused there too.
    rc, out = probe(cluster, cp2, "--tcti", racers[1].tpm.tcti, "--name", "worker-1", "--rejoin",
                    uuid)
    assert rc == 1 and "diskKey" not in out, out


def test_quorum_lost_joins_are_refused_with_the_reason_and_nothing_is_half_written(cluster, etcd,
                                                                                   two):
    cp1, cp2, racers = two
    uuid = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a77"
    # One member down: a quorum remains, joins go on.
    etcd.members[2].stop()
    rc, out = probe(cluster, cp1, "--tcti", racers[0].tpm.tcti, "--name", "w-0", "--disk-uuid",
                    "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a70")
    assert rc == 0, out
    before = chain(cluster, etcd)
    etcd.members[1].stop()
    rc, out = probe(cluster, cp2, "--tcti", racers[1].tpm.tcti, "--name", "w-1", "--disk-uuid",
                    uuid)
    assert rc == 1 and "diskKey" not in out, out
    assert "etcd" in out and "fail closed" in out, out
    # Quorum back: nothing of the refused join is in etcd, the chain is whole and goes on.
    etcd.members[1].start(state="existing")
    etcd.members[2].start(state="existing")
    etcd.wait_healthy()
    assert "w-1" not in members(cluster, etcd)
    assert uuid not in "".join(etcd.get_prefix(prefix(cluster) + "disks/"))
    after = chain(cluster, etcd)
    assert after[:len(before)] == before
    assert not [e for e in after if e["node"] == "w-1" and e["verdict"] == "admitted"]
    rc, out = probe(cluster, cp2, "--tcti", racers[1].tpm.tcti, "--name", "w-1", "--disk-uuid",
                    uuid)
    assert rc == 0, out
    assert members(cluster, etcd)["w-1"]["diskUuid"] == uuid


def test_a_join_service_whose_etcd_certificate_etcd_does_not_trust_refuses_joins(cluster, etcd):
    """Mutual TLS: a client certificate from another CA gets no answer from etcd, so the join
    service starts, says etcd does not answer, and refuses every join (fail closed)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    stop(cp)
    args = etcd.client_args()
    args[args.index("--etcd-cert") + 1] = etcd.pki / "stranger.crt"
    args[args.index("--etcd-key") + 1] = etcd.pki / "stranger.key"

    class Stranger:
        def client_args(self):
            return args
    log = start_js(cp, Stranger(), slow="0")
    try:
        assert "joins are refused until it does" in log.read_text()
        rc, out = probe(cluster, cp, "--tcti", w.tpm.tcti, "--name", "worker-1")
        assert rc == 1 and "diskKey" not in out, out
        assert "etcd" in out and "fail closed" in out, out
        assert members(cluster, etcd) == {}
    finally:
        stop(cp)


def test_a_member_evicted_by_reattestation_is_removed_from_etcd_with_its_entry(cluster, etcd):
    """Eviction (docs/reattestation.md) with etcd: the member record and its disk and key index
    keys go from etcd with the eviction entry, in one transaction, so that no other join
    service (nor this one's next read) brings it back; its disk could be claimed again."""
    from test_reattestation import (kubectl_calls, policy_with, reboot_measured, reattest_events,
                                    start_serving, status, wait_until)
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="evict")
    cluster.init(cp, policy)
    stop(cp)
    start_js(cp, etcd, slow="0")
    try:
        cluster.join(w, policy)
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
        assert "worker-1" in members(cluster, etcd)
        wait_until("worker-1 passes", lambda: (status(cluster).get("worker-1") or {}).get(
            "verdict") == "pass")
        reboot_measured(w, extend_pcr=4)
        start_serving(w, cluster, policy)
        wait_until("an eviction entry", lambda: [e for e in reattest_events(cluster, "worker-1")
                                                 if e["event"] == "eviction"], timeout=30)
        wait_until("kubectl delete node worker-1",
                   lambda: {"verb": "delete-node", "node": "worker-1"} in kubectl_calls(cluster))
        assert "worker-1" not in members(cluster, etcd)
        p = prefix(cluster)
        assert "worker-1" not in etcd.get_prefix(p + "disks/").values()
        assert "worker-1" not in etcd.get_prefix(p + "aks/").values()
        events = [e["event"] for e in chain(cluster, etcd) if e["node"] == "worker-1"]
        assert events[0] == "admission" and events[-1] == "eviction", events
        assert events.count("eviction") == 1
        # The cache follows etcd, and the next read does not bring it back.
        assert "worker-1" not in status(cluster)
        assert "worker-1" not in [m["name"] for m in json.loads(
            (cp.state / "members.json").read_text())["members"]]
    finally:
        stop(cp)


def test_an_eviction_judged_on_one_admission_never_removes_the_next_admission_of_its_name(
        cluster, etcd):
    """Re-attestation judges worker-1 (PCR 4 changed, onFailure evict); before the eviction is
    written (held 12 s by the fault build), worker-1 is removed from etcd and its name admitted
    to another node (another TPM, another disk). The eviction names the admission it judged
    (disk, key, admission time, compared in the etcd transaction): the new node stays a
    member, nothing of it is deleted, and the cluster's chain says why the eviction was
    dropped. (Before, it removed "the member of that name": the new node, for what the old one
    did.)"""
    from test_reattestation import policy_with, reboot_measured, start_serving, wait_until
    cp, w, other = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("other")
    policy = policy_with(cluster, [cp, w, other], onFailure="evict", onUnreachable="warn",
                         unreachableAfter=1000)
    cluster.init(cp, policy)
    stop(cp)
    log = start_js(cp, etcd, slow="0", fault="evict-delay:12000")
    p = prefix(cluster)
    new_uuid = "7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a77"
    try:
        cluster.join(w, policy)
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
        old = members(cluster, etcd)["worker-1"]
        reboot_measured(w, extend_pcr=4)
        start_serving(w, cluster, policy)
        wait_until("the eviction held", lambda: "fault: eviction held" in log.read_text(),
                   timeout=60)
        # In the window: worker-1 removed (as a removal does: the record and its index keys)...
        r = etcd.ctl("txn", "--interactive=false", input=(
            "\n"
            f"del {p}members/worker-1\n"
            f"del {p}disks/{old['diskUuid']}\n"
            f"del {p}aks/{old['akDigest']}\n"
            "\n\n"))
        assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
        # ... and its name admitted to another node.
        rc, out = probe(cluster, cp, "--tcti", other.tpm.tcti, "--name", "worker-1",
                        "--disk-uuid", new_uuid)
        assert rc == 0, out
        new = members(cluster, etcd)["worker-1"]
        assert new["diskUuid"] == new_uuid and new["akDigest"] != old["akDigest"]
        wait_until("the eviction dropped",
                   lambda: "eviction of worker-1 dropped" in log.read_text(), timeout=60)
        # The new admission is untouched: record and index keys.
        assert members(cluster, etcd)["worker-1"] == new
        assert etcd.get_prefix(p + "disks/").get(p + "disks/" + new_uuid) == "worker-1"
        assert etcd.get_prefix(p + "aks/").get(p + "aks/" + new["akDigest"]) == "worker-1"
        entries = [e for e in chain(cluster, etcd) if e["node"] == "worker-1"]
        assert [e["event"] for e in entries].count("eviction") == 0, entries
        (dropped,) = [e for e in entries if e["event"] == "refusal" and
                      e["reason"].startswith("eviction dropped:")]
        assert "another admission" in dropped["reason"], dropped
        assert new_uuid in dropped["reason"] and old["diskUuid"] in dropped["reason"], dropped
        assert "reattest-failed" in [e["event"] for e in entries]
        # Judged afresh, not as the old one: not cordoned (its rejoin passes), still a member.
        rc, out = probe(cluster, cp, "--tcti", other.tpm.tcti, "--name", "worker-1", "--rejoin",
                        new_uuid)
        assert rc == 0 and "diskKey" in out, out
        assert members(cluster, etcd)["worker-1"]["akDigest"] == new["akDigest"]
    finally:
        stop(cp)


def test_with_local_files_an_eviction_judged_on_one_admission_spares_another_in_members_json(
        cluster):
    """The same with local files: while the eviction is held, members.json is given another
    admission under the name (another disk and key, as a concurrent writer would leave it); the
    eviction compares under members_lock and is dropped, audited in audit.log."""
    from test_reattestation import policy_with, reboot_measured, start_serving, wait_until
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = policy_with(cluster, [cp, w], onFailure="evict", onUnreachable="warn",
                         unreachableAfter=1000)
    cluster.init(cp, policy)
    stop(cp)
    log = start_js(cp, None, slow="0", fault="evict-delay:8000")
    try:
        cluster.join(w, policy)
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
        reboot_measured(w, extend_pcr=4)
        start_serving(w, cluster, policy)
        wait_until("the eviction held", lambda: "fault: eviction held" in log.read_text(),
                   timeout=60)
        path = cp.state / "members.json"
        doc = json.loads(path.read_text())
        (rec,) = [m for m in doc["members"] if m["name"] == "worker-1"]
        old_uuid = rec["diskUuid"]
        rec.update(diskUuid="7a1c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a78", akDigest="cd" * 32,
                   admitted="2026-12-08T00:00:00Z")
        tmp = path.with_suffix(".new")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
        wait_until("the eviction dropped",
                   lambda: "eviction of worker-1 dropped" in log.read_text(), timeout=60)
        after = json.loads(path.read_text())["members"]
        assert [m for m in after if m["name"] == "worker-1"] == [rec]
        entries = [e for e in cluster.audit() if e["node"] == "worker-1"]
        assert "eviction" not in [e["event"] for e in entries], entries
        (dropped,) = [e for e in entries if e["event"] == "refusal" and
                      e["reason"].startswith("eviction dropped:")]
        assert "members.json is another admission" in dropped["reason"], dropped
        assert old_uuid in dropped["reason"], dropped
    finally:
        stop(cp)


def test_the_etcd_client_key_never_reaches_the_network_process(cluster, etcd):
    """The etcd client certificate's key is a credential (it writes the membership): only the
    monitor may hold it. After a join recorded in etcd, the network process's memory holds no
    form of it, and the key file is out of its reach (it is shut in an empty root)."""
    import re
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from test_join_privsep import found_in
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    stop(cp)
    log = start_js(cp, etcd, slow="0")
    try:
        rc, out = probe(cluster, cp, "--tcti", w.tpm.tcti, "--name", "worker-1")
        assert rc == 0, out
        assert "worker-1" in members(cluster, etcd)
        pid = int(re.search(r"network process (\d+) serves", log.read_text()).group(1))
        keyfile = etcd.pki / "join-service.key"
        pem = keyfile.read_bytes()
        body = b"".join(l for l in pem.splitlines() if not l.startswith(b"-----"))
        scalar = load_pem_private_key(pem, None).private_numbers().private_value.to_bytes(32, "big")
        secrets = {"PEM body": body, "PEM first line": pem.splitlines()[1],
                   "private scalar": scalar, "private scalar (hex)": scalar.hex().encode(),
                   # A control: the scan sees what the process does hold.
                   "cluster ID (control)": cluster.cid.encode()}
        assert found_in(pid, secrets) == {"cluster ID (control)"}
        assert not os.path.exists(f"/proc/{pid}/root{keyfile}")
    finally:
        stop(cp)


def kubeadm_running_under(pid):
    """True while a process under pid (a join service) runs the kubeadm double: a join is past
    its checks, in make_ticket, before its etcd transaction. (The join service's own processes
    name --kubeadm in their command lines: they do not count.)"""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = open(f"/proc/{pid}/task/{task}/children").read().split()
        except OSError:
            continue
        for child in children:
            try:
                argv = open(f"/proc/{child}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"doubles/kubeadm") for a in argv[:2]):
                return True
            if kubeadm_running_under(int(child)):
                return True
    return False


def test_a_member_removed_from_etcd_while_its_repeated_join_is_in_flight_is_not_readmitted(
        cluster, etcd, two):
    """A member asking again (a join cut short) passes the checks a new node must pass (the
    owner's control-plane authorization, PCR 15 zero) because it is a member. If another join
    service removes it from etcd (an eviction) while this join service runs kubeadm, the
    admission transaction must not bring it back: the decision rested on the record that is
    gone, so the join is refused and nothing is written."""
    cp1, cp2, racers = two
    w = racers[0]
    uuid = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a91"
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--name", "worker-9", "--disk-uuid", uuid)
    assert rc == 0, out
    record = members(cluster, etcd)["worker-9"]
    p = prefix(cluster)
    with ThreadPoolExecutor(1) as pool:
        # cp-2 never issued it a ticket: it makes one (kubeadm, 2 s) for the known member.
        again = pool.submit(probe, cluster, cp2, "--tcti", w.tpm.tcti, "--name", "worker-9",
                            "--disk-uuid", uuid)
        deadline = time.time() + 60
        while not kubeadm_running_under(cp2.proc.pid):
            assert time.time() < deadline and not again.done(), "cp-2 never ran kubeadm"
            time.sleep(0.02)
        # The eviction, as join_etcd_remove() makes it: the record and both index keys, at once.
        r = etcd.ctl("txn", "--interactive=false", input=(
            "\n"
            f"del {p}members/worker-9\n"
            f"del {p}disks/{uuid}\n"
            f"del {p}aks/{record['akDigest']}\n"
            "\n\n"))
        assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
        rc, out = again.result()
    assert rc == 1 and "diskKey" not in out, out
    assert "no longer a member" in out, out
    assert "worker-9" not in members(cluster, etcd)
    assert p + "disks/" + uuid not in etcd.get_prefix(p + "disks/")
    chain(cluster, etcd)


def test_a_join_service_with_its_membership_in_etcd_refuses_mesh_requests_saying_why(cluster, etcd,
                                                                                     two):
    """The mesh's keys and addresses are not kept in etcd yet: a member's mesh request to a
    join service whose membership is in etcd is refused with that reason (before, it was handed
    the first mesh address again and no peer, and nothing said why), and no key is recorded."""
    cp1, _, racers = two
    w = racers[0]
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid",
                    "1d2e3f40-5b1d-4c8e-9a7f-2d6b8e1c4a53")
    assert rc == 0, out
    rc, out = probe(cluster, cp1, "--tcti", w.tpm.tcti, "--wg-key", "cd" * 32, "--get",
                    "/v1/mesh")
    assert rc == 1 and "HTTP 403" in out and "not kept yet" in out, out
    assert '"peers"' not in out
    assert all("wgPublicKey" not in m for m in members(cluster, etcd).values())
