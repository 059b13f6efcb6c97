#!/usr/bin/env python3
"""TCP clients for the network tests.
  cli.py connect ADDR PORT [TIMEOUT] [SRC]  one connection: exit 0 after "hello", 1 otherwise
  cli.py loop OUT SECONDS ADDR:PORT...      new connections every 50 ms, "T TARGET ok|fail" lines
  cli.py udp ADDR PORT DATA [SRC]           one datagram
  cli.py hold OUT SECONDS ADDR:PORT         one connection, a line echoed every 100 ms,
                                            "T ok|fail" lines (never reconnects)
"""
import socket
import sys
import time


def connect(addr, port, timeout, src=None):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((addr, int(port)))
    f = s.makefile("rb")
    line = f.readline()
    if not line.startswith(b"hello"):
        raise OSError("no hello")
    return s, f, line.decode().strip()


def cmd_connect(a):
    try:
        _, _, hello = connect(a[0], a[1], float(a[2]) if len(a) > 2 else 1.0,
                              a[3] if len(a) > 3 else None)
        print(hello)
        return 0
    except OSError as e:
        print("fail: %s" % e)
        return 1


def cmd_loop(a):
    out, end = open(a[0], "a", buffering=1), time.time() + float(a[1])
    while time.time() < end:
        for t in a[2:]:
            addr, port = t.rsplit(":", 1)
            start = time.time()
            try:
                s, _, _ = connect(addr, port, 0.3)
                s.close()
                out.write("%.3f %.3f %s ok\n" % (start, time.time(), t))
            except OSError:
                out.write("%.3f %.3f %s fail\n" % (start, time.time(), t))
        time.sleep(0.05)
    return 0


def cmd_hold(a):
    out, end = open(a[0], "a", buffering=1), time.time() + float(a[1])
    addr, port = a[2].rsplit(":", 1)
    try:
        s, f, _ = connect(addr, port, 1.0)
    except OSError:
        out.write("%.3f connect fail\n" % time.time())
        return 1
    s.settimeout(0.5)
    n, buf = 0, b""  # the server sends nothing after hello until asked
    while time.time() < end:
        n += 1
        start, want = time.time(), b"ping %d\n" % n
        try:
            s.sendall(want)
            while want not in buf:
                d = s.recv(65536)
                if not d:
                    raise OSError("closed")
                buf += d
            buf = buf.split(want, 1)[1]
            ok = True
        except OSError:
            ok = False
        out.write("%.3f %.3f %s\n" % (start, time.time(), "ok" if ok else "fail"))
        time.sleep(0.1)
    return 0


def cmd_udp(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if len(a) > 3:
        s.bind((a[3], 0))
    s.sendto(a[2].encode(), (a[0], int(a[1])))
    return 0


sys.exit({"udp": cmd_udp, "connect": cmd_connect, "loop": cmd_loop, "hold": cmd_hold}[sys.argv[1]](sys.argv[2:]))
