# SPDX-License-Identifier: Apache-2.0
"""Bad inputs to every cloister command: exactly one error line on stderr, the last one, naming
the cause; exit status 1 (2 for a usage error); no stack of errors (a progress line before it
is fine), nothing on stdout but a verdict line where there is one."""
import json
import socket
import threading

import pytest

from conftest import run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-errors")
    (d / "malformed.json").write_text('{"version": 1, "variant": ')
    (d / "policy.json").write_text(json.dumps({
        "version": 1, "variant": "qemu-vtpm",
        "measurements": {i: {"expected": "00" * 32} for i in ("4", "9", "11", "15")},
        "akTrust": {"mode": "insecure-any"}}))
    (d / "state.json").write_text("{}")
    assert run("cloister", "master-secret", "generate", "--file", d / "ms.json").returncode == 0
    assert run("cloister", "init-secret", "generate", "--file", d / "init").returncode == 0
    return d


@pytest.fixture(scope="module")
def silent_port():
    """A TCP port that accepts and then says nothing: a node that hangs."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    conns = []
    stop = threading.Event()

    def accept():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(s.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    for c in conns:
        c.close()
    s.close()


@pytest.fixture(scope="module")
def plain_port():
    """A TCP port that answers plain HTTP: the wrong service on the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    stop = threading.Event()

    def serve():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                c = s.accept()[0]
            except OSError:
                continue
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join()
    s.close()


def cases(d, silent, plain):
    def apply_(tag):
        # Each case its own state file (a failed apply that sent nothing writes none).
        return ["apply", "--master-secret", d / "ms.json", "--init-secret-file", d / "init",
                "--state-file", d / f"state-{tag}.json", "--kubeconfig", d / "none.conf"]
    verify = ["verify", "--policy", d / "policy.json", "--timeout", "2"]
    return [
        ("apply: missing policy", apply_(1) + ["--endpoint", "https://127.0.0.1:1", "--policy",
                                           d / "none.json"], "cannot read"),
        ("apply: malformed policy", apply_(2) + ["--endpoint", "https://127.0.0.1:1", "--policy",
                                             d / "malformed.json"], "malformed.json:1:"),
        ("apply: unreachable node", apply_(3) + ["--endpoint", "https://127.0.0.1:1", "--policy",
                                             d / "policy.json", "--timeout", "2"],
         "not initialised"),
        ("apply: wrong port", apply_(4) + ["--endpoint", f"https://127.0.0.1:{plain}", "--policy",
                                       d / "policy.json", "--timeout", "2"], "not initialised"),
        ("apply: node hangs", apply_(5) + ["--endpoint", f"https://127.0.0.1:{silent}", "--policy",
                                       d / "policy.json", "--timeout", "2"], "not initialised"),
        ("apply: malformed state file", apply_(0)[:5] + ["--state-file", d / "state.json",
                                                     "--endpoint", "https://127.0.0.1:1",
                                                     "--policy", d / "policy.json"],
         "required key is missing"),
        ("verify: missing policy", ["verify", "--node", "127.0.0.1:1", "--policy",
                                    d / "none.json"], "cannot read"),
        ("verify: unreachable node", verify + ["--node", "127.0.0.1:1"], "127.0.0.1:1"),
        ("verify: node hangs", verify + ["--node", f"127.0.0.1:{silent}"], "127.0.0.1"),
        ("verify: bad node", verify + ["--node", "::1"], "HOST[:PORT]"),
        ("master-secret check: malformed", ["master-secret", "check", "--file",
                                            d / "malformed.json"], "malformed.json"),
        ("init-secret hash: missing", ["init-secret", "hash", "--file", d / "none"],
         "cannot read the init secret"),
        ("attestation verify: missing", ["attestation", "verify", "--policy",
                                         d / "policy.json", d / "none.json"], "none.json"),
        ("attestation verify: --binding with --no-binding",
         ["attestation", "verify", "--evidence", d / "none.json", "--policy", d / "policy.json",
          "--binding", "ab" * 32, "--no-binding"], "--binding and --no-binding exclude each other"),
        ("unknown command", ["frobnicate"], "unknown command"),
    ]


# Usage errors (a command or option that does not exist, a missing or malformed argument): exit
# status 2; everything else that fails: 1.
USAGE_ERRORS = {"unknown command", "verify: bad node", "attestation verify: missing",
                "attestation verify: --binding with --no-binding"}


def test_every_bad_input_gives_one_line_and_exit_1_or_2_for_usage(files, silent_port, plain_port):
    for name, args, why in cases(files, silent_port, plain_port):
        r = run("cloister", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == (2 if name in USAGE_ERRORS else 1), (name, r.returncode, r.stderr)
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], (name, r.stderr)
        assert all(not line.startswith(("warning:", "Traceback")) for line in lines), name
        assert why in errors[0], (name, errors[0])
        out = r.stdout.strip().splitlines()
        assert all(line.startswith(("Verification FAILED", "node ", "Verifying")) for line in out
                   ) or not out, (name, r.stdout)
