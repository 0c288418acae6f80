# SPDX-License-Identifier: Apache-2.0
"""cloister config generate (every provider), the configuration file as the policy of
`cloister apply --config` and `cloister verify --config` (values not set yet are refused before
anything is sent), and `cloister mini` handing its arguments to the local-cluster script."""
import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, run
from test_attestation_cli import BINDING, ak_spki_b64, issue

sys.path.insert(0, str(ROOT / "tests" / "vm"))
import vmharness  # noqa: E402

ZERO = "00" * 32
VARIANTS = {"qemu": "qemu-vtpm", "gcp": "sev-snp", "azure": "azure-sev-snp", "aws": "sev-snp"}
# Event digests extended once into a fresh swtpm's PCR 4, 9 and 11: a stand-in for a boot of the
# image.
IMAGE_DIGESTS = {"4": "41" * 32, "9": "49" * 32, "11": "4b" * 32}


def one_error_line(r, status=1):
    """Exit status (1, or 2 for a usage error) with exactly one 'error:' line, the last one;
    returns it."""
    lines = r.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert len(errors) == 1 and lines[-1] == errors[0], r.stderr
    return errors[0]


def generate(tmp_path, *args, name="cloister.json"):
    path = tmp_path / name
    r = run("cloister", "config", "generate", *args, "--file", path)
    return r, path


def pcr_after_one_extend(digest_hex):
    """A SHA-256 PCR extended once from zero: H(0^32 || digest)."""
    return hashlib.sha256(bytes(32) + bytes.fromhex(digest_hex)).hexdigest()


def measurements_file(tmp_path, values):
    """A measurements file of exactly the shape `cloister-measure image -o json` prints: PCR 4,
    9, 11 and the PCRs it predicts to stay zero (8, 12, 13, 15)."""
    ms = {k: {"expected": v, "warnOnly": False} for k, v in values.items()}
    ms.update({k: {"expected": ZERO, "warnOnly": False} for k in ("8", "12", "13", "15")})
    path = tmp_path / "measurements.json"
    path.write_text(json.dumps({"version": 1, "image": "cloister.raw", "measurements": ms},
                               indent=2))
    return path


@pytest.fixture
def booted_swtpm(swtpm):
    """A swtpm whose PCR 4, 9 and 11 hold one extend each, as if the image had booted."""
    env = dict(os.environ, TPM2TOOLS_TCTI=swtpm.tcti)
    for pcr, digest in IMAGE_DIGESTS.items():
        subprocess.run(["tpm2_pcrextend", f"{pcr}:sha256={digest}"], env=env, check=True,
                       capture_output=True)
    return swtpm


@pytest.fixture
def listener():
    """A TCP port that records every connection: proof that nothing was sent."""
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
    yield s.getsockname()[1], conns
    stop.set()
    t.join()
    for c in conns:
        c.close()
    s.close()


@pytest.fixture
def owner(tmp_path):
    """The owner's secrets, for apply."""
    d = tmp_path / "owner"
    d.mkdir()
    assert run("cloister", "master-secret", "generate", "--file", d / "ms.json").returncode == 0
    assert run("cloister", "init-secret", "generate", "--file", d / "init").returncode == 0
    return d


def apply_args(owner, state, endpoint):
    return ["apply", "--master-secret", owner / "ms.json", "--init-secret-file", owner / "init",
            "--state-file", state, "--kubeconfig", owner / "admin.conf", "--endpoint", endpoint]


@pytest.mark.parametrize("provider", ["qemu", "gcp", "azure", "aws"])
def test_generate_writes_a_0600_config_with_the_providers_policy_and_lists_unset_values(
        tmp_path, provider):
    r, path = generate(tmp_path, provider)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = json.loads(path.read_text())
    pinned = json.loads((ROOT / "image" / "kubernetes.json").read_text())["version"]
    assert set(cfg) == {"version", "provider", "clusterName", "kubernetesVersion", "serviceCidr",
                        "attestation"} | ({"infrastructure"} if provider != "qemu" else set())
    assert cfg["version"] == 1 and cfg["provider"] == provider
    assert cfg["clusterName"] == "cloister" and cfg["kubernetesVersion"] == pinned
    assert cfg["serviceCidr"] == "10.96.0.0/12"
    att = cfg["attestation"]
    assert att["version"] == 1 and att["variant"] == VARIANTS[provider]
    unset = [line.split(":")[0].strip() for line in r.stdout.splitlines()
             if line.startswith("  attestation.")]
    if provider in ("qemu", "azure"):
        ms = att["measurements"]
        assert ms["15"] == {"expected": ZERO, "warnOnly": False}
        for pcr in ("4", "9", "11"):
            assert ms[pcr]["expected"] is None
            assert f"attestation.measurements.{pcr}.expected" in unset
    if provider == "qemu":
        assert att["akTrust"] == {"mode": "pinned", "akPublic": None}
        assert "attestation.akTrust.akPublic" in unset and "snp" not in att
        assert len(unset) == 4
    else:
        snp = att["snp"]
        assert snp == {"allowDebug": False, "allowMigrationAgent": False, "allowSmt": True,
                       "vmpl": 0, "minTcb": {"bootloader": 3, "tee": 0, "snp": 8,
                                             "microcode": 115},
                       "minGuestSvn": 0, "measurements": None}
        assert "akTrust" not in att and "attestation.snp.measurements" in unset
        assert len(unset) == (4 if provider == "azure" else 1)
    if provider in ("gcp", "aws"):
        assert "measurements" not in att


def test_generate_never_overwrites_without_force(tmp_path):
    path = tmp_path / "cloister.json"
    path.write_text("keep me")
    r, _ = generate(tmp_path, "gcp")
    assert "already exists" in one_error_line(r)
    assert path.read_text() == "keep me"
    r, _ = generate(tmp_path, "gcp", "--force", "--name", "prod")
    assert r.returncode == 0, r.stderr
    assert json.loads(path.read_text())["clusterName"] == "prod"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# The fields the uki_measurements file carries besides its PCRs.
UKI_VERSION, UKI_IMAGE_VERSION, UKI_CREATED = 100, "test-1.0", "2024-05-06T07:08:09Z"


def make_test_uki(d, osrel):
    """A real UKI (Debian's systemd-stub 254 and cloud kernel, as in test_uki_boot.py)."""
    (d / "parts").mkdir()
    try:
        parts = vmharness.debian_parts(d / "parts")
    except vmharness.HarnessError as e:
        pytest.fail(str(e))
    for name, text in (("initrd", "initrd"), ("osrel", osrel), ("cmdline", "quiet")):
        (d / name).write_text(text)
    uki = d / "uki.efi"
    subprocess.run([ROOT / "scripts/mkuki", "--stub", parts["stub"], "--linux", parts["kernel"],
                    "--initrd", d / "initrd", "--cmdline-file", d / "cmdline",
                    "--osrel", d / "osrel", "--output", uki], check=True, capture_output=True)
    return uki


