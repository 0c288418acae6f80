# SPDX-License-Identifier: Apache-2.0
"""Joins of TDX nodes (sim-tdx: the production TDX verification, under a simulated platform's
root that the owner's policy names). Nodes are processes on loopback as in test_join.py, each
with its own swtpm: a TDX quote names no key that survives a reboot, so the node's TPM quotes the
same aTLS binding beside it and its attestation key is what a member is bound to (docs/join.md,
"Members without a TPM attestation key"). The attackers are genuine sim-tdx nodes: their quotes
pass the owner's policy; only their TPM differs."""
import json
import re

import pytest

from conftest import BUILD, run
from test_join import (Cluster, Node, assert_untouched, pcr15_expected, read_pcr15, reboot,
                       restart)


class TdxNode(Node):
    def __init__(self, base, name, root):
        super().__init__(base, name)
        self.root = root

    def start(self, metadata, *extra, env=None):
        super().start(metadata, "--attest", "sim-tdx", "--sim-tdx-root", str(self.root), *extra,
                      env=env)


class TdxCluster(Cluster):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.root = tmp / "sim-tdx-root.pem"
        self.owner_policy = tmp / "sim-tdx-policy.json"
        r = run("cloister", "attestation", "sim-tdx-root", self.root,
                "--policy-output", self.owner_policy)
        assert r.returncode == 0, r.stderr

    def node(self, name, alter=None):
        n = TdxNode(self.tmp / name, name, self.root)
        self.nodes.append(n)
        return n

    def policy(self, nodes=None, path=None):
        """The owner's sim-tdx policy: the simulator's root and MRTD; no keys to pin."""
        path = path or self.tmp / "policy.json"
        path.write_text(self.owner_policy.read_text())
        return path


@pytest.fixture
def tdx(tmp_path):
    c = TdxCluster(tmp_path)
    yield c
    c.stop()


def members(cp):
    return {m["name"]: m for m in json.loads((cp.state / "members.json").read_text())["members"]}


def tpm_ak_digest(node):
    """SHA-256 of the node's TPM attestation key (TPMT_PUBLIC), as the join service records it."""
    import base64
    import hashlib
    e = json.loads(node.evidence.read_text())
    return hashlib.sha256(base64.b64decode(e["tpm"]["akPublic"])).hexdigest()


