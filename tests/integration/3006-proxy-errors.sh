#!/bin/bash
# Proxy upstream failures and their answers: refused (502 CONNECTION_REFUSED), connect and
# first-byte timeouts (504 CONNECTION_TIMEOUT / READ_TIMEOUT), missing addresses, a response cut
# short, and a pooled connection the sandbox dropped (retried once on a new one).
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

S=$(sandbox_id 1)
DEAD=$(free_port)
HOLE=$(free_port)
sbx "$S" team-a web running "[$UPORT, $DEAD, $HOLE]" 1
NOSOCK=$(sandbox_id 2)
"$ST" "$DB" put "$NOSOCK" team-a nosock running "$T/missing.sock" - "[8080]" 1 node1
NOADDR=$(sandbox_id 3)
"$ST" "$DB" put "$NOADDR" team-a noaddr running - - "[8080]" 1 node1
python3 "$HUTCH_ROOT/tests/integration/helpers/proxy/fake.py" blackhole --port "$HOLE" >"$T/hole.out" &
PIDS+=($!)
wait_for grep -q READY "$T/hole.out"
HUTCHD_PROXY_FIRST_BYTE_TIMEOUT_MS=1000 HUTCHD_PROXY_CONNECT_TIMEOUT_MS=1000 proxy_start
A=(-H "Authorization: Bearer $KEY_A")
req() { curl -s -w ' %{http_code}' --max-time 20 "${A[@]}" "$@"; }

expect_match "nothing listens on the port: 502 CONNECTION_REFUSED" \
	"$(req -H "Host: $DEAD-$S.sandbox.test" "$P:$PPORT/")" 'CONNECTION_REFUSED.* 502$'
expect_match "the agent socket is missing: 502 CONNECTION_REFUSED" \
	"$(req -H "Host: $NOSOCK.local" "$P:$PPORT/")" 'CONNECTION_REFUSED.* 502$'
expect_match "no agent socket recorded: 503" "$(req -H "Host: $NOADDR.local" "$P:$PPORT/")" 'SANDBOX_NOT_RUNNING.* 503$'
expect_match "no address for user ports: 502" "$(req -H "Host: 8080-$NOADDR.sandbox.test" "$P:$PPORT/")" 'no network address.* 502$'

start=$(date +%s.%N)
out=$(req -H "Host: $HOLE-$S.sandbox.test" "$P:$PPORT/")
took=$(python3 -c "import time; print(round(time.time() - $start, 2))")
expect_match "connect hangs: 504 CONNECTION_TIMEOUT" "$out" 'CONNECTION_TIMEOUT.* 504$'
check "... after the connect bound (${took}s)" python3 -c "import sys; sys.exit(0 if 0.9 < $took < 3 else 1)"

start=$(date +%s.%N)
out=$(req -H "Host: $S.local" "$P:$PPORT/slow?delay=3")
took=$(python3 -c "import time; print(round(time.time() - $start, 2))")
expect_match "no first byte in time: 504 READ_TIMEOUT" "$out" 'READ_TIMEOUT.* 504$'
check "... after the first-byte bound (${took}s)" python3 -c "import sys; sys.exit(0 if 0.9 < $took < 3 else 1)"
out=$(req -H "Host: $S.local" "$P:$PPORT/sse?n=3&delay=1.2")
expect_match "streams may be idle longer than the first-byte bound once started" "$out" '"i":2.* 200$'

curl -s -o /dev/null --max-time 10 "${A[@]}" -H "Host: $S.local" "$P:$PPORT/bad/short"
expect_eq "a body cut short by the sandbox cuts the client connection (curl 18)" "$?" 18

: >"$T/upstream.log"
out=$(curl -s --max-time 10 "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo?drop_next=1" \
	--next "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo?second" -w ' %{http_code}')
expect_match "a pooled connection dropped by the sandbox is retried on a new one" "$out" '"target": "/echo\?second".* 200$'
expect_eq "... (the sandbox dropped it once)" "$(grep -c DROPPED "$T/upstream.log")" 1
out=$(curl -s --max-time 10 "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo?drop_next=1" \
	--next "${A[@]}" -H "Host: $S.local" -d 'some body' "$P:$PPORT/echo?post" -w ' %{http_code}')
expect_match "... but not a request whose body was already sent: 502" "$out" 'CONNECTION_CLOSED.* 502$'

expect_eq "the proxy still serves" "$(code "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo")" 200

# graceful shutdown: a request in flight finishes, new ones are turned away meanwhile
curl -s -o "$T/inflight" -w '%{http_code}' --max-time 10 "${A[@]}" -H "Host: $S.local" \
	"$P:$PPORT/slow?delay=0.8" >"$T/inflight.code" &
INFLIGHT=$!
sleep 0.3
kill -TERM "$PROXY_PID"
sleep 0.2
out=$(curl -s -w ' %{http_code}' --max-time 5 "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo")
expect_match "shutting down: new requests get 503" "$out" 'shutting down.* 503$'
wait "$INFLIGHT"
expect_eq "shutting down: the request in flight completes" "$(cat "$T/inflight.code")" 200
proxy_stop
t_done
