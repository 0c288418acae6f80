# SPDX-License-Identifier: Apache-2.0
"""Key release goes only to the member it belongs to. Each test performs one attack a security
review demonstrated against the join service (issue: keys and roles released only to the member
they belong to) with nodes that are processes on loopback, each with its own swtpm, and checks
that it is refused, that the refusal and its reason are in the audit log, and that no key left.

The attacker is always *attested*: its TPM's key is pinned in the owner's policy and it reports
the image's PCRs (the join probe, tests/tools/join-probe.c, asks what the real join client never
would). Attestation proves what runs; these checks decide whose key it gets."""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import binary, run
from test_join import (KUBEADM, cluster, pcr15_expected, probe, read_pcr15,  # noqa: F401 (fixture)
                       reboot)


def members(cp):
    return json.loads((cp.state / "members.json").read_text())["members"]


def member(cp, name):
    (m,) = [m for m in members(cp) if m["name"] == name]
    return m


def last_refusal(cluster):
    refused = [e for e in cluster.audit() if e["verdict"] == "refused"]
    assert refused, "no refusal in the audit log"
    return refused[-1]


UUID = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53"
OTHER_UUID = "7a1e4c2b-9d3f-4e8a-b6c5-1f2e3d4c5b6a"


def probed_member(cluster):
    """cp-1 initialised, worker-1 a member through the join probe (disk UUID, its own TPM, PCR 15
    left zero): (cp, worker)."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    cluster.init(cp, cluster.policy([cp, w]))
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 0, out
    return cp, w


def test_join_claiming_another_members_disk_uuid_is_refused_and_audited(cluster):
    """worker-1 joined for real; worker-2 (pinned, the image's PCRs, never joined) asks under a
    new name with worker-1's disk UUID, which GET /v1/members shows to anyone. The disk key is
    derived from that UUID: it would open worker-1's disk."""
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    victim = member(cp, "worker-1")
    rc, out = probe(cluster, "--tcti", w2.tpm.tcti, "--name", "thief",
                    "--disk-uuid", victim["diskUuid"])
    assert rc == 1 and "HTTP 409" in out and "diskKey" not in out, out
    refusal = last_refusal(cluster)
    assert refusal["node"] == "thief"
    assert f"disk {victim['diskUuid']} belongs to member worker-1" in refusal["reason"]
    # One disk, one member: nothing was recorded for the thief.
    assert [m["diskUuid"] for m in members(cp)].count(victim["diskUuid"]) == 1
    assert "thief" not in [m["name"] for m in members(cp)]


def test_rejoin_as_the_control_plane_from_another_tpm_is_refused(cluster):
    """The control plane records itself with its own attestation key; a rejoin under its name
    and disk UUID from another TPM gets neither its disk key nor its membership record."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    own = member(cp, "cp-1")
    assert own["role"] == "control-plane" and re.fullmatch(r"[0-9a-f]{64}", own["akDigest"])
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "cp-1", "--rejoin", own["diskUuid"])
    # The join service's own node never rejoins through itself, whichever TPM asks.
    assert rc == 1 and "HTTP 403" in out and "own node" in out, out
    assert "diskKey" not in out
    refusal = last_refusal(cluster)
    assert refusal["node"] == "cp-1" and "own node" in refusal["reason"]
    assert member(cp, "cp-1") == own  # neither its AK nor its endpoint was replaced


def test_rejoin_of_a_member_bound_to_no_attestation_key_is_refused(cluster):
    """A record without an attestation key (a variant that has none, or a record written before
    control planes recorded their own) binds to nothing: no rejoin can be proven to come from
    that member, so none is answered."""
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    doc = json.loads((cp.state / "members.json").read_text())
    for m in doc["members"]:
        if m["name"] == "worker-1":
            m["akDigest"] = ""
            uuid = m["diskUuid"]
    (cp.state / "members.json").write_text(json.dumps(doc))
    rc, out = probe(cluster, "--tcti", w2.tpm.tcti, "--name", "worker-1", "--rejoin", uuid)
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert "bound to no attestation key" in last_refusal(cluster)["reason"]


def test_join_under_the_name_of_a_member_bound_to_no_attestation_key_is_refused(cluster):
    """The join path's side of the same rule: even the member's own TPM, asking to finish a join
    under that name, is refused for the record, not for a key mismatch it cannot have."""
    cp, w1 = probed_member(cluster)
    doc = json.loads((cp.state / "members.json").read_text())
    for m in doc["members"]:
        if m["name"] == "worker-1":
            m["akDigest"] = ""
    (cp.state / "members.json").write_text(json.dumps(doc))
    rc, out = probe(cluster, "--tcti", w1.tpm.tcti, "--name", "worker-1", "--disk-uuid", UUID)
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert "worker-1 is a member bound to no attestation key" in last_refusal(cluster)["reason"]


def test_rejoin_of_a_member_with_another_disk_uuid_is_refused(cluster):
    """A rejoin names the disk whose key it wants: it must be the member's own. From the member's
    own TPM, just rebooted (PCR 15 zero), asking for another disk's key is refused."""
    cp, w = probed_member(cluster)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--rejoin", OTHER_UUID)
    assert rc == 1 and "HTTP 403" in out and "diskKey" not in out, out
    assert f"worker-1 with disk {OTHER_UUID} is not a member admitted by this join service" in \
        last_refusal(cluster)["reason"]
    # Its own disk, the same way, is answered: the refusal was for the disk.
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--rejoin", UUID)
    assert rc == 0 and "diskKey" in out, out


def test_rejoin_of_a_member_whose_pcr15_is_extended_already_is_refused(cluster):
    """The disk key is answered to a member that has just booted (PCR 15 zero), once per boot:
    a member whose PCR 15 already holds the cluster rejoined since it booted."""
    cp, w = probed_member(cluster)
    subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
        bytes.fromhex(cluster.cid)).hexdigest()], check=True,
        env=dict(os.environ, TPM2TOOLS_TCTI=w.tpm.tcti))
    assert read_pcr15(w.tpm.tcti) == pcr15_expected(cluster.cid)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--rejoin", UUID)
    assert rc == 1 and "HTTP 409" in out and "diskKey" not in out, out
    assert "worker-1 has PCR 15 extended already: it rejoined since it booted" in \
        last_refusal(cluster)["reason"]


