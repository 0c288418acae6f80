# SPDX-License-Identifier: Apache-2.0
"""cloister-disk-mapper on image files: format, strict check, re-key; a host-modified header is
refused with the reason."""
import subprocess

from conftest import run


def image(tmp_path):
    p = tmp_path / "disk.img"
    with open(p, "wb") as f:
        f.truncate(32 * 1024 * 1024)
    return p


def test_format_check_rekey(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    (tmp_path / "k2").write_bytes(b"\x02" * 32)
    r = run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 0 and "state new" in r.stdout and "the key opens it" in r.stdout
    r = run("cloister-disk-mapper", "rekey", disk, "--key-file", tmp_path / "k1",
            "--new-key-file", tmp_path / "k2")
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k2")
    assert r.returncode == 0 and "state initialized" in r.stdout
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 1 and "does not open" in r.stderr
    # cryptsetup's own view agrees: exactly one keyslot.
    dump = subprocess.run(["cryptsetup", "luksDump", disk], capture_output=True, text=True).stdout
    assert dump.count(": luks2") == 1


def test_host_added_keyslot_is_refused_with_counts(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    (tmp_path / "evil").write_bytes(b"\x66" * 32)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1").returncode == 0
    subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2",
                    "--pbkdf-force-iterations", "1000", "--key-file", tmp_path / "k1", disk,
                    tmp_path / "evil"], check=True, capture_output=True)
    r = run("cloister-disk-mapper", "check", disk)
    assert r.returncode == 1
    assert "exactly one keyslot (expected 1, found 2)" in r.stderr


def test_format_refuses_an_existing_header(tmp_path):
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1").returncode == 0
    r = run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 1 and "refusing to format" in r.stderr


# --- headers a host might swap in: refused with a named reason, and not one byte written -------

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from conftest import BUILD  # noqa: E402

K1, K2 = b"\x01" * 32, b"\x02" * 32


def keys(tmp_path):
    (tmp_path / "k1").write_bytes(K1)
    (tmp_path / "k2").write_bytes(K2)
    return tmp_path / "k1", tmp_path / "k2"


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cryptsetup_format(disk, key, *extra):
    subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--pbkdf", "pbkdf2",
                    "--pbkdf-force-iterations", "1000", "--key-file", key, *extra, disk],
                   check=True, capture_output=True)


def deviant(kind, disk, k1):
    if kind == "other-cipher":
        cryptsetup_format(disk, k1, "--type", "luks2", "--cipher", "aes-cbc-essiv:sha256",
                          "--key-size", "256")
    elif kind == "extra-keyslot":
        assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
        subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2",
                        "--pbkdf-force-iterations", "1000", "--key-file", k1, disk, k1],
                       check=True, capture_output=True)
    elif kind == "sector-size-512":
        cryptsetup_format(disk, k1, "--type", "luks2", "--cipher", "aes-xts-plain64",
                          "--key-size", "512", "--sector-size", "512")
    elif kind == "unknown-token":
        assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
        subprocess.run(["cryptsetup", "token", "import", "--token-id", "1", disk],
                       input=b'{"type":"evil","keyslots":[]}', check=True, capture_output=True)
    elif kind == "truncated":
        assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
        data = Path(disk).read_bytes()
        Path(disk).write_bytes(data[:4096] + bytes(len(data) - 4096))
    elif kind == "not-luks":
        Path(disk).write_bytes(os.urandom(4 * 1024 * 1024) + bytes(28 * 1024 * 1024))
    elif kind == "luks1":
        cryptsetup_format(disk, k1, "--type", "luks1")


