# SPDX-License-Identifier: Apache-2.0
"""cloister create and cloister terminate driving Terraform, against the terraform test double
(tests/doubles/terraform: it accepts exactly the commands and flags a real run needs, checks the
variables against the module's declarations and validations, writes the state and outputs an
apply would, fails on request, and fails loudly if the init secret is in its argument vector,
its environment or a workspace file). No terraform binary or cloud exists here."""
import base64
import json
import os
import re
from pathlib import Path

import pytest

from conftest import ROOT, run

DOUBLE = ROOT / "tests" / "doubles" / "terraform"
INFRA = {"tee": "snp", "project": "my-project", "region": "europe-west4",
         "zone": "europe-west4-a", "controlPlaneInstanceType": "n2d-standard-4",
         "workerInstanceType": "n2d-standard-4", "workerCount": 2,
         "imageId": "projects/my-project/global/images/cloister-1"}


class Env:
    def __init__(self, tmp: Path, name="terraform"):
        self.dir = tmp / "owner"
        self.dir.mkdir()
        self.bin = tmp / "bin"
        self.bin.mkdir()
        (self.bin / name).symlink_to(DOUBLE)
        self.calls = tmp / "calls.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CLOISTER_"))}
        self.env.update({"PATH": f"{self.bin}:/usr/bin:/bin", "TF_DOUBLE_LOG": str(self.calls),
                         "TF_DOUBLE_FORBID": "%s:%s" % (self.dir / "cloister-init-secret",
                                                        self.dir / "cloister-mastersecret.json")})

    def config(self, provider="gcp", base=INFRA, **infra):
        r = run("cloister", "config", "generate", provider, "--file", "cloister.json", "--force",
                cwd=self.dir)
        assert r.returncode == 0, r.stderr
        c = json.loads((self.dir / "cloister.json").read_text())
        c["infrastructure"] = {**base, **infra}
        c["infrastructure"] = {k: v for k, v in c["infrastructure"].items() if v is not None}
        (self.dir / "cloister.json").write_text(json.dumps(c))

    def cloister(self, *args, **env):
        e = dict(self.env, **env)
        return run("cloister", *args, cwd=self.dir, env=e)

    def commands(self):
        if not self.calls.exists():
            return []
        out = []
        for line in self.calls.read_text().splitlines():
            argv = json.loads(line)["argv"][1:]
            if argv and argv[0].startswith("-chdir="):
                argv = argv[1:]
            out.append(argv[0])
        return out

    def files(self):
        return sorted(p.name for p in self.dir.iterdir())


@pytest.fixture
def owner(tmp_path):
    e = Env(tmp_path)
    e.config()
    return e


def state(owner):
    return json.loads((owner.dir / "cloister-state.json").read_text())


def test_create_runs_init_plan_apply_output_and_records_the_outputs(owner):
    r = owner.cloister("create", "-y")
    assert r.returncode == 0, r.stderr
    assert owner.commands() == ["version", "init", "plan", "apply", "output"]
    for line in owner.calls.read_text().splitlines():
        c = json.loads(line)
        if c["argv"][1] != "version":
            assert c["chdir"] == "cloister-terraform" and c["cwd"] == str(owner.dir)
    # progress and the summary the owner is asked about
    for s in ("[1/4] terraform init", "[3/4] terraform apply",
              "1 control-plane node of type n2d-standard-4",
              "2 worker nodes of type n2d-standard-4"):
        assert s in r.stdout
    st = state(owner)
    assert st["status"] == "created" and st["clusterName"] == "cloister"
    infra = st["infrastructure"]
    assert re.fullmatch(r"[0-9a-f]{8}", infra["uid"])
    assert infra["provider"] == "gcp" and infra["tee"] == "snp"
    assert st["endpoint"] == f"https://{infra['endpoint']}:9000"
    assert infra["instance_groups"] == [f"cloister-{infra['uid']}-control-plane",
                                        f"cloister-{infra['uid']}-worker"]
    tfvars = json.loads((owner.dir / "cloister-terraform" / "terraform.tfvars.json").read_text())
    assert tfvars["name"] == "cloister" and tfvars["tee"] == "snp"
    assert tfvars["project"] == "my-project" and tfvars["worker_count"] == 2
    assert re.fullmatch(r"scrypt\$15\$8\$1\$[0-9a-f]{32}\$[0-9a-f]{64}",
                        tfvars["init_secret_hash"])
    assert "cluster_id" not in tfvars
    # secrets: both generated, owner-only; the workspace too
    for f in ("cloister-mastersecret.json", "cloister-init-secret", "cloister-state.json"):
        assert (owner.dir / f).stat().st_mode & 0o077 == 0
    assert (owner.dir / "cloister-terraform").stat().st_mode & 0o077 == 0


