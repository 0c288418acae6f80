# SPDX-License-Identifier: Apache-2.0
"""cloister-measure sign/verify: detached ECDSA P-256 signatures over measurements files,
checked with Python's cryptography package as the independent other side."""
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import run

DOC = {"version": 1, "image": "cloister-test",
       "measurements": {"4": {"expected": "11" * 32}, "9": {"expected": "22" * 32, "warnOnly": True}}}


@pytest.fixture
def keys(tmp_path):
    k = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    (tmp_path / "pub.pem").write_bytes(k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return k


def test_sign_then_verify_and_independent_check(tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 0, r.stderr
    sig = (tmp_path / "m.json.sig").read_bytes()
    keys.public_key().verify(sig, f.read_bytes(), ec.ECDSA(hashes.SHA256()))  # raises if bad
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, tmp_path / "m.json.sig")
    assert r.returncode == 0 and "signature valid" in r.stdout


def test_verify_refuses_changed_file_and_other_key(tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    assert run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f).returncode == 0
    doc = dict(DOC, image="evil")
    f.write_text(json.dumps(doc))
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, tmp_path / "m.json.sig")
    assert r.returncode == 1 and "does not verify" in r.stderr
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "other.pem").write_bytes(other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    f.write_text(json.dumps(DOC))
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "other.pem", f, tmp_path / "m.json.sig")
    assert r.returncode == 1


def test_signing_refuses_a_malformed_file(tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(dict(DOC, measurements={"42": {"expected": "00" * 32}})))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 1 and "not a PCR index" in r.stderr
    assert not (tmp_path / "m.json.sig").exists()


def test_signing_refuses_a_non_p256_key(tmp_path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", tmp_path / "rsa.pem"],
                   check=True, capture_output=True)
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    r = run("cloister-measure", "sign", "--key", tmp_path / "rsa.pem", f)
    assert r.returncode == 1 and "P-256" in r.stderr