REASONS = {
    "other-cipher": "cipher is not the expected profile (expected aes-xts-plain64, 512-bit key",
    "extra-keyslot": "exactly one keyslot (expected 1, found 2)",
    "sector-size-512": "sector size is not the expected profile (expected 4096, found 512)",
    "unknown-token": "exactly one Cloister token",
    "truncated": "no valid LUKS2 header",
    "not-luks": "no valid LUKS2 header",
    "luks1": "no valid LUKS2 header (LUKS1",
}


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_deviant_header_is_refused_by_every_command_and_nothing_is_written(tmp_path, kind):
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    deviant(kind, disk, k1)
    before = digest(disk)
    for args in (("check-header",), ("status",), ("open", "--key-file", k1),
                 ("rekey", "--key-file", k1, "--new-key-file", k2),
                 ("reset", "--key-file", k1)):
        r = run("cloister-disk-mapper", args[0], "--device", disk, *args[1:])
        assert r.returncode == 1, (args, r.stdout)
        text = r.stderr + r.stdout
        assert REASONS[kind] in text, (args, text)
    if kind != "not-luks":  # random bytes are what a new disk looks like: format may take it
        r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1)
        assert r.returncode == 1 and "refusing to format" in r.stderr
    assert digest(disk) == before


# --- crash safety: the fault-injection build is killed between header writes -------------------

FAULT = BUILD / "tests" / "cloister-disk-mapper-fault"


def crash(*args, step):
    r = subprocess.run([str(FAULT), *map(str, args)], capture_output=True, text=True,
                       env=dict(os.environ, CLOISTER_FAULT=step), timeout=60)
    assert r.returncode == 99, f"did not stop at {step}: {r.returncode} {r.stderr}"


def opens(disk, key):
    return run("cloister-disk-mapper", "check-header", "--device", disk,
               "--key-file", key).returncode == 0


def test_fault_build_exists_and_product_build_has_no_fault_hook():
    assert FAULT.exists(), "make build-tests builds it"
    assert b"CLOISTER_FAULT" in FAULT.read_bytes()
    assert b"CLOISTER_FAULT" not in (BUILD / "bin" / "cloister-disk-mapper").read_bytes()


@pytest.mark.parametrize("step", ["format-header", "format-token", "format-keyslot"])
def test_interrupted_format_leaves_a_disk_that_is_recognisably_unused(tmp_path, step):
    k1, _ = keys(tmp_path)
    disk = image(tmp_path)
    crash("format", "--device", disk, "--key-file", k1, step=step)
    # Not openable as a disk with data...
    r = run("cloister-disk-mapper", "open", "--device", disk, "--key-file", k1)
    assert r.returncode == 1
    # ...and formatting it again is allowed (it cannot hold data).
    r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1)
    assert r.returncode == 0, r.stderr
    assert opens(disk, k1)


@pytest.mark.parametrize("step", ["rekey-token", "rekey-add", "rekey-destroy"])
def test_interrupted_rekey_opens_with_old_or_new_key_and_finishes_when_run_again(tmp_path, step):
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    crash("rekey", "--device", disk, "--key-file", k1, "--new-key-file", k2, step=step)
    assert opens(disk, k1) or opens(disk, k2)
    r = run("cloister-disk-mapper", "status", "--device", disk)
    assert r.returncode == 0 and "state:  rekeying" in r.stdout
    # After a reboot the first-boot key is gone: the new key alone must finish the job whenever
    # the new keyslot exists; before that, the old key is still there to finish with.
    again = (["--new-key-file", k2] if opens(disk, k2) else
             ["--key-file", k1, "--new-key-file", k2])
    r = run("cloister-disk-mapper", "rekey", "--device", disk, *again)
    assert r.returncode == 0, r.stderr
    assert opens(disk, k2) and not opens(disk, k1)
    dump = subprocess.run(["cryptsetup", "luksDump", disk], capture_output=True, text=True).stdout
    assert dump.count(": luks2") == 1
    assert "state:  initialized" in run("cloister-disk-mapper", "status", "--device", disk).stdout