def test_init_secret_is_never_in_terraforms_argv_environment_or_files(owner):
    """The double fails on a leak (TF_DOUBLE_FORBID); checked here directly as well."""
    assert owner.cloister("create", "-y").returncode == 0
    secret = (owner.dir / "cloister-init-secret").read_text().strip()
    raw = base64.b64decode(secret)
    assert secret not in owner.calls.read_text()
    for p in (owner.dir / "cloister-terraform").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert secret.encode() not in data and raw not in data and \
                raw.hex().encode() not in data, p
    assert secret not in (owner.dir / "cloister-state.json").read_text()


def test_the_double_catches_a_leaked_secret(owner, tmp_path):
    """The leak check works: a secret planted in the workspace is reported."""
    assert owner.cloister("create", "-y").returncode == 0
    secret = (owner.dir / "cloister-init-secret").read_text().strip()
    (owner.dir / "cloister-terraform" / "leak.txt").write_text(secret)
    r = owner.cloister("terminate", "-y")
    assert r.returncode != 0 and "SECRET LEAK" in r.stderr
    (owner.dir / "cloister-terraform" / "leak.txt").write_text(
        json.loads((owner.dir / "cloister-mastersecret.json").read_text())["key"])
    r = owner.cloister("terminate", "-y")
    assert r.returncode != 0 and "SECRET LEAK" in r.stderr


def test_terminate_destroys_removes_the_workspace_and_keeps_master_secret_and_config(owner):
    assert owner.cloister("create", "-y").returncode == 0
    ms = (owner.dir / "cloister-mastersecret.json").read_bytes()
    r = owner.cloister("terminate", "-y")
    assert r.returncode == 0, r.stderr
    assert owner.commands()[-2:] == ["init", "destroy"]
    assert "Cluster terminated" in r.stdout
    assert owner.files() == ["cloister-mastersecret.json", "cloister.json"]
    assert (owner.dir / "cloister-mastersecret.json").read_bytes() == ms


def test_terminate_again_is_safe(owner):
    assert owner.cloister("create", "-y").returncode == 0
    assert owner.cloister("terminate", "-y").returncode == 0
    n = len(owner.commands())
    r = owner.cloister("terminate", "-y")
    assert r.returncode == 0 and "Nothing to terminate" in r.stdout
    assert len(owner.commands()) == n  # terraform not run


def test_terminate_asks_and_refuses_without_a_terminal_unless_yes(owner):
    assert owner.cloister("create", "-y").returncode == 0
    r = owner.cloister("terminate")
    assert r.returncode != 0 and "pass -y" in r.stderr
    assert owner.commands()[-1] == "output"  # nothing destroyed
    assert (owner.dir / "cloister-terraform").is_dir()


def test_terminate_whose_destroy_fails_keeps_everything_and_can_be_run_again(owner):
    assert owner.cloister("create", "-y").returncode == 0
    uid = state(owner)["infrastructure"]["uid"]
    r = owner.cloister("terminate", "-y", TF_DOUBLE_FAIL="destroy")
    assert r.returncode != 0
    assert "already being used" in r.stderr  # Terraform's own error line
    assert "run 'cloister terminate' again" in r.stderr and f"cloister-uid={uid}" in r.stderr
    assert (owner.dir / "cloister-terraform" / "terraform.tfstate").exists()
    assert (owner.dir / "cloister-state.json").exists()
    assert owner.cloister("terminate", "-y").returncode == 0
    assert owner.files() == ["cloister-mastersecret.json", "cloister.json"]


