#!/bin/bash
# A live policy swap under load. A sandbox opens new connections every 50 ms to four targets and
# keeps two long-lived connections echoing every 100 ms, while its policy changes from A to B:
#   198.51.100.11  allowed by A and B   -> never fails, and its open connection survives
#   198.51.100.10  allowed by A only    -> nothing started after the swap succeeds, and its open
#                                          connection stops (connections are judged again)
#   203.0.113.10   allowed by B only    -> nothing succeeds before the swap started
#   198.51.100.12  allowed by neither   -> never succeeds
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up

A='{"allow_out": ["198.51.100.10", "198.51.100.11"]}'
B='{"allow_out": ["198.51.100.11", "203.0.113.10"]}'
sb_add sbw || { fail "creating a sandbox namespace"; t_done; }
ip=$(attach sbw "$A")
check "attach with policy A" test -n "$ip"
ns=$(sb_ns sbw)
ip netns exec "$ns" "$PY" "$NET_HELPERS/cli.py" loop "$NET_T/loop" 5 198.51.100.11:80 \
	198.51.100.10:80 203.0.113.10:80 198.51.100.12:80 &
NET_PIDS+=($!)
ip netns exec "$ns" "$PY" "$NET_HELPERS/cli.py" hold "$NET_T/hold-a" 5 198.51.100.10:80 &
NET_PIDS+=($!)
ip netns exec "$ns" "$PY" "$NET_HELPERS/cli.py" hold "$NET_T/hold-both" 5 198.51.100.11:80 &
NET_PIDS+=($!)
sleep 2
t0=$(date +%s.%N)
check "swap to policy B" ctl policy sbw "$B"
t1=$(date +%s.%N)
wait "${NET_PIDS[@]: -3}"

count() { awk -v t="$2" "$3" "$1" | wc -l; } # count FILE TARGET AWK-PROGRAM
L=$NET_T/loop
expect_eq "allowed by both: no failure" "$(grep -c ' 198.51.100.11:80 fail' "$L")" 0
check "allowed by both: connections were made" test "$(grep -c ' 198.51.100.11:80 ok' "$L")" -gt 20
expect_eq "allowed by neither: never reached" "$(grep -c ' 198.51.100.12:80 ok' "$L")" 0
check "allowed by A only: reached before the swap" \
	test "$(awk -v t="$t0" '$3 == "198.51.100.10:80" && $4 == "ok" && $2 < t' "$L" | wc -l)" -gt 5
expect_eq "allowed by A only: nothing started after the swap succeeds" \
	"$(awk -v t="$t1" '$3 == "198.51.100.10:80" && $4 == "ok" && $1 > t' "$L" | wc -l)" 0
check "allowed by B only: reached after the swap" \
	test "$(awk -v t="$t1" '$3 == "203.0.113.10:80" && $4 == "ok" && $1 > t' "$L" | wc -l)" -gt 5
expect_eq "allowed by B only: nothing succeeded before the swap started" \
	"$(awk -v t="$t0" '$3 == "203.0.113.10:80" && $4 == "ok" && $2 < t' "$L" | wc -l)" 0
expect_eq "an open connection allowed by both survives the swap" \
	"$(grep -c fail "$NET_T/hold-both")" 0
check "... and kept echoing" test "$(grep -c ok "$NET_T/hold-both")" -gt 30
check "an open connection allowed by A only echoed before the swap" \
	test "$(awk -v t="$t0" '$3 == "ok" && $2 < t' "$NET_T/hold-a" | wc -l)" -gt 10
expect_eq "... and not once after it" \
	"$(awk -v t="$t1" '$3 == "ok" && $1 > t' "$NET_T/hold-a" | wc -l)" 0
check "detach" ctl detach sbw
net_done
