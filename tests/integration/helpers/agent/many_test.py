"""Starts N short processes over one keep-alive connection, waits for all of them, and checks the
table stays bounded. Usage: many_test.py SOCKET N MAX_EXITED"""
import json
import sys
import time

from agentlib import Reader, check, connect, done, request, send_request

sock, n, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = connect(sock)
r = Reader(s)
pids = []
t0 = time.time()
for i in range(n):
    send_request(s, "POST", "/processes", json.dumps({"command": "true"}))
    st, h = r.head()
    body = json.loads(r.exact(int(h["content-length"])))
    if st != 201:
        break
    pids.append(body["pid"])
check("%d processes started (%.1fs)" % (n, time.time() - t0), len(pids) == n, len(pids))
end = time.time() + 30
while time.time() < end:
    info = json.loads(request(sock, "GET", "/info")[2])
    if info["running_processes"] == 0:
        break
    time.sleep(0.1)
check("all of them finished", info["running_processes"] == 0, info)
check("the table keeps at most %d exited processes" % cap, info["total_processes"] <= cap, info)
lst = json.loads(request(sock, "GET", "/processes")[2])["processes"]
check("the newest are kept, the oldest evicted", lst[-1]["pid"] == pids[-1] and
      request(sock, "GET", "/processes/%d" % pids[0])[0] == 404)
done()
