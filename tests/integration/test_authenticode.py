# SPDX-License-Identifier: Apache-2.0
"""cloister-measure authenticode against pesign (an independent implementation, NSS-based) on
Debian's real EFI binaries, unsigned and signed."""
import re
import subprocess
from pathlib import Path

import pytest

from conftest import run

EFI = sorted(p for p in Path("/usr/lib/systemd/boot/efi").glob("*")
             if p.suffix in (".efi", ".stub") and ".elf" not in p.name)


def pesign_hash(path):
    r = subprocess.run(["pesign", "-h", "-i", str(path)], capture_output=True, text=True, check=True)
    return re.search(r"hash: ([0-9a-f]{64})", r.stdout).group(1)


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    d = tmp_path_factory.mktemp("sign")
    subprocess.run(["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    d / "k.pem", "-out", d / "c.pem", "-subj", "/CN=cloister test", "-days", "1"],
                   check=True, capture_output=True)
    out = d / "signed.efi"
    subprocess.run(["sbsign", "--key", d / "k.pem", "--cert", d / "c.pem", "--output", out, EFI[0]],
                   check=True, capture_output=True)
    return out


def test_there_are_efi_binaries_to_check():
    assert len(EFI) >= 2, "systemd-boot-efi must be installed (scripts/install-deps)"


@pytest.mark.parametrize("path", EFI, ids=lambda p: p.name)
def test_authenticode_matches_pesign(path):
    r = run("cloister-measure", "authenticode", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pesign_hash(path)


def test_signed_binary_excludes_its_certificate_table(signed):
    r = run("cloister-measure", "authenticode", signed)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pesign_hash(signed)
    # Re-signing changes the signature bytes but not the digest.
    assert b"cloister test" in signed.read_bytes()


def test_sha384_digest_has_96_hex_digits(signed):
    r = run("cloister-measure", "authenticode", "--hash", "sha384", signed)
    assert r.returncode == 0 and re.fullmatch(r"[0-9a-f]{96}", r.stdout.strip())


def test_not_a_pe_file_gives_one_line_error(tmp_path):
    f = tmp_path / "x.efi"
    f.write_bytes(b"\x7fELF" + bytes(200))
    r = run("cloister-measure", "authenticode", f)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no MZ header" in r.stderr
