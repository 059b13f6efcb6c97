#!/usr/bin/env python3
"""Sends one A query and prints the addresses: dnsq.py SERVER NAME [tcp] [TIMEOUT].
Exit 0 with addresses, 2 for an error rcode (printed), 3 when nothing answered."""
import random
import socket
import struct
import sys

server, name = sys.argv[1], sys.argv[2]
tcp = len(sys.argv) > 3 and sys.argv[3] == "tcp"
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
try:
    if tcp:
        s = socket.create_connection((server, 53), timeout=timeout)
        s.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            d = s.recv(65536)
            if not d:
                raise OSError("closed")
            buf += d
        r = buf[2:]
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(q, (server, 53))
        r, _ = s.recvfrom(65536)
except OSError as e:
    print("no answer: %s" % e)
    sys.exit(3)
rid, flags, qd, an = struct.unpack(">HHHH", r[:8])
if rid != qid or flags & 0xf:
    print("rcode %d" % (flags & 0xf))
    sys.exit(2)
off = 12
for _ in range(qd):
    while r[off] != 0:
        off += 1 + r[off] if r[off] < 0xc0 else 1
        if r[off - 1] >= 0xc0:
            break
    off += 5
addrs = []
for _ in range(an):
    if r[off] >= 0xc0:
        off += 2
    else:
        while r[off] != 0:
            off += 1 + r[off]
        off += 1
    t, c, ttl, ln = struct.unpack(">HHIH", r[off:off + 10])
    off += 10
    if t == 1 and ln == 4:
        addrs.append(socket.inet_ntoa(r[off:off + 4]))
    off += ln
print(" ".join(addrs))
sys.exit(0 if addrs else 2)