def test_failed_apply_is_rolled_back_with_destroy_and_create_can_be_run_again(owner):
    r = owner.cloister("create", "-y", TF_DOUBLE_FAIL="apply")
    assert r.returncode != 0
    assert owner.commands() == ["version", "init", "plan", "apply", "destroy"]
    assert "Quota 'N2D_CPUS' exceeded" in r.stderr  # the cause, from Terraform's output
    assert "Rolling back" in r.stderr and "Rollback succeeded" in r.stderr
    # nothing of the failed cluster is left but Terraform's output for the post-mortem
    assert owner.files() == ["cloister-create-failed.log", "cloister.json"]
    r = owner.cloister("create", "-y")
    assert r.returncode == 0, r.stderr


def test_failed_rollback_keeps_the_workspace_and_prints_the_manual_cleanup(owner):
    r = owner.cloister("create", "-y", TF_DOUBLE_FAIL="apply,destroy")
    assert r.returncode != 0
    assert owner.commands()[-2:] == ["apply", "destroy"]
    assert "The rollback failed" in r.stderr
    tfstate = json.loads((owner.dir / "cloister-terraform" / "terraform.tfstate").read_text())
    uid = tfstate["resources"][0]["instances"][0]["attributes"]["hex"]
    assert f"labels.cloister-uid:{uid}" in r.stderr  # the gcloud filter
    assert tfstate["resources"]  # what was created is still tracked
    # the secrets the nodes' metadata refers to are kept with it
    assert {"cloister-mastersecret.json", "cloister-init-secret"} <= set(owner.files())
    # terminate finishes the job
    r = owner.cloister("terminate", "-y")
    assert r.returncode == 0, r.stderr
    assert not (owner.dir / "cloister-terraform").exists()


def test_no_rollback_keeps_what_was_created(owner):
    r = owner.cloister("create", "-y", "--no-rollback", TF_DOUBLE_FAIL="apply")
    assert r.returncode != 0 and "--no-rollback" in r.stderr
    assert "destroy" not in owner.commands()
    assert (owner.dir / "cloister-terraform" / "terraform.tfstate").exists()
    # like a create cut short after apply: no state file, the workspace knows what exists
    assert not (owner.dir / "cloister-state.json").exists()
    r = owner.cloister("terminate", "-y")
    assert r.returncode == 0, r.stderr
    assert owner.commands()[-2:] == ["init", "destroy"]
    assert owner.files() == ["cloister-mastersecret.json", "cloister.json"]


@pytest.mark.parametrize("step", ["init", "plan"])
def test_failure_before_apply_creates_nothing_and_leaves_nothing(owner, step):
    r = owner.cloister("create", "-y", TF_DOUBLE_FAIL=step)
    assert r.returncode != 0
    assert "Nothing was created" in r.stderr
    assert "apply" not in owner.commands() and "destroy" not in owner.commands()
    assert owner.files() == ["cloister-create-failed.log", "cloister.json"]


@pytest.mark.parametrize("existing,why", [
    ("cloister-terraform", "Run 'cloister terminate' first"),
    ("cloister-state.json", "records another cluster"),
    ("cloister-mastersecret.json", "never overwrites a master secret"),
])
def test_create_refuses_when_a_cluster_or_master_secret_exists(owner, existing, why):
    p = owner.dir / existing
    if existing == "cloister-terraform":
        p.mkdir()
    else:
        p.write_text("{}")
    r = owner.cloister("create", "-y")
    assert r.returncode != 0 and why in r.stderr
    assert owner.commands() == []
    assert p.exists() and (p.is_dir() or p.read_text() == "{}")


def test_a_non_confidential_machine_type_is_refused_naming_the_field(owner):
    owner.config(workerInstanceType="e2-standard-4")
    r = owner.cloister("create", "-y")
    assert r.returncode != 0
    assert ".infrastructure.workerInstanceType 'e2-standard-4' does not run snp nodes" in r.stderr
    assert "n2d-standard-4" in r.stderr  # the fix
    assert owner.commands() == []
    assert owner.files() == ["cloister.json"]


