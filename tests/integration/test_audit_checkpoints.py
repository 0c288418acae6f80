# SPDX-License-Identifier: Apache-2.0
"""Signed audit checkpoints (docs/audit-log.md, "Signed checkpoints"): the join service's monitor
quotes its audit log's head (seq, hash, size, time) with its TPM's attestation key; `cloister
verify --cluster` checks that signature against the key of the join service that served the log,
that it names the log's last entry, and that it is not older than the head this workspace saw
signed before (cloister-audit-checkpoints.json). A log rolled back to an older copy, a head
signed by another node's key and a forged entry each fail the verify. The cluster is
test_join.py's: nodes as processes on loopback, each with its own swtpm."""
import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import binary, run
from test_join import cluster, member_policy, start_join_service, stop_join_service  # noqa: F401

DOMAIN = b"cloister-audit-checkpoint-v1"


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def binding(seq, hash_, size, time):
    """The checkpoint binding, computed here from the format in docs/audit-log.md."""
    return hashlib.sha256(b"\0".join([DOMAIN, b"qemu-vtpm", str(seq).encode(), hash_.encode(),
                                      str(size).encode(), time.encode()])).digest()


def extra_data(evidence):
    """TPMS_ATTEST.extraData of a qemu-vtpm evidence document's quote (TPM 2.0 Part 2, 10.12.12:
    magic, type, TPM2B qualifiedSigner, TPM2B extraData)."""
    quote = base64.b64decode(evidence["tpm"]["quote"])
    (n,) = struct.unpack(">H", quote[6:8])
    (m,) = struct.unpack(">H", quote[8 + n:10 + n])
    return quote[10 + n:10 + n + m]


def ak_digest(evidence):
    return hashlib.sha256(base64.b64decode(evidence["tpm"]["akPublic"])).hexdigest()


def verify(cluster, tmp_path, *extra):
    r = run("cloister", "verify", "--cluster", "--policy", member_policy(cluster, tmp_path),
            "--state-file", cluster.tmp / "cloister-state.json", "-o", "json", *extra)
    return r, json.loads(r.stdout) if r.stdout.startswith("{") else None


def log_verdict(doc):
    (log,) = doc["auditLogs"]
    return log


@pytest.fixture
def two_workers(cluster):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    return cluster, cp, w1, w2, policy


def files(cp):
    return {n: (cp.state / n).read_bytes() for n in ("audit.log", "audit.log.head",
                                                    "audit.log.checkpoint")}


def restore(cp, saved, names=("audit.log", "audit.log.head", "audit.log.checkpoint")):
    for n in names:
        (cp.state / n).write_bytes(saved[n])


def test_every_admission_is_signed_by_the_join_services_own_key_and_verify_checks_it(
        two_workers, tmp_path):
    cluster, cp, w1, _, _ = two_workers
    lines = (cp.state / "audit.log").read_bytes()
    cp_file = json.loads((cp.state / "audit.log.checkpoint").read_text())
    last = json.loads(lines.splitlines()[-1])
    # Signed at the admission: the head as it stands, the log's length, the key of cp's TPM.
    assert last["event"] == "admission" and last["node"] == "worker-1"
    assert (cp_file["seq"], cp_file["hash"], cp_file["size"]) == (last["seq"], last["hash"],
                                                                  len(lines))
    assert extra_data(cp_file["evidence"]) == binding(cp_file["seq"], cp_file["hash"],
                                                      cp_file["size"], cp_file["time"])
    own = ak_digest(json.loads(cp.evidence.read_text()))
    assert ak_digest(cp_file["evidence"]) == own
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    log = log_verdict(doc)
    assert log["verdict"]["result"] == "pass", log
    assert log["checkpoint"]["seq"] == last["seq"] and log["checkpoint"]["signer"] == own
    # The workspace keeps the highest head it saw signed, per join service key.
    (rec,) = json.loads((cluster.tmp / "cloister-audit-checkpoints.json").read_text())[
        "joinServices"]
    assert (rec["signer"], rec["seq"], rec["hash"]) == (own, last["seq"], last["hash"])
    text = run("cloister", "verify", "--cluster", "--policy", member_policy(cluster, tmp_path),
               "--state-file", cluster.tmp / "cloister-state.json")
    assert "head signed by its attestation key" in text.stdout, text.stdout


