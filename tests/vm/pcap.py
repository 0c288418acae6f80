# SPDX-License-Identifier: Apache-2.0
"""A bounded reader of the classic pcap files tcpdump -w writes (Ethernet link type): each
frame as a Packet with what the mesh tests ask of it (ARP, IPv4 addresses, protocol, ports).
The files are the tests' own captures, read with every length checked all the same."""
import ipaddress
import struct
from dataclasses import dataclass

LINKTYPE_ETHERNET = 1


class PcapError(Exception):
    pass


@dataclass
class Packet:
    data: bytes                 # the frame as captured
    ethertype: int
    src: str = None             # IPv4 only
    dst: str = None
    proto: int = None           # 6 TCP, 17 UDP, ...; IPv6: the first next header
    sport: int = None
    dport: int = None
    payload_len: int = 0        # the transport payload's length (TCP/UDP)

    def addrs(self):
        return {self.src, self.dst}

    def ports(self):
        return {self.sport, self.dport}


def read(path):
    b = open(path, "rb").read()
    if len(b) < 24:
        raise PcapError(f"{path}: {len(b)} bytes, shorter than a pcap header")
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise PcapError(f"{path}: not a pcap file (magic {magic.hex()})")
    (linktype,) = struct.unpack(e + "I", b[20:24])
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{path}: link type {linktype}, not Ethernet")
    out, off = [], 24
    while off < len(b):
        if len(b) - off < 16:
            raise PcapError(f"{path}: a record header cut short at byte {off}")
        _, _, incl, _ = struct.unpack(e + "IIII", b[off:off + 16])
        off += 16
        if incl > len(b) - off:
            raise PcapError(f"{path}: a record of {incl} bytes runs past the end at byte {off}")
        out.append(parse(b[off:off + incl]))
        off += incl
    return out


def parse(f):
    if len(f) < 14:
        return Packet(f, 0)
    (etype,) = struct.unpack(">H", f[12:14])
    p = Packet(f, etype)
    ip = f[14:]
    if etype == 0x86DD and len(ip) >= 40:
        p.proto = ip[6]  # the first next header
        return p
    if etype != 0x0800 or len(ip) < 20:
        return p
    ihl = (ip[0] & 0x0F) * 4
    (total,) = struct.unpack(">H", ip[2:4])
    if ihl < 20 or len(ip) < ihl:
        return p
    p.proto = ip[9]
    p.src, p.dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
    l4 = ip[ihl:min(total, len(ip))]
    if p.proto in (6, 17) and len(l4) >= 4:
        p.sport, p.dport = struct.unpack(">HH", l4[:4])
        if p.proto == 17:
            p.payload_len = max(0, len(l4) - 8)
        elif len(l4) >= 13:
            p.payload_len = max(0, len(l4) - (l4[12] >> 4) * 4)
    return p
