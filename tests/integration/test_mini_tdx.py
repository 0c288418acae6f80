# SPDX-License-Identifier: Apache-2.0
"""`cloister mini up --tee sim-tdx`: the namespace cluster whose nodes attest with simulated TDX
(the production TDX verification under a root made for this cluster), joined and verified with
`cloister verify --cluster`, then removed without a trace. As a real TD's, the nodes' evidence
carries no collateral: the join service, the joining nodes and the owner's CLI take the simulated
platform's from their own caches (docs/tdx.md, "The other direction")."""
import base64
import json
import os
import re

from conftest import run
from test_audit_checkpoints import canon, swap_bundle_checkpoint
from test_mini import assert_nothing_left, mini, mini_env, ws  # noqa: F401 (fixture)


def test_mini_up_with_sim_tdx_joins_and_verifies_every_node_as_tdx(tmp_path, ws):
    env = mini_env(tmp_path, 9741)
    up = mini(env, ws, "up", "--nodes", "2", "--tee", "sim-tdx", timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "SIMULATED TDX" in up.stdout
        policy = json.loads((ws / "cloister.json").read_text())["attestation"]
        assert policy["variant"] == "sim-tdx" and "trustedRoot" in policy["tdx"]
        # Each node's verification ran the TDX checks and the TPM identity beside them.
        for i in (1, 2):
            out = (ws / "cloister-mini" / "owner" / f"verify-node{i}.txt").read_text()
            assert "tdx-quote-signature" in out and "tdx-mrtd" in out, out
            assert "tpm-identity" in out, out
            # The evidence carried no collateral: the owner's cache gave it, judged in full.
            assert re.search(r"PASS\s+tdx-collateral-cache", out), out
            assert "from the collateral cache" in out and re.search(r"PASS\s+tdx-tcb-status",
                                                                     out), out
        cache = ws / "cloister-mini" / "owner" / "cache" / "cloister" / "tdx"
        assert (cache / "fmspc-5e5170000000" / "tcb_info.json").exists()
        # The same from a cache given explicitly, offline; an empty one is refused naming the
        # platform and the next step.
        node2 = re.search(r"cloister verify --node (\S+)", up.stdout.split("node2,")[1]).group(1)
        r = mini(env, ws, "exec", "--", "cloister", "verify", "--node", node2, "--pcs-cache",
                 str(cache), cwd=ws)
        assert r.returncode == 0 and "Verification OK" in r.stdout, r.stdout + r.stderr
        r = mini(env, ws, "exec", "--", "cloister", "verify", "--node", node2, "--pcs-cache",
                 str(ws / "no-such-cache"), cwd=ws)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "no TDX collateral cached for FMSPC 5e5170000000" in r.stdout + r.stderr
        r = mini(env, ws, "exec", "--", "cloister", "verify", "--cluster", cwd=ws)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "mini-node-2" in r.stdout
        assert "attestation sim-tdx (SIMULATED: no hardware protects these nodes)" in r.stdout
        # Its join service's audit chain is checked and its head signed by its TPM identity key.
        assert "chain OK" in r.stdout and "head signed by its attestation key" in r.stdout, \
            r.stdout
        # The checkpoint is the TPM identity key's quote of the head: a bundle whose checkpoint
        # claims another time (the quote's binding no longer matches) is refused offline.
        bundle = ws / "tdx.bundle"
        b = mini(env, ws, "exec", "--", "cloister", "verify", "--cluster", "--bundle",
                 str(bundle), cwd=ws)
        assert b.returncode == 0, b.stdout + b.stderr
        # The bundle does not carry the cached collateral: offline, from the cache.
        again = run("cloister", "verify", "--bundle", bundle, "--pcs-cache", cache)
        assert again.returncode == 0, again.stdout + again.stderr
        # Without it, from the user's cache, offline (no connection): an empty one is refused.
        empty = run("cloister", "verify", "--bundle", bundle,
                    env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "xdg")))
        assert empty.returncode == 1, empty.stdout + empty.stderr
        assert "no TDX collateral cached for FMSPC 5e5170000000" in empty.stdout + empty.stderr
        assert "verify --bundle fetches nothing" in empty.stdout + empty.stderr
        doc = json.loads(bundle.read_bytes())
        cp = json.loads(base64.b64decode(doc["entries"]["audit/0/checkpoint"]))
        cp["time"] = "2030-01-01T00:00:00Z"
        edited = swap_bundle_checkpoint(bundle, ws / "edited.bundle", canon(cp) + "\n")
        e = run("cloister", "verify", "--bundle", edited, "--pcs-cache", cache)
        assert e.returncode == 1 and "signed checkpoint refused" in e.stdout, e.stdout + e.stderr
        bundle.unlink()
        edited.unlink()
    finally:
        down = mini(env, ws, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert_nothing_left(ws)


def test_mini_sim_tdx_refuses_vm_nodes_and_says_why(tmp_path, ws):
    env = mini_env(tmp_path, 9742)
    r = mini(env, ws, "up", "--vm", "--tee", "sim-tdx")
    assert r.returncode == 2
    assert "--tee sim-tdx runs in namespace nodes only (--netns)" in r.stderr
    assert_nothing_left(ws)


def test_mini_refuses_an_unknown_tee(tmp_path, ws):
    env = mini_env(tmp_path, 9743)
    r = mini(env, ws, "up", "--netns", "--tee", "sev")
    assert r.returncode == 2 and "--tee 'sev': use sim-tdx" in r.stderr
    assert_nothing_left(ws)
