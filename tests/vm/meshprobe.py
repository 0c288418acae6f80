# SPDX-License-Identifier: Apache-2.0
"""TCP streams between guests for the mesh e2e tests and the mesh bench, driven through the TEST
image's command channel (vmcluster.Node.guest): a receiver that records, per connection, how many
bytes arrived and their SHA-256, and a sender that sends a marker string over and over and reports
its throughput. Both are python3 -c programs run by argument vector in the guest."""
import json

import vmcluster

# The receiver: bound to ADDR:PORT, one line "<bytes> <sha256>" per connection appended to OUT.
RECEIVER = r"""
import hashlib, socket, sys
addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(4)
open(out, "a").close()
while True:
    c, _ = s.accept()
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b)
        n += len(b)
    with open(out, "a") as f:
        f.write(f"{n} {h.hexdigest()}\n")
    c.close()
"""

# The sender: connects (retrying until the deadline), sends SIZE bytes of MARKER repeated,
# waits for the receiver to close, prints JSON {bytes, seconds, sha256}. Exit 3: no connection.
SENDER = r"""
import hashlib, json, socket, sys, time
addr, port, size, marker, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
data = (marker.encode() * (size // len(marker) + 1))[:size]
deadline = time.monotonic() + wait
while True:
    try:
        c = socket.create_connection((addr, port), timeout=max(1, deadline - time.monotonic()))
        break
    except OSError as e:
        if time.monotonic() >= deadline:
            print(json.dumps({"error": str(e)}))
            sys.exit(3)
        time.sleep(0.5)
c.settimeout(600)
t0 = time.monotonic()
c.sendall(data)
c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
print(json.dumps({"bytes": len(data), "seconds": time.monotonic() - t0,
                  "sha256": hashlib.sha256(data).hexdigest()}))
"""


def start_receiver(node, addr, port, out):
    node.guest("rm", "-f", out)
    node.guest("python3", "-c", RECEIVER, addr, str(port), out, background=True)
    vmcluster.wait_until(f"{node.name}: receiver on {addr}:{port}",
                         lambda: node.guest("test", "-e", out, check=False).returncode == 0, 120)


def received(node, out):
    """[(bytes, sha256)] of every connection the receiver finished."""
    r = node.guest("cat", out, check=False)
    return [(int(n), h) for n, h in (line.split() for line in r.stdout.splitlines())]


def send(node, addr, port, size, marker, wait=60):
    """Sends from node; {bytes, seconds, sha256}, or {error} when no connection was made."""
    r = node.guest("python3", "-c", SENDER, addr, str(port), str(size), marker, str(wait),
                   timeout=wait + 900, check=False)
    if r.returncode not in (0, 3):
        raise vmcluster.ClusterError(f"{node.name}: the sender failed ({r.returncode}): "
                                     f"{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def mesh_address(node):
    """The node's address on cloister0, or None while it has none."""
    r = node.guest("ip", "-4", "-o", "address", "show", "dev", "cloister0", check=False)
    for word in r.stdout.split():
        if "/" in word and word[0].isdigit():
            return word.split("/")[0]
    return None


def wg_dump(node, device="cloister0"):
    """The device as `wg show DEVICE public-key|endpoints|allowed-ips|latest-handshakes|transfer`
    report it (never `dump`, which prints the private key): (own public key, {peer key:
    {endpoint, allowed, handshake, rx, tx}}), or (None, {}) while there is no device."""
    def show(what):
        r = node.guest("wg", "show", device, what, check=False)
        return r.stdout if r.returncode == 0 else None
    own = show("public-key")
    if own is None:
        return None, {}
    # Each listing is one `wg` run: a peer the bootstrapper adds or removes between them is in
    # some listings only, so every field has a default (the next poll sees it whole).
    peers = {k: {"endpoint": None, "allowed": "", "handshake": 0, "rx": 0, "tx": 0}
             for k in (show("peers") or "").split()}
    for what, field in (("endpoints", "endpoint"), ("allowed-ips", "allowed"),
                        ("latest-handshakes", "handshake"), ("transfer", "rx")):
        for line in (show(what) or "").splitlines():
            f = line.split("\t")
            if f[0] not in peers or len(f) < (3 if field == "rx" else 2):
                continue
            entry = peers[f[0]]
            if field == "endpoint":
                entry[field] = f[1]
            elif field == "allowed":
                entry[field] = ",".join(f[1].split())
            elif field == "handshake":
                entry[field] = int(f[1])
            else:
                entry["rx"], entry["tx"] = int(f[1]), int(f[2])
    return own.strip(), peers


def wait_for_peering(a, b, timeout=900):
    """Waits until a and b each list the other as their one peer (by the key the other's device
    holds) with a completed handshake; returns ((addr_a, key_a), (addr_b, key_b))."""
    def ready():
        state = []
        for x in (a, b):
            addr = mesh_address(x)
            own, peers = wg_dump(x)
            if addr is None or own is None:
                return None
            state.append((addr, own, peers))
        (aa, ka, pa), (ab, kb, pb) = state
        if kb in pa and ka in pb and pa[kb]["handshake"] and pb[ka]["handshake"]:
            return (aa, ka), (ab, kb)
        return None
    return vmcluster.wait_until(f"{a.name} and {b.name} peered on cloister0", ready, timeout)
