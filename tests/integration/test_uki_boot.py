# SPDX-License-Identifier: Apache-2.0
"""The measured-boot proof: `cloister-measure uki` predicts PCR 4, 9 and 11 of a real boot.

A UKI is assembled from Debian's parts (systemd-stub 254 from bookworm-backports, the cloud
kernel, a busybox initramfs whose /init reports the PCRs and the firmware event log), put on a GPT
disk's EFI system partition as \\EFI\\BOOT\\BOOTX64.EFI and booted by OVMF with a swtpm in QEMU
(TCG). The prediction is made from the file alone, before the boot; the measured values come
from the guest's TPM. The command line deliberately holds a tab and a trailing newline, which
systemd-stub rewrites before the kernel measures it.

The first boot's swtpm also has a SHA-384 bank: the same boot, measured in SHA-384, is the proof
of the TDX RTMR1 prediction (docs/tdx.md, "RTMR prediction"). TDVF measures the same events
through EFI_CC_MEASUREMENT_PROTOCOL, PCR 2..6 mapped to RTMR1; its one difference in this boot is
a single separator in RTMR1 where the TPM driver measures one into each of PCR 0..6.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "tests" / "vm"))
import vmharness  # noqa: E402

ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
CMDLINE = "console=ttyS0\tpanic=-1 quiet\n"
ZERO = "00" * 32
ZERO384 = "00" * 48


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Debian's stub and kernel, and the reporting initramfs."""
    d = tmp_path_factory.mktemp("parts")
    try:
        deb_parts = vmharness.debian_parts(d)
    except vmharness.HarnessError as e:
        pytest.fail(str(e))
    tree = vmharness.Initramfs(d / "initramfs")
    tree.add_file(ROOT / "tests/vm/pcr-report-init", "/init", 0o755)
    initrd = tree.build(d / "initrd.cpio")
    osrel = d / "os-release"
    # IMAGE_VERSION: what `-o json` takes as the measurements file's imageVersion.
    osrel.write_text('ID=debian\nNAME="Cloister measured-boot proof"\nIMAGE_VERSION="proof-1"\n')
    return {"stub": deb_parts["stub"], "kernel": deb_parts["kernel"], "initrd": initrd,
            "osrel": osrel}


def make_uki(parts, cmdline, out):
    cmdfile = out.with_suffix(".cmdline")
    cmdfile.write_bytes(cmdline.encode())
    subprocess.run([ROOT / "scripts/mkuki", "--stub", parts["stub"], "--linux", parts["kernel"],
                    "--initrd", parts["initrd"], "--cmdline-file", cmdfile, "--osrel",
                    parts["osrel"], "--output", out], check=True)
    return out


def make_disk(uki, out):
    """A GPT disk with fixed GUIDs and one EFI system partition holding the UKI, built without
    mounting anything (sfdisk, mkfs.fat, mtools)."""
    esp = out.with_suffix(".esp")
    subprocess.run(["mkfs.fat", "-C", "-i", "c1057e12", esp, str(64 * 1024)], check=True,
                   capture_output=True)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    subprocess.run(["mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"], check=True, env=env)
    subprocess.run(["mcopy", "-i", esp, uki, "::/EFI/BOOT/BOOTX64.EFI"], check=True, env=env)
    with open(out, "wb") as f:
        f.truncate(72 * 1024 * 1024)
    layout = ("label: gpt\nlabel-id: 6F1E1C1A-0000-4000-8000-000000000001\nfirst-lba: 2048\n"
              f"start=2048, size=131072, type={ESP_TYPE}, "
              "uuid=6F1E1C1A-0000-4000-8000-000000000002, name=\"ESP\"\n")
    subprocess.run(["sfdisk", "-q", out], input=layout.encode(), check=True, capture_output=True)
    with open(out, "r+b") as f, open(esp, "rb") as e:
        f.seek(2048 * 512)
        shutil.copyfileobj(e, f)
    return out


def boot(disk, d, banks="sha256"):
    """Boots the disk with OVMF and a fresh swtpm; returns (PCRs, SHA-384 PCRs, event log path)."""
    body = vmharness.run_guest(d, efi_disk=disk, tpm=True, tpm_banks=banks)
    pcrs, pcrs384, log = {}, {}, b""
    for line in body.splitlines():
        f = line.split()
        if f and f[0] == "pcr":
            pcrs[int(f[1])] = f[2].lower()
        elif f and f[0] == "pcr384":
            pcrs384[int(f[1])] = f[2].lower()
        elif f and f[0] == "eventlog":
            log = bytes.fromhex(f[1])
    assert len(pcrs) == 16 and log
    assert len(pcrs384) == (16 if "sha384" in banks else 0)
    eventlog = d / "eventlog.bin"
    eventlog.write_bytes(log)
    return pcrs, pcrs384, eventlog


