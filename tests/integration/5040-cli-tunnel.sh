#!/bin/bash
# hutch CLI: `hutch tunnel` carries real bytes: HTTP to busybox httpd, a few MB of binary data
# both ways through an echo server (python3 in the default image), two connections at once, a
# port where nothing listens (the connection ends, the tunnel lives on).
. "$(dirname "$0")/lib.sh"
need_root; need_cmd python3; need_cmd curl
hutchd_start
H=$HUTCH_BIN/hutch
W=$(mktemp -d /tmp/hutch-cli-tun-XXXXXX)
TPIDS=()
trap 'for p in "${TPIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$W"; hutchd_cleanup' EXIT

# start_tunnel NAME ARGS...: runs `hutch tunnel ARGS` in the background; sets TADDR
start_tunnel() {
	local out=$W/$1.out; shift
	$H tunnel "$@" >"$out" 2>"$out.err" &
	TPIDS+=($!)
	wait_for test -s "$out" || { fail "tunnel $* did not start: $(cat "$out.err")"; return 1; }
	TADDR=$(head -n 1 "$out")
}

$H create --image busybox tunbox >/dev/null
$H exec tunbox -- sh -c 'mkdir -p /www && echo through-the-tunnel > /www/index.html'
head -c 2000000 /dev/urandom >"$W/blob"
$H cp "$W/blob" tunbox:/www/blob
$H exec --detach tunbox -- httpd -f -p 8080 -h /www >/dev/null
wait_for $H exec tunbox -- sh -c 'netstat -ltn | grep -q :8080'
start_tunnel http tunbox 8080 --listen-port 0
expect_match "tunnel prints its local address" "$TADDR" '^127\.0\.0\.1:[0-9]+$'
expect_eq "HTTP through the tunnel" "$(curl -s "http://$TADDR/index.html")" through-the-tunnel
expect_eq "again (one WebSocket per connection)" "$(curl -s "http://$TADDR/index.html")" through-the-tunnel
check "2 MB of binary data from the sandbox" sh -c "curl -s http://$TADDR/blob | cmp - '$W/blob'"

# an echo server in the default image: bytes both ways, two connections at the same time
id2=$($H create --memory 512)
cat >"$W/echo.py" <<'PY'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7007)); s.listen(8)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
$H cp "$W/echo.py" "$id2:/tmp/echo.py"
$H exec -d "$id2" -- python3 /tmp/echo.py >/dev/null
wait_for $H exec "$id2" -- python3 -c 'import socket; socket.create_connection(("127.0.0.1", 7007), 1)'
start_tunnel echo "$id2" 7007 --listen-port 0
out=$(python3 - "${TADDR#*:}" <<'PY'
import os, socket, sys, threading
port = int(sys.argv[1]); res = {}
def run(name, n):
    data = os.urandom(n); s = socket.create_connection(("127.0.0.1", port), 10); s.settimeout(30)
    def w():
        s.sendall(data)
    t = threading.Thread(target=w); t.start()
    got = b""
    while len(got) < n:
        d = s.recv(65536)
        if not d: break
        got += d
    t.join(); s.close(); res[name] = got == data
ts = [threading.Thread(target=run, args=("a", 3 << 20)), threading.Thread(target=run, args=("b", 500000))]
[t.start() for t in ts]; [t.join() for t in ts]
print(res.get("a"), res.get("b"))
PY
)
expect_eq "3 MB and 500 KB echoed back intact on two connections at once" "$out" "True True"

# nothing listens on the port: the connection ends cleanly and the tunnel keeps serving
start_tunnel dead tunbox 9999 --listen-port 0
out=$(curl -s -m 10 "http://$TADDR/" 2>&1); rc=$?
[ $rc != 0 ] && [ $rc != 28 ] && pass "a refused port ends the local connection ($rc)" || fail "refused port: rc $rc $out"
kill -0 "${TPIDS[-1]}" 2>/dev/null && pass "the tunnel survives it" || fail "the tunnel died"
expect_eq "the first tunnel still works" "$(curl -s "http://$(head -n 1 "$W/http.out")/index.html")" through-the-tunnel
$H tunnel nope-nope 80 >/dev/null 2>&1; expect_eq "unknown sandbox fails" $? 1
$H tunnel tunbox 0 >/dev/null 2>&1; expect_eq "a bad port is a usage error" $? 2
t_done
