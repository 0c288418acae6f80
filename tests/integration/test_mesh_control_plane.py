# SPDX-License-Identifier: Apache-2.0
"""Control planes in the WireGuard mesh (docs/mesh.md, "Control planes"). The issue's 2-node
cluster in network namespaces: one control plane and one worker, both started with --mesh
userspace; the control plane's join service makes its own key in its monitor and registers its
own entry, the worker registers its key through GET /v1/mesh. Beside them an impostor (the
cluster's AK trust, another boot: PCR 9 altered) that tries to join with --mesh, and a member
started without --mesh. Checked from outside the C code: each device's peers, the capture on the
underlay between the worker and the control plane, the impostor's refusals, and verify
--cluster's comparison of each listed key with the key the member attests."""
import json
import os
import re
import signal
import subprocess
import time

import json_schema
from conftest import binary
from test_mesh import (MARKER, MeshCluster, pytestmark, sh, verify_cluster,  # noqa: F401
                       wait_until)
import pytest


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    os.makedirs("/run/wireguard", exist_ok=True)
    c = MeshCluster(tmp_path_factory.mktemp("meshcp"))
    try:
        cp, w1 = c.node("cp-1"), c.node("worker-1")
        c.impostor = c.node("impostor", alter=9)
        c.plain = c.node("plain-1")
        policy = c.policy([cp, w1, c.impostor, c.plain])
        c.init(cp, policy)
        c.join_mesh(w1, policy)
        w1.port = w1.wait_for(r"serving node state on [0-9.]+:(\d+)").group(1)
        w1.wait_for(r"mesh applied: 10\.77\.\d+\.\d+, 2 members", timeout=60)
        cp.wait_for(r"mesh applied: 10\.77\.\d+\.\d+, 2 members", timeout=60)
        # A member without --mesh: it registers no key and is nobody's peer.
        c.plain.start({"name": "plain-1", "role": "worker", "peers": [f"{cp.ip}:{cp.port}"],
                       "clusterId": c.cid}, "--join-policy", policy, "--join-timeout", "60",
                      env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
        c.plain.port = c.plain.wait_for(r"serving node state on [0-9.]+:(\d+)").group(1)
        c.w1 = w1
        yield c
    finally:
        c.stop()


def stream(mesh, sender, receiver, dst, pcap):
    """A TCP stream carrying the marker from sender to receiver's mesh address dst, captured on
    the bridge's side of the sender's veth (what the provider's network sees)."""
    cap = subprocess.Popen(["ip", "netns", "exec", mesh.net.br, "tcpdump", "-i", sender.veth,
                            "-U", "-w", str(pcap)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    server = subprocess.Popen(
        ["ip", "netns", "exec", receiver.ns, "python3", "-c",
         "import socket,sys\n"
         f"s=socket.create_server(('{dst}', 7777))\n"
         "c,_=s.accept()\n"
         "data=b''\n"
         "while len(data) < 4096:\n"
         "    b=c.recv(65536)\n"
         "    if not b: break\n"
         "    data+=b\n"
         "sys.stdout.write(data.decode())\n"],
        stdout=subprocess.PIPE, text=True)
    payload = (MARKER * 200)[:4096].decode()
    try:
        time.sleep(1.5)  # tcpdump and the server are listening
        client = sender.exec(
            "python3", "-c",
            "import socket,time\n"
            "for i in range(20):\n"
            "    try:\n"
            f"        s=socket.create_connection(('{dst}', 7777), timeout=3); break\n"
            "    except OSError: time.sleep(0.3)\n"
            f"s.sendall({payload!r}.encode()); s.close()\n")
        assert client.returncode == 0
        received, _ = server.communicate(timeout=30)
        time.sleep(1)
    finally:
        server.kill()
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    return payload, received


def test_the_control_plane_registers_its_own_key_and_it_and_the_worker_are_each_others_peers(
        mesh):
    members = mesh.members()
    cp, w1 = members["cp-1"], members["worker-1"]
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", cp["wgPublicKey"]), cp
    assert re.fullmatch(r"10\.77\.\d+\.\d+", cp["meshAddress"]), cp
    assert cp["meshAddress"] != w1["meshAddress"]
    # Each device holds exactly the other node, with its endpoint on the underlay.
    assert mesh.cp.peers() == {w1["wgPublicKey"]}
    assert mesh.w1.peers() == {cp["wgPublicKey"]}
    assert f"{mesh.cp.ip}:51820" in mesh.w1.wg("show", "cloister0", "endpoints").stdout
    assert f"{mesh.w1.ip}:51820" in mesh.cp.wg("show", "cloister0", "endpoints").stdout
    assert f"{w1['meshAddress']}/32" in mesh.cp.wg("show", "cloister0", "allowed-ips").stdout
    # The device's own key is the one registered; its private half is in no log and no file of
    # the control plane's state.
    assert mesh.cp.wg("show", "cloister0", "public-key").stdout.strip() == cp["wgPublicKey"]
    private = mesh.cp.wg("show", "cloister0", "private-key").stdout.strip()
    assert len(private) == 44 and private not in mesh.cp.log.read_text()
    for f in mesh.cp.state.rglob("*"):
        if f.is_file():
            assert private.encode() not in f.read_bytes(), f
    # Audited as a worker's registration is, with the key.
    keys = [e for e in mesh.audit() if e["event"] == "mesh-key"]
    assert {(e["node"], e["reason"]) for e in keys} == {("cp-1", cp["wgPublicKey"]),
                                                        ("worker-1", w1["wgPublicKey"])}
    # A member without --mesh registers nothing and is nobody's peer.
    assert "wgPublicKey" not in members["plain-1"]


@pytest.mark.parametrize("direction", ["worker-to-control-plane", "control-plane-to-worker"])
def test_tcp_between_worker_and_control_plane_crosses_the_underlay_only_as_wireguard(
        mesh, tmp_path, direction):
    members = mesh.members()
    if direction == "worker-to-control-plane":
        sender, receiver, dst = mesh.w1, mesh.cp, members["cp-1"]["meshAddress"]
    else:
        sender, receiver, dst = mesh.cp, mesh.w1, members["worker-1"]["meshAddress"]
    before = sender.wg("show", "cloister0", "transfer").stdout
    pcap = tmp_path / "underlay.pcap"
    payload, received = stream(mesh, sender, receiver, dst, pcap)
    assert received == payload
    assert MARKER not in pcap.read_bytes(), "the stream's plaintext crossed the underlay"
    lines = [line for line in sh("tcpdump", "-nn", "-r", pcap).stdout.splitlines()
             if line.strip()]
    assert any(f"{sender.ip}.51820 > {receiver.ip}.51820: UDP" in line for line in lines), lines
    # Between the two nodes only WireGuard's UDP (ARP aside), but for the worker's mesh
    # requests: aTLS to the join service's own port, which stays outside the mesh (the join
    # and the mesh's own fetch must work before there is a mesh).
    ats = f"{mesh.cp.ip}.{mesh.cp.port}"
    between = [line for line in lines
               if sender.ip in line and receiver.ip in line and "ARP" not in line
               and f"{ats}:" not in line and f"{ats} >" not in line]
    assert between and all(".51820 " in line and "UDP" in line for line in between), lines
    after = sender.wg("show", "cloister0", "transfer").stdout
    sent = lambda text: sum(int(x.split()[2]) for x in text.splitlines() if x.strip())
    assert sent(after) - sent(before) >= 4096


def test_a_node_that_cannot_attest_is_never_given_the_control_plane_as_a_peer(mesh):
    """The impostor (PCR 9 altered: another image) starts with --mesh and tries to join: its
    join is refused, it never applies a document, no device holds its key, and asking for the
    mesh with its TPM is refused before anything is released (the control plane's key is not in
    any answer)."""
    imp = mesh.impostor
    imp.start({"name": "impostor", "role": "worker", "peers": [f"{mesh.cp.ip}:{mesh.cp.port}"],
               "clusterId": mesh.cid}, "--join-policy", mesh.tmp / "policy.json",
               "--join-timeout", "5", "--mesh", "userspace", "--mesh-interval", "1",
               env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(mesh.cp.state)))
    # Its own check of the join service already fails (another image: its PCR 9 is not the
    # policy's), and the join service's check of it below.
    imp.wait_for(r"No join service admitted this node")
    cp_key = mesh.members()["cp-1"]["wgPublicKey"]
    refused = len([e for e in mesh.audit() if e["verdict"] == "refused"])
    rc, out = mesh.probe("--tcti", imp.tpm.tcti, "--wg-key", "ab" * 32)
    assert rc == 1 and "HTTP 200" not in out, out
    wait_until("the join service's refusal of the impostor",
               lambda: len([e for e in mesh.audit() if e["verdict"] == "refused"]) > refused)
    assert cp_key not in out and "10.77." not in out, out
    time.sleep(2)  # a few of the control plane's and the worker's intervals
    assert "mesh applied" not in imp.log.read_text()
    assert "impostor" not in mesh.members()
    assert mesh.cp.peers() == {mesh.members()["worker-1"]["wgPublicKey"]}
    assert mesh.w1.peers() == {cp_key}
    # The impostor's node never got a device, and the range is closed from its start.
    assert "cloister0" not in imp.exec("ip", "link", "show").stdout
    out = imp.exec("nft", "list", "table", "inet", "cloister-mesh", check=False)
    assert out.returncode == 0 and 'ip daddr 10.77.0.0/16 oifname != "cloister0" drop' in \
        out.stdout, out.stdout + out.stderr


def write_members(path, doc):
    tmp = path.with_suffix(".new")
    tmp.write_text(json.dumps(doc))
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def test_verify_cluster_compares_the_control_planes_listed_key_with_the_key_it_attests(
        mesh, tmp_path):
    """The control plane's join service attests its WireGuard key when asked (the monitor binds
    only the key it made). verify --cluster passes it with its own key; listed with the worker's
    key, it fails by name; a member without --mesh listed with a key attests none and fails."""
    r = verify_cluster(mesh, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["cp-1"]["verdict"]["result"] == "pass", nodes["cp-1"]
    path = mesh.cp.state / "members.json"
    keys = {n: m["wgPublicKey"] for n, m in mesh.members().items() if "wgPublicKey" in m}
    try:
        # The control plane re-registers its own key at its next interval (a second): the
        # verification reads the listing once, so it is tried until it read the altered one.
        for _ in range(10):
            doc = json.loads(path.read_text())
            for m in doc["members"]:
                if m["name"] == "cp-1":
                    m["wgPublicKey"] = keys["worker-1"]
                if m["name"] == "plain-1":
                    m["wgPublicKey"] = keys["worker-1"]
            write_members(path, doc)
            r = verify_cluster(mesh, tmp_path)
            nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
            if nodes["cp-1"]["verdict"]["result"] == "fail":
                break
        assert r.returncode != 0, r.stdout
        assert any(f"lists WireGuard key {keys['worker-1']}, the member attests {keys['cp-1']}"
                   in x for x in nodes["cp-1"]["reasons"]), nodes["cp-1"]
        assert nodes["plain-1"]["verdict"]["result"] == "fail", nodes["plain-1"]
        assert any("lists WireGuard key" in x and "the member attests none" in x
                   for x in nodes["plain-1"]["reasons"]), nodes["plain-1"]
    finally:
        doc = json.loads(path.read_text())
        for m in doc["members"]:
            if m["name"] == "plain-1":
                m.pop("wgPublicKey", None)
        write_members(path, doc)
    wait_until("cp-1 to register its own key again",
               lambda: mesh.members()["cp-1"]["wgPublicKey"] == keys["cp-1"])


def status(mesh, tmp_path, *extra):
    p = json.loads((mesh.tmp / "policy.json").read_text())
    p["measurements"].pop("15")
    path = tmp_path / "member-policy.json"
    path.write_text(json.dumps(p))
    return sh("ip", "netns", "exec", mesh.cp.ns, binary("cloister"), "status", "--policy", path,
              "--state-file", mesh.tmp / "cloister-state.json", *extra, check=False)


def test_status_shows_each_nodes_mesh_peers_and_last_handshake(mesh, tmp_path):
    """cloister status asks each member over its attested GET /v1/node; a node in the mesh
    (the control plane's join service too) reports its cloister0's peers (wg show endpoints,
    latest-handshakes, transfer): each peer named by the member the join service lists with
    that key, its endpoint, and when it last shook hands, as wg itself says on that node."""
    members = mesh.members()
    # (the test before altered the listing: both devices hold each other again first)
    wait_until("the devices to hold each other again",
               lambda: mesh.w1.peers() == {members["cp-1"]["wgPublicKey"]}
               and mesh.cp.peers() == {members["worker-1"]["wgPublicKey"]})
    # Traffic both ways first, so both sides have a handshake to report.
    mesh.w1.exec("ping", "-c", "2", "-W", "2", members["cp-1"]["meshAddress"], check=False)
    r = status(mesh, tmp_path, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    json_schema.validate(doc)
    nodes = {n["name"]: n for n in doc["nodes"]}
    for name, node, other in (("cp-1", mesh.cp, "worker-1"), ("worker-1", mesh.w1, "cp-1")):
        peers = nodes[name]["mesh"]["peers"]
        assert [p["member"] for p in peers] == [other], nodes[name]
        (peer,) = peers
        assert peer["publicKey"] == members[other]["wgPublicKey"]
        assert peer["endpoint"] == f"{(mesh.w1 if other == 'worker-1' else mesh.cp).ip}:51820"
        # The node's own device says the same handshake time.
        wg = dict(line.split("\t") for line in
                  node.wg("show", "cloister0", "latest-handshakes").stdout.splitlines())
        # (the same, or a later one if the peers shook hands again since: never an earlier)
        assert int(wg[peer["publicKey"]]) >= peer["latestHandshake"] > time.time() - 300, \
            (peer, wg)
        assert peer["rxBytes"] > 0 and peer["txBytes"] > 0
    # A member without --mesh reports no mesh.
    assert nodes["plain-1"]["mesh"] is None
    text = status(mesh, tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "mesh (each node's cloister0: peer, endpoint, last handshake):" in text.stdout
    line = next(x for x in text.stdout.splitlines() if x.strip().startswith("worker-1 ")
                and "cp-1" in x and "51820" in x)
    assert re.search(rf"{re.escape(mesh.cp.ip)}:51820\s+\d+ s ago", line), line


ATTEST, ATTEST_WG, EPERM = 9, 16, 1  # JOIN_PRIVSEP_ATTEST, JOIN_PRIVSEP_ATTEST_WG


def test_the_monitor_quotes_the_wg_binding_for_no_key_but_the_one_it_made(mesh):
    """A compromised network process (the fault build's fake network) asks the control plane's
    monitor to attest a WireGuard key of its choosing: refused, before any quote; the plain
    binding is still quoted. (Last in this file: it replaces cp-1's join service.)"""
    from test_join import KUBEADM
    from test_join_privsep import client_key, message, reply
    from test_mesh import in_ns
    from conftest import BUILD, ROOT

    cp = mesh.cp
    cp.proc.send_signal(signal.SIGTERM)
    cp.proc.wait(timeout=30)
    _, spki = client_key()
    nonce = os.urandom(32)
    req, rep = mesh.tmp / "fake-requests.json", mesh.tmp / "fake-replies.json"
    req.write_text(json.dumps([
        {"channel": 0, "message": message(ATTEST_WG, nonce, spki, os.urandom(32)).hex()},
        {"channel": 1, "message": message(ATTEST, nonce, spki).hex()}]))
    log = cp.base / "js-fake.log"
    p = subprocess.run(in_ns(cp.ns, BUILD / "tests" / "cloister-join-service-fault", "--tcti",
                             cp.tpm.tcti, "--listen", f"{cp.ip}:{cp.port}", "--state-dir",
                             cp.state, "--kubeadm", KUBEADM, "--event-log", cp.boot_log,
                             "--mesh", "userspace"),
                       stdout=open(log, "w"), stderr=subprocess.STDOUT, timeout=120,
                       env=dict(os.environ,
                                CLOISTER_FAKE_NETWORK=str(ROOT / "tests" / "tools" /
                                                          "fake-network.py"),
                                FAKE_NETWORK_REQUESTS=str(req), FAKE_NETWORK_REPLIES=str(rep),
                                KUBEADM_DOUBLE_CLUSTER=str(cp.state)))
    assert p.returncode == 0, log.read_text()
    (op, status, (detail, answer)), (op2, status2, (_, evidence)) = \
        [reply(r) for r in json.loads(rep.read_text())]
    assert op == ATTEST_WG | 0x80 and status == -EPERM and answer == "", (op, status, detail)
    assert "binds only this node's own WireGuard key" in detail, detail
    assert status2 == 0 and evidence, detail
