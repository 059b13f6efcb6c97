#!/usr/bin/env python3
"""Fake peers for the proxy's integration tests (stdlib only, 127.0.0.1 and unix sockets only).

  fake.py upstream --unix PATH --tcp PORT [--tcp PORT2] --log FILE
      a small HTTP/1.1 app standing in for the sandbox agent (unix socket) and user ports (TCP):
      /echo /upload /download /sse /ws /halfclose /bad/<kind> /slow /nothing /status/<n> /conn
  fake.py api --port PORT --token TOKEN --log FILE --store-tool BIN --db DB [--wake-delay S]
             [--wake-mode ok|refuse|ignore]
      the api's internal routes the proxy calls: /internal/v1/sandboxes/{id}/wake, /activity
  fake.py ws --port PORT --host HOST [--header 'Name: v']...   WebSocket echo round trips
  fake.py raw --port PORT --file F                              send raw bytes, print the reply
  fake.py sse --port PORT --host HOST --path P [--header ..]    time to first event vs. end
  fake.py idle --port PORT --host HOST --count N --pidfile F    hold N idle keep-alive conns
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

LOG_LOCK = threading.Lock()
BLOCK = hashlib.sha256(b"hutch").digest() * 2048  # 64 KiB of fixed bytes


def log(path, line):
    with LOG_LOCK, open(path, "a") as f:
        f.write(line + "\n")


class Reader:
    """Buffered reader over a socket that never reads past what it is asked for."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            return False
        self.buf += d
        return True

    def line(self, limit=65536):
        while b"\n" not in self.buf:
            if len(self.buf) > limit or not self.fill():
                return None
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def chunks(self, n):
        """Yields up to n bytes as they arrive."""
        while n > 0:
            if not self.buf and not self.fill():
                raise EOFError
            d = self.buf[:n]
            self.buf = self.buf[len(d):]
            n -= len(d)
            yield d


def read_head(r):
    line = r.line()
    if not line:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3:
        return None
    headers = []
    while True:
        h = r.line()
        if h is None:
            return None
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return parts[0], parts[1], parts[2], headers


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def body_iter(r, headers):
    cl = hget(headers, "content-length")
    if hget(headers, "transfer-encoding"):
        while True:
            size = int(r.line().split(b";")[0].strip(), 16)
            if size == 0:
                while r.line() not in (b"\r\n", b"\n"):
                    pass
                return
            yield from r.chunks(size)
            r.exact(2)
    elif cl:
        yield from r.chunks(int(cl))


def send(sock, status, body=b"", ctype="application/json", extra=()):
    head = "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (status, ctype, len(body))
    for k, v in extra:
        head += "%s: %s\r\n" % (k, v)
    sock.sendall(head.encode() + b"\r\n" + body)


BAD = {
    "clte": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "2cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nhi",
    "te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "2te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "garbage": b"this is not http\r\n\r\n",
    "short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
    "name": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi",
    "101": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n",
}


class App:
    def __init__(self, logpath, name):
        self.logpath = logpath
        self.name = name

    def handle_conn(self, sock):
        r = Reader(sock)
        n = 0
        drop_next = False
        try:
            while True:
                head = read_head(r)
                if not head:
                    return
                n += 1
                method, target, _, headers = head
                log(self.logpath, "REQ %s %s %s" % (self.name, method, target))
                if drop_next:
                    log(self.logpath, "DROPPED %s" % target)
                    return
                drop_next = "drop_next=1" in target
                if not self.route(sock, r, method, target, headers, n):
                    return
        except (OSError, EOFError, ValueError):
            return
        finally:
            log(self.logpath, "CLOSED %s" % self.name)
            sock.close()

    def route(self, sock, r, method, target, headers, n):
        path, _, q = target.partition("?")
        qs = dict(urllib.parse.parse_qsl(q))
        if path == "/ws":
            return self.ws(sock, r, headers)
        if path.startswith("/bad/"):
            for _ in body_iter(r, headers):
                pass
            sock.sendall(BAD[path[5:]])
            return False
        if path == "/nothing":
            return False
        if path == "/halfclose":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close")
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
            return False
        if path == "/slow":
            time.sleep(float(qs.get("delay", "1")))
        if path == "/upload":
            h = hashlib.sha256()
            total = 0
            for d in body_iter(r, headers):
                h.update(d)
                total += len(d)
            send(sock, 200, json.dumps({"bytes": total, "sha256": h.hexdigest()}).encode())
            return True
        body = b"".join(body_iter(r, headers))
        if path == "/download":
            return self.download(sock, qs)
        if path == "/sse":
            return self.sse(sock, qs)
        if path.startswith("/status/"):
            code = int(path[8:])
            if code in (204, 304):
                sock.sendall(b"HTTP/1.1 %d X\r\nX-Status: %d\r\n\r\n" % (code, code))
            else:
                send(sock, code, b"status")
            return True
        if method == "HEAD":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n")
            return True
        info = {"served_by": self.name, "method": method, "target": target, "conn_requests": n,
                "headers": {k.lower(): v for k, v in headers}, "body_len": len(body)}
        extra = [("Set-Cookie", "app=1")]
        if path == "/cors":
            extra.append(("Access-Control-Allow-Origin", "https://app.example"))
        send(sock, 200, json.dumps(info).encode(), extra=extra)
        return hget(headers, "connection") != "close"

    def download(self, sock, qs):
        total = int(qs.get("bytes", "1048576"))
        chunked = qs.get("chunked") == "1"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % total
        sock.sendall(head)
        sent = 0
        try:
            while sent < total:
                d = BLOCK[: min(len(BLOCK), total - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(d), d) if chunked else d)
                sent += len(d)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            log(self.logpath, "ABORTED download after %d" % sent)
            raise
        return True

    def sse(self, sock, qs):
        n, delay = int(qs.get("n", "3")), float(qs.get("delay", "0.5"))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(n):
            ev = b'data: {"i":%d}\n\n' % i
            sock.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
            time.sleep(delay)
        sock.sendall(b"0\r\n\r\n")
        return True

    def ws(self, sock, r, headers):
        key = hget(headers, "sec-websocket-key")
        acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        sock.sendall(ws_frame(1, b"hello from " + self.name.encode(), False))
        while True:
            op, payload = ws_read(r)
            if op is None:
                return False
            if op == 8:
                sock.sendall(ws_frame(8, payload[:2], False))
                return False
            sock.sendall(ws_frame(op, payload, False))


