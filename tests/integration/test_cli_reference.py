# SPDX-License-Identifier: Apache-2.0
"""docs/cli-reference.md is what the built binaries' --help prints, command by command."""
import re
import subprocess

from conftest import BUILD, ROOT, binary

GEN = ROOT / "scripts" / "gen-cli-reference"
REFERENCE = ROOT / "docs" / "cli-reference.md"


def gen(*args):
    for name in ("cloister", "cloister-measure", "cloister-bootstrapper", "cloister-join-service",
                 "cloister-disk-mapper"):
        binary(name)  # fails naming the binary that is not built
    return subprocess.run([str(GEN), "--build", str(BUILD), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_committed_reference_matches_the_binaries_help():
    p = gen("--check", REFERENCE)
    assert p.returncode == 0, (
        "docs/cli-reference.md has drifted from the binaries' --help:\n" + p.stderr)


def test_reference_covers_every_binary_and_nested_verb():
    text = REFERENCE.read_text()
    headings = set(re.findall(r"^#{2,6} (.+)$", text, re.M))
    for name in ("cloister", "cloister attestation verify", "cloister attestation verify-report",
                 "cloister config generate", "cloister config fetch-measurements",
                 "cloister control-plane authorize", "cloister mini", "cloister mini down",
                 "cloister-measure", "cloister-measure eventlog replay",
                 "cloister-measure snp-launch", "cloister-bootstrapper", "cloister-join-service",
                 "cloister-disk-mapper", "cloister-disk-mapper setup"):
        assert name in headings, name
    # Each section holds the text the binary prints (not a stale copy of it).
    out = subprocess.run([str(binary("cloister")), "attestation", "verify", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.rstrip("\n") in text


def test_drift_is_reported_naming_the_command_and_how_to_regenerate(tmp_path):
    stale = tmp_path / "cli-reference.md"
    text = REFERENCE.read_text()
    # An option line of 'cloister status --help' as an older binary might have printed it.
    section = text.index("\n### cloister status\n")
    line = text.index("--timeout", section)
    stale.write_text(text[:line] + "--deadline" + text[line + len("--timeout"):])
    p = gen("--check", stale)
    assert p.returncode == 1
    assert "changed: 'cloister status --help'" in p.stderr
    assert p.stderr.count("changed:") == 1  # only the command whose help changed
    assert "--deadline SEC" in p.stderr and "--timeout SEC" in p.stderr  # the diff
    assert "make cli-reference" in p.stderr
    assert "scripts/gen-cli-reference --build BUILD --markdown docs/cli-reference.md" in p.stderr

    # A command the binaries no longer have, and one missing from the file.
    removed = text.replace("### cloister terminate\n", "### cloister obsolete\n")
    stale.write_text(removed)
    p = gen("--check", stale)
    assert p.returncode == 1
    assert "new command: 'cloister terminate'" in p.stderr
    assert "no longer exists: 'cloister obsolete'" in p.stderr
