# SPDX-License-Identifier: Apache-2.0
"""The Terraform modules (terraform/gcp, azure, aws) checked without a terraform binary: HashiCorp's
HCL parser and formatter (npm, wasm), the provider schemas cut out of the prebuilt provider
packages (terraform/tools/schemas), and Cloister's own assertions on the confidential-VM settings
and on the metadata keys, which the bootstrapper then reads from a loopback metadata service.
Nothing here has been applied to a real cloud."""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run
from test_metadata import Service  # the loopback metadata service of the metadata tests

sys.path.insert(0, str(ROOT / "terraform" / "tools"))
import tfcheck  # noqa: E402

TF = ROOT / "terraform"
CLOUDS = ["gcp", "azure", "aws"]
HASH = ("scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$"
        "1cbc81b236c9417628f7cc2a5c3190aea3650258a5b5ba1a66509ce2d1a6d871")
CID = "ab" * 32
LB = "203.0.113.7"


def present(clouds=CLOUDS):
    return [c for c in clouds if (TF / c).is_dir()]


@pytest.fixture(scope="module")
def parsed():
    """Every .tf file of every module, parsed once (one node process)."""
    files = [f for d in tfcheck.all_dirs([str(TF / c) for c in present()])
             for f in tfcheck.tf_files(d)]
    return tfcheck.parse_files(files)


def module(parsed, cloud, sub=""):
    return tfcheck.Module(str(TF / cloud / sub) if sub else str(TF / cloud), parsed)


@pytest.mark.parametrize("cloud", present())
def test_module_parses_is_formatted_and_matches_the_provider_schema(parsed, cloud):
    errs, _ = tfcheck.check([str(TF / cloud)], parsed=parsed)
    assert errs == []


def test_every_cloud_has_a_module():
    assert present() == CLOUDS


@pytest.mark.parametrize("cloud", CLOUDS)
def test_load_balancer_ports_are_the_same_on_every_cloud(parsed, cloud):
    assert module(parsed, cloud).locals["ports"] == {"api": 6443, "bootstrapper": 9000}


# --- the checker catches what it claims to catch ------------------------------------------------

NODE_GROUP = "gcp/modules/node_group/main.tf"
MISTAKES = {
    "misspelt-nested-attribute": (NODE_GROUP, "enable_vtpm                 = true",
                                  "enable_tpm                  = true",
                                  "shielded_instance_config: unknown argument 'enable_tpm'"),
    "block-written-as-attribute": (NODE_GROUP, "  confidential_instance_config {",
                                   "  confidential_instance_config = {",
                                   "'confidential_instance_config' is a block"),
    "attribute-written-as-block": (NODE_GROUP, "  metadata = merge(var.metadata, {\n"
                                   "    block-project-ssh-keys = \"TRUE\"\n  })",
                                   "  metadata {\n    block-project-ssh-keys = \"TRUE\"\n  }",
                                   "'metadata' is an argument"),
    "missing-required-argument": (NODE_GROUP, "  machine_type     = var.instance_type\n", "",
                                  "missing required argument 'machine_type'"),
    "unknown-resource-type": (NODE_GROUP, 'resource "google_compute_instance_group_manager"',
                              'resource "google_compute_instance_group_managers"',
                              "is not in tools/schemas/google.json"),
    "type-outside-the-subset": ("gcp/main.tf", 'resource "random_id" "uid"',
                                'resource "random_string" "uid"',
                                "type 'random_string' is not in tools/schemas/random.json"),
    "undeclared-variable": ("gcp/main.tf", "var.worker_instance_type\n",
                            "var.worker_machine_type\n", "var.worker_machine_type is not declared"),
    "missing-module-output": ("gcp/outputs.tf", "module.worker.name]",
                              "module.worker.group_name]", "has no output 'group_name'"),
    "unknown-resource-attribute": ("gcp/modules/load_balancer/main.tf",
                                   "= google_compute_global_address.endpoint.address\n}",
                                   "= google_compute_global_address.endpoint.ip\n}",
                                   "has no attribute 'ip'"),
    "module-argument-not-a-variable": ("gcp/main.tf", "  pod_cidr  = var.pod_cidr\n",
                                       "  pod_cidr  = var.pod_cidr\n  mtu       = 1460\n",
                                       "'mtu' is not a variable"),
    "provider-not-pinned-exactly": ("gcp/versions.tf", 'version = "6.50.0"',
                                    'version = "~> 6.0"', "must be pinned to exactly 6.50.0"),
    "not-formatted": (NODE_GROUP, "  zone               = var.zone",
                      "  zone = var.zone", "not formatted"),
    "does-not-parse": (NODE_GROUP, "  target_size        = var.node_count",
                       "  target_size        = ", "does not parse"),
    "misspelt-named-control-plane-argument": (
        "gcp/modules/control_plane_nodes/main.tf", "  source_instance_template = var.template",
        "  source_instance_templete = var.template",
        "unknown argument 'source_instance_templete'"),
}