def ws_frame(op, payload, mask):
    n = len(payload)
    head = bytes([0x80 | op])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def ws_read(r):
    h = r.exact(2)
    if not h:
        return None, None
    op, n = h[0] & 0x0F, h[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", r.exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", r.exact(8))[0]
    key = r.exact(4) if h[1] & 0x80 else None
    p = r.exact(n) if n else b""
    if key:
        p = bytes(b ^ key[i % 4] for i, b in enumerate(p))
    return op, p


def serve_forever(lsock, app):
    while True:
        c, _ = lsock.accept()
        threading.Thread(target=app.handle_conn, args=(c,), daemon=True).start()


def cmd_upstream(a):
    threads = []
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(a.unix)
        s.listen(512)
        threads.append((s, App(a.log, "agent")))
    for p in a.tcp or []:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        s.listen(512)
        threads.append((s, App(a.log, "tcp:%d" % p)))
    for s, app in threads:
        threading.Thread(target=serve_forever, args=(s, app), daemon=True).start()
    log(a.log, "READY")
    while True:
        time.sleep(3600)


# ---- the fake api ----

def cmd_api(a):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(64)

    def wake_later(sid):
        time.sleep(a.wake_delay)
        subprocess.run([a.store_tool, a.db, "set", sid, "status", "running"], check=False)

    def conn(c):
        r = Reader(c)
        try:
            while True:
                head = read_head(r)
                if not head:
                    return
                method, target, _, headers = head
                body = b"".join(body_iter(r, headers))
                authz = hget(headers, "authorization")
                if authz != "Bearer " + a.token:
                    log(a.log, "BADTOKEN %s %s" % (target, authz))
                    send(c, 401, b'{"error":"bad token","code":"UNAUTHENTICATED"}')
                    continue
                if target == "/internal/v1/activity":
                    log(a.log, "ACTIVITY " + body.decode())
                    send(c, 200, b"{}")
                elif target.startswith("/internal/v1/sandboxes/") and target.endswith("/wake"):
                    sid = target.split("/")[4]
                    log(a.log, "WAKE " + sid)
                    if a.wake_mode == "refuse":
                        send(c, 404, b'{"error":"no","code":"SANDBOX_NOT_FOUND"}')
                        continue
                    if a.wake_mode == "ok":
                        threading.Thread(target=wake_later, args=(sid,), daemon=True).start()
                    send(c, 202, b"{}")
                else:
                    send(c, 404, b"{}")
        except (OSError, ValueError):
            return
        finally:
            c.close()

    log(a.log, "READY")
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()


# ---- clients ----

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def request_head(host, path, headers, extra=""):
    h = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (path, host)
    for x in headers:
        h += x + "\r\n"
    return (h + extra + "\r\n").encode()


