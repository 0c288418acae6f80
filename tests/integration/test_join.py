# SPDX-License-Identifier: Apache-2.0
"""Join: a cluster grows only through mutually attested joins. Nodes are processes on loopback,
each with its own swtpm (its boot replayed from a synthetic event log), its own LUKS2 state disk
and its own bootstrapper; the first is initialised by `cloister apply` and then serves joins
(cloister-join-service); kubeadm is the test double, which checks the token, the CA pin and the
certificate key against the control plane's state. Every refusal must reach the join service's
hash-chained audit log with its reason, and no refused node may receive a token or a key."""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import BUILD, ROOT, Swtpm, binary, run

KUBEADM = ROOT / "tests" / "doubles" / "kubeadm"


def pcr15_expected(cid_hex):
    return hashlib.sha256(bytes(32) + hashlib.sha256(bytes.fromhex(cid_hex)).digest()).hexdigest()


def read_pcr15(tcti):
    out = subprocess.run(["tpm2_pcrread", "sha256:15"], capture_output=True, text=True,
                         env=dict(os.environ, TPM2TOOLS_TCTI=tcti), check=True).stdout
    return re.search(r"15\s*:\s*0x([0-9A-Fa-f]{64})", out).group(1).lower()


def audit_entries(path):
    """The audit log, each entry's chain link checked here independently of the C code."""
    prev = "00" * 32
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        e = json.loads(line)
        body = {k: v for k, v in e.items() if k != "hash"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True,
                                           separators=(",", ":")).encode()).hexdigest()
        assert e["seq"] == n and e["prev"] == prev and e["hash"] == digest, f"line {n} breaks the chain"
        prev = e["hash"]
        entries.append(e)
    return entries


class Node:
    def __init__(self, base, name, alter=None):
        base.mkdir()
        self.base, self.name, self.proc, self.port = base, name, None, None
        self.tpm = Swtpm(base / "tpm")
        self.boot_log = base / "boot.log"
        cmd = [str(ROOT / "scripts" / "mini-boot-log"), str(self.boot_log)]
        if alter is not None:
            cmd += ["--alter", str(alter)]
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tpm.tcti)
        for line in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split("\n"):
            if line:
                pcr, digest = line.split()
                subprocess.run(["tpm2_pcrextend", f"{pcr}:sha256={digest}"], env=env, check=True)
        self.disk = base / "state.img"
        with open(self.disk, "wb") as f:
            f.truncate(32 * 1024 * 1024)
        self.first = base / "first-boot.key"
        self.first.write_bytes(os.urandom(32))
        assert run("cloister-disk-mapper", "format", self.disk, "--key-file", self.first).returncode == 0
        self.state = base / "state"
        self.state.mkdir()
        self.evidence = base / "evidence.json"
        r = run("cloister", "attestation", "issue", "--tcti", self.tpm.tcti, "--binding", "00" * 32,
                "--event-log", self.boot_log, "--output-file", self.evidence)
        assert r.returncode == 0, r.stderr
        self.policy = base / "policy.json"
        assert run("cloister", "attestation", "policy", self.evidence, self.policy).returncode == 0
        self.log = base / "node.log"

    def start(self, metadata, *extra, env=None):
        (self.base / "metadata.json").write_text(json.dumps(metadata))
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            [str(binary("cloister-bootstrapper")), "--tcti", self.tpm.tcti, "--listen",
             f"127.0.0.1:{self.port or 0}", "--state-disk", str(self.disk), "--first-boot-key", str(self.first),
             "--state-dir", str(self.state), "--kubeadm", str(KUBEADM), "--metadata",
             f"local:{self.base / 'metadata.json'}", "--event-log", str(self.boot_log), *extra],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)

    def wait_for(self, pattern, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.log.read_text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"{self.name}: no '{pattern}' (exit {self.proc.poll()}):\n{self.log.read_text()}")

    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.tpm.stop()


