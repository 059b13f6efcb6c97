#!/usr/bin/env python3
"""bench/lifecycle driver: suspend/resume in memory and to disk, filesystem snapshot, pool
claim, copy. Keep-alive HTTP; state changes are observed by polling GET every millisecond."""
import http.client, json, os, re, statistics, subprocess, sys, time

api_host, api_port = sys.argv[1].split(":")
proxy_host, proxy_port = sys.argv[2].split(":")
key, log_path, n, phase = sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
H = {"Authorization": "Bearer " + key, "Content-Type": "application/json",
     "X-Tensorlake-Request-Timeout-Ms": "120000"}
a = http.client.HTTPConnection(api_host, int(api_port), timeout=300)
p = http.client.HTTPConnection(proxy_host, int(proxy_port), timeout=300)

def call(method, path, body=None):
    a.request(method, path, json.dumps(body) if body is not None else None, H)
    r = a.getresponse(); d = r.read()
    return r.status, (json.loads(d) if d else None)

def wait(path, key, want, limit=120):
    end = time.time() + limit
    while time.time() < end:
        st, d = call("GET", path)
        if d and d.get(key) == want: return
        if d and d.get(key) in ("terminated", "failed"): raise SystemExit(f"{path}: {d}")
        time.sleep(0.001)
    raise SystemExit(f"timeout waiting for {path} {key}={want}")

def run(sid, cmd):
    p.request("POST", "/api/v1/processes/run", json.dumps({"command": "/bin/sh", "args": ["-c", cmd]}),
              {**H, "Host": sid + ".local"})
    out = p.getresponse().read().decode()
    if '"exit_code":0' not in out: raise SystemExit("run failed: " + out[-400:])
    return out

def pct(xs, q): xs = sorted(xs); return round(xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))], 2)
def st(xs): return {"p50": pct(xs, 50), "p95": pct(xs, 95), "n": len(xs)}

res = {}

def phase_memory():
    _, d = call("POST", "/sandboxes", {"image": "busybox", "name": "bench-mem", "resources": {"memory_mb": 128}})
    sid = d["sandbox_id"]
    run(sid, "(while :; do sleep 0.2; done) </dev/null >/dev/null 2>&1 &")
    sus, resu = [], []
    for _ in range(n):
        t0 = time.perf_counter(); call("POST", f"/sandboxes/{sid}/suspend"); wait(f"/sandboxes/{sid}", "status", "suspended")
        sus.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter(); call("POST", f"/sandboxes/{sid}/resume"); wait(f"/sandboxes/{sid}", "status", "running")
        resu.append((time.perf_counter() - t0) * 1e3)
    res["memory_suspend_ms"], res["memory_resume_ms"] = st(sus), st(resu)
    # raw freezer baseline on the same sandbox's cgroup
    fz = f"/sys/fs/cgroup/freezer/hutch/{sid}/freezer.state"
    raw = []
    if os.path.exists(fz):
        for _ in range(n):
            t0 = time.perf_counter()
            open(fz, "w").write("FROZEN")
            while open(fz).read().strip() != "FROZEN": pass
            open(fz, "w").write("THAWED")
            raw.append((time.perf_counter() - t0) * 1e3)
    res["raw_freeze_thaw_ms"] = st(raw) if raw else None
    call("DELETE", f"/sandboxes/{sid}")

