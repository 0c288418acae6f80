# SPDX-License-Identifier: Apache-2.0
"""The disk mapper where device-mapper exists: inside a QEMU guest (TCG) booted from a busybox
initramfs that carries cloister-disk-mapper, mkfs.ext4 and the kernel's dm-crypt. One boot runs
tests/vm/disk-mapper-guest.sh; each test below checks one of its steps."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, binary, run

sys.path.insert(0, str(ROOT / "tests" / "vm"))
import vmharness  # noqa: E402

# xts(aes) is built as xts(ecb(aes)): the kernel asks for ecb through modprobe, which a busybox
# initramfs does not have, so it is listed.
MODULES = ["virtio_pci", "virtio_blk", "dm-mod", "dm-crypt", "ecb", "xts", "algif_skcipher",
           "algif_hash", "dm-integrity", "authenc"]


def blank(path, mib):
    with open(path, "wb") as f:
        f.truncate(mib * 1024 * 1024)
    return path


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    d = tmp_path_factory.mktemp("dm-vm")
    try:
        parts = vmharness.debian_parts(d)
    except vmharness.HarnessError as e:
        pytest.fail(str(e))
    k1, k2 = d / "k1", d / "k2"
    k1.write_bytes(b"first-boot-key-0123456789abcdef")
    k2.write_bytes(b"attested-disk-key-0123456789abcd")
    vda = blank(d / "vda.img", 64)
    vdb = blank(d / "vdb.img", 32)
    subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf",
                    "pbkdf2", "--pbkdf-force-iterations", "1000", "--sector-size", "512",
                    "--key-file", k1, vdb], check=True, capture_output=True)
    vdc = blank(d / "vdc.img", 32)
    assert run("cloister-disk-mapper", "format", "--device", vdc, "--key-file", k1).returncode == 0
    assert run("cloister-disk-mapper", "rekey", "--device", vdc, "--key-file", k1,
               "--new-key-file", k2).returncode == 0
    vdd = blank(d / "vdd.img", 16)
    subprocess.run(["mkfs.ext4", "-q", "-F", vdd], check=True)
    vde = blank(d / "vde.img", 8)
    subprocess.run(["sfdisk", "-q", vde], input=b"label: gpt\nstart=2048, size=4096, "
                   b"name=\"cloister-state-e2e\"\nstart=6144, size=8192, name=\"esp\"\n",
                   check=True, capture_output=True)

    vdf = blank(d / "vdf.img", 48)
    vdg = blank(d / "vdg.img", 32)

    tree = vmharness.Initramfs(d / "initramfs")
    tree.add_binary(binary("cloister-disk-mapper"))
    tree.add_binary("/usr/sbin/mke2fs", "/sbin/mke2fs")
    tree.add_binary("/usr/sbin/mke2fs", "/sbin/mkfs.ext4")
    tree.add_file("/etc/mke2fs.conf", "/etc/mke2fs.conf")
    tree.add_modules(parts["modules"], MODULES)
    tree.add_text("/init", vmharness.INIT_PRELUDE +
                  (ROOT / "tests/vm/disk-mapper-guest.sh").read_text(), 0o755)
    initrd = tree.build(d / "initrd.cpio")
    body = vmharness.run_guest(d / "vm", kernel=parts["kernel"], initrd=initrd,
                               disks=[vda, vdb, vdc, vdd, vde, vdf, vdg], memory=768)
    steps, values = {}, {}
    current = None
    for line in body.splitlines():
        m = re.match(r"STEP (\S+) (\d+)$", line)
        if m:
            current = m.group(1)
            steps[current] = {"rc": int(m.group(2)), "out": ""}
        elif line.startswith("| ") and current:
            steps[current]["out"] += line[2:] + "\n"
        else:
            f = line.split(" ", 1)
            if len(f) == 2:
                values[f[0]] = f[1]
    return {"steps": steps, "values": values, "vda": vda, "k2": k2, "body": body}


def step(guest, name):
    assert name in guest["steps"], f"step {name} did not run:\n{guest['body']}"
    return guest["steps"][name]


def test_first_open_creates_the_file_system_and_mounts_the_binds(guest):
    s = step(guest, "open-first")
    assert s["rc"] == 0, s["out"]
    assert "open as /dev/mapper/cloister-state, mounted on /state" in s["out"]
    assert "creating the file system" in s["out"]


def test_bind_paths_are_seeded_from_the_image_on_first_use(guest):
    assert guest["values"]["SEEDED"] == "shipped with the image"


def test_status_json_shows_the_active_mapping(guest):
    s = step(guest, "status-open")
    assert s["rc"] == 0 and '"active": true' in s["out"] and '"state": "new"' in s["out"]


def test_no_plaintext_reaches_the_raw_disk(guest):
    assert step(guest, "close")["rc"] == 0
    assert guest["values"]["RAW-PLAINTEXT"] == "0"
    assert guest["values"].get("MAPPER-AFTER-CLOSE", "").split() == ["control"]


def test_data_survives_rekey_and_reads_back_with_the_new_key_only(guest):
    assert step(guest, "rekey")["rc"] == 0
    s = step(guest, "open-old-key")
    assert s["rc"] == 1 and "the key does not open the disk" in s["out"]
    s = step(guest, "open-new-key")
    assert s["rc"] == 0, s["out"]
    assert "creating the file system" not in s["out"]
    assert guest["values"]["SUM-READ"] == guest["values"]["SUM-WRITTEN"]
    assert guest["values"]["READ"] == "CLOISTER-PLAINTEXT-MARKER"


def test_disk_key_opens_the_image_on_the_host_too(guest):
    r = run("cloister-disk-mapper", "check-header", "--device", guest["vda"], "--key-file",
            guest["k2"])
    assert r.returncode == 0 and "state initialized" in r.stdout


def test_second_open_of_an_active_mapping_is_refused(guest):
    s = step(guest, "open-twice")
    assert s["rc"] == 1 and "already active" in s["out"]


def test_a_disk_held_by_an_active_mapping_is_never_formatted(guest):
    s = step(guest, "format-held")
    assert s["rc"] == 1 and "held by device-mapper or md" in s["out"]


def test_deviant_header_is_never_activated(guest):
    s = step(guest, "open-deviant")
    assert s["rc"] == 1 and "expected 4096, found 512" in s["out"]
    assert guest["values"]["MAPPER-AFTER-DEVIANT"].split() == ["control"]


def test_initialized_disk_without_file_system_is_not_formatted_and_is_closed_again(guest):
    s = step(guest, "open-no-fs")
    assert s["rc"] == 1 and "refusing to create one" in s["out"]
    assert guest["values"]["MAPPER-AFTER-NO-FS"].split() == ["control"]


def test_mounted_device_is_refused(guest):
    s = step(guest, "open-mounted")
    assert s["rc"] == 1 and "is mounted (or a partition of it is): refusing" in s["out"]


def test_partlabel_finds_the_partition_without_udev(guest):
    s = step(guest, "partlabel")
    # Found /dev/vde1; it holds no LUKS header, so status says so.
    assert "device: /dev/vde1" in s["out"] and "no valid LUKS2 header" in s["out"]


def test_format_in_the_guest_chooses_authenticated_mode(guest):
    s = step(guest, "format-integrity")
    assert s["rc"] == 0, s["out"]
    assert "authenticated (hmac(sha256))" in s["out"]
    assert "integrity: hmac(sha256)" in step(guest, "status-integrity")["out"]


def test_authenticated_disk_reads_back_what_was_written(guest):
    assert step(guest, "open-integrity")["rc"] == 0
    assert step(guest, "reopen-integrity")["rc"] == 0
    assert guest["values"]["ISUM-READ"] == guest["values"]["ISUM-WRITTEN"]


def test_changed_ciphertext_reads_as_an_error_not_as_data(guest):
    """The host zeroes 1 MiB of the data area: the kernel's integrity check refuses those
    sectors, so the file (or the file system) cannot be read, instead of yielding other bytes."""
    rc = guest["values"]["TAMPERED-READ-RC"]
    assert rc != "0", "the tampered blob was read without an error"
    assert int(guest["values"]["DMESG-INTEGRITY"]) > 0


def test_host_format_without_device_mapper_is_not_authenticated_and_says_so(tmp_path):
    disk = blank(tmp_path / "d.img", 32)
    (tmp_path / "k").write_bytes(b"k" * 32)
    r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", tmp_path / "k")
    assert r.returncode == 0 and "not authenticated" in r.stdout
    assert "authenticated mode (dm-integrity) is not available here" in r.stderr
    r = run("cloister-disk-mapper", "format", "--device", blank(tmp_path / "e.img", 32),
            "--key-file", tmp_path / "k", "--integrity", "on")
    assert r.returncode == 1 and "dm-integrity is not available here" in r.stderr


def test_setup_formats_a_blank_disk_with_a_first_boot_key_on_tmpfs(guest):
    s = step(guest, "setup-first")
    assert s["rc"] == 0, s["out"]
    assert "first boot: awaiting the disk key" in s["out"]
    assert guest["values"]["FBK-SIZE"] == "32"


def test_setup_reopens_while_the_first_boot_key_exists(guest):
    s = step(guest, "setup-restart")
    assert s["rc"] == 0 and "formatting" not in s["out"], s["out"]
    assert guest["values"]["KEEP-AFTER-RESTART"] == "pre-join"


def test_setup_formats_a_new_disk_again_once_its_first_boot_key_is_gone(guest):
    s = step(guest, "setup-after-reboot")
    assert s["rc"] == 0 and "new, its first-boot key is gone" in s["out"], s["out"]
    assert guest["values"]["UUID-1"] != guest["values"]["UUID-2"]


def test_setup_of_an_initialized_disk_needs_the_disk_key_and_never_formats(guest):
    assert step(guest, "rekey-g")["rc"] == 0
    s = step(guest, "setup-no-key")
    assert s["rc"] == 1 and "comes from the join service" in s["out"]
    s = step(guest, "setup-disk-key")
    assert s["rc"] == 0 and "formatting" not in s["out"], s["out"]
    assert guest["values"]["JOINED"] == "joined"


def test_first_boot_key_is_refused_off_tmpfs(guest):
    s = step(guest, "setup-not-tmpfs")
    assert s["rc"] == 1 and "not on tmpfs" in s["out"]


def test_a_partition_on_the_disk_that_holds_boot_efi_is_refused(guest):
    s = step(guest, "boot-disk")
    assert s["rc"] == 1 and "on the boot disk (which holds /boot/efi)" in s["out"], s["out"]
