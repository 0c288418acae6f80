# SPDX-License-Identifier: Apache-2.0
"""The WireGuard mesh of attested members (docs/mesh.md). Three nodes, each in its own network
namespace on one bridge (its own swtpm, state disk and bootstrapper, as in test_join.py): a
control plane serving joins and two workers, all started with --mesh userspace (wireguard-go:
the host has no wireguard module; the control plane's join service registers its own key). The
workers register the WireGuard key their evidence binds
(GET /v1/mesh) and configure cloister0 from the mesh the join service releases to members only.
Checked from outside the C code: the peers each worker's device holds, the capture on the
underlay (only WireGuard's UDP, no plaintext of a TCP stream), refusals of unattested, non-member
and unbound-key callers, and a member leaving the membership leaving every peer."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, binary, run
from test_join import KUBEADM, Cluster, Node

MARKER = b"cloister-mesh-marker-7f3a9c"
UNDERLAY = "10.231.77"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("wireguard-go") or not shutil.which("wg")
    or not shutil.which("nft") or not shutil.which("tcpdump"),
    reason="needs root, wireguard-go, wireguard-tools, nftables and tcpdump "
           "(scripts/install-deps)")


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check,
                          timeout=60, **kw)


class Net:
    """A bridge namespace and one namespace per node, each with its veth on the bridge."""

    def __init__(self):
        self.tag = f"m{os.getpid() % 100000}"
        self.br = f"{self.tag}br"
        self.nodes = []
        sh("ip", "netns", "add", self.br)
        sh("ip", "netns", "exec", self.br, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", self.br, "ip", "link", "set", "br0", "up")

    def add(self, i):
        ns, host_end = f"{self.tag}n{i}", f"{self.tag}b{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", host_end,
           "netns", self.br)
        sh("ip", "netns", "exec", self.br, "ip", "link", "set", host_end, "master", "br0", "up")
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "address", "add", f"{UNDERLAY}.{i}/24", "dev", "eth0"]):
            sh("ip", "netns", "exec", ns, *cmd)
        self.nodes.append(ns)
        return ns, f"{UNDERLAY}.{i}", host_end

    def pids(self, ns):
        out = sh("ip", "netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split()]

    def teardown(self):
        for ns in self.nodes + [self.br]:
            # What runs there is ours (bootstrappers, wireguard-go): ended by pid.
            for pid in self.pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            sh("ip", "netns", "del", ns, check=False)


def in_ns(ns, *cmd):
    """cmd inside ns, with a /run/wireguard of its own (wireguard-go's control sockets are named
    after the device: two nodes' cloister0 would otherwise share one path)."""
    return ["ip", "netns", "exec", ns, "sh", "-c",
            'mount -t tmpfs -o mode=0700 tmpfs /run/wireguard && exec "$@"', "sh",
            *[str(c) for c in cmd]]


class MeshNode(Node):
    def place(self, ns, ip, veth):
        self.ns, self.ip, self.veth = ns, ip, veth

    def start(self, metadata, *extra, env=None):
        (self.base / "metadata.json").write_text(json.dumps(metadata))
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(in_ns(
            self.ns, binary("cloister-bootstrapper"), "--tcti", self.tpm.tcti, "--listen",
            f"{self.ip}:{self.port or 0}", "--state-disk", self.disk, "--first-boot-key",
            self.first, "--state-dir", self.state, "--kubeadm", KUBEADM, "--metadata",
            f"local:{self.base / 'metadata.json'}", "--event-log", self.boot_log, *extra),
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)

    def url(self):
        return f"https://{self.ip}:{self.port}"

    def exec(self, *cmd, check=True):
        return sh("ip", "netns", "exec", self.ns, *cmd, check=check)

    def wg(self, *args, check=True):
        """wg inside this node's namespace and its private /run/wireguard (that of its
        wireguard-go: found through the bootstrapper's mount namespace)."""
        return sh("nsenter", "-t", str(self.proc.pid), "-n", "-m", "wg", *args, check=check)

    def peers(self):
        out = self.wg("show", "cloister0", "peers", check=False)
        return set(out.stdout.split()) if out.returncode == 0 else set()


class MeshCluster(Cluster):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.net = Net()

    def node(self, name, alter=None):
        n = MeshNode(self.tmp / name, name, alter)
        n.place(*self.net.add(len(self.nodes) + 1))
        self.nodes.append(n)
        return n

    def init(self, cp, policy):
        secret = self.tmp / "init-secret"
        h = run("cloister", "init-secret", "generate", "--file", secret).stdout.strip()
        # --mesh on a control plane: its join service makes its key and registers it.
        cp.start({"name": cp.name, "role": "control-plane", "initSecretHash": h},
                 "--mesh", "userspace", "--mesh-interval", "1")
        cp.port = cp.wait_for(r"serving init on [0-9.]+:(\d+)").group(1)
        r = sh("ip", "netns", "exec", cp.ns, binary("cloister"), "apply", "--endpoint", cp.url(),
               "--policy", policy, "--init-secret-file", secret, "--state-file",
               self.tmp / "cloister-state.json", "--master-secret", self.ms, "--cluster-name",
               "mesh", "--kubeconfig", self.tmp / "admin.conf", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        self.cid = re.search(r"cluster ID: ([0-9a-f]{64})", r.stdout).group(1)
        cp.wait_for(r"serving joins on [0-9.]+:" + cp.port)
        self.cp = cp

    def join_mesh(self, node, policy):
        meta = {"name": node.name, "role": "worker", "peers": [f"{self.cp.ip}:{self.cp.port}"],
                "clusterId": self.cid}
        node.start(meta, "--join-policy", policy, "--join-timeout", "60", "--mesh", "userspace",
                   "--mesh-interval", "1",
                   env=dict(os.environ, KUBEADM_DOUBLE_CLUSTER=str(self.cp.state)))

    def members(self):
        return {m["name"]: m for m in
                json.loads((self.cp.state / "members.json").read_text())["members"]}

    def probe(self, *args):
        p = subprocess.run(["ip", "netns", "exec", self.cp.ns, str(BUILD / "tests" / "join-probe"),
                            "--policy", str(self.tmp / "policy.json"), "--cluster-id", self.cid,
                            "--url", self.cp.url(), "--get", "/v1/mesh", *map(str, args)],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def stop(self):
        super().stop()
        self.net.teardown()


def wait_until(what, pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    os.makedirs("/run/wireguard", exist_ok=True)
    c = MeshCluster(tmp_path_factory.mktemp("mesh"))
    try:
        cp, w1, w2 = c.node("cp-1"), c.node("worker-1"), c.node("worker-2")
        c.stranger = c.node("stranger")
        policy = c.policy([cp, w1, w2, c.stranger])
        # Re-attestation that evicts a member failing it (docs/reattestation.md): the last
        # test's eviction is the real one.
        doc = json.loads(policy.read_text())
        doc["reattestation"] = {"intervalSeconds": 2, "timeoutSeconds": 3, "unreachableAfter": 2,
                                "onFailure": "evict"}
        policy.write_text(json.dumps(doc))
        c.init(cp, policy)
        for w in (w1, w2):
            c.join_mesh(w, policy)
        for w in (w1, w2):
            w.port = w.wait_for(r"serving node state on [0-9.]+:(\d+)").group(1)
        for w in (w1, w2):
            w.wait_for(r"mesh applied: 10\.77\.\d+\.\d+, 3 members", timeout=60)
        c.w1, c.w2 = w1, w2
        yield c
    finally:
        c.stop()


def test_members_register_the_key_their_evidence_binds_and_become_each_others_peers(mesh):
    members = mesh.members()
    w1, w2 = members["worker-1"], members["worker-2"]
    for m in (w1, w2):
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", m["wgPublicKey"]), m
        assert re.fullmatch(r"10\.77\.\d+\.\d+", m["meshAddress"]), m
    assert w1["meshAddress"] != w2["meshAddress"]
    # The control plane is a peer too (its join service registered its own key).
    cp = members["cp-1"]
    assert len({w1["meshAddress"], w2["meshAddress"], cp["meshAddress"]}) == 3
    # Each device holds exactly the other worker and the control plane, with its endpoint on
    # the underlay.
    assert mesh.w1.peers() == {w2["wgPublicKey"], cp["wgPublicKey"]}
    assert mesh.w2.peers() == {w1["wgPublicKey"], cp["wgPublicKey"]}
    endpoints = mesh.w1.wg("show", "cloister0", "endpoints").stdout
    assert f"{mesh.w2.ip}:51820" in endpoints
    allowed = mesh.w1.wg("show", "cloister0", "allowed-ips").stdout
    assert f"{w2['meshAddress']}/32" in allowed
    # The private key (as the device holds it) is in no log and no file of the node's state.
    private = mesh.w1.wg("show", "cloister0", "private-key").stdout.strip()
    assert len(private) == 44 and private not in mesh.w1.log.read_text()
    for f in mesh.w1.state.rglob("*"):
        if f.is_file():
            assert private.encode() not in f.read_bytes(), f
    # The registration is audited once per key, with the key.
    keys = [e for e in mesh.audit() if e["event"] == "mesh-key"]
    assert sorted(e["node"] for e in keys) == ["cp-1", "worker-1", "worker-2"]
    assert {e["reason"] for e in keys} == {w1["wgPublicKey"], w2["wgPublicKey"],
                                           cp["wgPublicKey"]}


def test_tcp_between_mesh_addresses_crosses_the_underlay_only_as_wireguard(mesh, tmp_path):
    members = mesh.members()
    dst = members["worker-2"]["meshAddress"]
    pcap = tmp_path / "underlay.pcap"
    # The capture on the bridge's side of worker-1's veth: what the provider's network sees.
    cap = subprocess.Popen(["ip", "netns", "exec", mesh.net.br, "tcpdump", "-i", mesh.w1.veth,
                            "-U", "-w", str(pcap)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    server = subprocess.Popen(
        ["ip", "netns", "exec", mesh.w2.ns, "python3", "-c",
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
    try:
        time.sleep(1.5)  # tcpdump and the server are listening
        before = mesh.w1.wg("show", "cloister0", "transfer").stdout
        payload = (MARKER * 200)[:4096].decode()
        client = mesh.w1.exec(
            "python3", "-c",
            "import socket,time\n"
            "for i in range(20):\n"
            "    try:\n"
            f"        s=socket.create_connection(('{dst}', 7777), timeout=3); break\n"
            "    except OSError: time.sleep(0.3)\n"
            f"s.sendall({payload!r}.encode()); s.close()\n")
        assert client.returncode == 0
        received, _ = server.communicate(timeout=30)
        assert received == payload
        time.sleep(1)
    finally:
        server.kill()
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    raw = pcap.read_bytes()
    assert MARKER not in raw, "the stream's plaintext crossed the underlay"
    summary = sh("tcpdump", "-nn", "-r", pcap).stdout
    lines = [line for line in summary.splitlines() if line.strip()]
    assert any(f"{mesh.w1.ip}.51820 > {mesh.w2.ip}.51820: UDP" in line for line in lines), summary
    # Nothing between the two workers went as anything but WireGuard's UDP (ARP aside).
    between = [line for line in lines
               if mesh.w1.ip in line and mesh.w2.ip in line and "ARP" not in line]
    assert between and all("51820" in line and "UDP" in line for line in between), summary
    after = mesh.w1.wg("show", "cloister0", "transfer").stdout
    sent = lambda text: sum(int(x.split()[2]) for x in text.splitlines() if x.strip())
    assert sent(after) - sent(before) >= 4096


def test_the_mesh_is_never_released_to_an_unattested_client(mesh):
    rc, out = mesh.probe("--no-attest")
    assert rc == 1 and "HTTP 403" in out, out
    assert "wgPublicKey" not in out and "publicKey" not in out and "10.77." not in out


def test_an_attested_node_that_is_no_member_gets_no_mesh_and_registers_nothing(mesh):
    key = "ab" * 32
    rc, out = mesh.probe("--tcti", mesh.stranger.tpm.tcti, "--wg-key", key)
    assert rc == 1 and "HTTP 403" in out and "PCR 15 is zero" in out, out
    # PCR 15 = this cluster is public (SHA-256 of the cluster ID): extended by hand, it passes
    # the policy, and the membership still refuses.
    digest = hashlib.sha256(bytes.fromhex(mesh.cid)).hexdigest()
    subprocess.run(["tpm2_pcrextend", f"15:sha256={digest}"], check=True,
                   env=dict(os.environ, TPM2TOOLS_TCTI=mesh.stranger.tpm.tcti))
    rc, out = mesh.probe("--tcti", mesh.stranger.tpm.tcti, "--wg-key", key)
    assert rc == 1 and "HTTP 403" in out and "not a member" in out, out
    assert "publicKey" not in out
    registered = {m.get("wgPublicKey") for m in mesh.members().values()}
    import base64
    assert base64.b64encode(bytes.fromhex(key)).decode() not in registered


def test_a_member_cannot_register_a_key_its_evidence_does_not_bind(mesh):
    """worker-1's own TPM (a member), but the certificate names a key the evidence does not
    bind: the handshake fails, and worker-1's registered key stays the one its node made."""
    before = mesh.members()["worker-1"]["wgPublicKey"]
    rc, out = mesh.probe("--tcti", mesh.w1.tpm.tcti, "--wg-key", "cd" * 32, "--wg-unbound")
    assert rc == 1 and "handshake failed" in out and "HTTP" not in out, out
    assert mesh.members()["worker-1"]["wgPublicKey"] == before
    refusal = [e for e in mesh.audit() if e["verdict"] == "refused"][-1]
    assert refusal["node"] == "(handshake)", refusal
    assert "bound to another nonce or key" in refusal["reason"], refusal
    # The same TPM and key, bound honestly, passes the handshake: the refusal above was the
    # binding's (not the TPM's or the policy's). Bound honestly it is worker-1 re-keying, so
    # worker-1's own key is registered again right after.
    rc, out = mesh.probe("--tcti", mesh.w1.tpm.tcti, "--wg-key", "cd" * 32)
    assert rc == 0 and "HTTP 200" in out and '"self":"worker-1"' in out, out
    wait_until("worker-1 to register its own key again",
               lambda: mesh.members()["worker-1"]["wgPublicKey"] == before)


@pytest.mark.parametrize("bad", ["host-name-endpoint", "another-members-address"])
def test_a_member_record_no_node_would_parse_leaves_that_member_out_not_the_whole_mesh(mesh, bad):
    """A join request's endpoint is a body field its evidence does not bind (a compromised
    network process can name any HOST:PORT), and a record can repeat another's mesh address:
    such a record must cost that member its place in the mesh, not make every node refuse the
    whole document. The record is put in members.json as it would have been left, and put
    back."""
    path = mesh.cp.state / "members.json"
    original = path.read_text()
    doc = json.loads(original)
    w1_address = next(m["meshAddress"] for m in doc["members"] if m["name"] == "worker-1")
    for m in doc["members"]:
        if m["name"] == "worker-2":
            w2_key = m["wgPublicKey"]
            if bad == "host-name-endpoint":
                m["endpoint"] = "worker-2.example:9443"
            else:
                m["meshAddress"] = w1_address
    seen = mesh.w1.log.read_text().count("members\n")
    tmp = path.with_suffix(".test")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    try:
        # A shared address leaves both out (which of them owns it cannot be told).
        wait_until("worker-1 to apply a mesh without worker-2",
                   lambda: re.search(r"mesh applied: 10\.77\.\d+\.\d+, [12] members\n",
                                     mesh.w1.log.read_text().split("members\n", seen)[-1]))
        assert w2_key not in mesh.w1.peers()
    finally:
        tmp.write_text(original)
        os.replace(tmp, path)
    wait_until("worker-1 to take worker-2 back", lambda: w2_key in mesh.w1.peers())


def test_the_mesh_range_is_closed_on_the_control_plane_too(mesh):
    """cp-1's join service applies the mesh like a worker: the table that drops traffic to or
    from the mesh range bypassing cloister0 is there, and so is the device. (A node that never
    applies a document: test_mesh_control_plane.py's impostor.)"""
    out = mesh.cp.exec("nft", "list", "table", "inet", "cloister-mesh", check=False)
    assert out.returncode == 0, out.stderr
    assert 'ip daddr 10.77.0.0/16 oifname != "cloister0" drop' in out.stdout, out.stdout
    assert "cloister0" in mesh.cp.exec("ip", "link", "show").stdout


def verify_cluster(mesh, tmp_path):
    p = json.loads((mesh.tmp / "policy.json").read_text())
    p["measurements"].pop("15")
    path = tmp_path / "member-policy.json"
    path.write_text(json.dumps(p))
    return sh("ip", "netns", "exec", mesh.cp.ns, binary("cloister"), "verify", "--cluster",
              "--policy", path, "--state-file", mesh.tmp / "cloister-state.json", "-o", "json",
              check=False)


def test_verify_cluster_checks_each_listed_wireguard_key_against_the_key_the_member_attests(
        mesh, tmp_path):
    """The owner's verify --cluster asks each member for its WireGuard key in an attested
    handshake (the key bound by its evidence) and compares it with the key the join service
    lists (GET /v1/members)."""
    r = verify_cluster(mesh, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    # The control plane attests its key too (its join service's monitor binds the key it
    # made): it passes with it.
    assert all(nodes[w]["verdict"]["result"] == "pass"
               for w in ("worker-1", "worker-2", "cp-1")), nodes
    path = mesh.cp.state / "members.json"
    # worker-1 listed with worker-2's key: worker-1 attests its own, which differs. (worker-1
    # registers its own key again at its next fetch, within a second: the verification reads the
    # listing once, so it is tried until it read the altered one.)
    keys = {n: m["wgPublicKey"] for n, m in mesh.members().items() if "wgPublicKey" in m}
    for _ in range(10):
        doc = json.loads(path.read_text())
        for m in doc["members"]:
            if m["name"] == "worker-1":
                m["wgPublicKey"] = keys["worker-2"]
        tmp = path.with_suffix(".new")
        tmp.write_text(json.dumps(doc))
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
        r = verify_cluster(mesh, tmp_path)
        nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
        if nodes["worker-1"]["verdict"]["result"] == "fail":
            break
    assert r.returncode != 0, r.stdout
    assert any(f"lists WireGuard key {keys['worker-2']}, the member attests {keys['worker-1']}"
               in x for x in nodes["worker-1"]["reasons"]), nodes["worker-1"]
    wait_until("worker-1 to register its own key again",
               lambda: mesh.members()["worker-1"]["wgPublicKey"] == keys["worker-1"])


def test_an_evicted_member_leaves_every_peer_and_gets_no_mesh(mesh):
    """worker-2's boot changes (PCR 4 extended in its TPM): re-attestation fails it and, as the
    policy says, evicts it (it leaves members.json); within the fetch interval worker-1 no
    longer has it as a peer, and worker-2's own requests are refused."""
    w2_key = mesh.members()["worker-2"]["wgPublicKey"]
    assert w2_key in mesh.w1.peers()
    subprocess.run(["tpm2_pcrextend", f"4:sha256={'ab' * 32}"], check=True,
                   env=dict(os.environ, TPM2TOOLS_TCTI=mesh.w2.tpm.tcti))
    wait_until("worker-2's eviction",
               lambda: [e for e in mesh.audit()
                        if e["event"] == "eviction" and e["node"] == "worker-2"], timeout=60)
    assert "worker-2" not in mesh.members()
    wait_until("worker-1 to drop worker-2", lambda: w2_key not in mesh.w1.peers())
    wait_until("cp-1 to drop worker-2", lambda: w2_key not in mesh.cp.peers())
    assert mesh.w1.peers() == {mesh.members()["cp-1"]["wgPublicKey"]}
    # worker-2 still asks; its evidence no longer passes the policy, and it gets nothing.
    mark = len(mesh.w2.log.read_text())
    mesh.w2.wait_for(r"mesh: .*(refused|PCR 4)", timeout=30)
    assert "mesh applied" not in mesh.w2.log.read_text()[mark:]


def test_a_plain_packet_to_a_members_mesh_address_from_the_underlay_is_dropped(mesh):
    """The drop rule in the other direction: an outsider on the underlay (the stranger's
    namespace, no table of its own) routes the control plane's mesh address through its underlay
    address and connects in the clear: the control plane drops it on input (and would send no
    plain answer from its mesh address), so nothing connects although a server listens there.
    (Fails without the input rule 'ip daddr 10.77.0.0/16 iifname != ... drop': it connected.)"""
    cp = mesh.nodes[0]
    dst = mesh.members()["cp-1"]["meshAddress"]
    s = mesh.stranger
    s.exec("nft", "delete", "table", "inet", "cloister-mesh", check=False)
    s.exec("ip", "route", "replace", f"{dst}/32", "via", cp.ip)
    server = subprocess.Popen(
        ["ip", "netns", "exec", cp.ns, "python3", "-c",
         "import socket\n"
         f"s=socket.create_server(('{dst}', 7778))\n"
         "s.settimeout(8)\n"
         "try:\n"
         "    s.accept(); print('accepted')\n"
         "except OSError: print('none')\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        r = s.exec("python3", "-c",
                   "import socket\n"
                   "try:\n"
                   f"    socket.create_connection(('{dst}', 7778), timeout=4)\n"
                   "    print('connected')\n"
                   "except OSError as e: print('refused', e)\n", check=False)
        assert "connected" not in r.stdout, r.stdout
        out, _ = server.communicate(timeout=20)
        assert out.strip() == "none", out
    finally:
        server.kill()
        s.exec("ip", "route", "del", f"{dst}/32", check=False)
    rules = cp.exec("nft", "list", "table", "inet", "cloister-mesh").stdout
    assert re.search(r'ip daddr 10\.77\.0\.0/16 iifname != \{ "(lo", "cloister0|cloister0", "lo)" \} '
                     r'drop', rules), rules


def test_plain_traffic_to_the_mesh_range_is_dropped_when_the_device_is_gone(mesh, tmp_path):
    """Fail closed: with worker-1's bootstrapper stopped, its cloister0 deleted and a route that
    sends the mesh range out of the underlay (a misconfiguration), nothing for that range leaves
    the node in the clear: the nftables table drops it."""
    mesh.w1.proc.send_signal(signal.SIGTERM)
    mesh.w1.proc.wait(timeout=30)
    mesh.w1.exec("ip", "link", "del", "cloister0", check=False)
    mesh.w1.exec("ip", "route", "replace", "10.77.0.0/16", "dev", "eth0")
    pcap = tmp_path / "leak.pcap"
    cap = subprocess.Popen(["ip", "netns", "exec", mesh.net.br, "tcpdump", "-i", mesh.w1.veth,
                            "-U", "-w", str(pcap)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        r = mesh.w1.exec("python3", "-c",
                         "import socket\n"
                         "try:\n"
                         "    socket.create_connection(('10.77.0.2', 7777), timeout=3)\n"
                         "    print('connected')\n"
                         "except OSError as e: print('refused', e)\n", check=False)
        assert "connected" not in r.stdout
        time.sleep(1)
    finally:
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=10)
    assert "10.77." not in sh("tcpdump", "-nn", "-r", pcap).stdout
    rules = mesh.w1.exec("nft", "list", "table", "inet", "cloister-mesh").stdout
    assert "10.77.0.0/16" in rules and "drop" in rules
