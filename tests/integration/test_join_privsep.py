# SPDX-License-Identifier: Apache-2.0
"""Privilege separation of the join service (docs/join.md, "Privilege separation"): the process
that parses attacker bytes (TLS, HTTP, JSON, evidence) holds no master secret, disk key, bootstrap
token or certificate key; its monitor does, and answers typed requests only. Proven by reading
both processes' memory (/proc/PID/mem through /proc/PID/maps) after real joins: the secrets are
in the monitor and nowhere in the network process. The network process runs with no
capabilities under a seccomp filter (what the filter does is proven in tests/unit/test-sandbox.c)."""
import base64
import json
import re
import subprocess

import pytest

from test_join import Cluster, probe  # noqa: F401 (fixtures and helpers)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def network_pid(cp):
    pid = int(re.search(r"network process (\d+) serves", cp.log.read_text()).group(1))
    status = open(f"/proc/{pid}/status").read()
    # The network process is the monitor's child (the bootstrapper exec'd the monitor).
    assert int(re.search(r"PPid:\s+(\d+)", status).group(1)) == cp.proc.pid
    return pid


def memory(pid):
    """Every readable mapping of the process, concatenated (separated so no match spans two)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except (OSError, OverflowError, ValueError):
                continue  # [vvar], [vsyscall] and the like
    return b"\0\0\0\0".join(chunks)


def forms(name, raw):
    """A secret as it could sit in memory: its bytes, base64 (JSON tickets), hex (kubeadm)."""
    out = {f"{name} (raw)": raw}
    if not raw.isascii() or len(raw) == 32:
        out[f"{name} (base64)"] = base64.b64encode(raw)
        out[f"{name} (hex)"] = raw.hex().encode()
    return out


def test_network_process_holds_no_secret_after_joins_and_the_monitor_holds_them(cluster):
    cp, w, cp2 = cluster.node("cp-1"), cluster.node("worker-1"), cluster.node("cp-2")
    policy = cluster.policy([cp, w, cp2])
    cluster.init(cp, policy)
    # A worker joins through its bootstrapper (token, disk key); a control plane asks with the
    # owner's authorization (certificate key, master secret in its ticket).
    cluster.join(w, policy)
    w.wait_for("serving node state")
    rc, out = probe(cluster, "--tcti", cp2.tpm.tcti, "--name", "cp-2", "--control-plane",
                    "--authorization", cluster.authorize("cp-2"))
    assert rc == 0, out
    ticket = json.loads(out.split(" ", 2)[2])
    ms = json.loads(cluster.ms.read_text())
    secrets = {}
    secrets.update(forms("master secret", base64.b64decode(ms["key"])))
    secrets.update(forms("worker-1 disk key", cluster.disk_key(w)))
    secrets.update(forms("cp-2 disk key", base64.b64decode(ticket["diskKey"])))
    secrets.update(forms("measurement secret", base64.b64decode(ticket["measurementSecret"])))
    tokens = list(cluster.tokens())
    assert len(tokens) == 2 and ticket["token"] in tokens
    for i, t in enumerate(tokens):
        secrets[f"bootstrap token {i} (whole)"] = t.encode()
        secrets[f"bootstrap token {i} (secret part)"] = t.split(".")[1].encode()
    certkey = json.loads((cp.state / "uploaded-certs.json").read_text())["certificateKey"]
    assert ticket["certificateKey"] == certkey
    secrets["certificate key (hex)"] = certkey.encode()
    secrets.update(forms("certificate key", bytes.fromhex(certkey)))

    net = network_pid(cp)
    found = {name for name, needle in secrets.items() if needle in memory(net)}
    assert not found, f"the network process {net} holds: {sorted(found)}"
    # The same scan finds them in the monitor (the test can fail): the master secret it holds,
    # and the tickets it keeps for a member whose answer was lost (disk keys, tokens, the
    # certificate key).
    mon = memory(cp.proc.pid)
    for what in ("master secret", "worker-1 disk key", "cp-2 disk key", "certificate key",
                 "bootstrap token 0", "bootstrap token 1"):
        assert any(needle in mon for name, needle in secrets.items() if name.startswith(what)), \
            f"the monitor does not hold the {what}: the scan proves nothing"


def test_network_process_runs_without_capabilities_under_seccomp_and_the_monitor_does_not(cluster):
    cp = cluster.node("cp-1")
    policy = cluster.policy([cp])
    cluster.init(cp, policy)
    net = network_pid(cp)
    status = dict(line.split(":", 1) for line in open(f"/proc/{net}/status").read().splitlines())
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[cap].strip(), 16) == 0, (cap, status[cap])
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2" and int(status["Seccomp_filters"].strip()) >= 1
    # Every thread of it (the filter is synchronised to all).
    for tid in subprocess.run(["ls", f"/proc/{net}/task"], capture_output=True, text=True,
                              check=True).stdout.split():
        t = open(f"/proc/{net}/task/{tid}/status").read()
        assert re.search(r"Seccomp:\s+2", t) and re.search(r"CapEff:\s+0+\n", t), tid
    # The monitor keeps its privileges (it runs kubeadm and writes the state disk).
    mon = open(f"/proc/{cp.proc.pid}/status").read()
    assert re.search(r"Seccomp:\s+0", mon)