def test_initialized_disk_is_formatted_again_only_after_reset_with_its_key(tmp_path):
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    assert run("cloister-disk-mapper", "rekey", "--device", disk, "--key-file", k1,
               "--new-key-file", k2).returncode == 0
    r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1)
    assert r.returncode == 1 and "only after 'reset'" in r.stderr
    r = run("cloister-disk-mapper", "reset", "--device", disk, "--key-file", k1)
    assert r.returncode == 1 and "does not open the disk; reset needs it" in r.stderr
    r = run("cloister-disk-mapper", "reset", "--device", disk, "--key-file", k2)
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "open", "--device", disk, "--key-file", k2)
    assert r.returncode == 1 and "state 'reset'" in r.stderr
    old_uuid = json.loads(run("cloister-disk-mapper", "status", "--device", disk,
                              "-o", "json").stdout)["uuid"]
    r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1)
    assert r.returncode == 0, r.stderr
    st = json.loads(run("cloister-disk-mapper", "status", "--device", disk, "-o", "json").stdout)
    assert st["state"] == "new" and st["uuid"] != old_uuid and opens(disk, k1)


def test_status_json_reports_an_invalid_header_with_expected_and_actual(tmp_path):
    k1, _ = keys(tmp_path)
    disk = image(tmp_path)
    deviant("sector-size-512", disk, k1)
    r = run("cloister-disk-mapper", "status", "--device", disk, "-o", "json")
    assert r.returncode == 1
    st = json.loads(r.stdout)
    assert st["valid"] is False and st["expected"] == "4096" and st["actual"] == "512"
    assert st["active"] is False


def test_key_from_stdin(tmp_path):
    disk = image(tmp_path)
    r = run("cloister-disk-mapper", "format", "--device", disk, "--key-file", "-",
            input="k" * 32)
    assert r.returncode == 0, r.stderr
    r = run("cloister-disk-mapper", "check-header", "--device", disk, "--key-file", "-",
            input="k" * 32)
    assert r.returncode == 0 and "the key opens it" in r.stdout


def test_device_errors_are_one_line(tmp_path):
    for args, why in ((("status",), "No state disk given"),
                      (("status", "--device", tmp_path / "nope"), "No such file"),
                      (("status", "--partlabel", "no-such-label-xyz"), "No partition is named"),
                      (("status", "--device", "/dev/null"), "neither a block device nor a file"),
                      (("open", "--device", tmp_path, "--key-file", "-"), "neither")):
        r = run("cloister-disk-mapper", *args)
        assert r.returncode == 1 and why in r.stderr, (args, r.stderr)
        assert r.stderr.strip().count("\n") == 0


def test_setup_formats_a_rekey_cut_short_once_the_first_boot_key_is_gone(tmp_path):
    """Power cut after the token said 'rekeying' but before the new keyslot existed, then a
    reboot (the first-boot key lived on tmpfs): nobody can open the disk, so setup formats it
    again instead of failing at every boot. (Activation needs device-mapper, absent here: setup
    stops after the format, which is what this checks.)"""
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    before = json.loads(run("cloister-disk-mapper", "status", "--device", disk, "-o",
                            "json").stdout)["uuid"]
    crash("rekey", "--device", disk, "--key-file", k1, "--new-key-file", k2, step="rekey-token")
    fbk = Path("/dev/shm") / f"cloister-test-{os.getpid()}-{tmp_path.name}" / "first-boot.key"
    try:
        r = run("cloister-disk-mapper", "setup", "--device", disk, "--mount", tmp_path / "m",
                "--first-boot-key", fbk)
        assert "re-key cut short, no key left" in r.stderr, r.stderr
        st = json.loads(run("cloister-disk-mapper", "status", "--device", disk, "-o",
                            "json").stdout)
        assert st["state"] == "new" and st["uuid"] != before
        assert fbk.stat().st_size == 32
    finally:
        if fbk.exists():
            fbk.unlink()
        if fbk.parent.exists():
            fbk.parent.rmdir()