def test_a_machine_type_of_the_other_tee_is_refused(owner):
    owner.config(tee="tdx")  # n2d: SEV-SNP machines
    r = owner.cloister("create", "-y")
    assert r.returncode != 0
    assert ".infrastructure.controlPlaneInstanceType 'n2d-standard-4' does not run tdx" in r.stderr
    assert owner.commands() == []


def test_the_modules_own_validation_refuses_at_plan_before_anything_is_created(owner):
    """What only the module checks (here the zone's form) is refused by its variable
    validation, evaluated by the double at plan."""
    owner.config(zone="europe-west4")
    r = owner.cloister("create", "-y")
    assert r.returncode != 0
    assert "zone: a GCP zone such as europe-west4-a." in r.stderr
    assert "apply" not in owner.commands() and "Nothing was created" in r.stderr


CLOUD_INFRA = {
    "azure": {"tee": "tdx", "subscriptionId": "00000000-1111-2222-3333-444444444444",
              "location": "westeurope", "zone": "1",
              "controlPlaneInstanceType": "Standard_DC4es_v5",
              "workerInstanceType": "Standard_EC8es_v5", "workerCount": 3,
              "imageId": "/subscriptions/x/resourceGroups/g/providers/Microsoft.Compute/"
                         "galleries/g/images/cloister/versions/1.0.0"},
    "aws": {"tee": "snp", "region": "eu-west-1", "zone": "eu-west-1a",
            "controlPlaneInstanceType": "m6a.xlarge", "workerInstanceType": "c6a.2xlarge",
            "imageFile": "IMAGE"},
}


@pytest.mark.parametrize("cloud", ["azure", "aws"])
def test_create_and_terminate_on_azure_and_aws(tmp_path, cloud):
    """The double checks the variables against each cloud's own module."""
    e = Env(tmp_path)
    infra = dict(CLOUD_INFRA[cloud])
    if infra.get("imageFile") == "IMAGE":
        (tmp_path / "cloister-aws.raw").write_bytes(b"\0" * 4096)
        infra["imageFile"] = str(tmp_path / "cloister-aws.raw")
    e.config(cloud, infra)
    # AWS's network load balancer has a DNS name, not an address
    dns = "cloister-0dd31633-5f1e2d3c4b5a6978.elb.eu-west-1.amazonaws.com"
    r = e.cloister("create", "-y", **({"TF_DOUBLE_ENDPOINT": dns} if cloud == "aws" else {}))
    assert r.returncode == 0, r.stderr
    st = state(e)
    if cloud == "aws":
        assert st["endpoint"] == f"https://{dns}:9000"
    assert st["infrastructure"]["provider"] == cloud
    assert st["infrastructure"]["tee"] == infra["tee"]
    tfvars = json.loads((e.dir / "cloister-terraform" / "terraform.tfvars.json").read_text())
    if cloud == "aws":
        assert tfvars["image_file"] == infra["imageFile"]  # absolute: terraform runs elsewhere
    else:
        assert tfvars["subscription_id"] == infra["subscriptionId"]
    r = e.cloister("terminate", "-y")
    assert r.returncode == 0, r.stderr
    assert e.files() == ["cloister-mastersecret.json", "cloister.json"]


def test_azure_size_of_another_tee_or_none_is_refused(tmp_path):
    e = Env(tmp_path)
    for size in ("Standard_D8s_v5", "Standard_DC4as_v5"):  # not confidential; SNP, not TDX
        e.config("azure", CLOUD_INFRA["azure"], workerInstanceType=size)
        r = e.cloister("create", "-y")
        assert r.returncode != 0 and f"'{size}' does not run tdx nodes on azure" in r.stderr
    assert e.commands() == []


def test_tdx_on_aws_is_refused_naming_the_field(tmp_path):
    e = Env(tmp_path)
    infra = dict(CLOUD_INFRA["aws"], imageFile=None, imageId="ami-0123456789abcdef0")
    e.config("aws", infra, tee="tdx")
    r = e.cloister("create", "-y")
    assert r.returncode != 0
    assert ".infrastructure.tee 'tdx': aws offers snp (AMD SEV-SNP) only" in r.stderr
    assert e.commands() == []


