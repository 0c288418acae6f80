# SPDX-License-Identifier: Apache-2.0
"""`cloister upgrade apply` (docs/upgrade.md) on the namespace mini: a 2-node cluster (node1 the
single control plane, node2 a worker) moved from the simulated image 1 to image 2 (PCR 11
measures the version string). The new measurements file is made here from the simulated boot's
events (scripts/mini-boot-log --predict) and signed with a key made here; the nodes are
real processes with their own swtpm and LUKS state disk, rebooted by `cloister mini reboot`.
What is checked is what the cluster shows: attestation, the audit log, the disk and its key."""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import ROOT, binary, run
from test_join import audit_entries
from test_mini import mini, mini_env

PORT = 9731


@pytest.fixture
def cluster(tmp_path):
    """A 2-node namespace mini in tmp_path/ws; torn down whatever happens."""
    ws = tmp_path / "ws"
    ws.mkdir()
    env = mini_env(tmp_path, PORT)
    r = mini(env, ws, "up", "--netns", "--nodes", "2", timeout=240)
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield ws, env
    finally:
        mini(env, ws, "down")


def owner(ws, env, *args, timeout=400):
    """A command in the owner's namespace, in the workspace (what a user runs)."""
    return subprocess.run([str(binary("cloister")), "-C", str(ws), "mini", "exec", "--", *args],
                          cwd=ws.parent, env=env, capture_output=True, text=True, timeout=timeout)


def signed_measurements(tmp_path, version, measurements_version):
    """The simulated image's measurements file, signed with a P-256 key made here."""
    out = subprocess.run([str(ROOT / "scripts" / "mini-boot-log"), "--predict", "--image-version",
                          version, "--measurements-version", str(measurements_version)],
                         capture_output=True, text=True, check=True).stdout
    path = tmp_path / f"measurements-{version}.json"
    path.write_text(out)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pub = tmp_path / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    r = run("cloister-measure", "sign", "--key", pem, path)
    assert r.returncode == 0, r.stderr
    return path, pub, json.loads(out)["measurements"]["11"]["expected"]


def apply_args(m, pub):
    return ["cloister", "upgrade", "apply", "--measurements", str(m), "--pubkey", str(pub),
            "--node-timeout", "120"]


def disk_key(ws, disk):
    """The worker's disk key, derived here from the master secret and the LUKS UUID."""
    secret = json.loads((ws / "cloister-mastersecret.json").read_text())
    uuid = re.search(r"UUID ([0-9a-f-]{36})",
                     run("cloister-disk-mapper", "check", disk).stdout).group(1)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
               info=("cloister/v1/disk/" + uuid).encode()).derive(base64.b64decode(secret["key"]))
    return uuid, key


