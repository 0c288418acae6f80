# SPDX-License-Identifier: Apache-2.0
"""The first slice through the product: the owner's CLI attests a node's bootstrapper over aTLS
and only then hands it the master secret; the node extends PCR 15 with the cluster ID, re-keys
its state disk to the derived disk key and runs kubeadm (a test double). Checked from outside
with independent tools: tpm2-tools for PCR 15, Python's cryptography for the disk key."""
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

from conftest import BUILD, ROOT, binary, run
from test_attestation_cli import ak_spki_b64


def tpm2_pcr15(swtpm):
    env = dict(os.environ, TPM2TOOLS_TCTI=swtpm.tcti)
    out = subprocess.run(["tpm2_pcrread", "sha256:15"], capture_output=True, text=True, env=env,
                         check=True).stdout
    return re.search(r"15\s*:\s*0x([0-9A-Fa-f]{64})", out).group(1).lower()


@pytest.fixture
def node(swtpm, tmp_path):
    """A node: swtpm, a state disk formatted with a first-boot key, and a pinned policy."""
    disk = tmp_path / "state.img"
    with open(disk, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    first = tmp_path / "first-boot.key"
    first.write_bytes(os.urandom(32))
    assert run("cloister-disk-mapper", "format", disk, "--key-file", first).returncode == 0
    ev = tmp_path / "ev.json"
    r = run("cloister", "attestation", "issue", "--tcti", swtpm.tcti, "--binding", "00" * 32,
            "--event-log", "", "--output-file", ev)
    assert r.returncode == 0, r.stderr
    evidence = json.loads(ev.read_text())
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({
        "version": 1, "variant": "qemu-vtpm",
        "measurements": {k: {"expected": v} for k, v in evidence["tpm"]["pcrs"].items()},
        "akTrust": {"mode": "pinned",
                    "akPublic": ak_spki_b64(base64.b64decode(evidence["tpm"]["akPublic"]))}}))
    state = tmp_path / "state"
    state.mkdir()
    init_secret = tmp_path / "init-secret"
    r = run("cloister", "init-secret", "generate", "--file", init_secret)
    assert r.returncode == 0, r.stderr
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"name": "node-1", "role": "control-plane",
                                    "initSecretHash": r.stdout.strip()}))
    return {"disk": disk, "first": first, "policy": policy, "state": state, "tmp": tmp_path,
            "init_secret": init_secret, "metadata": metadata}


def start_bootstrapper(swtpm, node, env=None, extra=()):
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                          "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                          "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                          "--kubeadm", str(ROOT / "tests" / "doubles" / "kubeadm"),
                          "--metadata", f"local:{node['metadata']}", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    m = re.search(r"serving init on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        pytest.fail("bootstrapper did not start: " + line + p.stderr.read())
    return p, f"https://127.0.0.1:{m.group(1)}"


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)


def test_apply_initialises_the_node_end_to_end(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy", node["policy"],
                "--master-secret", ms, "--cluster-name", "demo", "--kubeconfig",
                tmp_path / "admin.conf")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        stop(p)
    cluster_id = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)

    # PCR 15 = SHA-256(0^32 || SHA-256(cluster ID)), read with tpm2-tools.
    want = hashlib.sha256(bytes(32) + hashlib.sha256(bytes.fromhex(cluster_id)).digest()).hexdigest()
    assert tpm2_pcr15(swtpm) == want

    # The disk now opens with the disk key derived independently, and no longer with the
    # first-boot key.
    secret = json.loads(ms.read_text())
    uuid = re.search(r"UUID ([0-9a-f-]{36})", run("cloister-disk-mapper", "check", node["disk"]).stdout).group(1)
    disk_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(secret["salt"]),
                    info=("cloister/v1/disk/" + uuid).encode()).derive(base64.b64decode(secret["key"]))
    (tmp_path / "disk.key").write_bytes(disk_key)
    r = run("cloister-disk-mapper", "check", node["disk"], "--key-file", tmp_path / "disk.key")
    assert r.returncode == 0 and "state initialized" in r.stdout, r.stderr
    assert run("cloister-disk-mapper", "check", node["disk"], "--key-file", node["first"]).returncode == 1

    # kubeadm ran with a checked configuration; the kubeconfig reached the owner, 0600.
    assert "name: demo" in (tmp_path / "admin.conf").read_text()
    assert oct((tmp_path / "admin.conf").stat().st_mode & 0o777) == "0o600"
    state = json.loads((node["state"] / "node-state.json").read_text())
    assert state["clusterId"] == cluster_id