@pytest.fixture(scope="module")
def test_uki(tmp_path_factory):
    return make_test_uki(tmp_path_factory.mktemp("uki"),
                         f'ID=debian\nIMAGE_ID=cloister-node\nIMAGE_VERSION="{UKI_IMAGE_VERSION}"\n')


@pytest.fixture(scope="module")
def uki_measurements(test_uki):
    """What `cloister-measure uki -o json` prints for a real UKI: the measurements file the image
    build publishes (its imageVersion from the UKI's os-release)."""
    m = run("cloister-measure", "uki", test_uki, "-o", "json", "--measurements-version",
            UKI_VERSION, "--created", UKI_CREATED)
    assert m.returncode == 0, m.stderr
    path = test_uki.parent / "m.json"
    path.write_text(m.stdout)
    return path


def test_measure_json_carries_the_version_image_and_creation_time_given(uki_measurements):
    doc = json.loads(uki_measurements.read_text())
    assert {k: v for k, v in doc.items() if k != "measurements"} == {
        "version": 2, "measurementsVersion": UKI_VERSION, "image": "uki.efi",
        "imageVersion": UKI_IMAGE_VERSION, "created": UKI_CREATED}


def test_measure_json_defaults_are_source_date_epoch_and_the_ukis_image_version(test_uki):
    """Reproducible: the same SOURCE_DATE_EPOCH gives the same bytes, versioned by that time."""
    env = dict(os.environ, SOURCE_DATE_EPOCH="1714979289")
    first = run("cloister-measure", "uki", test_uki, "-o", "json", env=env)
    again = run("cloister-measure", "uki", test_uki, "-o", "json", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    doc = json.loads(first.stdout)
    assert (doc["measurementsVersion"], doc["created"], doc["imageVersion"]) == \
        (1714979289, "2024-05-06T07:08:09Z", UKI_IMAGE_VERSION)
    bad = run("cloister-measure", "uki", test_uki, "-o", "json",
              env=dict(os.environ, SOURCE_DATE_EPOCH="yesterday"))
    assert bad.returncode == 1 and "SOURCE_DATE_EPOCH='yesterday'" in bad.stderr, bad.stderr


def test_measure_json_without_an_image_version_anywhere_names_the_option(tmp_path):
    uki = make_test_uki(tmp_path, "ID=debian\n")
    r = run("cloister-measure", "uki", uki, "-o", "json")
    assert r.returncode == 1 and "no IMAGE_VERSION" in r.stderr, r.stderr
    # -o json: the error as a document on stdout (docs/json.md), nothing else.
    assert "--image-version" in r.stderr and "--image-version" in json.loads(r.stdout)["error"][
        "message"]
    r = run("cloister-measure", "uki", uki, "-o", "json", "--image-version", "v2")
    assert r.returncode == 0 and json.loads(r.stdout)["imageVersion"] == "v2", r.stderr


@pytest.mark.parametrize("args,why", [
    (["--measurements-version", "0"], "a decimal integer 1..9007199254740991"),
    (["--measurements-version", "9007199254740992"], "a decimal integer"),
    (["--measurements-version", "-1"], "a decimal integer"),
    (["--created", "2024-05-06"], "an RFC 3339 UTC time"),
    (["--image-version", ""], "--image-version: 1 to 128 bytes"),
])
def test_measure_json_refuses_bad_field_options(test_uki, args, why):
    r = run("cloister-measure", "uki", test_uki, "-o", "json", *args)
    assert r.returncode == 2 and why in r.stderr, r.stderr


def test_measure_field_options_need_json_output(test_uki):
    r = run("cloister-measure", "uki", test_uki, "--measurements-version", "3")
    assert r.returncode == 2 and "they go with -o json" in r.stderr, r.stderr


def test_generate_takes_the_measurements_cloister_measure_uki_prints(tmp_path, uki_measurements):
    """A real UKI's prediction goes into the config unchanged, plus PCR 15 zero."""
    predicted = json.loads(uki_measurements.read_text())["measurements"]
    r, path = generate(tmp_path, "qemu", "--measurements", uki_measurements)
    assert r.returncode == 0, r.stderr
    ms = json.loads(path.read_text())["attestation"]["measurements"]
    assert ms == dict(predicted, **{"15": {"expected": ZERO, "warnOnly": False}})
    assert {"4", "9", "11"} <= set(ms) and ms["4"]["expected"] != ZERO
    unset = [line for line in r.stdout.splitlines() if line.startswith("  attestation.")]
    assert len(unset) == 1 and "attestation.akTrust.akPublic" in unset[0]


def test_qemu_config_from_measurements_and_evidence_verifies_that_evidence(
        cloister, booted_swtpm, tmp_path):
    ev_path, ev = issue(cloister, booted_swtpm, tmp_path)
    m = measurements_file(tmp_path, {k: pcr_after_one_extend(v) for k, v in IMAGE_DIGESTS.items()})
    r, path = generate(tmp_path, "qemu", "--measurements", m, "--evidence", ev_path)
    assert r.returncode == 0, r.stderr
    assert "TRUST ON FIRST USE" in r.stderr and "local cluster" in r.stderr
    assert "Not set yet" not in r.stdout
    att = json.loads(path.read_text())["attestation"]
    # The AK as Python decodes it from the evidence's TPMT_PUBLIC, independently of the C code.
    assert att["akTrust"] == {"mode": "pinned",
                              "akPublic": ak_spki_b64(base64.b64decode(
                                  ev["tpm"]["akPublic"]))}
    assert sorted(att["measurements"], key=int) == ["4", "8", "9", "11", "12", "13", "15"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(att))
    v = cloister("attestation", "verify", "--evidence", ev_path, "--policy", policy, "--binding",
                 BINDING)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "Verdict: PASS" in v.stdout
    for pcr in (4, 9, 11, 15):
        assert f"PASS  pcr[{pcr}]" in v.stdout


def test_qemu_config_whose_measurements_differ_from_the_boot_fails_at_that_pcr(
        cloister, booted_swtpm, tmp_path):
    ev_path, _ = issue(cloister, booted_swtpm, tmp_path)
    values = {k: pcr_after_one_extend(v) for k, v in IMAGE_DIGESTS.items()}
    values["9"] = "ee" * 32
    r, path = generate(tmp_path, "qemu", "--measurements", measurements_file(tmp_path, values),
                       "--evidence", ev_path)
    assert r.returncode == 0, r.stderr
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(json.loads(path.read_text())["attestation"]))
    v = cloister("attestation", "verify", "--evidence", ev_path, "--policy", policy, "--binding",
                 BINDING)
    assert v.returncode == 1 and "FAIL  pcr[9]" in v.stdout


