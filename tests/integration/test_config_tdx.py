# SPDX-License-Identifier: Apache-2.0
"""`cloister config generate gcp --tee tdx`: a TDX policy whose MRTD and RTMRs only the owner can
know are written as null placeholders, every command refuses them until filled (never read as
"any"), and the output says what to fill in and from where."""
import json

from conftest import ROOT, TESTDATA, run

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


def test_tdx_is_refused_where_the_cloud_has_no_tdx(tmp_path):
    _, r = generate(tmp_path, "aws")
    assert r.returncode == 2 and "AWS sells SEV-SNP only" in r.stderr
    _, r = generate(tmp_path, "qemu")
    assert r.returncode == 2 and "mini --tee sim-tdx" in r.stderr
    assert not (tmp_path / "cloister.json").exists()


MEASUREMENTS = ROOT / "tests" / "fuzz" / "corpus" / "fuzz-measurements" / "v2-tdx.json"


def test_gcp_tdx_measurements_fill_the_predicted_rtmrs_and_leave_mrtd_and_rtmr0(tmp_path):
    cfg = tmp_path / "cloister.json"
    r = run("cloister", "config", "generate", "gcp", "--tee", "tdx", "--measurements",
            MEASUREMENTS, "--file", cfg)
    assert r.returncode == 0, r.stderr
    want = json.loads(MEASUREMENTS.read_text())["tdx"]
    tdx = json.loads(cfg.read_text())["attestation"]["tdx"]
    assert tdx["mrTd"] is None and tdx["rtmr0"] is None, tdx
    assert tdx["rtmr1"] == [want["rtmr1"]] and tdx["rtmr2"] == [want["rtmr2"]], tdx
    # Only what is still null is listed to fill in.
    assert "attestation.tdx.mrTd:" in r.stdout and "attestation.tdx.rtmr0:" in r.stdout
    assert "attestation.tdx.rtmr1:" not in r.stdout, r.stdout
    # A file that predicts no RTMR is refused, naming where they come from.
    plain = json.loads(MEASUREMENTS.read_text())
    del plain["tdx"]
    f = tmp_path / "m.json"
    f.write_text(json.dumps(plain))
    r = run("cloister", "config", "generate", "gcp", "--tee", "tdx", "--measurements", f,
            "--file", tmp_path / "other.json", "--force")
    assert r.returncode != 0 and 'no "tdx" section' in r.stderr, r.stderr


def test_azure_tdx_config_is_azure_tdx_with_the_paravisor_mrtd_to_fill_and_pcrs(tmp_path):
    cfg, r = generate(tmp_path, "azure")
    assert r.returncode == 0, r.stderr
    assert "attestation variant azure-tdx" in r.stdout
    c = json.loads(cfg.read_text())
    att = c["attestation"]
    assert att["variant"] == "azure-tdx"
    # The paravisor exception to SEPT_VE_DISABLE is written out, not implied.
    assert att["tdx"] == {"mrTd": None, "azureParavisor": True}, att
    assert all(att["measurements"][k]["expected"] is None for k in ("4", "9", "11"))
    assert c["infrastructure"]["tee"] == "tdx"
    assert c["infrastructure"]["controlPlaneInstanceType"] == "Standard_DC4es_v5"
    assert "Azure's paravisor" in r.stdout and "attestation.measurements.4.expected" in r.stdout
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", cfg)
    assert r.returncode == 1 and ".tdx.mrTd is not set yet" in r.stderr, r.stderr
    # With the image's PCRs and an observed MRTD the policy loads; what fails is the node.
    r = run("cloister", "config", "generate", "azure", "--tee", "tdx", "--measurements",
            MEASUREMENTS, "--file", cfg, "--force")
    assert r.returncode == 0, r.stderr
    c = json.loads(cfg.read_text())
    assert c["attestation"]["measurements"]["4"]["expected"] == \
        json.loads(MEASUREMENTS.read_text())["measurements"]["4"]["expected"]
    c["attestation"]["tdx"]["mrTd"] = ["ab" * 48]
    cfg.write_text(json.dumps(c))
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", cfg)
    assert r.returncode != 0 and "not set yet" not in r.stderr, r.stderr