def test_setup_with_a_second_keyslot_needs_the_disk_key(tmp_path):
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    crash("rekey", "--device", disk, "--key-file", k1, "--new-key-file", k2, step="rekey-add")
    fbk = Path("/dev/shm") / f"cloister-test-{os.getpid()}-{tmp_path.name}" / "first-boot.key"
    try:
        r = run("cloister-disk-mapper", "setup", "--device", disk, "--mount", tmp_path / "m",
                "--first-boot-key", fbk)
        assert r.returncode == 1 and "was being re-keyed" in r.stderr, r.stderr
        assert json.loads(run("cloister-disk-mapper", "status", "--device", disk, "-o",
                              "json").stdout)["state"] == "rekeying"
    finally:
        if fbk.parent.exists():
            fbk.parent.rmdir()


def test_setup_allow_locked_leaves_an_initialized_disk_locked_and_succeeds(tmp_path):
    """After a reboot an initialized disk's key comes from the join service or the owner, later,
    through the bootstrapper: at boot, setup --allow-locked must succeed without opening,
    formatting or writing anything. Without the flag the same disk still fails setup. (With
    nothing opened, this needs no device-mapper: an image file proves it.)"""
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    assert run("cloister-disk-mapper", "rekey", "--device", disk, "--key-file", k1,
               "--new-key-file", k2).returncode == 0
    before = digest(disk)
    mount = tmp_path / "m"
    fbk = Path("/dev/shm") / f"cloister-test-{os.getpid()}-{tmp_path.name}" / "first-boot.key"
    name = f"cloister-test-{os.getpid()}"
    try:
        r = run("cloister-disk-mapper", "setup", "--device", disk, "--mount", mount,
                "--bind", "/var/lib/cloister", "--first-boot-key", fbk, "--name", name,
                "--allow-locked")
        assert r.returncode == 0, r.stderr
        assert r.stdout == (f"{disk}: initialized, left locked: its key comes from the join "
                            "service (rejoin) or the owner (recover); the bootstrapper opens "
                            "it\n"), r.stdout
        assert r.stderr == ""
        # Nothing opened, mounted, formatted or written: no mapping, no mount point made, no
        # first-boot key, the image bit for bit as it was, the disk key still opens it.
        st = json.loads(run("cloister-disk-mapper", "status", "--device", disk, "--name", name,
                            "-o", "json").stdout)
        assert st["state"] == "initialized" and st["active"] is False
        assert not mount.exists() and not fbk.exists()
        assert digest(disk) == before and opens(disk, k2)

        r = run("cloister-disk-mapper", "setup", "--device", disk, "--mount", mount,
                "--first-boot-key", fbk, "--name", name)
        assert r.returncode == 1 and "is initialized: its key comes from the join service" \
            in r.stderr, r.stderr
        assert r.stdout == "" and digest(disk) == before
    finally:
        if fbk.exists():
            fbk.unlink()
        if fbk.parent.exists():
            fbk.parent.rmdir()


def test_setup_allow_locked_leaves_a_rekey_that_needs_the_disk_key_locked(tmp_path):
    """Cut short after the new keyslot was added, then rebooted (first-boot key gone): two
    keyslots, and only the disk key from the join service finishes it."""
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    crash("rekey", "--device", disk, "--key-file", k1, "--new-key-file", k2, step="rekey-add")
    before = digest(disk)
    fbk = Path("/dev/shm") / f"cloister-test-{os.getpid()}-{tmp_path.name}" / "first-boot.key"
    try:
        r = run("cloister-disk-mapper", "setup", "--device", disk, "--mount", tmp_path / "m",
                "--first-boot-key", fbk, "--allow-locked")
        assert r.returncode == 0, r.stderr
        assert "being re-keyed, left locked" in r.stdout and "the bootstrapper opens it" in r.stdout
        assert digest(disk) == before and not (tmp_path / "m").exists()
        assert json.loads(run("cloister-disk-mapper", "status", "--device", disk, "-o",
                              "json").stdout)["state"] == "rekeying"
    finally:
        if fbk.parent.exists():
            fbk.parent.rmdir()