def test_the_checker_fails_on_each_planted_mistake(tmp_path):
    """Each mistake planted in its own copy of the GCP module; all copies parsed at once."""
    copies = {}
    for name, (path, old, new, _) in MISTAKES.items():
        dst = tmp_path / name
        shutil.copytree(TF / "gcp", dst / "gcp")
        f = dst / path
        text = f.read_text()
        assert text.count(old) == 1, f"{name}: '{old}' must occur once in {path}"
        f.write_text(text.replace(old, new))
        copies[name] = dst / "gcp"
    files = [f for c in copies.values() for d in tfcheck.all_dirs([str(c)])
             for f in tfcheck.tf_files(d)]
    parsed = tfcheck.parse_files(files)
    missed = []
    for name, root in copies.items():
        errs, _ = tfcheck.check([str(root)], parsed=parsed)
        want = MISTAKES[name][3]
        if not any(want in e for e in errs):
            missed.append((name, want, errs))
    assert missed == []


# --- confidential settings ----------------------------------------------------------------------

def one(v):
    assert isinstance(v, list) and len(v) == 1, v
    return v[0]


def locals_tee(parsed):
    return module(parsed, "gcp").locals["tee_settings"]


def test_gcp_snp_is_sev_snp_on_milan_and_tdx_is_tdx(parsed):
    tee = locals_tee(parsed)
    assert tee["snp"]["instance_type"] == "SEV_SNP"
    assert tee["snp"]["min_cpu_platform"] == "AMD Milan"
    assert tee["tdx"]["instance_type"] == "TDX"
    assert tee["snp"]["image_feature"] == "SEV_SNP_CAPABLE"
    assert tee["tdx"]["image_feature"] == "TDX_CAPABLE"


@pytest.mark.parametrize("tee,value,ok", [("snp", "n2d-standard-4", True),
                                           ("snp", "c3-standard-4", False),
                                           ("tdx", "c3-standard-4", True),
                                           ("tdx", "n2d-standard-4", False)])
def test_gcp_precondition_matches_the_machine_family_to_the_tee(parsed, tee, value, ok):
    root = module(parsed, "gcp")
    assert bool(re.search(locals_tee(parsed)[tee]["machine_families"], value)) == ok
    pre = one(root.resources[("terraform_data", "checks")]["lifecycle"])["precondition"]
    conds = [p["condition"] for p in pre]
    assert any("regex(local.tee.machine_families, var.control_plane_instance_type)" in c and
               "regex(local.tee.machine_families, var.worker_instance_type)" in c for c in conds)
    assert root.locals["tee"] == "${local.tee_settings[var.tee]}"
    # every node group waits for the checks
    for g in ("control_plane", "worker"):
        assert root.modules[g]["depends_on"] == ["${terraform_data.checks}"]


