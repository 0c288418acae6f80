# SPDX-License-Identifier: Apache-2.0
"""docs/troubleshooting.md quotes only messages the current code prints.

Every line of its ```text blocks (except '$ command' lines) must be produced by a format string of
the sources: the line must match a format (its %s, %d, %m, PRId64... standing for any value), and
whatever a %s stands for must itself be a value (no spaces: a path, an address, a name) or again
a message of the sources (a reason passed up through a Diag). A message reworded in the code
without the document fails here, naming the line. Messages that need no cluster are also run."""
import functools
import http.server
import json
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import ROOT, binary, run

DOC = ROOT / "docs" / "troubleshooting.md"
C_DIRS = ("cli", "lib", "bootstrapper", "join-service", "disk-mapper", "measured-boot")
SCRIPTS = ("scripts/mini", "scripts/mini-vm")

C_LITERALS = re.compile(r'"((?:[^"\\\n]|\\.)*)"((?:\s|PRI[diuxX](?:8|16|32|64)|\s)*)', re.S)


def c_strings(text):
    """Adjacent C string literals joined ("a" "b" -> "ab"; "%" PRId64 -> "%d")."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"'(?:[^'\\\n]|\\.)'", "0", text)  # character constants
    out, cur, end = [], None, -1
    for m in C_LITERALS.finditer(text):
        lit = m.group(1)
        for macro in re.findall(r"PRI[diuxX]\d+", m.group(2)):
            lit += macro[3]  # "%" PRId64 -> "%d"
        if cur is not None and m.start() == end:
            cur += lit
        else:
            if cur is not None:
                out.append(cur)
            cur = lit
        end = m.end()
        if re.search(r"[^\sPRIdiuxX0-9]", m.group(2) or ""):
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return [s.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for s in out]


def shell_strings(text):
    return [re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\([^)]*\)", "%s", s)
            for s in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]


SPEC = r"%[-+ #0-9.*]*(?:hh|h|ll|l|z|j|t)?([sdiuxXcmp%])"


def to_regex(fmt):
    fmt = re.sub(r"%s%s", "%s", fmt)  # "%s%s": one value followed by another, one group
    out, i = [], 0
    for m in re.finditer(SPEC, fmt):
        out.append(re.escape(fmt[i:m.start()]))
        conv = m.group(1)
        out.append({"s": "(.+?)", "m": "(.+?)", "%": "%", "c": "."}.get(conv, r"-?[0-9a-fA-Fx]+"))
        i = m.end()
    out.append(re.escape(fmt[i:]))
    return "".join(out)


@functools.lru_cache(maxsize=1)
def formats():
    """(format, regex, whether it says enough on its own to be a message)"""
    found = set()
    for d in C_DIRS:
        for f in (ROOT / d).rglob("*.c"):
            found.update(c_strings(f.read_text(errors="replace")))
    for s in SCRIPTS:
        found.update(shell_strings((ROOT / s).read_text()))
    result = []
    for f in found:
        for line in f.split("\n"):
            literal = re.sub(SPEC, "", line)
            letters = len(re.sub(r"[^a-z]", "", literal.lower()))
            if letters >= 3:
                result.append((line, re.compile(to_regex(line), re.S), letters >= 6))
    return result


STRERROR = {os.strerror(e) for e in range(1, 134)}  # what %m and strerror() print


def is_value(s):
    return " " not in s.strip() or s in STRERROR


def part(s, depth):
    """What a %s stood for: a value, a message of the sources, or a value and a message
    ("pcr" ", index 4")."""
    if is_value(s) or produced(s, depth, False):
        return True
    head, _, rest = s.partition(",")
    return is_value(head) and bool(rest) and produced("," + rest, depth, False)


@functools.lru_cache(maxsize=None)
def produced(message, depth=0, whole=True):
    """A format of the sources fully matches MESSAGE, each %s a value or again produced."""
    if depth > 6:
        return False
    for fmt, rx, enough in formats():
        if whole and not enough:
            continue
        m = rx.fullmatch(message)
        if m and all(part(g, depth + 1) for g in m.groups()):
            return True
    return False


def quoted_lines():
    text = DOC.read_text()
    lines = []
    for block in re.findall(r"```text\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip() and not line.startswith("$ "):
                lines.append(line.rstrip())
    return lines


def test_the_document_quotes_messages():
    assert len(quoted_lines()) >= 15


@pytest.mark.parametrize("line", quoted_lines())
def test_quoted_message_is_printed_by_the_current_code(line):
    message = re.sub(r"^(error|warning): ", "", line)
    assert produced(message) or produced(line), (
        f"docs/troubleshooting.md quotes a message no format string in the sources produces "
        f"(reworded?): {line!r}")


def test_the_checker_refuses_a_reworded_message():
    assert produced("--node '10.0.0.1:99999': the port must be a number from 1 to 65535.")
    assert not produced("--node '10.0.0.1:99999': the port must be a number from 1 to 65536.")
    assert not produced("the connection was refused: nothing listens there, try again later")


# Messages that need no cluster: the commands are run, and the document quotes their output.
RUNNABLE = [
    (["verify", "--node", "10.77.0.11:99999", "--policy", "policy.json"],
     "error: --node '10.77.0.11:99999': the port must be a number from 1 to 65535."),
    (["verify", "--node", "ftp://10.77.0.11", "--policy", "policy.json"],
     "error: --node 'ftp://10.77.0.11': Cloister nodes speak only https (attested TLS): give "
     "https://HOST[:PORT] or HOST[:PORT]."),
]


@pytest.fixture
def policy(tmp_path):
    """A well-formed policy: the errors below come before any attestation."""
    (tmp_path / "policy.json").write_text(json.dumps({
        "version": 1, "variant": "qemu-vtpm",
        "measurements": {i: {"expected": "00" * 32} for i in ("4", "9", "11")},
        "akTrust": {"mode": "insecure-any"}}))
    return tmp_path


@pytest.mark.parametrize("args,expected", RUNNABLE)
def test_runnable_messages_are_what_the_binary_prints_and_are_quoted(args, expected, policy):
    r = run("cloister", *args, cwd=policy)
    assert r.returncode != 0 and expected in r.stderr.splitlines(), r.stderr
    assert expected in quoted_lines()


def test_connection_refused_is_quoted_as_printed(policy):
    r = run("cloister", "verify", "--node", "127.0.0.1:1", "--policy", "policy.json", cwd=policy)
    lines = [l for l in r.stderr.splitlines() if "connection was refused" in l]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    quoted = [l for l in quoted_lines() if "/v1/node: the connection was refused" in l]
    # The same message, for the address the document uses.
    assert lines[0].replace("127.0.0.1:1/", "10.77.0.11:9701/") == quoted[0]
    assert "Verification FAILED: https://127.0.0.1:1 was not attested" in r.stdout


def test_missing_state_file_is_quoted_as_printed(policy):
    r = run("cloister", "verify", "--cluster", "--policy", "policy.json", cwd=policy)
    assert r.returncode == 1
    assert r.stderr.strip() in quoted_lines(), r.stderr


def test_existing_secrets_are_refused_as_quoted(tmp_path):
    assert run("cloister", "master-secret", "generate", "--file", "cloister-mastersecret.json",
               cwd=tmp_path).returncode == 0
    r = run("cloister", "master-secret", "generate", "--file", "cloister-mastersecret.json",
            cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip() in quoted_lines(), r.stderr
    assert run("cloister", "config", "generate", "qemu", cwd=tmp_path).returncode == 0
    r = run("cloister", "config", "generate", "qemu", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.strip() in quoted_lines(), r.stderr


def test_unknown_tcti_is_quoted_as_printed():
    r = run("cloister", "attestation", "issue", "--binding", "00" * 32, "--tcti", "bogus:x")
    assert r.returncode == 1 and r.stderr.strip() in quoted_lines(), r.stderr


def anchors(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", ["getting-started.md", "workflows.md", "troubleshooting.md",
                                 "README.md"])
def test_user_documents_link_to_files_and_sections_that_exist(doc):
    path = ROOT / "docs" / doc
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if target.startswith("http"):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{doc}: {target}: no such file"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{doc}: {target}: no such section"


def test_another_service_and_a_silent_port_are_quoted_as_printed(policy):
    """An HTTP server on the port: a failed TLS handshake; a port that accepts and never
    speaks: a timeout."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        r = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy", "policy.json",
                cwd=policy)
    finally:
        server.shutdown()
    (line,) = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert line.replace(f":{port}/", ":9797/") in quoted_lines(), line
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        r = run("cloister", "verify", "--node", f"127.0.0.1:{port}", "--policy", "policy.json",
                "--timeout", "2", cwd=policy)
    finally:
        silent.close()
    (line,) = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert line.replace(f"127.0.0.1:{port}/", "10.0.0.12:9000/") in quoted_lines(), line