def test_a_log_rolled_back_while_the_join_service_runs_is_detected(two_workers, tmp_path):
    cluster, cp, w1, w2, policy = two_workers
    old = files(cp)
    cluster.join(w2, policy)
    w2.wait_for("serving node state")
    r, _ = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # The older copy of the log, its head and its (genuine, older) checkpoint put back.
    restore(cp, old)
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert "its signed checkpoint" in reason and "cut or rolled back" in reason, reason
    assert "ALTERED BEHIND THIS JOIN SERVICE'S BACK" in cp.log.read_text()


def test_a_log_rolled_back_with_its_checkpoint_across_a_restart_is_refused_by_the_record(
        two_workers, tmp_path):
    """The whole older state (log, head and its genuine checkpoint) restored while the join
    service is down: it signs what it finds, and only the workspace's record of the later head
    shows the rollback."""
    cluster, cp, w1, w2, policy = two_workers
    old = files(cp)
    cluster.join(w2, policy)
    w2.wait_for("serving node state")
    r, _ = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    stop_join_service(cp)
    restore(cp, old)
    start_join_service(cp)
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert reason.startswith("rolled back: this workspace saw this join service sign entry 2"), \
        reason
    # Without that record (another workspace), the restored state is consistent and passes:
    # what the docs say a checkpoint cannot prove alone.
    os.rename(cluster.tmp / "cloister-audit-checkpoints.json", tmp_path / "saved.json")
    r, doc = verify(cluster, tmp_path)
    assert log_verdict(doc)["verdict"]["result"] == "pass", doc


def test_a_log_cut_back_while_down_is_refused_by_the_checkpoint_left_on_disk(two_workers,
                                                                            tmp_path):
    """Log and head restored, the newer checkpoint left: the join service refuses to sign at
    start and serves that checkpoint, which the log no longer reaches (no workspace record
    needed)."""
    cluster, cp, w1, w2, policy = two_workers
    old = files(cp)
    cluster.join(w2, policy)
    w2.wait_for("serving node state")
    stop_join_service(cp)
    restore(cp, old, names=("audit.log", "audit.log.head"))
    log = start_join_service(cp)
    assert "ALTERED BEHIND THIS JOIN SERVICE'S BACK" in log.read_text()
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert "the log ends at entry 1, but its signed checkpoint" in reason, reason


