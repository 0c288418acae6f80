# SPDX-License-Identifier: Apache-2.0
"""One image, two networks: on QEMU the node's address comes from fw_cfg
(cloister-node-network.service), in a cloud from DHCP (systemd-networkd), chosen at boot by the
image's systemd generator from SMBIOS, through the same detection as --metadata auto
(`cloister-disk-mapper provider`; lib/metadata/metadata-detect.c).

A directory stands in for /sys/class/dmi/id, as in test_cloud_node.py. The generator runs as
systemd runs it (three output directories) and its output is checked link by link: what it
enables, which bootstrapper drop-in it picks, and that every unit and file it names exists in
the image (image/rootfs) or in Debian's systemd. The bootstrapper unit with each drop-in passes
systemd-analyze verify. The image's .network file runs in the real systemd-networkd against a
DHCP server in network namespaces. No cloud is involved: that a real cloud's DHCP gives its NIC
the address (and GCP the MTU) is the cloud boot still owed (docs/cloud.md, Limits)."""
import configparser
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, binary, run
from test_cloud_node import DMI, dmi_dir
from test_metadata import Service
from test_terraform_modules import metadata_service, node_metadata, parsed  # noqa: F401

RF = ROOT / "image" / "rootfs"
GENERATOR = RF / "usr/lib/systemd/system-generators/cloister-provider-generator"
NETWORK = RF / "usr/lib/systemd/network/80-cloister-cloud.network"
CLOUDS = ("gcp", "azure", "aws")


def tee_root(tmp_path, flags="fpu vme de pse tsc msr pae", paths=()):
    """A fake root for the generator's TEE signals: /proc/cpuinfo with these flags, and paths."""
    root = tmp_path / "teeroot"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n\n")
    for p in paths:
        (root / p.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / p.lstrip("/")).write_text("")
    return root


