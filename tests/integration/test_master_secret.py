# SPDX-License-Identifier: Apache-2.0
"""cloister master-secret: creation is safe, loading is strict and every bad file gets one clear
line."""
import base64
import json
import os
import stat

import pytest

GOOD_KEY = base64.b64encode(bytes(range(32))).decode()
GOOD_SALT = base64.b64encode(bytes(range(32, 64))).decode()


def test_generate_creates_0600_file_that_checks_valid(cloister, tmp_path):
    f = tmp_path / "ms.json"
    r = cloister("master-secret", "generate", "--file", f)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    doc = json.loads(f.read_text())
    assert set(doc) == {"version", "key", "salt"}
    assert len(base64.b64decode(doc["key"], validate=True)) == 32
    assert len(base64.b64decode(doc["salt"], validate=True)) == 32
    r = cloister("master-secret", "check", "--file", f)
    assert r.returncode == 0, r.stderr
    assert doc["key"] not in r.stdout + r.stderr, "check must never print the secret"


def test_generate_refuses_to_overwrite(cloister, tmp_path):
    f = tmp_path / "ms.json"
    f.write_text("precious")
    r = cloister("master-secret", "generate", "--file", f)
    assert r.returncode == 1
    assert "already exists" in r.stderr
    assert f.read_text() == "precious"


def test_two_generated_secrets_differ(cloister, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cloister("master-secret", "generate", "--file", a).returncode == 0
    assert cloister("master-secret", "generate", "--file", b).returncode == 0
    assert json.loads(a.read_text())["key"] != json.loads(b.read_text())["key"]


MALFORMED = {
    "empty": (b"", "file is empty"),
    "not-json": (b"{version: 1}", "ms.json:1:"),
    "wrong-base64": (json.dumps({"version": 1, "key": "!!!notbase64!!!", "salt": GOOD_SALT}).encode(),
                     ".key: expected base64 of exactly 32 bytes"),
    "short-key": (json.dumps({"version": 1, "key": base64.b64encode(bytes(31)).decode(),
                              "salt": GOOD_SALT}).encode(), ".key: expected base64 of exactly 32 bytes"),
    "long-salt": (json.dumps({"version": 1, "key": GOOD_KEY,
                              "salt": base64.b64encode(bytes(33)).decode()}).encode(),
                  ".salt: expected base64 of exactly 32 bytes"),
    "extra-key": (json.dumps({"version": 1, "key": GOOD_KEY, "salt": GOOD_SALT,
                              "comment": "x"}).encode(), ".comment: unknown key"),
    "missing-salt": (json.dumps({"version": 1, "key": GOOD_KEY}).encode(),
                     ".salt: required key is missing"),
    "wrong-version": (json.dumps({"version": 2, "key": GOOD_KEY, "salt": GOOD_SALT}).encode(),
                      ".version: 2 is outside [1, 1]"),
    "key-not-string": (json.dumps({"version": 1, "key": 5, "salt": GOOD_SALT}).encode(),
                       ".key: expected a string"),
    "duplicate-key": (('{"version":1,"key":"%s","key":"%s","salt":"%s"}'
                       % (GOOD_KEY, GOOD_KEY, GOOD_SALT)).encode(), "duplicate"),
    "array": (b"[]", "expected an object"),
    "10mb": (b"{" + b" " * (10 * 1024 * 1024) + b"}", "larger than the limit of 65536 bytes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_master_secret_gives_one_line_error(cloister, tmp_path, case):
    content, expected = MALFORMED[case]
    f = tmp_path / "ms.json"
    f.write_bytes(content)
    r = cloister("master-secret", "check", "--file", f)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expected in lines[0]
    assert str(f) in lines[0], "the error must name the file"


def test_missing_file_names_file_and_cause(cloister, tmp_path):
    r = cloister("master-secret", "check", "--file", tmp_path / "nope.json")
    assert r.returncode == 1
    assert "nope.json" in r.stderr and "No such file" in r.stderr


def test_group_readable_file_is_warned_about(cloister, tmp_path):
    f = tmp_path / "ms.json"
    f.write_text(json.dumps({"version": 1, "key": GOOD_KEY, "salt": GOOD_SALT}))
    os.chmod(f, 0o644)
    r = cloister("master-secret", "check", "--file", f)
    assert r.returncode == 0
    assert "chmod 600" in r.stderr