def test_repeated_init_with_another_master_secret_gets_no_admin_kubeconfig(cluster, tmp_path):
    """The control plane answers a repeated /v1/init (the owner's apply retried) with the admin
    kubeconfig only for this cluster's master secret and salts: the salts are in the owner's
    state file, the master secret is not. Sent raw (the CLI refuses another secret before)."""
    cp = cluster.node("cp-1")
    cluster.init(cp, cluster.policy([cp]))
    secret = json.loads(cluster.ms.read_text())
    msalt = json.loads((cluster.tmp / "cloister-state.json").read_text())["measurementSalt"]
    body = {"masterSecret": secret["key"], "salt": secret["salt"],
            "measurementSalt": base64.b64encode(bytes.fromhex(msalt)).decode()}
    (tmp_path / "same.json").write_text(json.dumps(body))
    rc, out = probe(cluster, "--no-attest", "--post", "/v1/init", "--body", tmp_path / "same.json")
    assert rc == 0 and '"kubeconfig"' in out, out  # the control: the owner's own init again
    body["masterSecret"] = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "other.json").write_text(json.dumps(body))
    rc, out = probe(cluster, "--no-attest", "--post", "/v1/init", "--body", tmp_path / "other.json")
    assert rc == 1 and "HTTP 409" in out and "this node is already initialised" in out, out
    assert "kubeconfig" not in out and "BEGIN" not in out, out


def authorization_for(cluster, name, not_after):
    """An authorization computed independently of the C code (docs/key-derivation.md)."""
    secret = json.loads(cluster.ms.read_text())
    tag = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
               info=f"cloister/v1/control-plane-authorization/{name}/{not_after}".encode()
               ).derive(base64.b64decode(secret["key"]))
    return f"cpa1.{name}.{not_after}.{tag.hex()}"