def test_complete_config_passes_verifys_policy_loading_and_it_goes_on_to_the_node(
        cloister, booted_swtpm, tmp_path, listener):
    ev_path, _ = issue(cloister, booted_swtpm, tmp_path)
    m = measurements_file(tmp_path, {k: pcr_after_one_extend(v) for k, v in IMAGE_DIGESTS.items()})
    r, path = generate(tmp_path, "qemu", "--measurements", m, "--evidence", ev_path)
    assert r.returncode == 0, r.stderr
    port, conns = listener
    v = cloister("verify", "--config", path, "--node", f"127.0.0.1:{port}", "--timeout", "1")
    assert v.returncode == 1
    assert "not set yet" not in v.stderr and "attestation" not in v.stderr
    assert conns, "verify never reached the node: the config was not accepted"


@pytest.mark.parametrize("provider,field", [
    ("qemu", ".measurements.11.expected is not set yet"),
    ("gcp", ".snp.measurements is not set yet"),
])
def test_incomplete_config_is_refused_by_apply_naming_the_field_and_nothing_is_sent(
        tmp_path, owner, listener, provider, field):
    r, path = generate(tmp_path, provider)
    assert r.returncode == 0
    port, conns = listener
    state = tmp_path / "state.json"
    a = run("cloister", *apply_args(owner, state, f"https://127.0.0.1:{port}"), "--config", path,
            "--timeout", "2")
    err = one_error_line(a)
    assert f"{path}: attestation: {field}" in err, err
    assert "cloister-measure" in err or "verify-report" in err, err
    assert conns == [] and not state.exists()
    v = run("cloister", "verify", "--config", path, "--node", f"127.0.0.1:{port}")
    assert field in one_error_line(v) and conns == []


def test_apply_takes_cluster_defaults_from_the_config_and_explicit_flags_win(tmp_path, owner):
    cfg = {"version": 1, "provider": "qemu", "clusterName": "from-config",
           "kubernetesVersion": "v1.29.9", "serviceCidr": "10.100.0.0/16",
           "attestation": {"version": 1, "variant": "qemu-vtpm",
                           "measurements": {i: {"expected": ZERO} for i in ("4", "9", "11", "15")},
                           "akTrust": {"mode": "insecure-any"}}}
    path = tmp_path / "cloister.json"
    path.write_text(json.dumps(cfg))
    # Port 1 refuses: apply fails before anything is sent and writes no state; its progress line
    # shows what it would have used.
    state = tmp_path / "state-a.json"
    a = run("cloister", *apply_args(owner, state, "https://127.0.0.1:1"), "--config", path,
            "--timeout", "1")
    assert "not initialised" in one_error_line(a) and not state.exists()
    assert ("initialising cluster 'from-config' (Kubernetes v1.29.9, service CIDR "
            "10.100.0.0/16)") in a.stderr, a.stderr
    state = tmp_path / "state-b.json"
    b = run("cloister", *apply_args(owner, state, "https://127.0.0.1:1"), "--config", path,
            "--timeout", "1", "--cluster-name", "flag", "--service-cidr", "10.200.0.0/16")
    assert "not initialised" in one_error_line(b) and not state.exists()
    assert ("initialising cluster 'flag' (Kubernetes v1.29.9, service CIDR "
            "10.200.0.0/16)") in b.stderr, b.stderr


def bad_config_cases(d):
    good_att = {"version": 1, "variant": "qemu-vtpm", "measurements": {},
                "akTrust": {"mode": "insecure-any"}}
    (d / "malformed.json").write_text('{"version": 1, "provider": ')
    (d / "unknown-key.json").write_text(json.dumps(
        {"version": 1, "provider": "qemu", "attestation": good_att, "nodes": 3}))
    (d / "bad-provider.json").write_text(json.dumps(
        {"version": 1, "provider": "openstack", "attestation": good_att}))
    (d / "version2.json").write_text(json.dumps(
        {"version": 2, "provider": "qemu", "attestation": good_att}))
    (d / "no-attestation.json").write_text(json.dumps({"version": 1, "provider": "qemu"}))
    (d / "bad-policy.json").write_text(json.dumps(
        {"version": 1, "provider": "qemu", "attestation": dict(good_att, akTrust={})}))
    (d / "policy.json").write_text(json.dumps(good_att))
    source = {"measurementsVersion": 7, "image": "cloister-node", "imageVersion": "v1",
              "created": "2024-05-06T07:08:09Z", "sha256": "ab" * 32, "source": "file:///m.json",
              "signatureChecked": True}
    for name, change in (("source-key", {"signedBy": "me"}),
                         ("source-version", {"measurementsVersion": 0}),
                         ("source-sha256", {"sha256": "ab"}),
                         ("source-created", {"created": "2024-05-06"})):
        (d / f"{name}.json").write_text(json.dumps(
            {"version": 1, "provider": "qemu", "attestation": good_att,
             "measurementsSource": dict(source, **change)}))
    return [
        ("malformed", d / "malformed.json", "malformed.json:1:"),
        ("unknown top-level key", d / "unknown-key.json", ".nodes: unknown key"),
        ("unknown provider", d / "bad-provider.json", "'openstack' is not one of"),
        ("unknown version", d / "version2.json", ".version"),
        ("no attestation", d / "no-attestation.json", ".attestation: required key is missing"),
        ("bad policy inside", d / "bad-policy.json", "bad-policy.json: attestation: .akTrust"),
        ("missing file", d / "none.json", "none.json: cannot read"),
        ("measurementsSource: unknown key", d / "source-key.json",
         ".measurementsSource.signedBy: unknown key"),
        ("measurementsSource: version 0", d / "source-version.json",
         ".measurementsSource.measurementsVersion: 0 is outside"),
        ("measurementsSource: short sha256", d / "source-sha256.json",
         ".measurementsSource.sha256"),
        ("measurementsSource: a date only", d / "source-created.json",
         ".measurementsSource.created: not an RFC 3339 UTC time"),
    ]


def test_bad_config_files_give_one_line_and_exit_1_for_apply_and_verify(tmp_path, owner):
    for name, path, why in bad_config_cases(tmp_path):
        a = run("cloister", *apply_args(owner, tmp_path / "state.json", "https://127.0.0.1:1"),
                "--config", path)
        assert why in one_error_line(a), (name, a.stderr)
        v = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", path)
        assert why in one_error_line(v), (name, v.stderr)
        assert not (tmp_path / "state.json").exists(), name