class Cluster:
    def __init__(self, tmp):
        self.tmp, self.nodes, self.cid, self.cp = tmp, [], None, None
        self.ms = tmp / "cloister-mastersecret.json"
        assert run("cloister", "master-secret", "generate", "--file", self.ms).returncode == 0

    def node(self, name, alter=None):
        n = Node(self.tmp / name, name, alter)
        self.nodes.append(n)
        return n

    def policy(self, nodes, path=None):
        """The owner's policy: the first node's measurements, every listed node's AK pinned."""
        p = json.loads(nodes[0].policy.read_text())
        p["akTrust"]["akPublic"] = [json.loads(n.policy.read_text())["akTrust"]["akPublic"]
                                    for n in nodes]
        path = path or self.tmp / "policy.json"
        path.write_text(json.dumps(p))
        return path

    def init(self, cp, policy):
        secret = self.tmp / "init-secret"
        h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
        cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": h})
        cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
        r = run("cloister", "apply", "--endpoint", cp.url(), "--policy", policy,
                "--init-secret-file", secret, "--state-file", self.tmp / "cloister-state.json",
                "--master-secret", self.ms, "--cluster-name", "joins",
                "--kubeconfig", self.tmp / "admin.conf")
        assert r.returncode == 0, r.stdout + r.stderr
        self.cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
        cp.wait_for(r"serving joins on 127\.0\.0\.1:" + cp.port)
        self.cp = cp
        return self.cid

    def authorize(self, name, *extra):
        """The owner's control-plane authorization for name (cloister control-plane authorize)."""
        r = run("cloister", "control-plane", "authorize", name, "--master-secret", self.ms, *extra)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def join(self, node, policy, role="worker", via=None, cid=None, timeout=30):
        via = via or [self.cp]
        meta = {"name": node.name, "role": role,
                "peers": [f"127.0.0.1:{n.port}" for n in via], "clusterId": cid or self.cid}
        if role == "control-plane":
            meta["controlPlaneAuthorization"] = self.authorize(node.name)
        node.start(meta, "--join-policy", str(policy), "--join-timeout", str(timeout),
                   env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(self.cp.state)))

    def disk_key(self, node):
        secret = json.loads(self.ms.read_text())
        uuid = re.search(r"UUID ([0-9a-f-]{36})",
                         run("cloister-disk-mapper", "check", node.disk).stdout).group(1)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
                    info=("cloister/v1/disk/" + uuid).encode()).derive(base64.b64decode(secret["key"]))

    def audit(self):
        log = self.cp.state / "audit.log"
        return audit_entries(log) if log.exists() else []

    def tokens(self):
        p = self.cp.state / "tokens.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def assert_untouched(node):
    """A refused node: PCR 15 still zero, the disk still on its first-boot key, no kubelet."""
    assert node.proc.wait(timeout=60) != 0
    assert read_pcr15(node.tpm.tcti) == "00" * 32
    assert run("cloister-disk-mapper", "check", node.disk, "--key-file", node.first).returncode == 0
    assert not (node.state / "kubelet.conf").exists()


def test_workers_join_with_a_ticket_and_their_disks_take_the_derived_key(cluster, tmp_path):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cid = cluster.init(cp, policy)
    for w in (w1, w2):
        cluster.join(w, policy)
    for w in (w1, w2):
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    for w in (w1, w2):
        # The disk opens with the key the owner can derive, and no longer with the first one.
        (tmp_path / f"{w.name}.key").write_bytes(cluster.disk_key(w))
        r = run("cloister-disk-mapper", "check", w.disk, "--key-file", tmp_path / f"{w.name}.key")
        assert r.returncode == 0 and "state initialized" in r.stdout, r.stdout + r.stderr
        assert run("cloister-disk-mapper", "check", w.disk, "--key-file", w.first).returncode == 1
        # kubeadm join ran with a token the cluster issued and the right CA pin (the double
        # checked both); the join config holding the token is gone.
        assert "joined as a worker" in (w.state / "kubeadm.log").read_text()
        assert not (w.state / "kubeadm-join.yaml").exists()
        state = json.loads((w.state / "node-state.json").read_text())
        assert state["clusterId"] == cid and state["role"] == "worker"
        # A worker holds no master secret.
        assert not (w.state / "master-secret.json").exists()
        # The owner verifies the worker from outside: PCR 15 holds the cluster ID.
        p = json.loads(policy.read_text())
        p["measurements"].pop("15")
        (tmp_path / "member.json").write_text(json.dumps(p))
        r = run("cloister", "verify", "--node", f"127.0.0.1:{w.port}", "--policy",
                tmp_path / "member.json", "--cluster-id", cid)
        assert r.returncode == 0 and r.stdout.rstrip().endswith("Verification OK"), r.stdout + r.stderr
    entries = cluster.audit()
    admitted = [e for e in entries if e["verdict"] == "admitted"]
    assert sorted(e["node"] for e in admitted) == ["worker-1", "worker-2"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["evidenceDigest"]) for e in admitted)
    assert len(cluster.tokens()) == 2


