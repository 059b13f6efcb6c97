#!/bin/bash
# Two nodes on one PostgreSQL store (a throwaway cluster of this test's own): node A runs the api
# and a proxy without an executor, node B an executor and a proxy that advertises itself
# (--proxy-advertise). A sandbox created through A lands on B; A's proxy forwards to B's proxy
# for commands (SSE), files, a WebSocket tunnel and an exposed user port; a wrong key is refused
# through A; a request already forwarded once is never forwarded again; the hop header never
# reaches the sandbox; B's proxy serves the sandbox directly too.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq; need_cmd python3
pg_test_cluster
URL="$PG_URL"

# node B's data, run dir and network slot, set before anything can fail so cleanup sees them
B_DATA=$(mktemp -d /tmp/hutch-it-b-XXXXXX)
B_RUN=/run/hutch-it-b-${B_DATA##*-}
B_NODE=it-b-${B_DATA##*-}
B_PID=
B_SLOT=

# b_vars CMD...: runs CMD with lib.sh's per-server variables pointing at node B
b_vars() {
	local a_data=$T_DATA a_run=$T_RUN a_cgroup=$T_CGROUP a_veth=${T_VETH_PREFIX:-}
	local a_flags=("${T_NETFLAGS[@]}") a_slot=${T_NETSLOT:-} rc
	T_DATA=$B_DATA T_RUN=$B_RUN T_CGROUP=$B_CGROUP T_VETH_PREFIX=$B_VETH
	T_NETFLAGS=("${B_NETFLAGS[@]}")
	"$@"; rc=$?
	T_DATA=$a_data T_RUN=$a_run T_CGROUP=$a_cgroup T_VETH_PREFIX=$a_veth
	T_NETFLAGS=("${a_flags[@]}") T_NETSLOT=$a_slot
	return $rc
}

b_stop() {
	[ -n "$B_PID" ] || return 0
	kill "$B_PID" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$B_PID" 2>/dev/null || break; sleep 0.05; done
	pkill -KILL -f -- "--data-dir $B_DATA " 2>/dev/null
	wait "$B_PID" 2>/dev/null
	B_PID=
}

cleanup_all() {
	b_stop
	if [ -d "$B_DATA" ]; then
		"$HUTCH_BIN/hutchd" --cleanup --data-dir "$B_DATA" --run-dir "$B_RUN" \
			--node-id "$B_NODE" "${B_NETFLAGS[@]}" --store "$URL" \
			>>"$B_DATA/cleanup.log" 2>&1 ||
			echo "    | node B: hutchd --cleanup failed: $(tail -n 2 "$B_DATA/cleanup.log" | tr '\n' ' ')"
		umount -l "$B_DATA/runtime" 2>/dev/null || true
		[ "$T_FAILS" -gt 0 ] && cp "$B_DATA/hutchd.log" /tmp/hutchd-failed-1080-node-b.log 2>/dev/null &&
			echo "    | node B's log kept in /tmp/hutchd-failed-1080-node-b.log"
		rm -rf "$B_DATA" "$B_RUN"
	fi
	[ -n "$B_SLOT" ] && rm -rf "/run/hutch-it-netslot.$B_SLOT"
	hutchd_cleanup
	pg_cluster_stop
}

# node A: api and proxy, no executor
if ! hutchd_start --roles api,proxy --store "$URL"; then
	fail "node A (api, proxy) starts on the PostgreSQL store"
	cleanup_all
	t_done
fi
trap cleanup_all EXIT
PROXY_A=$PROXY

# node B: executor and proxy, its own network slot (net_slot records the owner as T_DATA)
mkdir -p "$B_DATA/runtime"
[ -d "$HUTCH_TEST_CACHE/runtime/images" ] && ln -s "$HUTCH_TEST_CACHE/runtime/images" "$B_DATA/runtime/images"
cp "$T_DATA/node.token" "$B_DATA/node.token"
a_flags=("${T_NETFLAGS[@]}") a_slot=$T_NETSLOT a_cgroup=$T_CGROUP a_veth=$T_VETH_PREFIX a_data=$T_DATA
T_DATA=$B_DATA
if ! net_slot; then T_DATA=$a_data; fail "a network slot for node B"; t_done; fi
B_NETFLAGS=("${T_NETFLAGS[@]}") B_SLOT=$T_NETSLOT B_CGROUP=$T_CGROUP B_VETH=$T_VETH_PREFIX
T_NETFLAGS=("${a_flags[@]}") T_NETSLOT=$a_slot T_CGROUP=$a_cgroup T_VETH_PREFIX=$a_veth T_DATA=$a_data
[ "$B_SLOT" != "$T_NETSLOT" ] && pass "node B has a network slot of its own ($B_SLOT, A: $T_NETSLOT)" ||
	fail "node B's slot collides with A's"
bport=$(free_port)
PROXY_B=http://127.0.0.1:$bport
"$HUTCH_BIN/hutchd" --roles executor,proxy --data-dir "$B_DATA" --run-dir "$B_RUN" \
	--api-url "$API" --proxy-listen "127.0.0.1:$bport" --proxy-advertise "127.0.0.1:$bport" \
	--agent-path "$HUTCH_AGENT" --node-id "$B_NODE" "${B_NETFLAGS[@]}" --store "$URL" \
	--suspend-to-disk-secs -1 \
	>>"$B_DATA/hutchd.log" 2>&1 &
B_PID=$!
b_registered() {
	[ "$(psql -d hutch -c "select address from executors where id = '$B_NODE'")" = "127.0.0.1:$bport" ]
}
check "node B's executor registers its advertised proxy with the api" wait_for b_registered

# a bad --proxy-advertise is refused at start
out=$(timeout 10 "$HUTCH_BIN/hutchd" --roles proxy --data-dir "$B_DATA" --proxy-advertise "127.0.0.1:0" 2>&1)
expect_match "--proxy-advertise with port 0 is refused" "$out" 'proxy-advertise'
out=$(timeout 10 "$HUTCH_BIN/hutchd" --roles proxy --data-dir "$B_DATA" --proxy-advertise "nohost" 2>&1)
expect_match "--proxy-advertise without a port is refused" "$out" 'proxy-advertise'

# a sandbox through A lands on B, the only executor
T="X-Tensorlake-Request-Timeout-Ms: 30000"
id=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" \
	-d '{"image":"busybox","name":"multinode","resources":{"memory_mb":256}}' | jq_get .sandbox_id)
expect_eq "a blocking create through A runs" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
expect_eq "on node B's executor" "$(psql -d hutch -c "select executor_id from sandboxes where id = '$id'")" "$B_NODE"
B_IDS=$id

# a command through A's proxy (SSE)
PROXY=$PROXY_A
sb_run "$id" 'echo hello from $(hostname)' >"$B_DATA/out" # not in a subshell: sets RC, SSE_RAW
out=$(cat "$B_DATA/out")
expect_match "a command runs through node A's proxy" "$out" '^hello from '
expect_eq "and exits 0" "$RC" 0
expect_match "its output arrives as SSE" "$SSE_RAW" 'data: '

# files through A
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH" -H "Host: $id.local" \
	--data-binary 'across hosts' "$PROXY_A/api/v1/files?path=/tmp/x.txt")
expect_eq "a file write through A" "$code" 204
expect_eq "reads back through A" \
	"$(curl -s -H "$AUTH" -H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt")" "across hosts"
expect_eq "and through B" \
	"$(curl -s -H "$AUTH" -H "Host: $id.local" "$PROXY_B/api/v1/files?path=/tmp/x.txt")" "across hosts"
# a 1 MiB body streams both ways intact
head -c 1048576 /dev/urandom >"$B_DATA/blob"
curl -s -o /dev/null -X PUT -H "$AUTH" -H "Host: $id.local" --data-binary @"$B_DATA/blob" \
	"$PROXY_A/api/v1/files?path=/tmp/blob"
expect_eq "a 1 MiB file round-trips through A" \
	"$(curl -s -H "$AUTH" -H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/blob" | sha256sum)" \
	"$(sha256sum <"$B_DATA/blob")"

