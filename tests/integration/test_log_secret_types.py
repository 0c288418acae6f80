# SPDX-License-Identifier: Apache-2.0
"""A Secret cannot reach the logger by mistake: passing one to a log call does not compile."""
import subprocess

from conftest import ROOT

PROLOGUE = '#include "cloister/log.h"\n#include "cloister/secret.h"\n'


def compile_snippet(tmp_path, body):
    src = tmp_path / "snippet.c"
    src.write_text(PROLOGUE + "void f(Secret *s);\nvoid f(Secret *s) {\n" + body + "\n}\n")
    return subprocess.run(["gcc", "-std=gnu17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wformat=2",
                           "-Werror", "-I", str(ROOT / "lib/include"), "-c", str(src), "-o",
                           str(tmp_path / "snippet.o")], capture_output=True, text=True)


def test_logging_a_secret_is_a_compile_error(tmp_path):
    r = compile_snippet(tmp_path, '        log_info("key: %s", s);')
    assert r.returncode != 0
    assert "Secret" in r.stderr


def test_logging_a_secret_as_pointer_is_a_compile_error(tmp_path):
    r = compile_snippet(tmp_path, '        log_error_errno(-EIO, "key: %d", s);')
    assert r.returncode != 0


def test_control_logging_a_secret_size_compiles(tmp_path):
    # The control case: the same snippet with a non-secret argument builds, so the failures above
    # are caused by the Secret type and not by a broken snippet.
    r = compile_snippet(tmp_path, '        log_info("key size: %zu", secret_size(s));')
    assert r.returncode == 0, r.stderr
