#!/bin/bash
# Proxy routing: {id}.local and {label}.{domain} hosts, the X-Tensorlake-Sandbox-Id/-Port headers,
# names, path and query, per-request routing on one keep-alive connection, a store update seen by
# the very next request, states, placement, forwarded headers, credentials stripped, CORS.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

S1=$(sandbox_id 1)
S2=$(sandbox_id 2)
S3=$(sandbox_id 3)
sbx "$S1" team-a web running "[$UPORT]"
sbx "$S2" team-a - running "[$UPORT2]"
sbx "$S3" team-b web running "[$UPORT]" 1
proxy_start

A=(-H "Authorization: Bearer $KEY_A")
get() { body "${A[@]}" "$@"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }

# hosts
expect_eq "local host {id}.local -> agent" \
	"$(get -H "Host: $S1.local" "$P:$PPORT/echo" | field '["served_by"]')" agent
expect_eq "local host with a port" \
	"$(get -H "Host: $S1.local:9443" "$P:$PPORT/echo" | field '["served_by"]')" agent
expect_eq "domain host {id}.domain -> agent" \
	"$(get -H "Host: $S1.sandbox.test:$PPORT" "$P:$PPORT/echo" | field '["served_by"]')" agent
expect_eq "domain host {port}-{id}.domain -> user port" \
	"$(get -H "Host: $UPORT-$S1.sandbox.test" "$P:$PPORT/echo" | field '["served_by"]')" "tcp:$UPORT"
expect_eq "9501-{id} label normalises to the agent" \
	"$(get -H "Host: 9501-$S1.sandbox.test" "$P:$PPORT/echo" | field '["served_by"]')" agent
expect_eq "name in the host label resolves in the caller's namespace" \
	"$(get -H "Host: $UPORT-web.sandbox.test" "$P:$PPORT/echo" | field '["served_by"]')" "tcp:$UPORT"
expect_eq "name.local" \
	"$(get -H "Host: web.local" "$P:$PPORT/echo" | field '["served_by"]')" agent

# headers win
expect_eq "X-Tensorlake-Sandbox-Id routes to the agent" \
	"$(get -H "Host: localhost" -H "X-Tensorlake-Sandbox-Id: $S1" "$P:$PPORT/echo" | field '["served_by"]')" agent
expect_eq "X-Tensorlake-Sandbox-Port picks the user port" \
	"$(get -H "X-Tensorlake-Sandbox-Id: $S2" -H "X-Tensorlake-Sandbox-Port: $UPORT2" "$P:$PPORT/echo" | field '["served_by"]')" "tcp:$UPORT2"
expect_eq "the id header wins over the host" \
	"$(get -H "Host: $UPORT-$S1.sandbox.test" -H "X-Tensorlake-Sandbox-Id: $S2" -H "X-Tensorlake-Sandbox-Port: $UPORT2" "$P:$PPORT/echo" | field '["served_by"]')" "tcp:$UPORT2"
expect_eq "names in the id header" \
	"$(get -H "X-Tensorlake-Sandbox-Id: web" "$P:$PPORT/echo" | field '["served_by"]')" agent

# path and query preserved
expect_eq "path and query preserved" \
	"$(get -H "Host: $S1.local" "$P:$PPORT/echo/a%20b/c?x=1&y=%2F+z" | field '["target"]')" "/echo/a%20b/c?x=1&y=%2F+z"

# errors
expect_eq "nothing names a sandbox: 400" "$(code "${A[@]}" "$P:$PPORT/echo")" 400
expect_match "... with code MISSING_SANDBOX_ID" "$(get "$P:$PPORT/echo")" '"code":"MISSING_SANDBOX_ID"'
expect_eq "bad label: 400" "$(code "${A[@]}" -H "Host: a_b.local" "$P:$PPORT/")" 400
expect_eq "bad port header: 400" "$(code "${A[@]}" -H "X-Tensorlake-Sandbox-Id: $S1" -H "X-Tensorlake-Sandbox-Port: 99999" "$P:$PPORT/")" 400
expect_eq "unknown sandbox: 404" "$(code "${A[@]}" -H "Host: $(sandbox_id 99).local" "$P:$PPORT/")" 404
expect_match "... SANDBOX_NOT_FOUND" "$(get -H "Host: nosuch.local" "$P:$PPORT/")" '"code":"SANDBOX_NOT_FOUND"'

