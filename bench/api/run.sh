#!/bin/bash
# bench/api: control-plane latency and throughput (get, list, create) against baselines measured
# in the same run: nginx serving the same JSON as a static file (the HTTP floor for get/list)
# and raw durable SQLite inserts (WAL, synchronous=FULL) for create. Writes docs/benchmarks.md.
# Usage: bench/api/run.sh [seconds per measurement, default 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
. tests/integration/lib.sh
secs=${1:-5}
command -v wrk >/dev/null && command -v nginx >/dev/null || scripts/deps.sh test
hutchd_start --roles api --max-sandboxes 100000
work=$(mktemp -d)
trap 'nginx -p "$work" -c nginx.conf -s stop 2>/dev/null; hutchd_cleanup; rm -rf "$work"' EXIT

for i in $(seq 1 300); do api POST "/sandboxes?wait=false" '{"image":"busybox"}'; done
id=$(jq_get .sandbox_id <<<"$BODY")
mkdir -p "$work/root/sandboxes"
apij GET "/sandboxes/$id" >"$work/root/sandboxes/$id"
apij GET "/sandboxes?limit=10" >"$work/root/sandboxes/list10"
nport=$(free_port)
cat >"$work/nginx.conf" <<NGX
worker_processes 2; daemon on; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 1024; }
http { access_log off; default_type application/json;
  server { listen 127.0.0.1:$nport; root $work/root; location / { } } }
NGX
nginx -p "$work" -c nginx.conf

cat >"$work/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"image":"busybox"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
# run_wrk URL [script]: prints "req/s p50_ms p99_ms"
run_wrk() {
	local out
	out=$(wrk -t2 -c16 -d"${secs}s" --latency -H "$AUTH" ${2:+-s "$2"} "$1")
	local rps p50 p99
	rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
	p50=$(awk '$1=="50%"{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{print $2}' <<<"$out")
	echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { python3 -c "import sys,re; v=sys.argv[1]; n=float(re.match(r'[0-9.]+',v).group()); u=re.sub(r'[0-9.]+','',v); print(round(n*{'us':0.001,'ms':1,'s':1000}[u],3))" "$1"; }

read -r g_rps g_p50 g_p99 < <(run_wrk "$API/sandboxes/$id")
read -r ng_rps ng_p50 ng_p99 < <(run_wrk "http://127.0.0.1:$nport/sandboxes/$id")
read -r l_rps l_p50 l_p99 < <(run_wrk "$API/sandboxes?limit=10")
read -r nl_rps nl_p50 nl_p99 < <(run_wrk "http://127.0.0.1:$nport/sandboxes/list10")
read -r c_rps c_p50 c_p99 < <(run_wrk "$API/sandboxes?wait=false" "$work/create.lua")
floor=$(python3 - "$work/floor.db" "$secs" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t(id TEXT PRIMARY KEY, body TEXT)")
n, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    db.execute("INSERT INTO t VALUES(?, ?)", (str(n), "x" * 600)); n += 1
print(round(n / float(sys.argv[2]), 1))
PY
)
ratio() { python3 -c "print(round($1/$2, 2))"; }
out=$work/section.md
cat >"$out" <<MD
## bench/api — control plane

Machine: $(machine). Date: $(date -u +%Y-%m-%d). Command: \`bench/api/run.sh $secs\` (wrk -t2 -c16, ${secs}s each; api role alone, SQLite store, 300 sandboxes stored).

| operation | hutch req/s | p50 ms | p99 ms | baseline | baseline req/s | hutch / baseline throughput |
|---|---|---|---|---|---|---|
| GET /sandboxes/{id} | $g_rps | $g_p50 | $g_p99 | nginx static file | $ng_rps | $(ratio "$g_rps" "$ng_rps") |
| GET /sandboxes?limit=10 | $l_rps | $l_p50 | $l_p99 | nginx static file | $nl_rps | $(ratio "$l_rps" "$nl_rps") |
| POST /sandboxes (durable, no executor) | $c_rps | $c_p50 | $c_p99 | raw SQLite insert, WAL + fsync | $floor | $(ratio "$c_rps" "$floor") |

Every create is committed with an fsync before it is answered; the single-threaded api does one commit per create, so its create rate is bounded by the durable-insert floor of the disk.
MD
cat "$out"
bench_section api "$out"
