# SPDX-License-Identifier: Apache-2.0
"""One image for QEMU and the three clouds: the node finds its cloud from SMBIOS
(`--metadata auto`, `--device auto`, `--state-disk auto`; lib/metadata/metadata-detect.c).

Here a directory stands in for /sys/class/dmi/id (`--dmi-dir`), holding each provider's values
(cloud-init's tools/ds-identify, systemd's src/basic/virt.c), and the loopback metadata service
of the metadata tests serves the keys the Terraform modules write. The state disk's names are
checked against the disks the modules attach (read from the .tf files), so the two cannot drift
apart. No real cloud is involved: that a real VM of each cloud shows these values and links is
the cloud boot still owed (docs/cloud.md, Limits)."""
import json
import re

import pytest

from conftest import ROOT, run
from test_metadata import Service
from test_terraform_modules import (CLOUDS, HASH, LB, metadata_service, module,  # noqa: F401
                                    node_metadata, one, parsed)

# The SMBIOS values each provider's VMs show (sysfs adds a newline to each).
DMI = {
    "gcp": {"sys_vendor": "Google", "product_name": "Google Compute Engine",
            "bios_vendor": "Google", "board_vendor": "Google"},
    "azure": {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
              "bios_vendor": "Microsoft Corporation", "board_vendor": "Microsoft Corporation",
              "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77"},
    "aws": {"sys_vendor": "Amazon EC2", "product_name": "m6a.large",
            "bios_vendor": "Amazon EC2", "board_vendor": "Amazon EC2",
            "chassis_asset_tag": "Amazon EC2"},
    "qemu": {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)",
             "bios_vendor": "EDK II"},
}
# The requests that show which service the node asked.
ASKED = {"gcp": ("GET", "/computeMetadata/v1/instance/?recursive=true"),
         "azure": ("GET", "/metadata/instance?api-version=2021-02-01"),
         "aws": ("PUT", "/latest/api/token")}


def dmi_dir(tmp_path, values, name="dmi"):
    d = tmp_path / name
    d.mkdir()
    for k, v in values.items():
        (d / k).write_text(v + "\n")
    return d


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_metadata_auto_reads_the_cloud_smbios_names_with_the_keys_the_module_writes(
        parsed, metadata_service, tmp_path, cloud, role):  # noqa: F811
    Service.attrs = node_metadata(parsed, cloud, role)
    r = run("cloister-bootstrapper", "--metadata", "auto", "--dmi-dir",
            dmi_dir(tmp_path, DMI[cloud]), "--metadata-url", metadata_service, "--print-metadata")
    assert r.returncode == 0, r.stderr
    assert f"SMBIOS says this node runs in {cloud}" in r.stderr
    got = json.loads(r.stdout)
    assert got["role"] == role and got["endpoint"] == f"{LB}:6443"
    if role == "control-plane":
        assert got["initSecretHash"] == HASH
    else:
        assert got["peers"] == [f"{LB}:9000"]
    # It asked that cloud's service, in that cloud's way, and no other's.
    assert Service.seen[0] == ASKED[cloud]
    others = {ASKED[c][1] for c in CLOUDS if c != cloud}
    assert not others & {path for _, path in Service.seen}


def test_metadata_auto_on_qemu_reads_fw_cfg(tmp_path):
    raw = tmp_path / "raw"
    raw.write_text(json.dumps({"name": "node-1", "role": "worker", "peers": ["10.0.0.3:9000"]}))
    r = run("cloister-bootstrapper", "--metadata", "auto", "--dmi-dir",
            dmi_dir(tmp_path, DMI["qemu"]), "--metadata-url", str(raw), "--metadata-timeout", "1",
            "--print-metadata")
    assert r.returncode == 0, r.stderr
    assert "SMBIOS says this node runs in qemu" in r.stderr
    assert json.loads(r.stdout)["peers"] == ["10.0.0.3:9000"]


@pytest.mark.parametrize("values,said", [
    ({"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R650"},
     "sys_vendor 'Dell Inc.', product_name 'PowerEdge R650'"),
    # Hyper-V outside Azure: Microsoft's vendor without Azure's chassis asset tag
    ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
      "chassis_asset_tag": "None"},
     "azure's sys_vendor but not its other values"),
    ({"sys_vendor": "Q" * 129}, "longer than 128 bytes"),
])
def test_metadata_auto_refuses_unknown_hardware_naming_what_it_read_and_the_next_step(
        tmp_path, values, said):
    r = run("cloister-bootstrapper", "--metadata", "auto", "--dmi-dir",
            dmi_dir(tmp_path, values), "--print-metadata")
    assert r.returncode == 1
    assert said in r.stderr
    assert "Pass --metadata gcp|azure|aws|qemu|local:FILE instead of auto" in r.stderr


