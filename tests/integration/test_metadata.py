# SPDX-License-Identifier: Apache-2.0
"""Node metadata from each cloud's instance metadata service, against a loopback server that
serves responses of the recorded shapes and refuses requests without the headers the real
services demand (Metadata-Flavor: Google; Metadata: true; the IMDSv2 token)."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import binary, run

HASH = ("scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$"
        "1cbc81b236c9417628f7cc2a5c3190aea3650258a5b5ba1a66509ce2d1a6d871")
ATTRS = {"cloister-role": "control-plane", "cloister-endpoint": "10.0.0.2:6443",
         "cloister-peers": "10.0.0.3:9000,[fd00::4]:9000", "cloister-init-secret-hash": HASH}
EXPECTED = {"name": "node-1", "role": "control-plane", "endpoint": "10.0.0.2:6443",
            "peers": ["10.0.0.3:9000", "[fd00::4]:9000"], "initSecretHash": HASH}
TOKEN = "AQAEAFake-imdsv2-token=="


class Service(BaseHTTPRequestHandler):
    attrs = dict(ATTRS)
    azure_compute = {}
    fail_first = 0
    seen = []

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        type(self).seen.append(("PUT", self.path))
        if self.path == "/latest/api/token" and \
                self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.send(200, TOKEN, "text/plain")
        self.send(400, "bad token request", "text/plain")

    def do_GET(self):
        cls = type(self)
        cls.seen.append(("GET", self.path))
        if cls.fail_first > 0:
            cls.fail_first -= 1
            return self.send(503, "busy", "text/plain")
        p = self.path
        if p == "/computeMetadata/v1/instance/?recursive=true":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.send(403, "Missing Metadata-Flavor:Google header", "text/html")
            return self.send(200, json.dumps({"id": 123, "name": "node-1", "zone": "z",
                                              "attributes": cls.attrs}))
        if p == "/metadata/instance?api-version=2021-02-01":
            if self.headers.get("Metadata") != "true":
                return self.send(400, json.dumps({"error": "Bad request. Required metadata "
                                                  "header not specified"}))
            tags = [{"name": k, "value": v} for k, v in cls.attrs.items()]
            compute = {"name": "node-1", "location": "x", "tagsList": tags} | cls.azure_compute
            return self.send(200, json.dumps({"compute": compute, "network": {}}))
        if p.startswith("/latest/meta-data/"):
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                return self.send(401, "", "text/plain")
            rest = p[len("/latest/meta-data/"):]
            if rest == "instance-id":
                return self.send(200, "node-1", "text/plain")
            if rest.startswith("tags/instance/") and rest[14:] in cls.attrs:
                return self.send(200, cls.attrs[rest[14:]], "text/plain")
            return self.send(404, "Not Found", "text/plain")
        self.send(404, "not found", "text/plain")


@pytest.fixture
def service():
    Service.attrs, Service.fail_first, Service.seen = dict(ATTRS), 0, []
    Service.azure_compute = {}
    srv = HTTPServer(("127.0.0.1", 0), Service)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    Service.azure_compute = {}  # other modules serve with this class too


def metadata(provider, url, *extra):
    return run("cloister-bootstrapper", "--metadata", provider, "--metadata-url", url,
               "--print-metadata", *extra)


@pytest.mark.parametrize("provider", ["gcp", "azure", "aws"])
def test_cloud_metadata_is_read_with_the_services_own_headers(service, provider):
    r = metadata(provider, service[1])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == EXPECTED


def test_aws_uses_an_imdsv2_token_first(service):
    assert metadata("aws", service[1]).returncode == 0
    assert Service.seen[0] == ("PUT", "/latest/api/token")


def test_local_metadata_file(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({**EXPECTED}))
    r = run("cloister-bootstrapper", "--metadata", f"local:{f}", "--print-metadata")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == EXPECTED


def test_service_that_is_busy_at_first_is_retried(service):
    Service.fail_first = 2
    r = metadata("gcp", service[1])
    assert r.returncode == 0, r.stderr
    assert len([s for s in Service.seen if s[0] == "GET"]) == 3


@pytest.mark.parametrize("attr,value,why", [
    ("cloister-role", "admin", "role is missing or not 'control-plane' or 'worker'"),
    ("cloister-endpoint", "10.0.0.2", "endpoint is not host:port"),
    ("cloister-endpoint", "10.0.0.2:99999", "endpoint is not host:port"),
    ("cloister-peers", "a:1,b c:2", "peer 1 is not host:port"),
    ("cloister-peers", ",".join(f"p{i}:1" for i in range(17)), "more than 16 peers"),
    ("cloister-init-secret-hash", "md5$abc", "not 'scrypt$...'"),
    ("cloister-init-secret-hash", HASH.replace("$15$", "$10$"), "out of bounds"),
])
def test_malformed_metadata_is_refused_with_the_field(service, attr, value, why):
    Service.attrs[attr] = value
    r = metadata("azure", service[1])
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_aws_without_instance_tags_says_how_to_enable_them(service):
    Service.attrs = {}
    r = metadata("aws", service[1])
    assert r.returncode == 1 and "instance tags in metadata enabled" in r.stderr


def test_unreachable_service_fails_after_the_timeout(tmp_path):
    r = metadata("gcp", "http://127.0.0.1:1", "--metadata-timeout", "1")
    assert r.returncode == 1 and "Cannot read the node's gcp metadata" in r.stderr


def test_unknown_provider_and_missing_local_file_are_one_line_errors(tmp_path):
    r = run("cloister-bootstrapper", "--metadata", "openstack", "--print-metadata")
    assert r.returncode == 1 and "use gcp, azure, aws, qemu or local:FILE" in r.stderr
    r = run("cloister-bootstrapper", "--metadata", f"local:{tmp_path}/none.json",
            "--print-metadata")
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_bootstrapper_refuses_to_start_without_an_init_secret_hash(tmp_path):
    """A new state disk (first-boot key) and no init-secret hash: anyone could init the node."""
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"name": "n", "role": "control-plane"}))
    disk, key = tmp_path / "state.img", tmp_path / "first.key"
    with open(disk, "wb") as d:
        d.truncate(32 * 1024 * 1024)
    key.write_bytes(os.urandom(32))
    assert run("cloister-disk-mapper", "format", disk, "--key-file", key).returncode == 0
    r = run("cloister-bootstrapper", "--metadata", f"local:{f}", "--state-disk", disk,
            "--first-boot-key", key, "--state-dir", str(tmp_path))
    assert r.returncode == 1 and "carries no init-secret hash" in r.stderr, r.stderr


def test_bootstrapper_refuses_a_state_disk_it_cannot_read_before_anything_else(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"name": "n", "role": "control-plane"}))
    r = run("cloister-bootstrapper", "--metadata", f"local:{f}", "--state-disk", "x",
            "--first-boot-key", "y", "--state-dir", str(tmp_path))
    assert r.returncode == 1 and "The state disk is refused" in r.stderr, r.stderr


# --- qemu: the local form from QEMU's fw_cfg (a sysfs file in the guest) ---------------------

import subprocess  # noqa: E402
import time  # noqa: E402

FW_CFG = "/sys/firmware/qemu_fw_cfg/by_name/opt/cloister/metadata/raw"


@pytest.mark.parametrize("form", ["path", "url"])
def test_qemu_metadata_is_the_local_form_read_from_the_fw_cfg_file(tmp_path, form):
    f = tmp_path / "raw"
    f.write_text(json.dumps(EXPECTED))
    r = metadata("qemu", str(f) if form == "path" else f"file://{f}")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == EXPECTED


def test_qemu_metadata_that_appears_late_is_waited_for(tmp_path):
    """The qemu_fw_cfg driver may load after the bootstrapper starts: an absent file is looked
    for again (backoff from 0.2 s) until --metadata-timeout."""
    f = tmp_path / "raw"
    start = time.monotonic()
    p = subprocess.Popen([str(binary("cloister-bootstrapper")), "--metadata", "qemu",
                          "--metadata-url", str(f), "--metadata-timeout", "20",
                          "--print-metadata"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(0.8)
        assert p.poll() is None, p.communicate()
        (tmp_path / "raw.tmp").write_text(json.dumps(EXPECTED))
        (tmp_path / "raw.tmp").rename(f)
        out, err = p.communicate(timeout=15)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert json.loads(out) == EXPECTED
    # Backoff 0.2, 0.4, 0.8, 1.6 s: found within a few seconds, not at the timeout.
    assert time.monotonic() - start < 5


def test_qemu_metadata_absent_names_the_file_and_the_fw_cfg_option(tmp_path):
    start = time.monotonic()
    r = metadata("qemu", str(tmp_path / "raw"), "--metadata-timeout", "1")
    assert r.returncode == 1
    assert 0.9 < time.monotonic() - start < 5
    assert f"{tmp_path / 'raw'} does not exist" in r.stderr
    assert "-fw_cfg name=opt/cloister/metadata,file=" in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_qemu_default_is_the_fw_cfg_sysfs_file():
    """On this host (no fw_cfg item) the default path is looked for and named in the error."""
    r = run("cloister-bootstrapper", "--metadata", "qemu", "--metadata-timeout", "1",
            "--print-metadata")
    assert r.returncode == 1 and f"{FW_CFG} does not exist" in r.stderr, r.stderr


@pytest.mark.parametrize("doc,why", [
    ({**EXPECTED, "role": "admin"}, "role is missing or not 'control-plane' or 'worker'"),
    ({**EXPECTED, "peers": ["a b:1"]}, "peer 0 is not host:port"),
    ({**EXPECTED, "tags": {}}, "tags"),
    ({**EXPECTED, "initSecretHash": "md5$abc"}, "not 'scrypt$...'"),
])
def test_qemu_metadata_is_host_controlled_and_parsed_strictly(tmp_path, doc, why):
    f = tmp_path / "raw"
    f.write_text(json.dumps(doc))
    r = metadata("qemu", str(f))
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_qemu_metadata_url_must_be_a_file(tmp_path):
    r = metadata("qemu", "http://127.0.0.1:1/metadata", "--metadata-timeout", "1")
    assert r.returncode == 1 and "neither an absolute file path nor a file:/// URL" in r.stderr


def test_an_azure_scale_set_instance_is_named_by_its_computer_name(service):
    """Azure names a scale set's instance SCALESET_INSTANCEID, which is no host name; the node
    takes its computer name (what Kubernetes knows it by). Without one, the instance name."""
    Service.azure_compute = {"name": "cloister-ab12-cp_0",
                             "osProfile": {"adminUsername": "cloister",
                                           "computerName": "cloister-ab12-cp000000"}}
    r = metadata("azure", service[1])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "cloister-ab12-cp000000"
    Service.azure_compute = {"name": "cloister-ab12-cp_0"}
    r = metadata("azure", service[1])
    assert r.returncode == 1 and "node name has a character other than" in r.stderr, r.stderr
