#!/bin/bash
# The sandbox state machine with a real executor: blocking create, suspend/resume (freezer),
# the 409/400 rules, idle timeouts (ephemeral terminates, named suspends).
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
timeout_hdr="X-Tensorlake-Request-Timeout-Ms: 20000"

t0=$(date +%s%N)
body=$(curl -s -H "$AUTH" -H "$timeout_hdr" -X POST "$API/sandboxes" -d '{"image":"busybox","name":"box","resources":{"memory_mb":128}}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "blocking create returns running" "$(jq_get .status <<<"$body")" running
echo "    | create returned running in ${ms} ms"
id=$(jq_get .sandbox_id <<<"$body")
freezer=/sys/fs/cgroup/freezer/$T_CGROUP/$id/freezer.state
[ -e /sys/fs/cgroup/cgroup.controllers ] && freezer=/sys/fs/cgroup/$T_CGROUP/$id/cgroup.freeze

api POST "/sandboxes/$id/resume"; expect_eq "resume of a running sandbox is 200" "$CODE" 200
api POST "/sandboxes/$id/suspend"; expect_eq "suspend is 202" "$CODE" 202
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"suspended\"'"
expect_eq "suspended" "$(apij GET "/sandboxes/$id" | jq_get .status)" suspended
expect_match "its processes are frozen" "$(cat "$freezer")" '^(FROZEN|1)$'
api POST "/sandboxes/$id/suspend"; expect_eq "suspend of a suspended sandbox is 200" "$CODE" 200
api PATCH "/sandboxes/$id" '{"exposed_ports":[8000]}'; expect_eq "PATCH while suspended" "$CODE" 200
api POST "/sandboxes/$id/resume"; expect_eq "resume is 202" "$CODE" 202
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"running\"'"
expect_eq "running again" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
expect_match "thawed" "$(cat "$freezer")" '^(THAWED|0)$'
expect_eq "sandbox_url after resume" "$(apij GET "/sandboxes/$id" | jq_get '.sandbox_url != null')" true

eph=$(curl -s -H "$AUTH" -H "$timeout_hdr" -X POST "$API/sandboxes" -d '{"image":"busybox"}' | jq_get .sandbox_id)
api POST "/sandboxes/$eph/suspend"; expect_eq "suspending an ephemeral sandbox is 400" "$CODE" 400
api POST "/sandboxes/$eph/resume"; expect_eq "resuming an ephemeral sandbox is 400" "$CODE" 400
api DELETE "/sandboxes/$eph"
api POST "/sandboxes/$id/suspend"
api DELETE "/sandboxes/$id"; expect_eq "a suspended sandbox can be terminated" "$CODE" 200
api POST "/sandboxes/$id/resume"; expect_eq "resume of a terminated sandbox is 409" "$CODE" 409
grep -q terminated <<<"$BODY" && pass "409 names the state" || fail "409 body $BODY"

# idle timeouts
e=$(curl -s -H "$AUTH" -H "$timeout_hdr" -X POST "$API/sandboxes" -d '{"image":"busybox","timeout_secs":2}' | jq_get .sandbox_id)
n=$(curl -s -H "$AUTH" -H "$timeout_hdr" -X POST "$API/sandboxes" -d '{"image":"busybox","timeout_secs":2,"name":"sleepy"}' | jq_get .sandbox_id)
z=$(curl -s -H "$AUTH" -H "$timeout_hdr" -X POST "$API/sandboxes" -d '{"image":"busybox","timeout_secs":0}' | jq_get .sandbox_id)
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$e | jq -e '.status==\"terminated\"'"
expect_eq "an idle ephemeral sandbox terminates" "$(apij GET "/sandboxes/$e" | jq_get .outcome)" "Success(Timeout)"
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$n | jq -e '.status==\"suspended\"'"
expect_eq "an idle named sandbox suspends" "$(apij GET "/sandboxes/$n" | jq_get .status)" suspended
expect_eq "timeout_secs 0 never times out" "$(apij GET "/sandboxes/$z" | jq_get .status)" running
for s in $n $z; do api DELETE "/sandboxes/$s"; done
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
expect_eq "no sandbox state left" "$(ls "$T_DATA/runtime/sandboxes" | wc -l)" 0

# blocking create without an executor times out with a create response
hutchd_kill TERM
hutchd_restart --roles api
t0=$(date +%s%N)
code=$(curl -s -o /tmp/t.$$ -w '%{http_code}' -H "$AUTH" -H "X-Tensorlake-Request-Timeout-Ms: 1500" -X POST "$API/sandboxes" -d '{}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "create bound elapses with 504" "$code" 504
expect_eq "504 body is a create response with status timeout" "$(jq_get .status </tmp/t.$$)" timeout
[ $ms -ge 1000 ] && [ $ms -lt 3000 ] && pass "504 came after the client's bound (${ms} ms)" || fail "504 after ${ms} ms"
rm -f /tmp/t.$$
t_done