def test_control_plane_request_without_the_owners_authorization_is_refused(cluster, tmp_path):
    """The role is the owner's decision, not the request's: an attested node asking for
    control-plane (the master secret) is refused without an authorization for its name made with
    the master secret and not expired; with one it is admitted."""
    cp, w = cluster.node("cp-1"), cluster.node("cp-2")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    other_ms = tmp_path / "other-ms.json"
    assert run("cloister", "master-secret", "generate", "--file", other_ms).returncode == 0
    forged = run("cloister", "control-plane", "authorize", "cp-2", "--master-secret", other_ms)
    attempts = [
        ([], "has not authorized cp-2 as a control plane (no control-plane authorization"),
        (["--authorization", cluster.authorize("cp-9")], "is for 'cp-9', not 'cp-2'"),
        (["--authorization", forged.stdout.strip()], "not made with this cluster's master secret"),
        (["--authorization", authorization_for(cluster, "cp-2", int(time.time()) - 60)], "expired"),
        (["--authorization", "cpa1.cp-2.x"], "malformed"),
    ]
    for extra, reason in attempts:
        rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "cp-2", "--control-plane", *extra)
        assert rc == 1 and "HTTP 403" in out and "masterSecret" not in out, out
        assert reason in last_refusal(cluster)["reason"], (reason, last_refusal(cluster))
    assert "cp-2" not in [m["name"] for m in members(cp)]
    # The owner's authorization, as the independent implementation computes it too.
    good = authorization_for(cluster, "cp-2", int(time.time()) + 3600)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "cp-2", "--control-plane",
                    "--authorization", good)
    assert rc == 0 and '"masterSecret"' in out, out
    assert member(cp, "cp-2")["role"] == "control-plane"


def test_cli_authorization_equals_the_independent_computation(cluster):
    r = run("cloister", "-o", "json", "control-plane", "authorize", "cp-7", "--valid-for", "2",
            "--master-secret", cluster.ms)
    assert r.returncode == 0, r.stderr
    token = json.loads(r.stdout)["authorization"]
    not_after = int(token.split(".")[2])
    assert abs(not_after - (time.time() + 7200)) < 60
    assert token == authorization_for(cluster, "cp-7", not_after)


