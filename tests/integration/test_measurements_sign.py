# SPDX-License-Identifier: Apache-2.0
"""cloister-measure sign/verify: detached ECDSA P-256 signatures over measurements files,
checked with Python's cryptography package as the independent other side."""
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import run

DOC = {"version": 2, "measurementsVersion": 7, "image": "cloister-test", "imageVersion": "v1.2.3",
       "created": "2024-05-06T07:08:09Z",
       "measurements": {"4": {"expected": "11" * 32}, "9": {"expected": "22" * 32, "warnOnly": True}}}
# The old format: no measurementsVersion, imageVersion or created.
DOC_V1 = {"version": 1, "image": "cloister-test", "measurements": DOC["measurements"]}


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


def test_sign_and_verify_name_the_files_measurements_version_image_and_creation_time(
        tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    what = "image 'cloister-test' v1.2.3, measurements version 7, created 2024-05-06T07:08:09Z"
    assert r.returncode == 0 and what in r.stdout, r.stdout + r.stderr
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, tmp_path / "m.json.sig")
    assert r.returncode == 0 and what in r.stdout, r.stdout + r.stderr


def test_sign_refuses_an_unversioned_format_1_file_naming_the_next_step(tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC_V1))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 1, r.stdout
    assert "format 1, without measurementsVersion" in r.stderr, r.stderr
    assert "--measurements-version N" in r.stderr, r.stderr
    assert not (tmp_path / "m.json.sig").exists()


def test_verify_of_a_signed_format_1_file_warns_that_fetch_measurements_refuses_it(tmp_path, keys):
    """Files signed before the format had a version still verify, with the warning."""
    f = tmp_path / "m.json"
    f.write_bytes(json.dumps(DOC_V1).encode())
    (tmp_path / "m.json.sig").write_bytes(keys.sign(f.read_bytes(), ec.ECDSA(hashes.SHA256())))
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, tmp_path / "m.json.sig")
    assert r.returncode == 0 and "signature valid (format 1)" in r.stdout, r.stdout
    assert "fetch-measurements' refuses it" in r.stderr, r.stderr


@pytest.mark.parametrize("change,why", [
    ({"measurementsVersion": 0}, "outside [1, 9007199254740991]"),
    ({"measurementsVersion": 2**53}, "outside [1, 9007199254740991]"),
    ({"measurementsVersion": "7"}, "expected an integer"),
    ({"measurementsVersion": 7.0}, "expected an integer"),
    ({"measurementsVersion": None}, "expected an integer"),
    ({"imageVersion": ""}, ".imageVersion: must be 1 to 128 bytes"),
    ({"imageVersion": "v\n1"}, ".imageVersion: must be 1 to 128 bytes"),
    ({"imageVersion": "v" * 129}, ".imageVersion: must be 1 to 128 bytes"),
    ({"imageVersion": 1}, "expected a string"),
    ({"image": "x" * 129}, ".image: must be 1 to 128 bytes"),
    ({"created": "2024-02-30T00:00:00Z"}, "not an RFC 3339 UTC time"),
    ({"created": "2024-05-06T07:08:60Z"}, "not an RFC 3339 UTC time"),
    ({"created": "2024-05-06T07:08:09+00:00"}, "not an RFC 3339 UTC time"),
    ({"created": "2024-05-06T07:08:09.5Z"}, "not an RFC 3339 UTC time"),
    ({"created": "2024-05-06 07:08:09Z"}, "not an RFC 3339 UTC time"),
    ({"created": "2024-05-06t07:08:09z"}, "not an RFC 3339 UTC time"),
    ({"created": "1969-12-31T23:59:59Z"}, "not an RFC 3339 UTC time"),
    ({"created": 1714979289}, "expected a string"),
    ({"signedBy": "me"}, ".signedBy: unknown key"),
    ({"version": 3}, "format 3 is newer than this program reads"),
    ({"version": 0}, "outside [1,"),
])
def test_signing_refuses_a_format_2_file_with_a_malformed_field_naming_it(tmp_path, keys, change,
                                                                         why):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(dict(DOC, **change)))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert not (tmp_path / "m.json.sig").exists()


@pytest.mark.parametrize("key", ["measurementsVersion", "imageVersion", "created"])
def test_signing_refuses_a_format_2_file_missing_a_field(tmp_path, keys, key):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({k: v for k, v in DOC.items() if k != key}))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 1 and f".{key}: required key is missing" in r.stderr, r.stderr


def test_a_format_1_file_with_a_format_2_field_is_refused(tmp_path, keys):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(dict(DOC_V1, measurementsVersion=7)))
    r = run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f)
    assert r.returncode == 1 and ".measurementsVersion: unknown key" in r.stderr, r.stderr


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


@pytest.mark.parametrize("field,find", [
    ("measurementsVersion", b'"measurementsVersion": 7'),  # 7 -> 8: a newer version
    ("measurements", b'"expected": "1111'),                 # one hex digit of PCR 4
    ("imageVersion", b'"v1.2.3"'),                          # v1.2.3 -> v1.2.4
])
def test_verify_refuses_a_file_with_one_byte_changed_after_signing(tmp_path, keys, field, find):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(DOC))
    assert run("cloister-measure", "sign", "--key", tmp_path / "k.pem", f).returncode == 0
    sig = tmp_path / "m.json.sig"
    good = f.read_bytes()
    at = good.index(find) + len(find) - 1 - (find == b'"v1.2.3"')
    bad = bytearray(good)
    bad[at] += 1
    f.write_bytes(bytes(bad))
    assert json.loads(bad)[field] != DOC[field]  # still well-formed, one field changed
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, sig)
    assert r.returncode == 1 and "does not verify" in r.stderr, r.stdout + r.stderr
    assert "signature valid" not in r.stdout
    f.write_bytes(good)
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", f, sig)
    assert r.returncode == 0 and "signature valid" in r.stdout, r.stdout + r.stderr


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