def predict(kind, path):
    r = run("cloister-measure", kind, path, "-o", "json", "--name", "proof")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    return {int(k): v["expected"] for k, v in m["measurements"].items()}


def predict_tdx(disk):
    """cloister-measure image's TDX prediction: ({RTMR: hex}, [(RTMR, digest, description)])."""
    r = run("cloister-measure", "image", disk, "-o", "json", "--name", "proof")
    assert r.returncode == 0, r.stderr
    rtmrs = {int(k[4:]): v for k, v in json.loads(r.stdout)["tdx"].items()}
    r = run("cloister-measure", "image", disk)
    assert r.returncode == 0, r.stderr
    events = []
    text = r.stdout[r.stdout.index("TDX (TDVF firmware"):r.stdout.index("predicted RTMRs")]
    for line in text.splitlines():
        f = line.split(None, 2)
        if f and f[0].startswith("RTMR"):
            events.append((int(f[0][4:]), f[1], f[2]))
    return rtmrs, events


class Boot:
    def __init__(self, parts, base, cmdline, banks="sha256"):
        base.mkdir()
        self.uki = make_uki(parts, cmdline, base / "uki.efi")
        self.disk = make_disk(self.uki, base / "disk.raw")
        # Predicted from the files alone, before anything boots.
        self.predicted = predict("uki", self.uki)
        self.predicted_from_image = predict("image", self.disk)
        self.rtmrs, self.rtmr_events = predict_tdx(self.disk)
        self.measured, self.measured384, self.eventlog = boot(self.disk, base / "vm", banks)


@pytest.fixture(scope="module")
def first(parts, tmp_path_factory):
    return Boot(parts, tmp_path_factory.mktemp("boot") / "a", CMDLINE, "sha256,sha384")


@pytest.fixture(scope="module")
def second(parts, tmp_path_factory):
    # One byte of the command line changed.
    return Boot(parts, tmp_path_factory.mktemp("boot") / "b", CMDLINE.replace("-1", "-2"))


@pytest.mark.parametrize("pcr", [4, 9, 11])
def test_prediction_equals_real_measured_boot(first, pcr):
    assert first.predicted[pcr] == first.measured[pcr]


@pytest.mark.parametrize("pcr", [8, 12, 13, 15])
def test_pcrs_predicted_zero_are_zero_after_boot(first, pcr):
    assert first.predicted[pcr] == ZERO
    assert first.measured[pcr] == ZERO


def test_image_prediction_equals_uki_prediction(first):
    assert first.predicted_from_image == first.predicted