def test_missing_unknown_and_malformed_fields_are_refused_naming_the_field(tmp_path):
    e = Env(tmp_path)
    e.config(project=None)
    r = e.cloister("create", "-y")
    assert r.returncode != 0 and ".infrastructure.project is not set" in r.stderr
    e.config(tee="sgx")
    r = e.cloister("create", "-y")
    assert r.returncode != 0 and ".infrastructure.tee 'sgx'" in r.stderr
    e.config(imageFile="/nonexistent.tar.gz")
    r = e.cloister("create", "-y")
    assert r.returncode != 0 and "exactly one of .infrastructure.imageId" in r.stderr
    e.config(bogus=1)
    r = e.cloister("create", "-y")
    assert r.returncode != 0 and "bogus" in r.stderr
    assert e.commands() == []


def test_without_terraform_or_tofu_the_error_names_the_fix(owner):
    (owner.bin / "terraform").unlink()
    r = owner.cloister("create", "-y")
    assert r.returncode != 0 and "Neither terraform nor tofu is on PATH" in r.stderr
    assert "--terraform PATH" in r.stderr
    assert owner.files() == ["cloister.json"]


def test_tofu_is_used_when_terraform_is_absent(tmp_path):
    e = Env(tmp_path, name="tofu")
    e.config()
    r = e.cloister("create", "-y")
    assert r.returncode == 0, r.stderr
    assert str(e.bin / "tofu") in r.stdout


def test_terraform_given_by_path_and_too_old_a_version_is_refused(owner):
    r = owner.cloister("create", "-y", "--terraform", str(DOUBLE), TF_DOUBLE_VERSION="1.4.6")
    assert r.returncode != 0 and "is version 1.4.6" in r.stderr and ">= 1.5" in r.stderr
    assert owner.files() == ["cloister.json"]


def test_tf_log_keeps_terraforms_log_in_the_workspace(owner):
    r = owner.cloister("create", "-y", "--tf-log", "DEBUG")
    assert r.returncode == 0, r.stderr
    log = (owner.dir / "cloister-terraform" / "terraform.log").read_text()
    assert "[DEBUG] terraform double: apply" in log
    r = owner.cloister("terminate", "-y", "--tf-log", "LOUD")
    assert r.returncode != 0 and "TRACE, DEBUG, INFO, WARN, ERROR" in r.stderr


def test_create_asks_and_a_no_creates_nothing(owner):
    r = owner.cloister("create")  # no terminal, no -y
    assert r.returncode != 0 and "pass -y" in r.stderr
    assert "apply" not in owner.commands()
    assert owner.files() == ["cloister.json"]


def test_apply_after_create_takes_the_endpoint_and_name_from_the_state_file(owner):
    """apply without --endpoint attests the node at the load balancer create recorded. (The
    double's address is loopback here, where no node answers: apply fails before it writes
    anything, and create's record is left as it was.)"""
    r = owner.cloister("create", "-y", TF_DOUBLE_ENDPOINT="127.0.0.1")
    assert r.returncode == 0, r.stderr
    before = (owner.dir / "cloister-state.json").read_text()
    # a launch measurement (no node was booted): enough for apply to go to the node
    c = json.loads((owner.dir / "cloister.json").read_text())
    c["attestation"]["snp"]["measurements"] = ["ab" * 48]
    (owner.dir / "cloister.json").write_text(json.dumps(c))
    r = owner.cloister("apply", "--config", "cloister.json", "--timeout", "2")
    assert r.returncode != 0
    assert "Verifying the node at https://127.0.0.1:9000 and initialising cluster 'cloister'" \
        in r.stderr, r.stderr
    assert "resuming" not in r.stderr
    assert (owner.dir / "cloister-state.json").read_text() == before


def initialised(owner, cid="cd" * 32, status="initialized"):
    """What 'cloister apply' leaves in the state file once the cluster is initialised (apply
    itself needs a node: tests/integration/test_bootstrapper_init.py)."""
    st = state(owner)
    st.update(status=status, clusterId=cid, measurementSalt="00" * 32,
              kubernetesVersion="v1.30.0", serviceCidr="10.96.0.0/12",
              kubeconfig="cloister-admin.conf")
    (owner.dir / "cloister-state.json").write_text(json.dumps(st))