def tdx_probe(cluster, node, *args):
    """join-probe as a genuine sim-tdx node whose identity is node's TPM."""
    import subprocess
    p = subprocess.run([str(BUILD / "tests" / "join-probe"), "--policy",
                        str(cluster.tmp / "policy.json"), "--cluster-id", cluster.cid,
                        "--url", cluster.cp.url(), "--tcti", node.tpm.tcti, "--attest", "sim-tdx",
                        "--sim-tdx-root", str(cluster.root), *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def last_refusal(cluster):
    refused = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert refused, "no refusal in the audit log"
    return refused[-1]


def test_sim_tdx_worker_joins_bound_to_its_tpm_and_rejoins_after_a_reboot(tdx, tmp_path):
    cp, w = tdx.node("cp-1"), tdx.node("worker-1")
    policy = tdx.policy()
    tdx.init(cp, policy)
    # The control plane attests with sim-tdx (the owner's apply verified it against the policy)
    # and records itself bound to its TPM's key.
    assert "SIMULATED TDX" in cp.log.read_text()
    assert members(cp)["cp-1"]["akDigest"] == tpm_ak_digest(cp)
    tdx.join(w, policy)
    w.wait_for("serving node state")
    assert members(cp)["worker-1"]["akDigest"] == tpm_ak_digest(w)
    assert read_pcr15(w.tpm.tcti) == pcr15_expected(tdx.cid)
    key = tmp_path / "disk.key"
    key.write_bytes(tdx.disk_key(w))
    (w.state / "data.txt").write_text("written before the reboot")
    reboot(w)
    restart(w, tdx, policy)
    w.wait_for("serving node state")
    assert "Rejoined cluster " + tdx.cid in w.log.read_text()
    r = run("cloister-disk-mapper", "check", w.disk, "--key-file", key)
    assert r.returncode == 0 and "state initialized" in r.stdout
    assert (w.state / "data.txt").read_text() == "written before the reboot"
    assert (w.state / "kubeadm.log").read_text().count("joined as a worker") == 1
    assert [e["event"] for e in tdx.audit()] == ["admission", "rejoin"]


UUID = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53"


def joined_worker(tdx):
    """cp-1 initialised, worker-1 a member for real: (cp, worker-1, its member record)."""
    cp, w = tdx.node("cp-1"), tdx.node("worker-1")
    policy = tdx.policy()
    tdx.init(cp, policy)
    tdx.join(w, policy)
    w.wait_for("serving node state")
    return cp, w, members(cp)["worker-1"]


def test_genuine_sim_tdx_node_rejoining_as_another_member_gets_no_disk_key(tdx):
    """The thief's TDX quote passes the owner's policy (same simulated platform root, same MRTD):
    only its TPM is not the member's. Name and disk UUID are public (GET /v1/members)."""
    cp, w, victim = joined_worker(tdx)
    thief = tdx.node("thief")
    rc, out = tdx_probe(tdx, thief, "--name", "worker-1", "--rejoin", victim["diskUuid"])
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    refusal = last_refusal(tdx)
    assert refusal["node"] == "worker-1"
    assert "attests with another attestation key than the one it joined with" in refusal["reason"]
    assert members(cp)["worker-1"] == victim  # neither its key nor its endpoint replaced


def test_genuine_sim_tdx_node_joining_under_a_members_name_is_refused(tdx):
    cp, w, victim = joined_worker(tdx)
    thief = tdx.node("thief")
    rc, out = tdx_probe(tdx, thief, "--name", "worker-1", "--disk-uuid", victim["diskUuid"])
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert "worker-1 is already a member with another attestation key" in \
        last_refusal(tdx)["reason"]


def test_genuine_sim_tdx_node_claiming_a_members_disk_under_a_new_name_is_refused(tdx):
    cp, w, victim = joined_worker(tdx)
    thief = tdx.node("thief")
    rc, out = tdx_probe(tdx, thief, "--name", "thief", "--disk-uuid", victim["diskUuid"])
    assert rc == 1 and "HTTP 409" in out and "diskKey" not in out, out
    assert f"disk {victim['diskUuid']} belongs to member worker-1" in last_refusal(tdx)["reason"]
    assert "thief" not in members(cp)


def test_sim_tdx_join_without_the_tpm_identity_quote_is_refused_in_the_handshake(tdx):
    """A TDX quote alone names no key a rejoin could prove again, nor the PCR 15 that says the
    node belongs to no cluster: the join service refuses it before any request."""
    cp = tdx.node("cp-1")
    tdx.init(cp, tdx.policy())
    bare = tdx.node("bare")
    rc, out = tdx_probe(tdx, bare, "--name", "bare", "--no-identity")
    assert rc == 1 and "refused this node's evidence" in out and "diskKey" not in out, out
    assert "PCR 15 is required by the policy but not in the quote" in last_refusal(tdx)["reason"]
    assert "bare" not in members(cp)


def test_sim_tdx_member_rejoins_from_its_own_tpm_and_only_for_its_own_disk(tdx):
    """The control for the refusals above: the member's own TPM gets its own disk key; the same
    TPM asking for another disk does not."""
    cp = tdx.node("cp-1")
    tdx.init(cp, tdx.policy())
    w = tdx.node("worker-1")
    rc, out = tdx_probe(tdx, w, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    assert members(cp)["worker-1"]["akDigest"] == tpm_ak_digest(w)
    other = "7a1e4c2b-9d3f-4e8a-b6c5-1f2e3d4c5b6a"
    rc, out = tdx_probe(tdx, w, "--name", "worker-1", "--rejoin", other)
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    rc, out = tdx_probe(tdx, w, "--name", "worker-1", "--rejoin", UUID)
    assert rc == 0 and "diskKey" in out, out


def test_sim_tdx_member_whose_pcr15_is_extended_already_is_refused_a_rejoin(tdx):
    """Once per boot holds for TDX members too: PCR 15 comes from the identity quote."""
    import hashlib
    import os
    import subprocess
    cp = tdx.node("cp-1")
    tdx.init(cp, tdx.policy())
    w = tdx.node("worker-1")
    assert tdx_probe(tdx, w, "--name", "worker-1", "--disk-uuid", UUID)[0] == 0
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
        bytes.fromhex(tdx.cid)).hexdigest()], check=True,
        env=dict(os.environ, TPM2TOOLS_TCTI=w.tpm.tcti))
    rc, out = tdx_probe(tdx, w, "--name", "worker-1", "--rejoin", UUID)
    assert rc == 1 and "HTTP 409" in out and "diskKey" not in out, out
    assert "PCR 15 extended already" in last_refusal(tdx)["reason"]


