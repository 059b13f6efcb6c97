#!/bin/bash
# bench/proxy: hutch's ingress proxy against nginx as a reverse proxy (keepalive upstreams,
# streaming: proxy_buffering off) in one run, to the same upstream (a separate nginx on
# 127.0.0.1 answering a small body and serving a 1 GiB file), at the same concurrency. Prints
# req/s and p99 for each, the hutch/nginx ratios, and the throughput of a 1 GiB streamed
# download through each; writes the section "proxy" of docs/benchmarks.md.
#
# Usage: bench/proxy/run.sh [seconds per wrk run, default 5] [connections, default 64]
#        [rounds, default 3]   (HUTCH_BUILD selects the build; NO_DOC=1 skips the doc update)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. bench/lib.sh
secs=${1:-5}
conns=${2:-64}
rounds=${3:-3}
[ "$secs" -le 60 ] && [ "$conns" -le 1000 ] && [ "$rounds" -le 20 ] || { echo "bounds: secs<=60 conns<=1000 rounds<=20"; exit 2; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (Debian: wrk nginx-light)"; exit 2; }
export HUTCH_ROOT=$ROOT HUTCH_BUILD=${HUTCH_BUILD:-$ROOT/build}

work=$(mktemp -d /tmp/hutch-bench-proxy.XXXXXX)
chmod 755 "$work" # nginx workers run as nobody
pids=()
cleanup() {
	nginx -p "$work/up" -c nginx.conf -s stop 2>/dev/null || true
	nginx -p "$work/px" -c nginx.conf -s stop 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(port)
NG=$(port)
HP=$(port)

# the upstream: nginx, one worker, a small answer and a 1 GiB file (sparse, from the page cache)
mkdir -p "$work/up/www" "$work/px"
truncate -s 1G "$work/up/www/big"
cat >"$work/up/nginx.conf" <<NGX
worker_processes 1; daemon on; pid $work/up/nginx.pid; error_log $work/up/error.log;
events { worker_connections 4096; }
http { access_log off; default_type application/octet-stream; keepalive_requests 1000000;
  client_body_temp_path $work/up; proxy_temp_path $work/up; fastcgi_temp_path $work/up;
  uwsgi_temp_path $work/up; scgi_temp_path $work/up;
  server { listen 127.0.0.1:$UP; root $work/up/www;
    location = /hello { return 200 "hello from the upstream\n"; } } }
NGX
nginx -p "$work/up" -c nginx.conf

# nginx as the reverse proxy being compared (worker_processes auto, as Debian ships it)
cat >"$work/px/nginx.conf" <<NGX
worker_processes auto; daemon on; pid $work/px/nginx.pid; error_log $work/px/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $work/px; proxy_temp_path $work/px; fastcgi_temp_path $work/px;
  uwsgi_temp_path $work/px; scgi_temp_path $work/px;
  upstream sandbox { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NG;
    location / { proxy_pass http://sandbox; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header Authorization "";
      proxy_buffering off; proxy_request_buffering off; } } }
NGX
nginx -p "$work/px" -c nginx.conf

# hutch: a store with one sandbox whose user port is the upstream, and the proxy role
helpers=$(tests/integration/helpers/proxy/build.sh)
st=$helpers/store_tool
mkdir -p "$work/data"
echo benchtoken >"$work/data/node.token"
"$st" "$work/hutch.db" init
key=$("$st" "$work/hutch.db" key bench)
id=p00000000000000000001
"$st" "$work/hutch.db" put "$id" bench web running "$work/none.sock" 127.0.0.1 "[$UP]" 0 bench-node
bin=("$HUTCH_BUILD/bin/hutchd" --roles proxy)
[ -x "$HUTCH_BUILD/bin/hutchd" ] || bin=("$helpers/proxyd")
"${bin[@]}" --data-dir "$work/data" --store "$work/hutch.db" --proxy-listen "127.0.0.1:$HP" \
	--proxy-domain sandbox.bench --api-url "127.0.0.1:$(port)" --node-id bench-node \
	--log-level warn 2>"$work/hutch.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$HP/" && break; sleep 0.05; done

HOST="Host: $UP-$id.sandbox.bench"
AUTH="Authorization: Bearer $key"
hutch_pid=$(pgrep -P "${pids[0]}" | head -n 1); hutch_pid=${hutch_pid:-${pids[0]}}
nginx_pids=$(pgrep -P "$(cat "$work/px/nginx.pid")" | tr '\n' ' ')
to_ms() { python3 -c "import sys,re; v=sys.argv[1]; n=float(re.match(r'[0-9.]+',v).group()); u=re.sub(r'[0-9.]+','',v); print(round(n*{'us':0.001,'ms':1,'s':1000}[u],3))" "$1"; }
# cpu_ticks PIDS...: user+system clock ticks of every thread of PIDS
cpu_ticks() { local t=0 p f; for p in "$@"; do for f in /proc/"$p"/task/*/stat; do t=$((t + $(awk '{print $14 + $15}' "$f"))); done; done; echo $t; }
# run_wrk PORT PIDS...: prints "req/s p99_ms cpu_us_per_request"
run_wrk() {
	local port=$1 out c0 c1 n; shift
	c0=$(cpu_ticks "$@")
	out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "$HOST" -H "$AUTH" "http://127.0.0.1:$port/hello")
	c1=$(cpu_ticks "$@")
	if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "errors from wrk on port $port:" >&2; echo "$out" >&2; exit 1; fi
	n=$(awk '/requests in/{print $1}' <<<"$out")
	echo "$(awk '/Requests\/sec/{print $2}' <<<"$out") $(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")") $(python3 -c "print(round(($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / $n, 1))")"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(round($1 / $2, 3))"; }

# warm both, then alternate rounds (and which goes first) and take medians; the machine is
# shared, so the per-round ratios (measured back to back) are the figures that matter
wrk -t2 -c"$conns" -d1s -H "$HOST" -H "$AUTH" "http://127.0.0.1:$NG/hello" >/dev/null
wrk -t2 -c"$conns" -d1s -H "$HOST" -H "$AUTH" "http://127.0.0.1:$HP/hello" >/dev/null
load0=$(cut -d' ' -f1-3 /proc/loadavg)
h_rps=() h_p99=() h_cpu=() n_rps=() n_p99=() n_cpu=() r_rps=() r_p99=()
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then
		read -r a b c < <(run_wrk "$NG" $nginx_pids); read -r d e f < <(run_wrk "$HP" "$hutch_pid")
	else
		read -r d e f < <(run_wrk "$HP" "$hutch_pid"); read -r a b c < <(run_wrk "$NG" $nginx_pids)
	fi
	n_rps+=("$a"); n_p99+=("$b"); n_cpu+=("$c"); h_rps+=("$d"); h_p99+=("$e"); h_cpu+=("$f")
	r_rps+=("$(ratio "$d" "$a")"); r_p99+=("$(ratio "$e" "$b")")
	echo "round $r: nginx $a req/s p99 $b ms ${c}us cpu/req | hutch $d req/s p99 $e ms ${f}us cpu/req | ratios ${r_rps[-1]} ${r_p99[-1]}"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
hr=$(echo "${h_rps[*]}" | median); hp=$(echo "${h_p99[*]}" | median); hc=$(echo "${h_cpu[*]}" | median)
nr=$(echo "${n_rps[*]}" | median); np=$(echo "${n_p99[*]}" | median); nc=$(echo "${n_cpu[*]}" | median)
rps_ratio=$(echo "${r_rps[*]}" | median)
p99_ratio=$(echo "${r_p99[*]}" | median)
cpu_ratio=$(ratio "$hc" "$nc")

# 1 GiB streamed download through each (and directly, as the ceiling)
stream() {
	local out
	out=$(curl -s -o /dev/null -H "$HOST" -H "$AUTH" -w '%{http_code} %{size_download} %{speed_download}' \
		--max-time 60 "http://127.0.0.1:$1/big")
	[[ "$out" == "200 1073741824 "* ]] || { echo "1 GiB download from port $1 failed: $out" >&2; exit 1; }
	python3 -c 'import sys; print(round(float(sys.argv[1]) / 2**20))' "${out##* }"
}
d_bw=$(stream "$UP"); n_bw=$(stream "$NG"); h_bw=$(stream "$HP")
n_bw2=$(stream "$NG"); h_bw2=$(stream "$HP")
n_bw=$(( n_bw > n_bw2 ? n_bw : n_bw2 )); h_bw=$(( h_bw > h_bw2 ? h_bw : h_bw2 ))
bw_ratio=$(python3 -c "print(round($h_bw / $n_bw, 2))")

printf '\nsmall requests (wrk -t2 -c%s, %ss x %s rounds, medians; load %s -> %s):\n' "$conns" "$secs" "$rounds" "$load0" "$load1"
printf '  nginx  %10s req/s  p99 %8s ms  %6s us CPU/request\n' "$nr" "$np" "$nc"
printf '  hutch  %10s req/s  p99 %8s ms  %6s us CPU/request\n' "$hr" "$hp" "$hc"
printf '  hutch/nginx (median of per-round ratios): throughput %s (target >= 0.9), p99 %s (target <= 1.2), CPU per request %s\n' "$rps_ratio" "$p99_ratio" "$cpu_ratio"
printf '1 GiB download: direct %s MiB/s, nginx %s MiB/s, hutch %s MiB/s (hutch/nginx %s)\n' \
	"$d_bw" "$n_bw" "$h_bw" "$bw_ratio"
if grep -qE 'Sanitizer|error' "$work/hutch.log"; then cat "$work/hutch.log"; fi
[ -z "${NO_DOC:-}" ] || exit 0

sec=$work/section.md
cat >"$sec" <<DOC
## bench/proxy — ingress proxy vs nginx

Machine: $(machine). Date: $(date -u +%Y-%m-%d). Command: \`bench/proxy/run.sh $secs $conns $rounds\`
($(nginx -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), $(basename "$HUTCH_BUILD") build;
load average $load0 before, $load1 after: the machine is shared).

Setup: one upstream, nginx with 1 worker on 127.0.0.1 (\`/hello\`: a 24-byte body; \`/big\`: a 1 GiB
file) standing in for a sandbox's user port until the proxy is measured against a real sandbox.
The same requests go through \`hutchd --roles proxy\` (one worker thread per core; the sandbox
row has the upstream as an exposed, non-public port, so every request is authorized with its API
key) and through nginx (\`worker_processes auto\`, keepalive upstream pool of 64,
\`proxy_buffering off\`, no authentication). wrk -t2 -c$conns, ${secs}s per run, $rounds rounds
alternating which proxy goes first; medians. wrk, both proxies and the upstream share the cores,
so throughput follows CPU per request; the ratios are medians of per-round ratios measured back
to back.

| proxy | req/s | p99 ms | CPU µs / request | 1 GiB download MiB/s |
|---|---|---|---|---|
| nginx | $nr | $np | $nc | $n_bw |
| hutch | $hr | $hp | $hc | $h_bw |
| **hutch / nginx** | **$rps_ratio** (target ≥ 0.9) | **$p99_ratio** (target ≤ 1.2) | $cpu_ratio | **$bw_ratio** |

Direct download from the upstream without a proxy: $d_bw MiB/s (one curl, single stream).
DOC
bench_section proxy "$sec"
echo "docs/benchmarks.md updated (section proxy)"