# an exposed user port through A (by the {port}-{id} host)
sb_run "$id" 'mkdir -p /www && echo served > /www/index.html && httpd -p 8000 -h /www' >/dev/null
api PATCH "/sandboxes/$id" '{"exposed_ports":[8000,8001]}'
expect_eq "PATCH exposed_ports through A" "$CODE" 200
expect_eq "the user port answers through A" \
	"$(curl -s -m 5 -H "$AUTH" -H "Host: 8000-$id.local" "$PROXY_A/index.html")" served

# what reaches the sandbox: the hop header and the key are stripped
sb_run "$id" '(nc -l -p 8001 > /tmp/req.txt 2>/dev/null &) ; sleep 0.3' >/dev/null
curl -s -o /dev/null -m 2 -H "$AUTH" -H "Host: 8001-$id.local" -H "X-Probe: yes" "$PROXY_A/probe"
req=$(sb_run "$id" 'cat /tmp/req.txt')
expect_match "the request reached the sandbox's port" "$req" 'X-Probe: yes'
[[ "${req,,}" == *x-hutch-forwarded* ]] && fail "the hop header reached the sandbox: $req" ||
	pass "the hop header is stripped before the sandbox"
[[ "${req,,}" == *authorization* ]] && fail "the API key reached the sandbox" ||
	pass "the API key is stripped before the sandbox"

