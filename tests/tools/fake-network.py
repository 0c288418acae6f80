#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A compromised network process, for tests only: the join service's fault build execs it in
place of its network process (CLOISTER_FAKE_NETWORK). It sends the monitor the requests listed in
$FAKE_NETWORK_REQUESTS and writes what comes back to $FAKE_NETWORK_REPLIES (JSON: [HEX or
"EOF"]). A request is either

    {"channel": N, "message": HEX}  a whole message without its length word, or
    {"channel": N, "issued": {"op": OP, "spki": HEX, "fields": [HEX...], "issue": [ARGV...],
                              "repeat": K}}

The second asks the monitor for a nonce (as the real network process does for each handshake),
has ARGV (`cloister attestation issue ... --output-file FILE`) make a client's
evidence bound to that nonce and SPKI (qemu-vtpm, docs/atls.md), and sends OP with
evidence, nonce, SPKI and the fields K times (a replay after the first): one reply each."""
import hashlib
import json
import os
import socket
import struct
import subprocess

NONCE = 10  # JOIN_PRIVSEP_NONCE


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def exchange(s, msg):
    try:
        s.sendall(struct.pack("<I", len(msg)) + msg)
        head = recv_exact(s, 4)
        return recv_exact(s, struct.unpack("<I", head)[0]) if head else None
    except OSError:
        return None


def message(op, *fields):
    out = bytes([op]) + struct.pack("<iB", 0, len(fields))
    for f in fields:
        out += struct.pack("<I", len(f)) + f
    return out


def answer(reply):
    """The answer field (the second text) of a reply."""
    pos, fields = 6, []
    for _ in range(reply[5]):
        size = struct.unpack("<I", reply[pos:pos + 4])[0]
        fields.append(reply[pos + 4:pos + 4 + size].rstrip(b"\0"))
        pos += 4 + size
    return fields[1]


def issued(s, req):
    reply = exchange(s, message(NONCE))
    if reply is None or struct.unpack("<i", reply[1:5])[0] != 0:
        return [reply.hex() if reply else "EOF"]
    nonce = bytes.fromhex(answer(reply).decode())
    spki = bytes.fromhex(req["spki"])
    binding = hashlib.sha256(b"cloister-atls-v1\0qemu-vtpm\0client\0" + nonce +
                             hashlib.sha256(spki).digest()).digest()
    subprocess.run(req["issue"] + ["--binding", binding.hex()], check=True,
                   capture_output=True)
    evidence = open(req["issue"][req["issue"].index("--output-file") + 1], "rb").read()
    msg = message(req["op"], evidence, nonce, spki, *(bytes.fromhex(f) for f in req["fields"]))
    out = []
    for _ in range(req.get("repeat", 1)):
        reply = exchange(s, msg)
        out.append(reply.hex() if reply is not None else "EOF")
    return out


def main():
    fds = [int(x) for x in os.environ["CLOISTER_CHANNEL_FDS"].split(",")]
    channels = [socket.socket(fileno=fd) for fd in fds]
    replies = []
    for req in json.load(open(os.environ["FAKE_NETWORK_REQUESTS"])):
        s = channels[req["channel"]]
        if "issued" in req:
            replies += issued(s, req["issued"])
            continue
        body = exchange(s, bytes.fromhex(req["message"]))
        replies.append(body.hex() if body is not None else "EOF")
    with open(os.environ["FAKE_NETWORK_REPLIES"], "w") as f:
        json.dump(replies, f)


if __name__ == "__main__":
    main()