def test_workers_are_created_with_the_cluster_id_after_apply(owner):
    assert owner.cloister("create", "-y").returncode == 0
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0 and "run 'cloister apply' first" in r.stderr
    # an init whose answer was lost: the cluster ID is known, the cluster may not exist
    initialised(owner, status="pending")
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0 and "run 'cloister apply' first" in r.stderr
    assert "plan" not in owner.commands()[5:]
    initialised(owner)
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode == 0, r.stderr
    assert owner.commands()[-4:] == ["init", "plan", "apply", "output"]
    tfvars = json.loads((owner.dir / "cloister-terraform" / "terraform.tfvars.json").read_text())
    assert tfvars["cluster_id"] == "cd" * 32
    assert "2 worker node(s) of type n2d-standard-4" in r.stdout
    # The workers' metadata gets the init-secret hash create gave the control plane (the same
    # variable: terraform/*/main.tf), so a worker whose join fails gives its log to the owner.
    assert tfvars["init_secret_hash"].startswith("scrypt$")
    assert "'cloister logs --node ADDR'" in r.stdout, r.stdout


def test_a_failed_workers_phase_never_destroys_the_cluster(owner):
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    r = owner.cloister("create", "--workers", "-y", TF_DOUBLE_FAIL="apply")
    assert r.returncode != 0 and "the control plane is untouched" in r.stderr
    assert "destroy" not in owner.commands()
    assert (owner.dir / "cloister-terraform").is_dir()


def test_the_modules_validation_refuses_a_malformed_cluster_id(owner):
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner, cid="CD" * 32)
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0 and "not initialised yet" in r.stderr


@pytest.mark.parametrize("cloud,fill", [
    ("gcp", {"project": "p", "region": "europe-west4", "zone": "europe-west4-a"}),
    ("azure", {"subscriptionId": "00000000-1111-2222-3333-444444444444",
               "location": "westeurope"}),
    ("aws", {"region": "eu-west-1", "zone": "eu-west-1a"})])
def test_config_generate_fills_the_infrastructure_and_create_names_what_is_left(tmp_path, cloud,
                                                                               fill):
    e = Env(tmp_path)
    r = run("cloister", "config", "generate", cloud, cwd=e.dir)
    assert r.returncode == 0, r.stderr
    assert "fill cloister.json's \"infrastructure\"" in r.stdout
    r = e.cloister("create", "-y")
    first = list(fill)[0]
    assert r.returncode != 0 and f".infrastructure.{first} is not set" in r.stderr
    c = json.loads((e.dir / "cloister.json").read_text())
    c["infrastructure"].update(fill, imageId="an-image")
    (e.dir / "cloister.json").write_text(json.dumps(c))
    r = e.cloister("create", "-y")
    assert r.returncode == 0, r.stderr  # the defaults are confidential types the module takes


def test_terraform_given_by_a_relative_path_is_the_one_that_runs(owner):
    (owner.bin / "terraform").unlink()  # nothing on PATH
    (owner.dir / "tools").mkdir()
    (owner.dir / "tools" / "terraform").symlink_to(DOUBLE)
    r = owner.cloister("create", "-y", "--terraform", "tools/terraform")
    assert r.returncode == 0, r.stderr
    assert f"Using {DOUBLE}" in r.stdout  # resolved once, run by that path
    assert owner.commands() == ["version", "init", "plan", "apply", "output"]


def test_ctrl_c_during_apply_stops_terraform_and_rolls_back(owner):
    """Ctrl-C reaches the terminal's whole process group: terraform stops and saves its state,
    cloister survives it and destroys what was created."""
    import signal
    import subprocess
    import time
    from conftest import binary
    env = dict(owner.env, TF_DOUBLE_SLOW_APPLY="90")
    p = subprocess.Popen([str(binary("cloister")), "create", "-y"], cwd=owner.dir, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        marker = owner.dir / "cloister-terraform" / ".double-apply-running"
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.1)
        assert marker.exists(), "apply never started"
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode != 0
    assert "Interrupted: terraform apply was stopped" in err
    assert "operation canceled" in err  # terraform's own error line
    assert "Rollback succeeded" in err
    assert owner.commands()[-2:] == ["apply", "destroy"]
    assert owner.files() == ["cloister-create-failed.log", "cloister.json"]


