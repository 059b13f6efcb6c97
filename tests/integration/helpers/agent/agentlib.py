"""Small stdlib-only clients for the hutch-agent integration tests: raw HTTP/1.1 over a unix
socket, an SSE reader, and a WebSocket client (RFC 6455, masked client frames). Checks print
PASS:/FAIL: lines like tests/integration/lib.sh."""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

FAILS = 0


def check(desc, ok, detail=""):
    global FAILS
    if ok:
        print("PASS: " + desc)
    else:
        FAILS += 1
        print("FAIL: " + desc + ((" (" + str(detail) + ")") if detail != "" else ""))
    sys.stdout.flush()
    return ok


def done():
    sys.exit(1 if FAILS else 0)


def connect(sock_path, timeout=10.0, rcvbuf=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(sock_path)
    return s


def send_request(s, method, path, body=b"", headers=None):
    if isinstance(body, str):
        body = body.encode()
    h = {"Host": "agent"}
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = "%s /api/v1%s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    s.sendall(head.encode() + body)


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\n")
        l, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return l

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def head(self):
        status = self.line().decode()
        hdrs = {}
        while True:
            l = self.line().decode().strip()
            if not l:
                break
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        return int(status.split()[1]), hdrs


def request(sock_path, method, path, body=b"", headers=None):
    """One request; returns (status, headers, body bytes)."""
    s = connect(sock_path)
    send_request(s, method, path, body, dict(headers or {}, Connection="close"))
    r = Reader(s)
    st, h = r.head()
    data = b""
    if "content-length" in h:
        data = r.exact(int(h["content-length"]))
    elif h.get("transfer-encoding") == "chunked":
        data = b"".join(chunks(r))
    s.close()
    return st, h, data


def chunks(r):
    while True:
        n = int(r.line().strip(), 16)
        if n == 0:
            r.line()
            return
        yield r.exact(n)
        r.exact(2)


class SSE:
    """Reads server-sent events from a chunked response."""

    def __init__(self, sock_path, method, path, body=b"", rcvbuf=None):
        self.s = connect(sock_path, rcvbuf=rcvbuf)
        send_request(self.s, method, path, body, {"Accept": "text/event-stream"})
        self.r = Reader(self.s)
        self.status, self.headers = self.r.head()
        self.it = chunks(self.r) if self.status == 200 else iter(())
        self.text = ""
        self.comments = []
        self.ended = False

    def events(self):
        """Yields (event name or None, data) until the response ends."""
        while True:
            while "\n\n" not in self.text:
                try:
                    self.text += next(self.it).decode()
                except StopIteration:
                    self.ended = True
                    return
            block, self.text = self.text.split("\n\n", 1)
            name, data = None, []
            for l in block.split("\n"):
                if l.startswith(":"):
                    self.comments.append(l)
                elif l.startswith("event: "):
                    name = l[7:]
                elif l.startswith("data: "):
                    data.append(l[6:])
            if data:
                yield name, "\n".join(data)

    def close(self):
        self.s.close()


OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class WS:
    """A WebSocket client over the agent's unix socket."""

    def __init__(self, sock_path, path, headers=None):
        self.s = connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
             "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
        h.update(headers or {})
        send_request(self.s, "GET", path, b"", h)
        self.r = Reader(self.s)
        self.status, self.headers = self.r.head()
        self.body = b""
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            self.body = self.r.exact(n)
            return
        want = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.accept_ok = self.headers.get("sec-websocket-accept") == want
        self.close_code = None
        self.close_reason = None

    def send(self, opcode, payload=b"", fin=True):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.s.sendall(hdr + mask + masked)

    def recv_frame(self):
        b0, b1 = self.r.exact(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self.r.exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.r.exact(8))[0]
        if b1 & 0x80:
            raise ValueError("server frames must not be masked")
        return b0 & 0x0f, self.r.exact(n)

    def recv(self, timeout=10.0):
        """Next data message (opcode, payload); answers pings; returns (OP_CLOSE, payload) at
        the close and records close_code/close_reason."""
        self.s.settimeout(timeout)
        while True:
            op, p = self.recv_frame()
            if op == OP_PING:
                self.send(OP_PONG, p)
                continue
            if op == OP_CLOSE:
                self.close_code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
                self.close_reason = p[2:].decode()
                try:
                    self.send(OP_CLOSE, p[:2])
                except OSError:
                    pass
                return op, p
            return op, p

    def close(self, code=1000, reason=b""):
        try:
            self.send(OP_CLOSE, struct.pack(">H", code) + reason)
        except OSError:
            pass
        self.s.close()
