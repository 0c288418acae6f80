# SPDX-License-Identifier: Apache-2.0
"""cloister-measure authenticode against pesign (an independent implementation, NSS-based) on
Debian's real EFI binaries, unsigned and signed."""
import os
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


# Debian's own signed EFI binaries: the digest inside each Authenticode signature (PKCS#7
# SpcIndirectDataContent) must equal the digest computed from the file.
SIGNED = sorted(Path("/usr/lib/shim").glob("*.efi.signed"))
KERNEL_DEBS = sorted(Path(os.environ.get("CLOISTER_DEB_CACHE", "/var/cache/cloister/debs"))
                     .glob("linux-image-*-cloud-amd64_*.deb"))


@pytest.fixture(scope="module")
def signed_kernel(tmp_path_factory):
    if not KERNEL_DEBS:
        pytest.fail("the cloud kernel package is missing: run scripts/install-deps as root")
    d = tmp_path_factory.mktemp("kernel")
    subprocess.run(["dpkg-deb", "-x", KERNEL_DEBS[-1], d], check=True)
    return sorted((d / "boot").glob("vmlinuz-*"))[0]


def test_debian_signs_shim_binaries():
    assert {p.name for p in SIGNED} >= {"shimx64.efi.signed", "mmx64.efi.signed",
                                        "fbx64.efi.signed"}


@pytest.mark.parametrize("path", SIGNED, ids=lambda p: p.name)
def test_debian_signed_shim_digest_equals_its_signed_digest(path):
    r = run("cloister-measure", "authenticode", "--check-signature", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == pesign_hash(path)
    assert "equals the signed digest" in r.stdout


def test_debian_signed_kernel_digest_equals_its_signed_digest(signed_kernel):
    r = run("cloister-measure", "authenticode", "--check-signature", signed_kernel)
    assert r.returncode == 0, r.stderr


def test_sbsign_signature_digest_equals_computed(signed):
    r = run("cloister-measure", "authenticode", "--check-signature", signed)
    assert r.returncode == 0, r.stderr


def test_modified_signed_binary_names_both_digests(tmp_path):
    f = tmp_path / "mm.efi"
    data = bytearray(Path("/usr/lib/shim/mmx64.efi.signed").read_bytes())
    data[5000] ^= 1
    f.write_bytes(data)
    r = run("cloister-measure", "authenticode", "--check-signature", f)
    assert r.returncode == 1
    assert "modified after signing" in r.stderr and pesign_hash(f) in r.stderr


def test_unsigned_binary_check_signature_says_unsigned():
    r = run("cloister-measure", "authenticode", "--check-signature", "/usr/lib/shim/mmx64.efi")
    assert r.returncode != 0 and "carries no Authenticode signature" in r.stderr


def test_corrupt_pkcs7_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.efi"
    data = bytearray(Path("/usr/lib/shim/mmx64.efi.signed").read_bytes())
    lfanew = int.from_bytes(data[0x3C:0x40], "little")
    certdir = lfanew + 24 + 112 + 4 * 8  # PE32+ data directory 4: the certificate table
    cert = int.from_bytes(data[certdir:certdir + 4], "little")
    data[cert + 8] = 0x04  # PKCS#7's outer SEQUENCE tag becomes an OCTET STRING
    f.write_bytes(data)
    r = run("cloister-measure", "authenticode", "--check-signature", f)
    assert r.returncode != 0 and "Authenticode signature" in r.stderr


def test_gap_between_sections_hashes_like_pesign(tmp_path):
    """Trailing data starts at SUM_OF_BYTES_HASHED (headers + all section data), not at the end
    of the last section: a 512-byte gap before the last section shifts what is hashed."""
    src = bytearray(Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi").read_bytes())
    lfanew = int.from_bytes(src[0x3C:0x40], "little")
    n = int.from_bytes(src[lfanew + 6:lfanew + 8], "little")
    opt_size = int.from_bytes(src[lfanew + 20:lfanew + 22], "little")
    table = lfanew + 24 + opt_size
    headers = [table + 40 * i for i in range(n)]
    ptr = lambda h: int.from_bytes(src[h + 20:h + 24], "little")
    last = max(headers, key=ptr)
    at = ptr(last)
    src[last + 20:last + 24] = (at + 0x200).to_bytes(4, "little")
    gap = tmp_path / "gap.efi"
    gap.write_bytes(bytes(src[:at]) + b"\xaa" * 0x200 + bytes(src[at:]))
    r = run("cloister-measure", "authenticode", gap)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pesign_hash(gap)
