#!/bin/bash
# Egress policy semantics (reference §7) with address and CIDR entries: every row of the table,
# deny winning (also over the resolver), the ignored ":port" suffix, live changes, rejected
# policies leaving the old one in force, and a policy given at attach applying from the first
# packet.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up

sb_add sbp && sb_add sbq || { fail "creating sandbox namespaces"; t_done; }
ip=$(attach sbp)
check "attach with no policy" test -n "$ip"

# allow_out empty, allow_internet_access true: everything
expect_reach "allow all: 198.51.100.10" sbp 198.51.100.10
expect_reach "allow all: 203.0.113.10" sbp 203.0.113.10
expect_dns "allow all: DNS" sbp

# deny list
check "set a deny list" ctl policy sbp '{"allow_internet_access": true, "deny_out": ["198.51.100.0/24"]}'
expect_blocked "deny list: a denied CIDR is blocked" sbp 198.51.100.10
expect_blocked "deny list: ... all of it" sbp 198.51.100.12
expect_reach "deny list: the rest is allowed" sbp 203.0.113.10
expect_dns "deny list: DNS works" sbp

# allow list: default deny, DNS implicitly allowed while allow_internet_access is true
check "set an allow list" ctl policy sbp '{"allow_out": ["203.0.113.10"]}'
expect_reach "allow list: the listed address" sbp 203.0.113.10
expect_blocked "allow list: a neighbour of it" sbp 203.0.113.11
expect_blocked "allow list: another network" sbp 198.51.100.10
expect_dns "allow list: DNS to the resolver is implicit" sbp

check "allow list without internet" \
	ctl policy sbp '{"allow_internet_access": false, "allow_out": ["203.0.113.10"]}'
expect_reach "allow list, no internet: the listed address" sbp 203.0.113.10
expect_no_dns "allow list, no internet: DNS is blocked" sbp

check "allow list without internet, resolver listed" \
	ctl policy sbp '{"allow_internet_access": false, "allow_out": ["203.0.113.10", "10.88.0.1"]}'
expect_dns "... DNS works when the resolver is in allow_out" sbp
expect_blocked "... but only DNS: the host's other ports stay closed" sbp 10.88.0.1 9000

# no internet at all
check "no internet" ctl policy sbp '{"allow_internet_access": false}'
expect_blocked "no internet: 198.51.100.10" sbp 198.51.100.10
expect_blocked "no internet: 203.0.113.10" sbp 203.0.113.10
expect_no_dns "no internet: DNS too" sbp

# deny wins
check "allow a CIDR, deny one address in it" \
	ctl policy sbp '{"allow_out": ["198.51.100.0/24"], "deny_out": ["198.51.100.10"]}'
expect_blocked "deny wins over allow" sbp 198.51.100.10
expect_reach "the rest of the allowed CIDR" sbp 198.51.100.11
check "deny the resolver" ctl policy sbp '{"deny_out": ["10.88.0.1"]}'
expect_no_dns "a deny_out covering the resolver kills DNS" sbp
expect_reach "... and nothing else" sbp 203.0.113.10
check "allow the resolver and deny its network" \
	ctl policy sbp '{"allow_internet_access": false, "allow_out": ["10.88.0.1", "203.0.113.10"], "deny_out": ["10.88.0.0/24"]}'
expect_no_dns "deny wins over an allowed resolver" sbp
expect_reach "... the other allowed address works" sbp 203.0.113.10

# what the kernel holds is what the compiler says (rule for rule, as nft lists them)
check "a policy with every kind of entry" ctl policy sbp \
	'{"allow_internet_access": false, "allow_out": ["203.0.113.0/25", "10.88.0.1", "web.test"], "deny_out": ["203.0.113.5", "bad.test"]}'
kernel_rules() {
	ip netns exec "$NET_H" nft list chain inet hutch "sb_sbp_$1" | sed -n "s/^\t\t/$1: /p"
}
expect_eq "the kernel's rules are the compiler's" "$(kernel_rules out; kernel_rules in)" \
	"$(ctl render sbp | tail -n +2)"
check "... and the compiler's are not empty" test "$(ctl render sbp | wc -l)" -gt 20

# ":port" is accepted and ignored
check "an allow entry with a port" ctl policy sbp '{"allow_out": ["203.0.113.10:443"]}'
expect_reach "the port suffix is ignored (port 80 works)" sbp 203.0.113.10
expect_blocked "... and the policy is still an allow list" sbp 203.0.113.11

# rejected policies keep the old one
expect_status "a malformed entry is rejected" 400 ctl policy sbp '{"allow_out": ["300.1.1.1"]}'
expect_status "an unknown field is rejected" 400 ctl policy sbp '{"allow": []}'
expect_status "an unresolvable host name is rejected, naming it" 400 \
	ctl policy sbp '{"allow_out": ["203.0.113.10", "nope.test"]}'
out=$(ctl policy sbp '{"allow_out": ["203.0.113.10", "nope.test"]}' 2>&1)
expect_match "... the message names the entry" "$out" "allow_out\[1\].*nope\.test"
expect_reach "the old policy stays: its allowed address" sbp 203.0.113.10
expect_blocked "the old policy stays: still an allow list" sbp 203.0.113.11

expect_status "net_policy_check refuses the unresolvable name without changing anything" 400 \
	ctl check '{"allow_out": ["nope.test"]}'
check "net_policy_check accepts a resolvable one" ctl check '{"allow_out": ["web.test"], "deny_out": ["1.2.3.4"]}'
expect_reach "... and changed nothing" sbp 203.0.113.10

check "null clears the policy" ctl policy sbp null
expect_reach "cleared: 198.51.100.10" sbp 198.51.100.10
expect_reach "cleared: 203.0.113.11" sbp 203.0.113.11
expect_status "a policy for a sandbox that is not attached" 404 ctl policy nosuch '{}'

# a policy given at attach applies from the first packet; a bad one creates nothing
expect_status "attach with an unresolvable host name fails" 400 \
	ctl attach sbq "$(sb_path sbq)" '{"allow_out": ["nope.test"]}'
expect_eq "... and leaves no veth" "$(ip -n "$NET_H" -br link | grep -c '^hvsbq')" 0
check "... and no state" test ! -e "$NET_T/state/sandboxes/sbq.json"
ipq=$(attach sbq '{"allow_internet_access": false, "allow_out": ["198.51.100.12"]}')
check "attach with a policy" test -n "$ipq"
expect_reach "the policy given at attach applies" sbq 198.51.100.12
expect_blocked "... from the first packet" sbq 198.51.100.10
expect_no_dns "... DNS included" sbq
check "detach" ctl detach sbp
check "detach" ctl detach sbq
net_done