def generate(tmp_path, values, name="dmi", tee=None):
    out = tmp_path / "gen"
    for d in ("gen", "early", "late"):
        (tmp_path / d).mkdir()
    env = dict(os.environ, CLOISTER_DISK_MAPPER=str(binary("cloister-disk-mapper")),
               CLOISTER_DMI_DIR=str(dmi_dir(tmp_path, values, name)),
               CLOISTER_TEE_ROOT=str(tee if tee is not None else tee_root(tmp_path)))
    r = subprocess.run([str(GENERATOR), out, tmp_path / "early", tmp_path / "late"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr  # a generator that fails leaves the boot without units
    assert not any((tmp_path / "early").iterdir()) and not any((tmp_path / "late").iterdir())
    links = {str(p.relative_to(out)): os.readlink(p)
             for p in sorted(out.rglob("*")) if p.is_symlink()}
    files = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not files, files  # links only
    return links, r.stderr


def in_image(target):
    """The file a link in the booted image points to: the image's own (image/rootfs) or
    Debian's systemd (the same package on this machine: bookworm's systemd 252)."""
    rel = target.lstrip("/")
    for p in (RF / rel, Path("/") / rel):
        if p.exists():
            return p
    return None


@pytest.mark.parametrize("where", [*CLOUDS, "qemu"])
def test_provider_prints_where_smbios_says_the_node_runs(tmp_path, where):
    r = run("cloister-disk-mapper", "provider", "--dmi-dir", dmi_dir(tmp_path, DMI[where]))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{where}\n"


def test_provider_refuses_unknown_hardware_quoting_what_it_read(tmp_path):
    r = run("cloister-disk-mapper", "provider", "--dmi-dir",
            dmi_dir(tmp_path, {"sys_vendor": "VMware, Inc.", "product_name": "VMware7,1"}))
    assert r.returncode == 1 and r.stdout == ""
    assert "VMware, Inc." in r.stderr


def test_generator_on_qemu_starts_the_fw_cfg_network_and_the_qemu_drop_in(tmp_path):
    links, _ = generate(tmp_path, DMI["qemu"])
    assert links == {
        "network-online.target.wants/cloister-node-network.service":
            "/usr/lib/systemd/system/cloister-node-network.service",
        "cloister-bootstrapper.service.d/10-provider.conf": "/usr/lib/cloister/provider/qemu.conf",
    }


@pytest.mark.parametrize("flags,paths", [
    ("fpu tdx_guest", ()), ("fpu sev sev_es sev_snp", ()), ("fpu sev", ()), ("fpu sev_es", ()),
    ("fpu", ("/dev/sev-guest",)), ("fpu", ("/dev/tdx_guest",)),
    ("fpu", ("/sys/kernel/config/tsm/report/x",))],
    ids=["tdx", "snp", "sev", "sev-es", "sev-guest-dev", "tdx-guest-dev", "configfs-tsm"])
def test_generator_refuses_host_smbios_qemu_in_a_tee_naming_the_signal(tmp_path, flags, paths):
    # Finding 2: a cloud host says "QEMU" in SMBIOS (product name still the cloud's) to make a
    # confidential node take its address and join policy from fw_cfg. In a TEE: no network.
    spoofed = dict(DMI["qemu"], product_name="Google Compute Engine")
    links, err = generate(tmp_path, spoofed, tee=tee_root(tmp_path, flags, paths))
    assert links == {}
    assert "refused" in err and "TEE" in err and "no network set up" in err
    assert (paths[0].removesuffix("/x") if paths else flags.split()[-1]) in err


def test_generator_tee_check_matches_whole_cpu_flags_only(tmp_path):
    # "sevx" or "nosev" are not SEV; the QEMU branch stays for a plain local QEMU.
    links, err = generate(tmp_path, DMI["qemu"], tee=tee_root(tmp_path, "fpu sevx nosev_es"))
    assert "cloister-node-network.service" in str(links), err


@pytest.mark.parametrize("cloud", CLOUDS)
def test_generator_in_a_cloud_starts_dhcp_and_orders_the_bootstrapper_after_online(
        tmp_path, cloud):
    links, _ = generate(tmp_path, DMI[cloud])
    assert links == {
        "multi-user.target.wants/systemd-networkd.service":
            "/usr/lib/systemd/system/systemd-networkd.service",
        "network-online.target.wants/systemd-networkd-wait-online.service":
            "/usr/lib/systemd/system/systemd-networkd-wait-online.service",
        "cloister-bootstrapper.service.d/10-provider.conf":
            "/usr/lib/cloister/provider/cloud.conf",
    }
    # Neither the fw_cfg network nor the QEMU drop-in (its --join-policy from the host's fw_cfg).
    assert "cloister-node-network.service" not in str(links)


@pytest.mark.parametrize("values", [{"sys_vendor": "VMware, Inc."},
                                    {"sys_vendor": "Microsoft Corporation",
                                     "chassis_asset_tag": "None"}], ids=["vmware", "hyper-v"])
def test_generator_on_unknown_hardware_sets_up_no_network_and_says_why(tmp_path, values):
    links, err = generate(tmp_path, values)
    assert links == {}
    assert "no network set up" in err and values["sys_vendor"] in err


@pytest.mark.parametrize("where", [*CLOUDS, "qemu"])
def test_everything_the_generator_links_exists_in_the_image(tmp_path, where):
    links, _ = generate(tmp_path, DMI[where])
    for link, target in links.items():
        assert in_image(target), f"{link} -> {target}: no such file in the image"


def unit_settings(path):
    out = {}
    for line in re.sub(r"\\\n\s*", " ", path.read_text()).splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).extend(m.group(2).split())
    return out


@pytest.mark.parametrize("where", ["cloud", "qemu"])
def test_each_drop_in_orders_the_bootstrapper_after_the_network_its_provider_starts(
        tmp_path, where):
    links, _ = generate(tmp_path, DMI["gcp" if where == "cloud" else "qemu"])
    network = [Path(t).name for link, t in links.items()
               if link.startswith("network-online.target.wants/")]
    assert len(network) == 1
    s = unit_settings(RF / f"usr/lib/cloister/provider/{where}.conf")
    assert network[0] in s["After"] and network[0] in s.get("Requires", []) + s.get("Wants", [])


def test_qemu_drop_in_reads_what_the_fw_cfg_network_writes():
    script = (RF / "usr/lib/cloister/node-network").read_text()
    s = unit_settings(RF / "usr/lib/cloister/provider/qemu.conf")
    assert s["EnvironmentFile"] == ["/run/cloister/node.env"]
    assert "> /run/cloister/node.env" in script and "CLOISTER_ADDRESS=" in script
    exec_start = s["ExecStart"]
    assert exec_start[exec_start.index("--join-policy") + 1] in script  # the file it writes


def test_cloud_drop_in_takes_no_host_supplied_join_policy_or_address():
    """In a cloud the host is the adversary: nothing it writes (fw_cfg, /run/cloister from the
    QEMU service) may reach the bootstrapper as a join policy (docs/cloud.md)."""
    s = unit_settings(RF / "usr/lib/cloister/provider/cloud.conf")
    assert set(s) == {"Wants", "After"}
    base = unit_settings(ROOT / "bootstrapper/cloister-bootstrapper.service")
    assert "--join-policy" not in base["ExecStart"] and "EnvironmentFile" not in base


@pytest.mark.parametrize("where", ["cloud", "qemu"])
def test_bootstrapper_unit_with_each_drop_in_verifies(tmp_path, where):
    d = tmp_path / "units"
    (d / "cloister-bootstrapper.service.d").mkdir(parents=True)
    script = "/usr/lib/cloister/node-network"
    sub = lambda t: (t.replace("/usr/bin/", f"{BUILD}/bin/")  # noqa: E731
                     .replace(script, str(RF / script.lstrip("/"))))
    for src in (ROOT / "bootstrapper/cloister-bootstrapper.service",
                ROOT / "disk-mapper/cloister-disk-mapper.service",
                RF / "usr/lib/systemd/system/cloister-node-network.service"):
        (d / src.name).write_text(sub(src.read_text()))
    (d / "cloister-bootstrapper.service.d/10-provider.conf").write_text(
        sub((RF / f"usr/lib/cloister/provider/{where}.conf").read_text()))
    verify = lambda: subprocess.run(["systemd-analyze", "verify", "--man=no",  # noqa: E731
                                     str(d / "cloister-bootstrapper.service")],
                                    capture_output=True, text=True, timeout=120)
    r = verify()
    assert r.returncode == 0 and r.stderr == "", r.stderr
    if where == "qemu":  # the drop-in was read: without the unit it requires, verify fails
        (d / "cloister-node-network.service").unlink()
        r = verify()
        assert r.returncode != 0 and "cloister-node-network.service" in r.stderr


def network_file():
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str
    p.read_string(NETWORK.read_text())
    return p


def test_cloud_network_takes_the_address_and_gcp_s_mtu_by_dhcp():
    n = network_file()
    assert n["Network"]["DHCP"] == "ipv4"
    assert n["DHCPv4"]["UseMTU"] == "yes"  # networkd's default is no: GCP's 1460 would be lost
    assert n["Link"]["RequiredForOnline"] == "routable"  # what wait-online waits for


def test_cloud_network_configures_the_clouds_nics_only():
    """virtio-net/gVNIC (GCP), hv_netvsc (Azure), ENA (AWS); never Azure's accelerated-networking
    VF (it shares the synthetic NIC's MAC address) nor what Kubernetes creates (veth, bridges)."""
    drivers = set(network_file()["Match"]["Driver"].split())
    assert drivers == {"virtio_net", "gve", "hv_netvsc", "ena"}
    assert not drivers & {"mlx4_en", "mlx4_core", "mlx5_core", "mana", "veth", "bridge", "vxlan"}
    assert set(network_file()["Match"]) == {"Driver"}


def test_image_build_no_longer_enables_the_fw_cfg_network_everywhere():
    build = (ROOT / "image/build").read_text()
    enable = re.search(r'run\(\*systemctl, "enable",(.*?)\)', build, re.S).group(1)
    assert "cloister-node-network" not in enable and "networkd" not in enable
    assert not (RF / "etc/systemd/system/cloister-bootstrapper.service.d").exists() or \
        not any((RF / "etc/systemd/system/cloister-bootstrapper.service.d").iterdir())


def test_gcp_metadata_server_resolves_without_dns():
    hosts = (RF / "etc/hosts").read_text()
    assert re.search(r"^169\.254\.169\.254\s+metadata\.google\.internal\b", hosts, re.M)
    assert "metadata.google.internal" in (ROOT / "lib/metadata/metadata.c").read_text()



def test_joining_cloud_node_without_a_join_policy_refuses_naming_why(
        parsed, metadata_service, tmp_path):  # noqa: F811
    """The cloud unit's arguments (no --join-policy: the host must not supply one) on a GCP
    worker whose metadata lists join services: the bootstrapper refuses before it touches its
    disk or TPM, and says where the reason is written down."""
    Service.attrs = node_metadata(parsed, "gcp", "worker")
    opts = unit_settings(ROOT / "bootstrapper/cloister-bootstrapper.service")["ExecStart"][1:]
    opts[opts.index("--state-disk") + 1] = str(tmp_path / "disk.img")
    opts[opts.index("--state-dir") + 1] = str(tmp_path / "state")
    r = run("cloister-bootstrapper", *opts, "--dmi-dir", dmi_dir(tmp_path, DMI["gcp"]),
            "--metadata-url", metadata_service)
    assert r.returncode == 1, r.stderr
    assert "--join-policy FILE" in r.stderr and "docs/cloud.md" in r.stderr
    assert not (tmp_path / "disk.img").exists() and not (tmp_path / "state").exists()


# The real systemd-networkd (Debian's systemd 252, the image's) with the image's .network file,
# against a DHCP server (busybox udhcpd) that gives MTU 1460 as GCP's does, over a veth pair
# between two network namespaces this test creates. networkd runs in a private mount namespace
# (its runtime directory, the config directories and a read-only /sys, which tells it that no
# udev will initialise the link) so nothing of the host's is touched.
CLIENT = r"""
set -u
mount -o remount,bind,ro /sys
mount -t tmpfs -o mode=0755 tmpfs /run/systemd/netif
mkdir -p /run/systemd/netif/links /run/systemd/netif/leases
chown -R systemd-network: /run/systemd/netif
mount --bind "$1" /etc/systemd/network
mount -t tmpfs tmpfs /usr/lib/systemd/network
/lib/systemd/systemd-networkd 2> "$2" &
pid=$!
/lib/systemd/systemd-networkd-wait-online --interface=cn0 --timeout="$3"
echo "wait-online=$?"
ip -4 -o addr show dev cn0
ip -o link show dev cn0
kill $pid
wait $pid
"""


@pytest.fixture
def dhcp_link(tmp_path):
    for tool in ("/lib/systemd/systemd-networkd", "/lib/systemd/systemd-networkd-wait-online",
                 "/usr/bin/busybox"):
        if not os.path.exists(tool):
            pytest.fail(f"{tool} is missing: run scripts/install-deps")
    tag = f"{os.getpid() % 100000}"
    srv, cli = f"cnd-s{tag}", f"cnd-c{tag}"
    conf = tmp_path / "udhcpd.conf"
    conf.write_text("start 10.99.0.10\nend 10.99.0.20\ninterface cs0\n"
                    f"lease_file {tmp_path}/leases\noption subnet 255.255.255.0\n"
                    "option router 10.99.0.1\noption mtu 1460\noption lease 3600\n")
    (tmp_path / "leases").write_text("")
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    sh("ip", "netns", "add", srv)
    sh("ip", "netns", "add", cli)
    server = None
    try:
        sh("ip", "link", "add", "cs0", "netns", srv, "type", "veth", "peer", "name", "cn0",
           "netns", cli)
        sh("ip", "-n", srv, "addr", "add", "10.99.0.1/24", "dev", "cs0")
        sh("ip", "-n", srv, "link", "set", "cs0", "up")
        server = subprocess.Popen(["ip", "netns", "exec", srv, "busybox", "udhcpd", "-f",
                                   str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)

        def client(network_text, timeout):
            d = tmp_path / f"network-{timeout}"
            d.mkdir()
            (d / NETWORK.name).write_text(network_text)
            r = subprocess.run(["ip", "netns", "exec", cli, "unshare", "-m",
                                "--propagation", "private", "sh", "-c", CLIENT, "sh", d,
                                tmp_path / "networkd.log", str(timeout)],
                               capture_output=True, text=True, timeout=timeout + 60)
            return r.stdout, (tmp_path / "networkd.log").read_text()
        yield client
    finally:
        if server:
            server.terminate()
            server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", cli])
        subprocess.run(["ip", "netns", "del", srv])


def test_networkd_takes_the_address_and_mtu_1460_by_dhcp_with_the_image_s_network_file(
        dhcp_link):
    """The image's file as it is, but for its driver list (a veth's driver is 'veth'): networkd
    parses every key without a warning, takes the address by DHCP, sets GCP's MTU 1460 from
    the offer and wait-online sees the link online."""
    text = NETWORK.read_text()
    drivers = "Driver=virtio_net gve hv_netvsc ena\n"
    assert text.count(drivers) == 1
    out, log = dhcp_link(text.replace(drivers, "Driver=veth\n"), 30)
    assert "wait-online=0" in out, (out, log)
    assert re.search(r"inet 10\.99\.0\.\d+/24 .*dynamic", out), out
    assert " mtu 1460 " in out, out
    assert not re.search(r"(?i)unknown (key|section)|failed to parse|ignoring", log), log


def test_networkd_leaves_an_interface_of_another_driver_alone(dhcp_link):
    """The image's file unchanged: a veth (what Kubernetes creates; like Azure's VF, not a
    cloud NIC's driver) gets no address and stays at its MTU."""
    out, log = dhcp_link(NETWORK.read_text(), 5)
    assert "wait-online=0" not in out
    assert "inet " not in out and " mtu 1500 " in out, out


def test_node_network_shows_host_control_bytes_of_a_bad_address_as_question_marks(tmp_path):
    # Review finding 6: opt/cloister/network is host bytes; a bad one is echoed to the console.
    # The real script, with fw_cfg read from a temporary directory and the NIC wait left out.
    fw = tmp_path / "fw"
    (fw / "network").mkdir(parents=True)
    (fw / "network/raw").write_bytes(b"10.0.0.1\x1b]0;owned\x07\r/24")
    script = (RF / "usr/lib/cloister/node-network").read_text()
    assert script.count("FW=/sys/firmware/qemu_fw_cfg/by_name/opt/cloister\n") == 1
    script = script.replace("FW=/sys/firmware/qemu_fw_cfg/by_name/opt/cloister\n", f"FW={fw}\n")
    script = script.replace('wait_for "Ethernet interface" first_nic\n', "")
    script = script.replace("modprobe qemu_fw_cfg", "true")
    (tmp_path / "nn").write_text(script)
    r = subprocess.run(["sh", str(tmp_path / "nn")], capture_output=True, timeout=60)
    assert r.returncode == 1
    assert b"'10.0.0.1?]0;owned??/24' is not ADDR/PREFIX" in r.stderr, r.stderr
    assert not any(c < 0x20 and c != 0x0a for c in r.stderr), r.stderr
