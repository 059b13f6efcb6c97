#!/bin/bash
# hutch-agent: files API (read, write with parent creation, delete, list, traversal, errors) and a
# 100 MB file streamed both ways without the agent buffering it.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
agent_start
D=$AGENT_DIR/files
mkdir -p "$D"

expect_eq "PUT creates parents, 204" "$(status_of -X PUT --data-binary 'hello world' "/files?path=$D/a/b/c.txt")" 204
expect_eq "file written" "$(cat "$D/a/b/c.txt")" "hello world"
expect_eq "GET returns the bytes" "$(A "/files?path=$D/a/b/c.txt")" "hello world"
hdr=$(A -D - -o /dev/null "/files?path=$D/a/b/c.txt")
expect_match "GET has Content-Length" "$hdr" "Content-Length: 11"
expect_match "GET is application/octet-stream" "$hdr" "Content-Type: application/octet-stream"
chmod 0600 "$D/a/b/c.txt"
A -X PUT --data-binary 'replaced' "/files?path=$D/a/b/c.txt" >/dev/null
expect_eq "PUT replaces and keeps the mode" "$(cat "$D/a/b/c.txt") $(stat -c %a "$D/a/b/c.txt")" "replaced 600"
check "no temporary files left behind" test -z "$(ls -A "$D/a/b" | grep -v '^c.txt$')"
expect_eq "empty PUT without Content-Length makes an empty file" "$(curl -s --unix-socket "$AGENT_SOCK" -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length:' "http://agent/api/v1/files?path=$D/empty" ; stat -c %s "$D/empty")" "2040"
printf 'sp' >"$D/a b&c+d.txt"
expect_eq "form-encoded path (+ is space, %2B is +)" "$(A "/files?path=%2F${D:1}%2Fa+b%26c%2Bd.txt")" "sp"
printf '\x00\xff\xfe binary' >"$D/bin"
expect_eq "binary content survives" "$(A "/files?path=$D/bin" | od -An -tx1 | tr -d ' \n')" "$(od -An -tx1 <"$D/bin" | tr -d ' \n')"
(cd "$AGENT_DIR" && true)
expect_eq "relative paths resolve against the agent's cwd" "$(status_of -X PUT --data-binary rel "/files?path=rel-$$.txt")" 204
check "relative file landed in the agent's cwd" test -f "$PWD/rel-$$.txt"
rm -f "$PWD/rel-$$.txt"

# errors
expect_eq "GET missing is 404" "$(status_of "/files?path=$D/nope")" 404
check "404 code NOT_FOUND" jq -e '.code=="NOT_FOUND"' <<<"$(A "/files?path=$D/nope")"
expect_eq "GET directory is 400" "$(status_of "/files?path=$D/a")" 400
check "IS_DIRECTORY code" jq -e '.code=="IS_DIRECTORY"' <<<"$(A "/files?path=$D/a")"
for p in "$D/../etc/passwd" "../x" ".." "$D/a/.." "a/../../b"; do
	expect_eq "traversal '$p' is 403" "$(status_of "/files?path=$p")" 403
done
check "PATH_TRAVERSAL code (GET/PUT/DELETE/list)" bash -c "for m in GET PUT DELETE; do curl -s --unix-socket '$AGENT_SOCK' -X \$m 'http://agent/api/v1/files?path=/tmp/../etc/passwd' | jq -e '.code==\"PATH_TRAVERSAL\"' >/dev/null || exit 1; done; curl -s --unix-socket '$AGENT_SOCK' 'http://agent/api/v1/files/list?path=/tmp/..' | jq -e '.code==\"PATH_TRAVERSAL\"'"
expect_eq "dots that are not .. are fine" "$(status_of -X PUT --data-binary x "/files?path=$D/...x/..y")" 204
expect_eq "missing path is 400" "$(status_of /files)" 400
expect_eq "PUT onto a directory is 400" "$(status_of -X PUT --data-binary x "/files?path=$D/a")" 400
expect_eq "PUT under a file is 400 NOT_A_DIRECTORY" "$(A -X PUT --data-binary x "/files?path=$D/a/b/c.txt/sub" | jq -r .code)" NOT_A_DIRECTORY
expect_eq "DELETE directory is 400" "$(status_of -X DELETE "/files?path=$D/a")" 400
expect_eq "DELETE file is 204" "$(status_of -X DELETE "/files?path=$D/a/b/c.txt")" 204
check "file is gone" test ! -e "$D/a/b/c.txt"
expect_eq "DELETE missing is 404" "$(status_of -X DELETE "/files?path=$D/a/b/c.txt")" 404

