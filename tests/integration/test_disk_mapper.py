# SPDX-License-Identifier: Apache-2.0
"""cloister-disk-mapper on image files: format, strict check, re-key; a host-modified header is
refused with the reason."""
import subprocess

from conftest import run


def image(tmp_path):
    p = tmp_path / "disk.img"
    with open(p, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    return p


def test_format_check_rekey(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    (tmp_path / "k2").write_bytes(b"\x02" * 32)
    r = run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 0 and "state new" in r.stdout and "the key opens it" in r.stdout
    r = run("cloister-disk-mapper", "rekey", disk, "--key-file", tmp_path / "k1",
            "--new-key-file", tmp_path / "k2")
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k2")
    assert r.returncode == 0 and "state initialized" in r.stdout
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 1 and "does not open" in r.stderr
    # cryptsetup's own view agrees: exactly one keyslot.
    dump = subprocess.run(["cryptsetup", "luksDump", disk], capture_output=True, text=True).stdout
    assert dump.count(": luks2") == 1


def test_host_added_keyslot_is_refused_with_counts(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    (tmp_path / "evil").write_bytes(b"\x66" * 32)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1").returncode == 0
    subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2",
                    "--pbkdf-force-iterations", "1000", "--key-file", tmp_path / "k1", disk,
                    tmp_path / "evil"], check=True, capture_output=True)
    r = run("cloister-disk-mapper", "check", disk)
    assert r.returncode == 1
    assert "exactly one keyslot (expected 1, found 2)" in r.stderr


def test_format_refuses_an_existing_header(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1").returncode == 0
    r = run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 1 and "refusing to format" in r.stderr
