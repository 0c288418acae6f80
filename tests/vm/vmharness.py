# SPDX-License-Identifier: Apache-2.0
"""Booting Cloister code in QEMU guests, for tests (see ../../../shared/VM-HARNESS.md).

- debian_parts(): Debian's cloud kernel (with its module tree) and systemd-stub 254, extracted
  from the packages scripts/install-deps downloads into /var/cache/cloister/debs.
- Initramfs: a busybox initramfs assembled without root: files, host binaries with the shared
  libraries ldd names, kernel modules with their dependencies, an /init script.
- run_guest(): boots a kernel + initramfs directly (-kernel) or a disk through OVMF, optionally
  with a swtpm, with extra virtio disks; /init reports on the second serial port, which is
  returned. Under TCG here; KVM is used when /dev/kvm actually works (never assumed).
"""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

DEB_CACHE = Path(os.environ.get("CLOISTER_DEB_CACHE", "/var/cache/cloister/debs"))
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_TIMEOUT = 300


class HarnessError(Exception):
    pass


def deb(pattern):
    found = sorted(DEB_CACHE.glob(pattern))
    if not found:
        raise HarnessError(f"{DEB_CACHE}/{pattern} missing: run scripts/install-deps as root")
    return found[-1]


def debian_parts(dest: Path):
    """Extracts the cloud kernel and systemd-stub 254; returns a dict of paths."""
    root = dest / "root"
    if not root.exists():
        for p in (deb("systemd-boot-efi_254*.deb"), deb("linux-image-*-cloud-amd64_*.deb")):
            subprocess.run(["dpkg-deb", "-x", p, root], check=True)
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[0]
    version = kernel.name[len("vmlinuz-"):]
    return {"kernel": kernel, "modules": root / "lib/modules" / version,
            "stub": root / "usr/lib/systemd/boot/efi/linuxx64.efi.stub", "root": root}


def module_depends(ko: Path):
    m = re.search(rb"depends=([^\0]*)\0", ko.read_bytes())
    return [d for d in m.group(1).decode().split(",") if d] if m else []


class Initramfs:
    def __init__(self, tree: Path):
        self.tree = tree
        for sub in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc", "modules"):
            (tree / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy("/bin/busybox", tree / "bin/busybox")
        self.modules = []

    def add_file(self, src, dest, mode=None):
        target = self.tree / str(dest).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
        if mode is not None:
            target.chmod(mode)

    def add_text(self, dest, text, mode=0o644):
        target = self.tree / str(dest).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def add_binary(self, src, dest=None):
        """A host executable and every shared library ldd names, at the same paths."""
        src = Path(src)
        self.add_file(src, dest or f"/bin/{src.name}", 0o755)
        out = subprocess.run(["ldd", str(src)], capture_output=True, text=True, check=True).stdout
        for lib in re.findall(r"(/\S+\.so[.\d]*)", out):
            real = Path(lib).resolve()
            target = self.tree / lib.lstrip("/")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(real, target)

    def add_modules(self, moddir: Path, names):
        """Kernel modules and their dependencies, in load order (written to /modules/order)."""
        index = {p.stem.replace("-", "_"): p for p in moddir.rglob("*.ko")}

        def visit(name):
            key = name.replace("-", "_")
            if key in [m.stem.replace("-", "_") for m in self.modules]:
                return
            if key not in index:
                raise HarnessError(f"kernel module {name} not found (built in, or absent?)")
            for dep in module_depends(index[key]):
                visit(dep)
            self.modules.append(index[key])

        for n in names:
            visit(n)
        for m in self.modules:
            shutil.copy(m, self.tree / "modules" / m.name)
        (self.tree / "modules" / "order").write_text("".join(m.name + "\n" for m in self.modules))

    def build(self, out: Path):
        files = sorted(str(p.relative_to(self.tree)) for p in self.tree.rglob("*"))
        data = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "--reproducible"],
                              input="\n".join(files).encode(), cwd=self.tree,
                              capture_output=True, check=True).stdout
        out.write_bytes(data)
        return out


# The start of every harness /init: mounts, modules, then the test's own script.
INIT_PRELUDE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
for m in $(cat /modules/order 2>/dev/null); do insmod /modules/$m || echo "insmod $m failed"; done
exec 3>/dev/ttyS1
report() { echo "$@" >&3; }
"""


def accelerator():
    """TCG unless CLOISTER_VM_ACCEL=kvm. Probing is not reliable: on this machine /dev/kvm exists
    and QEMU starts with it, then the guest aborts or hangs mid-boot (VM-HARNESS.md)."""
    return "kvm" if os.environ.get("CLOISTER_VM_ACCEL") == "kvm" else "tcg"


class Swtpm:
    def __init__(self, d: Path, banks="sha256"):
        state = d / "tpm"
        state.mkdir(parents=True)
        subprocess.run(["swtpm_setup", "--tpm2", "--tpmstate", state, "--createek",
                        "--pcr-banks", banks], check=True, capture_output=True)
        self.sock = d / "swtpm.sock"
        self.proc = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                                      "--ctrl", f"type=unixio,path={self.sock}",
                                      "--flags", "startup-clear"])
        for _ in range(200):
            if self.sock.exists():
                return
            time.sleep(0.05)
        raise HarnessError("swtpm did not create its socket")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)

    def qemu_args(self):
        return ["-chardev", f"socket,id=chrtpm,path={self.sock}",
                "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"]


def run_guest(workdir: Path, *, kernel=None, initrd=None, cmdline="console=ttyS0 panic=-1",
              efi_disk=None, disks=(), tpm=False, tpm_banks="sha256", memory=512,
              timeout=BOOT_TIMEOUT):
    """Boots a guest and returns what /init wrote to the second serial port (ttyS1).

    Either kernel + initrd (direct boot) or efi_disk (OVMF boots \\EFI\\BOOT\\BOOTX64.EFI).
    disks are raw image files, attached as virtio disks vda, vdb, ... in order (after efi_disk).
    tpm_banks: the swtpm's active PCR banks (swtpm_setup --pcr-banks), e.g. "sha256,sha384".
    """
    workdir.mkdir(parents=True, exist_ok=True)
    report = workdir / "report.txt"
    console = workdir / "console.log"
    for f in (report, console):
        f.unlink(missing_ok=True)
    accel = accelerator()
    args = ["qemu-system-x86_64", "-accel", accel, "-machine", "q35", "-m", str(memory),
            "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
            "-serial", f"file:{console}", "-serial", f"file:{report}"]
    if efi_disk:
        shutil.copy(OVMF_VARS, workdir / "vars.fd")
        args += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={workdir / 'vars.fd'}",
                 "-drive", f"if=none,id=boot,format=raw,readonly=on,file={efi_disk}",
                 "-device", "virtio-blk-pci,drive=boot"]
    else:
        args += ["-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline]
    for i, disk in enumerate(disks):
        args += ["-drive", f"if=none,id=d{i},format=raw,file={disk}",
                 "-device", f"virtio-blk-pci,drive=d{i}"]
    swtpm = Swtpm(workdir / "swtpm", tpm_banks) if tpm else None
    try:
        if swtpm:
            args += swtpm.qemu_args()
        subprocess.run(args, check=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       capture_output=True)
    finally:
        if swtpm:
            swtpm.stop()
    text = report.read_text(errors="replace") if report.exists() else ""
    if "HARNESS-END" not in text:
        raise HarnessError("the guest did not finish its report; console:\n" +
                           (console.read_text(errors="replace")[-4000:] if console.exists() else ""))
    return text[text.index("HARNESS-BEGIN"):text.index("HARNESS-END")]