def test_config_and_policy_together_are_a_usage_error(tmp_path, owner):
    bad_config_cases(tmp_path)
    p = tmp_path / "policy.json"
    a = run("cloister", *apply_args(owner, tmp_path / "state.json", "https://127.0.0.1:1"),
            "--config", p, "--policy", p)
    assert "alternatives" in one_error_line(a, 2)
    v = run("cloister", "verify", "--node", "127.0.0.1:1", "--config", p, "--policy", p)
    assert "alternatives" in one_error_line(v, 2)


def test_bad_generate_inputs_give_one_line_and_exit_1_or_2_for_usage(cloister, swtpm, tmp_path):
    ev_path, _ = issue(cloister, swtpm, tmp_path)
    m = measurements_file(tmp_path, dict(IMAGE_DIGESTS))
    no9 = tmp_path / "no9.json"
    doc = json.loads(m.read_text())
    del doc["measurements"]["9"]
    no9.write_text(json.dumps(doc))
    pcr7 = tmp_path / "pcr7.json"
    doc = json.loads(m.read_text())
    doc["measurements"]["7"] = {"expected": "07" * 32, "warnOnly": False}
    pcr7.write_text(json.dumps(doc))
    (tmp_path / "malformed.json").write_text("{")
    # The third value: the exit status, 2 for a usage error (the command line itself is wrong).
    cases = [
        (["openstack"], "Unknown provider 'openstack'", 2),
        ([], "which provider", 2),
        (["qemu", "gcp"], "Unexpected argument 'gcp'", 2),
        (["gcp", "--evidence", ev_path], "--evidence is for qemu only", 2),
        (["aws", "--measurements", m], "not by PCRs", 2),
        (["qemu", "--measurements", no9], "PCR 9 is missing", 1),
        (["qemu", "--measurements", pcr7], "PCR 7 is neither", 1),
        (["qemu", "--measurements", tmp_path / "malformed.json"], "malformed.json:1:", 1),
        (["qemu", "--evidence", tmp_path / "malformed.json"], "malformed.json", 1),
        (["qemu", "--evidence", tmp_path / "none.json"], "none.json: cannot read", 1),
        (["qemu", "--name", ""], "--name", 2),
    ]
    for args, why, status in cases:
        r, path = generate(tmp_path, *args, name="out.json")
        assert why in one_error_line(r, status), (args, r.stderr)
        assert not path.exists(), args


def test_help_lists_config_and_mini():
    r = run("cloister", "--help")
    assert r.returncode == 0 and "config" in r.stdout and "mini" in r.stdout
    r = run("cloister", "config", "generate", "--help")
    assert r.returncode == 0 and "--measurements" in r.stdout and "--evidence" in r.stdout


def test_mini_help_explains_namespaces_simulated_boot_real_tpm_and_root():
    r = run("cloister", "mini", "--help")
    assert r.returncode == 0, r.stderr
    for words in ("up", "down", "status", "network namespace", "SIMULATED", "TPM attestation is "
                  "real", "root"):
        assert words in r.stdout, words


@pytest.fixture
def fake_mini(tmp_path):
    """A stand-in for scripts/mini that records its arguments and $BUILD, and exits 7."""
    script = tmp_path / "fake-mini"
    out = tmp_path / "fake-mini.out"
    script.write_text("#!/bin/sh\n"
                      f"{{ printf '%s\\n' \"$@\"; echo \"BUILD=$BUILD\"; }} > '{out}'\n"
                      "exit 7\n")
    script.chmod(0o755)
    return script, out


def test_mini_execs_the_script_with_every_argument_unchanged_and_its_exit_status(fake_mini):
    script, out = fake_mini
    env = {k: v for k, v in os.environ.items() if k != "BUILD"}
    env["CLOISTER_MINI_SCRIPT"] = str(script)
    r = run("cloister", "mini", "up", "--nodes", "3", "a b", env=env)
    assert r.returncode == 7, r.stderr
    lines = out.read_text().splitlines()
    assert lines[:-1] == ["up", "--nodes", "3", "a b"]
    # BUILD: the build directory of the binary that ran (…/build-x/bin/cloister → …/build-x).
    assert lines[-1] == f"BUILD={BUILD.resolve()}"


def test_mini_keeps_a_build_directory_already_set(fake_mini):
    script, out = fake_mini
    env = dict(os.environ, CLOISTER_MINI_SCRIPT=str(script), BUILD="/somewhere/else")
    r = run("cloister", "mini", "down", env=env)
    assert r.returncode == 7
    assert out.read_text().splitlines() == ["down", "BUILD=/somewhere/else"]


@pytest.mark.parametrize("args", [["down", "--help"], ["status", "--help"], ["up", "--help"],
                                  ["up", "--vm", "-h"]])
def test_mini_help_after_a_command_prints_help_and_runs_nothing(fake_mini, args):
    script, out = fake_mini
    env = dict(os.environ, CLOISTER_MINI_SCRIPT=str(script))
    r = run("cloister", "mini", *args, env=env)
    assert r.returncode == 0 and r.stdout.startswith("Usage: cloister mini up"), r.stdout
    assert not out.exists(), "the script ran: " + out.read_text()


def test_mini_as_an_ordinary_user_says_root_is_needed_and_runs_nothing(fake_mini):
    script, out = fake_mini
    env = dict(os.environ, CLOISTER_MINI_SCRIPT=str(script))
    # A copy the unprivileged user can run wherever the build tree is.
    d = Path(tempfile.mkdtemp(prefix="cloister-nobody-"))
    try:
        d.chmod(0o755)
        shutil.copy(BUILD / "bin" / "cloister", d / "cloister")
        for cmd, *extra in (("up", "--netns"), ("down",)):
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                str(d / "cloister"), "mini", cmd, *extra],
                               capture_output=True, text=True, env=env, timeout=30)
            err = one_error_line(r)
            assert r.returncode == 1 and "needs root" in err, err
            assert f"sudo cloister mini {cmd}" in err and "mount" not in r.stderr, err
    finally:
        shutil.rmtree(d)
    assert not out.exists()


def test_mini_tells_the_script_the_name_the_user_typed(tmp_path):
    script, out = tmp_path / "name-mini", tmp_path / "name.out"
    script.write_text(f"#!/bin/sh\necho \"$CLOISTER_MINI_NAME\" > '{out}'\n")
    script.chmod(0o755)
    r = run("cloister", "mini", "status", env=dict(os.environ, CLOISTER_MINI_SCRIPT=str(script)))
    assert r.returncode == 0 and out.read_text() == "cloister mini\n"


def test_mini_without_override_runs_the_build_trees_script(tmp_path):
    # status of an empty mini directory: the real scripts/mini, nothing started.
    env = {k: v for k, v in os.environ.items() if k not in ("BUILD", "CLOISTER_MINI_SCRIPT")}
    env["MINI_DIR"] = str(tmp_path / "mini")
    r = run("cloister", "mini", "status", env=env)
    assert "mini: no node running" in r.stdout, r.stdout + r.stderr


