# SPDX-License-Identifier: Apache-2.0
"""image/cloud-images: the node image in the formats GCP, Azure and AWS import, checked with
independent tools (qemu-img's VHD reader, Python's tar reader) and against the VHD
specification's footer rules. A small synthetic raw image stands in for `make image`'s (the
conversion does not look inside)."""
import hashlib
import json
import os
import re
import struct
import subprocess
import tarfile

import pytest

from conftest import ROOT

TOOL = ROOT / "image" / "cloud-images"
MIB, GIB = 1 << 20, 1 << 30


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("cloud-images")
    raw = d / "image.raw"
    with open(raw, "wb") as f:  # 3 MiB + 300 bytes: a whole number of neither MiB nor GiB
        f.write(hashlib.sha256(b"cloister").digest() * 128)
        f.seek(3 * MIB)
        f.write(b"end" * 100)
    out = d / "out"
    r = subprocess.run([str(TOOL), "--input", str(raw), "--output", str(out), "--epoch",
                        "1700000000"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return raw, out


def test_azure_vhd_is_fixed_with_a_whole_mib_virtual_size(images):
    raw, out = images
    info = json.loads(subprocess.run(["qemu-img", "info", "-f", "vpc", "--output", "json",
                                      str(out / "cloister-azure.vhd")], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["format"] == "vpc"
    assert info["virtual-size"] == 4 * MIB  # 3 MiB + 300 bytes, padded
    assert (out / "cloister-azure.vhd").stat().st_size == 4 * MIB + 512


def test_azure_vhd_footer_has_the_cookie_the_checksum_and_the_fixed_type(images):
    _, out = images
    footer = (out / "cloister-azure.vhd").read_bytes()[-512:]
    assert footer[:8] == b"conectix"
    (checksum,) = struct.unpack(">I", footer[64:68])
    assert checksum == (~(sum(footer[:64]) + sum(footer[68:]))) & 0xFFFFFFFF
    assert struct.unpack(">I", footer[60:64]) == (2,)  # fixed disk
    assert struct.unpack(">Q", footer[16:24]) == (0xFFFFFFFFFFFFFFFF,)  # no dynamic header
    assert struct.unpack(">QQ", footer[40:56]) == (4 * MIB, 4 * MIB)


def test_azure_vhd_converts_back_to_the_same_bytes(images, tmp_path):
    raw, out = images
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw",
                    str(out / "cloister-azure.vhd"), str(back)], check=True)
    data = raw.read_bytes()
    assert back.read_bytes() == data + b"\0" * (4 * MIB - len(data))


def test_gcp_tar_holds_exactly_disk_raw_of_a_whole_number_of_gib(images):
    raw, out = images
    with tarfile.open(out / "cloister-gcp.tar.gz", "r:gz") as t:
        members = t.getmembers()
        assert [m.name for m in members] == ["disk.raw"]
        assert members[0].size % GIB == 0 and members[0].size == GIB
        head = t.extractfile(members[0]).read(raw.stat().st_size)
    assert head == raw.read_bytes()
    with open(out / "cloister-gcp.tar.gz", "rb") as f:
        import gzip
        block = gzip.GzipFile(fileobj=f).read(512)
    assert block[257:265] == b"ustar  \0"  # the old GNU format GCP's importer reads


def test_aws_raw_is_the_image(images):
    raw, out = images
    data = raw.read_bytes()
    got = (out / "cloister-aws.raw").read_bytes()
    assert got[:len(data)] == data and set(got[len(data):]) <= {0}


def test_conversion_is_reproducible(images, tmp_path):
    raw, out = images
    r = subprocess.run([str(TOOL), "--input", str(raw), "--output", str(tmp_path), "--epoch",
                        "1700000000"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for f in ("cloister-gcp.tar.gz", "cloister-azure.vhd", "cloister-aws.raw"):
        assert (tmp_path / f).read_bytes() == (out / f).read_bytes(), f


@pytest.mark.parametrize("cloud,name", [("gcp", "cloister-gcp.tar.gz"),
                                        ("azure", "cloister-azure.vhd"),
                                        ("aws", "cloister-aws.raw")])
def test_each_modules_image_upload_takes_the_file_this_writes(cloud, name):
    tf = (ROOT / "terraform" / cloud / "modules" / "image" / "main.tf").read_text()
    ext = re.search(r'endswith\(var\.image_file, "([^"]+)"\)', tf).group(1)
    assert name.endswith(ext)


def test_a_missing_input_names_make_image():
    r = subprocess.run([str(TOOL), "--input", "/nonexistent/image.raw", "--output", "/tmp/x"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "make image" in r.stderr
