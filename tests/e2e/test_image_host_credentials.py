# SPDX-License-Identifier: Apache-2.0
"""A hostile host feeds systemd itself (docs/threat-model.md): systemd 252 takes SMBIOS Type 11
OEM strings ("io.systemd.credential:NAME=VALUE") and QEMU fw_cfg items under
opt/io.systemd.credentials/ as system credentials, and its tmpfiles units act on
"tmpfiles.extra" as root, before Cloister's bootstrapper runs and without changing a measured
PCR. The image's measured command line carries systemd.import_credentials=no: booted with such a
credential, the image does nothing with it; the same image with that word changed on its command
line (image/build --uki-only --cmdline-replace) writes the host's marker to the console, so the
test would see the attack if the word were missing."""
import base64
import shutil
import subprocess
import time

import vmharness
from conftest import BUILD, ROOT

MARKER = "HOST-CREDENTIAL-RAN"
STALL_S = 300


def boot_with_credentials(image, d, tag):
    d.mkdir(parents=True)
    shutil.copy(vmharness.OVMF_VARS, d / "vars.fd")
    state = d / "state.raw"
    with open(state, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["sfdisk", "-q", state], check=True, text=True,
                   input='label: gpt\nstart=2048, name="cloister-state"\n')
    payload = f"w /dev/ttyS0 - - - - {MARKER}-{tag}\n".encode()
    (d / "fwcfg.cred").write_bytes(payload)
    console = d / "console.log"
    args = ["qemu-system-x86_64", "-accel", vmharness.accelerator(), "-machine", "q35",
            "-m", "1024", "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
            "-serial", f"file:{console}",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={vmharness.OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={d / 'vars.fd'}",
            "-drive", f"if=none,id=boot,format=raw,readonly=on,file={image}",
            "-device", "virtio-blk-pci,drive=boot",
            "-drive", f"if=none,id=state,format=raw,file={state}",
            "-device", "virtio-blk-pci,drive=state",
            "-smbios", "type=11,value=io.systemd.credential.binary:tmpfiles.extra="
            + base64.b64encode(payload).decode(),
            "-fw_cfg", f"name=opt/io.systemd.credentials/tmpfiles.extra,file={d / 'fwcfg.cred'}"]
    qemu = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    # Until systemd has run its tmpfiles units (and a little after), or the console stalls.
    size, last = -1, time.monotonic()
    try:
        while True:
            text = console.read_text(errors="replace") if console.exists() else ""
            if MARKER in text or "Finished systemd-tmpfiles-setup.service" in text:
                time.sleep(5)
                return console.read_text(errors="replace")
            if len(text) != size:
                size, last = len(text), time.monotonic()
            assert qemu.poll() is None, f"the VM stopped early:\n{text[-3000:]}"
            assert time.monotonic() - last < STALL_S, f"no console progress:\n{text[-3000:]}"
            time.sleep(1)
    finally:
        qemu.kill()
        qemu.wait()


def test_the_image_ignores_system_credentials_from_smbios_and_fw_cfg(image_dir, tmp_path):
    assert b"systemd.import_credentials=no" in (image_dir / "uki.cmdline").read_bytes()
    text = boot_with_credentials(image_dir / "image.raw", tmp_path / "image", "image")
    assert "Finished systemd-tmpfiles-setup.service" in text, text[-3000:]
    assert MARKER not in text, text[-3000:]


def test_without_the_measured_word_the_same_credential_runs_as_root(image_dir, tmp_path):
    """The control: proves the payload works and that the command-line word is what stops it."""
    open_image = tmp_path / "open"
    subprocess.run([ROOT / "image/build", "--build", BUILD, "--uki-only", "--from", image_dir,
                    "--cmdline-replace", "systemd.import_credentials=no",
                    "systemd.import_credentials=yes", "--output", open_image], check=True,
                   capture_output=True)
    text = boot_with_credentials(open_image / "image.raw", tmp_path / "vm", "open")
    assert f"{MARKER}-open" in text, text[-3000:]