# a WebSocket (a TCP tunnel to the httpd) through A
ws=$(python3 - "${PROXY_A#http://}" "$id" "$KEY" <<'EOF'
import base64, os, socket, struct, sys
hostport, sid, key = sys.argv[1], sys.argv[2], sys.argv[3]
h, p = hostport.rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=10)
k = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /api/v1/tunnels/tcp?port=8000 HTTP/1.1\r\nHost: %s.local\r\n"
           "Authorization: Bearer %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (sid, key, k)).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
head, _, buf = buf.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
msg = b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n"
m = os.urandom(4)
s.sendall(bytes([0x82, 0x80 | len(msg)]) + m + bytes(b ^ m[i & 3] for i, b in enumerate(msg)))
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d
    r, buf = buf[:n], buf[n:]
    return r
got = b""
try:
    while True:
        b0, b1 = need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", need(8))[0]
        payload = need(n)
        if b0 & 0x0F == 8:
            break
        got += payload
except (EOFError, OSError):
    pass
print(got.decode(errors="replace").replace("\r", ""))
EOF
)
expect_match "a WebSocket upgrade through A is 101" "$(head -n 1 <<<"$ws")" '^HTTP/1.1 101'
expect_match "and the tunnel carries the port's bytes" "$ws" 'served'

# credentials are checked again on B: a wrong key through A is 401
code=$(curl -s -o /tmp/hutch-1080.$$ -w '%{http_code}' -H "Authorization: Bearer wrongkey" \
	-H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt")
expect_eq "a wrong key through A is 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt")
expect_eq "no key through A is 401" "$code" 401
# the hop header is no credential
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrongkey" \
	-H "X-Hutch-Forwarded: $B_NODE" -H "Host: $id.local" "$PROXY_B/api/v1/files?path=/tmp/x.txt")
expect_eq "a wrong key with the hop header on B is still 401" "$code" 401

