"""Follow streams (SSE): backlog replay, live lines, eof, stream tags, keep-alives, re-attach,
slow followers that must not hold up anybody, and run clients that go away.
Usage: follow_test.py SOCKET (agent started with --max-output-bytes 1000000 and a short
HUTCH_AGENT_KEEPALIVE_MS)."""
import json
import socket
import sys
import time

from agentlib import SSE, check, done, request

sock = sys.argv[1]


def post(path, body):
    st, _, data = request(sock, "POST", path, json.dumps(body))
    return st, json.loads(data) if data else None


def get(path):
    st, _, data = request(sock, "GET", path)
    return st, json.loads(data) if data else None


def wait_status(pid, status, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if get("/processes/%d" % pid)[1]["status"] == status:
            return True
        time.sleep(0.02)
    return False


# a finished process: backlog then eof, and the response ends
_, p = post("/processes", {"command": "sh", "args": ["-c", "echo a; echo b >&2; echo c"]})
wait_status(p["pid"], "exited")
f = SSE(sock, "GET", "/processes/%d/stdout/follow" % p["pid"])
check("follow answers 200 text/event-stream", f.status == 200 and
      f.headers.get("content-type", "").startswith("text/event-stream"))
ev = list(f.events())
check("stdout/follow of a finished process: backlog then eof",
      [(n, json.loads(d).get("line")) for n, d in ev] == [("output", "a"), ("output", "c"), ("eof", None)], ev)
check("stdout/follow lines carry timestamps, no stream tag",
      all("timestamp" in json.loads(d) and "stream" not in json.loads(d) for n, d in ev[:-1]))
check("eof data is {}", ev[-1][1] == "{}")
check("the response ends after eof", f.ended)
ev = list(SSE(sock, "GET", "/processes/%d/output/follow" % p["pid"]).events())
lines = [json.loads(d) for n, d in ev if n == "output"]
check("output/follow has stream tags", sorted((l["line"], l["stream"]) for l in lines) ==
      [("a", "stdout"), ("b", "stderr"), ("c", "stdout")], lines)
ev = list(SSE(sock, "GET", "/processes/%d/stderr/follow" % p["pid"]).events())
check("stderr/follow", [json.loads(d).get("line") for n, d in ev] == ["b", None])
f = SSE(sock, "GET", "/processes/999999/stdout/follow")
check("follow of an unknown process is 404", f.status == 404)

# a live process: backlog, then live lines as they come, then eof
_, p = post("/processes", {"command": "sh", "args": ["-c",
            "echo first; read x; echo \"got $x\"; read y; echo last"], "stdin_mode": "pipe"})
pid = p["pid"]
time.sleep(0.2)
f = SSE(sock, "GET", "/processes/%d/output/follow" % pid)
it = f.events()
n, d = next(it)
check("live follow: backlog line first", json.loads(d)["line"] == "first", d)
request(sock, "POST", "/processes/%d/stdin" % pid, b"one\n")
n, d = next(it)
check("live follow: a live line arrives", json.loads(d)["line"] == "got one", d)
# a second follower attaches mid-way and later disconnects; then re-attaches
g = SSE(sock, "GET", "/processes/%d/stdout/follow" % pid)
git = g.events()
check("second follower gets the backlog", [json.loads(next(git)[1])["line"] for _ in range(2)] ==
      ["first", "got one"])
g.close()
request(sock, "POST", "/processes/%d/stdin" % pid, b"two\n")
rest = list(it)
check("first follower: last line then eof", [n for n, d in rest] == ["output", "eof"] and
      json.loads(rest[0][1])["line"] == "last", rest)
ev = list(SSE(sock, "GET", "/processes/%d/stdout/follow" % pid).events())
check("re-attach after disconnect replays everything",
      [json.loads(d).get("line") for n, d in ev] == ["first", "got one", "last", None])

# keep-alive comments on an idle stream
_, p = post("/processes", {"command": "sleep", "args": ["1.2"]})
f = SSE(sock, "GET", "/processes/%d/stdout/follow" % p["pid"])
ev = list(f.events())
check("keep-alive comments on an idle stream", len(f.comments) >= 2 and
      f.comments[0].startswith(":"), f.comments)
check("idle stream still ends with eof", [n for n, d in ev] == ["eof"])

# a follower that stops reading never stalls the process or other clients
_, p = post("/processes", {"command": "sh", "args": ["-c", "seq 1 400000; echo done"]})
pid = p["pid"]
slow = SSE(sock, "GET", "/processes/%d/stdout/follow" % pid, rcvbuf=4096)
t0 = time.time()
check("a process with a stalled follower still runs to the end", wait_status(pid, "exited", 20))
st, out = get("/processes/%d/stdout" % pid)
check("its output was captured while the follower stalled (%.1fs)" % (time.time() - t0),
      out["lines"][-1] == "done", out["lines"][-1:])
st, h, data = request(sock, "POST", "/processes/run", json.dumps({"command": "echo", "args": ["x"]}))
check("other clients are served meanwhile", st == 200 and b'"exit_code":0' in data)
check("the cap dropped old lines and says so", out["lines"][0].startswith("[hutch-agent: ") and
      "dropped" in out["lines"][0], out["lines"][:1])
got = [json.loads(d).get("line") for n, d in slow.events()]
check("the stalled follower, once it reads, is told what it missed and ends with eof",
      got[-1] is None and got[-2] == "done" and any("dropped" in (l or "") for l in got),
      got[:2] + got[-2:])

# a run whose client goes away kills its process and leaks nothing
s = SSE(sock, "POST", "/processes/run", json.dumps({"command": "sh", "args": ["-c", "echo started; sleep 30"]}))
it = s.events()
start = json.loads(next(it)[1])
next(it)
s.close()
check("run client gone: its process is killed", wait_status(start["pid"], "signaled", 5))

# a run whose client reads slowly: back-pressure, nothing lost
s = SSE(sock, "POST", "/processes/run", json.dumps({"command": "seq", "args": ["1", "150000"]}), rcvbuf=4096)
time.sleep(1.0)
lines = [json.loads(d) for n, d in s.events()]
nums = [l["line"] for l in lines if "line" in l]
check("slow run client: every line arrives in order (back-pressure)",
      nums == [str(i) for i in range(1, 150001)], len(nums))
check("slow run client: exit event last", lines[-1] == {"exit_code": 0}, lines[-1])
done()