def test_node_refuses_a_join_policy_of_another_variant_than_it_attests_with(tdx, tmp_path):
    cp, w = tdx.node("cp-1"), tdx.node("worker-1")
    tdx.init(cp, tdx.policy())
    tdx.join(w, w.policy)  # the node's own qemu-vtpm policy
    assert_untouched(w)
    assert "is for qemu-vtpm, but this node attests with sim-tdx" in w.log.read_text()


def test_sim_tdx_is_refused_without_its_root_and_says_how_to_configure_it(tdx):
    n = tdx.node("cp-1")
    r = run("cloister-bootstrapper", "--tcti", n.tpm.tcti, "--state-disk", n.disk,
            "--first-boot-key", n.first, "--state-dir", n.state, "--attest", "sim-tdx",
            "--insecure-no-init-secret")
    assert r.returncode == 1
    assert "sim-tdx is a simulator: it is used only when configured explicitly" in r.stderr
    assert "--sim-tdx-root" in r.stderr


def test_joining_sim_tdx_node_refuses_a_join_service_of_another_cluster_and_sends_nothing(tdx):
    """The join service's TDX quote passes (same image, same platform root); the PCR 15 its TPM
    quotes beside it is another cluster's than the node's metadata names."""
    cp, w = tdx.node("cp-1"), tdx.node("worker-1")
    policy = tdx.policy()
    tdx.init(cp, policy)
    tdx.join(w, policy, cid="ab" * 32, timeout=3)
    assert_untouched(w)
    assert "is not a member of the cluster in this node's metadata" in w.log.read_text()
    assert [e for e in tdx.audit() if e["event"] == "admission"] == []


def test_sim_tdx_non_member_whose_pcr15_holds_this_cluster_is_refused_a_join(tdx):
    import hashlib
    import os
    import subprocess
    cp = tdx.node("cp-1")
    tdx.init(cp, tdx.policy())
    n = tdx.node("stranger")
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
        bytes.fromhex(tdx.cid)).hexdigest()], check=True,
        env=dict(os.environ, TPM2TOOLS_TCTI=n.tpm.tcti))
    rc, out = tdx_probe(tdx, n, "--name", "stranger")
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert "PCR 15 is already extended and stranger is not a member" in last_refusal(tdx)["reason"]


def test_second_sim_tdx_control_plane_joins_and_its_join_service_admits_a_worker(tdx):
    """A TDX control plane that joined (not the one apply initialised) serves joins: its join
    service presents sim-tdx evidence with its TPM's PCR 15 = the cluster, which the worker
    checks, and binds the worker to the worker's TPM key."""
    from test_join import audit_entries
    cp1, cp2, w = tdx.node("cp-1"), tdx.node("cp-2"), tdx.node("worker-1")
    policy = tdx.policy()
    tdx.init(cp1, policy)
    tdx.join(cp2, policy, role="control-plane")
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    assert "SIMULATED TDX" in cp2.log.read_text()
    assert members(cp1)["cp-2"]["akDigest"] == tpm_ak_digest(cp2)
    tdx.join(w, policy, via=[cp2])
    w.wait_for("serving node state")
    (entry,) = [e for e in audit_entries(cp2.state / "audit.log") if e["verdict"] == "admitted"]
    assert entry["node"] == "worker-1"
    assert members(cp2)["worker-1"]["akDigest"] == tpm_ak_digest(w)