def test_gcp_template_is_confidential_terminates_on_maintenance_and_has_a_vtpm(parsed):
    t = module(parsed, "gcp", "modules/node_group").resources[
        ("google_compute_instance_template", "node")]
    assert one(t["confidential_instance_config"]) == {
        "confidential_instance_type": "${var.tee.instance_type}"}
    assert t["min_cpu_platform"] == "${var.tee.min_cpu_platform}"
    assert one(t["scheduling"])["on_host_maintenance"] == "TERMINATE"
    sh = one(t["shielded_instance_config"])
    assert sh["enable_vtpm"] is True
    # every node has a state disk of its own, kept across a recreation by the group
    assert [d.get("device_name") for d in t["disk"] if not d.get("boot")] == ["state-disk"]
    mig = module(parsed, "gcp", "modules/node_group").resources[
        ("google_compute_instance_group_manager", "group")]
    assert one(mig["stateful_disk"])["device_name"] == "state-disk"
    # no service account: nodes hold no cloud credentials and call no cloud API
    assert "service_account" not in t
    # no public address, no SSH keys
    assert all("access_config" not in n for n in t["network_interface"])


def test_gcp_groups_roll_a_new_image_one_node_at_a_time_keeping_name_disk_and_address(parsed):
    """What 'cloister upgrade apply' relies on (docs/upgrade.md, "Clouds"): a new template is
    rolled out at once (PROACTIVE: OPPORTUNISTIC would leave every node on the old image), one
    node at a time and none added (the state disk cannot be in two nodes), each recreated under
    its name with its state disk and address; the workers take worker_image_id first."""
    mig = module(parsed, "gcp", "modules/node_group").resources[
        ("google_compute_instance_group_manager", "group")]
    assert one(mig["update_policy"]) == {
        "type": "PROACTIVE", "minimal_action": "REPLACE", "replacement_method": "RECREATE",
        "max_unavailable_fixed": 1, "max_surge_fixed": 0}
    assert one(mig["stateful_disk"])["delete_rule"] == "ON_PERMANENT_INSTANCE_DELETION"
    assert one(mig["stateful_internal_ip"]) == {
        "interface_name": "nic0", "delete_rule": "ON_PERMANENT_INSTANCE_DELETION"}
    root = module(parsed, "gcp")
    assert root.variables["worker_image_id"]["default"] == ""
    assert root.modules["worker"]["image"].startswith(
        '${var.worker_image_id != "" ? var.worker_image_id : ')
    assert "worker_image_id" not in root.modules["control_plane"]["image"]


def test_gcp_image_is_registered_with_the_tees_guest_os_features(parsed):
    img = module(parsed, "gcp", "modules/image").resources[("google_compute_image", "image")]
    feats = one(img["dynamic"]["guest_os_features"])["for_each"]
    for f in ("UEFI_COMPATIBLE", "GVNIC", "SEV_SNP_CAPABLE", "TDX_CAPABLE"):
        assert f in feats


def test_gcp_firewall_opens_exactly_the_load_balanced_ports_and_no_ssh(parsed):
    root, net = module(parsed, "gcp"), module(parsed, "gcp", "modules/network")
    assert root.locals["ports"] == {"api": 6443, "bootstrapper": 9000}
    fw = net.resources[("google_compute_firewall", "load_balancer")]
    assert one(fw["allow"]) == {"protocol": "tcp",
                                "ports": "${[for p in var.ports : tostring(p)]}"}
    for (t, _), body in net.resources.items():
        if t == "google_compute_firewall":
            assert "0.0.0.0/0" not in json.dumps(body.get("source_ranges"))
            assert "22" not in json.dumps(body.get("allow"))