def test_measured_event_log_replays_to_measured_pcrs(first):
    r = run("cloister-measure", "eventlog", "replay", first.eventlog, "--bank", "sha256",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    replayed = {int(k): v for k, v in json.loads(r.stdout)["pcrs"].items()}
    assert {4, 9, 11} <= replayed.keys()
    for pcr, value in replayed.items():
        assert value == first.measured[pcr], f"PCR {pcr}"


# TDX: the RTMR prediction against the SHA-384 bank of the same real boot.

def sha384_events(eventlog):
    r = run("cloister-measure", "eventlog", "show", eventlog, "--bank", "sha384", "-o", "json")
    assert r.returncode == 0, r.stderr
    return [e for e in json.loads(r.stdout)["events"] if e["type"] != "EV_NO_ACTION"]


def rtmr_of_pcr(pcr):
    """UEFI 2.10 38.4.1 / edk2 TdxMeasurementMapPcrToMrIndex(): PCR -> RTMR (None: MRTD)."""
    return None if pcr == 0 else 0 if pcr in (1, 7) else 1 if pcr <= 6 else 2


def fold(digests):
    value = bytes(48)
    for d in digests:
        value = hashlib.sha384(value + bytes.fromhex(d)).digest()
    return value.hex()


def test_sha384_event_log_replays_to_the_measured_sha384_pcrs(first):
    """The SHA-384 log the next tests use is the one the TPM extended."""
    r = run("cloister-measure", "eventlog", "replay", first.eventlog, "--bank", "sha384",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    replayed = {int(k): v for k, v in json.loads(r.stdout)["pcrs"].items()}
    assert {4, 5, 9, 11} <= replayed.keys()
    for pcr, value in replayed.items():
        assert value == first.measured384[pcr], f"PCR {pcr}"


def test_tdx_rtmr1_events_equal_the_sha384_events_the_firmware_measured(first):
    """Every predicted RTMR1 event is the real boot's PCR 2..6 event of the same kind, in the same
    order, with the same SHA-384 digest: boot attempt, separator, GPT, the UKI, the kernel the
    stub starts, both exit-boot-services actions."""
    real = [e for e in sha384_events(first.eventlog) if rtmr_of_pcr(e["pcr"]) == 1]
    # Tcg2Dxe measures a separator into each of PCR 0..6 at ReadyToBoot; TdTcg2Dxe one into
    # RTMR1. Keep the PCR 4 one (the one between the boot attempt and the GPT in both).
    real = [e for e in real if e["type"] != "EV_SEPARATOR" or e["pcr"] == 4]
    predicted = [e for e in first.rtmr_events if e[0] == 1]
    assert [e["type"] for e in real] == [p[2].split()[0] for p in predicted]
    assert [e["digest"] for e in real] == [p[1] for p in predicted]


def test_tdx_rtmr1_prediction_equals_the_real_boots_sha384_log_mapped_to_rtmr1(first):
    real = [e for e in sha384_events(first.eventlog) if rtmr_of_pcr(e["pcr"]) == 1]
    real = [e for e in real if e["type"] != "EV_SEPARATOR" or e["pcr"] == 4]
    assert fold(e["digest"] for e in real) == first.rtmrs[1]


def test_tdx_rtmr2_and_rtmr3_predicted_zero_for_a_stub_and_kernel_without_the_cc_protocol(first):
    """systemd-stub 254 and this 6.1 kernel measure PCR 9 and 11 through TCG2 only: a TD without
    a vTPM gets none of those events (the TPM boot has them, the CC log would not)."""
    assert first.rtmrs[2] == ZERO384 and first.rtmrs[3] == ZERO384
    assert [e for e in first.rtmr_events if e[0] != 1] == []
    kinds = {rtmr_of_pcr(e["pcr"]) for e in sha384_events(first.eventlog)}
    assert 2 in kinds  # the TPM boot does measure PCR 9 and 11


def test_tdx_rtmr2_of_a_kernel_with_cc_support_is_its_pcr9_events_in_sha384(parts, first,
                                                                            tmp_path):
    """A kernel whose EFI stub carries EFI_CC_MEASUREMENT_PROTOCOL's GUID (Linux 6.9+) measures
    its LoadOptions and initrd into RTMR2 in a TD: the predicted events are the SHA-384 digests
    this boot's kernel measured into PCR 9 (the same data, through TCG2), and RTMR2 their fold.
    The kernel here is the same one with its signature removed and the GUID appended."""
    kernel = tmp_path / "vmlinuz-cc"
    shutil.copy(parts["kernel"], kernel)
    subprocess.run(["sbattach", "--remove", kernel], check=True, capture_output=True)
    with open(kernel, "ab") as f:
        f.write(uuid.UUID("96751a3d-72f4-41a6-a794-ed5d0e67ae6b").bytes_le)
    uki = make_uki(dict(parts, kernel=kernel), CMDLINE, tmp_path / "cc-kernel.efi")
    rtmrs, events = predict_tdx(make_disk(uki, tmp_path / "cc-kernel.raw"))
    pcr9 = [e["digest"] for e in sha384_events(first.eventlog) if e["pcr"] == 9]
    assert len(pcr9) == 2
    assert [e[1] for e in events if e[0] == 2] == pcr9
    assert rtmrs[2] == fold(pcr9) != ZERO384
    assert rtmrs[3] == ZERO384


def test_one_uki_byte_changes_the_predicted_rtmr1(parts, first, tmp_path):
    data = bytearray(first.uki.read_bytes())
    at = data.index(b"IMAGE_VERSION=\"proof-1\"") + len("IMAGE_VERSION=\"proof-")
    data[at:at + 1] = b"2"  # one byte of .osrel
    uki = tmp_path / "changed.efi"
    uki.write_bytes(data)
    rtmrs, events = predict_tdx(make_disk(uki, tmp_path / "changed.raw"))
    assert rtmrs[1] != first.rtmrs[1]
    # Only the UKI's Authenticode event moved: the kernel, the GPT and the constants did not.
    moved = [a[2] for a, b in zip(first.rtmr_events, events) if a[1] != b[1]]
    assert moved == ["EV_EFI_BOOT_SERVICES_APPLICATION"]
    assert rtmrs[2] == first.rtmrs[2] == ZERO384


def test_tdx_rtmrs_are_in_the_measurements_file_and_parse(first, tmp_path):
    m = tmp_path / "m.json"
    m.write_text(run("cloister-measure", "image", first.disk, "-o", "json").stdout)
    assert json.loads(m.read_text())["tdx"] == {f"rtmr{i}": first.rtmrs[i] for i in (1, 2, 3)}
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                   check=True)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", tmp_path / "pub.pem"],
                   check=True, capture_output=True)
    r = run("cloister-measure", "sign", "--key", key, m, "--output", tmp_path / "m.sig")
    assert r.returncode == 0, r.stderr
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", m, tmp_path / "m.sig")
    assert r.returncode == 0, r.stderr