def help_text(*path):
    r = subprocess.run([str(binary("cloister")), *path, "--help"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def sub_verbs(*path):
    text = help_text(*path)
    m = re.search(r"^Commands:\n((?:  [a-z].*\n)+)", text, re.M)
    return {l.split()[0] for l in m.group(1).splitlines()} if m else set()


@pytest.mark.parametrize("doc", ["getting-started.md", "workflows.md", "troubleshooting.md"])
def test_commands_in_user_documents_use_options_their_help_lists(doc):
    """Every 'cloister VERB ... --option' in a code block names an option of that verb."""
    text = (ROOT / "docs" / doc).read_text()
    commands = []
    for block in re.findall(r"```(?:sh|text)?\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            m = re.search(r"(?:^\$ |^|/|sudo .*?/)cloister ((?:[a-z-]+ ?)+.*)$", line)
            if m and not line.startswith(("error:", "mini:", "Verification")):
                # 'mini exec -- cloister verify ...': the command run there is checked too.
                for part in m.group(1).split(" -- cloister "):
                    # The workspace option goes anywhere: not a verb, not the verb's option.
                    commands.append(re.sub(r"(^|\s)(-C|--workspace)\s+\S+", " ", part).strip())
    assert commands, doc
    top = set(re.findall(r"--[a-z][a-z0-9-]*", help_text()))
    for command in commands:
        words = command.split()
        path = []
        for w in words:
            if w.startswith("-"):
                continue
            if w in sub_verbs(*path) or (not path and w in sub_verbs()):
                path.append(w)
            else:
                break
        assert path, command
        known = set(re.findall(r"--[a-z][a-z0-9-]*", help_text(*path))) | top
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command):
            assert option in known, f"{doc}: 'cloister {command}': {option} is not an option " \
                                    f"of 'cloister {' '.join(path)}'"
