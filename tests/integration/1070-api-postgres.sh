#!/bin/bash
# hutchd on a PostgreSQL store (a throwaway cluster of this test's own, unix socket only): a
# sandbox runs a command through the proxy, a PATCH of exposed ports is seen by the very next
# proxy request, acknowledged writes survive kill -9, two servers migrating one empty database
# at once both come up, and a second api node sharing the store (an executor long-polls the
# first) answers a blocking create as soon as the sandbox runs.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
pg_test_cluster
# a password in the URL (the cluster trusts its socket): it must never reach a log
URL="postgresql://postgres:s3cret-pw@/hutch?host=$PG_DIR&port=5432"
B_PIDS=()
cleanup_all() {
	local p
	for p in "${B_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${B_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${B_DATA:-}" ] && rm -rf "$B_DATA"
	hutchd_cleanup
	pg_cluster_stop
}

if ! hutchd_start --store "$URL"; then
	fail "hutchd starts on the PostgreSQL store"
	cleanup_all
	t_done
fi
trap cleanup_all EXIT
T="X-Tensorlake-Request-Timeout-Ms: 30000"

expect_match "the log names the store" "$(grep -m1 'api listening' "$T_DATA/hutchd.log")" \
	'store postgresql://postgres:\*\*\*@/hutch'
grep -q s3cret-pw "$T_DATA/hutchd.log" && fail "the password reached the log" ||
	pass "the password is not logged"
[ -e "$T_DATA/hutch.db" ] && fail "a SQLite file was made" || pass "no SQLite file"
expect_eq "the schema is in PostgreSQL" \
	"$(psql -d hutch -c "select value from meta where key = 'schema_version'")" 6
expect_eq "64-bit columns" "$(psql -d hutch -c "select data_type from information_schema.columns
	where table_name = 'sandboxes' and column_name = 'created_at'")" bigint

# a sandbox, a command through the proxy
id=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" \
	-d '{"image":"busybox","name":"pgbox","resources":{"memory_mb":256}}' | jq_get .sandbox_id)
expect_eq "a blocking create runs" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
sb_run "$id" 'echo hello from $(hostname)' >/tmp/hutch-1070.$$; out=$(cat /tmp/hutch-1070.$$)
rm -f /tmp/hutch-1070.$$
expect_match "a command runs through the proxy" "$out" '^hello from '
expect_eq "and exits 0" "$RC" 0

# a PATCH is seen by the very next proxy request (no cache on PostgreSQL)
sb_run "$id" 'mkdir -p /www && echo served > /www/index.html && httpd -p 8000 -h /www' >/dev/null
port_code() { curl -s -o /dev/null -w '%{http_code}' -m 5 -H "$AUTH" -H "Host: 8000-$id.local" "$PROXY/index.html"; }
expect_eq "an unexposed port is 403" "$(port_code)" 403
api PATCH "/sandboxes/$id" '{"exposed_ports":[8000]}'
expect_eq "PATCH exposed_ports" "$CODE" 200
expect_eq "the next proxy request reaches the port" \
	"$(curl -s -m 5 -H "$AUTH" -H "Host: 8000-$id.local" "$PROXY/index.html")" served
api PATCH "/sandboxes/$id" '{"exposed_ports":[]}'
expect_eq "and after the next PATCH it is closed again" "$(port_code)" 403

# kill -9: whatever was acknowledged is there after a restart
api POST "/sandboxes?wait=false" '{"name":"acked"}'
acked=$(jq_get .sandbox_id <<<"$BODY")
api PATCH "/sandboxes/$id" '{"exposed_ports":[8000]}'
hutchd_kill KILL
hutchd_restart --store "$URL"
expect_eq "an acknowledged create survives kill -9" "$(apij GET /sandboxes/acked | jq_get .id)" "$acked"
expect_eq "the running sandbox is still there" "$(apij GET /sandboxes/pgbox | jq_get .id)" "$id"
expect_eq "with its acknowledged PATCH" "$(apij GET "/sandboxes/$id" | jq -c .exposed_ports)" "[8000]"
wait_for sb_run "$id" true
out=$(sb_run "$id" 'cat /www/index.html')
expect_eq "and it still runs commands" "$out" served
api DELETE /sandboxes/acked