def test_metadata_auto_without_smbios_is_refused(tmp_path):
    r = run("cloister-bootstrapper", "--metadata", "auto", "--dmi-dir", tmp_path / "none",
            "--print-metadata")
    assert r.returncode == 1 and "does not exist" in r.stderr
    assert "--metadata gcp|azure|aws|qemu|local:FILE" in r.stderr


def test_state_disk_auto_on_unknown_hardware_is_refused_before_the_disk_is_touched(tmp_path):
    md = tmp_path / "m.json"
    md.write_text(json.dumps({"name": "n", "role": "control-plane", "initSecretHash": HASH}))
    r = run("cloister-bootstrapper", "--metadata", f"local:{md}", "--dmi-dir",
            dmi_dir(tmp_path, {"sys_vendor": "innotek GmbH"}), "--state-disk", "auto",
            "--first-boot-key", tmp_path / "k", "--state-dir", tmp_path / "s")
    assert r.returncode == 1
    assert "Cannot tell which cloud this node runs in" in r.stderr
    assert "--state-disk PATH" in r.stderr


# --- the state disk: the names the node looks for are the disks the modules attach ---------------

def state_disk_names(cloud):
    r = run("cloister-disk-mapper", "locate", "--provider", cloud, "--names")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def gcp_state_device_name(parsed):  # noqa: F811
    ng = module(parsed, "gcp", "modules/node_group")
    tmpl = ng.resources[("google_compute_instance_template", "node")]
    disks = [d for d in tmpl["disk"] if d.get("boot") is False]
    assert len(disks) == 1, "the template attaches exactly one disk besides the boot disk"
    name = disks[0]["device_name"]
    # The managed group keeps that very disk across a recreation.
    group = ng.resources[("google_compute_instance_group_manager", "group")]
    assert one(group["stateful_disk"])["device_name"] == name
    return name


def azure_state_luns(parsed):  # noqa: F811
    ss = module(parsed, "azure", "modules/scale_set").resources[
        ("azurerm_linux_virtual_machine_scale_set", "nodes")]
    cp = module(parsed, "azure", "modules/control_plane_nodes").resources[
        ("azurerm_virtual_machine_data_disk_attachment", "state")]
    data = ss["data_disk"] if isinstance(ss["data_disk"], list) else [ss["data_disk"]]
    assert len(data) == 1, "the scale set attaches exactly one data disk"
    return {data[0]["lun"], cp["lun"]}


def aws_state_device_names(parsed):  # noqa: F811
    lt = module(parsed, "aws", "modules/node_group").resources[("aws_launch_template", "node")]
    maps = lt["block_device_mappings"]
    maps = maps if isinstance(maps, list) else [maps]
    assert len(maps) == 1, "the launch template maps exactly one volume: the state disk"
    return {m["device_name"] for m in maps}


def test_gcp_node_looks_for_the_device_name_the_module_gives_the_state_disk(parsed):  # noqa: F811
    name = gcp_state_device_name(parsed)
    assert state_disk_names("gcp") == [f"/dev/disk/by-id/google-{name}",
                                       f"/dev/disk/by-id/scsi-0Google_PersistentDisk_{name}"]


def test_azure_node_looks_for_the_lun_the_module_gives_the_state_disk(parsed):  # noqa: F811
    luns = azure_state_luns(parsed)
    assert len(luns) == 1, f"scale sets and further control planes disagree: LUNs {luns}"
    lun = luns.pop()
    names = state_disk_names("azure")
    assert names == [f"/dev/disk/azure/scsi1/lun{lun}",
                     f"/dev/disk/by-path/*-vmbus-f8b3781b1e824818a1c363d806ec15bb-lun-{lun}"]


def test_aws_node_looks_for_the_device_name_the_module_maps_the_state_disk_to(parsed):  # noqa: F811
    assert state_disk_names("aws") == sorted(aws_state_device_names(parsed))
    # Further control planes are launched from that same template.
    cpn = module(parsed, "aws", "modules/control_plane_nodes").resources[
        ("aws_instance", "node")]
    assert one(cpn["launch_template"])["id"] == "${var.launch_template_id}"