def test_aws_and_azure_let_in_only_the_load_balanced_ports_and_no_ssh(parsed):
    net = module(parsed, "aws", "modules/network")
    ingress = [b for (t, _), b in net.resources.items()
               if t == "aws_vpc_security_group_ingress_rule"]
    assert [b["cidr_ipv4"] for b in ingress] == ["${var.vpc_cidr}"]  # nothing from outside
    tg = module(parsed, "aws", "modules/load_balancer").resources[
        ("aws_lb_target_group", "port")]
    assert tg["preserve_client_ip"] == "false" and tg["for_each"] == "${var.ports}"
    rule = module(parsed, "azure", "modules/network").resources[
        ("azurerm_network_security_rule", "port")]
    assert rule["for_each"] == "${toset([for p in var.ports : tostring(p)])}"
    assert rule["access"] == "Allow" and rule["destination_port_range"] == "${each.value}"
    assert module(parsed, "azure").modules["network"]["ports"] == "${values(local.ports)}"
    for cloud in CLOUDS:  # port 22 nowhere, in any resource
        for d in tfcheck.all_dirs([str(TF / cloud)]):
            body = json.dumps(tfcheck.Module(d, parsed).resources.__repr__())
            assert not re.search(r"'22'|: 22[,}\]]", body), d


def validation_regex(var):
    """The pattern of a `can(regex("...", var.x))` validation, HCL string escapes undone."""
    cond = one(var["validation"])["condition"]
    m = re.match(r'^\$\{can\(regex\("(.*)", var\.\w+\)\)\}$', cond)
    assert m, cond
    return m.group(1).encode().decode("unicode_escape")


@pytest.mark.parametrize("var", ["control_plane_instance_type", "worker_instance_type"])
@pytest.mark.parametrize("value,ok", [("n2d-standard-4", True), ("c3-standard-4", True),
                                      ("e2-standard-4", False), ("n2-standard-4", False),
                                      ("n1-standard-1", False), ("t2d-standard-1", False)])
def test_gcp_refuses_a_non_confidential_machine_type_by_variable_validation(parsed, var, value,
                                                                            ok):
    rx = validation_regex(module(parsed, "gcp").variables[var])
    assert bool(re.search(rx, value)) == ok


def test_gcp_init_secret_hash_validation_accepts_the_clis_format_only(parsed):
    rx = validation_regex(module(parsed, "gcp").variables["init_secret_hash"])
    assert re.search(rx, HASH)
    assert not re.search(rx, "$2a$10$bcrypthashbcrypthashbcrypthashbcrypthashbcrypthashbc")
    assert not re.search(rx, HASH + "0")


def test_azure_scale_set_is_a_confidential_vm_with_vtpm_and_guest_state_encryption(parsed):
    ss = module(parsed, "azure", "modules/scale_set").resources[
        ("azurerm_linux_virtual_machine_scale_set", "nodes")]
    assert ss["vtpm_enabled"] is True
    assert one(ss["os_disk"])["security_encryption_type"] == "VMGuestStateOnly"
    assert one(ss["data_disk"])["lun"] == 0  # each node's own state disk
    assert ss["provision_vm_agent"] is False and ss["extension_operations_enabled"] is False
    assert "identity" not in ss  # no managed identity: no cloud credentials on the node
    img = module(parsed, "azure", "modules/image").resources[("azurerm_shared_image", "image")]
    assert img["confidential_vm_supported"] is True and img["hyper_v_generation"] == "V2"
    blob = module(parsed, "azure", "modules/image").resources[("azurerm_storage_blob", "image")]
    assert blob["type"] == "Page"


@pytest.mark.parametrize("var", ["control_plane_instance_type", "worker_instance_type"])
@pytest.mark.parametrize("value,ok", [("Standard_DC4as_v5", True), ("Standard_EC8ads_v5", True),
                                      ("Standard_DC4es_v5", True), ("Standard_EC16eds_v5", True),
                                      ("Standard_D4s_v5", False), ("Standard_DC4s_v3", False),
                                      ("Standard_DC4as_v6", False), ("Standard_B2s", False)])