def test_allow_locked_is_a_setup_option_only(tmp_path):
    k1, _ = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", "--device", disk, "--key-file", k1).returncode == 0
    r = run("cloister-disk-mapper", "open", "--device", disk, "--key-file", k1, "--allow-locked")
    assert r.returncode == 2 and "only 'setup' takes it" in r.stderr


def rewrite_header_uuid(disk, new_uuid):
    """What a host can do: the LUKS2 binary header's checksum has no key (LUKS2 on-disk format,
    2.2: UUID at byte 168, 40 bytes; SHA-256 checksum at 448 over the header with it zeroed),
    so it rewrites the UUID in both copies and recomputes them."""
    with open(disk, "r+b") as f:
        data = bytearray(f.read(4 * 1024 * 1024))
        hdr_size = int.from_bytes(data[8:16], "big")
        for off in (0, hdr_size):
            assert data[off:off + 4] in (b"LUKS", b"SKUL")
            data[off + 168:off + 208] = new_uuid.encode().ljust(40, b"\0")
            data[off + 448:off + 512] = bytes(64)
            data[off + 448:off + 480] = hashlib.sha256(bytes(data[off:off + hdr_size])).digest()
        f.seek(0)
        f.write(data)


def test_header_whose_uuid_is_not_lowercase_is_refused(tmp_path):
    """The UUID names the disk's key and its member: one disk, one spelling. cryptsetup writes
    lowercase; an uppercase UUID is a host's edit (it would let a second member claim the same
    disk under another spelling) and is refused like any other deviant header."""
    disk = image(tmp_path)
    (tmp_path / "k1").write_bytes(b"\x01" * 32)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", tmp_path / "k1").returncode == 0
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    uuid = r.stdout.split("UUID ")[1].split(",")[0]
    # Well-formed but for its case: the only thing this test changes.
    assert len(uuid) == 36 and uuid == uuid.lower() and uuid.upper() != uuid, uuid
    # The edit itself is sound: cryptsetup accepts the header and reads the new spelling.
    rewrite_header_uuid(disk, uuid.upper())
    dump = subprocess.run(["cryptsetup", "luksUUID", disk], capture_output=True, text=True)
    assert dump.returncode == 0 and dump.stdout.strip() == uuid.upper(), dump.stdout + dump.stderr
    r = run("cloister-disk-mapper", "check", disk, "--key-file", tmp_path / "k1")
    assert r.returncode == 1 and "not a lowercase UUID" in r.stderr, r.stdout + r.stderr


def rewrite_header_json(disk, edit):
    """What a host can do to the JSON area too: the checksum over binary header and JSON has no
    key (LUKS2 on-disk format, 2.2), so it edits the JSON and recomputes both copies' checksums.
    cryptsetup loads every header these edits make (the tests check it): only Cloister's own
    checks stand in the way."""
    with open(disk, "r+b") as f:
        data = bytearray(f.read(4 * 1024 * 1024))
        hdr_size = int.from_bytes(data[8:16], "big")
        meta = json.loads(bytes(data[4096:hdr_size]).split(b"\0")[0])
        edit(meta)
        text = json.dumps(meta, separators=(",", ":")).encode()
        assert len(text) < hdr_size - 4096
        for off in (0, hdr_size):
            data[off + 4096:off + hdr_size] = text.ljust(hdr_size - 4096, b"\0")
            data[off + 448:off + 512] = bytes(64)
            data[off + 448:off + 480] = hashlib.sha256(bytes(data[off:off + hdr_size])).digest()
        f.seek(0)
        f.write(data)


def _second_segment(m):
    s0 = m["segments"]["0"]
    s1 = dict(s0, offset=str(int(s0["offset"]) + 4096 * 256))
    s0["size"] = str(4096 * 256)
    m["segments"]["1"] = s1
    m["digests"]["0"]["segments"] = ["0", "1"]


def _rekeying_with_a_short_second_key(m):
    m["tokens"]["0"]["state"] = "rekeying"
    m["keyslots"]["1"]["key_size"] = 32


