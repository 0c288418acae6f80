#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Seeds of fuzz-http-request (tests/fuzz/corpus/fuzz-http-request/): one byte of options (bit 0:
the client attests), then the bytes sent after the aTLS handshake. A valid request for every
route of the join service and the bootstrapper, with and without an attested client, and the
framing cases: chunked bodies, a body over the limit, oversize and malformed headers, pipelined
requests, a query, a wrong method, a truncated request."""
import json
import sys
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus" / "fuzz-http-request")


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n{extra}\r\n".encode()


def post(path, body, extra=""):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n{extra}\r\n").encode() + b


def chunked(path, body, sizes):
    out = (f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    i = 0
    for n in sizes:
        out += f"{n:x}\r\n".encode() + body[i:i + n] + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


join = {"ticketRequest": "AAAA", "name": "worker-1", "role": "worker"}
seeds = {
    "get-node": (0, get("/v1/node")),
    "get-node-query": (0, get("/v1/node?verbose=1&x=%41")),
    "get-members": (0, get("/v1/members")),
    "get-audit": (0, get("/v1/audit?from=0&limit=100")),
    "post-join-attested": (1, post("/v1/join", join)),
    "post-join-unattested": (0, post("/v1/join", join)),
    "post-rejoin-attested": (1, post("/v1/rejoin", {"name": "worker-1"})),
    "post-init": (0, post("/v1/init", {"initSecret": "s3cret", "config": {}})),
    "post-policy": (0, post("/v1/policy", {"version": 2, "authenticator": "AA", "policy": {}})),
    "post-recover": (0, post("/v1/recover", {"secret": "x"})),
    "post-log": (0, post("/v1/log", {"lines": ["a", "b"]})),
    "post-init-chunked": (0, chunked("/v1/init", json.dumps({"initSecret": "abc"}).encode(), [3, 5, 100])),
    "post-join-chunked-attested": (1, chunked("/v1/join", json.dumps(join).encode(), [1, 10, 1000])),
    "post-body-over-limit": (1, post("/v1/join", {"pad": "A" * 9000})),
    "post-content-length-huge": (0, b"POST /v1/init HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{}"),
    "post-content-length-twice": (0, b"POST /v1/init HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    "post-no-body": (0, b"POST /v1/init HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
    "post-bad-json": (0, post("/v1/init", b"{\"a\":")),
    "post-body-not-object": (0, post("/v1/log", b"[1,2,3]")),
    "header-oversize": (0, get("/v1/node", "X-Pad: " + "B" * 5000 + "\r\n")),
    "header-many": (0, get("/v1/node", "".join(f"X-H{i}: {i}\r\n" for i in range(300)))),
    "header-folded": (0, get("/v1/node", "X-A: one\r\n two\r\n")),
    "header-no-colon": (0, get("/v1/node", "NoColonHere\r\n")),
    "pipelined": (0, get("/v1/node") + get("/v1/members") + post("/v1/init", {"a": 1})),
    "pipelined-keepalive": (0, get("/v1/node", "Connection: keep-alive\r\n") + get("/v1/audit")),
    "http10": (0, b"GET /v1/node HTTP/1.0\r\n\r\n"),
    "http09": (0, b"GET /v1/node\r\n\r\n"),
    # Found by this target: libevent takes these versions and answered in them ("HTTP/0.1 403").
    "version-0.1-found": (0, post("/v1/join", join).replace(b"HTTP/1.1", b"HTTP/0.1")),
    "version-1.200": (0, get("/v1/node").replace(b"HTTP/1.1", b"HTTP/1.200")),
    "version-negative": (0, get("/v1/node").replace(b"HTTP/1.1", b"HTTP/-3.7")),
    "version-bad-header-0.9": (0, b"GET /v1/node HTTP/0.9\r\nNoColon\r\n\r\n"),
    "method-put": (0, b"PUT /v1/node HTTP/1.1\r\nHost: x\r\n\r\n"),
    "method-wrong-route": (0, b"GET /v1/init HTTP/1.1\r\nHost: x\r\n\r\n"),
    "path-unknown": (0, get("/v1/nothing")),
    "path-long": (0, get("/v1/" + "p" * 300)),
    "path-absolute-uri": (0, get("http://127.0.0.1:7000/v1/node")),
    "truncated": (0, b"POST /v1/init HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\""),
    "bare-lf": (0, b"GET /v1/node HTTP/1.1\nHost: x\n\n"),
    "get-with-body": (0, get("/v1/node", "Content-Length: 7\r\n") + b"{\"a\":1}"),
    "expect-continue": (0, post("/v1/init", {"a": 1}, "Expect: 100-continue\r\n")),
    "empty": (0, b""),
    "garbage": (0, bytes(range(256))),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, (opts, data) in seeds.items():
    (OUT / name).write_bytes(bytes([opts]) + data)
print(f"{len(seeds)} seeds in {OUT}")