def test_repeated_join_cannot_change_a_members_role(cluster):
    """A member (same name, disk and TPM) asking again is let through to finish a join cut
    short, but never with another role, even holding an owner's authorization."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    uuid = "0f3c9a2e-5b1d-4c8e-9a7f-2d6b8e1c4a53"
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", uuid)
    assert rc == 0 and "masterSecret" not in out, out
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", uuid,
                    "--control-plane", "--authorization", cluster.authorize("worker-1"))
    assert rc == 1 and "HTTP 403" in out and "masterSecret" not in out, out
    assert "a repeated join cannot change its role" in last_refusal(cluster)["reason"]
    assert member(cp, "worker-1")["role"] == "worker"
    # The same request as a worker is still the member finishing its join.
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", uuid)
    assert rc == 0, out


def test_member_asking_again_with_another_disk_is_refused(cluster):
    """A member (same name, same TPM) asking again with another disk UUID is not a join cut
    short: the answer would be the key of a disk the membership does not record, under a name
    that already holds one."""
    cp, w = probed_member(cluster)
    rc, out = probe(cluster, "--tcti", w.tpm.tcti, "--name", "worker-1", "--disk-uuid", OTHER_UUID)
    assert rc == 1 and "HTTP 409" in out and "diskKey" not in out, out
    assert "worker-1 is already a member with another disk" in last_refusal(cluster)["reason"]
    assert member(cp, "worker-1")["diskUuid"] == UUID


def stop_join_service(cp):
    cp.proc.send_signal(signal.SIGTERM)
    cp.proc.wait(timeout=20)


def start_join_service(cp, policy, *extra):
    log = cp.base / "js.log"
    f = open(log, "w")
    proc = subprocess.Popen([str(binary("cloister-join-service")), "--tcti", cp.tpm.tcti,
                             "--listen", f"127.0.0.1:{cp.port}", "--state-dir", str(cp.state),
                             "--kubeadm", str(KUBEADM), "--policy", str(policy), *extra],
                            stdout=f, stderr=subprocess.STDOUT)
    return proc, log


def wait_serving(proc, log):
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        if "serving joins on" in log.read_text():
            return
        time.sleep(0.1)
    pytest.fail(log.read_text())


def test_join_service_refuses_insecure_any_without_the_insecure_option(cluster, tmp_path):
    """akTrust insecure-any trusts any TPM: a fresh swtpm filled with the image's published
    digests would pass. The join service refuses to start with it; with the explicit insecure
    option it starts, says so loudly, and still never admits a control plane."""
    cp, outsider = cluster.node("cp-1"), cluster.node("outsider")
    policy = cluster.policy([cp])  # the outsider's key is not pinned
    cluster.init(cp, policy)
    stop_join_service(cp)
    p = json.loads(policy.read_text())
    p["akTrust"] = {"mode": "insecure-any"}
    insecure = tmp_path / "insecure.json"
    insecure.write_text(json.dumps(p))
    proc, log = start_join_service(cp, insecure)
    assert proc.wait(timeout=30) == 1
    text = log.read_text()
    assert "insecure-any" in text and "--insecure-allow-any-ak" in text, text
    assert "serving joins" not in text

    proc, log = start_join_service(cp, insecure, "--insecure-allow-any-ak")
    try:
        wait_serving(proc, log)
        assert "INSECURE" in log.read_text()
        rc, out = probe(cluster, "--tcti", outsider.tpm.tcti, "--name", "outsider",
                        "--control-plane", "--authorization", cluster.authorize("outsider"))
        assert rc == 1 and "masterSecret" not in out, out
        assert "never admitted under akTrust insecure-any" in last_refusal(cluster)["reason"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_join_service_refuses_a_policy_whose_measurements_are_all_warn_only(cluster, tmp_path):
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    stop_join_service(cp)
    p = json.loads(policy.read_text())
    for m in p["measurements"].values():
        m["warnOnly"] = True
    lax = tmp_path / "warn-only.json"
    lax.write_text(json.dumps(p))
    proc, log = start_join_service(cp, lax)
    assert proc.wait(timeout=30) == 1
    assert "are all warnOnly" in log.read_text(), log.read_text()
    # The CLI refuses to verify with it too.
    r = run("cloister", "verify", "--node", f"127.0.0.1:{cp.port}", "--policy", lax)
    assert r.returncode == 1 and "are all warnOnly" in r.stderr, r.stderr


def extend_pcr15(tcti, cid_hex):
    """What joining a cluster does to PCR 15: one extend with SHA-256(cluster ID)."""
    digest = hashlib.sha256(bytes.fromhex(cid_hex)).hexdigest()
    subprocess.run(["tpm2_pcrextend", f"15:sha256={digest}"], check=True,
                   env=dict(os.environ, TPM2TOOLS_TCTI=tcti))
    assert read_pcr15(tcti) == pcr15_expected(cid_hex)


def test_join_service_refuses_to_serve_unless_its_own_pcr15_holds_the_cluster(cluster):
    """Joining nodes trust a join service whose PCR 15 holds the cluster ID; the join service
    checks that of itself before serving. Started on the control plane's state after a reboot
    (PCR 15 zero: not rejoined) or on a TPM whose PCR 15 holds another cluster, it exits with the
    reason and never serves; with PCR 15 extended to this cluster, the same command serves."""
    cp, other = cluster.node("cp-1"), cluster.node("other")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    stop_join_service(cp)

    def refused(log_name):
        proc, log = start_join_service(cp, policy)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
            pytest.fail("the join service did not exit:\n" + log.read_text())
        text = log.read_text()
        log.rename(cp.base / log_name)
        assert rc != 0, text
        assert f"PCR 15 does not hold cluster {cluster.cid}" in text, text
        assert "serving joins" not in text, text

    reboot(cp)  # PCR 15 zero: this node has not rejoined since it booted
    refused("js-pcr15-zero.log")

    # Another node's TPM, whose PCR 15 holds another cluster (cp's own TPM is untouched).
    other_cid = hashlib.sha256(b"another cluster").hexdigest()
    extend_pcr15(other.tpm.tcti, other_cid)
    tpm = cp.tpm
    cp.tpm = other.tpm
    try:
        refused("js-other-cluster.log")
    finally:
        cp.tpm = tpm

    # The positive control: the same command, once PCR 15 holds this cluster, serves joins.
    extend_pcr15(cp.tpm.tcti, cluster.cid)
    proc, log = start_join_service(cp, policy)
    try:
        wait_serving(proc, log)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_bootstrapper_refuses_an_owners_cluster_policy_with_insecure_any(cluster, tmp_path):
    """The owner's policy arrives with init; a node would become a join service enforcing it."""
    cp = cluster.node("cp-1")
    p = json.loads(cluster.policy([cp]).read_text())
    p["akTrust"] = {"mode": "insecure-any"}
    insecure = tmp_path / "insecure.json"
    insecure.write_text(json.dumps(p))
    secret = tmp_path / "init-secret"
    h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
    cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": h})
    cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
    def apply(policy):
        return run("cloister", "apply", "--endpoint", cp.url(), "--policy", policy,
                   "--init-secret-file", secret, "--state-file", tmp_path / "state.json",
                   "--master-secret", cluster.ms, "--cluster-name", "joins",
                   "--kubeconfig", tmp_path / "admin.conf")
    r = apply(insecure)
    assert r.returncode != 0 and "insecure-any" in r.stderr, r.stdout + r.stderr
    assert read_pcr15(cp.tpm.tcti) == "00" * 32  # the node was not initialised
    # The same node takes the owner's pinned policy (the refusal left nothing behind).
    r = apply(cluster.tmp / "policy.json")
    assert r.returncode == 0, r.stdout + r.stderr


