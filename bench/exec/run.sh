#!/bin/bash
# bench/exec: `run` of `echo hi` through the proxy on a warm busybox sandbox, p50/p95 over N
# sequential runs on one keep-alive connection, against the same `run` straight on the agent's
# unix socket (what the proxy adds) and fork + exec + wait of echo on the host (what the agent
# adds); then S concurrent streams of M MiB of line output each through the proxy (throughput,
# agent peak RSS and CPU), against the same streams on the agent's socket and the same producer
# read through a pipe on the host. Writes the section "exec" of docs/benchmarks.md.
# Usage: bench/exec/run.sh [runs=1000] [streams=50] [mb=10]   (root; about a minute with the
# defaults on 2 cores; NO_DOC=1 skips the doc update)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
. tests/integration/lib.sh
runs=${1:-1000}; streams=${2:-50}; mb=${3:-10}
# bounds: the time (the streams move about 20 MiB/s on 2 cores) and the sandbox's 1024 MB, in
# which the agent keeps about 13 MiB of output per finished run
if ! { [ "$runs" -ge 20 ] && [ "$runs" -le 20000 ] && [ "$streams" -ge 1 ] && [ "$streams" -le 60 ] &&
	[ "$mb" -ge 1 ] && [ "$mb" -le 20 ] && [ $((streams * mb)) -le 1000 ]; }; then
	echo "bounds: 20 <= runs <= 20000, 1 <= streams <= 60, 1 <= mb <= 20, streams x mb <= 1000"; exit 2
fi
[ "$(id -u)" = 0 ] || { echo "bench/exec needs root"; exit 2; }
for b in hutchd hutch-agent; do
	[ -x "$HUTCH_BIN/$b" ] || { echo "build first: make build/bin/hutchd build/bin/hutch-agent"; exit 2; }
done