def test_mini_bad_command_or_missing_script_gives_one_line_naming_where_it_looked(tmp_path):
    assert "unknown command 'sideways'" in one_error_line(run("cloister", "mini", "sideways"), 2)
    env = dict(os.environ, CLOISTER_MINI_SCRIPT=str(tmp_path / "nowhere"))
    err = one_error_line(run("cloister", "mini", "up", env=env))
    assert str(tmp_path / "nowhere") in err
    # A binary outside a build tree: <dir>/bin/cloister looks for <dir>/../scripts/mini.
    (tmp_path / "tree" / "bin").mkdir(parents=True)
    copy = tmp_path / "tree" / "bin" / "cloister"
    copy.write_bytes((BUILD / "bin" / "cloister").read_bytes())
    copy.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CLOISTER_MINI_SCRIPT"}
    r = subprocess.run([copy, "mini", "up"], capture_output=True, text=True, env=env, timeout=30)
    err = one_error_line(r)
    assert f"{tmp_path}/scripts/mini" in err and "/lib/cloister/mini" in err, err


# cloister config fetch-measurements: a signed measurements file, as the image build publishes it
# (build/image/measurements.json, .sig and the public key), into a configuration's PCRs.

def openssl_p256(tmp_path, name):
    """A fresh EC P-256 key pair made with openssl; returns (private PEM, public PEM)."""
    key, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return key, pub


class Published:
    """A published measurements file (a real UKI's prediction), signed with a key made for this
    test, and a qemu configuration generated before it was known."""

    def __init__(self, tmp_path, measurements):
        self.dir = tmp_path / "published"
        self.dir.mkdir()
        self.file = self.dir / "measurements.json"
        self.file.write_bytes(measurements.read_bytes())
        self.key, self.pub = openssl_p256(tmp_path, "dev-key")
        s = run("cloister-measure", "sign", "--key", self.key, self.file, "--output",
                self.dir / "measurements.json.sig")
        assert s.returncode == 0, s.stderr
        self.url = self.file.as_uri()
        self.predicted = json.loads(self.file.read_text())["measurements"]
        r, self.config = generate(tmp_path, "qemu")
        assert r.returncode == 0, r.stderr

    def fetch(self, *args, url=None):
        return run("cloister", "config", "fetch-measurements", "--config", self.config, "--url",
                   url or self.url, *args)

    def publish(self, name, doc, sign_with_openssl=False):
        """doc (a dict) as DIR/name, signed with the test key; returns its file:// URL. openssl
        signs what cloister-measure sign refuses (a format-1 file)."""
        path = self.dir / name
        path.write_text(json.dumps(doc, indent=2) + "\n")
        if sign_with_openssl:
            subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key, "-out",
                            f"{path}.sig", path], check=True, capture_output=True)
        else:
            s = run("cloister-measure", "sign", "--key", self.key, path)
            assert s.returncode == 0, s.stderr
        return path.as_uri()

    def doc(self, **change):
        """The published file's document with fields changed."""
        return dict(json.loads(self.file.read_text()), **change)


@pytest.fixture
def published(tmp_path, uki_measurements):
    return Published(tmp_path, uki_measurements)


def test_fetch_from_file_url_with_a_fresh_key_updates_exactly_the_pcrs_and_nothing_else(
        published):
    cfg = json.loads(published.config.read_text())
    ms = cfg["attestation"]["measurements"]
    # PCR 15 is the cluster's, PCR 7 is not in the file: both must stay as they are.
    ms["15"] = {"expected": "ff" * 32, "warnOnly": False}
    ms["7"] = {"expected": "07" * 32, "warnOnly": True}
    published.config.write_text(json.dumps(cfg))
    published.config.chmod(0o600)
    r = published.fetch("--pubkey", published.pub)
    assert r.returncode == 0, r.stderr
    after = json.loads(published.config.read_text())
    expected = json.loads(json.dumps(cfg))
    for pcr, value in published.predicted.items():
        if pcr != "15":
            expected["attestation"]["measurements"][pcr] = value
    expected["measurementsSource"] = after["measurementsSource"]
    assert after == expected
    assert {"4", "9", "11"} <= set(published.predicted) and "15" in published.predicted
    assert after["attestation"]["measurements"]["15"]["expected"] == "ff" * 32
    assert stat.S_IMODE(published.config.stat().st_mode) == 0o600
    # What changed, old -> new, and where it came from.
    assert published.url in r.stdout and "signature verified" in r.stdout
    assert f"PCR 4: null -> {published.predicted['4']['expected']}" in r.stdout
    assert f"PCR 8: (absent) -> {ZERO}" in r.stdout
    assert "PCR 15: kept" in r.stdout and "PCR 7: kept" in r.stdout
    assert "INSECURE" not in r.stderr
    # The same again: nothing to change, nothing written.
    before = published.config.read_bytes()
    again = published.fetch("--pubkey", published.pub)
    assert again.returncode == 0, again.stderr
    assert "not written" in again.stdout and published.config.read_bytes() == before


def test_fetch_result_is_the_policy_generate_writes_from_the_same_file(published, tmp_path):
    r = published.fetch("--pubkey", published.pub)
    assert r.returncode == 0, r.stderr
    g, path = generate(tmp_path, "qemu", "--measurements", published.file, name="g.json")
    assert g.returncode == 0, g.stderr
    fetched, generated = json.loads(published.config.read_text()), json.loads(path.read_text())
    # The same file recorded, each saying where it came from and whether its signature counted.
    assert (fetched["measurementsSource"].pop("source"),
            fetched["measurementsSource"].pop("signatureChecked")) == (published.url, True)
    assert (generated["measurementsSource"].pop("source"),
            generated["measurementsSource"].pop("signatureChecked")) == (str(published.file),
                                                                         False)
    assert fetched == generated


# Rollback protection: the configuration records the measurementsVersion it took, and refuses an
# older signed file (or another file with that version) unless --allow-downgrade says so.

def test_fetch_records_the_files_version_image_creation_time_and_digest(published):
    r = published.fetch("--pubkey", published.pub)
    assert r.returncode == 0, r.stderr
    assert json.loads(published.config.read_text())["measurementsSource"] == {
        "measurementsVersion": UKI_VERSION, "image": "uki.efi", "imageVersion": UKI_IMAGE_VERSION,
        "created": UKI_CREATED, "sha256": hashlib.sha256(published.file.read_bytes()).hexdigest(),
        "source": published.url, "signatureChecked": True}
    assert f"image 'uki.efi' {UKI_IMAGE_VERSION}, measurements version {UKI_VERSION}, " \
        f"created {UKI_CREATED}" in r.stdout, r.stdout
    assert f"measurements version: none recorded -> {UKI_VERSION}" in r.stdout, r.stdout


