#!/bin/bash
# Nothing is left behind: 100 create/delete cycles, and a failure injected at each setup step of
# the runtime (through the real executor) cleans up completely and reports the failure.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 30000"
T_IDS=""
failed=0
for i in $(seq 1 100); do
	body=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox","resources":{"memory_mb":64,"disk_mb":256}}')
	id=$(jq_get .sandbox_id <<<"$body")
	[ "$(jq_get .status <<<"$body")" = running ] || failed=$((failed + 1))
	T_IDS="$T_IDS $id"
	if [ $((i % 10)) = 0 ]; then # every tenth also runs a process
		sb_run "$id" 'echo alive' >/dev/null; [ "$RC" = 0 ] || failed=$((failed + 1))
	fi
	api DELETE "/sandboxes/$id"
done
expect_eq "100 sandboxes ran" "$failed" 0
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
no_leftovers "no leftovers after 100 create/delete cycles"

# a failure at each setup step
steps=$(grep -o '"[a-z-]*"' <<<"$(sed -n '/rt_create_steps\[\] = {/,/};/p' "$HUTCH_ROOT"/lib/runtime/*.c)" | tr -d '"' | tr '\n' ' ')
[ -n "$steps" ] || { fail "could not read the runtime's step names"; t_done; }
for step in $steps; do
	hutchd_kill TERM
	HUTCH_FAULT_STEP=$step hutchd_restart
	body=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox"}')
	id=$(jq_get .sandbox_id <<<"$body")
	T_IDS="$T_IDS $id"
	st=$(jq_get .status <<<"$body")
	out=$(apij GET "/sandboxes/$id" | jq -r '"\(.status) \(.outcome)"')
	if [ "$out" = "terminated Failure(ContainerStartupFailed)" ]; then
		wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
		no_leftovers "fault at step '$step': reported and nothing left"
	else
		fail "fault at step '$step': sandbox is '$out' (create said $st)"
	fi
done
hutchd_kill TERM
hutchd_restart
body=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox"}')
expect_eq "without faults sandboxes run again" "$(jq_get .status <<<"$body")" running
api DELETE "/sandboxes/$(jq_get .sandbox_id <<<"$body")"
t_done