work=$(mktemp -d /tmp/hutch-bench-exec.XXXXXX)
child=
cleanup() {
	[ -z "$child" ] || { kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; } || true
	hutchd_cleanup; rm -rf "$work"
}
# bench CMD...: runs the helper in the background and waits for it, so that a signal to this
# script is handled (helper killed, server cleaned up) at once rather than when it finishes
bench() { "$work/exec-bench" "$@" & child=$!; wait "$child"; local rc=$?; child=; return $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
cc -O2 -Wall -pthread -o "$work/exec-bench" bench/exec/exec.c

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hutchd_start
trap cleanup EXIT # hutchd_start sets its own EXIT trap; ours also removes $work
# new_sandbox: creates a busybox sandbox; sets SID, SOCK (the agent's unix socket), AGENT_PID
# (the host pid of its PID 1, hutch-agent), BUSYBOX (its static busybox) and CG (memory cgroup).
new_sandbox() {
	curl -sf -H "$AUTH" -H 'Content-Type: application/json' -H 'X-Tensorlake-Request-Timeout-Ms: 30000' \
		"$API/sandboxes" -d '{"image":"busybox","resources":{"memory_mb":1024,"cpus":2}}' >"$work/sb.json" ||
		{ echo "create failed"; tail -n 20 "$T_DATA/hutchd.log"; exit 1; }
	SID=$(jq -r .sandbox_id "$work/sb.json")
	[ "$(jq -r .status "$work/sb.json")" = running ] || { echo "sandbox not running: $(cat "$work/sb.json")"; exit 1; }
	SOCK=$(sed -n "s/.*sandbox $SID running (agent \([^)]*\)).*/\1/p" "$T_DATA/hutchd.log" | tail -n 1)
	local state=$T_DATA/runtime/sandboxes/$SID
	AGENT_PID=$(jq -r .init_pid "$state/state.json")
	[ -S "$SOCK" ] && [ -d "/proc/$AGENT_PID" ] || { echo "no agent socket ($SOCK) or pid ($AGENT_PID)"; exit 1; }
	BUSYBOX=$state/rootfs/bin/busybox
	[ -x "$BUSYBOX" ] || { echo "no busybox in the sandbox rootfs"; exit 1; }
	CG=$(ls -d /sys/fs/cgroup/memory/"$T_CGROUP"/"$SID" /sys/fs/cgroup/"$T_CGROUP"/"$SID" 2>/dev/null | head -n 1 || true)
	echo "sandbox $SID, agent pid $AGENT_PID, socket $SOCK" >&2
}
new_sandbox
PROXY_PID=$(pgrep -P "$HUTCHD_PID" -x proxy | head -n 1 || true) # the proxy role's process
[ -n "$PROXY_PID" ] || { echo "no proxy process under hutchd $HUTCHD_PID"; exit 1; }
echo "latency: $runs rounds ..." >&2
bench latency "${PROXY#http://}" "$SID" "$KEY" "$SOCK" "$BUSYBOX" "$runs" 50 >"$work/lat.json"
cat "$work/lat.json"

# streams: through the proxy, then straight on the agent socket, each in a fresh sandbox (the
# agent keeps the output of exited processes, so a second phase would start with the first's
# memory), then the host pipe baseline with the sandbox's busybox
cg_peak() { # peak memory charged to the sandbox's cgroup since the last reset (MiB), or ""
	if [ -f "$CG/memory.max_usage_in_bytes" ]; then echo $(($(cat "$CG/memory.max_usage_in_bytes") >> 20))
	elif [ -f "$CG/memory.peak" ]; then echo $(($(cat "$CG/memory.peak") >> 20)); fi
}
cg_reset() { [ -f "$CG/memory.max_usage_in_bytes" ] && echo 0 >"$CG/memory.max_usage_in_bytes" 2>/dev/null || true; }
for via in proxy agent; do
	new_sandbox
	target=${PROXY#http://}; sid=$SID; key=$KEY
	[ "$via" = agent ] && { target=$SOCK; sid=-; key=-; }
	echo "streams via $via: $streams x $mb MiB ..." >&2
	sleep 0.5
	cg_reset
	bench streams http "$target" "$sid" "$key" "$streams" "$mb" "$AGENT_PID" "$PROXY_PID" \
		>"$work/st-$via.json" || { cat "$work/st-$via.json"; echo "streams via $via failed"; exit 1; }
	sleep 1 # what the agent still holds once the streams are over
	jq -c --arg p "$(cg_peak)" --arg a "$(awk '/^VmRSS/{print $2}' "/proc/$AGENT_PID/status")" \
		'. + {sandbox_cgroup_peak_mib: $p, agent_rss_after_1s_kb: ($a | tonumber)}' "$work/st-$via.json" >"$work/st-$via.j2"
	mv "$work/st-$via.j2" "$work/st-$via.json"
	cat "$work/st-$via.json"
done
echo "streams baseline on the host: $streams x $mb MiB through pipes ..." >&2
bench streams pipe \
	"$BUSYBOX head -c $((mb << 20)) /dev/zero | $BUSYBOX tr '\\0' a | $BUSYBOX fold -w 100" \
	- - "$streams" "$mb" 0 0 >"$work/st-pipe.json" || { cat "$work/st-pipe.json"; echo "baseline failed"; exit 1; }
cat "$work/st-pipe.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
hutchd_cleanup

out=$work/section.md
python3 - "$work" "$(machine)" "$runs $streams $mb" "$load_before" "$load_after" >"$out" <<'PY'
import json, sys, datetime
w, m, args, lb, la = sys.argv[1:]
L = json.load(open(f"{w}/lat.json"))
S = {k: json.load(open(f"{w}/st-{k}.json")) for k in ("proxy", "agent", "pipe")}
runs, streams, mb = args.split()
base = L["host_fork_exec_busybox_echo"]["p50"]
def r(x, y): return f"{x / y:.2f}" if y else "-"
print("## bench/exec — `run` latency and streamed output\n")
print(f"Machine: {m}. Date: {datetime.date.today()}. Command: `bench/exec/run.sh {args}` "
      f"(busybox sandboxes, 1024 MB, 2 cpus: one for the latencies, a fresh one for each stream run; "
      f"load average {lb} before, {la} after: the machine is shared).\n")
print(f"`run` of `echo hi` (SSE answer read to the exit event), {L['n']} rounds after {L['warmup']} warm-up "
      "rounds; each round times every probe once, back to back, so all see the same load. Proxy and "
      "agent requests each on one keep-alive connection; the host baselines fork, exec, read the "
      "output from a pipe to EOF and wait.\n")
print("| probe | p50 ms | p95 ms | p50 / fork+exec baseline | p50 / agent socket |\n|---|---|---|---|---|")
rows = [("`run` echo hi through the proxy (TCP, Host: id.local, API key)", "proxy_run"),
        ("`run` echo hi straight on the agent's unix socket", "agent_run"),
        ("GET /api/v1/health through the proxy", "proxy_health"),
        ("GET /api/v1/health on the agent's socket", "agent_health"),
        ("baseline: host fork+exec+wait of the sandbox's busybox `echo hi`", "host_fork_exec_busybox_echo"),
        ("host fork+exec+wait of /bin/echo (coreutils, dynamic)", "host_fork_exec_echo")]
for name, k in rows:
    d = L[k]
    print(f"| {name} | {d['p50']:.3f} | {d['p95']:.3f} | {r(d['p50'], base)} | {r(d['p50'], L['agent_run']['p50'])} |")
pr, ar, ph, ah = (L[k]["p50"] for k in ("proxy_run", "agent_run", "proxy_health", "agent_health"))
target = "met" if pr < 2 else "not met"
print(f"\nTarget p50 < 2 ms through the proxy: **{target}** ({pr:.3f} ms). Of it, the agent's socket "
      f"answers the same run in {ar:.3f} ms (of which spawning busybox echo costs about {base:.3f} ms "
      f"on the host), and the proxy adds {pr - ar:.3f} ms (a health request: {ph:.3f} ms through the "
      f"proxy vs {ah:.3f} ms on the socket, +{ph - ah:.3f} ms). p95 through the proxy: "
      f"{L['proxy_run']['p95']:.3f} ms.\n")
print(f"{streams} concurrent streams, each a `run` of `head -c {int(mb) << 20} /dev/zero | tr '\\0' a | "
      f"fold -w 100` ({mb} MiB in 100-byte lines, one SSE event per line). Throughput = line payload "
      "delivered / wall time from the first connect to the last exit event. Agent memory: VmRSS of the "
      "sandbox's PID 1 (hutch-agent) sampled every 10 ms, and VmHWM after the run (reset before); "
      "CPU: user + system time of the agent and of hutchd's proxy process during the run.\n")
print("| path | completed, exit 0 | wall s | MiB/s | / host pipe | slowest stream s | agent RSS before → peak → 1 s after, MiB | agent CPU s | proxy CPU s | sandbox cgroup peak MiB |\n|---|---|---|---|---|---|---|---|---|---|")
P = S["pipe"]["mib_per_s"]
for name, k in (("through the proxy", "proxy"), ("straight on the agent's socket", "agent"),
                ("baseline: same busybox producer, read through a pipe on the host", "pipe")):
    s = S[k]
    mem = (f"{s['agent_rss_before_kb'] / 1024:.1f} → {max(s['agent_hwm_kb'], s['agent_rss_max_sampled_kb']) / 1024:.1f}"
           f" → {s['agent_rss_after_1s_kb'] / 1024:.1f}"
           if "agent_hwm_kb" in s else "")
    print(f"| {name} | {s['ok']}/{s['streams']} | {s['wall_ms'] / 1000:.2f} | {s['mib_per_s']:.1f} | "
          f"{r(s['mib_per_s'], P)} | {s['stream_end_ms']['last'] / 1000:.2f} | {mem} | "
          f"{s.get('agent_cpu_s', '')} | {s.get('proxy_cpu_s', '')} | {s.get('sandbox_cgroup_peak_mib', '')} |")
a = S["proxy"]
print(f"\nThe agent's memory after the streams stays near the peak ({a['agent_rss_after_1s_kb'] / 1024:.0f} MiB one second "
      f"after the last exit, {(a['agent_rss_after_1s_kb'] - a['agent_rss_before_kb']) / 1024 / int(streams):.1f} MiB more per finished `run`): it keeps the "
      "captured output of exited processes (up to 8 MiB and 100,000 lines per stream, up to 1,000 exited processes), "
      "inside the sandbox's memory limit.")
PY
cat "$out"
[ -n "${NO_DOC:-}" ] || bench_section exec "$out"