def phase_disk():
    # suspend to disk with 256 MB of live memory (server runs with --suspend-to-disk-secs 0)
    _, d = call("POST", "/sandboxes", {"image": "default", "name": "bench-disk", "resources": {"memory_mb": 1024}})
    sid = d["sandbox_id"]
    # 256 MB of live anonymous memory in a process that keeps running
    run(sid, "python3 -c 'import os,time; b=bytearray(os.urandom(256<<20)); open(\"/tmp/ready\",\"w\"); time.sleep(1e9)' </dev/null >/dev/null 2>&1 & "
             "while [ ! -e /tmp/ready ]; do sleep 0.05; done")
    log0 = len(open(log_path).read())
    t0 = time.perf_counter(); call("POST", f"/sandboxes/{sid}/suspend")
    while "suspended to disk" not in open(log_path).read()[log0:] and time.perf_counter() - t0 < 120: time.sleep(0.005)
    disk_sus = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter(); call("POST", f"/sandboxes/{sid}/resume"); wait(f"/sandboxes/{sid}", "status", "running")
    disk_res = (time.perf_counter() - t0) * 1e3
    tail = open(log_path).read()[log0:]
    m1 = re.search(r"suspended to disk in ([\d.]+) ms", tail); m2 = re.search(r"restored from disk in ([\d.]+) ms", tail)
    res["disk_256mb"] = {"suspend_ms": round(disk_sus, 1), "resume_ms": round(disk_res, 1),
                         "checkpoint_runtime_ms": float(m1.group(1)) if m1 else None,
                         "restore_runtime_ms": float(m2.group(1)) if m2 else None}
    # copy raw 256 MB baseline: how long the disk takes to write and read 256 MB
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={os.path.dirname(log_path)}/ddtest", "bs=1M", "count=256", "conv=fsync"],
                   check=True, stderr=subprocess.DEVNULL)
    res["baseline_write_256mb_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    os.unlink(f"{os.path.dirname(log_path)}/ddtest")
    call("DELETE", f"/sandboxes/{sid}")

def phase_other():
    # filesystem snapshot of a 100 MB writable layer
    _, d = call("POST", "/sandboxes", {"image": "busybox", "resources": {"memory_mb": 256, "disk_mb": 1024}})
    sid = d["sandbox_id"]
    run(sid, "dd if=/dev/urandom of=/root/blob bs=1M count=100 2>/dev/null; sync")
    t0 = time.perf_counter(); _, d = call("POST", f"/sandboxes/{sid}/snapshot", {"snapshot_type": "filesystem"})
    wait(f"/snapshots/{d['snapshot_id']}", "status", "completed")
    res["fs_snapshot_100mb_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    snap = d["snapshot_id"]
    t0 = time.perf_counter(); _, d = call("POST", "/sandboxes", {"snapshot_id": snap})
    res["create_from_fs_snapshot_100mb_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    call("DELETE", f"/sandboxes/{d['sandbox_id']}"); call("DELETE", f"/sandboxes/{sid}"); call("DELETE", f"/snapshots/{snap}")

    # pool claim vs plain create
    _, d = call("POST", "/sandbox-pools", {"image": "busybox", "resources": {"memory_mb": 128}, "warm_containers": 3})
    pool = d["pool_id"]
    def warm_ready():
        _, d = call("GET", f"/sandbox-pools/{pool}")
        return sum(1 for c in d["containers"] if c["state"] == "Idle" and c.get("status") == "running")
    claims, creates = [], []
    for _ in range(n):
        end = time.time() + 30
        while warm_ready() < 1 and time.time() < end: time.sleep(0.01)
        t0 = time.perf_counter(); _, d = call("POST", f"/sandbox-pools/{pool}/sandboxes")
        claims.append((time.perf_counter() - t0) * 1e3); call("DELETE", f"/sandboxes/{d['sandbox_id']}")
        t0 = time.perf_counter(); _, d = call("POST", "/sandboxes", {"image": "busybox", "resources": {"memory_mb": 128}})
        creates.append((time.perf_counter() - t0) * 1e3); call("DELETE", f"/sandboxes/{d['sandbox_id']}")
    res["pool_claim_ms"], res["plain_create_ms"] = st(claims), st(creates)
    time.sleep(1)
    _, d = call("GET", f"/sandbox-pools/{pool}")
    for c in d["containers"]: call("DELETE", f"/sandboxes/{c['id']}")
    call("DELETE", f"/sandbox-pools/{pool}")

    # copy x10 of a running sandbox
    _, d = call("POST", "/sandboxes", {"image": "busybox", "resources": {"memory_mb": 128}})
    sid = d["sandbox_id"]
    run(sid, "(while :; do sleep 0.2; done) </dev/null >/dev/null 2>&1 &")
    t0 = time.perf_counter(); status, d = call("POST", f"/sandboxes/{sid}/copy?times=10")
    res["copy_x10"] = {"ms": round((time.perf_counter() - t0) * 1e3, 1), "http": status,
                       "running": sum(1 for s in (d or {}).get("sandboxes", []) if s.get("status") == "running")}
    for s in (d or {}).get("sandboxes", []): call("DELETE", f"/sandboxes/{s['sandbox_id']}")
    call("DELETE", f"/sandboxes/{sid}")
if phase == "memory":
    phase_memory(); phase_other()
else:
    phase_disk()
print(json.dumps(res, indent=1))
