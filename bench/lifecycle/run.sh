#!/bin/bash
# bench/lifecycle: in-memory suspend/resume, suspend to disk and resume with 256 MB of live
# memory (CRIU), filesystem snapshot of a 100 MB layer, pool claim, copy x10. Baselines in the
# same run: writing the freezer file directly, writing 256 MB with fsync, a plain create.
# Usage: bench/lifecycle/run.sh [iterations=20]   (root; CRIU from scripts/install-criu.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib.sh
. tests/integration/lib.sh
n=${1:-20}
hutchd_start --suspend-to-disk-secs -1 >/dev/null
sleep 1
mem=$(python3 bench/lifecycle/lifecycle.py "${API#http://}" "${PROXY#http://}" "$KEY" "$T_DATA/hutchd.log" "$n" memory)
# suspend to disk right after freezing, for the disk phase
hutchd_kill TERM
hutchd_restart --suspend-to-disk-secs 0
disk=$(python3 bench/lifecycle/lifecycle.py "${API#http://}" "${PROXY#http://}" "$KEY" "$T_DATA/hutchd.log" "$n" disk)
json=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a.update(json.loads(sys.argv[2])); print(json.dumps(a))' "$mem" "$disk")
echo "$json"
cp "$T_DATA/hutchd.log" /tmp/bench-lifecycle-hutchd.log
hutchd_cleanup
out=$(mktemp)
python3 - "$json" "$(machine)" "$n" >"$out" <<'PY'
import json, sys, datetime
r = json.loads(sys.argv[1]); m = sys.argv[2]; n = sys.argv[3]
def ratio(a, b): return round(a / b, 2) if a and b else "-"
raw = (r.get("raw_freeze_thaw_ms") or {}).get("p50")
print("## bench/lifecycle — suspend, resume, snapshots, pools, copies\n")
print(f"Machine: {m}. Date: {datetime.date.today()}. Command: `bench/lifecycle/run.sh {n}` (busybox, and the default image for the 256 MB process; times seen by the client, polling GET every ms; in-memory figures with `--suspend-to-disk-secs -1`, disk figures with `0`).\n")
print("| operation | p50 ms | p95 ms | baseline | ratio |\n|---|---|---|---|---|")
ms, mr = r["memory_suspend_ms"], r["memory_resume_ms"]
print(f"| suspend in memory (freezer) | {ms['p50']} | {ms['p95']} | raw freezer FROZEN+THAWED {raw} ms | {ratio(ms['p50'], raw)} |")
print(f"| resume from memory | {mr['p50']} | {mr['p95']} | raw freezer FROZEN+THAWED {raw} ms | {ratio(mr['p50'], raw)} |")
d = r["disk_256mb"]; w = r["baseline_write_256mb_ms"]
print(f"| suspend to disk, 256 MB live (CRIU dump {d['checkpoint_runtime_ms']} ms) | {d['suspend_ms']} | | writing 256 MB with fsync {w} ms | {ratio(d['suspend_ms'], w)} |")
print(f"| resume from disk, 256 MB (CRIU restore {d['restore_runtime_ms']} ms) | {d['resume_ms']} | | writing 256 MB with fsync {w} ms | {ratio(d['resume_ms'], w)} |")
print(f"| filesystem snapshot of a 100 MB layer | {r['fs_snapshot_100mb_ms']} | | | |")
print(f"| create from that snapshot | {r['create_from_fs_snapshot_100mb_ms']} | | | |")
pc, pl = r["pool_claim_ms"], r["plain_create_ms"]
print(f"| pool claim (warm) | {pc['p50']} | {pc['p95']} | plain create {pl['p50']} ms | {ratio(pc['p50'], pl['p50'])} |")
c = r["copy_x10"]
print(f"| copy x10 (memory snapshot + 10 restores; HTTP {c['http']}, {c['running']} running) | {c['ms']} | | 10 plain creates {round(10 * pl['p50'], 1)} ms | {ratio(c['ms'], 10 * pl['p50'])} |")
PY
cat "$out"
bench_section lifecycle "$out"
rm -f "$out"
