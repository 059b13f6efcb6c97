#!/bin/bash
# Wake-on-traffic and activity batches against a fake api: a request for a suspended sandbox
# posts one wake (with the node token) and is forwarded once the store shows it running; refused
# wakes, states that cannot run and the wait bound; traffic is posted once a second as
# {"sandbox_ids":[...]}; an api that is down never slows requests.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

S1=$(sandbox_id 1)
S2=$(sandbox_id 2)
W=$(sandbox_id 3)
sbx "$S1" team-a one running "[$UPORT]" 1
sbx "$S2" team-a two running
sbx "$W" team-a sleepy suspended
fake_api_start --wake-mode ok --wake-delay 0.4
HUTCHD_PROXY_WAKE_TIMEOUT_MS=2000 proxy_start
A=(-H "Authorization: Bearer $KEY_A")

# activity
: >"$T/api.log"
for i in 1 2 3; do code "${A[@]}" -H "Host: $S1.local" "$P:$PPORT/echo" >/dev/null; done
code "${A[@]}" -H "X-Tensorlake-Sandbox-Id: two" "$P:$PPORT/echo" >/dev/null
code -H "Host: $S2.local" "$P:$PPORT/echo" >/dev/null # 401: not traffic
check "an activity batch is posted within 2 s" wait_for grep -q ACTIVITY "$T/api.log"
sleep 1.2
batch=$(grep ACTIVITY "$T/api.log" | sed 's/^ACTIVITY //' | python3 -c '
import json, sys
ids = set()
for line in sys.stdin:
    ids.update(json.loads(line)["sandbox_ids"])
print(" ".join(sorted(ids)))')
expect_eq "the batches name both sandboxes that saw traffic, once" "$batch" "$S1 $S2"
grep -q BADTOKEN "$T/api.log" && fail "activity posted without the node token" || pass "activity carries the node token"
: >"$T/api.log"
end=$((SECONDS + 3))
while [ $SECONDS -lt $end ]; do code "${A[@]}" -H "Host: $S1.local" "$P:$PPORT/echo" >/dev/null; done
n=$(grep -c ACTIVITY "$T/api.log")
check "continuous traffic for 3 s: $n posts (about one a second)" test "$n" -ge 2 -a "$n" -le 5
sleep 1.2
: >"$T/api.log"
sleep 2.2
expect_eq "no traffic, no posts" "$(grep -c ACTIVITY "$T/api.log")" 0
python3 "$HUTCH_ROOT/tests/integration/helpers/proxy/fake.py" ws --port "$PPORT" --host "$S1.local" \
	--path /ws --header "Authorization: Bearer $KEY_A" >/dev/null
check "a WebSocket counts as traffic" wait_for grep -q "$S1" "$T/api.log"

# wake on traffic
: >"$T/api.log"
expect_eq "anonymous request for a suspended agent: 401, no wake" "$(code -H "Host: $W.local" "$P:$PPORT/echo")" 401
sleep 0.3
grep -q WAKE "$T/api.log" && fail "an anonymous request woke a sandbox" || pass "no wake without credentials"
start=$(date +%s.%N)
cpids=()
for i in 1 2 3 4 5; do
	code "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo" >"$T/wake.$i" &
	cpids+=($!)
done
wait "${cpids[@]}"
took=$(python3 -c "import time; print(round(time.time() - $start, 2))")
expect_eq "5 concurrent requests for a suspended sandbox all succeed" "$(cat "$T"/wake.? | tr -d '\n')" 200200200200200
n=$(grep -c "WAKE $W" "$T/api.log")
check "... after $n wake POST(s) (at most one per proxy worker thread)" test "$n" -ge 1 -a "$n" -le "$(nproc)"
check "... within the wake delay plus a little (${took}s)" python3 -c "import sys; sys.exit(0 if 0.35 < $took < 2 else 1)"
expect_eq "the sandbox runs now" "$("$ST" "$DB" get "$W" status)" running

"$ST" "$DB" set "$W" status suspending
( sleep 0.5; "$ST" "$DB" set "$W" status suspended ) &
expect_eq "suspending: waits, wakes once suspended, forwards" "$(code "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo")" 200

"$ST" "$DB" set "$W" status suspended
( sleep 0.3; "$ST" "$DB" set "$W" status terminated ) &
kill "$FAKE_API_PID"; wait "$FAKE_API_PID" 2>/dev/null
fake_api_start --wake-mode ignore
out=$(curl -s -w ' %{http_code}' "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo")
expect_match "terminated while waiting: 503 with the state" "$out" 'state: terminated.* 503$'

"$ST" "$DB" set "$W" status suspended
start=$(date +%s.%N)
out=$(curl -s -w ' %{http_code}' "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo")
took=$(python3 -c "import time; print(round(time.time() - $start, 2))")
expect_match "never resumes: 504 at the bound" "$out" 'did not resume.* 504$'
check "... after about the 2 s bound (${took}s)" python3 -c "import sys; sys.exit(0 if 1.8 < $took < 4 else 1)"

kill "$FAKE_API_PID"; wait "$FAKE_API_PID" 2>/dev/null
fake_api_start --wake-mode refuse
sleep 1 # forget the previous wake
out=$(curl -s -w ' %{http_code}' "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo")
expect_match "the api refuses the wake: 503" "$out" 'refused to wake.* 503$'

# the api is down: requests are not slowed, batches are dropped
kill "$FAKE_API_PID"; wait "$FAKE_API_PID" 2>/dev/null
sleep 1.5
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${A[@]}" -H "Host: $S1.local" "$P:$PPORT/echo")
check "api down: still served quickly ($out)" python3 -c "import sys; c, t = '$out'.split(); sys.exit(0 if c == '200' and float(t) < 0.5 else 1)"
sleep 2.5
expect_eq "api down: the proxy keeps serving after dropped batches" "$(code "${A[@]}" -H "Host: $S1.local" "$P:$PPORT/echo")" 200
start=$(date +%s.%N)
out=$(curl -s -w ' %{http_code}' "${A[@]}" -H "Host: $W.local" "$P:$PPORT/echo")
took=$(python3 -c "import time; print(round(time.time() - $start, 2))")
expect_match "api down: a wake fails fast with 503 (${took}s)" "$out" 'could not reach the api.* 503$'

proxy_stop
t_done