# a request that was already forwarded once is never forwarded again
code=$(curl -s -o /tmp/hutch-1080.$$ -w '%{http_code}' -H "$AUTH" -H "X-Hutch-Forwarded: elsewhere" \
	-H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt")
body=$(cat /tmp/hutch-1080.$$); rm -f /tmp/hutch-1080.$$
expect_eq "a forwarded request for a sandbox not on A is 502" "$code" 502
expect_eq "with code PROXY_ERROR" "$(jq_get .code <<<"$body")" PROXY_ERROR
expect_match "saying it is not forwarded again" "$(jq_get .error <<<"$body")" 'not forwarded again'
expect_eq "on B (the sandbox is local) the hop header does not matter" \
	"$(curl -s -H "$AUTH" -H "X-Hutch-Forwarded: elsewhere" -H "Host: $id.local" "$PROXY_B/api/v1/files?path=/tmp/x.txt")" \
	"across hosts"

# B's proxy serves the sandbox directly too
PROXY=$PROXY_B
out=$(sb_run "$id" 'echo direct')
expect_eq "a command through node B's proxy" "$out" direct
expect_eq "the user port through B" \
	"$(curl -s -m 5 -H "$AUTH" -H "Host: 8000-$id.local" "$PROXY_B/index.html")" served
PROXY=$PROXY_A

# a node that advertises no proxy: a clear 502 (the executor's next poll writes it back)
no_address() {
	psql -d hutch -c "update executors set address = 'local' where id = '$B_NODE'"
	curl -s -o /tmp/hutch-1080.$$ -w '%{http_code}' -H "$AUTH" -H "Host: $id.local" \
		"$PROXY_A/api/v1/files?path=/tmp/x.txt"
}
for _ in 1 2 3; do
	code=$(no_address); body=$(cat /tmp/hutch-1080.$$)
	[ "$code" = 502 ] && break
done
rm -f /tmp/hutch-1080.$$
expect_eq "a sandbox on a node without an advertised proxy is 502" "$code" 502
expect_eq "with code PROXY_ERROR" "$(jq_get .code <<<"$body")" PROXY_ERROR
expect_match "naming --proxy-advertise" "$(jq_get .error <<<"$body")" 'advertises no proxy.*proxy-advertise'
psql -d hutch -c "update executors set address = '127.0.0.1:$bport' where id = '$B_NODE'"

# activity: traffic through A is counted (by B's proxy, which reports it to the api)
act() { psql -d hutch -c "select last_activity_at from sandboxes where id = '$id'"; }
a0=$(act)
sleep 1.2
curl -s -o /dev/null -H "$AUTH" -H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt"
act_moved() { [ "$(act)" -gt "${a0:-0}" ]; }
check "traffic through A moves the sandbox's last activity" wait_for act_moved

# wake on traffic: a suspended sandbox on B is woken by a request through A (B's proxy wakes it)
api POST "/sandboxes/$id/suspend"
expect_match "suspend through A is accepted" "$CODE" "^20[02]$"
suspended() { [ "$(apij GET "/sandboxes/$id" | jq_get .status)" = suspended ]; }
check "the sandbox is suspended through A" wait_for suspended
expect_eq "a request through A wakes it and is answered" \
	"$(curl -s -m 30 -H "$AUTH" -H "Host: $id.local" "$PROXY_A/api/v1/files?path=/tmp/x.txt")" "across hosts"
expect_eq "it runs again" "$(apij GET "/sandboxes/$id" | jq_get .status)" running

# cleanup: delete, both nodes leave nothing behind
api DELETE "/sandboxes/$id"
sb_gone() { [ "$(apij GET "/sandboxes/$id" | jq_get .status)" = terminated ]; }
wait_for sb_gone && pass "the sandbox is deleted through A" ||
	fail "delete: $(apij GET "/sandboxes/$id" | jq_get .status)"
sleep 1
T_IDS=$B_IDS b_vars no_leftovers "node B leaves nothing behind"
no_leftovers "node A leaves nothing behind"
# both servers stop cleanly (under the sanitizer build: no reports, leaks included)
b_stop
hutchd_kill TERM
san_clean() { ! grep -E 'Sanitizer|runtime error' "$1"; }
check "node A stopped cleanly (no sanitizer reports)" san_clean "$T_DATA/hutchd.log"
check "node B stopped cleanly (no sanitizer reports)" san_clean "$B_DATA/hutchd.log"
t_done
