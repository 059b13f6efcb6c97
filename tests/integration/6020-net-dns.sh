#!/bin/bash
# The per-sandbox DNS forwarder and host-name rules: answers relayed over UDP and TCP (CNAMEs,
# NXDOMAIN), only for the pool; host names in allow_out/deny_out resolved when the policy is
# applied, learned from the sandbox's own answers before it sees them, refreshed while the
# sandbox is silent, and expiring when DNS stops returning them.
. "$(dirname "$0")/lib.sh"
NET_TTL_MIN=60 # first part: the refresher stays out of the way (it runs every TTL_MIN / 3)
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up

zone() { # zone WEB BAD: the test's zone with web.test and bad.test pointing there
	net_zone "web.test 1 A $1" "bad.test 1 A $2" "alias.test 1 CNAME web.test" \
		"two.test 1 A 198.51.100.10 198.51.100.12"
}
gone() { # gone SANDBOX ADDR: waits until ADDR is blocked
	wait_for sh -c "! ip netns exec $(sb_ns "$1") $PY $NET_HELPERS/cli.py connect $2 80 0.3"
}

sb_add sbd || { fail "creating a sandbox namespace"; t_done; }
ip=$(attach sbd)
expect_eq "the forwarder answers over UDP" "$(dnsq sbd web.test)" 198.51.100.11
expect_eq "... and over TCP" "$(dnsq sbd web.test tcp)" 198.51.100.11
expect_eq "... following a CNAME" "$(dnsq sbd alias.test)" 198.51.100.11
expect_match "... relaying NXDOMAIN" "$(dnsq sbd nope.test)" "rcode 3"
expect_match "the forwarder refuses queries from outside the pool" \
	"$(ip netns exec "$NET_R" "$PY" "$NET_HELPERS/dnsq.py" 10.88.0.1 web.test udp 1)" "no answer"
expect_match "stats count them" "$(ctl stats)" "queries=[4-9].*dropped=[1-9]"
expect_eq "the resolver address for resolv.conf" "$(ctl resolver)" "ok 10.88.0.1"

# host-name allow, learned from the sandbox's own answers
check "allow a host name" ctl policy sbd '{"allow_out": ["web.test"]}'
expect_reach "its address is allowed at once (resolved when applied)" sbd 198.51.100.11
expect_blocked "other addresses are not" sbd 198.51.100.10
check "the address sits in the sandbox's DNS set with a timeout" \
	grep -q "198.51.100.11 timeout" <<<"$(ip netns exec "$NET_H" nft list set inet hutch sb_sbd_allow_dns)"
zone 203.0.113.11 203.0.113.10
expect_blocked "a new address is not allowed before anyone resolves it" sbd 203.0.113.11
expect_eq "the sandbox resolves the name" "$(dnsq sbd web.test)" 203.0.113.11
expect_reach "the new address is allowed as soon as the sandbox has the answer" sbd 203.0.113.11
expect_match "the forwarder learned it" "$(ctl stats)" "learned=[1-9]"

check "allow a name that is a CNAME" ctl policy sbd '{"allow_out": ["alias.test"]}'
expect_reach "the CNAME's target address is allowed" sbd 203.0.113.11
check "allow a name with two addresses" ctl policy sbd '{"allow_out": ["two.test"]}'
expect_reach "first address" sbd 198.51.100.10
expect_reach "second address" sbd 198.51.100.12
expect_blocked "not a third" sbd 198.51.100.11
expect_blocked "the previous policy's names are gone" sbd 203.0.113.11

# host-name deny, learned from the sandbox's own answers
check "deny a host name" ctl policy sbd '{"deny_out": ["bad.test"]}'
expect_blocked "its address is denied at once" sbd 203.0.113.10
expect_reach "others are allowed" sbd 203.0.113.11
zone 203.0.113.11 198.51.100.12
expect_reach "before the sandbox asks, the new address is not denied yet" sbd 198.51.100.12
expect_eq "the sandbox asks (TCP)" "$(dnsq sbd bad.test tcp)" 198.51.100.12
expect_blocked "the answer it got is denied before it could use it" sbd 198.51.100.12

# second part: short TTLs, the refresher at work
drv_kill
NET_TTL_MIN=3
drv_start || fail "restarting the driver with short TTLs"
zone 198.51.100.11 203.0.113.10
check "allow a host name (short TTL)" ctl policy sbd '{"allow_out": ["web.test"]}'
expect_reach "its address" sbd 198.51.100.11
zone 203.0.113.11 203.0.113.10
check "the new address is allowed without the sandbox asking (refresher)" \
	wait_for reach sbd 203.0.113.11
check "the old address expires once DNS stops returning it" gone sbd 198.51.100.11
sleep 4
expect_reach "the current one stays past its TTL (refreshed)" sbd 203.0.113.11

check "deny a host name (short TTL)" ctl policy sbd '{"deny_out": ["bad.test"]}'
expect_blocked "its address" sbd 203.0.113.10
zone 203.0.113.11 203.0.113.11
check "when its answer changes, the new address is denied without the sandbox asking" \
	gone sbd 203.0.113.11
expect_match "the refresher did it" "$(ctl stats)" "refreshes=[1-9]"
check "detach" ctl detach sbd
net_done
