# SPDX-License-Identifier: Apache-2.0
"""A control plane's bootstrapper with --etcd-membership (docs/membership.md, "In the node
image"): after kubeadm init (the test double) it issues the join service's own etcd client
certificate from kubeadm's etcd CA and hands over to a join service that keeps the membership in
etcd. The etcd is a real one (Debian's etcd-server) whose CA is the one kubeadm found in its
certificatesDir, as kubeadm keeps an existing CA; the certificate is checked with openssl, and
etcd itself accepting it (the join service registering its own node there) proves it works."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, binary, run
from etcd_cluster import EtcdCluster
from test_bootstrapper_init import node, stop  # noqa: F401 (fixture)
from test_join import cluster  # noqa: F401 (fixture)

KUBEADM = ROOT / "tests" / "doubles" / "kubeadm"


@pytest.fixture
def etcd1(tmp_path):
    """One etcd member with TLS on a loopback port."""
    c = EtcdCluster(tmp_path / "etcd", size=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def start(swtpm, node, *extra):
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                          "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                          "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                          "--kubeadm", str(KUBEADM), "--metadata", f"local:{node['metadata']}",
                          *map(str, extra)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"serving init on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        pytest.fail("bootstrapper did not start: " + line + p.stderr.read())
    return p, f"https://127.0.0.1:{m.group(1)}"


def apply(node, tmp_path, url):
    ms = tmp_path / "ms.json"
    assert run("cloister", "master-secret", "generate", "--file", ms).returncode == 0
    return run("cloister", "apply", "--state-file", tmp_path / "cloister-state.json",
               "--init-secret-file", node["init_secret"], "--endpoint", url, "--policy",
               node["policy"], "--master-secret", ms, "--kubeconfig", tmp_path / "admin.conf")


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")[:-1]


def wait_for_join_service(p, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert p.poll() is None, p.stderr.read()
        argv = cmdline(p.pid)
        if argv and argv[0].endswith("cloister-join-service"):
            return argv
        time.sleep(0.2)
    pytest.fail("the bootstrapper did not hand over to the join service")


def option(argv, name):
    assert argv.count(name) == 1, argv
    return argv[argv.index(name) + 1]


def test_init_hands_over_to_a_join_service_with_its_own_etcd_certificate_from_kubeadms_etcd_ca(
        swtpm, node, tmp_path, etcd1):
    pki = node["state"] / "pki"
    (pki / "etcd").mkdir(parents=True)
    # The cluster's etcd runs with this CA; kubeadm finds it in its certificatesDir and keeps it.
    shutil.copy(etcd1.pki / "etcd-ca.crt", pki / "etcd" / "ca.crt")
    shutil.copy(etcd1.pki / "etcd-ca.key", pki / "etcd" / "ca.key")
    p, url = start(swtpm, node, "--etcd-membership", "--kubernetes-pki", pki,
                   "--etcd-local-endpoint", etcd1.endpoints)
    try:
        r = apply(node, tmp_path, url)
        assert r.returncode == 0, r.stdout + r.stderr
        cluster_id = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
        argv = wait_for_join_service(p)
        # The kubeadm configuration named the certificatesDir (the double checked it).
        docs = (node["state"] / "kubeadm-config.yaml").read_text().split("\n---\n")
        assert json.loads(docs[1])["certificatesDir"] == str(pki)

        # The join service talks to the local member with its own certificate.
        assert option(argv, "--etcd-endpoints") == etcd1.endpoints
        crt, key = option(argv, "--etcd-cert"), option(argv, "--etcd-key")
        assert option(argv, "--etcd-ca") == str(pki / "etcd" / "ca.crt")
        assert crt == str(node["state"] / "etcd-client.crt")
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        v = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile",
                            pki / "etcd" / "ca.crt", crt], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", crt],
                              capture_output=True, text=True, check=True).stdout
        assert "CN = cloister-join-service" in text and "TLS Web Client Authentication" in text
        assert "TLS Web Server Authentication" not in text and "CA:FALSE" in text
        # Its own key: not etcd's test client key, nor kubeadm's CA key.
        assert open(key).read() not in ((etcd1.pki / "join-service.key").read_text(),
                                        (pki / "etcd" / "ca.key").read_text())

        # etcd accepted it: the join service registered its own node in the membership there.
        deadline = time.time() + 60
        while True:
            kv = etcd1.get_prefix(f"/cloister/v1/{cluster_id}/members/")
            if kv:
                break
            assert time.time() < deadline and p.poll() is None, p.stderr.read()
            time.sleep(0.5)
        record = json.loads(kv[f"/cloister/v1/{cluster_id}/members/node-1"])
        assert record["role"] == "control-plane"
        key_pem = open(key).read()
    finally:
        stop(p)
    out, err = p.communicate()
    body = "".join(key_pem.strip().splitlines()[1:-1])
    assert body[:40] not in out + err, "the etcd client key reached the log"
    assert "Sanitizer" not in err and "runtime error" not in err, err

    # The double checks what it is given: certificatesDir absolute, an existing etcd CA only
    # with its own key.
    init, cluster = (json.loads(d) for d in docs)
    cfg = tmp_path / "double" / "kubeadm-config.yaml"
    cfg.parent.mkdir()

    def double(c):
        cfg.write_text(json.dumps(init) + "\n---\n" + json.dumps(c))
        cfg.chmod(0o600)
        return subprocess.run([str(KUBEADM), "init", "--config", str(cfg), "--skip-token-print"],
                              capture_output=True, text=True)
    r = double(dict(cluster, certificatesDir="pki"))
    assert r.returncode != 0 and "certificatesDir must be an absolute" in r.stderr, r.stderr
    other = tmp_path / "other-pki"
    (other / "etcd").mkdir(parents=True)
    shutil.copy(pki / "etcd" / "ca.crt", other / "etcd" / "ca.crt")
    shutil.copy(etcd1.pki / "stranger.key", other / "etcd" / "ca.key")
    r = double(dict(cluster, certificatesDir=str(other)))
    assert r.returncode != 0 and "is not a CA certificate whose key is" in r.stderr, r.stderr
    fresh = tmp_path / "fresh-pki"
    r = double(dict(cluster, certificatesDir=str(fresh)))
    assert r.returncode == 0, r.stderr
    v = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", fresh / "etcd" / "ca.crt"],
                       capture_output=True, text=True, check=True)
    assert "etcd-ca" in v.stdout


@pytest.mark.parametrize("after,why", [
    ("rm -f ca.key", "Cannot read kubeadm's etcd CA key {pki}/etcd/ca.key"),
    ("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key",
     "{pki}/etcd/ca.crt is not a CA certificate whose key is {pki}/etcd/ca.key"),
])
def test_init_with_etcd_membership_but_no_usable_etcd_ca_starts_no_join_service_and_says_why(
        swtpm, node, tmp_path, after, why):
    """A kubeadm that left no etcd CA key (an external etcd, a failed phase), or a key that is
    not the CA's: nothing to issue the certificate from, and the node does not fall back to local
    files: it says why."""
    pki = node["state"] / "pki"
    wrapper = tmp_path / "kubeadm"
    wrapper.write_text(f"#!/bin/sh\n'{KUBEADM}' \"$@\" || exit $?\n"
                       f"cd '{pki}/etcd' && {after}\n")
    wrapper.chmod(0o755)
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--tcti", swtpm.tcti,
                          "--listen", "127.0.0.1:0", "--state-disk", str(node["disk"]),
                          "--first-boot-key", str(node["first"]), "--state-dir", str(node["state"]),
                          "--kubeadm", str(wrapper), "--metadata", f"local:{node['metadata']}",
                          "--etcd-membership", "--kubernetes-pki", str(pki)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = "https://" + re.search(r"on (127\.0\.0\.1:\d+)", p.stdout.readline()).group(1)
        r = apply(node, tmp_path, url)
        assert r.returncode == 0, r.stdout + r.stderr
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            stop(p)
    out, err = p.communicate()
    assert p.returncode != 0
    assert why.format(pki=pki) in err, err
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert "The join service is not started" in err, err
    assert not (node["state"] / "etcd-client.crt").exists()


def test_without_etcd_membership_the_join_service_keeps_local_files(swtpm, node, tmp_path):
    """The default is unchanged: no --etcd-* for the join service, no certificatesDir for
    kubeadm, no client certificate issued."""
    p, url = start(swtpm, node)
    try:
        r = apply(node, tmp_path, url)
        assert r.returncode == 0, r.stdout + r.stderr
        argv = wait_for_join_service(p)
    finally:
        stop(p)
    assert not [a for a in argv if a.startswith("--etcd")], argv
    docs = (node["state"] / "kubeadm-config.yaml").read_text().split("\n---\n")
    assert "certificatesDir" not in json.loads(docs[1])
    assert not (node["state"] / "etcd-client.key").exists()


# --- a control plane's join: the endpoints of the other control planes from the membership ---

def wait_member(etcd, cid, name, proc, timeout=60):
    deadline = time.time() + timeout
    while True:
        kv = etcd.get_prefix(f"/cloister/v1/{cid}/members/")
        if f"/cloister/v1/{cid}/members/{name}" in kv:
            return json.loads(kv[f"/cloister/v1/{cid}/members/{name}"])
        assert time.time() < deadline and proc.poll() is None, f"{name} not in etcd: {kv}"
        time.sleep(0.5)


def test_control_plane_join_hands_over_with_its_own_certificate_and_the_other_control_planes(
        cluster, etcd1):
    cp1, cp2 = cluster.node("cp-1"), cluster.node("cp-2")
    policy = cluster.policy([cp1, cp2])
    pki1, pki2 = cp1.state / "pki", cp2.state / "pki"
    (pki1 / "etcd").mkdir(parents=True)
    shutil.copy(etcd1.pki / "etcd-ca.crt", pki1 / "etcd" / "ca.crt")
    shutil.copy(etcd1.pki / "etcd-ca.key", pki1 / "etcd" / "ca.key")

    # The first control plane, as Cluster.init does it, with its membership in etcd.
    secret = cluster.tmp / "init-secret"
    h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
    cp1.start({"name": "cp-1", "role": "control-plane", "initSecretHash": h},
              "--etcd-membership", "--kubernetes-pki", str(pki1),
              "--etcd-local-endpoint", etcd1.endpoints)
    cp1.port = cp1.wait_for(r"serving init on 127\.0\.0\.1:(\d+)").group(1)
    r = run("cloister", "apply", "--endpoint", cp1.url(), "--policy", policy,
            "--init-secret-file", secret, "--state-file", cluster.tmp / "cloister-state.json",
            "--master-secret", cluster.ms, "--cluster-name", "joins",
            "--kubeconfig", cluster.tmp / "admin.conf")
    assert r.returncode == 0, r.stdout + r.stderr
    cluster.cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
    cp1.wait_for(r"serving joins on 127\.0\.0\.1:" + cp1.port)
    cluster.cp = cp1
    # At init the membership holds no other control plane: the local member alone.
    assert option(cmdline(cp1.proc.pid), "--etcd-endpoints") == etcd1.endpoints
    assert wait_member(etcd1, cluster.cid, "cp-1", cp1.proc)["endpoint"] == f"127.0.0.1:{cp1.port}"

    # The second control plane joins through cp-1 (its kubeadm join brings the etcd CA).
    meta = {"name": "cp-2", "role": "control-plane", "peers": [f"127.0.0.1:{cp1.port}"],
            "clusterId": cluster.cid, "controlPlaneAuthorization": cluster.authorize("cp-2")}
    cp2.start(meta, "--join-policy", str(policy), "--join-timeout", "60", "--etcd-membership",
              "--kubernetes-pki", str(pki2), "--etcd-local-endpoint", etcd1.endpoints,
              env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp1.state)))
    cp2.port = cp2.wait_for(r"serving joins on 127\.0\.0\.1:(\d+)").group(1)
    argv = cmdline(cp2.proc.pid)
    assert argv[0].endswith("cloister-join-service"), argv
    # Its local member first, then cp-1's etcd (its address from the membership, kubeadm's port).
    assert option(argv, "--etcd-endpoints") == f"{etcd1.endpoints},https://127.0.0.1:2379"
    assert "control planes in the membership" in cp2.log.read_text()
    crt, key = option(argv, "--etcd-cert"), option(argv, "--etcd-key")
    assert crt == str(cp2.state / "etcd-client.crt") and option(argv, "--etcd-ca") == \
        str(pki2 / "etcd" / "ca.crt")
    assert (pki2 / "etcd" / "ca.crt").read_bytes() == (pki1 / "etcd" / "ca.crt").read_bytes()
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert open(key).read() != (cp1.state / "etcd-client.key").read_text()
    v = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile",
                        etcd1.pki / "etcd-ca.crt", crt], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    # etcd accepted cp-2's certificate: its join service registered itself in the one membership.
    assert wait_member(etcd1, cluster.cid, "cp-2", cp2.proc)["role"] == "control-plane"
    body = "".join(open(key).read().strip().splitlines()[1:-1])
    assert body[:40] not in cp2.log.read_text() + cp1.log.read_text()
