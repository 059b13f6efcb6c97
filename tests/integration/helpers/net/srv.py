#!/usr/bin/env python3
"""TCP servers for the network tests: srv.py ADDR:PORT... ([V6ADDR]:PORT for IPv6, udp:ADDR:PORT for a
UDP sink that prints "udp ADDR PEER DATA"). Each connection gets "hello ADDR"
and then an echo of every line. Accepted peers are printed ("accept ADDR PEER")."""
import socket
import socketserver
import sys
import threading


class H(socketserver.StreamRequestHandler):
    def handle(self):
        me = self.server.server_address[0]
        print("accept %s %s" % (me, self.client_address[0]), flush=True)
        try:
            self.wfile.write(("hello %s\n" % me).encode())
            for line in self.rfile:
                self.wfile.write(line)
        except OSError:
            pass


class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


class S6(S):
    address_family = socket.AF_INET6


class U(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request[0].decode(errors="replace").strip()
        print("udp %s %s %s" % (self.server.server_address[0], self.client_address[0], data),
              flush=True)


servers = []
for spec in sys.argv[1:]:
    if spec.startswith("udp:"):
        addr, port = spec[4:].rsplit(":", 1)
        s = socketserver.UDPServer((addr, int(port)), U)
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        continue
    addr, port = spec.rsplit(":", 1)
    six = addr.startswith("[")
    s = (S6 if six else S)((addr.strip("[]"), int(port)), H)
    servers.append(s)
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
