#!/bin/bash
# Network isolation that holds whatever the policy: two sandboxes with unrestricted egress reach
# the (fake) internet through NAT but not each other, not the host's own addresses or services,
# not link-local, not with a spoofed source, not over IPv6; nobody outside opens connections to
# them; the host reaches a user port inside; detach leaves nothing behind and is idempotent.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up
H=$NET_H

sb_add sba && sb_add sbb || { fail "creating sandbox namespaces"; t_done; }
ipa=$(attach sba)
ipb=$(attach sbb)
expect_match "attach gives an address from the pool" "$ipa" '^10\.88\.[0-9]+\.[0-9]+$'
check "two sandboxes get different addresses" test -n "$ipb" -a "$ipa" != "$ipb"
check "eth0 inside has the address" grep -q "$ipa" <<<"$(ip -n "$(sb_ns sba)" -4 addr show eth0)"
check "the default route goes to the gateway" \
	grep -q "default via 10.88.0.1 dev eth0" <<<"$(ip -n "$(sb_ns sba)" route)"
expect_eq "IPv6 is off on eth0" \
	"$(ip netns exec "$(sb_ns sba)" cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)" 1
expect_eq "IPv6 stays on for lo (::1 works)" \
	"$(ip netns exec "$(sb_ns sba)" cat /proc/sys/net/ipv6/conf/lo/disable_ipv6)" 0
expect_eq "the veth's MTU is the bridge's" "$(cat "/sys/class/net/lo/mtu" >/dev/null; ip netns exec "$(sb_ns sba)" cat /sys/class/net/eth0/mtu)" \
	"$(ip netns exec "$H" cat /sys/class/net/hutch0/mtu)"

expect_reach "sandbox reaches the internet (198.51.100.10)" sba 198.51.100.10
expect_reach "sandbox reaches the internet (203.0.113.10)" sba 203.0.113.10
check "NAT: the server sees the host's uplink address" grep -q "accept 198.51.100.10 100.64.0.2" "$NET_T/i1.log"

bg "$(sb_ns sba)" "$NET_T/sba.log" "$PY" "$NET_HELPERS/srv.py" 0.0.0.0:8000 ||
	fail "starting a user port in sandbox sba"
check "the host reaches a user port in the sandbox" \
	ip netns exec "$H" "$PY" "$NET_HELPERS/cli.py" connect "$ipa" 8000 1
expect_blocked "a sandbox cannot reach another sandbox" sbb "$ipa" 8000
if ip netns exec "$NET_R" "$PY" "$NET_HELPERS/cli.py" connect "$ipa" 8000 1 >/dev/null; then
	fail "nobody outside opens a connection to a sandbox"
else pass "nobody outside opens a connection to a sandbox"; fi

expect_blocked "no sandbox-to-host: the host's uplink address" sba 100.64.0.2 9000
expect_blocked "no sandbox-to-host: the gateway address" sba 10.88.0.1 9000
expect_blocked "no sandbox-to-host: 127.0.0.1 is the sandbox's own" sba 127.0.0.1 9000
check "the host's listeners never saw a sandbox" \
	test "$(grep -c "accept.*10\.88\." "$NET_T/h.log")" = 0
expect_blocked "no link-local (169.254.169.254)" sba 169.254.169.254
check "... which the host itself reaches (control)" \
	ip netns exec "$H" "$PY" "$NET_HELPERS/cli.py" connect 169.254.169.254 80 1

# spoofing, seen from the receiving side: datagrams with a forged source never arrive
udp_from() { ip netns exec "$(sb_ns sba)" "$PY" "$NET_HELPERS/cli.py" udp 198.51.100.10 7 "$@"; }
ip -n "$(sb_ns sba)" addr add 10.88.250.250/32 dev eth0
ip -n "$(sb_ns sba)" addr add "$ipb/32" dev eth0
udp_from spoof-free 10.88.250.250
udp_from spoof-other "$ipb"
udp_from genuine "$ipa"
check "a datagram from the sandbox's own address arrives (control)" \
	wait_for grep -q "udp 198.51.100.10 100.64.0.2 genuine" "$NET_T/i1.log"
expect_eq "datagrams with a spoofed source are dropped" "$(grep -c "spoof" "$NET_T/i1.log")" 0
ip -n "$(sb_ns sba)" addr del 10.88.250.250/32 dev eth0
ip -n "$(sb_ns sba)" addr del "$ipb/32" dev eth0

# IPv6 re-enabled by sandbox root still goes nowhere: the host drops every IPv6 packet
ip netns exec "$H" sysctl -qw "net.ipv6.conf.hvsba.disable_ipv6=0"
ip -n "$H" addr add fd00:88::1/64 dev hvsba nodad
bg "$H" "$NET_T/h6.log" "$PY" "$NET_HELPERS/srv.py" "[fd00:88::1]:9006" ||
	fail "starting an IPv6 listener"
ip netns exec "$(sb_ns sba)" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
ip -n "$(sb_ns sba)" addr add fd00:88::2/64 dev eth0 nodad
expect_blocked "IPv6 from a sandbox is dropped even when it turns IPv6 on" sba fd00:88::1 9006
check "... and the sandbox cannot undo its rules: they are not in its namespace" \
	test -z "$(ip netns exec "$(sb_ns sba)" nft list ruleset 2>/dev/null)"

check "detach" ctl detach sba
expect_eq "no veth of that name left" "$(ip -n "$H" -br link | grep -c '^hvsba')" 0
expect_eq "its old veth is retired: down, in the retired group" \
	"$(ip -n "$H" -br link show group 0x68757463 | grep -c 'hz.*DOWN')" 1
no_retired() { test -z "$(ip -n "$H" link show group 0x68757463)"; }
check "... and deleted by the forwarder's reaper" wait_for no_retired
check "... which took the sandbox's end with it" \
	test -z "$(ip -n "$(sb_ns sba)" link show eth0 2>/dev/null)"
expect_eq "no nft chain, set or map entry left" "$(ip netns exec "$H" nft list table inet hutch | grep -c sba)" 0
expect_eq "no route left" "$(ip -n "$H" route | grep -c "$ipa ")" 0
check "the address is free again" test ! -e "$NET_T/state/addrs/$ipa"
check "no state left" test ! -e "$NET_T/state/sandboxes/sba.json"
check "detach again is fine (idempotent)" ctl detach sba
expect_reach "the other sandbox still works" sbb 203.0.113.10
check "detach the other" ctl detach sbb
expect_eq "nothing of any sandbox is left in the table" \
	"$(ip netns exec "$H" nft list table inet hutch | grep -c 'sb_')" 0
check "reap" ctl reap
expect_eq "no veth at all is left on the host" "$(ip -n "$H" -br link | grep -c -E '^h[vz]')" 0
check "the sandbox's namespace can be attached again" test -n "$(attach sbb)"
check "... and detached" ctl detach sbb
net_done
