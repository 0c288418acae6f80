# SPDX-License-Identifier: Apache-2.0
"""A joining node checks what a join service answers, not only who answers: a ticket or rejoin
answer that names another cluster, carries keys that do not derive this cluster's ID, another
master secret, an unusable cluster policy, or admits something other than what the node asked
for, is refused before the disk is touched or PCR 15 extended. The join service that lies is
the fault-injection build (tests only), told which member of what it seals to change
(CLOISTER_FAULT=tamper:KEY=VALUE); the node is the real bootstrapper."""
import base64
import os
import signal
import subprocess

import pytest

from conftest import BUILD
from test_join import KUBEADM, cluster, read_pcr15, reboot, restart  # noqa: F401 (fixture)

OTHER_CLUSTER = "ab" * 32
OTHER_32 = base64.b64encode(b"\x11" * 32).decode()


def lying_join_service(cp, tamper):
    """cp's join service replaced by the fault build, which alters one member of every answer."""
    cp.proc.send_signal(signal.SIGTERM)
    cp.proc.wait(timeout=20)
    log = cp.base / "js-tamper.log"
    proc = subprocess.Popen([str(BUILD / "tests" / "cloister-join-service-fault"), "--tcti",
                             cp.tpm.tcti, "--listen", f"127.0.0.1:{cp.port}", "--state-dir",
                             str(cp.state), "--kubeadm", str(KUBEADM)],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, CLOISTER_FAULT=f"tamper:{tamper}"))
    for _ in range(300):
        if "serving joins on" in log.read_text():
            return proc
        assert proc.poll() is None, log.read_text()
        subprocess.run(["sleep", "0.1"])
    pytest.fail(log.read_text())


def refused(node, message):
    assert node.proc.wait(timeout=90) != 0, node.log.read_text()
    log = node.log.read_text()
    assert message in log, log
    assert read_pcr15(node.tpm.tcti) == "00" * 32  # PCR 15 never extended
    assert not (node.state / "node-state.json").exists()


CASES = {
    "clusterId": ("worker", f"clusterId={OTHER_CLUSTER}",
                  f"The join ticket is refused: the ticket names another cluster ({OTHER_CLUSTER})"),
    "measurementSalt": ("worker", f"measurementSalt={OTHER_32}",
                        "the ticket's measurement secret does not derive the cluster ID"),
    "admitted-role": ("worker", "admitted.role=control-plane",
                      "The request was altered on its way."),
    "admitted-disk": ("worker", "admitted.diskUuid=7a1e4c2b-9d3f-4e8a-b6c5-1f2e3d4c5b6a",
                      "The request was altered on its way."),
    "masterSecret": ("control-plane", f"masterSecret={OTHER_32}",
                     "the ticket's master secret is not this cluster's"),
    "clusterPolicy": ("control-plane", "clusterPolicy={}", "ticket: clusterPolicy"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_joining_node_refuses_a_ticket_the_join_service_altered(cluster, case):
    role, tamper, message = CASES[case]
    cp, n = cluster.node("cp-1"), cluster.node("node-2")
    policy = cluster.policy([cp, n])
    cluster.init(cp, policy)
    js = lying_join_service(cp, tamper)
    try:
        cluster.join(n, policy, role=role)
        refused(n, "The join ticket is refused")
        refused(n, message)
    finally:
        js.terminate()
        js.wait(timeout=20)


def test_rebooted_member_refuses_a_rejoin_answer_naming_another_cluster(cluster):
    cp, w = cluster.node("cp-1"), cluster.node("worker-1")
    policy = cluster.policy([cp, w])
    cluster.init(cp, policy)
    cluster.join(w, policy)
    w.wait_for("serving node state")
    reboot(w)
    js = lying_join_service(cp, f"clusterId={OTHER_CLUSTER}")
    try:
        restart(w, cluster, policy)
        assert w.proc.wait(timeout=90) != 0, w.log.read_text()
        assert "The rejoin answer names another cluster." in w.log.read_text()
        assert read_pcr15(w.tpm.tcti) == "00" * 32
    finally:
        js.terminate()
        js.wait(timeout=20)


def test_the_product_join_service_has_no_tamper_hook():
    """Only the fault build (tests/) can lie: the installed join service has no such code."""
    product = subprocess.run(["nm", str(BUILD / "bin" / "cloister-join-service")],
                             capture_output=True, text=True, check=True).stdout
    fault = subprocess.run(["nm", str(BUILD / "tests" / "cloister-join-service-fault")],
                           capture_output=True, text=True, check=True).stdout
    assert "fault_tamper" in fault and "fault_tamper" not in product
    assert "CLOISTER_FAULT" not in (BUILD / "bin" / "cloister-join-service").read_bytes().decode(
        "latin-1")