def test_tdx_prediction_refuses_a_stub_that_measures_into_the_cc_protocol(parts, tmp_path):
    """A stub carrying EFI_CC_MEASUREMENT_PROTOCOL's GUID (systemd 255 and later) would measure
    its sections into RTMR2: outside the model, so no RTMR2 is guessed. The PCR prediction
    (TPM) is unaffected."""
    uki = make_uki(parts, "quiet", tmp_path / "cc.efi")
    guid = tmp_path / "guid.bin"
    guid.write_bytes(uuid.UUID("96751a3d-72f4-41a6-a794-ed5d0e67ae6b").bytes_le)
    subprocess.run(["objcopy", "--add-section", f".ccdata={guid}", "--change-section-vma",
                    ".ccdata=0x200000000", uki, uki], check=True)
    disk = make_disk(uki, tmp_path / "cc.raw")
    r = run("cloister-measure", "image", disk)
    assert r.returncode != 0 and r.stdout == ""
    assert "stub uses EFI_CC_MEASUREMENT_PROTOCOL" in r.stderr and "RTMR2" in r.stderr, r.stderr
    assert run("cloister-measure", "uki", uki).returncode == 0


def test_image_whose_primary_gpt_header_is_corrupt_is_refused_naming_the_crc(parts, tmp_path):
    """sfdisk reads such a disk from the backup header, and so would firmware: the measured GPT
    would not be the one predicted, so nothing is predicted."""
    disk = make_disk(make_uki(parts, "quiet", tmp_path / "u.efi"), tmp_path / "bad.raw")
    with open(disk, "r+b") as f:
        f.seek(512 + 40)  # FirstUsableLBA, inside the CRC'd header
        f.write(b"\x99")
    r = run("cloister-measure", "image", disk)
    assert r.returncode != 0 and r.stdout == ""
    assert "primary header's CRC32 does not match" in r.stderr and "sfdisk" in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_uki_alone_says_rtmrs_need_the_disk(first):
    r = run("cloister-measure", "uki", first.uki)
    assert r.returncode == 0, r.stderr
    assert "not predicted from the UKI alone" in r.stdout


def test_stub_rewrites_tab_and_trailing_newline_as_predicted(first):
    r = run("cloister-measure", "uki", first.uki)
    assert r.returncode == 0, r.stderr
    assert "cmdline: console=ttyS0 panic=-1 quiet\n" in r.stdout


def test_one_command_line_byte_moves_pcr9_and_pcr11_prediction_and_measurement(first, second):
    for pcr in (9, 11):
        assert second.predicted[pcr] != first.predicted[pcr]
        assert second.measured[pcr] != first.measured[pcr]
    for pcr in (4, 9, 11):
        assert second.predicted[pcr] == second.measured[pcr]


def test_same_inputs_build_the_same_uki(parts, first, tmp_path):
    again = make_uki(parts, CMDLINE, tmp_path / "again.efi")
    assert again.read_bytes() == first.uki.read_bytes()


def test_prediction_signs_and_verifies(first, tmp_path):
    m = tmp_path / "measurements.json"
    m.write_text(run("cloister-measure", "uki", first.uki, "-o", "json").stdout)
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                   check=True)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", tmp_path / "pub.pem"],
                   check=True, capture_output=True)
    r = run("cloister-measure", "sign", "--key", key, m, "--output", tmp_path / "m.sig")
    assert r.returncode == 0, r.stderr
    r = run("cloister-measure", "verify", "--pubkey", tmp_path / "pub.pem", m, tmp_path / "m.sig")
    assert r.returncode == 0, r.stderr
    assert "image 'uki.efi' proof-1, measurements version" in r.stdout, r.stdout


# The model's edges: what cloister-measure refuses to predict, each with its reason.

