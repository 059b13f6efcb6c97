"""PTY sessions over real WebSocket frames: create/list/get/resize/delete, token checks, the
opcode protocol (READY, DATA, RESIZE, EXIT), history on re-attach, close codes and limits.
Usage: pty_test.py SOCKET main|timing"""
import json
import re
import struct
import sys
import time

from agentlib import OP_BIN, OP_CLOSE, OP_TEXT, WS, check, done, request

sock, mode = sys.argv[1], sys.argv[2]


def api(method, path, body=None):
    st, _, data = request(sock, method, path, json.dumps(body) if body is not None else b"")
    try:
        return st, json.loads(data) if data else None
    except ValueError:
        return st, data


def attach(sid, token, via="query"):
    if via == "query":
        return WS(sock, "/pty/%s/ws?token=%s" % (sid, token))
    return WS(sock, "/pty/%s/ws" % sid, {"X-PTY-Token": token})


def read_until(ws, pattern, timeout=10):
    """Collects DATA output until pattern matches; returns (text, exit code or None)."""
    out, end = b"", time.time() + timeout
    while time.time() < end:
        op, p = ws.recv(timeout=max(0.1, end - time.time()))
        if op == OP_CLOSE:
            return out.decode(errors="replace"), "closed"
        if op == OP_BIN and p[:1] == b"\x00":
            out += p[1:]
            if re.search(pattern, out.decode(errors="replace")):
                return out.decode(errors="replace"), None
        elif op == OP_BIN and p[:1] == b"\x03":
            return out.decode(errors="replace"), struct.unpack(">i", p[1:5])[0]
    return out.decode(errors="replace"), "timeout"


