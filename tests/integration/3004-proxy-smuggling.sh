#!/bin/bash
# Proxy framing safety: request smuggling shapes are refused before anything reaches a sandbox
# (CL+TE, two Content-Lengths, bad chunk sizes, obs-fold, odd transfer codings), a request hidden
# in a body stays body, and malformed or smuggling-shaped upstream responses become 502.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

S=$(sandbox_id 1)
sbx "$S" team-a web running "[$UPORT]" 1
proxy_start
F=$HUTCH_ROOT/tests/integration/helpers/proxy/fake.py
AUTH="Authorization: Bearer $KEY_A"

# raw NAME BYTES: sends BYTES (printf format) on a fresh connection, prints the answer
raw() {
	printf "$2" >"$T/raw.$1"
	python3 "$F" raw --port "$PPORT" --file "$T/raw.$1" --timeout 3
}
smuggle() {
	local name=$1 req=$2
	: >"$T/upstream.log"
	local out
	out=$(raw "$name" "$req")
	expect_match "$name: refused with 400/501" "$(head -n 1 <<<"$out")" '^HTTP/1.1 (400|501) '
	if grep -q "smuggled" "$T/upstream.log"; then
		fail "$name: a smuggled request reached the sandbox"
	else
		pass "$name: nothing smuggled reached the sandbox"
	fi
}

H="Host: $S.local\r\n$AUTH\r\n"
smuggle cl-te "POST /echo HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle te-cl "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle double-cl "POST /echo HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 39\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle cl-list "POST /echo HTTP/1.1\r\n${H}Content-Length: 0, 39\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle bad-chunk-size "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\n\r\n0\r\n\r\n"
smuggle chunk-size-overflow "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000000000001\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle negative-cl "POST /echo HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle obs-fold "GET /echo HTTP/1.1\r\n${H}X-A: a\r\n b\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle obs-fold-te "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle te-identity "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle te-double "POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"
smuggle space-before-colon "POST /echo HTTP/1.1\r\n${H}Content-Length : 39\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n"

# a request hidden in a well-framed body is only body
: >"$T/upstream.log"
inner="GET /smuggled HTTP/1.1\r\nHost: $S.local\r\n\r\n"
len=$(printf "$inner" | wc -c)
out=$(raw body "POST /echo HTTP/1.1\r\n${H}Content-Length: $len\r\nConnection: close\r\n\r\n$inner")
expect_match "framed body: answered once" "$out" "\"body_len\": $len"
grep -q smuggled "$T/upstream.log" && fail "framed body: inner request executed" || pass "framed body: inner request stayed body"

# pipelined requests are each routed (and authorized) on their own
out=$(raw pipeline "GET /echo HTTP/1.1\r\n${H}\r\nGET /echo HTTP/1.1\r\nHost: $S.local\r\nConnection: close\r\n\r\n")
expect_eq "pipelined: first authorized, second (no key) refused" \
	"$(grep -o 'HTTP/1.1 [0-9]*' <<<"$out" | tr '\n' ' ')" "HTTP/1.1 200 HTTP/1.1 401 "

# malformed upstream responses
for kind in clte 2cl fold te 2te status garbage 101 name; do
	out=$(curl -s -w ' %{http_code}' --max-time 10 -H "$AUTH" -H "Host: $S.local" "$P:$PPORT/bad/$kind")
	expect_match "upstream response '$kind': 502 PROXY_ERROR" "$out" 'PROXY_ERROR.* 502$'
done
curl -s -o /dev/null --max-time 10 -H "$AUTH" -H "Host: $S.local" "$P:$PPORT/bad/chunk"
expect_eq "bad chunk size after the head was passed on: the client connection is cut (curl 18)" "$?" 18
out=$(curl -s -w ' %{http_code}' --max-time 10 -H "$AUTH" -H "Host: $S.local" "$P:$PPORT/nothing")
expect_match "upstream closes without answering: 502 CONNECTION_CLOSED" "$out" 'CONNECTION_CLOSED.* 502$'
expect_eq "the proxy still serves" "$(code -H "$AUTH" -H "Host: $S.local" "$P:$PPORT/echo")" 200

# header limits are the http layer's
big=$(head -c 40000 /dev/zero | tr '\0' a)
expect_eq "oversized header: 431" "$(code -H "$AUTH" -H "Host: $S.local" -H "X-Big: $big" "$P:$PPORT/echo")" 431
many=()
for i in $(seq 1 120); do many+=(-H "X-H$i: v"); done
expect_eq "too many headers: 431" "$(code -H "$AUTH" -H "Host: $S.local" "${many[@]}" "$P:$PPORT/echo")" 431

proxy_stop
t_done
