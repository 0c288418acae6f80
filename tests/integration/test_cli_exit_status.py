# SPDX-License-Identifier: Apache-2.0
"""Exit status 2 for a usage error (an unknown command or option, a missing argument, a malformed
value), 1 for a failure, 0 for success, in every binary and every command. The commands are found
as the CLI reference finds them (scripts/gen-cli-reference: every --help, recursively), so a verb
added later is covered without editing this file."""
import importlib.machinery
import importlib.util
import json
import socket
import subprocess

import pytest

from conftest import BUILD, ROOT, binary, run


def load_generator():
    loader = importlib.machinery.SourceFileLoader("gen_cli_reference",
                                                  str(ROOT / "scripts" / "gen-cli-reference"))
    spec = importlib.util.spec_from_loader("gen_cli_reference", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def leaf_commands():
    """Every command that takes options itself: ("cloister", "attestation", "verify"), ..."""
    gen = load_generator()
    commands = gen.crawl(BUILD / "bin")
    return [c.path for c in commands if not c.children and c.status == 0]


LEAVES = leaf_commands()


def test_the_crawl_finds_the_commands_of_every_binary():
    names = {" ".join(p) for p in LEAVES}
    for expected in ("cloister verify", "cloister attestation verify-report", "cloister mini up",
                     "cloister-measure eventlog replay", "cloister-measure snp-launch",
                     "cloister-disk-mapper format", "cloister-bootstrapper",
                     "cloister-join-service"):
        assert expected in names, sorted(names)


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_an_unknown_option_is_a_usage_error_exit_2(path, tmp_path):
    """Run in an empty directory: nothing there for a command to act on by mistake."""
    r = subprocess.run([str(binary(path[0])), *path[1:], "--no-such-option"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (path, r.returncode, r.stdout, r.stderr)
    assert "no-such-option" in r.stderr, (path, r.stderr)
    assert "Traceback" not in r.stderr
    if path[0] == "cloister":
        # At most one error line, and the last line says where the options are.
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) <= 1 and "--help" in r.stderr.splitlines()[-1], r.stderr
    assert list(tmp_path.iterdir()) == [], "a usage error created files"


def test_an_unknown_command_is_a_usage_error_exit_2():
    for argv in (["cloister", "frobnicate"], ["cloister", "attestation", "frobnicate"],
                 ["cloister", "config", "frobnicate"], ["cloister", "mini", "frobnicate"],
                 ["cloister-measure", "frobnicate"], ["cloister-measure", "eventlog", "frob"],
                 ["cloister-disk-mapper", "frobnicate"], ["cloister"], ["cloister-measure"],
                 ["cloister-disk-mapper"]):
        r = run(*argv)
        assert r.returncode == 2, (argv, r.returncode, r.stderr)


ZERO = "00" * 32

# A required argument left out, or an option given without its value: (argv, what the one error
# line names).
MISSING = [
    (["cloister", "apply"], "--endpoint"),
    (["cloister", "verify"], "--node"),
    (["cloister", "verify", "--node"], "node"),
    (["cloister", "status"], "--policy"),
    (["cloister", "recover"], "--policy"),
    (["cloister", "attestation", "issue"], "--binding"),
    (["cloister", "attestation", "show"], "FILE"),
    (["cloister", "attestation", "policy"], "EVIDENCE"),
    (["cloister", "attestation", "verify"], ""),
    (["cloister", "attestation", "verify-report"], "--report"),
    (["cloister", "attestation", "verify-report", "--type", "tdx"], "--quote"),
    (["cloister", "attestation", "verify-report", "--type"], "type"),
    (["cloister", "config", "generate"], "provider"),
    (["cloister", "config", "fetch-measurements"], "--url"),
    (["cloister", "control-plane", "authorize"], "NAME"),
    (["cloister", "master-secret"], "too few arguments"),
    (["cloister", "master-secret", "check", "--file"], "file"),
    (["cloister", "init-secret"], "too few arguments"),
    (["cloister", "mini"], "too few arguments"),
    (["cloister", "-C"], "-C needs a directory"),
    (["cloister", "-o"], "option"),
    (["cloister-measure", "authenticode"], "too few arguments"),
    (["cloister-measure", "eventlog", "replay"], "too few arguments"),
    (["cloister-measure", "uki"], "too few arguments"),
    (["cloister-measure", "image"], "too few arguments"),
    (["cloister-measure", "sign"], "too few arguments"),
    (["cloister-measure", "verify"], "too few arguments"),
    (["cloister-measure", "snp-launch"], "too few arguments"),
    (["cloister-measure", "snp-host-data"], "too few arguments"),
    (["cloister-measure", "authenticode", "--hash"], "hash"),
    (["cloister-disk-mapper", "format", "--device", "DISK"], "--key-file"),
    (["cloister-disk-mapper", "open", "--device", "DISK"], "--key-file"),
    (["cloister-disk-mapper", "rekey", "--device", "DISK", "--key-file", "/k"],
     "--new-key-file"),
    (["cloister-disk-mapper", "format", "--device", "DISK", "--key-file"], "key-file"),
    (["cloister-bootstrapper"], "--state-disk"),
    (["cloister-join-service"], "--state-dir"),
]


@pytest.mark.parametrize("argv,names", MISSING, ids=[" ".join(a) for a, _ in MISSING])
def test_a_missing_argument_is_a_usage_error_exit_2(argv, names, tmp_path):
    """DISK: a blank image file, so that the disk mapper gets as far as its own options."""
    cwd, disk = tmp_path / "cwd", tmp_path / "disk.img"
    cwd.mkdir()
    disk.write_bytes(bytes(1 << 20))
    argv = [str(disk) if a == "DISK" else a for a in argv]
    r = subprocess.run([str(binary(argv[0])), *argv[1:]], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, (argv, r.returncode, r.stdout, r.stderr)
    assert names in r.stderr, (argv, r.stderr)
    assert list(cwd.iterdir()) == [] and disk.read_bytes() == bytes(1 << 20)


MALFORMED = [
    ["cloister", "verify", "--node", "127.0.0.1:99999", "--policy", "p.json"],
    ["cloister", "verify", "--endpoint", "ftp://h", "--policy", "p.json"],
    ["cloister", "verify", "--node", "h", "--policy", "p.json", "--timeout", "0"],
    ["cloister", "verify", "--node", "h", "--policy", "p.json", "-o", "yaml"],
    ["cloister", "-o", "yaml", "version"],
    ["cloister", "version", "extra"],
    ["cloister", "attestation", "verify", "--evidence", "e", "--policy", "p", "--at", "yesterday"],
    ["cloister", "attestation", "issue", "--binding", "xyz"],
    ["cloister", "attestation", "verify-report", "--type", "sev"],
    ["cloister", "control-plane", "authorize", "Not_A_Name"],
    ["cloister", "control-plane", "authorize", "n1", "--valid-for", "0"],
    ["cloister", "config", "generate", "openstack"],
    ["cloister", "config", "fetch-measurements", "--url", "/m.json", "--pubkey", "k"],
    ["cloister", "recover", "--node", "h:0", "--policy", "p"],
    ["cloister", "status", "--policy", "p", "--cluster-id", "12"],
    ["cloister", "mini", "down", "--now"],
    ["cloister-measure", "eventlog", "replay", "LOG", "--bank", "md5"],
    ["cloister-measure", "snp-launch", "--firmware", "f", "--vcpus", "0"],
    ["cloister-measure", "snp-host-data", "12"],
    ["cloister-measure", "authenticode", "f.efi", "--hash", "md5"],
    ["cloister-disk-mapper", "open", "--device", "d", "--key-file", "k", "--mount", "rel"],
    ["cloister-bootstrapper", "--listen", "nowhere"],
    ["cloister-join-service", "--state-dir", "/s", "--token-ttl", "0"],
]


@pytest.mark.parametrize("argv", MALFORMED, ids=[" ".join(a) for a in MALFORMED])
def test_a_malformed_value_is_a_usage_error_exit_2_with_one_line(argv, tmp_path):
    r = subprocess.run([str(binary(argv[0])), *argv[1:]], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, (argv, r.returncode, r.stdout, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, (argv, r.stderr)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_failure_is_exit_1_not_2(tmp_path):
    """The command line is right; what it names fails."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({
        "version": 1, "variant": "qemu-vtpm",
        "measurements": {i: {"expected": ZERO} for i in ("4", "9", "11")},
        "akTrust": {"mode": "insecure-any"}}))
    (tmp_path / "malformed.json").write_text("{")
    (tmp_path / "disk.img").write_bytes(bytes(1 << 20))
    failures = [
        ["cloister", "verify", "--node", f"127.0.0.1:{closed_port()}", "--policy", policy,
         "--timeout", "2"],
        ["cloister", "master-secret", "check", "--file", tmp_path / "malformed.json"],
        ["cloister", "verify", "--node", "127.0.0.1:1", "--policy", tmp_path / "none.json"],
        ["cloister-measure", "eventlog", "replay", tmp_path / "none.bin"],
        ["cloister-disk-mapper", "check", "--device", tmp_path / "disk.img"],
    ]
    for argv in failures:
        r = run(*argv)
        assert r.returncode == 1, (argv, r.returncode, r.stderr)
