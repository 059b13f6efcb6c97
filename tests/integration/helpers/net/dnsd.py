#!/usr/bin/env python3
"""A tiny authoritative DNS server for the network tests (UDP and TCP, stdlib only).

usage: dnsd.py ZONE ADDR [PORT]
ZONE lines:  NAME TTL A ADDR [ADDR...]   or   NAME TTL CNAME TARGET
The zone file is re-read whenever it changes, so a test changes answers by rewriting it.
Unknown names answer NXDOMAIN. Every query is appended to ZONE.log as "proto name".
"""
import os
import socket
import socketserver
import struct
import sys
import threading

ZONE, ADDR = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 53
_cache = {"mtime": None, "zone": {}}
_lock = threading.Lock()


def zone():
    with _lock:
        st = os.stat(ZONE)
        if _cache["mtime"] != (st.st_mtime_ns, st.st_size):
            z = {}
            for line in open(ZONE):
                f = line.split()
                if len(f) >= 4:
                    z[f[0].lower().rstrip(".")] = (int(f[1]), f[2].upper(), f[3:])
            _cache.update(mtime=(st.st_mtime_ns, st.st_size), zone=z)
        return _cache["zone"]


def name_wire(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def answer(q, proto):
    if len(q) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", q[:6])
    off, labels = 12, []
    while q[off] != 0:
        n = q[off]
        labels.append(q[off + 1:off + 1 + n].decode(errors="replace"))
        off += 1 + n
    qtype = struct.unpack(">H", q[off + 1:off + 3])[0]
    question = q[12:off + 5]
    name = ".".join(labels).lower()
    with open(ZONE + ".log", "a") as log:
        log.write("%s %s\n" % (proto, name))
    z, rrs, cur, rcode = zone(), [], name, 0
    for _ in range(8):
        if cur not in z:
            rcode = 3 if not rrs else 0
            break
        ttl, kind, data = z[cur]
        if kind == "CNAME":
            rrs.append(name_wire(cur) + struct.pack(">HHIH", 5, 1, ttl, len(name_wire(data[0])))
                       + name_wire(data[0]))
            cur = data[0].lower()
            continue
        if qtype == 1:
            for a in data:
                rrs.append(name_wire(cur) + struct.pack(">HHIH", 1, 1, ttl, 4)
                           + socket.inet_aton(a))
        break
    hdr = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1, len(rrs), 0, 0)
    return hdr + question + b"".join(rrs)


class UDP(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        a = answer(data, "udp")
        if a:
            sock.sendto(a, self.client_address)


class TCP(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            h = self.rfile.read(2)
            if len(h) < 2:
                return
            q = self.rfile.read(struct.unpack(">H", h)[0])
            a = answer(q, "tcp")
            if a:
                self.wfile.write(struct.pack(">H", len(a)) + a)


class TS(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


udp = socketserver.ThreadingUDPServer((ADDR, PORT), UDP)
tcp = TS((ADDR, PORT), TCP)
threading.Thread(target=tcp.serve_forever, daemon=True).start()
print("ready", flush=True)
udp.serve_forever()
