#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes synthetic seed inputs for the Azure paravisor (HCL) parsers: fuzz-azure-hcl (an HCL
report of type TDX and of type SNP, the runtime data alone) and azure-tdx evidence for
fuzz-evidence (the TDX quote of its tdx.json seed, an HCL report whose runtime data that quote
does not vouch for, the vTPM member of its vtpm.json seed), and an azure-tdx policy for fuzz-policy. No copies of
shared test data.
Run from the project root after make-seeds.py and make-tdx-seeds.py:
/usr/bin/python3 tests/fuzz/make-azure-seeds.py"""
import base64
import json
import struct
from pathlib import Path

C = Path("tests/fuzz/corpus")


def write(target, name, data):
    d = C / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def runtime_data():
    n = base64.urlsafe_b64encode(bytes([0xC5]) + bytes(255)).decode().rstrip("=")
    return json.dumps({"keys": [{"kid": "HCLAkPub", "kty": "RSA", "e": "AQAB", "n": n,
                                 "key_ops": ["sign"]}],
                       "vm-configuration": {"tpm-enabled": True, "secure-boot": True},
                       "user-data": "00" * 64}, separators=(",", ":")).encode()


def hcl_report(report_type):
    """"HCLA" header, the 1184-byte hardware report area, IGVM request data, runtime data."""
    runtime = runtime_data()
    out = bytearray(b"HCLA" + struct.pack("<III", 2, 0x4C0 + 20 + len(runtime), 2) + bytes(16))
    out += bytes(1184)
    out += struct.pack("<IIIII", 20 + len(runtime), 1, report_type, 1, len(runtime)) + runtime
    return bytes(out)


write("fuzz-azure-hcl", "tdx.bin", hcl_report(4))
write("fuzz-azure-hcl", "snp.bin", hcl_report(2))
write("fuzz-azure-hcl", "runtime.json", runtime_data())

tdx = json.loads((C / "fuzz-evidence" / "tdx.json").read_bytes())
vtpm = json.loads((C / "fuzz-evidence" / "vtpm.json").read_bytes())
tpm = {k: v for k, v in vtpm["tpm"].items() if k != "eventLog"}
for variant in ("azure-tdx", "sim-azure-tdx"):
    doc = {"version": 1, "variant": variant,
           "tdx": {"quote": tdx["tdx"]["quote"],
                   "hclReport": base64.b64encode(hcl_report(4)).decode()},
           "tpm": tpm}
    write("fuzz-evidence", variant + ".json",
          json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())

write("fuzz-policy", "azure-tdx.json", json.dumps({
    "version": 1, "variant": "azure-tdx",
    "tdx": {"mrTd": ["42" * 48], "azureParavisor": False,
            "acceptedTcbStatuses": ["UpToDate", "SWHardeningNeeded"]},
    "measurements": {"4": {"expected": "00" * 32}, "9": {"expected": "11" * 32, "warnOnly": True}}},
    separators=(",", ":")).encode())
