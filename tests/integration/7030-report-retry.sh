#!/bin/bash
# An executor's report that the api cannot take (the api is down) is kept and sent again: a
# snapshot finished while the api was killed completes once the api is back, and the sandbox
# is running again, not stuck in "snapshotting".
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start --roles api,proxy
hutchd_restart --roles executor
wait_for sh -c "grep -q 'executor .* connected' $T_DATA/hutchd.log"
T="X-Tensorlake-Request-Timeout-Ms: 30000"
id=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox","resources":{"disk_mb":1024}}' | jq_get .sandbox_id)
expect_eq "the sandbox runs" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
# enough data that the snapshot takes a while
sb_run "$id" 'dd if=/dev/urandom of=/root/blob bs=1M count=150 2>/dev/null; echo ok' >/dev/null
expect_eq "data written" "$RC" 0

api POST "/sandboxes/$id/snapshot"
snap=$(jq_get .snapshot_id <<<"$BODY")
pkill -KILL -f -- "--data-dir $T_DATA .*--roles api,proxy"
if grep -q "snapshot $snap taken" "$T_DATA/hutchd.log"; then
	echo "SKIP: the snapshot finished before the api was killed; nothing to retry"
else
	wait_for grep -q "snapshot $snap taken" "$T_DATA/hutchd.log"
	expect_eq "the executor took the snapshot while the api was down" \
		"$(grep -c "snapshot $snap taken" "$T_DATA/hutchd.log")" 1
	sleep 1 # the report fails at least once
	hutchd_restart --roles api,proxy
	st=
	for _ in $(seq 1 100); do
		st=$(apij GET "/snapshots/$snap" | jq_get .status)
		[ "$st" = in_progress ] || break
		sleep 0.1
	done
	expect_eq "the snapshot completes once the api is back" "$st" completed
	expect_eq "the sandbox runs again" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
	grep -q "report to the api failed" "$T_DATA/hutchd.log" && pass "a failed report was retried" ||
		fail "no failed report in the log"
fi
api DELETE "/sandboxes/$id"
t_done
