#!/bin/bash
# Proxy streaming: SSE events pass through as they are sent, 100 MB uploads and downloads
# (Content-Length and chunked) streamed with bounded memory, a slow reader, HEAD / 204 / 304,
# a close-delimited response from a half-closed upstream, WebSocket echo on the agent and on a
# user port, and a client disconnect mid-stream freeing the upstream connection.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

S=$(sandbox_id 1)
sbx "$S" team-a web running "[$UPORT]" 0
proxy_start
A=(-H "Authorization: Bearer $KEY_A" -H "Host: $S.local")
U=(-H "Authorization: Bearer $KEY_A" -H "Host: $UPORT-$S.sandbox.test")
F=$HUTCH_ROOT/tests/integration/helpers/proxy/fake.py
MB100=$((100 * 1024 * 1024))

# SSE: the first event must arrive long before the upstream finishes
sse=$(python3 "$F" sse --port "$PPORT" --host "$S.local" --path "/sse?n=4&delay=0.7" \
	--header "Authorization: Bearer $KEY_A")
read -r first total events ctype < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["first"], d["total"], d["events"], d["ctype"])' "$sse")
expect_eq "SSE: all events arrive" "$events" 4
expect_eq "SSE: content type passed" "$ctype" "text/event-stream"
check "SSE: first event after ${first}s, stream ended after ${total}s" \
	python3 -c "import sys; sys.exit(0 if $first < 0.5 and $total > 2.0 else 1)"

# 100 MB download, Content-Length and chunked
want=$(python3 "$F" pattern --bytes $MB100 | sha256sum | cut -d' ' -f1)
got=$(curl -s --max-time 120 "${A[@]}" "$P:$PPORT/download?bytes=$MB100" -D "$T/dl.h" | sha256sum | cut -d' ' -f1)
expect_eq "100 MB download (Content-Length) intact" "$got" "$want"
expect_match "... Content-Length passed through" "$(cat "$T/dl.h")" "Content-Length: $MB100"
got=$(curl -s --max-time 120 "${U[@]}" "$P:$PPORT/download?bytes=$MB100&chunked=1" -D "$T/dl2.h" | sha256sum | cut -d' ' -f1)
expect_eq "100 MB download (chunked, user port) intact" "$got" "$want"
expect_match "... chunked to the client" "$(cat "$T/dl2.h")" "Transfer-Encoding: chunked"

# 100 MB upload, Content-Length and chunked
python3 "$F" pattern --bytes $MB100 >"$T/big"
up=$(curl -s --max-time 120 "${A[@]}" -H "Expect:" -T "$T/big" "$P:$PPORT/upload")
expect_eq "100 MB upload (Content-Length) intact" "$up" "{\"bytes\": $MB100, \"sha256\": \"$want\"}"
up=$(curl -s --max-time 120 "${U[@]}" -H "Expect:" -H "Transfer-Encoding: chunked" -T - "$P:$PPORT/upload" <"$T/big")
expect_eq "100 MB upload (chunked, user port) intact" "$up" "{\"bytes\": $MB100, \"sha256\": \"$want\"}"
up=$(curl -s --max-time 120 "${A[@]}" -T "$T/big" "$P:$PPORT/upload" -w ' %{time_total}')
expect_eq "100 MB upload with Expect: 100-continue" "${up% *}" "{\"bytes\": $MB100, \"sha256\": \"$want\"}"
echo "    (upload with Expect took ${up##* }s)"
rm -f "$T/big"
W=$(proxy_worker_pid)
if is_san_build; then
	pass "peak memory not checked in a sanitizer build (ASan quarantine)"
else
	hwm=$(proc_kb "$W" VmHWM)
	check "proxy peak RSS ${hwm} KiB after 500 MB streamed (< 64 MiB)" test "$hwm" -lt 65536
fi

# a slow reader: the proxy stops reading the upstream instead of buffering
rss0=$(proc_kb "$W" VmRSS)
python3 "$F" slowread --port "$PPORT" --host "$S.local" --path "/download?bytes=$((200 * 1024 * 1024))" \
	--header "Authorization: Bearer $KEY_A" --pidfile "$T/slow.flag" --hold 3 >"$T/slow.out" &
SLOW=$!
wait_for test -s "$T/slow.flag"
sleep 1.5
rss1=$(proc_kb "$W" VmRSS)
wait $SLOW
check "slow reader: proxy RSS grew $(( (rss1 - rss0) / 1024 )) MiB while the client paused (< 16 MiB)" \
	test $((rss1 - rss0)) -lt 16384
read -r n sum <"$T/slow.out"
expect_eq "slow reader: download intact" "$sum" "$(python3 "$F" pattern --bytes $((200 * 1024 * 1024)) | sha256sum | cut -d' ' -f1)"

# HEAD, 204, 304 and reuse of the connection afterwards
out=$(curl -s -i --max-time 10 "${A[@]}" -I "$P:$PPORT/anything" --next "${A[@]}" "$P:$PPORT/echo" -w '%{num_connects}')
expect_match "HEAD keeps Content-Length" "$out" "Content-Length: 1234"
expect_match "HEAD then GET on the same connection" "$out" '"served_by": "agent".*\}0$'
out=$(curl -s -i --max-time 10 "${A[@]}" "$P:$PPORT/status/204" --next -i "${A[@]}" "$P:$PPORT/status/304" \
	--next "${A[@]}" "$P:$PPORT/echo" -w '%{num_connects}')
expect_match "204 passed" "$out" "HTTP/1.1 204"
expect_match "304 passed" "$out" "HTTP/1.1 304"
expect_match "... and the connection still works" "$out" '"served_by": "agent".*\}0$'
expect_eq "error statuses pass through" "$(code "${A[@]}" "$P:$PPORT/status/418")" 418

# a close-delimited response from an upstream that half-closes
out=$(curl -s --max-time 10 "${A[@]}" "$P:$PPORT/halfclose" -w ' %{http_code}' --next "${A[@]}" "$P:$PPORT/echo" -w ' %{num_connects}')
expect_match "half-closed upstream: body complete" "$out" '^until-close 200'
expect_match "... and the client connection stays usable" "$out" '"served_by": "agent".*\} 0$'

# WebSocket echo through the proxy
ws=$(python3 "$F" ws --port "$PPORT" --host "$S.local" --path /ws --header "Authorization: Bearer $KEY_A")
expect_match "WebSocket: 101 from the agent" "$ws" "HTTP/1.1 101"
expect_match "WebSocket: greeting" "$ws" "greeting 1 hello from agent"
expect_match "WebSocket: echo of 3 messages (up to 200 KB)" "$ws" "echo ok"
expect_match "WebSocket: close handshake and EOF" "$ws" "eof True"
ws=$(python3 "$F" ws --port "$PPORT" --host "$UPORT-$S.sandbox.test" --path /ws --header "Authorization: Bearer $KEY_A")
expect_match "WebSocket on a user port" "$ws" "hello from tcp:$UPORT"
ws=$(python3 "$F" ws --port "$PPORT" --host "$S.local" --path /ws)
expect_match "WebSocket upgrade needs credentials like any request" "$ws" "HTTP/1.1 401"

# a client disconnect mid-stream frees the upstream connection
: >"$T/upstream.log"
curl -s --max-time 1 "${A[@]}" "$P:$PPORT/download?bytes=$((4 * 1024 * 1024 * 1024))" >/dev/null
check "client gone mid-download: the upstream sees its connection closed" \
	wait_for grep -q "ABORTED download" "$T/upstream.log"
expect_eq "the proxy still serves" "$(code "${A[@]}" "$P:$PPORT/echo")" 200

proxy_stop
t_done