def test_azure_refuses_a_non_confidential_vm_size_by_variable_validation(parsed, var, value, ok):
    rx = validation_regex(module(parsed, "azure").variables[var])
    assert bool(re.search(rx, value)) == ok


def test_azure_tee_follows_the_vm_size(parsed):
    sizes = module(parsed, "azure").locals["tee_sizes"]
    assert re.search(sizes["snp"], "Standard_DC4as_v5") and \
        not re.search(sizes["snp"], "Standard_DC4es_v5")
    assert re.search(sizes["tdx"], "Standard_DC4es_v5") and \
        not re.search(sizes["tdx"], "Standard_DC4as_v5")


def test_aws_launch_template_is_sev_snp_and_the_ami_has_uefi_and_tpm2(parsed):
    lt = module(parsed, "aws", "modules/node_group").resources[("aws_launch_template", "node")]
    assert one(lt["cpu_options"])["amd_sev_snp"] == "enabled"
    assert "iam_instance_profile" not in lt  # no cloud credentials on the node
    assert [b["device_name"] for b in lt["block_device_mappings"]] == ["/dev/sdb"]
    ami = module(parsed, "aws", "modules/image").resources[("aws_ami", "image")]
    assert ami["tpm_support"] == "v2.0" and ami["boot_mode"] == "uefi"
    imp = module(parsed, "aws", "modules/image").resources[
        ("aws_ebs_snapshot_import", "image")]
    assert one(one(imp["disk_container"])["user_bucket"])["s3_key"]
    assert one(imp["disk_container"])["format"] == "RAW"


@pytest.mark.parametrize("var", ["control_plane_instance_type", "worker_instance_type"])
@pytest.mark.parametrize("value,ok", [("m6a.xlarge", True), ("c6a.4xlarge", True),
                                      ("r6a.large", True), ("m5.xlarge", False),
                                      ("m6i.xlarge", False), ("t3.micro", False),
                                      ("m7a.xlarge", False)])
def test_aws_refuses_a_non_sev_snp_instance_type_by_variable_validation(parsed, var, value, ok):
    rx = validation_regex(module(parsed, "aws").variables[var])
    assert bool(re.search(rx, value)) == ok


def test_aws_refuses_tdx(parsed):
    cond = one(module(parsed, "aws").variables["tee"]["validation"])["condition"]
    assert cond == '${contains(["snp"], var.tee)}'


# --- the metadata the modules write is what the node reads --------------------------------------

def metadata_keys_read_by_nodes():
    src = (ROOT / "lib" / "metadata" / "metadata.c").read_text()
    return dict(re.findall(r'#define (KEY_\w+)\s+"([\w-]+)"', src))


def evaluate(expr, env):
    """The few interpolations the metadata maps use, with the values a real apply would have;
    anything else fails the test (a new key needs its value here)."""
    def sub(m):
        assert m.group(1) in env, f"no value for ${{{m.group(1)}}} in this test"
        return str(env[m.group(1)])
    return re.sub(r"\$\{([^}]*)\}", sub, expr)


def node_metadata(parsed, cloud, role):
    """The cloister-* keys the root module gives a role's nodes, as a real apply would have
    them (the load balancer's address, the variables' values)."""
    root = module(parsed, cloud)
    mod = root.modules["control_plane" if role == "control-plane" else "worker"]
    env = {"local.endpoint": LB, "local.ports.api": 6443, "local.ports.bootstrapper": 9000,
           "var.init_secret_hash": HASH, "var.cluster_id": CID}
    md = one(mod["metadata"]) if isinstance(mod["metadata"], list) else mod["metadata"]
    return {k: evaluate(v, env) for k, v in md.items()}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_metadata_keys_are_the_ones_lib_metadata_reads(parsed, cloud):
    read = set(metadata_keys_read_by_nodes().values())
    for role in ("control-plane", "worker"):
        assert set(node_metadata(parsed, cloud, role)) <= read
    assert "cloister-init-secret-hash" in node_metadata(parsed, cloud, "control-plane")
    # Every node carries the owner's init-secret hash, the same one: the control plane for
    # init, a worker for 'cloister logs' after a failed join.
    assert node_metadata(parsed, cloud, "worker")["cloister-init-secret-hash"] == HASH
    assert {"cloister-peers", "cloister-cluster-id"} <= set(node_metadata(parsed, cloud, "worker"))


