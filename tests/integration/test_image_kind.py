# SPDX-License-Identifier: Apache-2.0
"""The image's kind (image/README.md, "Kubernetes"): a cloud image carries the pinned Kubernetes,
a test image the kubeadm double. image/build writes CLOISTER_IMAGE_KIND into the os-release (so
into the UKI's .osrel, covered by PCR 11); cloister-measure puts it into the signed measurements
file as imageKind; cloister-measure verify and cloister config fetch-measurements show it, and
the configuration records it. Real UKIs (Debian's stub and kernel) with os-releases as the build
writes them."""
import json

import pytest

from conftest import ROOT, run
from test_config import UKI_CREATED, Published, make_test_uki

OSREL = 'ID=debian\nIMAGE_ID=cloister-node\nIMAGE_VERSION="v9.9"\n'
TEST_NOTE = "(TEST image: kubeadm double, not for production)"


def measure(uki, *extra):
    return run("cloister-measure", "uki", uki, "-o", "json", "--measurements-version", "5",
               "--created", UKI_CREATED, *extra)


@pytest.mark.parametrize("osrel,kind", [
    ('VARIANT_ID=kubeadm-double\nCLOISTER_IMAGE_KIND=test\n', "test"),
    ('VARIANT_ID=kubernetes\nCLOISTER_IMAGE_KIND="cloud"\n', "cloud"),
    # an image built before the field: the double's variant still says test
    ('VARIANT_ID=kubeadm-double\n', "test"),
    # nothing says: the file says nothing (not "cloud")
    ('', None),
])
def test_measure_takes_the_image_kind_from_the_ukis_os_release(tmp_path, osrel, kind):
    uki = make_test_uki(tmp_path, OSREL + osrel)
    r = measure(uki)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc.get("imageKind") == kind
    assert doc["imageVersion"] == "v9.9"


def test_measure_takes_the_kubernetes_release_from_the_ukis_os_release_and_refuses_a_malformed_one(
        tmp_path):
    """image/build writes KUBERNETES_VERSION (the pinned release) into the os-release: the
    signed file names it (kubernetesVersion), what 'upgrade apply --kubernetes-version' checks."""
    pinned = json.loads((ROOT / "image" / "kubernetes.json").read_text())["version"]
    def uki(name, osrel):
        (tmp_path / name).mkdir()
        return make_test_uki(tmp_path / name, osrel)

    r = measure(uki("pinned", OSREL + f'KUBERNETES_VERSION="{pinned}"\n'))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kubernetesVersion"] == pinned
    r = measure(uki("none", OSREL))
    assert r.returncode == 0 and "kubernetesVersion" not in json.loads(r.stdout), r.stderr
    r = measure(uki("bad", OSREL + "KUBERNETES_VERSION=1.35\n"))
    assert r.returncode == 1
    assert "KUBERNETES_VERSION that is not a release v1.MINOR.PATCH" in r.stderr, r.stderr


def test_measure_refuses_an_unknown_image_kind_and_the_option_decides(tmp_path):
    uki = make_test_uki(tmp_path, OSREL + "CLOISTER_IMAGE_KIND=production\n")
    r = measure(uki)
    assert r.returncode == 1
    assert "CLOISTER_IMAGE_KIND=production: neither cloud nor test; give --image-kind" in r.stderr
    r = measure(uki, "--image-kind", "test")
    assert r.returncode == 0 and json.loads(r.stdout)["imageKind"] == "test", r.stderr
    r = measure(uki, "--image-kind", "prod")
    assert r.returncode == 2 and "--image-kind 'prod': cloud or test." in r.stderr  # usage


@pytest.fixture
def test_image_measurements(tmp_path):
    uki = make_test_uki(tmp_path, OSREL + "VARIANT_ID=kubeadm-double\nCLOISTER_IMAGE_KIND=test\n")
    r = measure(uki)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "m.json"
    path.write_text(r.stdout)
    return path


def test_measure_verify_shows_a_test_image_as_such(tmp_path, test_image_measurements):
    p = Published(tmp_path, test_image_measurements)
    sig = p.dir / "measurements.json.sig"
    r = run("cloister-measure", "verify", "--pubkey", p.pub, p.file, sig)
    assert r.returncode == 0, r.stderr
    assert f"image 'uki.efi' v9.9 {TEST_NOTE}, measurements version 5" in r.stdout, r.stdout
    r = run("cloister-measure", "verify", "--pubkey", p.pub, p.file, sig, "-o", "json")
    assert json.loads(r.stdout)["measurements"]["imageKind"] == "test", r.stdout


def test_fetch_measurements_of_a_test_image_warns_and_records_its_kind(tmp_path,
                                                                       test_image_measurements):
    p = Published(tmp_path, test_image_measurements)
    r = p.fetch("--pubkey", p.pub)
    assert r.returncode == 0, r.stderr
    assert f"image 'uki.efi' v9.9 {TEST_NOTE}" in r.stdout, r.stdout
    assert "TEST IMAGE:" in r.stderr and "Not for production" in r.stderr, r.stderr
    cfg = json.loads(p.config.read_text())
    assert cfg["measurementsSource"]["imageKind"] == "test"
    # The next file says where it came from: the recorded one is a test image.
    newer = p.publish("newer.json", p.doc(measurementsVersion=6, imageKind="cloud",
                                          imageVersion="v10"))
    r = p.fetch("--pubkey", p.pub, url=newer)
    assert r.returncode == 0, r.stderr
    assert "image 'uki.efi' v10 (cloud image)" in r.stdout
    assert f"recorded: image 'uki.efi' v9.9 {TEST_NOTE}" in r.stdout, r.stdout
    assert "TEST IMAGE:" not in r.stderr
    assert json.loads(p.config.read_text())["measurementsSource"]["imageKind"] == "cloud"


def test_a_configuration_whose_recorded_image_kind_is_unknown_is_refused(tmp_path,
                                                                         test_image_measurements):
    p = Published(tmp_path, test_image_measurements)
    assert p.fetch("--pubkey", p.pub).returncode == 0
    cfg = json.loads(p.config.read_text())
    cfg["measurementsSource"]["imageKind"] = "production"
    p.config.write_text(json.dumps(cfg))
    r = p.fetch("--pubkey", p.pub)
    assert r.returncode != 0
    assert ".measurementsSource.imageKind: neither cloud nor test" in r.stderr, r.stderr


def test_fetch_records_the_kubernetes_release_and_a_malformed_record_is_refused(
        tmp_path, test_image_measurements):
    p = Published(tmp_path, test_image_measurements)
    newer = p.publish("k8s.json", p.doc(measurementsVersion=6, kubernetesVersion="v1.35.1"))
    r = p.fetch("--pubkey", p.pub, url=newer)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(p.config.read_text())
    assert cfg["measurementsSource"]["kubernetesVersion"] == "v1.35.1"
    cfg["measurementsSource"]["kubernetesVersion"] = "1.35"
    p.config.write_text(json.dumps(cfg))
    r = p.fetch("--pubkey", p.pub)
    assert r.returncode != 0
    assert ".measurementsSource.kubernetesVersion: not v1.MINOR.PATCH" in r.stderr, r.stderr