def uki_error(path):
    r = run("cloister-measure", "uki", path)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0
    return r.stderr


def test_bookworm_stub_252_is_refused_as_unmodelled(parts, tmp_path):
    old = dict(parts, stub=Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub"))
    uki = make_uki(old, "quiet", tmp_path / "old.efi")
    assert "systemd-stub 252" in uki_error(uki) and "models systemd-stub 254 only" in uki_error(uki)


def test_uki_without_command_line_is_refused(parts, tmp_path):
    uki = tmp_path / "nocmd.efi"
    make_uki(parts, "quiet", uki)
    subprocess.run(["objcopy", "--remove-section", ".cmdline", uki, uki], check=True)
    assert "needs .linux, .cmdline and .initrd" in uki_error(uki)


def test_uki_with_pcrsig_is_refused(parts, tmp_path):
    uki = make_uki(parts, "quiet", tmp_path / "sig.efi")
    sig = tmp_path / "sig.json"
    sig.write_text("{}")
    subprocess.run(["objcopy", "--add-section", f".pcrsig={sig}", "--change-section-vma",
                    ".pcrsig=0x200000000", uki, uki], check=True)
    assert ".pcrsig section: its effects are not modelled" in uki_error(uki)


def test_whitespace_only_command_line_is_refused(parts, tmp_path):
    uki = make_uki(parts, " \t\n", tmp_path / "blank.efi")
    assert "command line is empty" in uki_error(uki)


def test_non_ascii_command_line_is_refused(parts, tmp_path):
    uki = make_uki(parts, "quiet root=LABEL=r\u00e9seau", tmp_path / "utf8.efi")
    assert "non-ASCII" in uki_error(uki)


def test_plain_efi_binary_is_not_a_uki(tmp_path):
    assert "no systemd-stub .sdmagic section" in uki_error("/usr/lib/shim/mmx64.efi")


def test_truncated_uki_fails_with_pe_reason(first, tmp_path):
    cut = tmp_path / "cut.efi"
    cut.write_bytes(first.uki.read_bytes()[:300000])
    assert "PE file: a section runs past the end of the file" in uki_error(cut)


def test_image_without_esp_is_refused(tmp_path):
    disk = tmp_path / "noesp.raw"
    with open(disk, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", disk], input=b"label: gpt\nstart=2048, size=4096\n",
                   check=True, capture_output=True)
    r = run("cloister-measure", "image", disk)
    assert r.returncode != 0 and "no EFI system partition" in r.stderr


def test_image_that_is_not_a_disk_is_refused(tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(os.urandom(4096))
    r = run("cloister-measure", "image", junk)
    assert r.returncode != 0 and "partition table" in r.stderr or "not a GPT" in r.stderr


def test_section_whose_name_extends_a_measured_one_is_refused(parts, tmp_path):
    """systemd-stub matches section names by prefix, last match wins: a '.linuxX' section would
    be the kernel it boots, so a UKI with both is ambiguous."""
    uki = make_uki(parts, "quiet", tmp_path / "two.efi")
    subprocess.run(["objcopy", "--add-section", f".linuxX={parts['initrd']}",
                    "--change-section-vma", ".linuxX=0x200000000", uki, uki], check=True)
    assert "more than one section named .linux or starting with it" in uki_error(uki)


def test_uki_for_another_machine_type_is_refused(first, tmp_path):
    data = bytearray(first.uki.read_bytes())
    lfanew = int.from_bytes(data[0x3C:0x40], "little")
    data[lfanew + 4:lfanew + 6] = (0xAA64).to_bytes(2, "little")
    other = tmp_path / "arm64.efi"
    other.write_bytes(data)
    assert "machine type 0xaa64" in uki_error(other)


def test_image_whose_esp_has_no_uki_names_the_path(tmp_path, first):
    disk = tmp_path / "empty-esp.raw"
    esp = tmp_path / "esp.img"
    subprocess.run(["mkfs.fat", "-C", esp, "8192"], check=True, capture_output=True)
    with open(disk, "wb") as f:
        f.truncate(16 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", disk], input=f"label: gpt\nstart=2048, size=16384, type={ESP_TYPE}\n"
                   .encode(), check=True, capture_output=True)
    with open(disk, "r+b") as f:
        f.seek(2048 * 512)
        f.write(esp.read_bytes())
    r = run("cloister-measure", "image", disk)
    assert r.returncode != 0
    assert "EFI/BOOT/BOOTX64.EFI" in r.stderr and r.stderr.strip().count("\n") == 0