def cmd_ws(a):
    s = connect(a.port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(request_head(a.host, a.path, a.header,
                           "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Key: %s\r\n" % key))
    r = Reader(s)
    status = r.line().decode().strip()
    while r.line() not in (b"\r\n", b"\n"):
        pass
    print(status)
    if " 101 " not in status:
        return 1
    op, p = ws_read(r)
    print("greeting", op, p.decode())
    big = os.urandom(200000)
    for msg in (b"one", b"two" * 100, big):
        s.sendall(ws_frame(2, msg, True))
        op, p = ws_read(r)
        if p != msg:
            print("echo mismatch", len(p), len(msg))
            return 1
    print("echo ok")
    s.sendall(ws_frame(8, struct.pack(">H", 1000), True))
    op, p = ws_read(r)
    print("close", op)
    s.settimeout(5)
    rest = s.recv(10)
    print("eof", rest == b"")
    return 0


def cmd_raw(a):
    s = connect(a.port)
    with open(a.file, "rb") as f:
        s.sendall(f.read())
    s.settimeout(a.timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    sys.stdout.write(out.decode("latin-1"))
    return 0


def cmd_sse(a):
    s = connect(a.port)
    t0 = time.time()
    s.sendall(request_head(a.host, a.path, a.header, "Accept: text/event-stream\r\n"))
    r = Reader(s)
    status = r.line().decode().strip()
    headers = []
    while True:
        h = r.line()
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode().partition(":")
        headers.append((k.strip(), v.strip()))
    first = None
    events = 0
    for chunk in body_iter(r, headers):
        if b"data:" in chunk:
            events += chunk.count(b"data:")
            if first is None:
                first = time.time() - t0
    total = time.time() - t0
    print(json.dumps({"status": status, "first": first, "total": total, "events": events,
                      "ctype": hget(headers, "content-type")}))
    return 0


def cmd_slowread(a):
    """Reads a download slowly: 1 MiB, then a pause (the test samples the proxy's memory), then
    the rest; prints the total and its sha256."""
    s = connect(a.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(request_head(a.host, a.path, a.header))
    r = Reader(s)
    r.line()
    hs = []
    while True:
        h = r.line()
        if h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode().partition(":")
        hs.append((k.strip(), v.strip()))
    h = hashlib.sha256()
    total = 0
    paused = False
    for d in body_iter(r, hs):
        h.update(d)
        total += len(d)
        if not paused and total >= 1 << 20:
            paused = True
            with open(a.pidfile, "w") as f:
                f.write("paused")
            time.sleep(a.hold)
    print(total, h.hexdigest())
    return 0


def cmd_blackhole(a):
    """A listener whose accept queue is full, so that further connects hang (SYNs dropped)."""
    s = socket.socket()
    s.bind(("127.0.0.1", a.port))
    s.listen(0)
    held = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", a.port))
        except BlockingIOError:
            pass
        held.append(c)
    print("READY", flush=True)
    time.sleep(3600)


def cmd_idle(a):
    socks = []
    for _ in range(a.count):
        s = connect(a.port)
        s.sendall(request_head(a.host, "/echo", a.header))
        socks.append(s)
    ok = 0
    for s in socks:
        r = Reader(s)
        st = r.line()
        hs = []
        while True:
            h = r.line()
            if h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode().partition(":")
            hs.append((k.strip(), v.strip()))
        b"".join(body_iter(r, hs))
        if st and st.startswith(b"HTTP/1.1 "):
            ok += 1
    print("ok", ok)
    sys.stdout.flush()
    with open(a.pidfile, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(a.hold)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upstream")
    u.add_argument("--unix")
    u.add_argument("--tcp", type=int, action="append")
    u.add_argument("--log", required=True)
    api = sub.add_parser("api")
    api.add_argument("--port", type=int, required=True)
    api.add_argument("--token", required=True)
    api.add_argument("--log", required=True)
    api.add_argument("--store-tool", required=True)
    api.add_argument("--db", required=True)
    api.add_argument("--wake-delay", type=float, default=0.3)
    api.add_argument("--wake-mode", default="ok")
    for name in ("ws", "sse", "idle", "slowread"):
        c = sub.add_parser(name)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--host", required=True)
        c.add_argument("--path", default="/ws")
        c.add_argument("--header", action="append", default=[])
        c.add_argument("--count", type=int, default=100)
        c.add_argument("--hold", type=float, default=30)
        c.add_argument("--pidfile", default="/dev/null")
    sub.add_parser("pattern").add_argument("--bytes", type=int, required=True)
    sub.add_parser("blackhole").add_argument("--port", type=int, required=True)
    raw = sub.add_parser("raw")
    raw.add_argument("--port", type=int, required=True)
    raw.add_argument("--file", required=True)
    raw.add_argument("--timeout", type=float, default=3)
    a = p.parse_args()
    if a.cmd == "pattern":
        n = a.bytes
        while n > 0:
            sys.stdout.buffer.write(BLOCK[: min(n, len(BLOCK))])
            n -= len(BLOCK)
        return
    fn = {"upstream": cmd_upstream, "api": cmd_api, "ws": cmd_ws, "raw": cmd_raw,
          "sse": cmd_sse, "idle": cmd_idle,
          "slowread": cmd_slowread, "blackhole": cmd_blackhole}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