@pytest.mark.parametrize("endpoint", ["203.0.113.10:6443", "x; rm -rf /", "-oProxyCommand=x",
                                      "", "a" * 254])
def test_an_output_that_is_not_a_host_is_refused_and_rolled_back(owner, endpoint):
    """The outputs come from Terraform (and so from the cloud): each is type- and
    shape-checked before anything is recorded or used."""
    r = owner.cloister("create", "-y", TF_DOUBLE_ENDPOINT=endpoint)
    assert r.returncode != 0
    assert "Terraform's output 'endpoint'" in r.stderr
    assert "Rollback succeeded" in r.stderr
    assert owner.commands()[-2:] == ["output", "destroy"]
    assert not (owner.dir / "cloister-state.json").exists()


# --- more than one control plane ------------------------------------------------------------------

@pytest.mark.parametrize("count,why", [
    (2, ".infrastructure.controlPlaneCount 2: use 1, 3 or 5 (an odd number: etcd needs a "
        "majority, and 2 survives no more failures than 1)"),
    (4, ".infrastructure.controlPlaneCount 4: use 1, 3 or 5"),
    (7, ".infrastructure.controlPlaneCount: a whole number, 1, 3 or 5"),
    (0, ".infrastructure.controlPlaneCount: a whole number, 1, 3 or 5")])
def test_an_even_or_out_of_range_control_plane_count_is_refused_naming_the_field(owner, count,
                                                                                  why):
    owner.config(controlPlaneCount=count)
    r = owner.cloister("create", "-y")
    assert r.returncode != 0 and why in r.stderr, r.stderr
    assert owner.commands() == [] and "cloister-terraform" not in owner.files()


