# SPDX-License-Identifier: Apache-2.0
"""The systemd units that run Cloister on a node: valid for systemd (systemd-analyze verify,
with the real binaries at their paths) and sandboxed at least as tightly as today
(systemd-analyze security, offline). The bootstrapper must be Type=notify (it calls
sd_notify when it listens); the disk mapper must not get its own mount namespace, or its
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


def test_disk_mapper_unit_has_no_private_mount_namespace():
    text = (ROOT / "disk-mapper" / "cloister-disk-mapper.service").read_text()
    for opt in ("ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "ReadOnlyPaths",
                "PrivateDevices", "PrivateMounts", "TemporaryFileSystem", "BindPaths"):
        assert not re.search(rf"^{opt}=", text, re.M), opt