# list
mkdir -p "$D/l/zdir" "$D/l/adir"
printf 12345 >"$D/l/b.txt"
printf 1 >"$D/l/A.txt"
touch -d '2024-01-02 03:04:05 UTC' "$D/l/b.txt"
out=$(A "/files/list?path=$D/l")
check "list: path echoed" jq -e --arg p "$D/l" '.path==$p' <<<"$out"
check "list: dirs first, then by name" jq -e '[.entries[].name]==["adir","zdir","A.txt","b.txt"]' <<<"$out"
check "list: size null for dirs, bytes for files" jq -e '.entries[0].size==null and .entries[0].is_dir==true and .entries[3].size==5 and .entries[3].is_dir==false' <<<"$out"
check "list: modified_at in ms" jq -e '.entries[3].modified_at==1704164645000' <<<"$out"
expect_eq "list of a file is 400 NOT_A_DIRECTORY" "$(A "/files/list?path=$D/l/b.txt" | jq -r .code)" NOT_A_DIRECTORY
expect_eq "list of missing is 404" "$(status_of "/files/list?path=$D/none")" 404

# a 100 MB file, streamed both ways; the agent's memory must not grow by the file size
head -c 100000000 /dev/urandom >"$AGENT_DIR/big.in"
rss0=$(awk '/VmRSS/{print $2}' /proc/$AGENT_PID/status)
expect_eq "100 MB PUT is 204" "$(curl -s --unix-socket "$AGENT_SOCK" -o /dev/null -w '%{http_code}' -X PUT -T "$AGENT_DIR/big.in" "http://agent/api/v1/files?path=$D/big")" 204
expect_eq "100 MB PUT content intact" "$(cmp "$AGENT_DIR/big.in" "$D/big" && echo same)" same
curl -s --unix-socket "$AGENT_SOCK" -o "$AGENT_DIR/big.out" "http://agent/api/v1/files?path=$D/big"
expect_eq "100 MB GET content intact" "$(cmp "$AGENT_DIR/big.in" "$AGENT_DIR/big.out" && echo same)" same
hwm=$(awk '/VmHWM/{print $2}' /proc/$AGENT_PID/status)
if agent_sanitized; then
	pass "peak RSS not measured under sanitizers"
else
	check "agent peak RSS stayed far below the file size (${hwm} kB)" test "$hwm" -lt 60000
fi
# a client that stops reading a download, then goes away, leaks nothing (checked by ASan at exit)
timeout 2 python3 - "$AGENT_SOCK" "$D/big" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1]); s.sendall(b"GET /api/v1/files?path=" + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
s.recv(100); time.sleep(0.5); s.close()
PY
# an upload cut off half-way leaves no temporary file
python3 - "$AGENT_SOCK" "$D/cut" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"PUT /api/v1/files?path=" + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 5000)
time.sleep(0.3); s.close(); time.sleep(0.3)
PY
no_cut_files() { test -z "$(ls -A "$D" | grep -E '^(cut|\.cut)')"; }
check "aborted upload: no file and no temporary left" wait_for no_cut_files
expect_eq "agent still healthy" "$(A /health)" '{"healthy":true}'
rm -f "$AGENT_DIR/big.in" "$AGENT_DIR/big.out" "$D/big"
agent_stop
t_done
