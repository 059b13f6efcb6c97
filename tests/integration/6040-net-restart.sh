#!/bin/bash
# Surviving the executor: after a SIGKILL the rules stay in the kernel and keep enforcing; a new
# process re-attaches a live sandbox without changing its address or cutting its connections;
# net_cleanup_orphans removes everything of sandboxes that are gone (state, veth, nft objects,
# address) and stray leftovers; a stray veth with the sandbox prefix carries nothing.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up
H=$NET_H
P1='{"deny_out": ["198.51.100.10"]}'

sb_add sbr1 && sb_add sbr2 && sb_add sbr3 || { fail "creating sandbox namespaces"; t_done; }
ip1=$(attach sbr1 "$P1")
ip2=$(attach sbr2)
check "two sandboxes attached" test -n "$ip1" -a -n "$ip2"
ip netns exec "$(sb_ns sbr1)" "$PY" "$NET_HELPERS/cli.py" hold "$NET_T/hold" 4 203.0.113.10:80 &
hold=$!
NET_PIDS+=($hold)
sleep 0.5

drv_kill
expect_blocked "with the driver killed, the policy is still enforced" sbr1 198.51.100.10
expect_reach "... and allowed traffic still flows" sbr1 203.0.113.11
drv_start || fail "restarting the driver"
expect_eq "re-attach after the restart keeps the address" "$(attach sbr1 "$P1")" "$ip1"
expect_eq "... and the veth" "$(ip -n "$H" -br link | grep -c '^hvsbr1')" 1
expect_blocked "the policy holds after re-attach" sbr1 198.51.100.10
expect_eq "the DNS forwarder of the new process answers" "$(dnsq sbr1 web.test)" 198.51.100.11
wait "$hold"
expect_eq "a connection open across the crash and the re-attach never failed" \
	"$(grep -c fail "$NET_T/hold")" 0
check "... and kept echoing" test "$(grep -c ok "$NET_T/hold")" -gt 20

# leftovers of a half-made sandbox and a stray veth with the prefix
echo -n ghost >"$NET_T/state/addrs/10.88.77.77"
ip -n "$H" link add hvghost type veth peer name eth0 netns "$(sb_ns sbr3)"
ip -n "$H" link set hvghost up
ip -n "$(sb_ns sbr3)" link set eth0 up
ip -n "$(sb_ns sbr3)" addr add 10.88.99.99/16 dev eth0
ip -n "$(sb_ns sbr3)" route add default via 10.88.0.1
ip -n "$H" route add 10.88.99.99/32 dev hvghost
expect_blocked "a veth with the sandbox prefix but no rules carries nothing" sbr3 203.0.113.10

out=$(ctl orphans sbr1)
expect_eq "orphan cleanup removes the sandbox that is gone and the leftovers" "$out" "ok 2"
expect_eq "its veth is gone" "$(ip -n "$H" -br link | grep -c '^hvsbr2')" 0
expect_eq "its nft objects are gone" "$(ip netns exec "$H" nft list table inet hutch | grep -c sbr2)" 0
check "its address is free" test ! -e "$NET_T/state/addrs/$ip2"
check "its state is gone" test ! -e "$NET_T/state/sandboxes/sbr2.json"
expect_eq "the stray veth is gone" "$(ip -n "$H" -br link | grep -c '^hvghost')" 0
check "the stray address file is gone" test ! -e "$NET_T/state/addrs/10.88.77.77"
expect_blocked "the sandbox that is gone reaches nothing" sbr2 203.0.113.10
expect_reach "the live sandbox is untouched" sbr1 203.0.113.10
expect_blocked "... policy included" sbr1 198.51.100.10
expect_eq "a second cleanup finds nothing" "$(ctl orphans sbr1)" "ok 0"

# a crash between the steps of an attach (the veth exists, its state does not)
sb_add sbr4 || fail "creating a sandbox namespace"
ip4=$(attach sbr4)
rm "$NET_T/state/sandboxes/sbr4.json"
ip4b=$(attach sbr4)
check "attach without state but with a veth starts over" test -n "$ip4b"
expect_eq "the sandbox has exactly one address" \
	"$(ip -n "$(sb_ns sbr4)" -4 -o addr show eth0 | grep -c inet)" 1
expect_reach "and reaches out" sbr4 203.0.113.10
expect_eq "the old address is not leaked" "$(grep -l sbr4 "$NET_T"/state/addrs/* | wc -l)" 1
check "detach" ctl detach sbr4
check "detach" ctl detach sbr1
expect_eq "the table holds no sandbox" "$(ip netns exec "$H" nft list table inet hutch | grep -c 'sb_')" 0
check "net_init again is fine (idempotent)" drv init
net_done
