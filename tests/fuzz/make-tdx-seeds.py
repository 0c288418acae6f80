#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes synthetic seed inputs for the TDX fuzz targets (no copies of shared test data): a quote
v4 and v5 under a throw-away chain with a real SGX extension, its certification data, the SGX
extension alone, TCB info and QE identity documents, and a CCEL table with its event log.
Run from the project root: /usr/bin/python3 tests/fuzz/make-tdx-seeds.py"""
import datetime
import hashlib
import json
import struct
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

C = Path("tests/fuzz/corpus")
SGX = bytes([0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01])


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    if n < 0x100:
        return bytes([tag, 0x81, n]) + body
    return bytes([tag, 0x82, n >> 8, n & 0xFF]) + body


def oid(*arcs):
    return tlv(0x06, SGX + bytes(arcs))


def integer(v, tag=0x02):
    b = v.to_bytes((v.bit_length() + 8) // 8 or 1, "big")
    return tlv(tag, b)


def sgx_extension():
    tcb = b"".join(tlv(0x30, oid(2, k) + integer(5 if k < 3 else 0)) for k in range(1, 17))
    tcb += tlv(0x30, oid(2, 17) + integer(11)) + tlv(0x30, oid(2, 18) + tlv(0x04, bytes([5, 5]) + bytes(14)))
    items = [oid(1) + tlv(0x04, bytes(16)), oid(2) + tlv(0x30, tcb), oid(3) + tlv(0x04, bytes(2)),
             oid(4) + tlv(0x04, bytes.fromhex("00906ed50000")), oid(5) + integer(0, 0x0A)]
    return tlv(0x30, b"".join(tlv(0x30, i) for i in items))


def cert(cn, key, issuer_cn, issuer_key, ext=None):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(datetime.datetime(2020, 1, 1)).not_valid_after(datetime.datetime(2040, 1, 1)))
    if ext:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.840.113741.1.13.1"), ext),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def raw_sig(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def quote(version):
    root_k, ca_k, pck_k, ak = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    root = cert("Test SGX Root CA", root_k, "Test SGX Root CA", root_k)
    ca = cert("Intel SGX PCK Platform CA", ca_k, "Test SGX Root CA", root_k)
    pck = cert("Intel SGX PCK Certificate", pck_k, "Intel SGX PCK Platform CA", ca_k, sgx_extension())
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pck, ca, root))
    header = struct.pack("<HHIHH", version, 2, 0x81, 0, 0) + bytes.fromhex(
        "939a7233f79c4ca9940a0db3957f0607") + bytes(20)
    body = bytes([6, 1, 7]) + bytes(13) + bytes(48 * 2) + struct.pack("<QQQ", 0, 1 << 28, 0xE7)
    body += bytes(48 * 8) + bytes(64)
    if version == 5:
        body += bytes(16 + 48)
        header += struct.pack("<HI", 3, len(body))
    pub = ak.public_key().public_bytes(serialization.Encoding.X962,
                                       serialization.PublicFormat.UncompressedPoint)[1:]
    auth = bytes(range(32))
    qe = bytearray(384)
    qe[320:352] = hashlib.sha256(pub + auth).digest()
    qe[256:260] = struct.pack("<HH", 2, 4)
    inner = bytes(qe) + raw_sig(pck_k, bytes(qe)) + struct.pack("<H", 32) + auth
    inner += struct.pack("<HI", 5, len(pem)) + pem
    certdata = struct.pack("<HI", 6, len(inner)) + inner
    sigdata = raw_sig(ak, header + body) + pub + certdata
    return header + body + struct.pack("<I", len(sigdata)) + sigdata, certdata


def signed(name, inner):
    key = ec.generate_private_key(ec.SECP256R1())
    text = json.dumps(inner, separators=(",", ":"))
    sig = raw_sig(key, text.encode()).hex()
    return ('{"%s":%s,"signature":"%s"}' % (name, text, sig)).encode()


def comps(svns):
    return [{"svn": s} for s in svns] + [{"svn": 0}] * (16 - len(svns))


def tcb_info():
    return signed("tcbInfo", {
        "id": "TDX", "version": 3, "issueDate": "2029-12-01T00:00:00Z",
        "nextUpdate": "2030-02-01T00:00:00Z", "fmspc": "00906ED50000", "pceId": "0000",
        "tcbType": 0, "tcbEvaluationDataNumber": 17,
        "tdxModule": {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8},
        "tdxModuleIdentities": [{"id": "TDX_01", "mrsigner": "00" * 48, "attributes": "00" * 8,
                                 "attributesMask": "FF" * 8, "tcbLevels": [
                                     {"tcb": {"isvsvn": 4}, "tcbDate": "2029-01-01T00:00:00Z",
                                      "tcbStatus": "UpToDate"}]}],
        "tcbLevels": [
            {"tcb": {"sgxtcbcomponents": comps([5, 5]), "pcesvn": 11,
                     "tdxtcbcomponents": comps([5, 1, 7])},
             "tcbDate": "2029-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
            {"tcb": {"sgxtcbcomponents": comps([3, 3]), "pcesvn": 11,
                     "tdxtcbcomponents": comps([0, 0, 5])},
             "tcbDate": "2028-01-01T00:00:00Z", "tcbStatus": "OutOfDate",
             "advisoryIDs": ["INTEL-SA-00001"]}]})


def qe_identity():
    return signed("enclaveIdentity", {
        "id": "TD_QE", "version": 2, "issueDate": "2029-12-01T00:00:00Z",
        "nextUpdate": "2030-02-01T00:00:00Z", "tcbEvaluationDataNumber": 17,
        "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
        "attributes": "11" + "00" * 15, "attributesMask": "FBFFFFFFFFFFFFFF" + "00" * 8,
        "mrsigner": "DC" * 32, "isvprodid": 2,
        "tcbLevels": [{"tcb": {"isvsvn": 4}, "tcbDate": "2029-01-01T00:00:00Z",
                       "tcbStatus": "UpToDate"}]})


def ccel():
    table = b"CCEL" + struct.pack("<I", 56) + bytes([1, 0]) + b"OEMID " + b"OEMTABLE" + struct.pack(
        "<I", 1) + b"TEST" + struct.pack("<I", 1) + bytes([2, 0, 0, 0]) + struct.pack("<QQ", 4096, 0)
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 1) + struct.pack("<HH", 0x000C, 48) + b"\0"
    log = struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec

    def ev(mr, typ, data):
        return (struct.pack("<III", mr, typ, 1) + struct.pack("<H", 0x0C) + hashlib.sha384(data).digest()
                + struct.pack("<I", len(data)) + data)

    log += ev(1, 0x80000001, b"variable") + ev(2, 0x0D, b"kernel cmdline\0") + ev(3, 0x80000003, b"image")
    log += ev(4, 0x0D, b"runtime") + ev(1, 4, bytes(4))
    log += b"\xff" * (4096 - len(log))
    return table + log


def write(target, name, data):
    d = C / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


q4, certdata = quote(4)
q5, _ = quote(5)
write("fuzz-tdx-quote", "v4.bin", q4 + bytes(16))
write("fuzz-tdx-quote", "v5.bin", q5)
write("fuzz-tdx-certdata", "certdata.bin", b"\0" + certdata)
write("fuzz-tdx-certdata", "sgx-extension.der", b"\1" + sgx_extension())
write("fuzz-tdx-tcb-info", "tcb_info.json", tcb_info())
write("fuzz-tdx-qe-identity", "qe_identity.json", qe_identity())
write("fuzz-tdx-ccel", "ccel.bin", ccel())

# The evidence and policy parsers' tdx members (their own targets, shared corpora).
b64 = __import__("base64").b64encode
write("fuzz-evidence", "tdx.json", json.dumps({
    "version": 1, "variant": "tdx",
    "tdx": {"quote": b64(q4).decode(), "eventLog": b64(ccel()[56:]).decode(),
            "ccelTable": b64(ccel()[:56]).decode(),
            "collateral": {"tcbInfo": b64(tcb_info()).decode(), "tcbInfoIssuerChain": b64(b"x").decode(),
                           "qeIdentity": b64(qe_identity()).decode(),
                           "qeIdentityIssuerChain": b64(b"x").decode(), "pckCrl": b64(b"x").decode(),
                           "rootCaCrl": b64(b"x").decode()}}}, separators=(",", ":")).encode())
write("fuzz-policy", "tdx.json", json.dumps({
    "version": 1, "variant": "tdx",
    "tdx": {"mrTd": ["42" * 48], "rtmr1": ["17" * 48], "xfam": "0x00000000000000e7",
            "acceptedTcbStatuses": ["UpToDate", "SWHardeningNeeded"], "allowedAdvisoryIds": ["INTEL-SA-00960"],
            "minTcbEvaluationDataNumber": 17}}, separators=(",", ":")).encode())
# A TDX node's evidence with its TPM identity quote beside the quote (docs/join.md, "Members
# without a TPM attestation key"): the tpm member of make-seeds.py's vtpm.json, event log left out.
vtpm = json.loads((C / "fuzz-evidence" / "vtpm.json").read_text())
tdx_doc = json.loads((C / "fuzz-evidence" / "tdx.json").read_text())
tdx_doc["variant"] = "sim-tdx"
tdx_doc["tpm"] = {k: v for k, v in vtpm["tpm"].items() if k != "eventLog"}
write("fuzz-evidence", "sim-tdx-identity.json", json.dumps(tdx_doc, separators=(",", ":")).encode())
