# SPDX-License-Identifier: Apache-2.0
"""The systemd units that run Cloister on a node: valid for systemd (systemd-analyze verify,
with the real binaries at their paths) and sandboxed at least as tightly as today
(systemd-analyze security, offline). The bootstrapper must be Type=notify (it calls
sd_notify when it listens); neither the disk mapper nor the bootstrapper (which has the disk
mapper mount the state disk on rejoin and recovery) may get its own mount namespace, or their
mounts would be invisible to the system."""
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

UNITS = {"cloister-bootstrapper.service": ("bootstrapper", 6.0),
         "cloister-disk-mapper.service": ("disk-mapper", 5.0)}


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    d = tmp_path_factory.mktemp("units")
    for name, (folder, _) in UNITS.items():
        text = (ROOT / folder / name).read_text().replace("/usr/bin/", f"{BUILD}/bin/")
        (d / name).write_text(text)
    return d


def test_units_verify(units):
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        *[str(units / n) for n in UNITS]], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_exposure_does_not_regress(units, name):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(units / name)],
                       capture_output=True, text=True)
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout).group(1))
    assert score <= UNITS[name][1], r.stdout


def test_bootstrapper_is_type_notify():
    text = (ROOT / "bootstrapper" / "cloister-bootstrapper.service").read_text()
    assert re.search(r"^Type=notify$", text, re.M)


# Each of these makes systemd set up a mount namespace for the service (exec_needs_mount_namespace()
# in systemd's src/core/execute.c), unless it is off.
MOUNT_NAMESPACE_OPTIONS = (
    "ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "ReadOnlyPaths",
    "InaccessiblePaths", "ExecPaths", "NoExecPaths", "PrivateDevices", "PrivateMounts",
    "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "ProtectKernelTunables",
    "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
    "ProcSubset", "PrivateIPC", "PrivateNetwork", "PrivatePIDs", "RootDirectory", "RootImage",
    "MountImages", "ExtensionImages", "ExtensionDirectories", "MountFlags", "NetworkNamespacePath")
OFF = {"no", "false", "off", "0", "default", "all", "shared"}


def settings(text):
    """KEY=VALUE lines of a unit, continuation lines joined."""
    out = {}
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_has_no_private_mount_namespace(name):
    folder = UNITS[name][0]
    opts = settings((ROOT / folder / name).read_text())
    for opt in MOUNT_NAMESPACE_OPTIONS:
        for value in opts.get(opt, []):
            assert value.lower() in OFF, f"{name}: {opt}={value} gives it a mount namespace"


def exec_start_option(opts, option):
    argv = opts["ExecStart"][0].split()
    assert argv.count(option) == 1, (option, argv)
    return argv[argv.index(option) + 1]


def test_bootstrapper_mounts_the_state_disk_where_the_disk_mapper_unit_does():
    """At boot the disk mapper leaves an initialized disk locked (--allow-locked); the
    bootstrapper then runs the same setup with the released key: same mount point, same binds,
    and the devices, capabilities and syscalls that takes."""
    dm = settings((ROOT / "disk-mapper" / "cloister-disk-mapper.service").read_text())
    bs = settings((ROOT / "bootstrapper" / "cloister-bootstrapper.service").read_text())
    assert "--allow-locked" in dm["ExecStart"][0].split()
    assert exec_start_option(bs, "--state-mount") == exec_start_option(dm, "--mount")
    assert exec_start_option(bs, "--state-bind") == exec_start_option(dm, "--bind")
    assert exec_start_option(bs, "--state-dir") in exec_start_option(dm, "--bind").split(",")
    assert "Requires" in bs and "cloister-disk-mapper.service" in bs["Requires"][0]
    assert {"/dev/mapper/control rw", "block-device-mapper rw"} <= set(bs["DeviceAllow"])
    assert any("@mount" in f.split() for f in bs["SystemCallFilter"])
    dropped = " ".join(bs.get("CapabilityBoundingSet", []))
    assert dropped.startswith("~") and "CAP_SYS_ADMIN" not in dropped
    # What ProtectKernelModules= and ProtectKernelLogs= dropped before they had to go.
    assert "CAP_SYS_MODULE" in dropped and "CAP_SYSLOG" in dropped