def test_fetch_accepts_a_newer_signed_version_and_records_it(published):
    assert published.fetch("--pubkey", published.pub).returncode == 0
    ms = published.predicted
    newer = dict(ms, **{"4": {"expected": "44" * 32, "warnOnly": False}})
    url = published.publish("newer.json", published.doc(measurementsVersion=UKI_VERSION + 1,
                                                        imageVersion="test-1.1",
                                                        measurements=newer))
    r = published.fetch("--pubkey", published.pub, url=url)
    assert r.returncode == 0, r.stderr
    assert f"measurements version: {UKI_VERSION} -> {UKI_VERSION + 1}" in r.stdout, r.stdout
    assert "DOWNGRADE" not in r.stderr
    cfg = json.loads(published.config.read_text())
    assert cfg["attestation"]["measurements"]["4"]["expected"] == "44" * 32
    assert cfg["measurementsSource"]["measurementsVersion"] == UKI_VERSION + 1
    assert cfg["measurementsSource"]["imageVersion"] == "test-1.1"
    assert cfg["measurementsSource"]["source"] == url


def test_fetch_refuses_an_older_signed_version_naming_both_and_leaves_the_config_unchanged(
        published):
    assert published.fetch("--pubkey", published.pub).returncode == 0
    before = published.config.read_bytes()
    older = dict(published.predicted, **{"4": {"expected": "33" * 32, "warnOnly": False}})
    url = published.publish("older.json", published.doc(measurementsVersion=UKI_VERSION - 1,
                                                        measurements=older))
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert f"measurements version {UKI_VERSION - 1} is older than version {UKI_VERSION}" in err, \
        err
    assert "--allow-downgrade" in err and "Nothing was changed" in err, err
    assert published.config.read_bytes() == before


def test_fetch_allow_downgrade_takes_an_older_signed_version_with_a_loud_warning(published):
    assert published.fetch("--pubkey", published.pub).returncode == 0
    older = dict(published.predicted, **{"4": {"expected": "33" * 32, "warnOnly": False}})
    url = published.publish("older.json", published.doc(measurementsVersion=UKI_VERSION - 1,
                                                        measurements=older))
    r = published.fetch("--pubkey", published.pub, "--allow-downgrade", url=url)
    assert r.returncode == 0, r.stderr
    assert "warning: DOWNGRADE: --allow-downgrade" in r.stderr, r.stderr
    assert f"measurements version {UKI_VERSION - 1}" in r.stderr, r.stderr
    assert f"in place of version {UKI_VERSION}" in r.stderr, r.stderr
    cfg = json.loads(published.config.read_text())
    assert cfg["attestation"]["measurements"]["4"]["expected"] == "33" * 32
    assert cfg["measurementsSource"]["measurementsVersion"] == UKI_VERSION - 1
    # Not needed for a newer file: no warning then.
    r = published.fetch("--pubkey", published.pub, "--allow-downgrade")
    assert r.returncode == 0 and "DOWNGRADE" not in r.stderr, r.stderr


def test_fetch_refuses_an_unversioned_format_1_file_naming_the_next_step(published):
    before = published.config.read_bytes()
    doc = published.doc()
    v1 = {"version": 1, "image": doc["image"], "measurements": doc["measurements"]}
    url = published.publish("v1.json", v1, sign_with_openssl=True)
    for extra in ([], ["--allow-downgrade"]):
        err = one_error_line(published.fetch("--pubkey", published.pub, *extra, url=url))
        assert "format-1 measurements file, without measurementsVersion" in err, err
        assert "cloister-measure image IMAGE -o json --measurements-version N" in err, err
        assert published.config.read_bytes() == before
    # The signature is checked first: a changed unversioned file fails on it, not on the format.
    (published.dir / "v1.json").write_text(json.dumps(dict(v1, image="evil")))
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert "check 'signature' failed" in err, err


def test_fetch_refuses_the_recorded_version_with_other_content_as_a_key_signing_two_files(
        published):
    assert published.fetch("--pubkey", published.pub).returncode == 0
    before = published.config.read_bytes()
    other = published.doc(imageVersion="test-1.0-rebuilt")
    url = published.publish("other.json", other)
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert f"measurements version {UKI_VERSION} is the version" in err, err
    assert "signed two different files with one version" in err, err
    assert hashlib.sha256((published.dir / "other.json").read_bytes()).hexdigest() in err, err
    assert published.config.read_bytes() == before
    # --allow-downgrade takes it knowingly.
    r = published.fetch("--pubkey", published.pub, "--allow-downgrade", url=url)
    assert r.returncode == 0 and "(the same version, another file)" in r.stderr, r.stderr
    cfg = json.loads(published.config.read_text())
    assert cfg["measurementsSource"]["imageVersion"] == "test-1.0-rebuilt"


def test_fetch_of_the_recorded_file_again_from_elsewhere_is_accepted(published):
    assert published.fetch("--pubkey", published.pub).returncode == 0
    mirror = published.dir / "mirror.json"
    mirror.write_bytes(published.file.read_bytes())
    (published.dir / "mirror.json.sig").write_bytes(
        (published.dir / "measurements.json.sig").read_bytes())
    r = published.fetch("--pubkey", published.pub, url=mirror.as_uri())
    assert r.returncode == 0, r.stderr
    assert json.loads(published.config.read_text())["measurementsSource"]["source"] == \
        mirror.as_uri()


def test_fetch_refuses_warn_only_pcrs_unless_allowed_and_then_warns_listing_them(published):
    before = published.config.read_bytes()
    ms = dict(published.predicted)
    for pcr in ("9", "11"):
        ms[pcr] = dict(ms[pcr], warnOnly=True)
    url = published.publish("warn.json", published.doc(measurements=ms))
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert "marks PCR 9, 11 warnOnly" in err and "--allow-warn-only" in err, err
    assert published.config.read_bytes() == before
    r = published.fetch("--pubkey", published.pub, "--allow-warn-only", url=url)
    assert r.returncode == 0, r.stderr
    assert "warning: WARN-ONLY: --allow-warn-only" in r.stderr and "PCR 9, 11" in r.stderr
    cfg = json.loads(published.config.read_text())["attestation"]["measurements"]
    assert cfg["9"]["warnOnly"] is True and cfg["4"]["warnOnly"] is False


