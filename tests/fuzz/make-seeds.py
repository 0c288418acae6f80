#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes small synthetic seed inputs for the libFuzzer targets (no copies of shared test data).
Run from the project root: tests/fuzz/make-seeds.py"""
import base64
import hashlib
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

C = Path("tests/fuzz/corpus")


def tcg_log():
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2)
    spec += struct.pack("<HH", 0x0004, 20) + struct.pack("<HH", 0x000B, 32) + b"\0"
    out = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec

    def ev(pcr, typ, data):
        return (struct.pack("<III", pcr, typ, 2) + struct.pack("<H", 4) + hashlib.sha1(data).digest()
                + struct.pack("<H", 0x0B) + hashlib.sha256(data).digest()
                + struct.pack("<I", len(data)) + data)

    name = "SecureBoot".encode("utf-16-le")
    var = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c") + struct.pack("<QQ", 10, 1) + name + b"\1"
    locality = struct.pack("<II", 0, 3) + struct.pack("<HH", 0, 0)  # placeholder, replaced below
    out += ev(7, 0x80000001, var) + ev(4, 0x80000003, struct.pack("<QQQQ", 0x1000, 4096, 0, 0))
    out += ev(0, 4, bytes(4)) + ev(8, 0x0D, b"linux console=ttyS0\0")
    return out


def tpmt_public_ecc():
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 18)
    return (struct.pack(">HHIH", 0x0023, 0x000B, attrs, 0) + struct.pack(">H", 0x0010)
            + struct.pack(">HH", 0x0018, 0x000B) + struct.pack(">HH", 0x0003, 0x0010)
            + struct.pack(">H", 32) + key.x.to_bytes(32, "big")
            + struct.pack(">H", 32) + key.y.to_bytes(32, "big"))


def tpms_attest():
    return (struct.pack(">IH", 0xff544347, 0x8018) + struct.pack(">H", 34) + bytes(34)
            + struct.pack(">H", 32) + bytes(range(32)) + struct.pack(">QIIBQ", 1000, 1, 0, 1, 0)
            + struct.pack(">IHB", 1, 0x000B, 3) + b"\xff\xff\x00" + struct.pack(">H", 32) + bytes(32))


def tpmt_signature():
    return struct.pack(">HH", 0x0018, 0x000B) + struct.pack(">H", 32) + b"\1" * 32 + struct.pack(">H", 32) + b"\2" * 32


def write(target, name, data):
    d = C / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


write("fuzz-tcg-log", "agile.bin", tcg_log())
write("fuzz-tpm-structs", "public.bin", b"\0" + tpmt_public_ecc())
write("fuzz-tpm-structs", "attest.bin", b"\1" + tpms_attest())
write("fuzz-tpm-structs", "signature.bin", b"\2" + tpmt_signature())
b64 = lambda b: base64.b64encode(b).decode()
evidence = {"version": 1, "variant": "qemu-vtpm",
            "tpm": {"akPublic": b64(tpmt_public_ecc()), "quote": b64(tpms_attest()),
                    "signature": b64(tpmt_signature()), "eventLog": b64(tcg_log()),
                    "pcrs": {str(i): "00" * 32 for i in range(16)}}}
write("fuzz-evidence", "vtpm.json", json.dumps(evidence, separators=(",", ":"), sort_keys=True).encode())


def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + body


def oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(enc)
    return der(0x06, body)


def authenticode_pkcs7(digest):
    """A structurally valid (unsigned: no SignerInfo) Authenticode SignedData."""
    seq = lambda *x: der(0x30, b"".join(x))
    sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), b"\x05\x00")
    indirect = seq(seq(oid("1.3.6.1.4.1.311.2.1.15"), seq()), seq(sha256, der(0x04, digest)))
    content = seq(oid("1.3.6.1.4.1.311.2.1.4"), der(0xA0, indirect))
    signed = seq(der(0x02, b"\x01"), der(0x31, sha256), content, der(0x31, b""))
    return seq(oid("1.2.840.113549.1.7.2"), der(0xA0, signed))


def pe(sections, cert=b""):
    """A PE32+ image: headers in the first 0x400 bytes, each section 0x200-aligned after it."""
    n = len(sections)
    lfanew, opt_size = 0x80, 240
    out = bytearray(0x400)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3C, lfanew)
    out[lfanew:lfanew + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", out, lfanew + 4, 0x8664, n, 0, 0, 0, opt_size, 0x22)
    opt = lfanew + 24
    struct.pack_into("<H", out, opt, 0x20B)
    struct.pack_into("<I", out, opt + 60, 0x400)  # SizeOfHeaders
    struct.pack_into("<I", out, opt + 108, 16)    # NumberOfRvaAndSizes
    table, raw, vma = opt + opt_size, 0x400, 0x1000
    body = bytearray()
    for name, data in sections:
        size = (len(data) + 0x1FF) & ~0x1FF
        struct.pack_into("<8sIIII", out, table, name, len(data), vma, size, raw)
        table += 40
        body += data + bytes(size - len(data))
        raw += size
        vma += (len(data) + 0xFFF) & ~0xFFF
    image = bytes(out + body)
    if cert:
        wc = struct.pack("<IHH", 8 + len(cert), 0x0200, 0x0002) + cert
        wc += bytes(-len(wc) % 8)
        struct.pack_into("<II", out, opt + 112 + 4 * 8, len(image), len(wc))
        image = bytes(out + body) + wc
    return image


kernel = pe([(b".text", b"\xc3" * 64)])
write("fuzz-pe", "uki.efi", pe([(b".sdmagic", b"#### LoaderInfo: systemd-stub 254.1 ####"),
                                 (b".osrel", b"ID=debian\n"), (b".cmdline", b"quiet\tpanic=-1\n"),
                                 (b".initrd", b"070701" + bytes(100)), (b".linux", kernel)]))
write("fuzz-pe", "signed.efi", pe([(b".text", b"\xc3" * 64)], authenticode_pkcs7(bytes(32))))

HASH = ("scrypt$15$8$1$000102030405060708090a0b0c0d0e0f$"
        "1cbc81b236c9417628f7cc2a5c3190aea3650258a5b5ba1a66509ce2d1a6d871")
ATTRS = {"cloister-role": "control-plane", "cloister-endpoint": "10.0.0.2:6443",
         "cloister-peers": "10.0.0.3:9000,[fd00::4]:9000", "cloister-init-secret-hash": HASH}
write("fuzz-metadata", "local.json", b"\0" + json.dumps({
    "name": "node-1", "role": "worker", "endpoint": "cp:6443", "peers": ["a:1", "[::1]:2"],
    "initSecretHash": HASH}).encode())
write("fuzz-metadata", "gcp.json", b"\1" + json.dumps({"name": "node-1", "attributes": ATTRS}).encode())
write("fuzz-metadata", "azure.json", b"\2" + json.dumps({"compute": {"name": "node-1", "tagsList": [
    {"name": k, "value": v} for k, v in ATTRS.items()]}}).encode())
write("fuzz-metadata", "hash.txt", b"\3" + HASH.encode())


# Evidence of the SNP variants (fuzz-evidence verifies each document under its own variant): a
# report of the right size and version (signature zero), a VCEK and chain that are not
# certificates, and an HCL report around the same report with a runtime-data JSON.
def snp_report():
    r = bytearray(0x4A0)
    struct.pack_into("<IIQ", r, 0, 2, 0, (1 << 17) | (1 << 16))  # version, guest SVN, policy
    struct.pack_into("<I", r, 0x34, 1)  # signature algorithm: ECDSA P-384 with SHA-384
    return bytes(r)


def hcl_report(report):
    runtime = json.dumps({"keys": [{"kid": "HCLAkPub", "kty": "RSA", "e": "AQAB",
                                    "n": base64.urlsafe_b64encode(bytes(256)).decode().rstrip("=")}],
                          "vm-configuration": {"tpm-enabled": True}}).encode()
    out = bytearray(b"HCLA" + bytes(0x20 - 4)) + report + bytes(0x4C0 - 0x20 - len(report))
    out += struct.pack("<IIIII", len(runtime) + 20, 1, 2, 1, len(runtime)) + runtime
    return bytes(out)


snp_doc = {"version": 1, "variant": "sev-snp",
           "snp": {"report": base64.b64encode(snp_report()).decode(),
                   "vcek": base64.b64encode(b"not a certificate").decode(),
                   "chain": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()}}
write("fuzz-evidence", "sev-snp.json", json.dumps(snp_doc, separators=(",", ":")).encode())
write("fuzz-evidence", "sim-snp.json",
      json.dumps(dict(snp_doc, variant="sim-snp"), separators=(",", ":")).encode())
write("fuzz-evidence", "azure-sev-snp.json", json.dumps({
    "version": 1, "variant": "azure-sev-snp",
    "snp": {"hclReport": base64.b64encode(hcl_report(snp_report())).decode()},
    "tpm": dict(evidence["tpm"])}, separators=(",", ":")).encode())
