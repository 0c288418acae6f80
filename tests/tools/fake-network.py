#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A compromised network process, for tests only: the join service's fault build execs it in
place of its network process (CLOISTER_FAKE_NETWORK). It sends the monitor the requests listed in
$FAKE_NETWORK_REQUESTS (JSON: [{"channel": N, "message": HEX}], each a whole message without its
length word) and writes what comes back to $FAKE_NETWORK_REPLIES (JSON: [HEX or "EOF"])."""
import json
import os
import socket
import struct


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    fds = [int(x) for x in os.environ["CLOISTER_CHANNEL_FDS"].split(",")]
    channels = [socket.socket(fileno=fd) for fd in fds]
    replies = []
    for req in json.load(open(os.environ["FAKE_NETWORK_REQUESTS"])):
        s = channels[req["channel"]]
        msg = bytes.fromhex(req["message"])
        try:
            s.sendall(struct.pack("<I", len(msg)) + msg)
            head = recv_exact(s, 4)
            body = recv_exact(s, struct.unpack("<I", head)[0]) if head else None
        except OSError:
            body = None
        replies.append(body.hex() if body is not None else "EOF")
    with open(os.environ["FAKE_NETWORK_REPLIES"], "w") as f:
        json.dump(replies, f)


if __name__ == "__main__":
    main()
