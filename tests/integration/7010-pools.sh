#!/bin/bash
# Warm pools: warm sandboxes kept ready, claims hand out a fresh sandbox, max_containers holds
# (pending with pool_at_capacity), deleting a pool in use is 409, a network change recycles the
# unclaimed warm ones.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 20000"

api POST /sandbox-pools '{"image":"busybox","resources":{"cpus":0.5,"memory_mb":128},"warm_containers":2,"max_containers":3}'
expect_eq "pool create is 200" "$CODE" 200
pool=$(jq_get .pool_id <<<"$BODY")
expect_eq "create answers the namespace" "$(jq_get .namespace <<<"$BODY")" default
api POST /sandbox-pools '{"image":"busybox","warm_containers":5,"max_containers":2}'
expect_eq "warm > max is 400" "$CODE" 400
api POST /sandbox-pools '{"id":"fixed","image":"busybox"}'
api POST /sandbox-pools '{"id":"fixed","image":"busybox"}'
expect_eq "an existing pool id is 409" "$CODE" 409
api DELETE /sandbox-pools/fixed

wait_for sh -c "curl -s -H '$AUTH' $API/sandbox-pools/$pool | jq -e '[.containers[]|select(.state==\"Idle\" and .status==\"running\")]|length==2'"
api GET "/sandbox-pools/$pool"
expect_eq "two warm sandboxes ready" "$(jq '[.containers[]|select(.state=="Idle")]|length' <<<"$BODY")" 2
expect_eq "pool object is flat with id" "$(jq_get .id <<<"$BODY")" "$pool"
expect_eq "timeout_secs is 0 (none) by default" "$(jq_get .timeout_secs <<<"$BODY")" 0
expect_eq "warm sandboxes are not listed as the user's" "$(apij GET /sandboxes | jq '.sandboxes|length')" 0
warm_ids=$(jq -r '[.containers[].id]|sort|join(",")' <<<"$BODY")

t0=$(date +%s%N)
c1=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandbox-pools/$pool/sandboxes" -H 'Content-Length: 0')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
id1=$(jq_get .sandbox_id <<<"$c1")
expect_eq "claim returns a running sandbox" "$(jq_get .status <<<"$c1")" running
grep -q "$id1" <<<"$warm_ids" && pass "the claim was a warm sandbox (${ms} ms)" || fail "claim $id1 was not warm ($warm_ids)"
expect_eq "the claimed sandbox is the user's now" "$(apij GET "/sandboxes/$id1" | jq_get .pool_id)" "$pool"
curl -s -H "$AUTH" -H "Host: $id1.local" "$PROXY/api/v1/processes/run" -d '{"command":"sh","args":["-c","echo claim1 > /tmp/mark"]}' >/dev/null
c2=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandbox-pools/$pool/sandboxes" -H 'Content-Length: 0')
id2=$(jq_get .sandbox_id <<<"$c2")
[ "$id2" != "$id1" ] && pass "each claim has its own identity" || fail "same sandbox handed out twice"
out=$(curl -s -H "$AUTH" -H "Host: $id2.local" "$PROXY/api/v1/processes/run" -d '{"command":"sh","args":["-c","ls /tmp; hostname"]}')
grep -q mark <<<"$out" && fail "the second claim saw the first claim's /tmp" || pass "a claim starts with a clean /tmp"
# capacity: 2 claimed + at most 1 more (max 3)
c3=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandbox-pools/$pool/sandboxes" -H 'Content-Length: 0')
expect_eq "third claim within max runs" "$(jq_get .status <<<"$c3")" running
id3=$(jq_get .sandbox_id <<<"$c3")
c4=$(curl -s -H "$AUTH" -H "X-Tensorlake-Request-Timeout-Ms: 1500" -X POST "$API/sandbox-pools/$pool/sandboxes" -H 'Content-Length: 0')
id4=$(jq_get .sandbox_id <<<"$c4")
expect_eq "a claim beyond max_containers waits" "$(jq_get .status <<<"$c4")" timeout
expect_eq "it is pending with pool_at_capacity" "$(apij GET "/sandboxes/$id4" | jq_get .pending_reason)" pool_at_capacity
api DELETE /sandbox-pools/$pool
expect_eq "deleting a pool in use is 409" "$CODE" 409
api DELETE "/sandboxes/$id3"
wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id4 | jq -e '.status==\"running\"'"
expect_eq "capacity freed: the waiting claim runs" "$(apij GET "/sandboxes/$id4" | jq_get .status)" running
# network change recycles unclaimed warm sandboxes (none are warm now: free room first)
for s in $id1 $id2 $id4; do api DELETE "/sandboxes/$s"; done
wait_for sh -c "curl -s -H '$AUTH' $API/sandbox-pools/$pool | jq -e '[.containers[]|select(.state==\"Idle\" and .status==\"running\")]|length==2'"
before=$(apij GET "/sandbox-pools/$pool" | jq -r '[.containers[].id]|sort|join(",")')
api PUT "/sandbox-pools/$pool" '{"image":"busybox","resources":{"cpus":0.5,"memory_mb":128},"warm_containers":2,"max_containers":3,"network":{"allow_internet_access":false}}'
expect_eq "PUT replaces the pool" "$(jq -c .network <<<"$BODY")" '{"allow_internet_access":false,"allow_out":[],"deny_out":[]}'
wait_for sh -c "curl -s -H '$AUTH' $API/sandbox-pools/$pool | jq -e '[.containers[]|select(.state==\"Idle\" and .status==\"running\")]|length==2' >/dev/null && [ \"\$(curl -s -H '$AUTH' $API/sandbox-pools/$pool | jq -r '[.containers[].id]|sort|join(\",\")')\" != '$before' ]"
after=$(apij GET "/sandbox-pools/$pool" | jq -r '[.containers[].id]|sort|join(",")')
[ "$after" != "$before" ] && pass "a network change recycled the warm sandboxes" || fail "warm set unchanged: $after"
api DELETE "/sandbox-pools/$pool"; expect_eq "delete an unused pool" "$CODE" 200
api GET "/sandbox-pools/$pool"; expect_eq "deleted pool is 404" "$CODE" 404
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
expect_eq "its warm sandboxes are gone" "$(ls "$T_DATA/runtime/sandboxes" | wc -l)" 0
t_done