def test_a_head_signed_by_another_nodes_key_is_refused(two_workers, tmp_path):
    """A checkpoint of exactly this head, genuinely quoted by another member of the cluster
    (worker-1's TPM, PCR 15 this cluster's, its AK pinned by the policy), put in place of cp's
    while it is down: everything about it verifies except who signed it. The join service
    refuses to take it over at start, and verify --cluster names the signer."""
    cluster, cp, w1, _, _ = two_workers
    forged = json.loads((cp.state / "audit.log.checkpoint").read_text())
    forged["time"] = "2030-01-01T00:00:00Z"
    out = tmp_path / "w1-evidence.json"
    r = run("cloister", "attestation", "issue", "--tcti", w1.tpm.tcti, "--binding",
            binding(forged["seq"], forged["hash"], forged["size"], forged["time"]).hex(),
            "--event-log", w1.boot_log, "--output-file", out)
    assert r.returncode == 0, r.stderr
    forged["evidence"] = json.loads(out.read_text())
    stop_join_service(cp)
    (cp.state / "audit.log.checkpoint").write_text(canon(forged) + "\n")
    log = start_join_service(cp)
    assert "signed by another key than this TPM's" in log.read_text()
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert "signed by another join service's key" in reason, reason
    # Offline the same: a bundle whose checkpoint is swapped for the other node's.
    stop_join_service(cp)
    (cp.state / "audit.log.checkpoint").unlink()
    start_join_service(cp)
    bundle = tmp_path / "c.bundle"
    r, _ = verify(cluster, tmp_path, "--bundle", bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    swapped = swap_bundle_checkpoint(bundle, tmp_path / "swapped.bundle", canon(forged) + "\n")
    r = run("cloister", "verify", "--bundle", swapped, "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(json.loads(r.stdout))["verdict"]["reason"]
    assert "signed by another join service's key" in reason, reason


def swap_bundle_checkpoint(path, out, text):
    """The bundle with audit/0/checkpoint replaced and its manifest recomputed (the manifest is
    no signature: docs/bundle.md)."""
    doc = json.loads(path.read_bytes())
    data = text.encode()
    doc["entries"]["audit/0/checkpoint"] = base64.b64encode(data).decode()
    doc["manifest"]["audit/0/checkpoint"] = hashlib.sha256(data).hexdigest()
    out.write_bytes((canon(doc) + "\n").encode())
    return out


def forge_admission(path, node):
    """An admission appended with its hash, the chain and the head recomputed: what someone who
    can write the disk, but holds no TPM key, can make."""
    last = json.loads(path.read_text().splitlines()[-1])
    e = dict(last, seq=last["seq"] + 1, prev=last["hash"], node=node, reason="")
    e.pop("hash")
    e["hash"] = hashlib.sha256(canon(e).encode()).hexdigest()
    with open(path, "a") as f:
        f.write(canon(e) + "\n")
    (path.parent / (path.name + ".head")).write_text(canon({"hash": e["hash"], "seq": e["seq"]})
                                                     + "\n")


def test_a_forged_entry_is_detected(two_workers, tmp_path):
    cluster, cp, *_ = two_workers
    forge_admission(cp.state / "audit.log", "intruder")
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert "entries were added that the join service did not sign" in reason, reason
    # Nothing signs it later either: the monitor refuses a log it did not write.
    assert "were not written by this join service" in cp.log.read_text()


def test_an_entry_rewritten_with_its_chain_recomputed_is_detected(two_workers, tmp_path):
    cluster, cp, *_ = two_workers
    path = cp.state / "audit.log"
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[-1]["node"] = "worker-9"
    prev = "0" * 64
    lines = []
    for e in entries:
        e = {k: v for k, v in e.items() if k != "hash"} | {"prev": prev}
        prev = e["hash"] = hashlib.sha256(canon({k: v for k, v in e.items() if k != "hash"})
                                          .encode()).hexdigest()
        lines.append(canon(e) + "\n")
    path.write_text("".join(lines))
    (cp.state / "audit.log.head").write_text(canon({"hash": prev, "seq": len(entries)}) + "\n")
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert "is not the one the checkpoint" in reason and "rewritten" in reason, reason


def test_a_bundle_carries_the_checkpoint_and_verifies_it_offline(two_workers, tmp_path):
    cluster, cp, *_ = two_workers
    bundle = tmp_path / "c.bundle"
    r, _ = verify(cluster, tmp_path, "--bundle", bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(bundle.read_bytes())
    for part in ("checkpoint", "evidence", "nonce", "spki"):
        assert f"audit/0/{part}" in doc["entries"], part
    r = subprocess.run(["unshare", "--net", str(binary("cloister")), "verify", "--bundle",
                        str(bundle), "-o", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    log = log_verdict(json.loads(r.stdout))
    assert log["verdict"]["result"] == "pass" and log["checkpoint"]["seq"] == 1, log
    # A checkpoint one byte off (its time) no longer matches its quote.
    cp_text = base64.b64decode(doc["entries"]["audit/0/checkpoint"]).decode()
    t = json.loads(cp_text)["time"]
    other = cp_text.replace(t, "2030-01-01T00:00:00Z")
    r = run("cloister", "verify", "--bundle",
            swap_bundle_checkpoint(bundle, tmp_path / "t.bundle", other), "-o", "json")
    assert r.returncode == 1, r.stdout
    reason = log_verdict(json.loads(r.stdout))["verdict"]["reason"]
    assert "signed checkpoint refused" in reason, reason


def test_a_log_rolled_back_and_written_on_from_there_fails_on_the_recorded_entry(cluster,
                                                                                 tmp_path):
    """The older state restored while the join service is down, then a new admission: the log
    reaches the recorded seq again, genuinely signed, but with another entry there."""
    cp, w1, w2, w3 = (cluster.node(n) for n in ("cp-1", "worker-1", "worker-2", "worker-3"))
    policy = cluster.policy([cp, w1, w2, w3])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    old = files(cp)
    cluster.join(w2, policy)
    w2.wait_for("serving node state")
    r, _ = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    stop_join_service(cp)
    restore(cp, old)
    start_join_service(cp)
    cluster.join(w3, policy)
    w3.wait_for("serving node state")
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert reason.startswith("rewritten: entry 2 is not the one this join service signed"), reason


def test_the_head_is_signed_again_periodically_with_a_fresh_time(two_workers, tmp_path):
    cluster, cp, *_ = two_workers
    stop_join_service(cp)
    start_join_service(cp, "--audit-checkpoint-interval", "1")
    first = json.loads((cp.state / "audit.log.checkpoint").read_text())
    for _ in range(50):
        now = json.loads((cp.state / "audit.log.checkpoint").read_text())
        if now["time"] > first["time"]:
            break
        subprocess.run(["sleep", "0.2"])
    assert now["time"] > first["time"] and now["seq"] == first["seq"] == 1, (first, now)
    assert extra_data(now["evidence"]) == binding(now["seq"], now["hash"], now["size"],
                                                  now["time"])
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 0 and log_verdict(doc)["checkpoint"]["time"] >= now["time"], r.stdout


def test_a_head_signed_before_the_latest_one_the_workspace_saw_is_refused(two_workers, tmp_path):
    """The same head, but signed earlier than a signature of it this workspace recorded (the
    join service re-signs periodically): an older checkpoint put back."""
    cluster, cp, *_ = two_workers
    r, _ = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    path = cluster.tmp / "cloister-audit-checkpoints.json"
    rec = json.loads(path.read_text())
    rec["joinServices"][0]["time"] = "2099-01-01T00:00:00Z"
    path.write_text(json.dumps(rec))
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    reason = log_verdict(doc)["verdict"]["reason"]
    assert reason.startswith("an older signed head"), reason


def test_a_second_join_services_checkpoint_is_refused_at_the_first(cluster, tmp_path):
    """Two control planes, each a join service with its own TPM: cp-2's genuine checkpoint of its
    own log, copied with that log over cp-1's while cp-1 is down. cp-1 does not take it over, and
    verify --cluster names the signer."""
    cp1, cp2, w = cluster.node("cp-1"), cluster.node("cp-2"), cluster.node("worker-1")
    policy = cluster.policy([cp1, cp2, w])
    cluster.init(cp1, policy)
    cluster.join(cp2, policy, role="control-plane")
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    cluster.join(w, policy, via=[cp2])
    w.wait_for("serving node state")
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    signers = {l["joinService"]: l["checkpoint"]["signer"] for l in doc["auditLogs"]}
    assert len(set(signers.values())) == 2, signers  # one key per join service
    stop_join_service(cp1)
    for n in ("audit.log", "audit.log.head", "audit.log.checkpoint"):
        shutil.copyfile(cp2.state / n, cp1.state / n)
    log = start_join_service(cp1)
    assert "signed by another key than this TPM's" in log.read_text()
    r, doc = verify(cluster, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    (bad,) = [l for l in doc["auditLogs"] if l["joinService"] == cp1.url()]
    assert "signed by another join service's key" in bad["verdict"]["reason"], bad