def test_joining_node_refuses_a_join_policy_with_insecure_any(cluster, tmp_path):
    """A joining node holds join services to --join-policy: with insecure-any, any TPM holding
    the cluster ID could pose as one and hand the node a disk key it knows."""
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    p = json.loads(policy.read_text())
    p["akTrust"] = {"mode": "insecure-any"}
    insecure = tmp_path / "insecure.json"
    insecure.write_text(json.dumps(p))
    cluster.join(w, insecure)
    assert w.proc.wait(timeout=60) != 0
    text = w.log.read_text()
    assert "insecure-any" in text and "--insecure-allow-any-ak" in text, text
    assert not (w.state / "node-state.json").exists()


def test_kubeadm_never_sees_a_secret_on_its_command_line(cluster):
    """The bootstrap token and the certificate key reach kubeadm through a pipe: the double
    records its own /proc/PID/cmdline, which must hold neither."""
    cp, cp2, w = cluster.node("cp-1"), cluster.node("cp-2"), cluster.node("worker-1")
    policy = cluster.policy([cp, cp2, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    rc, out = probe(cluster, "--tcti", cp2.tpm.tcti, "--name", "cp-2", "--control-plane",
                    "--authorization", cluster.authorize("cp-2"))
    assert rc == 0, out
    cmdlines = (cp.state / "kubeadm-cmdline.log").read_text().splitlines()
    assert sum("token create" in c for c in cmdlines) == 2
    assert sum("upload-certs" in c for c in cmdlines) == 1
    secrets = list(cluster.tokens()) + [json.loads(out.split(" ", 2)[2])["certificateKey"]]
    for c in cmdlines:
        assert "--config /dev/stdin" in c, c
        for secret in secrets:
            assert not any(part in c for part in secret.split(".")), c


@pytest.mark.parametrize("victim", ["worker-1", "cp-1"])
def test_join_under_a_members_name_and_disk_from_another_tpm_is_refused(cluster, victim):
    """Name and disk UUID are public: asking /v1/join again as a member (which would skip the
    control-plane authorization, the member being known) must come from the member's TPM, or
    it would get the member's disk key, and as the control plane the master secret."""
    cp, w1, w2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("worker-2")
    policy = cluster.policy([cp, w1, w2])
    cluster.init(cp, policy)
    cluster.join(w1, policy)
    w1.wait_for("serving node state")
    m = member(cp, victim)
    extra = ["--control-plane"] if m["role"] == "control-plane" else []
    rc, out = probe(cluster, "--tcti", w2.tpm.tcti, "--name", victim, "--disk-uuid", m["diskUuid"],
                    *extra)
    assert rc == 1 and "HTTP 403" in out, out
    assert "diskKey" not in out and "masterSecret" not in out
    # A worker: another TPM than the one it joined with. The control plane serving the join:
    # its own node, refused whichever TPM asks.
    why = "own node" if victim == "cp-1" else "another attestation key"
    assert why in last_refusal(cluster)["reason"], last_refusal(cluster)
    assert member(cp, victim) == m


def test_apply_refuses_a_cluster_policy_that_does_not_pin_the_image_before_contacting(cluster,
                                                                                     tmp_path):
    """A join service refuses a policy that does not enforce PCRs 4, 9 and 11: initialising a
    node with one would leave a control plane that can never serve joins. apply refuses it
    first, and the node stays uninitialised."""
    cp = cluster.node("cp-1")
    p = json.loads(cluster.policy([cp]).read_text())
    p["measurements"].pop("4")
    lax = tmp_path / "no-pcr4.json"
    lax.write_text(json.dumps(p))
    secret = tmp_path / "init-secret"
    h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
    cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": h})
    cp.port = cp.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
    r = run("cloister", "apply", "--endpoint", cp.url(), "--policy", lax,
            "--init-secret-file", secret, "--state-file", tmp_path / "state.json",
            "--master-secret", cluster.ms, "--cluster-name", "joins",
            "--kubeconfig", tmp_path / "admin.conf")
    assert r.returncode == 1 and "PCR 4 (the image) is not enforced" in r.stderr, r.stderr
    assert read_pcr15(cp.tpm.tcti) == "00" * 32
    assert "init request received" not in cp.log.read_text()