def test_azure_and_aws_hand_the_metadata_to_the_nodes_as_they_read_it(parsed):
    ss = module(parsed, "azure", "modules/scale_set").resources[
        ("azurerm_linux_virtual_machine_scale_set", "nodes")]
    assert ss["tags"] == "${merge(var.tags, var.metadata)}"  # IMDS compute.tagsList
    ng = module(parsed, "aws", "modules/node_group")
    asg = ng.resources[("aws_autoscaling_group", "group")]
    tag = one(asg["dynamic"]["tag"])
    assert tag["for_each"] == "${var.metadata}"
    assert one(tag["content"])["propagate_at_launch"] is True
    lt = ng.resources[("aws_launch_template", "node")]
    # lib/metadata reads instance tags from IMDSv2: tags in metadata on, tokens required
    assert one(lt["metadata_options"])["instance_metadata_tags"] == "enabled"
    assert one(lt["metadata_options"])["http_tokens"] == "required"


@pytest.fixture
def metadata_service():
    from http.server import HTTPServer
    import threading
    Service.fail_first, Service.seen, Service.azure_compute = 0, [], {}
    srv = HTTPServer(("127.0.0.1", 0), Service)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_metadata_from_the_module_is_read_by_the_bootstrapper(parsed, metadata_service, cloud,
                                                               role):
    """The keys served as GCP attributes, Azure tags or AWS instance tags by the loopback
    metadata service of the metadata tests, read by the real bootstrapper."""
    Service.attrs = node_metadata(parsed, cloud, role)
    r = run("cloister-bootstrapper", "--metadata", cloud, "--metadata-url", metadata_service,
            "--print-metadata")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["role"] == role
    assert got["endpoint"] == f"{LB}:6443"
    if role == "control-plane":
        assert got["initSecretHash"] == HASH and got.get("peers", []) == []
    else:
        assert got["peers"] == [f"{LB}:9000"]
        # --print-metadata does not show the cluster ID: that the node reads it under this key
        # shows in its refusal of a malformed one
        Service.attrs["cloister-cluster-id"] = CID.upper()
        r = run("cloister-bootstrapper", "--metadata", cloud, "--metadata-url",
                metadata_service, "--print-metadata")
        assert r.returncode != 0 and "cluster ID must be 64 lowercase hex" in r.stderr


# --- the CLI's contract -------------------------------------------------------------------------

def cli_outputs():
    """The outputs cloister create reads (cli/cloister-create.c's table)."""
    src = (ROOT / "cli" / "cloister-create.c").read_text()
    table = re.search(r"create_outputs\[\] = \{(.*?)\};", src, re.S)
    assert table, "cli/cloister-create.c has no create_outputs[] table"
    return set(re.findall(r'\{\s*"(\w+)",', table.group(1)))


@pytest.mark.parametrize("cloud", present())
def test_root_module_declares_exactly_the_outputs_the_cli_reads(parsed, cloud):
    assert set(module(parsed, cloud).outputs) == cli_outputs()


def cli_tee_types():
    """cloister create's table of machine types per cloud and TEE: (cloud, tee, example)."""
    src = (ROOT / "cli" / "cloister-create.c").read_text()
    table = re.search(r"tee_types\[\] = \{(.*?)\n\};", src, re.S).group(1)
    return re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*\{[^}]*\},\s*"([^" ]+)', table)