def test_generate_records_a_format_2_file_so_fetch_refuses_an_older_one(published, tmp_path):
    g, path = generate(tmp_path, "qemu", "--measurements", published.file, name="g.json")
    assert g.returncode == 0, g.stderr
    assert json.loads(path.read_text())["measurementsSource"]["measurementsVersion"] == \
        UKI_VERSION
    before = path.read_bytes()
    url = published.publish("older.json", published.doc(measurementsVersion=UKI_VERSION - 1))
    err = one_error_line(run("cloister", "config", "fetch-measurements", "--config", path,
                             "--url", url, "--pubkey", published.pub))
    assert f"measurements version {UKI_VERSION - 1} is older than version {UKI_VERSION}" in err
    assert path.read_bytes() == before


def test_generate_from_a_format_1_file_records_nothing(tmp_path):
    r, path = generate(tmp_path, "qemu", "--measurements",
                       measurements_file(tmp_path, dict(IMAGE_DIGESTS)))
    assert r.returncode == 0, r.stderr
    assert "measurementsSource" not in json.loads(path.read_text())


def test_fetch_refuses_a_file_with_one_byte_changed_and_leaves_the_config_unchanged(published):
    data = bytearray(published.file.read_bytes())
    at = data.index(published.predicted["4"]["expected"].encode())
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    published.file.write_bytes(bytes(data))
    before = published.config.read_bytes()
    err = one_error_line(published.fetch("--pubkey", published.pub))
    assert published.url in err and "check 'signature' failed" in err, err
    assert published.config.read_bytes() == before


def test_fetch_and_measure_verify_refuse_a_measurements_version_raised_after_signing(published):
    """One byte turns the signed measurementsVersion 100 into 900: a file that rollback
    protection would take as the newest. The signature covers it: cloister-measure verify and
    fetch-measurements both refuse the file, and the configuration is not changed."""
    sig = published.dir / "measurements.json.sig"
    r = run("cloister-measure", "verify", "--pubkey", published.pub, published.file, sig)
    assert r.returncode == 0 and "signature valid" in r.stdout, r.stdout + r.stderr
    data = bytearray(published.file.read_bytes())
    m = re.search(rb'"measurementsVersion":\s*(100)\b', data)
    assert m and UKI_VERSION == 100, data[:200]
    data[m.start(1)] = ord("9")
    published.file.write_bytes(bytes(data))
    assert json.loads(data)["measurementsVersion"] == 900
    r = run("cloister-measure", "verify", "--pubkey", published.pub, published.file, sig)
    assert r.returncode == 1 and "does not verify" in r.stderr, r.stdout + r.stderr
    before = published.config.read_bytes()
    err = one_error_line(published.fetch("--pubkey", published.pub))
    assert published.url in err and "check 'signature' failed" in err, err
    assert published.config.read_bytes() == before


def test_fetch_refuses_a_signature_with_one_byte_changed(published):
    sig = published.dir / "measurements.json.sig"
    good = sig.read_bytes()
    bad = bytearray(good)
    bad[-1] ^= 0x01  # the last byte of s in the DER ECDSA-Sig-Value
    sig.write_bytes(bytes(bad))
    before = published.config.read_bytes()
    err = one_error_line(published.fetch("--pubkey", published.pub))
    assert published.url in err and "check 'signature' failed" in err, err
    assert published.config.read_bytes() == before
    r = run("cloister-measure", "verify", "--pubkey", published.pub, published.file, sig)
    assert r.returncode == 1 and "does not verify" in r.stderr, r.stdout + r.stderr
    # The unchanged signature is taken: the byte was all that differed.
    sig.write_bytes(good)
    assert published.fetch("--pubkey", published.pub).returncode == 0


def test_fetch_refuses_a_signature_made_with_another_key(published, tmp_path):
    _, other = openssl_p256(tmp_path, "other")
    before = published.config.read_bytes()
    err = one_error_line(published.fetch("--pubkey", other))
    assert "check 'signature' failed" in err and str(other) in err, err
    assert published.config.read_bytes() == before


def test_fetch_refuses_a_private_key_or_non_p256_key_as_the_public_key(published, tmp_path):
    err = one_error_line(published.fetch("--pubkey", published.key))
    assert "check 'public-key' failed" in err and "P-256" in err, err
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", tmp_path / "rsa.pem"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", tmp_path / "rsa.pem", "-pubout", "-out",
                    tmp_path / "rsa.pub.pem"], check=True, capture_output=True)
    err = one_error_line(published.fetch("--pubkey", tmp_path / "rsa.pub.pem"))
    assert "check 'public-key' failed" in err, err


def test_fetch_refuses_a_file_without_its_sig_naming_the_signature_url(published):
    (published.dir / "measurements.json.sig").unlink()
    before = published.config.read_bytes()
    err = one_error_line(published.fetch("--pubkey", published.pub))
    assert f"{published.url}.sig: cannot read the signature" in err, err
    assert "cloister-measure sign" in err and "--signature-url" in err, err
    assert published.config.read_bytes() == before


def test_fetch_takes_the_signature_from_signature_url(published):
    sig = published.dir / "measurements.json.sig"
    elsewhere = published.dir / "sig.der"
    sig.rename(elsewhere)
    r = published.fetch("--pubkey", published.pub, "--signature-url", elsewhere.as_uri())
    assert r.returncode == 0, r.stderr
    ms = json.loads(published.config.read_text())["attestation"]["measurements"]
    assert ms["4"] == published.predicted["4"]


def test_fetch_insecure_no_signature_takes_an_unsigned_file_and_warns_loudly(published):
    (published.dir / "measurements.json.sig").unlink()
    r = published.fetch("--insecure-no-signature")
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in r.stderr and "without checking any signature" in r.stderr
    assert "SIGNATURE NOT CHECKED" in r.stdout
    ms = json.loads(published.config.read_text())["attestation"]["measurements"]
    assert ms["11"] == published.predicted["11"]
    # It checks nothing, so it cannot pretend to with a key.
    err = one_error_line(published.fetch("--insecure-no-signature", "--pubkey", published.pub), 2)
    assert "cannot go with --pubkey" in err


def test_fetch_refuses_plain_http_before_connecting(published, listener):
    port, conns = listener
    before = published.config.read_bytes()
    url = f"http://127.0.0.1:{port}/measurements.json"
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert "http:// is refused" in err and "https://" in err, err
    err = one_error_line(published.fetch("--insecure-no-signature", url=url))
    assert "http:// is refused" in err, err
    sig_url = f"http://127.0.0.1:{port}/measurements.json.sig"
    err = one_error_line(published.fetch("--pubkey", published.pub, "--signature-url", sig_url))
    assert "--signature-url" in err and "http:// is refused" in err, err
    assert conns == [] and published.config.read_bytes() == before


def test_fetch_of_a_non_existent_file_url_names_the_url(published):
    url = (published.dir / "nowhere.json").as_uri()
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url))
    assert f"{url}: cannot read the measurements file" in err, err