def verify_authorization(ms, token, name, now):
    """cp_authorization_check, written again here (lib/kdf/cp-authorization.c): the token is
    cpa1.NAME.NOT_AFTER.hex(HKDF(master key, salt, prefix NAME/NOT_AFTER)) for exactly name."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    m = re.fullmatch(r"cpa1\.([a-z0-9-]+)\.([1-9][0-9]*)\.([0-9a-f]{64})", token)
    if not m or m.group(1) != name:
        return False
    tag = HKDF(algorithm=hashes.SHA256(), length=32, salt=base64.b64decode(ms["salt"]),
               info=f"cloister/v1/control-plane-authorization/{name}/{m.group(2)}".encode()
               ).derive(base64.b64decode(ms["key"]))
    return tag.hex() == m.group(3) and int(m.group(2)) >= now


def test_three_control_planes_get_names_and_authorizations_for_exactly_those_names(owner):
    """create makes the first control plane; create --workers, once the cluster ID is known,
    names the two further ones and gives each the owner's authorization for its own name, made
    with the master secret, valid for 24 hours, only in the 0600 variables file."""
    import time
    owner.config(controlPlaneCount=3)
    r = owner.cloister("create", "-y")
    assert r.returncode == 0, r.stderr
    assert "1 control-plane node of type n2d-standard-4" in r.stdout
    assert "2 further control-plane nodes of type n2d-standard-4, once 'cloister apply'" \
        in r.stdout
    tfvars_path = owner.dir / "cloister-terraform" / "terraform.tfvars.json"
    tfvars = json.loads(tfvars_path.read_text())
    assert tfvars["control_plane_count"] == 3
    assert not tfvars.get("control_plane_authorizations")  # no cluster ID yet: nobody joins
    initialised(owner)
    before = time.time()
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode == 0, r.stderr
    prefix = state(owner)["infrastructure"]["name"]
    names = [f"{prefix}-cp-2", f"{prefix}-cp-3"]
    assert f"2 further control-plane node(s) of type n2d-standard-4 will be created in gcp" \
        in r.stdout and " ".join(names) in r.stdout, r.stdout
    tfvars = json.loads(tfvars_path.read_text())
    auths = tfvars["control_plane_authorizations"]
    assert sorted(auths) == names
    assert "Further control planes and workers created: they join cluster" in r.stdout
    ms = json.loads((owner.dir / "cloister-mastersecret.json").read_text())
    for name, token in auths.items():
        assert verify_authorization(ms, token, name, int(before))
        assert int(token.split(".")[2]) <= time.time() + 24 * 3600 + 1
        # bound to its name: no other node's name, and not another cluster's master secret
        assert not any(verify_authorization(ms, token, other, int(before))
                       for other in names + [f"{prefix}-cp-1", f"{prefix}-cp-4"] if other != name)
        other_ms = dict(ms, key=base64.b64encode(b"\x01" * 32).decode())
        assert not verify_authorization(other_ms, token, name, int(before))
    assert tfvars_path.stat().st_mode & 0o777 == 0o600
    # never an argument or an environment variable of terraform
    for line in owner.calls.read_text().splitlines():
        assert "cpa1." not in line
    # running it again renews them (the renewal after expiry, docs/cloud.md)
    time.sleep(1.1)
    assert owner.cloister("create", "--workers", "-y").returncode == 0
    again = json.loads(tfvars_path.read_text())["control_plane_authorizations"]
    assert sorted(again) == names and all(again[n] != auths[n] for n in names)


def test_one_control_plane_gets_no_authorization_and_needs_no_master_secret(owner):
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    (owner.dir / "cloister-mastersecret.json").rename(owner.dir / "elsewhere.json")
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode == 0, r.stderr
    tfvars = json.loads((owner.dir / "cloister-terraform" / "terraform.tfvars.json").read_text())
    assert tfvars["control_plane_authorizations"] == {}
    assert "further control-plane" not in r.stdout


def test_further_control_planes_without_the_master_secret_are_refused_before_terraform(owner):
    owner.config(controlPlaneCount=5)
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    (owner.dir / "cloister-mastersecret.json").rename(owner.dir / "elsewhere.json")
    n = len(owner.commands())
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0
    assert "authorizations are made with the cluster's master secret" in r.stderr, r.stderr
    assert owner.commands()[n:] == []


def test_an_edited_even_control_plane_count_is_refused_at_the_workers_phase(owner):
    owner.config(controlPlaneCount=3)
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    p = owner.dir / "cloister-terraform" / "terraform.tfvars.json"
    tfvars = json.loads(p.read_text())
    p.write_text(json.dumps(dict(tfvars, control_plane_count=4)))
    n = len(owner.commands())
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0 and "control_plane_count is not 1, 3 or 5" in r.stderr, r.stderr
    assert owner.commands()[n:] == []


def test_the_double_evaluates_the_modules_authorization_validation(owner):
    """A token for another node's name is refused at plan by the module's own validation
    (evaluated by the double as a real plan would)."""
    owner.config(controlPlaneCount=3)
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    assert owner.cloister("create", "--workers", "-y").returncode == 0
    p = owner.dir / "cloister-terraform" / "terraform.tfvars.json"
    tfvars = json.loads(p.read_text())
    a, b = sorted(tfvars["control_plane_authorizations"])
    tfvars["control_plane_authorizations"] = {a: tfvars["control_plane_authorizations"][b],
                                              b: tfvars["control_plane_authorizations"][b]}
    p.write_text(json.dumps(tfvars))
    r = run(str(DOUBLE), "-chdir=cloister-terraform", "plan", "-input=false", "-no-color",
            "-out=tfplan", cwd=owner.dir, env=owner.env)
    assert r.returncode != 0
    assert "an authorization for exactly that name" in r.stderr, r.stderr


def test_a_recorded_name_that_makes_no_valid_node_name_is_refused(owner):
    """The names come from the state file's recorded module output: one too long for a member
    name (a DNS-1123 label) is refused before an authorization is made or Terraform runs."""
    owner.config(controlPlaneCount=3)
    assert owner.cloister("create", "-y").returncode == 0
    initialised(owner)
    st = state(owner)
    st["infrastructure"]["name"] = "a" * 60
    (owner.dir / "cloister-state.json").write_text(json.dumps(st))
    n = len(owner.commands())
    r = owner.cloister("create", "--workers", "-y")
    assert r.returncode != 0 and "gives no valid node name" in r.stderr, r.stderr
    assert owner.commands()[n:] == []
