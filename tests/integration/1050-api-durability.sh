#!/bin/bash
# Nothing acknowledged is lost on kill -9: every create and PATCH the api answered survives a
# SIGKILL of the whole server and a restart.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api
acked=()
for round in 1 2 3; do
	for i in $(seq 1 20); do
		api POST "/sandboxes?wait=false" "{\"name\":\"d$round-$i\"}"
		[ "$CODE" = 200 ] && acked+=("$(jq_get .sandbox_id <<<"$BODY")")
	done
	api PATCH "/sandboxes/d$round-1" '{"exposed_ports":[7000]}'
	patched=$CODE
	hutchd_kill KILL
	hutchd_restart --roles api
	missing=0
	for id in "${acked[@]}"; do
		[ "$(apij GET "/sandboxes/$id" | jq_get .id)" = "$id" ] || missing=$((missing + 1))
	done
	expect_eq "round $round: all ${#acked[@]} acknowledged creates survived kill -9" "$missing" 0
	[ "$patched" = 200 ] && expect_eq "round $round: the acknowledged PATCH survived" \
		"$(apij GET "/sandboxes/d$round-1" | jq -c .exposed_ports)" "[7000]"
done
# a kill in the middle of a burst: whatever was answered 200 is there
( for i in $(seq 1 200); do
	curl -s -o /dev/null -w '%{http_code} ' -X POST -H "$AUTH" "$API/sandboxes?wait=false" -d "{\"name\":\"burst-$i\"}"
done ) >/tmp/burst.$$ 2>&1 &
sleep 0.4
hutchd_kill KILL
wait
hutchd_restart --roles api
ok=$(tr ' ' '\n' </tmp/burst.$$ | grep -c '^200$')
have=$(apij GET "/sandboxes?limit=1000" | jq '[.sandboxes[]|select(.name|startswith("burst-"))]|length')
[ "$have" -ge "$ok" ] && pass "burst: $ok acknowledged, $have stored" || fail "burst: $ok acknowledged but only $have stored"
rm -f /tmp/burst.$$
t_done