# one keep-alive connection, many sandboxes, each request routed on its own
out=$(curl -s --max-time 20 "${A[@]}" -H "X-Tensorlake-Sandbox-Id: $S1" "$P:$PPORT/echo" \
	--next "${A[@]}" -H "X-Tensorlake-Sandbox-Id: $S2" -H "X-Tensorlake-Sandbox-Port: $UPORT2" "$P:$PPORT/echo" \
	--next "${A[@]}" -H "Host: $UPORT-$S1.sandbox.test" "$P:$PPORT/echo" \
	--next "${A[@]}" -H "Host: $S1.local" "$P:$PPORT/echo" -w '\n%{num_connects}\n')
expect_eq "keep-alive connection: each request routed by its own headers" \
	"$(grep -o '"served_by": "[^"]*"' <<<"$out" | tr '\n' ' ')" \
	"\"served_by\": \"agent\" \"served_by\": \"tcp:$UPORT2\" \"served_by\": \"tcp:$UPORT\" \"served_by\": \"agent\" "
expect_eq "... over one client connection" "$(tail -n 1 <<<"$out")" 0
reqs=$(get -H "Host: $S1.local" "$P:$PPORT/echo" | field '["conn_requests"]')
expect_match "upstream connections are pooled (request $reqs on the agent connection)" "$reqs" '^([2-9]|[1-9][0-9]+)$'

# a store update (what a PATCH commits) is seen by the very next request
H=(-H "Host: $UPORT2-$S2.sandbox.test")
"$ST" "$DB" set "$S2" exposed_ports "[]"
expect_eq "unexposed port: 403" "$(code "${A[@]}" "${H[@]}" "$P:$PPORT/echo")" 403
"$ST" "$DB" set "$S2" exposed_ports "[$UPORT, $UPORT2]"
expect_eq "exposing it takes effect on the next request" "$(code "${A[@]}" "${H[@]}" "$P:$PPORT/echo")" 200
"$ST" "$DB" set "$S2" exposed_ports "[]"
expect_eq "unexposing it too" "$(code "${A[@]}" "${H[@]}" "$P:$PPORT/echo")" 403
expect_eq "anonymous: 401 before public" "$(code "${H[@]}" "$P:$PPORT/echo")" 401
"$ST" "$DB" set "$S2" exposed_ports "[$UPORT2]"
"$ST" "$DB" set "$S2" allow_unauth 1
expect_eq "allow_unauthenticated_access takes effect at once" "$(code "${H[@]}" "$P:$PPORT/echo")" 200
"$ST" "$DB" set "$S2" name renamed
expect_eq "a rename takes effect at once" "$(code "${A[@]}" -H "Host: renamed.local" "$P:$PPORT/echo")" 200

# states and placement
"$ST" "$DB" set "$S2" status pending
expect_eq "pending: 503" "$(code "${A[@]}" -H "Host: $S2.local" "$P:$PPORT/echo")" 503
expect_match "... SANDBOX_NOT_RUNNING with the state" "$(get -H "Host: $S2.local" "$P:$PPORT/echo")" 'SANDBOX_NOT_RUNNING.*|state: pending'
"$ST" "$DB" set "$S2" status terminated
expect_match "terminated: 503 with the state" "$(get -H "Host: $S2.local" "$P:$PPORT/echo")" 'state: terminated'
"$ST" "$DB" set "$S2" archived 1
expect_eq "archived: 404" "$(code "${A[@]}" -H "Host: $S2.local" "$P:$PPORT/echo")" 404
"$ST" "$DB" set "$S2" archived 0
"$ST" "$DB" set "$S2" status running
"$ST" "$DB" set "$S2" executor_id node2
expect_match "sandbox on another node without an advertised proxy: 502" \
	"$(curl -s -w ' %{http_code}' "${A[@]}" -H "Host: $S2.local" "$P:$PPORT/echo")" 'node2.* 502$'
"$ST" "$DB" set "$S2" executor_id node1

# forwarded headers, credentials
hdrs=$(get -H "Host: $S1.local" -H "Cookie: c=1" -H "X-Forwarded-For: 6.6.6.6" "$P:$PPORT/echo" | field '["headers"]')
expect_match "X-Forwarded-For is the client" "$hdrs" "'x-forwarded-for': '127.0.0.1'"
expect_match "X-Forwarded-Proto" "$hdrs" "'x-forwarded-proto': 'http'"
expect_match "X-Forwarded-Host" "$hdrs" "'x-forwarded-host': '$S1.local'"
expect_match "Host passed on" "$hdrs" "'host': '$S1.local'"
[[ "$hdrs" == *authorization* ]] && fail "Authorization reached the agent" || pass "Authorization stripped for the agent"
[[ "$hdrs" == *cookie* ]] && fail "Cookie reached the agent" || pass "Cookie stripped for the agent"
hdrs=$(body -H "Authorization: Bearer $KEY_B" -H "Cookie: c=1" -H "Host: $UPORT-$S3.sandbox.test" "$P:$PPORT/echo" | field '["headers"]')
[[ "$hdrs" == *authorization* ]] && fail "Authorization reached a user port" || pass "Authorization stripped for user ports"
expect_match "cookies pass to a user port addressed by its own host" "$hdrs" "'cookie': 'c=1'"
hdrs=$(body -H "Cookie: c=1" -H "X-Tensorlake-Sandbox-Id: $S3" -H "X-Tensorlake-Sandbox-Port: $UPORT" "$P:$PPORT/echo" | field '["headers"]')
[[ "$hdrs" == *cookie* ]] && fail "Cookie passed on a header-routed request" || pass "Cookie stripped on header-routed requests"

# CORS
pre=$(curl -s -i -X OPTIONS -H "Origin: https://app.example" -H "Access-Control-Request-Method: POST" \
	-H "Host: $S1.local" "$P:$PPORT/api/v1/processes")
expect_match "preflight answered locally with 204" "$pre" "HTTP/1.1 204"
expect_match "... echoes the origin" "$pre" "Access-Control-Allow-Origin: https://app.example"
expect_match "... allows credentials" "$pre" "Access-Control-Allow-Credentials: true"
expect_match "... methods" "$pre" "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS, PATCH"
expect_match "... headers" "$pre" "Access-Control-Allow-Headers: content-type, authorization, x-tensorlake-sandbox-id, x-tensorlake-sandbox-port, x-pty-token"
expect_match "... max-age" "$pre" "Access-Control-Max-Age: 86400"
grep -q "OPTIONS" "$T/upstream.log" && fail "preflight reached the upstream" || pass "preflight not forwarded"
resp=$(curl -s -i "${A[@]}" -H "Origin: https://app.example" -H "Host: $S1.local" "$P:$PPORT/echo")
expect_match "origin echoed on proxied responses" "$resp" "Access-Control-Allow-Origin: https://app.example"
expect_match "upstream headers passed back" "$resp" "Set-Cookie: app=1"
resp=$(curl -s -i -H "Origin: https://app.example" -H "Host: $S1.local" "$P:$PPORT/echo")
expect_match "origin echoed on local errors too" "$resp" "Access-Control-Allow-Origin: https://app.example"
resp=$(curl -s -i "${A[@]}" -H "Origin: https://other.example" -H "Host: $S1.local" "$P:$PPORT/cors")
expect_eq "the upstream's own CORS answer is kept" "$(grep -ci '^Access-Control-Allow-Origin' <<<"$resp")" 1

proxy_stop
t_done
