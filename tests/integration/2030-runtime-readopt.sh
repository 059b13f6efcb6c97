#!/bin/bash
# kill -9 of the whole server: running sandboxes keep running and are re-adopted (their
# processes and files intact); creates cut off half-way are finished or cleaned up.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 30000"
mk() { curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d "$1" | jq_get .sandbox_id; }
a=$(mk '{"image":"busybox","name":"keeper"}')
b=$(mk '{"image":"busybox"}')
sb_run "$a" 'echo kept > /root/file; (while :; do date +%s > /tmp/tick; sleep 0.2; done) </dev/null >/dev/null 2>&1 & echo $! > /tmp/loop.pid' >/dev/null
pid_a=$(jq -r .init_pid "$T_DATA/runtime/sandboxes/$a/state.json")
hutchd_kill KILL
kill -0 "$pid_a" 2>/dev/null && pass "the sandbox outlives a kill -9 of the server" || fail "sandbox PID 1 died with the server"
t1=$(cat /proc/$pid_a/root/tmp/tick 2>/dev/null); sleep 1; t2=$(cat /proc/$pid_a/root/tmp/tick 2>/dev/null)
[ -n "$t1" ] && [ "$t2" != "$t1" ] && pass "its processes keep running meanwhile" || fail "tick $t1 -> $t2"
hutchd_restart
wait_for sh -c "grep -q 're-adopted sandbox $a' $T_DATA/hutchd.log"
grep -q "re-adopted sandbox $a" "$T_DATA/hutchd.log" && pass "re-adopted after restart" || fail "no re-adoption in the log"
expect_eq "still running" "$(apij GET "/sandboxes/$a" | jq_get .status)" running
expect_eq "its file is there" "$(sb_run "$a" 'cat /root/file')" kept
sb_run "$a" 'kill -0 $(cat /tmp/loop.pid) && echo alive' >/dev/null
expect_eq "its background process survived" "$RC" 0
expect_eq "the other one answers too" "$(sb_run "$b" 'echo hi')" hi
api POST "/sandboxes/$a/suspend"
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$a | jq -e '.status==\"suspended\"'"
expect_eq "a re-adopted sandbox can be suspended" "$(apij GET "/sandboxes/$a" | jq_get .status)" suspended
hutchd_kill KILL
hutchd_restart
wait_for sh -c "grep -c 're-adopted sandbox $a' $T_DATA/hutchd.log | grep -q 2"
expect_eq "suspended survives a restart" "$(apij GET "/sandboxes/$a" | jq_get .status)" suspended
api POST "/sandboxes/$a/resume"
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$a | jq -e '.status==\"running\"'"
expect_eq "and resumes" "$(sb_run "$a" 'cat /root/file')" kept

# a burst of creates cut off by kill -9
for i in $(seq 1 10); do
	curl -s -o /dev/null -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox"}' &
done
sleep 0.15
hutchd_kill KILL
wait 2>/dev/null
hutchd_restart
sleep 2
api GET "/sandboxes?limit=1000"
bad=$(jq -r '[.sandboxes[]|select(.status!="running" and .status!="terminated" and .status!="suspended")]|length' <<<"$BODY")
wait_for sh -c "curl -s -H '$AUTH' '$API/sandboxes?limit=1000' | jq -e '[.sandboxes[]|select(.status==\"pending\")]|length==0'"
api GET "/sandboxes?limit=1000"
expect_eq "every cut-off create ended running or terminated" "$(jq -r '[.sandboxes[]|select(.status=="pending")]|length' <<<"$BODY")" 0
T_IDS=$(jq -r '.sandboxes[].id' <<<"$BODY" | tr '\n' ' ')
for id in $T_IDS; do api DELETE "/sandboxes/$id"; done
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
no_leftovers "no leftovers after the crash and the deletes"
t_done
