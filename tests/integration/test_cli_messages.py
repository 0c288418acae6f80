# SPDX-License-Identifier: Apache-2.0
"""What a new user meets when something is off (issue 20's bug list): endpoints checked before
any connection, network failures in the project's words and printed once, a failed first apply
that leaves nothing behind, a mistyped TCTI named as such, event-log banks named as they are."""
import json
import socket
from pathlib import Path

import pytest

from conftest import TESTDATA, run

ZERO = "00" * 32
LIBCURL_WORDS = ("Couldn't connect", "Failed to connect", "libcurl", "URL using bad",
                 "not supported or disabled")


@pytest.fixture(scope="module")
def owner(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-messages")
    (d / "policy.json").write_text(json.dumps({
        "version": 1, "variant": "qemu-vtpm",
        "measurements": {i: {"expected": ZERO} for i in ("4", "9", "11")},
        "akTrust": {"mode": "insecure-any"}}))
    assert run("cloister", "master-secret", "generate", "--file", d / "ms.json").returncode == 0
    assert run("cloister", "init-secret", "generate", "--file", d / "init").returncode == 0
    return d


@pytest.fixture
def listener():
    """A port that counts connections: proof that a refused argument never connected."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.settimeout(0.2)
    yield s
    s.close()


def accepted(s):
    try:
        s.accept()[0].close()
        return True
    except OSError:
        return False


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def errors(r):
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


def apply_args(d, state, endpoint):
    return ["apply", "--endpoint", endpoint, "--policy", d / "policy.json", "--master-secret",
            d / "ms.json", "--init-secret-file", d / "init", "--state-file", state,
            "--kubeconfig", d / "admin.conf", "--timeout", "2"]


@pytest.mark.parametrize("args, why", [
    (["--node", "127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
    (["--node", "127.0.0.1:0"], "the port must be a number from 1 to 65535"),
    (["--node", "127.0.0.1:9x"], "the port must be a number from 1 to 65535"),
    (["--node", "bad_host"], "not HOST[:PORT]"),
    (["--node", "::1"], "not HOST[:PORT]"),
    (["--node", "[::1"], "not HOST[:PORT]"),
    (["--node", "10.0.0.1/v1/node"], "no path, query, user or second scheme"),
    (["--endpoint", "https://https://h"], "no path, query, user or second scheme"),
    (["--endpoint", "h:80/x"], "no path, query, user or second scheme"),
    (["--endpoint", "ftp://127.0.0.1:9000"], "speak only https"),
    (["--endpoint", "http://127.0.0.1:9000"], "speak only https"),
])
def test_verify_refuses_a_malformed_endpoint_before_any_connection(owner, args, why):
    r = run("cloister", "verify", *args, "--policy", owner / "policy.json", "--timeout", "2")
    assert r.returncode == 2, r.stderr  # a usage error
    (line,) = errors(r)
    assert why in line and args[1] in line, line
    assert not any(w in r.stderr for w in LIBCURL_WORDS), r.stderr


def test_apply_with_another_scheme_is_refused_before_any_connection_and_writes_no_state(
        owner, tmp_path, listener):
    port = listener.getsockname()[1]
    state = tmp_path / "state.json"
    r = run("cloister", *apply_args(owner, state, f"ftp://127.0.0.1:{port}"))
    assert r.returncode == 2  # a usage error
    (line,) = errors(r)
    assert "speak only https" in line and "https://HOST[:PORT]" in line, line
    assert not state.exists() and not accepted(listener)


def test_connection_refused_is_one_line_in_the_projects_words_and_not_repeated(owner):
    port = closed_port()
    r = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy",
            owner / "policy.json", "--timeout", "2")
    assert r.returncode == 1
    (line,) = errors(r)
    assert f"https://127.0.0.1:{port}/v1/node: the connection was refused" in line, line
    assert "check the address and port" in line, line
    assert not any(w in r.stderr + r.stdout for w in LIBCURL_WORDS), r.stderr
    # The verdict line on stdout does not print the cause a second time.
    assert r.stdout.strip() == f"Verification FAILED: https://127.0.0.1:{port} was not attested"


def test_library_text_is_kept_for_verbose_runs(owner):
    port = closed_port()
    r = run("cloister", "-v", "verify", "--node", f"127.0.0.1:{port}", "--policy",
            owner / "policy.json", "--timeout", "2")
    assert r.returncode == 1 and "libcurl:" in r.stderr, r.stderr
    assert len(errors(r)) == 1


def test_a_node_that_does_not_answer_is_a_timeout_with_the_next_step(owner, listener):
    port = listener.getsockname()[1]  # accepts (backlog) and never speaks
    r = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy",
            owner / "policy.json", "--timeout", "1")
    assert r.returncode == 1
    (line,) = errors(r)
    assert "no answer within 1 s" in line and "--timeout" in line, line


def test_failed_first_apply_writes_no_state_so_the_corrected_endpoint_proceeds(owner, tmp_path):
    state = tmp_path / "cloister-state.json"
    wrong, right = closed_port(), closed_port()
    r = run("cloister", *apply_args(owner, state, f"https://127.0.0.1:{wrong}"))
    assert r.returncode == 1
    (line,) = errors(r)
    assert "nothing was sent to it" in line and f"{state} not written" in line, line
    assert not state.exists()
    # The corrected endpoint is not refused because of the first attempt: it gets as far as
    # the network (closed here too) and fails for that reason alone.
    r = run("cloister", *apply_args(owner, state, f"127.0.0.1:{right}"))
    (line,) = errors(r)
    assert f"https://127.0.0.1:{right}/v1/node: the connection was refused" in line, line
    assert "records cluster" not in r.stderr and not state.exists()


def test_apply_help_states_the_timeout_of_the_init_call():
    r = run("cloister", "apply", "--help")
    assert r.returncode == 0
    assert "30 for each attestation" in r.stdout and "600 for the init call" in r.stdout
    assert "(default 30)]" not in r.stdout


def test_unknown_tcti_module_is_named_as_such_not_as_a_missing_device():
    r = run("cloister", "attestation", "issue", "--tcti", "bogus:x", "--binding", ZERO)
    assert r.returncode == 1
    (line,) = errors(r)
    assert "'bogus:x'" in line and "no TCTI module of that name is installed" in line, line
    assert "swtpm:path=SOCKET" in line and "No such device" not in line, line


def test_tpm_that_does_not_answer_is_told_apart_from_an_unknown_tcti(tmp_path):
    r = run("cloister", "attestation", "issue", "--tcti", f"swtpm:path={tmp_path}/none.sock",
            "--binding", ZERO)
    (line,) = errors(r)
    assert "no TPM answers there" in line and "no TCTI module" not in line, line


def test_eventlog_replay_names_the_banks_the_log_has_not_a_fixed_guess():
    log = Path(TESTDATA) / "tpm" / "eventlogs" / "debian-10.bin"
    r = run("cloister-measure", "eventlog", "replay", log, "--bank", "sha384")
    assert r.returncode == 1
    (line,) = errors(r)
    assert "has no sha384 bank; it has sha1" in line and "try --bank sha1" not in line, line


def test_eventlog_show_json_gives_null_for_a_digest_the_bank_lacks():
    log = Path(TESTDATA) / "tpm" / "eventlogs" / "debian-10.bin"
    r = run("cloister-measure", "eventlog", "show", log, "--bank", "sha384", "-o", "json")
    assert r.returncode == 0, r.stderr
    events = json.loads(r.stdout)["events"]
    assert events and all(e["digest"] is None for e in events)
    r = run("cloister-measure", "eventlog", "show", log, "-o", "json")
    assert all(isinstance(e["digest"], str) and len(e["digest"]) == 40 for e in json.loads(r.stdout)["events"])


@pytest.mark.parametrize("program, typed, meant", [
    (["cloister"], "veryfy", "verify"), (["cloister"], "stauts", "status"),
    (["cloister"], "verif", "verify"), (["cloister", "attestation"], "verfy", "verify"),
    (["cloister-measure"], "evenlog", "eventlog"),
])
def test_a_mistyped_command_suggests_the_nearest_one(program, typed, meant):
    r = run(program[0], *program[1:], typed)
    (line,) = errors(r)
    assert r.returncode == 2 and f"unknown command '{typed}'. Did you mean '{meant}'?" in line


@pytest.mark.parametrize("typed", ["ab", "ver"])  # nothing near; two equally near
def test_an_unrelated_or_ambiguous_word_gets_no_suggestion(typed):
    (line,) = errors(run("cloister", typed))
    assert f"unknown command '{typed}'" in line and "Did you mean" not in line


def test_help_verb_prints_a_commands_own_help_and_the_overview():
    assert run("cloister", "help", "verify").stdout == run("cloister", "verify", "--help").stdout
    overview = run("cloister", "help")
    assert overview.returncode == 0 and "Commands:" in overview.stdout and "--verbose" in overview.stdout


def test_version_names_the_commit_openssl_and_tpm2_tss_in_text_and_json():
    text = run("cloister", "version")
    assert text.returncode == 0 and text.stdout.startswith("cloister ")
    assert "OpenSSL 3." in text.stdout and "tpm2-tss" in text.stdout
    assert run("cloister", "--version").stdout == text.stdout
    info = json.loads(run("cloister", "-o", "json", "version").stdout)
    assert set(info) == {"schemaVersion", "command", "version", "commit", "commitDate", "openssl",
                         "tpm2Tss"}
    assert info["openssl"].startswith("OpenSSL 3.") and info["tpm2Tss"][0].isdigit()