def wait_for(path, pattern, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and re.search(pattern, path.read_text()):
            return
        time.sleep(0.3)
    pytest.fail(f"no '{pattern}' in {path}:\n{path.read_text() if path.exists() else ''}")


def test_upgrade_apply_moves_both_nodes_keeps_the_workers_disk_and_then_refuses_the_old_image(
        tmp_path, cluster):
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    m, pub, pcr11_new = signed_measurements(tmp_path, "2", 2)
    old_config = json.loads((ws / "cloister.json").read_text())
    pcr11_old = old_config["attestation"]["measurements"]["11"]["expected"]
    assert pcr11_old != pcr11_new
    uuid, key = disk_key(ws, node2 / "state.img")
    (node2 / "state" / "data.txt").write_text("written under image 1")

    # Before: every node runs the current image, attested (upgrade check changes nothing).
    r = owner(ws, env, "cloister", "upgrade", "check", "--measurements", str(m), "--pubkey",
              str(pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PCR 11: %s -> %s" % (pcr11_old, pcr11_new) in r.stdout, r.stdout
    assert re.search(r"  mini-node-1 +control-plane +runs 'current'\n", r.stdout), r.stdout
    assert re.search(r"  mini-node-2 +worker +runs 'current'\n", r.stdout), r.stdout

    # The plan, with the recovery path of the single control plane said before anything starts.
    r = owner(ws, env, *apply_args(m, pub), "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mini-node-2 (worker" in r.stdout and "mini-node-1 (control-plane" in r.stdout
    assert "single control plane, through the owner's recovery path" in r.stdout
    assert r.stdout.index("mini-node-2 (worker") < r.stdout.index("mini-node-1 (control-plane")
    assert "dry run: nothing was changed" in r.stdout
    assert json.loads((ws / "cloister.json").read_text()) == old_config
    assert not (ws / "cloister-upgrade.json").exists()

    r = owner(ws, env, *apply_args(m, pub))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "policy version 1 admits both 'current' and '2'" in out
    assert "mini-node-2: a member again, attested with measurement set '2'" in out
    assert "recovered https://10.77.0.11" in out
    assert "mini-node-1: a member again, attested with measurement set '2'" in out
    assert "policy version 2 admits only '2'" in out and "upgrade done" in out
    assert out.index("mini-node-2: a member again") < out.index("mini-node-1: replacing")
    for n in (node1, node2):
        assert (n / "image-version").read_text().strip() == "2"

    # The worker kept its state: the same LUKS volume, opened by the key derived for it, with
    # what was written under image 1; it rejoined (kubeadm ran once, at its first join).
    assert disk_key(ws, node2 / "state.img")[0] == uuid
    keyfile = tmp_path / "disk.key"
    keyfile.write_bytes(key)
    r = run("cloister-disk-mapper", "check", node2 / "state.img", "--key-file", keyfile)
    assert r.returncode == 0 and "state initialized" in r.stdout, r.stdout + r.stderr
    assert (node2 / "state" / "data.txt").read_text() == "written under image 1"
    assert "Rejoined cluster" in (node2 / "bootstrapper.log").read_text()
    assert (node2 / "state" / "kubeadm.log").read_text().count("joined as a worker") == 1

    # The configuration holds only the new image now, and records the file it came from.
    config = json.loads((ws / "cloister.json").read_text())
    assert config["policyVersion"] == 2
    assert "measurementSets" not in config["attestation"]
    assert config["attestation"]["measurements"]["11"]["expected"] == pcr11_new
    assert config["measurementsSource"]["measurementsVersion"] == 2
    assert json.loads((ws / "cloister-upgrade.json").read_text())["step"] == "done"

    # Every member passes under the policy of the new image alone.
    r = owner(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr
    r = owner(ws, env, "cloister", "status", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert [js["policyVersion"] for js in json.loads(r.stdout)["joinServices"]] == [2]

    # The audit log: both pushes, the worker's rejoin and the recovery, in order, chained.
    events = [(e["event"], e["verdict"]) for e in audit_entries(node1 / "state" / "audit.log")]
    assert events[-4:] == [("policy-update", "admitted"), ("rejoin", "admitted"),
                           ("recovery", "admitted"), ("policy-update", "admitted")], events

    # A node still on image 1 (holding the policy of the roll, so it asks the join service) is
    # refused, and the join service's audit log says why: PCR 11.
    both = tmp_path / "both-policy.json"
    both.write_text(json.dumps(json.loads((ws / "cloister-upgrade.json").read_text())["bothPolicy"]))
    r = mini(env, ws, "reboot", "2", "--image-version", "1", "--join-policy", str(both))
    assert r.returncode == 0, r.stdout + r.stderr
    log = node1 / "state" / "audit.log"
    wait_for(log, r'"verdict":"refused"')
    refused = [e for e in audit_entries(log) if e["verdict"] == "refused"]
    # Refused in the handshake, before it could name itself: its evidence judged, the PCR named.
    assert refused[0]["event"] == "refusal" and "PCR 11 differs" in refused[0]["reason"], refused
    r = owner(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 1 and re.search(r"mini-node-2\s+worker\s+FAILED", r.stdout), r.stdout


def test_upgrade_apply_killed_between_two_nodes_resumes_with_the_next_command(tmp_path, cluster):
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    p = subprocess.Popen([str(binary("cloister")), "-C", str(ws), "mini", "exec", "--",
                          *apply_args(m, pub)], cwd=ws.parent, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        for line in p.stdout:
            seen.append(line)
            if line.startswith("mini-node-2: a member again"):
                # Between the worker and the control plane: the CLI and whatever it started
                # (the next node's reboot may have begun), as a closed terminal would.
                os.killpg(p.pid, signal.SIGKILL)
                break
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
    assert any(x.startswith("mini-node-2: a member again") for x in seen), "".join(seen)
    state = json.loads((ws / "cloister-upgrade.json").read_text())
    assert state["step"] == "replace"
    assert {n["name"]: (n["rebooted"], n["upgraded"]) for n in state["nodes"]} == {
        "mini-node-2": (True, True), "mini-node-1": (False, False)}, state["nodes"]

    # Whatever the kill left of node1's reboot, the owner power-cycles it on image 1 and
    # recovers it: the cluster is half way, known.
    r = mini(env, ws, "reboot", "1", "--image-version", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(node1 / "bootstrapper.log", "serving recovery")
    r = owner(ws, env, "cloister", "recover")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(node1 / "bootstrapper.log", "serving joins")
    assert (node1 / "image-version").read_text().strip() == "1"

    # Half way, the cluster admits both images and says which node runs which: attested, not
    # taken from what the nodes report.
    for cmd in (["verify", "--cluster"], ["status"]):
        r = owner(ws, env, "cloister", *cmd)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"measurement set each node's attested PCRs match\):\n"
                         r"(  mini-node-\d +\S+\n){2}", r.stdout), r.stdout
        assert re.search(r"  mini-node-1 +current\n", r.stdout), r.stdout
        assert re.search(r"  mini-node-2 +2\n", r.stdout), r.stdout
    r = owner(ws, env, "cloister", "verify", "--node", "10.77.0.12:%d" % PORT)
    assert r.returncode == 0 and "the PCRs match measurement set '2'" in r.stdout, r.stdout

    # Without --measurements: nothing to start, so it says what it resumes.
    r = owner(ws, env, "cloister", "upgrade", "apply", "--dry-run")
    assert r.returncode == 0 and "2.1 replace mini-node-2" in r.stdout and "(done)" in r.stdout
    # The same command again resumes: the worker is not replaced a second time.
    r = owner(ws, env, *apply_args(m, pub))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming the upgrade 'current' -> '2' at step replace" in r.stdout
    assert "mini-node-2: replacing" not in r.stdout
    assert "mini-node-1: a member again, attested with measurement set '2'" in r.stdout
    assert "upgrade done" in r.stdout
    assert (node1 / "image-version").read_text().strip() == "2"
    r = owner(ws, env, "cloister", "verify", "--cluster")
    assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr
    # Done: a further run has nothing to resume and asks for the next image.
    r = owner(ws, env, "cloister", "upgrade", "apply")
    assert r.returncode != 0 and "no upgrade under way" in r.stderr, r.stderr


def test_upgrade_apply_refuses_to_start_while_a_node_fails_verification(tmp_path, cluster):
    ws, env = cluster
    node2 = ws / "cloister-mini" / "node2"
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    before = (ws / "cloister.json").read_bytes()
    # node2 measures something its image does not: it no longer verifies.
    subprocess.run(["tpm2_pcrextend", "9:sha256=" + hashlib.sha256(b"not the image").hexdigest()],
                   env={"TPM2TOOLS_TCTI": f"swtpm:path={node2 / 'tpm.sock'}", "PATH": "/usr/bin:/bin"},
                   check=True)
    r = owner(ws, env, *apply_args(m, pub))
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"mini-node-2\s+worker\s+FAILED", r.stdout), r.stdout
    assert "refused: the cluster does not verify as it is" in r.stderr, r.stderr
    assert "nothing was changed" in r.stderr
    assert (ws / "cloister.json").read_bytes() == before
    assert not (ws / "cloister-upgrade.json").exists()
    assert not (ws / "cloister-upgrade-target.json").exists()
    assert (node2 / "image-version").read_text().strip() == "1"
    r = owner(ws, env, "cloister", "status", "-o", "json")
    assert [js["policyVersion"] for js in json.loads(r.stdout)["joinServices"]] == [0]


def test_upgrade_apply_stops_at_a_node_that_does_not_come_back_and_says_how_to_resume(
        tmp_path, cluster):
    """A measurements file signed for image '2' whose PCRs are another build's: the worker
    booted from image 2 matches neither set, its rejoin is refused, and the roll stops there
    with the control plane untouched."""
    ws, env = cluster
    node1, node2 = ws / "cloister-mini" / "node1", ws / "cloister-mini" / "node2"
    wrong = json.loads(subprocess.run(
        [str(ROOT / "scripts" / "mini-boot-log"), "--predict", "--image-version", "3",
         "--measurements-version", "2"], capture_output=True, text=True, check=True).stdout)
    wrong["imageVersion"] = "2"
    m, pub, _ = signed_measurements(tmp_path, "2", 2)
    m.write_text(json.dumps(wrong))
    key = tmp_path / "key.pem"
    assert run("cloister-measure", "sign", "--key", key, m).returncode == 0

    r = owner(ws, env, "cloister", "upgrade", "apply", "--measurements", str(m), "--pubkey",
              str(pub), "--node-timeout", "15")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "mini-node-2: replacing" in r.stdout and "mini-node-1: replacing" not in r.stdout
    err = r.stderr
    assert "mini-node-2: not a member attested with '2' after 15 s" in err, err
    assert "upgrade stopped at step replace: a node did not come back with the new image" in err
    assert "upgraded to '2': none" in err, err
    assert "not upgraded (still 'current' or not verified): mini-node-2 (rebooted, not " \
           "verified) mini-node-1" in err, err
    assert "run 'cloister upgrade apply' again: it resumes from cloister-upgrade.json" in err
    state = json.loads((ws / "cloister-upgrade.json").read_text())
    assert state["step"] == "replace"
    assert (node1 / "image-version").read_text().strip() == "1"
    # The cluster admits both sets meanwhile; the worker's rejoin was refused, audited.
    assert json.loads((ws / "cloister.json").read_text())["policyVersion"] == 1
    refused = [e for e in audit_entries(node1 / "state" / "audit.log")
               if e["verdict"] == "refused"]
    assert refused and "match none of the policy's measurement sets" in refused[0]["reason"], \
        refused