# Each cloud's state disk as its links show it, under a directory standing in for /.
def links(parsed):  # noqa: F811
    name, lun = gcp_state_device_name(parsed), azure_state_luns(parsed).pop()
    return {
        "gcp": [f"/dev/disk/by-id/scsi-0Google_PersistentDisk_{name}"],
        "azure": [f"/dev/disk/by-path/acpi-VMBUS:00-vmbus-f8b3781b1e824818a1c363d806ec15bb-"
                  f"lun-{lun}"],
        "aws": sorted(aws_state_device_names(parsed)),
        "qemu": ["/dev/disk/by-partlabel/cloister-state"],
    }


# Other disks of the same VM that must never be taken for the state disk.
DECOYS = {
    "gcp": ["/dev/disk/by-id/google-persistent-disk-0",
            "/dev/disk/by-id/scsi-0Google_PersistentDisk_persistent-disk-0"],
    # the OS disk (LUN 0 on the OS disk's controller) and a second data disk
    "azure": ["/dev/disk/by-path/acpi-VMBUS:00-vmbus-f8b3781a1e824818a1c363d806ec15bb-lun-0",
              "/dev/disk/by-path/acpi-VMBUS:00-vmbus-f8b3781b1e824818a1c363d806ec15bb-lun-1"],
    "aws": ["/dev/xvda", "/dev/sda1"],
    "qemu": ["/dev/disk/by-partlabel/cloister-root"],
}


@pytest.mark.parametrize("cloud", CLOUDS + ["qemu"])
def test_device_auto_takes_the_cloud_s_state_disk_and_not_its_other_disks(parsed, tmp_path,
                                                                          cloud):  # noqa: F811
    root = tmp_path / "root"
    for p in DECOYS[cloud]:
        (root / p.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / p.lstrip("/")).write_bytes(b"")
    dmi = dmi_dir(tmp_path, DMI[cloud])
    # Only the decoys: no state disk.
    r = run("cloister-disk-mapper", "locate", "--dmi-dir", dmi, "--root", root)
    assert r.returncode == 1 and f"no {cloud} state disk" in r.stderr
    assert "--device PATH" in r.stderr
    want = links(parsed)[cloud][0]
    (root / want.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / want.lstrip("/")).write_bytes(b"")
    r = run("cloister-disk-mapper", "locate", "--dmi-dir", dmi, "--root", root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{root}{want}"


def test_device_auto_refuses_unknown_hardware_naming_the_next_step(tmp_path):
    r = run("cloister-disk-mapper", "setup", "--device", "auto", "--dmi-dir",
            dmi_dir(tmp_path, {"sys_vendor": "VMware, Inc."}), "--mount", tmp_path / "m")
    assert r.returncode == 1
    assert "sys_vendor 'VMware, Inc.'" in r.stderr and "--device PATH" in r.stderr


# --- GCP over NVMe: the image's udev rule makes the name the node looks for ---------------------

GCE_NVME_RULE = ROOT / "image/rootfs/usr/lib/udev/rules.d/65-cloister-gce-nvme.rules"


def test_gcp_nvme_rule_links_the_device_name_as_the_first_name_the_node_looks_for(parsed):  # noqa: F811
    """An NVMe persistent disk has no link systemd's own rules make from its device name: the
    image's rule asks the disk mapper for it and links /dev/disk/by-id/google-NAME, which, with
    the module's device name, is the first name --device auto looks for on GCP."""
    rules = [line for line in GCE_NVME_RULE.read_text().splitlines()
             if line and not line.startswith("#")]
    rule = next(line for line in rules if "PROGRAM=" in line)
    program = re.search(r'PROGRAM="([^"]+)"', rule).group(1).split()
    link = re.search(r'SYMLINK\+="([^"]+)"', rule).group(1)
    assert program == ["/usr/bin/cloister-disk-mapper", "gce-nvme-name", "/dev/%k"]
    assert 'ATTRS{model}=="nvme_card*"' in rule and 'ENV{DEVTYPE}=="disk"' in rule
    assert "/dev/" + link.replace("%c", gcp_state_device_name(parsed)) == \
        state_disk_names("gcp")[0]
    # The image installs the disk mapper where the rule runs it.
    assert '"cloister-disk-mapper"' in (ROOT / "image/build").read_text()


def test_gce_nvme_name_refuses_a_device_that_is_not_an_nvme_namespace(tmp_path):
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * 4096)
    r = run("cloister-disk-mapper", "gce-nvme-name", f)
    assert r.returncode == 1 and r.stdout == ""
    assert "is not an NVMe namespace" in r.stderr
    r = run("cloister-disk-mapper", "gce-nvme-name")
    assert r.returncode == 2 and "give one DEVICE" in r.stderr
