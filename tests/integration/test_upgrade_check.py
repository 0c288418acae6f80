# SPDX-License-Identifier: Apache-2.0
"""cloister upgrade check: a configuration's PCR expectations against a new image's signed
measurements file (docs/policy-update.md, "Before an upgrade"). The files are made and signed
here as the image build does (`cloister-measure sign`, a fresh P-256 key), and the configuration
takes the first one through `cloister config fetch-measurements`, so its measurementsSource is
recorded as in real use."""
import json
import subprocess

from conftest import run

ZERO = "00" * 32


def keypair(tmp_path, name):
    key, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return key, pub


def publish(tmp_path, key, name, version, pcrs, image_version, **extra):
    """A format-2 measurements file as `cloister-measure image -o json` writes it, signed."""
    ms = {k: {"expected": v, "warnOnly": False} for k, v in pcrs.items()}
    ms.update({k: {"expected": ZERO, "warnOnly": False} for k in ("8", "12", "13", "15")})
    path = tmp_path / name
    path.write_text(json.dumps({"version": 2, "image": "cloister.raw",
                                "imageVersion": image_version, "created": "2026-12-07T12:00:00Z",
                                "measurementsVersion": version, "measurements": ms, **extra},
                               indent=2))
    s = run("cloister-measure", "sign", "--key", key, path)
    assert s.returncode == 0, s.stderr
    return path


def check(config, path, *extra):
    return run("cloister", "upgrade", "check", "--config", config, "--measurements", path, *extra)


def test_upgrade_check_names_the_pcrs_a_newer_signed_image_changes_and_refuses_the_rest(tmp_path):
    key, pub = keypair(tmp_path, "build")
    other_key, _ = keypair(tmp_path, "other")
    v1 = {"4": "44" * 32, "9": "99" * 32, "11": "11" * 32}
    first = publish(tmp_path, key, "v1.json", 100, v1, "1.0")
    config = tmp_path / "cloister.json"
    r = run("cloister", "config", "generate", "qemu", "--file", config)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(config.read_text())
    cfg["attestation"]["akTrust"]["akPublic"] = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8xHMXMTGddWQDH2wre8l7DVZczYbNzFoXReKO7JpllPy97xW8AO1"
        "In7OX9LhQqCRa6ZNQDjqQ4HlKBR2OpPs3A==")
    config.write_text(json.dumps(cfg))
    config.chmod(0o600)
    r = run("cloister", "config", "fetch-measurements", "--config", config, "--url",
            first.as_uri(), "--pubkey", pub)
    assert r.returncode == 0, r.stderr

    # v2: one changed version string, so PCR 11 differs; 4 and 9 stay.
    second = publish(tmp_path, key, "v2.json", 200, dict(v1, **{"11": "12" * 32}), "2.0")
    r = check(config, second, "--pubkey", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"PCR 11: {'11' * 32} -> {'12' * 32} (changes)" in r.stdout, r.stdout
    assert f"PCR 4: {'44' * 32} (unchanged)" in r.stdout and "PCR 9: " in r.stdout
    assert "1 PCR(s) change: 11." in r.stdout and "cloister policy push" in r.stdout
    assert "PCR 15" not in r.stdout  # the cluster's, never the image's
    assert "2.0" in r.stdout and "signature verified" in r.stdout
    assert "TEST image" not in r.stdout
    # The new image's kind, when its file names one (image/README.md, "Kubernetes").
    test_image = publish(tmp_path, key, "v2-test.json", 201, dict(v1, **{"11": "12" * 32}), "2.0t",
                         imageKind="test")
    r = check(config, test_image, "--pubkey", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "new:     cloister.raw 2.0t (TEST image: kubeadm double, not for production), " \
        "measurements version 201" in r.stdout, r.stdout
    # Nothing is written.
    assert json.loads(config.read_text())["attestation"]["measurements"]["11"]["expected"] == "11" * 32
    # The same file again: no change.
    r = check(config, first, "--pubkey", pub)
    assert r.returncode == 0 and "No PCR changes" in r.stdout, r.stdout + r.stderr

    # Signed by another key, or altered after signing: refused before it is parsed.
    forged = publish(tmp_path, other_key, "forged.json", 300, dict(v1, **{"11": "13" * 32}), "3.0")
    r = check(config, forged, "--pubkey", pub)
    assert r.returncode == 1 and "signature" in r.stderr, r.stderr
    altered = tmp_path / "altered.json"
    altered.write_text(second.read_text().replace("12" * 32, "14" * 32))
    (tmp_path / "altered.json.sig").write_bytes((tmp_path / "v2.json.sig").read_bytes())
    r = check(config, altered, "--pubkey", pub)
    assert r.returncode == 1 and "signature" in r.stderr, r.stderr
    # Older than the one the configuration took (a rollback), or another file with its version.
    older = publish(tmp_path, key, "old.json", 50, v1, "0.9")
    r = check(config, older, "--pubkey", pub)
    assert r.returncode == 1 and "older than version 100" in r.stderr, r.stderr
    twin = publish(tmp_path, key, "twin.json", 100, dict(v1, **{"9": "98" * 32}), "1.0")
    r = check(config, twin, "--pubkey", pub)
    assert r.returncode == 1 and "two files with one version" in r.stderr, r.stderr
    # A format-1 file (no measurementsVersion), signed: refused, it cannot be ordered.
    fmt1 = tmp_path / "fmt1.json"
    doc = json.loads(second.read_text())
    for k in ("measurementsVersion", "imageVersion", "created"):
        del doc[k]
    doc["version"] = 1
    fmt1.write_text(json.dumps(doc))
    subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-out", f"{fmt1}.sig", fmt1],
                   check=True, capture_output=True)
    r = check(config, fmt1, "--pubkey", pub)
    assert r.returncode == 1 and "format 1" in r.stderr, r.stderr
    # No key and no explicit --insecure-no-signature: a usage error.
    r = check(config, second)
    assert r.returncode == 2 and "--pubkey" in r.stderr, r.stderr
    r = check(config, second, "--insecure-no-signature")
    assert r.returncode == 0 and "INSECURE" in r.stderr and "NOT signature-checked" in r.stdout
