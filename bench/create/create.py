#!/usr/bin/env python3
"""bench/create driver: sequential creates with the first command, a concurrent burst, and
density. Talks HTTP with keep-alive connections (no per-request process spawn)."""
import http.client, json, os, re, statistics, subprocess, sys, threading, time

api_host, api_port = sys.argv[1].split(":")
proxy_host, proxy_port = sys.argv[2].split(":")
key, log_path, n_seq, n_burst, n_density = sys.argv[3], sys.argv[4], *map(int, sys.argv[5:8])
H = {"Authorization": "Bearer " + key, "Content-Type": "application/json",
     "X-Tensorlake-Request-Timeout-Ms": "60000"}

def conn(h, p): return http.client.HTTPConnection(h, int(p), timeout=120)

def create(c, body='{"image":"busybox","resources":{"memory_mb":128}}'):
    c.request("POST", "/sandboxes", body, H)
    r = c.getresponse(); d = json.loads(r.read())
    if d.get("status") != "running": raise SystemExit(f"create failed: {r.status} {d}")
    return d["sandbox_id"]

def run_echo(c, sid):
    c.request("POST", "/api/v1/processes/run", '{"command":"echo","args":["hi"]}',
              {**H, "Host": sid + ".local"})
    body = c.getresponse().read().decode()
    if '"line":"hi"' not in body or '"exit_code":0' not in body: raise SystemExit("run failed: " + body)

def delete(c, sid):
    c.request("DELETE", "/sandboxes/" + sid, headers=H); c.getresponse().read()

def pct(xs, p): xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def stats(xs): return {"p50": round(pct(xs, 50), 2), "p95": round(pct(xs, 95), 2)}

def phases(ids):
    text = open(log_path).read(); out = {}
    for m in re.finditer(r"sandbox (\w+) running \(agent [^)]*\): queued ([\d.]+) ms, runtime and agent ([\d.]+) ms \(network ([\d.]+) ms\)", text):
        out[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    return [out[i] for i in ids if i in out]

def detach_ms(ids):
    text = open(log_path).read(); out = {}
    for m in re.finditer(r"sandbox (\w+) destroyed in [\d.]+ ms \(network ([\d.]+) ms\)", text):
        out[m.group(1)] = float(m.group(2))
    return [out[i] for i in ids if i in out]

def wait_destroyed(sid, timeout=10.0):
    """Until the executor logged the sandbox's teardown (so the next create runs alone)."""
    pat = f"sandbox {sid} destroyed in"; end = time.monotonic() + timeout
    with open(log_path) as f:
        while time.monotonic() < end:
            f.seek(0)
            if pat in f.read(): return
            time.sleep(0.002)
    raise SystemExit(f"sandbox {sid} was not destroyed within {timeout} s")

def sequential(n, isolated):
    """n creates one after another, each followed by `echo hi` and a delete. isolated: the next
    create waits for the previous teardown; otherwise it overlaps it (back to back)."""
    tc, tr, tt, ids = [], [], [], []
    for i in range(n):
        t0 = time.perf_counter(); s = create(a); t1 = time.perf_counter(); run_echo(p, s)
        t2 = time.perf_counter(); ids.append(s); delete(a, s)
        tc.append((t1 - t0) * 1e3); tr.append((t2 - t1) * 1e3); tt.append((t2 - t0) * 1e3)
        if isolated: wait_destroyed(s); time.sleep(0.01)  # and the disk pool's refill
        elif i % 4 == 3: time.sleep(0.05)  # sequential, not a burst: give the disk pool its turn
    ph = phases(ids)
    return {"n": n, "create_to_running_ms": stats(tc), "first_command_ms": stats(tr),
            "create_plus_first_command_ms": stats(tt),
            "executor_queue_ms": stats([q for q, _, _ in ph]),
            "runtime_and_agent_ready_ms": stats([r for _, r, _ in ph]),
            "network_attach_ms": stats([nt for _, _, nt in ph]),
            "network_detach_ms": stats(detach_ms(ids) or [0]),
            "api_store_and_transport_ms": stats([c - q - r for c, (q, r, _) in zip(tc, ph)])}

res = {}
a, p = conn(api_host, api_port), conn(proxy_host, proxy_port)
# warm-up (fills connection pools and the page cache)
for _ in range(3):
    s = create(a); run_echo(p, s); delete(a, s)
time.sleep(1.0)  # let the warm disk pool refill
# baseline (first, while nothing else runs): the same namespaces made by util-linux unshare,
# running /bin/true
bl = []
for _ in range(50):
    t0 = time.perf_counter()
    subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount", "--net",
                    "--uts", "--ipc", "--cgroup", "/bin/true"], check=True)
    bl.append((time.perf_counter() - t0) * 1e3)
res["baseline_unshare_true_ms"] = stats(bl)
res["sequential"] = sequential(n_seq, True)
time.sleep(1.0)
res["back_to_back"] = sequential(n_seq, False)
# burst
lat, errors, bids = [], [], []
def one():
    try:
        c = conn(api_host, api_port); t0 = time.perf_counter(); s = create(c)
        lat.append((time.perf_counter() - t0) * 1e3); bids.append(s)
    except BaseException as e: errors.append(str(e))
time.sleep(1.0)
th = [threading.Thread(target=one) for _ in range(n_burst)]
t0 = time.perf_counter()
for t in th: t.start()
for t in th: t.join()
wall = (time.perf_counter() - t0) * 1e3
res["burst"] = {"n": n_burst, "all_running_ms": round(wall, 1), "errors": len(errors),
                "latency_ms": stats(lat) if lat else None}
for s in bids: delete(a, s)
time.sleep(2)
# density
def meminfo():
    d = dict(l.split(":") for l in open("/proc/meminfo"))
    return int(d["MemAvailable"].split()[0]) * 1024
if n_density:
    time.sleep(1); before = meminfo(); dids = []
    for _ in range(n_density): dids.append(create(a))
    time.sleep(2); after = meminfo()
    cg = 0
    for s in dids:
        for f in (f"/sys/fs/cgroup/memory/hutch/{s}/memory.usage_in_bytes", f"/sys/fs/cgroup/hutch/{s}/memory.current"):
            if os.path.exists(f): cg += int(open(f).read()); break
    res["density"] = {"n": n_density,
                      "host_mem_per_sandbox_mb": round((before - after) / n_density / 2**20, 2),
                      "cgroup_mem_per_sandbox_mb": round(cg / n_density / 2**20, 2)}
    for s in dids: delete(a, s)
print(json.dumps(res, indent=1))
