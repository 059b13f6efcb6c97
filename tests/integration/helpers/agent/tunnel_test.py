"""TCP tunnels over real WebSocket frames: echo round trips (small and 4 MiB), both close
directions, text frames, bad ports, nothing listening (101 + 1011, or 502 with --tunnel-502).
Usage: tunnel_test.py SOCKET main|strict"""
import os
import socket
import struct
import sys
import threading
import time

from agentlib import OP_BIN, OP_CLOSE, OP_TEXT, WS, check, done, request

sock, mode = sys.argv[1], sys.argv[2]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Echo(threading.Thread):
    """Echoes every connection; records the connections' EOFs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.eofs = 0
        self.conns = []

    def run(self):
        while True:
            c, _ = self.ls.accept()
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                return
            if not d:
                self.eofs += 1
                c.close()
                return
            if d == b"bye\n":
                c.close()
                return
            c.sendall(d)


def recv_bytes(ws, n, timeout=20):
    got = b""
    while len(got) < n:
        op, p = ws.recv(timeout=timeout)
        if op != OP_BIN:
            break
        got += p
    return got


if mode == "strict":
    ws = WS(sock, "/tunnels/tcp?port=%d" % free_port())
    check("--tunnel-502: nothing listening is 502", ws.status == 502 and b"CONNECTION_REFUSED" in ws.body, ws.status)
    done()

echo = Echo()
echo.start()
ws = WS(sock, "/tunnels/tcp?port=%d" % echo.port)
check("tunnel upgrade is 101 with a valid accept", ws.status == 101 and ws.accept_ok, ws.status)
ws.send(OP_BIN, b"hello")
check("bytes round-trip through the port", recv_bytes(ws, 5) == b"hello")
blob = os.urandom(4 * 1024 * 1024)
def sender():
    for i in range(0, len(blob), 60000):
        ws.send(OP_BIN, blob[i:i + 60000])
threading.Thread(target=sender, daemon=True).start()
check("4 MiB round-trip intact (flow control both ways)", recv_bytes(ws, len(blob)) == blob)
ws.close()
time.sleep(0.3)
check("closing the WebSocket closes the TCP connection", echo.eofs >= 1, echo.eofs)

ws = WS(sock, "/tunnels/tcp?port=%d" % echo.port)
ws.send(OP_BIN, b"bye\n")
op, p = ws.recv()
check("the port closing its side closes the WebSocket with 1000", op == OP_CLOSE and ws.close_code == 1000,
      ws.close_code)

ws = WS(sock, "/tunnels/tcp?port=%d" % echo.port)
ws.send(OP_TEXT, b"text")
op, p = ws.recv()
check("text frames are rejected with 1003", op == OP_CLOSE and ws.close_code == 1003, ws.close_code)

ws = WS(sock, "/tunnels/tcp?port=%d" % echo.port)
ws.send(OP_BIN, b"ping-me")
ws.send(9, b"p")
frames = []
while len(frames) < 2:
    op, p = ws.recv_frame()
    frames.append((op, p))
check("pings are answered", (10, b"p") in frames and (OP_BIN, b"ping-me") in frames, frames)
ws.close()

for q in ("port=0", "port=70000", "port=abc", ""):
    ws = WS(sock, "/tunnels/tcp?" + q)
    check("bad port '%s' is 400" % q, ws.status == 400, ws.status)
st, _, _ = request(sock, "GET", "/tunnels/tcp?port=%d" % echo.port)
check("a plain GET (no upgrade) is 400", st == 400, st)

ws = WS(sock, "/tunnels/tcp?port=%d" % free_port())
check("nothing listening: the upgrade succeeds (the SDK crashes on a 502)", ws.status == 101, ws.status)
op, p = ws.recv()
check("then closes with 1011 and a reason", op == OP_CLOSE and ws.close_code == 1011 and
      "refused" in ws.close_reason, (ws.close_code, ws.close_reason))

# many tunnels at once
wss = [WS(sock, "/tunnels/tcp?port=%d" % echo.port) for _ in range(20)]
for i, w in enumerate(wss):
    w.send(OP_BIN, b"n%d" % i)
check("20 concurrent tunnels each get their own connection",
      all(recv_bytes(w, len(b"n%d" % i)) == b"n%d" % i for i, w in enumerate(wss)))
for w in wss:
    w.close()
done()