def test_the_clis_examples_of_confidential_types_are_what_the_modules_accept(parsed):
    rows = cli_tee_types()
    assert {(c, t) for c, t, _ in rows} == {("gcp", "snp"), ("gcp", "tdx"), ("azure", "snp"),
                                           ("azure", "tdx"), ("aws", "snp")}
    for cloud, tee, example in rows:
        root = module(parsed, cloud)
        for var in ("control_plane_instance_type", "worker_instance_type"):
            assert re.search(validation_regex(root.variables[var]), example), (cloud, example)
        if cloud == "gcp":
            assert re.search(locals_tee(parsed)[tee]["machine_families"], example)
        elif cloud == "azure":
            assert re.search(root.locals["tee_sizes"][tee], example)


# --- further control planes: named nodes with the owner's authorization --------------------------

NAMED = {"gcp": ("google_compute_instance_from_template", "node"),
         "azure": ("azurerm_linux_virtual_machine", "node"),
         "aws": ("aws_instance", "node")}


def cp_count_ok(cond, n):
    """The control_plane_count validation, evaluated: it must be contains([...], var.x)."""
    m = re.fullmatch(r"\$\{contains\(\[([0-9, ]+)\], var\.control_plane_count\)\}", cond)
    assert m, cond
    return n in json.loads("[" + m.group(1) + "]")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_control_plane_count_is_validated_as_1_3_or_5(parsed, cloud):
    cond = one(module(parsed, cloud).variables["control_plane_count"]["validation"])["condition"]
    assert [n for n in range(0, 8) if cp_count_ok(cond, n)] == [1, 3, 5]


def authorizations_ok(cond, auths):
    """The control_plane_authorizations validation, evaluated per entry: the name's and the
    token's patterns, the token's with the entry's own name put in as Terraform would."""
    m = re.fullmatch(r'\$\{alltrue\(\[for k, v in var\.control_plane_authorizations : '
                     r'can\(regex\("(.*?)", k\)\) && can\(regex\("(.*?)", v\)\)\]\)\}', cond)
    assert m, cond
    name_rx = m.group(1).encode().decode("unicode_escape")
    tok_rx = m.group(2).encode().decode("unicode_escape")
    return all(re.search(name_rx, k) and re.search(tok_rx.replace("${k}", k), v)
               for k, v in auths.items())


TAG = "0123456789abcdef" * 4


@pytest.mark.parametrize("auths,ok", [
    ({}, True),
    ({"c-1a2b3c4d-cp-2": f"cpa1.c-1a2b3c4d-cp-2.1800000000.{TAG}",
      "c-1a2b3c4d-cp-3": f"cpa1.c-1a2b3c4d-cp-3.1800000000.{TAG}"}, True),
    # an authorization for another node's name: the planted mistake the validation catches
    ({"c-1a2b3c4d-cp-2": f"cpa1.c-1a2b3c4d-cp-3.1800000000.{TAG}"}, False),
    ({"c-1a2b3c4d-cp-2": f"cpa1.c-1a2b3c4d-cp-2x.1800000000.{TAG}"}, False),
    ({"C-cp-2": f"cpa1.C-cp-2.1800000000.{TAG}"}, False),
    ({"c-cp-2": f"cpa1.c-cp-2.0180.{TAG}"}, False),
    ({"c-cp-2": f"cpa1.c-cp-2.1800000000.{TAG.upper()}"}, False),
    ({"c-cp-2": "1800000000"}, False)])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_authorizations_validation_takes_only_a_token_for_its_own_name(parsed, cloud, auths, ok):
    var = module(parsed, cloud).variables["control_plane_authorizations"]
    assert var["default"] == {} and var["type"] == "${map(string)}"
    assert authorizations_ok(one(var["validation"])["condition"], auths) == ok


