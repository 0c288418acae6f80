# SPDX-License-Identifier: Apache-2.0
"""The TEST image's command channel (image/README.md, "The test image's command channel"): a
root command runner on a virtio-serial port the VM's host holds. Only a test image may carry it
(in a cloud image it would be a root shell for the provider); its agent runs argument vectors,
never a shell, and answers malformed requests with a reason."""
import importlib.machinery
import importlib.util

import pytest

from conftest import ROOT

AGENT = "usr/lib/cloister/test-agent"
UNIT = "usr/lib/systemd/system/cloister-test-agent.service"
WANTS = "etc/systemd/system/multi-user.target.wants/cloister-test-agent.service"


def load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return load("image_build", ROOT / "image" / "build")


@pytest.fixture(scope="module")
def agent():
    return load("test_agent", ROOT / "image" / "rootfs-test" / AGENT)


def test_a_cloud_image_never_gets_the_command_channel(build, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    assert build.install_test_channel(rootfs, "cloud") is False
    assert list(rootfs.iterdir()) == []


def test_a_test_image_gets_the_agent_and_its_unit_enabled(build, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    assert build.install_test_channel(rootfs, "test") is True
    assert (rootfs / AGENT).stat().st_mode & 0o111
    assert "org.cloister.test" in (rootfs / UNIT).read_text()
    assert (rootfs / WANTS).is_symlink()


def test_the_agent_runs_an_argument_vector_without_a_shell(agent):
    out = agent.answer({"argv": ["echo", "$HOME;", "`id`"]})
    assert out == {"rc": 0, "stdout": "$HOME; `id`\n", "stderr": ""}
    out = agent.answer({"argv": ["cat"], "stdin": "through stdin"})
    assert out["rc"] == 0 and out["stdout"] == "through stdin"


@pytest.mark.parametrize("req", [{}, {"argv": []}, {"argv": "echo hi"}, {"argv": ["echo", 1]}])
def test_the_agent_refuses_anything_but_a_list_of_strings(agent, req):
    out = agent.answer(req)
    assert out["rc"] == 127 and "argv: a non-empty list of strings" in out["stderr"]


def test_the_agent_says_why_a_command_cannot_run(agent):
    out = agent.answer({"argv": ["/nonexistent/cloister-no-such-program"]})
    assert out["rc"] == 127 and "No such file" in out["stderr"]
    out = agent.answer({"argv": ["sleep", "5"], "timeout": 0.2})
    assert out["rc"] == 127 and "timed out" in out["stderr"]
