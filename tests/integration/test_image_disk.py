# SPDX-License-Identifier: Apache-2.0
"""The disk image's own bytes (GPT and the FAT EFI system partition) do not depend on how long
the build takes: mkfs.fat and mtools stamp times, and those must be the frozen epoch."""
import importlib.machinery
import importlib.util
import os
import stat

from conftest import ROOT


def load_image_build():
    loader = importlib.machinery.SourceFileLoader("image_build", str(ROOT / "image" / "build"))
    spec = importlib.util.spec_from_loader("image_build", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def slow_tools(bindir, seconds):
    """mkfs.fat, mmd and mcopy that wait before running: a build on a loaded machine."""
    bindir.mkdir()
    for tool in ("mkfs.fat", "mmd", "mcopy"):
        real = next(p for p in ("/usr/sbin/" + tool, "/sbin/" + tool, "/usr/bin/" + tool)
                    if os.path.exists(p))
        path = bindir / tool
        path.write_text(f"#!/bin/sh\nsleep {seconds}\nexec {real} \"$@\"\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_disk_image_is_the_same_when_the_build_is_slowed_down(tmp_path, monkeypatch):
    build = load_image_build()
    inputs = tmp_path / "in"
    inputs.mkdir()
    uki, squash, verity = inputs / "uki.efi", inputs / "root.squashfs", inputs / "root.verity"
    uki.write_bytes(b"MZ" + bytes(range(256)) * 64)
    squash.write_bytes(b"hsqs" + b"\x01" * 5000)
    verity.write_bytes(b"verity" + b"\x02" * 3000)
    epoch = 1700000000

    def disk(name):
        work = tmp_path / f"work-{name}"
        work.mkdir()
        out = tmp_path / f"{name}.raw"
        build.make_disk(uki, squash, verity, out, work, epoch)
        return out.read_bytes()

    fast = disk("fast")
    # Each tool starts 2.1 s later: a clock that only starts at the epoch would have moved past
    # FAT's 2-second resolution by the time the directory entries are written.
    monkeypatch.setenv("PATH", f"{slow_tools(tmp_path / 'bin', 2.1)}:{os.environ['PATH']}")
    slow = disk("slow")
    assert len(fast) == len(slow)
    assert fast == slow, "the ESP or GPT records the build's duration"
