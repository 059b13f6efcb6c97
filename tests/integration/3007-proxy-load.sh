#!/bin/bash
# Proxy under load: thousands of idle keep-alive client connections cost little memory and do not
# slow other requests; 200 concurrent connections through the proxy all get answers; the
# upstream pool keeps at most its idle limit afterwards; many sandboxes on one connection.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
need_cmd wrk
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 8000 ] || skip "needs 8000 open files (ulimit -n)"
proxy_env_init

S=$(sandbox_id 1)
sbx "$S" team-a web running "[$UPORT]" 1
proxy_start
W=$(proxy_worker_pid)
A=(-H "Authorization: Bearer $KEY_A")
N=3000

rss0=$(proc_kb "$W" VmRSS)
python3 "$PH/fake.py" idle --port "$PPORT" --host "nosuch.local" --count $N --hold 60 \
	--pidfile "$T/idle.pid" >"$T/idle.out" &
IDLE=$!
PIDS+=($IDLE)
wait_for test -s "$T/idle.pid" || sleep 5
expect_eq "$N idle keep-alive connections answered" "$(cat "$T/idle.out")" "ok $N"
rss1=$(proc_kb "$W" VmRSS)
per=$(( (rss1 - rss0) * 1024 / N ))
limit=16384
is_san_build && limit=65536
check "idle connections cost $per bytes each (limit $limit)" test "$per" -lt "$limit"
out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo")
check "other requests are still served quickly ($out)" \
	python3 -c "import sys; c, t = '$out'.split(); sys.exit(0 if c == '200' and float(t) < 0.5 else 1)"
kill "$IDLE"; wait "$IDLE" 2>/dev/null

out=$(wrk -t 2 -c 200 -d 3s -H "Authorization: Bearer $KEY_A" -H "Host: $S.local" "$P:$PPORT/echo" 2>&1)
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
check "200 concurrent connections: $reqs requests answered" test "${reqs:-0}" -gt 100
grep -q "Non-2xx" <<<"$out" && { fail "non-2xx answers under load"; echo "$out"; } || pass "all answers 2xx under load"
grep -q "Socket errors" <<<"$out" && { fail "socket errors under load"; echo "$out"; } || pass "no socket errors under load"
sleep 1
fds=$(ls "/proc/$W/fd" | wc -l)
limit=$((64 * $(nproc) + 40))
check "afterwards the proxy holds $fds fds (idle upstream pool: at most 64 per target and worker, < $limit)" \
	test "$fds" -lt "$limit"

# many sandboxes, one client connection
args=()
for i in $(seq 10 59); do
	sbx "$(sandbox_id "$i")" team-a "n$i" running "[$UPORT]" 1
	args+=(--next "${A[@]}" -H "Host: n$i.local" "$P:$PPORT/echo")
done
out=$(curl -s --max-time 30 "${A[@]}" -H "Host: $S.local" "$P:$PPORT/echo" "${args[@]}" -w '%{num_connects}')
expect_eq "50 sandboxes by name over one connection" "$(grep -o '"served_by": "agent"' <<<"$out" | wc -l)" 51
proxy_stop
t_done