@pytest.mark.parametrize("cloud", CLOUDS)
def test_further_control_planes_are_named_nodes_created_only_with_the_cluster_id(parsed, cloud):
    """The first control plane is its group of one; each further one is a node of its own,
    named by the authorization map's key (so the name is the one the authorization is for),
    created only once cluster_id is set, and its count checked against control_plane_count."""
    root = module(parsed, cloud)
    assert root.modules["control_plane"]["node_count"] == 1
    call = root.modules["control_plane_nodes"]
    assert call["nodes"] == '${var.cluster_id == "" ? {} : var.control_plane_authorizations}'
    assert call["depends_on"] == ["${terraform_data.checks}"]
    pre = one(root.resources[("terraform_data", "checks")]["lifecycle"])["precondition"]
    assert any(p["condition"] == "${length(var.control_plane_authorizations) == 0 || length("
               "var.control_plane_authorizations) == var.control_plane_count - 1}" for p in pre)
    node = module(parsed, cloud, "modules/control_plane_nodes").resources[NAMED[cloud]]
    assert node["for_each"] == "${var.nodes}"
    # the authorization for the node's own name, in its own metadata (the sub-module adds it
    # to the root's keys); on AWS also the name, as the cloister-name tag
    md = re.sub(r"\s+", " ", node["tags" if cloud != "gcp" else "metadata"])
    assert md.startswith("${merge(var.tags, var.metadata, {" if cloud == "azure"
                         else "${merge(var.metadata, {"), md
    assert "cloister-control-plane-authorization = each.value" in md
    if cloud == "aws":
        # an AWS node's name is its instance ID unless the cloister-name tag sets it
        assert "cloister-name = each.key" in md
    else:
        assert node["name"] == "${each.key}"
    # a new image or template never replaces a running control plane (its replacement's new
    # disk would be refused under its name by the join service that admitted it)
    source = {"gcp": "source_instance_template", "azure": "source_image_id",
              "aws": "launch_template"}[cloud]
    assert one(node["lifecycle"])["ignore_changes"] == ["${%s}" % source]


def named_metadata(parsed, cloud):
    """The keys a further control plane gets: the root's map, and the authorization the
    sub-module adds per node (each.value)."""
    env = {"local.endpoint": LB, "local.ports.api": 6443, "local.ports.bootstrapper": 9000,
           "var.init_secret_hash": HASH, "var.cluster_id": CID}
    md = module(parsed, cloud).modules["control_plane_nodes"]["metadata"]
    md = one(md) if isinstance(md, list) else md
    return {k: evaluate(v, env) for k, v in md.items()}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_further_control_planes_metadata_is_read_by_the_bootstrapper(parsed, metadata_service,
                                                                       cloud):
    """Served as the cloud serves it, the further control plane's keys (with the authorization,
    and on AWS its chosen name as the cloister-name tag) are what the real bootstrapper reads:
    a control plane that joins through the load balancer's join-service port."""
    keys = named_metadata(parsed, cloud)
    assert set(keys) | {"cloister-control-plane-authorization"} <= \
        set(metadata_keys_read_by_nodes().values())
    name = "c-1a2b3c4d-cp-2"
    Service.attrs = dict(keys, **{"cloister-control-plane-authorization":
                                  f"cpa1.{name}.1800000000.{TAG}"})
    if cloud == "aws":
        Service.attrs["cloister-name"] = name
    r = run("cloister-bootstrapper", "--metadata", cloud, "--metadata-url", metadata_service,
            "--print-metadata")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["role"] == "control-plane" and got["peers"] == [f"{LB}:9000"]
    # GCP and Azure: the instance's own name (the service says node-1); AWS: the tag, not the
    # instance ID (node-1)
    assert got["name"] == (name if cloud == "aws" else "node-1")
    # that the node reads the authorization under this key shows in its refusal of a bad one
    Service.attrs["cloister-control-plane-authorization"] = f"cpa1.{name}.1800000000.{TAG} x"
    r = run("cloister-bootstrapper", "--metadata", cloud, "--metadata-url", metadata_service,
            "--print-metadata")
    assert r.returncode != 0 and "control-plane authorization is malformed" in r.stderr
