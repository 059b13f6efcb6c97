#!/bin/bash
# Resource limits of real sandboxes: memory (OOM-killed process reported, OOM of the entrypoint
# ends the sandbox with Failure(OutOfMemory)), CPU quota (measured), pids limit, disk ENOSPC.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 30000"
mk() { curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d "$1" | jq_get .sandbox_id; }
run_in() { sb_run "$@"; }

id=$(mk '{"image":"busybox","resources":{"memory_mb":64,"cpus":0.5,"disk_mb":128}}')
memcg=/sys/fs/cgroup/memory/$T_CGROUP/$id
expect_eq "memory limit in the cgroup" "$(cat $memcg/memory.limit_in_bytes)" $((64 * 1024 * 1024))
run_in "$id" 'x=a; while true; do x="$x$x$x$x"; done' >/dev/null
expect_eq "a memory hog is killed and reported as OOM" "$RC" "sig9+oom"
expect_eq "the sandbox survives a process OOM" "$(apij GET "/sandboxes/$id" | jq_get .status)" running

api DELETE "/sandboxes/$id"
# the other limits in a sandbox with room to breathe (a 64 MB cgroup OOM-kills a fork bomb and
# even dd's dirty pages before the limit under test is reached)
id=$(mk '{"image":"busybox","resources":{"memory_mb":1536,"cpus":0.5,"disk_mb":128}}')
# CPU quota 0.5: a busy loop for 2 s gets about 1 s of CPU
cpu0=$(cat /sys/fs/cgroup/cpuacct/$T_CGROUP/$id/cpuacct.usage 2>/dev/null || echo 0)
run_in "$id" 'timeout 2 sh -c "while :; do :; done"; true' >/dev/null
cpu1=$(cat /sys/fs/cgroup/cpuacct/$T_CGROUP/$id/cpuacct.usage 2>/dev/null || echo 0)
used_ms=$(( (cpu1 - cpu0) / 1000000 ))
if [ "$cpu1" = 0 ]; then
	q=$(cat /sys/fs/cgroup/cpu/$T_CGROUP/$id/cpu.cfs_quota_us)
	expect_eq "CPU quota set (no cpuacct to measure)" "$q" 50000
else
	[ $used_ms -ge 700 ] && [ $used_ms -le 1300 ] && pass "CPU quota 0.5 measured: ${used_ms} ms of CPU in 2 s" || fail "CPU used ${used_ms} ms in 2 s (want ~1000)"
fi
# pids limit (4096 by default): a fork bomb stays bounded; the shell dies on the failed fork
# (the sleepers outlive a slow loop on a loaded machine; the test ends them from the host)
run_in "$id" 'i=0; while [ $i -lt 5000 ]; do sleep 300 </dev/null >/dev/null 2>&1 & i=$((i+1)); done 2>/tmp/forkerr; echo done' >/dev/null
[ "$RC" != 0 ] && pass "the fork bomb's shell hit the limit (exit $RC)" || fail "the loop finished: $SSE_RAW"
n=$(cat /sys/fs/cgroup/pids/$T_CGROUP/$id/pids.current)
[ "$n" -le 4096 ] && pass "pids limit holds ($n processes)" || fail "pids $n"
init=$(jq -r .init_pid "$T_DATA/runtime/sandboxes/$id/state.json")
for p in $(cat /sys/fs/cgroup/pids/$T_CGROUP/$id/cgroup.procs); do
	[ "$p" != "$init" ] && kill -9 "$p" 2>/dev/null
done
for _ in $(seq 1 40); do [ "$(cat /sys/fs/cgroup/pids/$T_CGROUP/$id/pids.current)" -le 2 ] && break; sleep 0.5; done
expect_match "the failure was a fork failure" "$(run_in "$id" 'cat /tmp/forkerr')" "fork"
# disk: 128 MB writable layer
out=$(run_in "$id" 'dd if=/dev/zero of=/root/fill bs=1M count=400 2>&1; echo rc=$?')
grep -q "No space left on device" <<<"$out" && pass "writes beyond disk_mb fail with ENOSPC" || fail "disk: $out / $SSE_RAW"
out=$(run_in "$id" 'rm -f /root/fill; echo ok > /root/after; cat /root/after')
expect_eq "the disk is usable again after freeing space" "$out" ok
api DELETE "/sandboxes/$id"

# the entrypoint OOM-killed ends the sandbox
id=$(mk '{"image":"busybox","resources":{"memory_mb":48},"entrypoint":["/bin/sh","-c","sleep 1; x=a; while true; do x=\"$x$x$x$x\"; done"]}')
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"terminated\"'"
expect_eq "OOM of the entrypoint ends the sandbox" "$(apij GET "/sandboxes/$id" | jq_get .outcome)" "Failure(OutOfMemory)"
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
expect_eq "and it is cleaned up" "$(ls "$T_DATA/runtime/sandboxes" | wc -l)" 0
t_done
