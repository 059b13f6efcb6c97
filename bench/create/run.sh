#!/bin/bash
# bench/create: sandbox creation end to end (create -> running -> first command answered by the
# agent), p50/p95 over N sequential creates with a phase breakdown, a burst of concurrent
# creates, and host memory per idle sandbox. Baseline in the same run: util-linux `unshare` of
# the same namespaces running /bin/true. Writes docs/benchmarks.md.
# Usage: bench/create/run.sh [sequential=100] [burst=50] [density=500]   (root)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
. tests/integration/lib.sh
seq=${1:-100}; burst=${2:-50}; density=${3:-500}
# a /16 of addresses for the density run (a test server's own network is a /24)
hutchd_start --max-sandboxes 100000 --network-cidr 10.90.0.0/16
sleep 2 # executor registered, warm disk pool filled
json=$(python3 bench/create/create.py "${API#http://}" "${PROXY#http://}" "$KEY" "$T_DATA/hutchd.log" "$seq" "$burst" "$density")
echo "$json"
hutchd_cleanup
out=$(mktemp)
python3 - "$json" "$(machine)" "$seq $burst $density" >"$out" <<'PY'
import json, sys, datetime
r = json.loads(sys.argv[1]); m = sys.argv[2]; args = sys.argv[3]
s = r["sequential"]; b = r["burst"]; bl = r["baseline_unshare_true_ms"]
def row(name, d): return f"| {name} | {d['p50']} | {d['p95']} | {round(d['p50']/bl['p50'],2)} |"
print("## bench/create — sandbox creation\n")
print(f"Machine: {m}. Date: {datetime.date.today()}. Command: `bench/create/run.sh {args}` (busybox image, 128 MB, 10 GiB disk; sequential creates, keep-alive HTTP client; the sequential series and a back-to-back series of the same size).\n")
print("| phase | p50 ms | p95 ms | p50 / baseline |\n|---|---|---|---|")
print(row("create → running (whole API call)", s["create_to_running_ms"]))
print(row("  api, store (fsync) and executor long-poll/report", s["api_store_and_transport_ms"]))
print(row("  executor queue", s["executor_queue_ms"]))
print(row("  runtime setup and agent ready", s["runtime_and_agent_ready_ms"]))
print(row("    of which network attach (veth, address, policy)", s["network_attach_ms"]))
print(row("network detach at delete", s["network_detach_ms"]))
print(row("first command (`echo hi` via proxy and agent)", s["first_command_ms"]))
print(row("create + first command", s["create_plus_first_command_ms"]))
print(f"| baseline: `unshare` same namespaces + /bin/true | {bl['p50']} | {bl['p95']} | 1.0 |")
print("\nEach create above starts after the previous sandbox's teardown finished (it is what one create costs). "
      "Back to back, where each create overlaps the teardown of the one before (disk unmount, loop device, network namespace) on the same 2 cores:")
bb = r["back_to_back"]
print(f"create → running p50 {bb['create_to_running_ms']['p50']} ms, p95 {bb['create_to_running_ms']['p95']} ms; "
      f"runtime setup and agent ready p50 {bb['runtime_and_agent_ready_ms']['p50']} ms; create + first command p50 {bb['create_plus_first_command_ms']['p50']} ms.")
print(f"\nBurst: {b['n']} concurrent creates all running after {b['all_running_ms']} ms ({b['errors']} errors; per-create p50 {b['latency_ms']['p50'] if b['latency_ms'] else '-'} ms, p95 {b['latency_ms']['p95'] if b['latency_ms'] else '-'} ms).")
if "density" in r:
    d = r["density"]
    print(f"\nDensity: {d['n']} idle sandboxes at once: {d['host_mem_per_sandbox_mb']} MB of host memory each (MemAvailable drop / n), of which {d['cgroup_mem_per_sandbox_mb']} MB charged to the sandboxes' own memory cgroups; the image is shared.")
PY
cat "$out"
bench_section create "$out"
rm -f "$out"