def test_initialised_node_refuses_to_serve_init_again(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy", node["policy"],
                "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
    finally:
        stop(p)
    p = subprocess.run([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                        "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                        "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                        "--metadata", f"local:{node['metadata']}"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "PCR 15 is already extended" in p.stderr


def test_apply_refuses_a_node_that_fails_attestation_and_sends_nothing(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    pol = json.loads(node["policy"].read_text())
    pol["measurements"]["4"]["expected"] = "ab" * 32
    bad = tmp_path / "bad-policy.json"
    bad.write_text(json.dumps(pol))
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy", bad, "--master-secret", ms,
                "--kubeconfig", tmp_path / "a.conf")
    finally:
        stop(p)
    assert r.returncode == 1
    assert "PCR 4 differs" in r.stderr
    # Nothing happened on the node: still keyed with the first-boot key, PCR 15 zero.
    assert run("cloister-disk-mapper", "check", node["disk"], "--key-file", node["first"]).returncode == 0
    assert tpm2_pcr15(swtpm) == "00" * 32
    assert not (tmp_path / "a.conf").exists()


def test_apply_refuses_an_existing_kubeconfig_before_contacting_the_node(tmp_path):
    kc = tmp_path / "admin.conf"
    kc.write_text("precious")
    # The endpoint is a closed port: the refusal must come before any connection.
    r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--endpoint", "https://127.0.0.1:1", "--policy", tmp_path / "p.json",
            "--kubeconfig", kc)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert kc.read_text() == "precious"


def test_verify_shows_the_cluster_id_in_pcr15_and_refuses_another(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy", node["policy"],
                "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
        cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
        # The pinned policy from before init expects PCR 15 = 0: drop that entry, --cluster-id
        # supplies the expected value.
        pol = json.loads(node["policy"].read_text())
        del pol["measurements"]["15"]
        after = tmp_path / "after.json"
        after.write_text(json.dumps(pol))
        ok = run("cloister", "verify", "--endpoint", url, "--policy", after, "--cluster-id", cid,
                 "-o", "json")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        out = json.loads(ok.stdout)
        # A fresh nonce per connection: the verdict covers freshness, and the JSON says so.
        assert out["verdict"]["result"] == "pass" and out["verdict"]["freshness"] == "checked"
        assert any(c["name"] == "pcr" and c["index"] == 15 and c["result"] == "pass"
                   for c in out["checks"])
        bad = run("cloister", "verify", "--endpoint", url, "--policy", after, "--cluster-id",
                  "11" * 32)
        assert bad.returncode == 1
        assert "FAIL  pcr[15]" in bad.stdout
    finally:
        stop(p)


def stop_and_log(p):
    stop(p)
    return p.stderr.read()


def untouched(swtpm, node):
    """The node did nothing: still keyed with the first-boot key, PCR 15 zero, no state."""
    assert run("cloister-disk-mapper", "check", node["disk"], "--key-file",
               node["first"]).returncode == 0
    assert tpm2_pcr15(swtpm) == "00" * 32
    assert not (node["state"] / "node-state.json").exists()


def test_a_node_whose_pcr15_names_a_cluster_refuses_an_init_for_another(swtpm, node, tmp_path):
    """One shot: once PCR 15 holds a cluster, the only init a node takes is that cluster's again.
    Here PCR 15 changes while it serves (extended from outside, as no node does), and an init
    for another cluster comes raw (join-probe: the CLI attests PCR 15 and would refuse first).
    The node answers 409 already-member and touches nothing."""
    cid = "cd" * 32
    p, url = start_bootstrapper(swtpm, node)
    try:
        subprocess.run(["tpm2_pcrextend", "15:sha256=" + hashlib.sha256(
            bytes.fromhex(cid)).hexdigest()], check=True,
            env=dict(os.environ, TPM2TOOLS_TCTI=swtpm.tcti))
        pcr15 = tpm2_pcr15(swtpm)
        body = {"masterSecret": base64.b64encode(os.urandom(32)).decode(),
                "salt": base64.b64encode(os.urandom(32)).decode(),
                "measurementSalt": base64.b64encode(os.urandom(32)).decode(),
                "clusterName": "other", "kubernetesVersion": json.loads(
                    (ROOT / "image" / "kubernetes.json").read_text())["version"],
                "initSecret": node["init_secret"].read_text().strip()}
        (tmp_path / "init.json").write_text(json.dumps(body))
        r = subprocess.run([str(BUILD / "tests" / "join-probe"), "--no-attest", "--policy",
                            str(node["policy"]), "--cluster-id", cid, "--url", url, "--post",
                            "/v1/init", "--body", str(tmp_path / "init.json")],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode == 1 and "HTTP 409" in out, out
        assert "already a member of another cluster" in out and "already-member" in out, out
        assert tpm2_pcr15(swtpm) == pcr15
        assert run("cloister-disk-mapper", "check", node["disk"], "--key-file",
                   node["first"]).returncode == 0
        assert not (node["state"] / "node-state.json").exists()
    finally:
        stop(p)


def test_wrong_init_secret_is_refused_and_the_node_stays_uninitialised(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    other = tmp_path / "other-secret"
    assert run("cloister", "init-secret", "generate", "--file", other).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", other, "--endpoint", url, "--policy",
                node["policy"], "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 1
        assert "HTTP 403" in r.stderr and "does not match the node's metadata" in r.stderr
        untouched(swtpm, node)
        # The owner, with the right secret, still can.
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url,
                "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
    finally:
        stop(p)


def test_node_whose_pcr11_differs_is_refused_and_receives_no_init_request(swtpm, node, tmp_path):
    """The policy was recorded from the node's boot; then one more PCR 11 event (as if one UKI
    section had changed). apply must refuse before sending anything."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    env = dict(os.environ, TPM2TOOLS_TCTI=swtpm.tcti)
    subprocess.run(["tpm2_pcrextend", "11:sha256=" + "5a" * 32], env=env, check=True,
                   capture_output=True)
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url,
                "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                tmp_path / "a.conf")
    finally:
        log = stop_and_log(p)
    assert r.returncode == 1
    expected = json.loads(node["policy"].read_text())["measurements"]["11"]["expected"]
    assert "PCR 11 differs" in r.stderr and expected in r.stderr
    assert "init request received" not in log
    untouched(swtpm, node)


def test_two_owners_racing_to_init_exactly_one_wins(swtpm, node, tmp_path):
    procs = []
    p, url = start_bootstrapper(swtpm, node)
    try:
        for i in range(2):
            ms = tmp_path / f"ms{i}.json"
            assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
            procs.append(subprocess.Popen(
                [str(binary("cloister")), "apply", "--state-file", str(tmp_path / f"state{i}.json"),
                 "--init-secret-file", str(node["init_secret"]),
                 "--endpoint", url, "--policy", str(node["policy"]), "--master-secret", str(ms),
                 "--kubeconfig", str(tmp_path / f"a{i}.conf")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path))
        results = [(q.wait(timeout=120), q.stdout.read(), q.stderr.read()) for q in procs]
    finally:
        stop(p)
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1], results
    loser = [err for rc, _, err in results if rc == 1][0]
    # Refused by attestation (PCR 15 already extended), by the node's state (GET /v1/node) or
    # by the node (409, code already-member): each says it in words, nothing about PCRs.
    assert re.search(r"is already a member of (a|another) cluster", loser), loser
    assert "PCR" not in loser, loser
    winner = [out for rc, out, _ in results if rc == 0][0]
    cid = re.search(r"cluster ID: ([0-9a-f]{64})", winner).group(1)
    state = json.loads((node["state"] / "node-state.json").read_text())
    assert state["clusterId"] == cid


def test_apply_without_the_init_secret_file_is_one_clear_line(tmp_path, swtpm, node):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", tmp_path / "none", "--endpoint",
            "https://127.0.0.1:1", "--policy", node["policy"], "--master-secret", ms,
            "--kubeconfig", tmp_path / "a.conf")
    assert r.returncode == 1 and "cannot read the init secret" in r.stderr
    assert "cloister init-secret generate" in r.stderr
    assert r.stderr.strip().count("\n") == 0


KUBEADM = ROOT / "tests" / "doubles" / "kubeadm"


def test_kubeadm_config_is_v1beta4_hardened_and_admin_conf_is_signed_by_the_ca(swtpm, node,
                                                                                 tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url,
                "--policy", node["policy"], "--master-secret", ms, "--cluster-name", "prod",
                "--service-cidr", "10.100.0.0/16", "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
    finally:
        stop(p)
    text = (node["state"] / "kubeadm-config.yaml").read_text()
    init, cluster = (json.loads(d) for d in text.split("\n---\n"))
    assert init["nodeRegistration"]["name"] == "node-1"
    assert init["localAPIEndpoint"]["advertiseAddress"] == "127.0.0.1"
    assert cluster["networking"]["serviceSubnet"] == "10.100.0.0/16"
    args = {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}
    assert args["profiling"] == "false" and args["tls-min-version"] == "VersionTLS13"
    assert os.path.exists(args["audit-policy-file"]) and args["audit-log-path"]
    # admin.conf as kubeadm writes it: a client certificate the cluster CA signed.
    conf = (tmp_path / "a.conf").read_text()
    ca = x509.load_pem_x509_certificate((node["state"] / "pki" / "ca.crt").read_bytes())
    client = x509.load_pem_x509_certificate(base64.b64decode(
        re.search(r"client-certificate-data: (\S+)", conf).group(1)))
    ca.public_key().verify(client.signature, client.tbs_certificate_bytes,
                           ec.ECDSA(client.signature_hash_algorithm))
    assert "server: https://127.0.0.1:6443" in conf


def _double(cfg_text, tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    cfg = d / "kubeadm-config.yaml"
    cfg.write_text(cfg_text)
    cfg.chmod(0o600)
    return subprocess.run([str(KUBEADM), "init", "--config", str(cfg), "--skip-token-print"],
                          capture_output=True, text=True)


@pytest.mark.parametrize("mutation,why", [
    (lambda i, c: c.update(apiVersion="kubeadm.k8s.io/v1beta3"), "must be kubeadm.k8s.io/v1beta4"),
    (lambda i, c: c["apiServer"].update(extraArgs={"profiling": "false"}),
     "must be a list of {name, value}"),
    (lambda i, c: c["apiServer"]["extraArgs"].pop(0), "profiling must be 'false'"),
    (lambda i, c: c["networking"].update(serviceSubnet="10.0.0.0/33"), "serviceSubnet is not a CIDR"),
    (lambda i, c: i["nodeRegistration"].update(name="Node_1"), "not a DNS-1123 subdomain"),
    (lambda i, c: c.update(bogus=1), "unknown fields ['bogus']"),
    (lambda i, c: c["scheduler"]["extraArgs"].clear(), "scheduler.extraArgs profiling"),
])
def test_kubeadm_double_refuses_a_malformed_config(swtpm, node, tmp_path, mutation, why):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        assert run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint",
                   url, "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                   tmp_path / "a.conf").returncode == 0
    finally:
        stop(p)
    text = (node["state"] / "kubeadm-config.yaml").read_text()
    assert _double(text, tmp_path, "good").returncode == 0
    init, cluster = (json.loads(d) for d in text.split("\n---\n"))
    mutation(init, cluster)
    r = _double(json.dumps(init) + "\n---\n" + json.dumps(cluster), tmp_path, "bad")
    assert r.returncode != 0 and why in r.stderr, r.stderr


def test_bad_service_cidr_is_refused_before_the_node_changes(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json", "--init-secret-file", node["init_secret"], "--endpoint", url,
                "--policy", node["policy"], "--master-secret", ms, "--service-cidr",
                "10.0.0.0/30", "--kubeconfig", tmp_path / "a.conf")
    finally:
        stop(p)
    assert r.returncode == 1 and "HTTP 400" in r.stderr and "serviceCidr" in r.stderr
    untouched(swtpm, node)


def test_init_of_another_kubernetes_release_than_the_image_carries_is_refused_and_the_release_recorded(
        swtpm, node, tmp_path):
    """The control plane runs the release its image carries (os-release KUBERNETES_VERSION), and
    records it in its node state (docs/upgrade.md, "Kubernetes versions")."""
    pinned = json.loads((ROOT / "image" / "kubernetes.json").read_text())["version"]
    osrel = tmp_path / "os-release"
    osrel.write_text('IMAGE_VERSION="1"\nKUBERNETES_VERSION="v1.34.3"\n')
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    env = dict(os.environ, KUBEADM_DOUBLE_OS_RELEASE=str(osrel))
    p, url = start_bootstrapper(swtpm, node, env=env, extra=("--os-release", str(osrel)))
    try:
        args = ["--state-file", tmp_path / "cloister-state.json", "--init-secret-file",
                node["init_secret"], "--endpoint", url, "--policy", node["policy"],
                "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf"]
        r = run("cloister", "apply", *args)  # the CLI's default: the pinned release
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"this node's image carries Kubernetes v1.34.3, not {pinned}" in r.stderr, r.stderr
        assert "--kubernetes-version v1.34.3" in r.stderr
        untouched(swtpm, node)
        r = run("cloister", "apply", *args, "--kubernetes-version", "v1.34.3")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        stop(p)
    assert json.loads((node["state"] / "node-state.json").read_text())["kubernetesVersion"] == \
        "v1.34.3"
    # The double ran as the image's release and recorded the cluster's.
    assert (node["state"] / "kubernetes-version").read_text().strip() == "v1.34.3"


def test_cli_default_kubernetes_version_is_the_pinned_one():
    pinned = json.loads((ROOT / "image" / "kubernetes.json").read_text())
    r = run("cloister", "apply", "--help")
    assert pinned["version"] in r.stdout
    assert pinned["baseUrl"] == f"https://dl.k8s.io/release/{pinned['version']}/"
    for name, b in pinned["binaries"].items():
        assert b["path"] == f"bin/linux/amd64/{name}"
        assert b["checksumUrl"] == f"{pinned['baseUrl']}{b['path']}.sha256"


def test_apply_again_with_the_state_file_attests_and_changes_nothing(swtpm, node, tmp_path):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    state = tmp_path / "cloister-state.json"
    p, url = start_bootstrapper(swtpm, node)
    try:
        args = ["--state-file", state, "--init-secret-file", node["init_secret"], "--endpoint",
                url, "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                tmp_path / "a.conf"]
        first = run("cloister", "apply", *args)
        assert first.returncode == 0, first.stderr
        recorded = json.loads(state.read_text())
        assert recorded["endpoint"] == url and oct(state.stat().st_mode & 0o777) == "0o600"
        pcr15 = tpm2_pcr15(swtpm)
        again = run("cloister", "apply", *args)
        assert again.returncode == 0, again.stderr
        assert "already initialised and the node attests as its member" in again.stdout
        assert recorded["clusterId"] in again.stdout
        assert tpm2_pcr15(swtpm) == pcr15  # nothing was extended again
        # Another master secret is not this cluster's.
        other = tmp_path / "other.json"
        assert run("cloister", "master-secret", "generate", "--file", other).returncode == 0
        r = run("cloister", "apply", *args[:-4], "--master-secret", other, "--kubeconfig",
                tmp_path / "a.conf")
        assert r.returncode == 1 and "is not the master secret of cluster" in r.stderr
    finally:
        log = stop_and_log(p)
    assert log.count("init request received") == 1


def test_bootstrapper_tells_systemd_it_is_ready_once_listening(swtpm, node, tmp_path):
    import socket
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(30)
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                          "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                          "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                          "--metadata", f"local:{node['metadata']}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    try:
        msg = s.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        assert "serving init" in p.stdout.readline()
    finally:
        stop(p)
        s.close()


def test_verify_by_node_address_ends_with_one_verdict_line(swtpm, node, tmp_path):
    p, url = start_bootstrapper(swtpm, node)
    try:
        hostport = url[len("https://"):]
        ok = run("cloister", "verify", "--node", hostport, "--policy", node["policy"])
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert ok.stdout.rstrip().splitlines()[-1] == "Verification OK"
        pol = json.loads(node["policy"].read_text())
        pol["measurements"]["11"]["expected"] = "cd" * 32
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(pol))
        r = run("cloister", "verify", "--node", hostport, "--policy", bad)
        assert r.returncode == 1
        last = r.stdout.rstrip().splitlines()[-1]
        assert last.startswith("Verification FAILED: ") and "PCR 11" in last
    finally:
        stop(p)
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--policy", node["policy"])
    assert r.returncode == 1
    assert r.stdout.rstrip().splitlines()[-1].startswith("Verification FAILED: ")



def test_init_that_failed_after_pcr15_resumes_with_the_recorded_salt(swtpm, node, tmp_path):
    """kubeadm fails after the node extended PCR 15: the owner's state file says 'pending', and
    running apply again resumes the same init (same cluster ID) instead of being refused."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    flag = tmp_path / "fail-once"
    flag.write_text("x")
    state = tmp_path / "cloister-state.json"
    p, url = start_bootstrapper(swtpm, node, env=dict(os.environ,
                                                      KUBEADM_DOUBLE_FAIL_ONCE=str(flag)))
    try:
        args = ["--state-file", state, "--init-secret-file", node["init_secret"], "--endpoint",
                url, "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                tmp_path / "a.conf"]
        # cwd: the failed apply saves the node's log in the workspace (the current directory).
        first = run("cloister", "apply", *args, cwd=tmp_path)
        assert first.returncode == 1 and "kubeadm init failed" in first.stderr, first.stderr
        pending = json.loads(state.read_text())
        assert pending["status"] == "pending"
        pcr15 = tpm2_pcr15(swtpm)
        assert pcr15 != "00" * 32
        again = run("cloister", "apply", *args)
        assert again.returncode == 0, again.stderr
        assert pending["clusterId"] in again.stdout
        assert json.loads(state.read_text())["status"] == "initialized"
        assert tpm2_pcr15(swtpm) == pcr15  # extended once, not twice
    finally:
        log = stop_and_log(p)
    assert "resuming the init" in log


def test_apply_whose_answer_was_lost_resumes_against_the_join_service(swtpm, node, tmp_path):
    """The node finished init and handed over to its join service, but the owner never saw the
    answer (state still pending, no kubeconfig): apply again gets it, nothing is redone."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    state = tmp_path / "cloister-state.json"
    kubeconfig = tmp_path / "a.conf"
    p, url = start_bootstrapper(swtpm, node)
    try:
        args = ["--state-file", state, "--init-secret-file", node["init_secret"], "--endpoint",
                url, "--policy", node["policy"], "--master-secret", ms, "--kubeconfig",
                kubeconfig]
        assert run("cloister", "apply", *args).returncode == 0
        recorded = json.loads(state.read_text())
        recorded["status"] = "pending"
        state.write_text(json.dumps(recorded))
        kubeconfig.unlink()
        again = run("cloister", "apply", *args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert recorded["clusterId"] in again.stdout and "kubernetes-admin" in kubeconfig.read_text()
        assert json.loads(state.read_text())["status"] == "initialized"
    finally:
        log = stop_and_log(p)
    assert log.count("init request received") == 1 and "answering it again" in log


def test_hand_over_to_the_join_service_never_tells_systemd_stopping(swtpm, node, tmp_path):
    """After init the bootstrapper execs the join service in its place: a service manager must
    see READY=1 again and never STOPPING=1 (it would kill the join service at its stop timeout)."""
    import socket
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(30)
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                          "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                          "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                          "--kubeadm", str(ROOT / "tests" / "doubles" / "kubeadm"),
                          "--metadata", f"local:{node['metadata']}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, NOTIFY_SOCKET=sock_path))
    messages = []
    try:
        messages.append(s.recv(4096).decode())
        url = "https://" + re.search(r"on (127\.0\.0\.1:\d+)", p.stdout.readline()).group(1)
        r = run("cloister", "apply", "--state-file", tmp_path / "st.json", "--init-secret-file",
                node["init_secret"], "--endpoint", url, "--policy", node["policy"],
                "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
        messages.append(s.recv(4096).decode())  # the join service's READY=1
        assert "serving joins" in p.stdout.readline()
    finally:
        stop(p)
    s.settimeout(2)
    try:
        while True:
            messages.append(s.recv(4096).decode())
    except OSError:
        pass
    s.close()
    lines = [m for msg in messages for m in msg.split("\n") if m]
    assert lines[:2] == ["READY=1", "READY=1"], lines
    # STOPPING=1 only once, at the very end, when the join service itself was asked to stop.
    assert lines.count("STOPPING=1") == 1 and lines[-1] == "STOPPING=1", lines


# --- the kubeadm double's offline join (VMs: a worker cannot read the control plane's state) ----

def _join_config(**change):
    jc = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
          "discovery": {"bootstrapToken": {"apiServerEndpoint": "10.0.0.2:6443",
                                           "token": "abcdef.0123456789abcdef",
                                           "caCertHashes": ["sha256:" + "ab" * 32]}},
          "nodeRegistration": {"name": "worker-1",
                               "criSocket": "unix:///run/containerd/containerd.sock",
                               "kubeletExtraArgs": [{"name": "node-ip", "value": "10.0.0.3"}]}}
    for path, value in change.items():
        *parents, leaf = path.split("__")
        obj = jc
        for p in parents:
            obj = obj[p]
        if value is None:
            obj.pop(leaf)
        else:
            obj[leaf] = value
    return jc


def _double_join(tmp_path, jc, env, mode=0o600):
    cfg = tmp_path / "kubeadm-join.yaml"
    cfg.write_text(json.dumps(jc))
    cfg.chmod(mode)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBEADM_DOUBLE_")}
    return subprocess.run([str(KUBEADM), "join", "--config", str(cfg)], capture_output=True,
                          text=True, env={**clean, **env})


def test_kubeadm_double_joins_offline_and_says_what_it_could_not_check(tmp_path):
    r = _double_join(tmp_path, _join_config(), {"KUBEADM_DOUBLE_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("kubeadm double: offline (KUBEADM_DOUBLE_OFFLINE=1): the token and the "
                        "CA pin are well-formed but could not be checked against a control "
                        "plane"), r.stdout
    assert lines[1] == "kubeadm double: worker-1 joined as a worker"
    assert "server: https://10.0.0.2:6443" in (tmp_path / "kubelet.conf").read_text()
    # A control plane: its certificate key's format is checked too; no CA or admin.conf copied.
    cp = _join_config(controlPlane={"localAPIEndpoint": {"advertiseAddress": "10.0.0.3",
                                                         "bindPort": 6443},
                                    "certificateKey": "0f" * 32})
    r = _double_join(tmp_path, cp, {"KUBEADM_DOUBLE_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    assert "the token, the CA pin and the certificate key are well-formed" in r.stdout
    assert "joined as a control plane" in r.stdout
    assert not (tmp_path / "admin.conf").exists() and not (tmp_path / "pki").exists()


@pytest.mark.parametrize("change,why", [
    ({"discovery__bootstrapToken__token": "ABCDEF.0123456789abcdef"}, "token is malformed"),
    ({"discovery__bootstrapToken__caCertHashes": ["sha256:abc"]}, "one sha256:<hex> pin"),
    ({"discovery__bootstrapToken__caCertHashes": None}, "the CA pin is required"),
    ({"discovery__bootstrapToken__unsafeSkipCAVerification": True}, "unsafe or missing"),
    ({"discovery__bootstrapToken__apiServerEndpoint": "10.0.0.2"}, "not host:port"),
    ({"nodeRegistration__name": "Worker_1"}, "not a DNS-1123 label"),
    ({"bogus": 1}, "unknown fields ['bogus']"),
    ({"controlPlane": {"localAPIEndpoint": {"advertiseAddress": "10.0.0.3", "bindPort": 6443},
                       "certificateKey": "0F" * 32}}, "certificateKey must be 64 hex digits"),
    ({"controlPlane": {"localAPIEndpoint": {"advertiseAddress": "10.0.0.3", "bindPort": 6443},
                       "certificateKey": "0f" * 31}}, "certificateKey must be 64 hex digits"),
    ({"controlPlane": {"localAPIEndpoint": {"advertiseAddress": "node", "bindPort": 6443},
                       "certificateKey": "0f" * 32}}, "advertiseAddress is not an IP address"),
])
def test_kubeadm_double_offline_still_refuses_a_malformed_join_config(tmp_path, change, why):
    r = _double_join(tmp_path, _join_config(**change), {"KUBEADM_DOUBLE_OFFLINE": "1"})
    assert r.returncode != 0 and why in r.stderr, r.stderr
    assert not (tmp_path / "kubelet.conf").exists()


def test_kubeadm_double_join_without_a_cluster_or_offline_fails_as_before(tmp_path):
    for env in ({}, {"KUBEADM_DOUBLE_OFFLINE": "0"}, {"KUBEADM_DOUBLE_OFFLINE": "yes"}):
        r = _double_join(tmp_path, _join_config(), env)
        assert r.returncode != 0, env
        assert "KUBEADM_DOUBLE_CLUSTER must name the control plane's state directory" in r.stderr
        assert not (tmp_path / "kubelet.conf").exists()
    # The token file is refused when others may read it, offline too.
    r = _double_join(tmp_path, _join_config(), {"KUBEADM_DOUBLE_OFFLINE": "1"}, mode=0o640)
    assert r.returncode != 0 and "must not be readable by others" in r.stderr


def test_init_secret_guessing_is_deferred_and_the_node_keeps_answering(swtpm, node, tmp_path):
    """Each wrong init secret costs the node one scrypt. Thirty guesses at once: after the first
    failure the address waits (429, no scrypt), GET /v1/node is answered meanwhile (handlers run
    beside the event loop), and the owner's apply then initialises the node, waiting its turn."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    other = tmp_path / "other-secret"
    assert run("cloister", "init-secret", "generate", "--file", other).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        guesses = [subprocess.Popen(
            [str(binary("cloister")), "apply", "--state-file", str(tmp_path / f"s{i}.json"),
             "--init-secret-file", str(other), "--endpoint", url, "--policy", str(node["policy"]),
             "--master-secret", str(ms), "--kubeconfig", str(tmp_path / f"k{i}.conf"),
             "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(30)]
        r = run("cloister", "verify", "--node", url.removeprefix("https://"), "--policy",
                node["policy"])
        assert r.returncode == 0, r.stdout + r.stderr
        # Our own CLI retries a 429: the guessers would go on; they are stopped here.
        time.sleep(3)
        for g in guesses:
            g.terminate()
        for g in guesses:
            g.wait(timeout=30)
        untouched(swtpm, node)
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json",
                "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy",
                node["policy"], "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
    finally:
        log = stop_and_log(p)
    checked = log.count("init refused")
    # Far fewer scrypts than guesses: only those the backoff let through.
    assert 1 <= checked <= 10, log


def test_a_second_wrong_init_secret_from_the_same_address_waits_out_its_backoff(swtpm, node,
                                                                              tmp_path):
    """One wrong init secret, then another from the same address right after: the second is not
    checked at once but deferred (429, 'try again in N s'; our CLI waits and asks again), which the
    global limit of a few attempts per second alone would not do for two attempts."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    other = tmp_path / "other-secret"
    assert run("cloister", "init-secret", "generate", "--file", other).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        outs = []
        for i in range(2):
            r = run("cloister", "apply", "--state-file", tmp_path / f"s{i}.json",
                    "--init-secret-file", other, "--endpoint", url, "--policy", node["policy"],
                    "--master-secret", ms, "--kubeconfig", tmp_path / f"k{i}.conf",
                    "--timeout", "60")
            assert r.returncode != 0, r.stdout + r.stderr
            outs.append(r.stderr)
        assert "defers init attempts" not in outs[0], outs[0]
        assert "too many wrong init secrets from 127.0.0.1: try again in" in outs[1], outs[1]
        untouched(swtpm, node)
    finally:
        log = stop_and_log(p)
    # Both were checked in the end (the second after its wait), each once.
    assert log.count("init refused") == 2, log


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_sigterm_while_the_bootstrapper_hands_over_to_the_join_service_stops_the_node(
        swtpm, node, tmp_path, delay):
    """Right after init the bootstrapper ends its server and execs the join service: a SIGTERM
    in that window is never lost (before, one that came after the event loop ended sat in
    libevent's pipe and the join service then ran on forever)."""
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    p, url = start_bootstrapper(swtpm, node)
    try:
        r = run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json",
                "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy",
                node["policy"], "--master-secret", ms, "--kubeconfig", tmp_path / "a.conf")
        assert r.returncode == 0, r.stderr
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
            pytest.fail("the node did not stop on SIGTERM during the handover")
