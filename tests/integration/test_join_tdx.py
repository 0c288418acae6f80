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