# a second api node on the same store; the executor long-polls the first
B_DATA=$(mktemp -d /tmp/hutch-it-b-XXXXXX)
cp "$T_DATA/node.token" "$B_DATA/node.token"
bport=$(free_port)
API_B=http://127.0.0.1:$bport
"$HUTCH_BIN/hutchd" --roles api --data-dir "$B_DATA" --run-dir "$B_DATA/run" \
	--listen "127.0.0.1:$bport" --store "$URL" >>"$B_DATA/hutchd.log" 2>&1 &
B_PIDS+=($!)
check "the second api node starts" wait_for curl -sf "$API_B/health"
expect_eq "it makes no admin key of its own" "$(ls "$B_DATA"/admin.key 2>/dev/null)" ""
expect_eq "the first node's key works on it" \
	"$(curl -s -H "$AUTH" "$API_B/sandboxes/$id" | jq_get .id)" "$id"
t0=$(date +%s%N)
body=$(curl -s -m 40 -H "$AUTH" -H "$T" -X POST "$API_B/sandboxes" \
	-d '{"image":"busybox","name":"via-b","resources":{"memory_mb":256}}')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "a blocking create through node B reaches running" "$(jq_get .status <<<"$body")" running
[ "$ms" -lt 10000 ] && pass "and is answered when it runs (${ms} ms), not at its timeout" ||
	fail "the create through node B took ${ms} ms"
bid=$(jq_get .sandbox_id <<<"$body")
expect_eq "it runs on the first node's executor" "$(sb_run "$bid" 'echo ok')" ok
# a PATCH through node B is seen by node A's proxy at once
curl -s -o /dev/null -X PATCH -H "$AUTH" -H 'Content-Type: application/json' \
	"$API_B/sandboxes/$id" -d '{"exposed_ports":[]}'
expect_eq "a PATCH through node B closes the port on node A's proxy" "$(port_code)" 403
# a delete through node B reaches the executor (node A's long-poll wakes)
t0=$(date +%s%N)
curl -s -o /dev/null -X DELETE -H "$AUTH" "$API_B/sandboxes/$bid"
sb_gone() { [ "$(apij GET "/sandboxes/$bid" | jq_get .status)" = terminated ]; }
wait_for sb_gone && pass "a delete through node B terminates the sandbox" ||
	fail "a delete through node B: $(apij GET "/sandboxes/$bid" | jq_get .status)"
grep -q s3cret-pw "$B_DATA/hutchd.log" && fail "node B logged the password" || pass "node B logs no password"

# two servers migrating one empty database at once
R_URL="$(pg_cluster_createdb race | sed 's|^postgresql://postgres@|postgresql://postgres:s3cret-pw@|')"
r1=$(free_port); r2=$(free_port)
for p in "$r1" "$r2"; do
	mkdir -p "$B_DATA/r$p"
	"$HUTCH_BIN/hutchd" --roles api --data-dir "$B_DATA/r$p" --run-dir "$B_DATA/r$p/run" \
		--listen "127.0.0.1:$p" --store "$R_URL" >>"$B_DATA/r$p.log" 2>&1 &
	B_PIDS+=($!)
done
check "both servers of a simultaneous first start come up" \
	wait_for sh -c "curl -sf http://127.0.0.1:$r1/health && curl -sf http://127.0.0.1:$r2/health"
expect_eq "the schema was migrated once" \
	"$(psql -d race -c "select value from meta where key = 'schema_version'")" 6
expect_eq "one admin key between them" "$(psql -d race -c 'select count(*) from api_keys')" 1

# a store that cannot be reached: a clear error naming it, without the password
out=$(timeout 20 "$HUTCH_BIN/hutchd" --roles api --data-dir "$B_DATA" --run-dir "$B_DATA/run" \
	--listen "127.0.0.1:$(free_port)" \
	--store "postgresql://postgres:s3cret-pw@/nosuchdb?host=$PG_DIR&port=5432" 2>&1)
expect_match "an unreachable store is named" "$out" 'PostgreSQL store postgresql://postgres:\*\*\*@/nosuchdb'
[[ "$out" == *s3cret-pw* ]] && fail "the error shows the password" || pass "without the password"
t_done
