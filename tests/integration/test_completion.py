# SPDX-License-Identifier: Apache-2.0
"""bash completion for cloister, generated from the --help texts: the completion function is driven
in bash as readline would (COMP_WORDS, COMP_CWORD) and its answers are compared with what the
binary's own --help says."""
import re
import subprocess

import pytest

from conftest import BUILD, ROOT, binary

GEN = ROOT / "scripts" / "gen-cli-reference"


@pytest.fixture(scope="module")
def completion(tmp_path_factory):
    out = tmp_path_factory.mktemp("completion") / "cloister"
    binary("cloister")
    subprocess.run([str(GEN), "--build", str(BUILD), "--completion", str(out)], check=True,
                   timeout=120)
    return out


def complete(completion, line, cwd=None):
    """The words bash offers for LINE (the cursor at its end; a trailing space starts a new
    word)."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    script = (f"source {completion}\n"
              "COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMP_LINE=\"$*\"\n"
              "_cloister\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", *words],
                       capture_output=True, text=True, cwd=cwd, timeout=30)
    assert p.returncode == 0, p.stderr
    return set(filter(None, p.stdout.splitlines()))


def help_of(*args):
    return subprocess.run([str(binary("cloister")), *args, "--help"], capture_output=True,
                          text=True, check=True).stdout


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def test_complete_registers_the_function_for_cloister(completion):
    p = subprocess.run(["bash", "--norc", "-c", f"source {completion}; complete -p cloister"],
                       capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "complete -F _cloister cloister"


def test_verbs_are_those_cloister_help_lists(completion):
    verbs = set(re.findall(r"^  ([a-z][a-z-]+) ", help_of().split("Commands:")[1]
                           .split("Options:")[0], re.M))
    assert len(verbs) >= 10 and {"apply", "verify", "attestation", "mini"} <= verbs
    assert complete(completion, "cloister ") == verbs
    assert complete(completion, "cloister att") == {"attestation"}
    assert complete(completion, "cloister -v ver") == {"verify", "version"}
    # 'cloister help VERB' completes the verbs too.
    assert complete(completion, "cloister help ") == verbs - {"help"}
    assert complete(completion, "cloister help app") == {"apply"}


def test_sub_verbs_of_nested_commands(completion):
    sub = set(re.findall(r"^  ([a-z][a-z-]+) ", help_of("attestation"), re.M))
    assert complete(completion, "cloister attestation ") == sub
    assert "verify-report" in sub and "policy" in sub
    assert complete(completion, "cloister config ") == {"generate", "fetch-measurements"}
    # mini's sub-verbs come from its summary 'up | down | status | exec: ...'.
    assert complete(completion, "cloister mini ") == {"up", "down", "status", "exec"}


def test_options_of_apply_are_those_its_help_names(completion):
    offered = complete(completion, "cloister apply --")
    assert offered == long_options(help_of("apply")) | {"--help"}
    assert {"--endpoint", "--policy", "--config", "--timeout", "--state-file"} <= offered
    assert complete(completion, "cloister apply --ti") == {"--timeout"}


def test_options_of_a_nested_verb_attestation_verify(completion):
    offered = complete(completion, "cloister attestation verify --")
    assert offered == long_options(help_of("attestation", "verify")) | {"--help"}
    assert {"--evidence", "--policy", "--binding", "--no-binding", "--at"} <= offered
    # Global options before the verb do not change which verb is completed.
    assert complete(completion, "cloister -v attestation verify --pol") == {"--policy"}
    # --endpoint is apply's, not attestation verify's.
    assert "--endpoint" not in offered


def test_values_an_option_takes(completion, tmp_path):
    (tmp_path / "policy.json").write_text("{}")
    (tmp_path / "key.pem").write_text("")
    assert complete(completion, "cloister verify -o ") == {"text", "json"}
    assert complete(completion, "cloister apply --policy p", cwd=tmp_path) == {"policy.json"}
    # A value that happens to be a verb's name is a value: completion stays with apply.
    assert complete(completion, "cloister apply --policy status --end") == {"--endpoint"}
    # A flag takes no value: the next word completes as a verb's option again.
    assert "--policy" in complete(completion, "cloister attestation verify --no-binding --")
