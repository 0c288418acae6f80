# SPDX-License-Identifier: Apache-2.0
"""`cloister config generate gcp --tee tdx`: a TDX policy whose MRTD and RTMRs only the owner can
know are written as null placeholders, every command refuses them until filled (never read as
"any"), and the output says what to fill in and from where."""
import json

from conftest import TESTDATA, run

UPTODATE = TESTDATA / "tdx" / "dcapqvl-b0c06f-uptodate"


def generate(tmp_path, provider="gcp"):
    cfg = tmp_path / "cloister.json"
    return cfg, run("cloister", "config", "generate", provider, "--tee", "tdx", "--file", cfg)


def test_gcp_tdx_config_has_placeholders_and_says_what_to_fill_in_from_where(tmp_path):
    cfg, r = generate(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "attestation variant tdx" in r.stdout
    c = json.loads(cfg.read_text())
    assert c["attestation"] == {"version": 1, "variant": "tdx",
                                "tdx": {"mrTd": None, "rtmr0": None, "rtmr1": None,
                                        "rtmr2": None}}
    assert c["infrastructure"]["tee"] == "tdx"
    assert c["infrastructure"]["controlPlaneInstanceType"].startswith("c3-")
    for field in ("mrTd", "rtmr0", "rtmr1", "rtmr2"):
        line = next(x for x in r.stdout.splitlines() if f"attestation.tdx.{field}:" in x)
        assert "cloister attestation verify-report --type tdx" in line or \
            "as verify-report prints it" in line, line


def test_tdx_placeholders_are_refused_by_verify_and_apply_naming_the_field(tmp_path):
    cfg, r = generate(tmp_path)
    assert r.returncode == 0, r.stderr
    for cmd in (["verify", "--node", "127.0.0.1:1", "--config", cfg],
                ["apply", "--endpoint", "https://127.0.0.1:1", "--config", cfg,
                 "--state-file", tmp_path / "state.json"]):
        r = run("cloister", *cmd)
        assert r.returncode == 1, r.stdout + r.stderr
        assert ".tdx.mrTd is not set yet" in r.stderr, r.stderr
        assert "verify-report --type tdx --quote Q" in r.stderr
    # Filled MRTD, one RTMR still a placeholder: refused naming it, with the way out.
    c = json.loads(cfg.read_text())
    c["attestation"]["tdx"]["mrTd"] = ["ab" * 48]
    del c["attestation"]["tdx"]["rtmr1"], c["attestation"]["tdx"]["rtmr2"]
    cfg.write_text(json.dumps(c))
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", cfg)
    assert r.returncode == 1 and ".tdx.rtmr0 is not set yet" in r.stderr, r.stderr
    assert "remove the key to leave that RTMR unpinned" in r.stderr
    # All filled or removed: the policy loads; what fails now is reaching the node.
    c["attestation"]["tdx"]["rtmr0"] = ["cd" * 48]
    cfg.write_text(json.dumps(c))
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", cfg)
    assert r.returncode != 0 and "not set yet" not in r.stderr, r.stderr


def test_tdx_policy_with_a_null_mrtd_is_refused_by_verify_report(tmp_path):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"version": 1, "variant": "tdx", "tdx": {"mrTd": None}}))
    r = run("cloister", "attestation", "verify-report", "--type", "tdx", "--quote",
            UPTODATE / "quote.bin", "--collateral", UPTODATE, "--at", "2025-07-19T10:00:34Z",
            "--policy", p)
    assert r.returncode != 0 and "Verdict: PASS" not in r.stdout
    assert ".tdx.mrTd is not set yet" in r.stderr, r.stdout + r.stderr


def test_tdx_is_refused_where_this_build_has_no_tdx_variant_for_the_cloud(tmp_path):
    _, r = generate(tmp_path, "azure")
    assert r.returncode == 2 and "azure-tdx variant" in r.stderr
    _, r = generate(tmp_path, "aws")
    assert r.returncode == 2 and "AWS sells SEV-SNP only" in r.stderr
    _, r = generate(tmp_path, "qemu")
    assert r.returncode == 2 and "mini --tee sim-tdx" in r.stderr
    assert not (tmp_path / "cloister.json").exists()