JSON_EDITS = {
    "two-segments": (_second_segment, "exactly one data segment (expected 1, found 2)"),
    "second-digest": (lambda m: m["digests"].__setitem__(
        "1", dict(m["digests"]["0"], keyslots=[], segments=[])), "exactly one digest"),
    "pbkdf2-999-iterations": (lambda m: [ks["kdf"].__setitem__("iterations", 999)
                                         for ks in m["keyslots"].values()],
                              "PBKDF2 iteration count is below 1000"),
    "kdf-hash-sha1": (lambda m: [ks["kdf"].__setitem__("hash", "sha1")
                                 for ks in m["keyslots"].values()],
                      "keyslot KDF hash is not the expected profile (expected sha256, found sha1)"),
    "short-key-in-second-slot": (_rekeying_with_a_short_second_key,
                                 "the keyslot's key is not 512 bits"),
}


@pytest.mark.parametrize("kind", sorted(JSON_EDITS))
def test_header_whose_json_a_host_edited_is_refused_with_the_reason(tmp_path, kind):
    edit, reason = JSON_EDITS[kind]
    k1, k2 = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
    if kind == "short-key-in-second-slot":  # a re-key in progress has two slots
        subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2",
                        "--pbkdf-force-iterations", "1000", "--key-file", k1, disk, k2],
                       check=True, capture_output=True)
    rewrite_header_json(disk, edit)
    assert subprocess.run(["cryptsetup", "luksDump", disk], capture_output=True).returncode == 0
    r = run("cloister-disk-mapper", "check-header", "--device", disk, "--key-file", k1)
    assert r.returncode == 1 and reason in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("state", ["formatting", "reset"])
def test_a_disk_being_formatted_or_reset_is_never_opened_as_holding_data(tmp_path, state):
    k1, _ = keys(tmp_path)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
    rewrite_header_json(disk, lambda m: m["tokens"]["0"].__setitem__("state", state))
    r = run("cloister-disk-mapper", "open", "--device", disk, "--key-file", k1)
    assert r.returncode == 1 and f"state '{state}': it holds no data to open" in r.stderr, \
        r.stderr


def test_rekey_of_an_initialized_disk_to_a_key_it_does_not_hold_is_refused(tmp_path):
    k1, k2 = keys(tmp_path)
    (tmp_path / "k3").write_bytes(b"\x03" * 32)
    disk = image(tmp_path)
    assert run("cloister-disk-mapper", "format", disk, "--key-file", k1).returncode == 0
    assert run("cloister-disk-mapper", "rekey", "--device", disk, "--key-file", k1,
               "--new-key-file", k2).returncode == 0
    # Asked again with the key it now holds: done before, nothing to do.
    assert run("cloister-disk-mapper", "rekey", "--device", disk, "--key-file", k1,
               "--new-key-file", k2).returncode == 0
    before = digest(disk)
    r = run("cloister-disk-mapper", "rekey", "--device", disk, "--key-file", k2,
            "--new-key-file", tmp_path / "k3")
    assert r.returncode == 1 and "already initialized, and not with this key" in r.stderr, \
        r.stderr
    assert digest(disk) == before


def test_a_missing_key_file_is_a_usage_error_before_the_device_is_opened(tmp_path):
    """format, reset and open without --key-file (rekey without --new-key-file) are usage errors
    (exit 2) named as such, whatever the device: the disk is not looked up or opened first (a
    missing device would otherwise hide the real mistake)."""
    for verb, option in (("format", "--key-file"), ("reset", "--key-file"), ("open", "--key-file"),
                         ("rekey", "--new-key-file")):
        r = run("cloister-disk-mapper", verb, "--device", tmp_path / "no-such-disk.img")
        assert r.returncode == 2, (verb, r.stderr)
        assert f"{verb}: {option} is required" in r.stderr, (verb, r.stderr)
        assert "no-such-disk" not in r.stderr, (verb, r.stderr)