def probe(cluster, *args):
    p = subprocess.run([str(BUILD / "tests" / "join-probe"), "--policy",
                        str(cluster.tmp / "policy.json"), "--cluster-id", cluster.cid,
                        "--url", cluster.cp.url(), *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("pcr", [4, 9, 11])
def test_join_refused_for_a_node_whose_boot_differs_and_logged_with_the_pcr(cluster, pcr):
    """A node booted from another image asks anyway (the real bootstrapper would already refuse
    a join service whose image differs from its own: see the impostor tests)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1", alter=pcr)
    # The worker's key is pinned: only its measurements differ from the owner's policy.
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1")
    assert rc == 1 and "HTTP 200" not in out
    (refusal,) = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert f"PCR {pcr} differs" in refusal["reason"], refusal["reason"]
    assert re.fullmatch(r"[0-9a-f]{64}", refusal["evidenceDigest"])
    assert not any(e["verdict"] == "admitted" for e in cluster.audit())
    assert cluster.tokens() == {}


def test_probe_of_a_trusted_node_is_admitted_so_its_refusals_mean_something(cluster):
    """The positive control for the probe-based refusal tests below: the same probe, with the
    evidence of a node the policy trusts, gets a ticket (and is audited as an admission)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1")
    assert rc == 0 and out.startswith("HTTP 200") and '"diskKey"' in out, out
    (entry,) = cluster.audit()
    assert entry["verdict"] == "admitted" and entry["node"] == "worker-1"
    assert len(cluster.tokens()) == 1


def test_join_cut_short_after_pcr15_is_finished_by_the_next_start(cluster, tmp_path):
    """kubeadm join fails after the disk was re-keyed and PCR 15 extended; the restarted
    bootstrapper finds PCR 15 = this cluster without a recorded membership, asks for a ticket
    again and finishes (once rebooted, the same from an initialised disk)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    flag = tmp_path / "fail-once"
    flag.write_text("")
    meta = {"name": w.name, "role": "worker", "peers": [f"127.0.0.1:{cp.port}"],
            "clusterId": cluster.cid}
    env = dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state), KUBEADM_DOUBLE_FAIL_ONCE=str(flag))
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30", env=env)
    assert w.proc.wait(timeout=60) != 0 and "kubeadm join failed" in w.log.read_text()
    assert not (w.state / "node-state.json").exists()
    w.start(meta, "--join-policy", str(policy), "--join-timeout", "30", env=env)
    w.wait_for("serving node state")
    assert "joined as a worker" in (w.state / "kubeadm.log").read_text()
    key = tmp_path / "disk.key"
    key.write_bytes(cluster.disk_key(w))
    assert run("cloister-disk-mapper", "check", w.disk, "--key-file", key).returncode == 0
    assert [e["event"] for e in cluster.audit()] == ["admission", "admission"]
    v = verify_cluster(cluster, tmp_path)
    assert v.returncode == 0, v.stdout + v.stderr


def test_rejoin_as_another_member_from_another_tpm_is_refused(cluster):
    """A member's name and disk UUID are public (GET /v1/members); a rejoin must also come from
    the TPM that joined."""
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    members = json.loads((cp.state / "members.json").read_text())["members"]
    (m,) = [m for m in members if m["name"] == "worker-1"]
    assert re.fullmatch(r"[0-9a-f]{64}", m["akDigest"])
    rc, out = probe(cluster, "--tcti", w2.tpm.tcti, "--name", "worker-1", "--rejoin", m["diskUuid"])
    assert rc == 1 and "HTTP 403" in out and "another attestation key" in out, out
    assert "diskKey" not in out
    last = cluster.audit()[-1]
    assert last["verdict"] == "refused" and "another attestation key" in last["reason"]
    # The member's record is untouched (its endpoint was not redirected).
    members = json.loads((cp.state / "members.json").read_text())["members"]
    assert [x for x in members if x["name"] == "worker-1"] == [m]


def test_join_refused_for_a_node_whose_pcr15_is_already_set(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + "11" * 32], check=True,
                   env=dict(os.environ, TPM2TOOLS_TCTI=w.tpm.tcti))
    # The real join client would not even ask; the probe asks anyway, with fresh evidence.
    rc, out = probe(cluster, "--tcti", w.tpm.tcti)
    assert rc == 1 and "HTTP 200" not in out
    (refusal,) = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert "PCR 15 differs" in refusal["reason"]
    assert cluster.tokens() == {}


def test_join_refused_for_a_non_member_whose_pcr15_already_holds_this_clusters_value(cluster):
    """PCR 15 = this cluster passes the handshake (a member finishing a join cut short), but the
    value is public: SHA-256(cluster ID), extended into any TPM. A node that is no member and
    extended it itself is refused after the handshake, audited, and gets no ticket."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    digest = hashlib.sha256(bytes.fromhex(cluster.cid)).hexdigest()
    subprocess.run(["tpm2_pcrextend", f"15:sha256={digest}"], check=True,
                   env=dict(os.environ, TPM2TOOLS_TCTI=w.tpm.tcti))
    assert read_pcr15(w.tpm.tcti) == pcr15_expected(cluster.cid)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "newcomer")
    assert rc == 1 and "HTTP 403" in out, out
    assert '"diskKey"' not in out and '"token"' not in out, out
    (refusal,) = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert refusal["node"] == "newcomer", refusal
    assert "PCR 15 is already extended and newcomer is not a member finishing its own join" \
        in refusal["reason"], refusal["reason"]
    assert re.fullmatch(r"[0-9a-f]{64}", refusal["evidenceDigest"])
    assert not any(e["verdict"] == "admitted" for e in cluster.audit())
    assert cluster.tokens() == {}
    members = json.loads((cluster.cp.state / "members.json").read_text())["members"]
    assert "newcomer" not in [m["name"] for m in members]


def test_join_refused_for_evidence_replayed_from_another_node(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    # Genuine evidence of a node the policy trusts, but made for another nonce and TLS key.
    rc, out = probe(cluster, "--evidence", w.evidence)
    assert rc == 1 and "HTTP 200" not in out
    (refusal,) = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert "binding" in refusal["reason"] or "nonce" in refusal["reason"], refusal["reason"]
    assert refusal["evidenceDigest"] == hashlib.sha256(w.evidence.read_bytes()).hexdigest()
    assert cluster.tokens() == {}


def test_join_refused_for_a_client_that_does_not_attest(cluster):
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    rc, out = probe(cluster, "--no-attest")
    assert rc == 1 and "HTTP 403" in out and "attested client" in out
    # The event loop answers at once and a thread of its own reports the refusal to the
    # monitor (join-service-refusals.c: the loop never waits for the audit log), so the entry
    # may follow the answer by a moment.
    deadline = time.monotonic() + 10
    while not any(e["verdict"] == "refused" for e in cluster.audit()) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    (refusal,) = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert refusal["node"].startswith("127.0.0.1:") and "did not attest" in refusal["reason"]
    assert cluster.tokens() == {}


def test_joining_node_refuses_a_join_service_of_another_cluster_and_sends_nothing(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    other = hashlib.sha256(b"another cluster").hexdigest()
    cluster.join(w, policy, cid=other, timeout=2)
    assert_untouched(w)
    assert "PCR 15 differs" in w.log.read_text()
    # Nothing reached the join service: the handshake failed on the node's side, before any
    # request (the audit log has no entry about this node at all).
    assert cluster.audit() == [] and cluster.tokens() == {}


def test_joining_node_refuses_a_join_service_running_another_image(cluster, tmp_path):
    # The control plane boots another PCR 11 (another UKI); its owner's policy matches it, so
    # it is initialised and serves joins, but the worker's own measurements differ from it.
    cp, w = cluster.node("cp-1", alter=11), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    worker_policy = cluster.policy([w, cp], tmp_path / "worker-policy.json")
    cluster.join(w, worker_policy, timeout=2)
    assert_untouched(w)
    assert "PCR 11 differs" in w.log.read_text()
    assert cluster.audit() == [] and cluster.tokens() == {}


def test_tightened_policy_is_reloaded_and_refuses_the_next_join_with_the_reason(cluster, tmp_path):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    before = cluster.audit()[-1]["policyDigest"]
    # The owner now expects another PCR 9 value: replace the file atomically.
    p = json.loads((cp.state / "cluster-policy.json").read_text())
    p["measurements"]["9"]["expected"] = "ab" * 32
    tmp = cp.state / "cluster-policy.json.new"
    tmp.write_text(json.dumps(p))
    os.rename(tmp, cp.state / "cluster-policy.json")
    cluster.join(w2, policy, timeout=2)
    assert_untouched(w2)
    last = cluster.audit()[-1]
    assert last["verdict"] == "refused" and "PCR 9 differs" in last["reason"]
    assert last["policyDigest"] != before
    assert len(cluster.tokens()) == 1


def test_control_planes_admitted_in_a_row_share_one_uploaded_certificate_key(cluster):
    """Each upload re-encrypts kubeadm's certificates: a second upload would leave the control
    plane admitted just before with a stale key (its kubeadm join would fail)."""
    cp, a, b = cluster.node("cp-1"), cluster.node("cp-a"), cluster.node("cp-b")
    policy = cluster.policy([cp, a, b])
    cluster.init(cp, policy)
    keys = []
    for n in (a, b):
        rc, out = probe(cluster, "--tcti", n.tpm.tcti, "--name", n.name, "--control-plane",
                        "--authorization", cluster.authorize(n.name))
        assert rc == 0, out
        keys.append(json.loads(out.split(" ", 2)[2])["certificateKey"])
    uploaded = json.loads((cp.state / "uploaded-certs.json").read_text())["certificateKey"]
    assert keys[0] == keys[1] == uploaded


def test_second_control_plane_joins_and_serves_joins_itself(cluster):
    cp1, cp2, w = cluster.node("cp-1"), cluster.node("cp-2"), cluster.node("worker-1")
    policy = cluster.policy([cp1, cp2, w])
    cluster.init(cp1, policy)
    # cp-2's own --join-policy says only which keys to trust (no measurements): its join
    # service must still enforce the owner's policy, which comes in its ticket.
    keys_only = json.loads(policy.read_text())
    keys_only["measurements"] = {}
    (cluster.tmp / "keys-only.json").write_text(json.dumps(keys_only))
    cluster.join(cp2, cluster.tmp / "keys-only.json", role="control-plane")
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    assert (cp2.state / "cluster-policy.json").read_text() == \
        (cp1.state / "cluster-policy.json").read_text()
    # It received the master secret and the certificate key, never the CA's private key.
    assert (cp2.state / "master-secret.json").exists()
    assert (cp2.state / "pki" / "ca.crt").exists() and not (cp2.state / "pki" / "ca.key").exists()
    assert "joined as a control plane" in (cp2.state / "kubeadm.log").read_text()
    # The worker knows only the second control plane and joins through it.
    cluster.join(w, policy, via=[cp2])
    w.wait_for("serving node state")
    (entry,) = [e for e in audit_entries(cp2.state / "audit.log") if e["verdict"] == "admitted"]
    assert entry["node"] == "worker-1"


def member_policy(cluster, tmp_path):
    """The owner's policy for members: PCR 15 is the cluster ID, which the CLI fills in."""
    p = json.loads((cluster.tmp / "policy.json").read_text())
    p["measurements"].pop("15")
    path = tmp_path / "member-policy.json"
    path.write_text(json.dumps(p))
    return path


def verify_cluster(cluster, tmp_path, *extra):
    return run("cloister", "verify", "--cluster", "--policy", member_policy(cluster, tmp_path),
               "--state-file", cluster.tmp / "cloister-state.json", *extra)


def reboot(node):
    """Power cycle: the process and the swtpm stop (PCRs lost, TPM state kept), the TPM starts
    afresh and the boot is measured again."""
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        node.proc.wait(timeout=20)
    pid = int(node.tpm.pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
            time.sleep(0.05)
        except OSError:
            break
    state = node.tpm.dir / "state"
    subprocess.run(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                    "--server", f"type=unixio,path={node.tpm.sock}",
                    "--ctrl", f"type=unixio,path={node.tpm.sock}.ctrl",
                    "--flags", "startup-clear", "--pid", f"file={node.tpm.pidfile}", "--daemon"],
                   check=True, capture_output=True)
    env = dict(os.environ, TPM2TOOLS_TCTI=node.tpm.tcti)
    out = subprocess.run([str(ROOT / "scripts" / "mini-boot-log"), str(node.base / "boot2.log")],
                         capture_output=True, text=True, check=True).stdout
    for line in out.split("\n"):
        if line:
            pcr, digest = line.split()
            subprocess.run(["tpm2_pcrextend", f"{pcr}:sha256={digest}"], env=env, check=True)
    assert read_pcr15(node.tpm.tcti) == "00" * 32


def restart(node, cluster, policy):
    meta = json.loads((node.base / "metadata.json").read_text())
    extra = ["--join-policy", str(policy), "--join-timeout", "60"] if meta.get("peers") else []
    node.start(meta, *extra, env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cluster.cp.state)))


def test_verify_cluster_attests_every_member_and_checks_the_audit_chain(cluster, tmp_path):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    # A machine whose key the owner trusts, booted with another PCR 9: it takes worker-2's
    # address later.
    impostor = cluster.node("impostor", alter=9)
    policy = cluster.policy([cp, w1, w2, impostor])
    cluster.init(cp, policy)
    for w in (w1, w2):
        cluster.join(w, policy)
    for w in (w1, w2):
        w.port = w.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    r = verify_cluster(cluster, tmp_path, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert {(n["name"], n["role"], n["verdict"]["result"]) for n in out["nodes"]} == {
        ("cp-1", "control-plane", "pass"), ("worker-1", "worker", "pass"),
        ("worker-2", "worker", "pass")}
    assert all(n["reasons"] == [] for n in out["nodes"])
    (log,) = out["auditLogs"]
    assert log["verdict"]["result"] == "pass" and log["entries"] == 2
    text = verify_cluster(cluster, tmp_path)
    assert text.returncode == 0 and text.stdout.rstrip().endswith("Verification OK")
    status = run("cloister", "status", "--policy", member_policy(cluster, tmp_path),
                 "--state-file", cluster.tmp / "cloister-state.json")
    assert status.returncode == 0 and "worker-2" in status.stdout and "policy sha256:" in status.stdout
    # Endpoints as in JSON, with their scheme.
    assert f"https://127.0.0.1:{w1.port}" in status.stdout, status.stdout
    # --node and --cluster-id need no state file (run where there is none).
    state = json.loads((cluster.tmp / "cloister-state.json").read_text())
    alone = run("cloister", "status", "--policy", member_policy(cluster, tmp_path), "--node",
                state["endpoint"].removeprefix("https://"), "--cluster-id", state["clusterId"],
                cwd=tmp_path)
    assert alone.returncode == 0 and "worker-2" in alone.stdout, alone.stderr
    wrong = run("cloister", "status", "--policy", member_policy(cluster, tmp_path), "--node",
                state["endpoint"].removeprefix("https://"), "--cluster-id", "ab" * 32,
                cwd=tmp_path)
    assert wrong.returncode == 1 and "PCR 15" in wrong.stderr, wrong.stderr

    # worker-2's address now answers with another machine: booted with another PCR 9, in no
    # cluster (the host re-routed it, say).
    w2.proc.send_signal(signal.SIGTERM)
    w2.proc.wait(timeout=20)
    impostor.port = w2.port
    h = run("cloister", "init-secret", "generate", "--file", tmp_path / "imp-secret").stdout.strip()
    impostor.start({"name": "worker-2", "role": "control-plane", "initSecretHash": h})
    impostor.wait_for("serving init on 127.0.0.1:" + w2.port)
    # The audit log edited on the control plane's disk: the chain check catches it.
    log_path = cp.state / "audit.log"
    lines = log_path.read_text().splitlines(keepends=True)
    log_path.write_text(lines[1])
    r = verify_cluster(cluster, tmp_path, "-o", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["verdict"]["result"] == "fail" and out["auditLogs"][0]["verdict"]["result"] == "fail"
    failed = {n["name"]: n for n in out["nodes"] if n["verdict"]["result"] == "fail"}
    assert list(failed) == ["worker-2"]
    reasons = " ".join(failed["worker-2"]["reasons"])
    assert "PCR 9 differs" in reasons, reasons


def extend_audit_log(path, count):
    """Appends count refusals to a log, chained and canonical (docs/audit-log.md), as a join
    service long under attack would have; the head file follows."""
    last = json.loads(path.read_text().splitlines()[-1])
    seq, prev = last["seq"], last["hash"]
    lines = []
    for i in range(count):
        seq += 1
        e = {"event": "refusal", "evidenceDigest": "", "node": f"10.0.{i % 250}.{i % 200}:4{i % 9999}",
             "policyDigest": "", "prev": prev, "reason": f"the evidence is refused ({i}): "
             + "PCR 9 differs " * 20, "role": "", "seq": seq, "time": "2026-12-04T18:00:00Z",
             "verdict": "refused"}
        e["hash"] = prev = hashlib.sha256(json.dumps(e, sort_keys=True,
                                                     separators=(",", ":")).encode()).hexdigest()
        lines.append(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n")
    with open(path, "a") as f:
        f.writelines(lines)
    Path(str(path) + ".head").write_text(json.dumps({"hash": prev, "seq": seq}) + "\n")
    return seq


def start_join_service(cp, *extra):
    """cp's join service started on its own (as the bootstrapper execs it), on the same port."""
    log = cp.base / f"js-{len(list(cp.base.glob('js-*.log')))}.log"
    cp.proc = subprocess.Popen([str(binary("cloister-join-service")), "--tcti", cp.tpm.tcti,
                                "--listen", f"127.0.0.1:{cp.port}", "--state-dir", str(cp.state),
                                "--kubeadm", str(KUBEADM), "--event-log", str(cp.boot_log), *extra],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(300):
        if "serving joins on" in log.read_text():
            return log
        assert cp.proc.poll() is None, log.read_text()
        time.sleep(0.1)
    pytest.fail(log.read_text())


def stop_join_service(cp):
    cp.proc.send_signal(signal.SIGTERM)
    cp.proc.wait(timeout=20)


def test_verify_cluster_reads_an_audit_log_of_many_pages_and_finds_an_entry_altered_deep_in_it(
        cluster, tmp_path):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.port = w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)").group(1)
    log_path = cp.state / "audit.log"
    # 12 MiB: past the 8 MiB the service once served whole, 48 pages of 256 KiB. Written while
    # the join service is down: a running one signs only what it wrote (docs/audit-log.md).
    stop_join_service(cp)
    total = extend_audit_log(log_path, 30000)
    start_join_service(cp)
    assert log_path.stat().st_size > 12 * 1024 * 1024
    r = verify_cluster(cluster, tmp_path, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    (log,) = json.loads(r.stdout)["auditLogs"]
    assert log["verdict"]["result"] == "pass" and log["entries"] == total and log["refusals"] >= 30000, log
    assert "entries checked so far" in r.stderr  # long work shows progress
    # One byte of a reason changed ~10 MiB in, hash left alone: that entry, by line number.
    data = bytearray(log_path.read_bytes())
    at = data.index(b"PCR 9 differs", 10 * 1024 * 1024)
    data[at + 4] = ord("8")
    log_path.write_bytes(bytes(data))
    line = data[:at].count(b"\n") + 1
    r = verify_cluster(cluster, tmp_path, "-o", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    (log,) = json.loads(r.stdout)["auditLogs"]
    assert log["verdict"]["result"] == "fail" and f"line {line}: its hash does not match" in log["verdict"]["reason"], log


def test_audit_pages_hold_whole_entries_and_refuse_an_offset_inside_an_entry(cluster, tmp_path):
    cp, w1 = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w1])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for(r"serving node state on 127\.0\.0\.1:(\d+)")
    log_path = cp.state / "audit.log"
    extend_audit_log(log_path, 2000)  # about 900 KiB: four pages
    data = log_path.read_bytes()

    def page(query):
        rc, out = probe(cluster, "--no-attest", "--get", "/v1/audit" + query)
        status, _, body = out.partition(" ")[2].partition(" ")
        return rc, int(status), json.loads(body) if body.startswith("{") else body

    rc, status, first = page("")
    assert rc == 0 and first["offset"] == 0 and first["more"] is True
    assert first["log"].endswith("\n") and len(first["log"]) <= 256 * 1024
    assert data.startswith(first["log"].encode()) and first["next"] == len(first["log"])
    rc, status, second = page(f"?offset={first['next']}")
    assert rc == 0 and second["offset"] == first["next"]
    assert data[first["next"]:].startswith(second["log"].encode())
    # Pages in a row give the log, and the last one comes with the head.
    offset, text = 0, b""
    while True:
        _, _, p = page(f"?offset={offset}")
        text += p["log"].encode()
        offset = p["next"]
        if not p["more"]:
            break
    assert text == data and p["head"] == (cp.state / "audit.log.head").read_text()
    for query, why in ((f"?offset={first['next'] - 5}", "not the start of an audit entry"),
                       (f"?offset={len(data) + 1}", "past the end of the audit log"),
                       ("?offset=-1", "one query, offset=N"),
                       ("?offset=1e3", "one query, offset=N"),
                       ("?from=0", "one query, offset=N")):
        rc, status, body = page(query)
        assert rc == 1 and status == 400 and why in json.dumps(body), (query, body)


def test_rebooted_worker_rejoins_with_the_same_disk_key_without_joining_kubernetes_again(
        cluster, tmp_path):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    key = tmp_path / "disk.key"
    key.write_bytes(cluster.disk_key(w))
    (w.state / "data.txt").write_text("written before the reboot")
    reboot(w)
    restart(w, cluster, policy)
    w.wait_for("serving node state")
    assert "Rejoined cluster " + cluster.cid in w.log.read_text()
    # Same disk, same key; still initialised; kubeadm ran once, at the first join.
    r = run("cloister-disk-mapper", "check", w.disk, "--key-file", key)
    assert r.returncode == 0 and "state initialized" in r.stdout
    assert (w.state / "data.txt").read_text() == "written before the reboot"
    assert (w.state / "kubeadm.log").read_text().count("joined as a worker") == 1
    assert [e["event"] for e in cluster.audit()] == ["admission", "rejoin"]
    assert verify_cluster(cluster, tmp_path).returncode == 0


def test_full_outage_nobody_rejoins_until_recover_then_the_cluster_verifies(cluster, tmp_path):
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    for w in (w1, w2):
        cluster.join(w, policy)
    for w in (w1, w2):
        w.wait_for("serving node state")
    for n in (cp, w1, w2):
        reboot(n)
    restart(cp, cluster, policy)
    cp.wait_for(r"serving recovery on 127\.0\.0\.1:" + cp.port)
    for w in (w1, w2):
        restart(w, cluster, policy)
    # No join service: the workers find a control plane without the cluster's ID in PCR 15.
    w1.wait_for("PCR 15 differs")
    assert w1.proc.poll() is None and w2.proc.poll() is None
    # A wrong master secret is refused by the node (it does not open the disk).
    other = tmp_path / "other-ms.json"
    assert run("cloister", "master-secret", "generate", "--file", other).returncode == 0
    r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
            "--master-secret", other, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 1 and "does not open" in r.stderr, r.stderr
    r = run("cloister", "recover", "--endpoint", cp.url(), "--policy", policy,
            "--master-secret", cluster.ms, "--state-file", cluster.tmp / "cloister-state.json")
    assert r.returncode == 0 and cluster.cid in r.stdout, r.stdout + r.stderr
    cp.wait_for("serving joins on")
    for w in (w1, w2):
        w.wait_for("serving node state", timeout=90)
    assert verify_cluster(cluster, tmp_path).returncode == 0
    events = [e["event"] for e in cluster.audit()]
    assert events[:2] == ["admission", "admission"] and "recovery" in events
    assert events.count("rejoin") == 2