@pytest.mark.parametrize("url,why,status", [
    ("ftp://example.org/m.json", "unsupported scheme", 1),
    ("/tmp/m.json", "not a URL", 2),
    ("file://host/m.json", "absolute path on this machine", 2),
    ("file:///dev/zero", "not a regular file", 1),
])
def test_fetch_refuses_other_urls_with_the_reason(published, url, why, status):
    err = one_error_line(published.fetch("--pubkey", published.pub, url=url), status)
    assert why in err, err


def test_fetch_refuses_a_file_larger_than_the_parsers_maximum(published):
    big = published.dir / "big.json"
    big.write_text(" " * (64 * 1024) + published.file.read_text())
    err = one_error_line(published.fetch("--insecure-no-signature", url=big.as_uri()))
    assert "larger than 65536 bytes" in err, err


def test_fetch_over_https_checks_the_servers_certificate(published, tmp_path):
    """A self-signed server is not trusted: the transport is authenticated, not only the file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            body = published.file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/measurements.json"
        before = published.config.read_bytes()
        err = one_error_line(published.fetch("--pubkey", published.pub, "--timeout", "10",
                                             url=url))
        assert url in err and "certificate" in err.lower(), err
        assert served == [] and published.config.read_bytes() == before
    finally:
        server.shutdown()
        server.server_close()
        t.join()


def test_fetch_refuses_an_snp_only_config(published, tmp_path):
    for provider in ("gcp", "aws"):
        r, path = generate(tmp_path, provider, name=f"{provider}.json")
        assert r.returncode == 0
        before = path.read_bytes()
        err = one_error_line(run("cloister", "config", "fetch-measurements", "--config", path,
                                 "--url", published.url, "--pubkey", published.pub))
        assert "sev-snp has no PCRs" in err and "launch measurement" in err, err
        assert path.read_bytes() == before


def test_fetch_into_an_azure_config_keeps_its_snp_policy(published, tmp_path):
    r, path = generate(tmp_path, "azure", name="azure.json")
    assert r.returncode == 0
    cfg = json.loads(path.read_text())
    f = run("cloister", "config", "fetch-measurements", "--config", path, "--url",
            published.url, "--pubkey", published.pub)
    assert f.returncode == 0, f.stderr
    after = json.loads(path.read_text())
    assert after["attestation"]["snp"] == cfg["attestation"]["snp"]
    assert after["attestation"]["measurements"] == dict(
        published.predicted, **{"15": {"expected": ZERO, "warnOnly": False}})
    assert "Still not set" in f.stdout and ".snp.measurements" in f.stdout


def test_fetch_into_an_azure_tdx_config_fills_its_pcrs_and_keeps_its_tdx_policy(published,
                                                                               tmp_path):
    r, path = generate(tmp_path, "azure", "--tee", "tdx", name="azure-tdx.json")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(path.read_text())
    f = run("cloister", "config", "fetch-measurements", "--config", path, "--url",
            published.url, "--pubkey", published.pub)
    assert f.returncode == 0, f.stderr
    after = json.loads(path.read_text())
    assert after["attestation"]["variant"] == "azure-tdx"
    assert after["attestation"]["tdx"] == cfg["attestation"]["tdx"]
    assert after["attestation"]["measurements"] == dict(
        published.predicted, **{"15": {"expected": ZERO, "warnOnly": False}})


def test_fetch_usage_errors_give_one_line(published):
    cases = [
        ([], "--pubkey PUB.pem is required"),
        (["--pubkey", published.pub, "extra"], "Unexpected argument 'extra'"),
        (["--pubkey", published.pub, "--timeout", "0"], "--timeout"),
    ]
    for args, why in cases:
        assert why in one_error_line(published.fetch(*args), 2), args
    r = run("cloister", "config", "fetch-measurements", "--pubkey", published.pub)
    assert "--url URL is required" in one_error_line(r, 2)
    r = run("cloister", "config", "fetch-measurements", "--config", published.dir / "none.json",
            "--url", published.url, "--pubkey", published.pub)
    assert "none.json: cannot read" in one_error_line(r)


def test_fetch_help_says_what_it_does_and_how():
    r = run("cloister", "config", "fetch-measurements", "--help")
    assert r.returncode == 0, r.stderr
    for words in ("--url", "https://", "file://", "http://", "--pubkey", "--signature-url",
                  "URL.sig", "--insecure-no-signature", "INSECURE", "PCR 15", "0600",
                  "--config", "65536", "--allow-downgrade", "--allow-warn-only",
                  "measurementsVersion", "measurementsSource", "format 1"):
        assert words in r.stdout, words
    r = run("cloister", "config", "--help")
    assert r.returncode == 0 and "fetch-measurements" in r.stdout


# fetch-measurements into a tdx policy: the file's predicted RTMRs (cloister-measure image's
# "tdx" section, docs/tdx.md "RTMR prediction") replace rtmr1..3; the owner's mrTd and rtmr0
# (the platform's, not predicted) stay.

def tdx_config(tmp_path):
    r, path = generate(tmp_path, "gcp", name="tdx.json")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(path.read_text())
    cfg["attestation"] = {"version": 1, "variant": "tdx",
                          "tdx": {"mrTd": ["11" * 48], "rtmr0": ["22" * 48],
                                  "rtmr1": ["33" * 48]}}
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def test_fetch_into_a_tdx_policy_sets_rtmr1_to_3_and_keeps_mrtd_and_rtmr0(published, tmp_path):
    path = tdx_config(tmp_path)
    rtmrs = {"rtmr1": "ab" * 48, "rtmr2": "00" * 48, "rtmr3": "00" * 48}
    url = published.publish("tdx.json", published.doc(tdx=rtmrs))
    f = run("cloister", "config", "fetch-measurements", "--config", path, "--url", url,
            "--pubkey", published.pub)
    assert f.returncode == 0, f.stderr
    att = json.loads(path.read_text())["attestation"]
    assert att["tdx"] == {"mrTd": ["11" * 48], "rtmr0": ["22" * 48],
                          **{k: [v] for k, v in rtmrs.items()}}
    assert "measurements" not in att  # the PCRs are the vTPM variants'
    assert f"rtmr1  {'ab' * 48}" in f.stdout
    again = run("cloister", "config", "fetch-measurements", "--config", path, "--url", url,
                "--pubkey", published.pub)
    assert again.returncode == 0 and "already holds these values" in again.stdout


def test_fetch_into_a_tdx_policy_refuses_a_file_without_rtmrs_and_changes_nothing(
        published, tmp_path):
    path = tdx_config(tmp_path)
    before = path.read_bytes()
    err = one_error_line(run("cloister", "config", "fetch-measurements", "--config", path,
                             "--url", published.url, "--pubkey", published.pub))
    assert "variant tdx checks RTMRs" in err and "cloister-measure image" in err, err
    assert path.read_bytes() == before
