#!/bin/bash
# Suspend keeps everything: a counter process and a TCP listener inside a named sandbox carry on
# across an in-memory suspend, a suspend to disk on request (?to_disk=true) and after a delay
# (CRIU: memory freed), a server restart while suspended to disk, and an automatic resume
# triggered by proxy traffic.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start --suspend-to-disk-secs -1
T="X-Tensorlake-Request-Timeout-Ms: 30000"
id=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox","name":"keep","resources":{"memory_mb":256}}' | jq_get .sandbox_id)
sb_run "$id" 'mkdir -p /www; echo served > /www/index.html; httpd -p 127.0.0.1:8000 -h /www; (i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done) </dev/null >/dev/null 2>&1 &' >/dev/null
count() { sb_run "$id" 'cat /tmp/count'; }
listener() { sb_run "$id" 'wget -qO- http://127.0.0.1:8000/'; }
expect_eq "the listener answers" "$(listener)" served
suspend() { api POST "/sandboxes/$id/suspend"; wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"suspended\"'"; }
resume() { api POST "/sandboxes/$id/resume"; wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"running\"'"; }

a=$(count); suspend; sleep 1; resume; b=$(count)
[ "$b" -ge "$a" ] && [ "$b" -lt $((a + 8)) ] && pass "in-memory suspend: counter carried on, frozen meanwhile ($a -> $b)" || fail "counter $a -> $b"
expect_eq "in-memory suspend: the listener still answers" "$(listener)" served

# on request: ?to_disk=true checkpoints at once (this server never would on its own: -1)
api POST "/sandboxes/$id/suspend?to_disk=maybe"; expect_eq "to_disk takes true or false" "$CODE" 400
if grep -q "memory snapshots unavailable" "$T_DATA/hutchd.log"; then
	api POST "/sandboxes/$id/suspend?to_disk=true"
	expect_eq "to_disk without CRIU is refused" "$(jq_get .code <<<"$BODY")" MEMORY_SNAPSHOT_UNAVAILABLE
else
	a=$(count); api POST "/sandboxes/$id/suspend?to_disk=true"
	expect_eq "suspend?to_disk=true is 202" "$CODE" 202
	wait_for sh -c "grep -q 'sandbox $id suspended to disk' $T_DATA/hutchd.log"
	expect_eq "on request it goes to disk at once" "$(grep -c "sandbox $id suspended to disk" "$T_DATA/hutchd.log")" 1
	resume; b=$(count)
	[ "$b" -ge "$a" ] && [ "$b" -lt $((a + 10)) ] && pass "and comes back with its counter ($a -> $b)" || fail "counter $a -> $b"
	api POST "/sandboxes/$id/suspend"; wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"suspended\"'"
	sleep 1.5
	expect_eq "a later plain suspend stays in memory" "$(grep -c "sandbox $id suspended to disk" "$T_DATA/hutchd.log")" 1
	resume
fi

hutchd_kill TERM
hutchd_restart --suspend-to-disk-secs 1
a=$(count); suspend
on_disk_before=$(grep -c "sandbox $id suspended to disk" "$T_DATA/hutchd.log")
if ! wait_for sh -c "[ \$(grep -c 'sandbox $id suspended to disk' $T_DATA/hutchd.log) -gt $on_disk_before ]"; then
	if grep -q "memory snapshots unavailable" "$T_DATA/hutchd.log"; then
		echo "SKIP: suspend to disk: $(grep -m1 'memory snapshots unavailable' "$T_DATA/hutchd.log")"; t_done
	fi
	fail "never suspended to disk"
fi
mem=$(cat /sys/fs/cgroup/memory/$T_CGROUP/$id/memory.usage_in_bytes 2>/dev/null || echo 0)
[ "$mem" -lt $((4 * 1024 * 1024)) ] && pass "suspended to disk: memory freed ($mem bytes left)" || fail "memory still $mem"
# a zombie PID 1 may linger when its parent is an init that does not reap (not systemd): count
# processes that still run
live=0
for p in $(cat /sys/fs/cgroup/pids/$T_CGROUP/$id/cgroup.procs 2>/dev/null); do
	[ "$(awk '{print $3}' /proc/$p/stat 2>/dev/null)" = Z ] || live=$((live + 1))
done
expect_eq "no process runs while on disk" "$live" 0
hutchd_kill KILL
hutchd_restart --suspend-to-disk-secs 1
wait_for sh -c "grep -q 're-adopted sandbox $id (suspended to disk)' $T_DATA/hutchd.log"
grep -q "re-adopted sandbox $id (suspended to disk)" "$T_DATA/hutchd.log" && pass "a restart while on disk re-adopts it" || fail "not re-adopted as checkpointed"
expect_eq "still suspended after the restart" "$(apij GET "/sandboxes/$id" | jq_get .status)" suspended
# proxy traffic resumes it
t0=$(date +%s%N)
b=$(count)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "a request through the proxy resumed it" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
[ -n "$b" ] && [ "$b" -ge "$a" ] && [ "$b" -lt $((a + 10)) ] && pass "counter carried on across disk and restart ($a -> $b; first request took ${ms} ms)" || fail "counter $a -> $b"
expect_eq "the listener answers after restore" "$(listener)" served
sleep 0.5; c=$(count); [ "$c" -gt "$b" ] && pass "and keeps counting" || fail "counter stuck at $c"

# a host reboot while suspended to disk takes the sandbox's cgroups, mounts, run directory and
# network namespace with it: the checkpoint carries the limits and the resume makes it all again
on_disk_before=$(grep -c "sandbox $id suspended to disk" "$T_DATA/hutchd.log")
a=$(count); suspend
wait_for sh -c "[ \$(grep -c 'sandbox $id suspended to disk' $T_DATA/hutchd.log) -gt $on_disk_before ]"
hutchd_kill KILL
sb=$T_DATA/runtime/sandboxes/$id
for m in rootfs disk netns; do umount "$sb/$m" 2>/dev/null || umount -l "$sb/$m"; done
rm -rf "${T_RUN:?}/$id"
for c in /sys/fs/cgroup/*/"$T_CGROUP"/$id /sys/fs/cgroup/"$T_CGROUP"/$id; do [ -d "$c" ] && rmdir "$c"; done
expect_eq "reboot simulated: no cgroup, no mount left" "$(ls -d /sys/fs/cgroup/*/"$T_CGROUP"/$id 2>/dev/null; awk -v p="$sb/" 'index($5, p) == 1' /proc/self/mountinfo)" ""
adopted=$(grep -c "re-adopted sandbox $id (suspended to disk)" "$T_DATA/hutchd.log")
hutchd_restart --suspend-to-disk-secs 1
wait_for sh -c "[ \$(grep -c 're-adopted sandbox $id (suspended to disk)' $T_DATA/hutchd.log) -gt $adopted ]"
b=$(count)
expect_eq "after the reboot a request through the proxy resumed it" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
[ -n "$b" ] && [ "$b" -ge "$a" ] && [ "$b" -lt $((a + 10)) ] && pass "counter carried on across the reboot ($a -> $b)" || fail "counter $a -> $b"
expect_eq "the listener answers after the reboot" "$(listener)" served
lim=$(cat /sys/fs/cgroup/memory/$T_CGROUP/$id/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/$T_CGROUP/$id/memory.max)
expect_eq "its cgroups were made again with its memory limit" "$lim" $((256 * 1024 * 1024))
api DELETE "/sandboxes/$id"
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
no_leftovers "nothing left, checkpoint included"
expect_eq "checkpoint dir removed" "$(ls "$T_DATA/runtime/checkpoints" | wc -l)" 0
t_done