def main_tests():
    st, c = api("POST", "/pty", {"command": "/bin/sh", "args": [], "rows": 30, "cols": 100,
                                 "env": {"PS1": "$ ", "TERM": "dumb"}})
    check("create is 201", st == 201, st)
    sid, tok = c["session_id"], c["token"]
    check("session_id is a 21-char URL-safe nanoid", re.fullmatch(r"[A-Za-z0-9_-]{21}", sid) is not None, sid)
    check("token is 64 hex chars", re.fullmatch(r"[0-9a-f]{64}", tok) is not None)
    st, l = api("GET", "/pty")
    check("list has the session without tokens", st == 200 and sid in [s["session_id"] for s in l["sessions"]]
          and "token" not in json.dumps(l))
    st, g = api("GET", "/pty/" + sid)
    check("get: PtySessionInfo", st == 200 and g["pid"] > 0 and g["command"] == "/bin/sh" and g["args"] == []
          and g["rows"] == 30 and g["cols"] == 100 and g["created_at"] > 0 and g["is_alive"] is True
          and g["ended_at"] is None and g["exit_code"] is None, g)
    check("get unknown is 404", api("GET", "/pty/nosuchsession")[0] == 404)

    bad = attach(sid, "0" * 64)
    check("wrong token is 403 INVALID_TOKEN", bad.status == 403 and b"INVALID_TOKEN" in bad.body, bad.status)
    bad = attach(sid, "")
    check("missing token is 403", bad.status == 403)
    bad = attach("nosuchsession", tok)
    check("unknown session is 404 SESSION_NOT_FOUND", bad.status == 404 and b"SESSION_NOT_FOUND" in bad.body)

    ws = attach(sid, tok, via="header")
    check("upgrade with X-PTY-Token is 101 with a valid accept", ws.status == 101 and ws.accept_ok)
    check("no extension negotiated", "sec-websocket-extensions" not in ws.headers)
    ws.s.settimeout(0.5)
    try:
        ws.recv_frame()
        got_early = True
    except OSError:
        got_early = False
    check("nothing is sent before READY", not got_early)
    ws.send(OP_BIN, b"\x02")
    ws.send(OP_TEXT, b"ignored text frame")
    ws.send(OP_BIN, b"\x00echo hello-$((40+2))\n")
    out, ex = read_until(ws, r"hello-42")
    check("DATA in, DATA out", ex is None and "hello-42" in out, out[-200:])
    ws.send(OP_BIN, b"\x01" + struct.pack(">HH", 132, 43))
    time.sleep(0.1)
    ws.send(OP_BIN, b"\x00stty size\n")
    out, ex = read_until(ws, r"43 132")
    check("RESIZE is cols then rows", ex is None, out[-200:])
    st, g = api("GET", "/pty/" + sid)
    check("resize shows in the session info", g["rows"] == 43 and g["cols"] == 132, g)
    ws.close()
    time.sleep(0.2)
    st, g = api("GET", "/pty/" + sid)
    check("the PTY keeps running after a client disconnects", g["is_alive"] is True)

    ws = attach(sid, tok)
    check("re-attach with ?token= is 101", ws.status == 101)
    ws.send(OP_BIN, b"\x02")
    out, ex = read_until(ws, r"hello-42")
    check("re-attach replays the history", ex is None, out[-200:])
    check("resize endpoint is 204", api("POST", "/pty/%s/resize" % sid, {"rows": 10, "cols": 20})[0] == 204)
    check("resize clamps", api("POST", "/pty/%s/resize" % sid, {"rows": 9999, "cols": 0})[0] == 204 and
          api("GET", "/pty/" + sid)[1]["rows"] == 500 and api("GET", "/pty/" + sid)[1]["cols"] == 1)
    check("resize of unknown is 404", api("POST", "/pty/nosuch/resize", {"rows": 1, "cols": 1})[0] == 404)
    ws.send(OP_BIN, b"\x00exit 5\n")
    out, ex = read_until(ws, r"$^")
    check("EXIT frame carries the code", ex == 5, ex)
    op, p = ws.recv()
    check("then close 1000 exit:5", op == OP_CLOSE and ws.close_code == 1000 and ws.close_reason == "exit:5",
          (ws.close_code, ws.close_reason))
    time.sleep(0.1)
    st, g = api("GET", "/pty/" + sid)
    check("ended session: is_alive false, exit_code, ended_at", g["is_alive"] is False and g["exit_code"] == 5
          and g["ended_at"] >= g["created_at"], g)
    ws = attach(sid, tok)
    ws.send(OP_BIN, b"\x02")
    out, ex = read_until(ws, r"$^")
    check("attach after the end: history then EXIT", "hello-42" in out and ex == 5, (ex, out[-100:]))
    ws.recv()
    check("and close exit:5", ws.close_reason == "exit:5")

    # killed while attached
    st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
    ws = attach(c["session_id"], c["token"])
    ws.send(OP_BIN, b"\x02")
    time.sleep(0.1)
    check("DELETE is 204", api("DELETE", "/pty/" + c["session_id"])[0] == 204)
    op, p = ws.recv()
    check("attached client gets 1001 session terminated", op == OP_CLOSE and ws.close_code == 1001 and
          ws.close_reason == "session terminated", (ws.close_code, ws.close_reason))
    check("deleted session is gone", api("GET", "/pty/" + c["session_id"])[0] == 404)
    check("DELETE of unknown is 404", api("DELETE", "/pty/" + c["session_id"])[0] == 404)
    check("bad create body is 400", api("POST", "/pty", {"args": []})[0] == 400)

    # frame limits and flow limits
    st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
    ws = attach(c["session_id"], c["token"])
    ws.send(OP_BIN, b"\x02")
    ws.send(OP_BIN, b"\x00" + b"x" * (70 * 1024))
    op, p = ws.recv()
    check("a message over 64 KiB is closed with 1009", op == OP_CLOSE and ws.close_code == 1009, ws.close_code)
    ws = attach(c["session_id"], c["token"])
    ws.send(OP_BIN, b"\x02")
    try:
        for _ in range(40):
            ws.send(OP_BIN, b"\x00" + b"y" * 60000)
    except OSError:
        pass
    code = None
    try:
        while True:
            op, p = ws.recv(timeout=5)
            if op == OP_CLOSE:
                code = ws.close_code
                break
    except (OSError, EOFError):
        pass
    check("input flooding is closed with 1008", code == 1008, code)
    api("DELETE", "/pty/" + c["session_id"])

    st, c = api("POST", "/pty", {"command": "sh", "args": ["-c", "sleep 0.3; head -c 3000000 /dev/zero | tr '\\0' a; sleep 60"]})
    ws = attach(c["session_id"], c["token"])
    op, p = None, None
    try:
        while True:
            op, p = ws.recv(timeout=10)
            if op == OP_CLOSE:
                break
    except (OSError, EOFError):
        pass
    check("more than 1 MiB before READY closes with 1008", op == OP_CLOSE and ws.close_code == 1008, ws.close_code)
    api("DELETE", "/pty/" + c["session_id"])

    ids = []
    for i in range(64):
        st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
        if st != 201:
            break
        ids.append(c["session_id"])
    st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
    check("the 65th live session is 429 TOO_MANY_SESSIONS", len(ids) == 64 and st == 429 and
          c["code"] == "TOO_MANY_SESSIONS", (len(ids), st))
    for i in ids:
        api("DELETE", "/pty/" + i)


def timing_tests():
    # agent started with HUTCH_AGENT_PTY_IDLE_MS=400 HUTCH_AGENT_PTY_REAP_MS=600 HUTCH_AGENT_WS_PING_MS=200
    st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
    time.sleep(0.7)
    st, g = api("GET", "/pty/" + c["session_id"])
    check("an unattached PTY is killed after the idle time", st == 200 and g["is_alive"] is False, g)
    time.sleep(1.2)
    check("an ended session is forgotten after the reap time", api("GET", "/pty/" + c["session_id"])[0] == 404)
    st, c = api("POST", "/pty", {"command": "sleep", "args": ["60"]})
    ws = attach(c["session_id"], c["token"])
    ws.send(OP_BIN, b"\x02")
    t0 = time.time()
    pings = 0
    while time.time() - t0 < 1.0:
        op, p = ws.recv_frame()
        if op == 9:
            pings += 1
            ws.send(10, p)
    check("the server pings; an answering client stays attached past the idle time", pings >= 2 and api("GET", "/pty/" + c["session_id"])[1]["is_alive"], pings)
    time.sleep(1.0)  # stop answering
    closed = False
    try:
        while True:
            ws.recv_frame()
    except (EOFError, OSError):
        closed = True
    check("a client that stops answering pings is dropped", closed)
    time.sleep(0.8)
    st, g = api("GET", "/pty/" + c["session_id"])
    check("once dropped, the unattached PTY is idle-killed", st == 404 or g["is_alive"] is False, g)


main_tests() if mode == "main" else timing_tests()
done()
