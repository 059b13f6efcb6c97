# A fake internet in network namespaces for the 6xxx-net-* tests (sourced after lib.sh).
#
#   H  test "host": runs hutch-netdrv (net_init, the DNS forwarder) with the default pool
#      10.88.0.0/16; uplink 100.64.0.2/30, default route to R; listeners on 100.64.0.2:9000,
#      10.88.0.1:9000 and 127.0.0.1:9000 (the host's own services)
#   R  router: 100.64.0.1 (to H), 198.51.100.1 (I1), 203.0.113.1 (I2), 100.64.53.1 (D),
#      169.254.169.254:80 (a metadata-like service), a route to the pool via H
#   I1 198.51.100.10, .11, .12 port 80, UDP sink 198.51.100.10:7
#   I2 203.0.113.10, .11 port 80
#   D  DNS server 100.64.53.53 (dnsd.py) serving $NET_T/zone, which tests rewrite
#   sandboxes: made with sb_add, attached through the driver
# Only these namespaces ever see a packet: the real host's stack and routes are never used.
# Everything is removed on exit, whatever happened (trap).

NET_HELPERS=$HUTCH_ROOT/tests/integration/helpers/net
NET_DRV=$HUTCH_BIN/hutch-netdrv
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NET_N=hn$$
NET_H=${NET_N}h
NET_R=${NET_N}r
NET_I1=${NET_N}i1
NET_I2=${NET_N}i2
NET_D=${NET_N}d
NET_T=$(mktemp -d /tmp/hutch-net.XXXXXX)
NET_PIDS=()
NET_NS=()
NET_TTL_MIN=${NET_TTL_MIN:-4}

net_env_down() {
	local p ns
	for p in "${NET_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${NET_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "${NET_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$NET_T"
}

ns_add() {
	ip netns add "$1" || return 1
	NET_NS+=("$1")
	ip -n "$1" link set lo up
}

# link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth between two namespaces with addresses
link() {
	ip -n "$1" link add name "$2" type veth peer name "$5" netns "$4" || return 1
	ip -n "$1" addr add "$3" dev "$2" && ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}

# bg NS LOG CMD...: starts CMD in NS in the background and waits for it to print "ready"
bg() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 &
	NET_PIDS+=($!)
	wait_for grep -q '^ready' "$log" || { echo "not ready: $*"; cat "$log"; return 1; }
}

net_topology() {
	ns_add "$NET_H" && ns_add "$NET_R" && ns_add "$NET_I1" && ns_add "$NET_I2" && ns_add "$NET_D" || return 1
	ip netns exec "$NET_R" sysctl -qw net.ipv4.ip_forward=1
	link "$NET_H" up0 100.64.0.2/30 "$NET_R" down0 100.64.0.1/30 &&
	link "$NET_R" r_i1 198.51.100.1/24 "$NET_I1" eth0 198.51.100.10/24 &&
	link "$NET_R" r_i2 203.0.113.1/24 "$NET_I2" eth0 203.0.113.10/24 &&
	link "$NET_R" r_dns 100.64.53.1/24 "$NET_D" eth0 100.64.53.53/24 || return 1
	ip -n "$NET_I1" addr add 198.51.100.11/24 dev eth0
	ip -n "$NET_I1" addr add 198.51.100.12/24 dev eth0
	ip -n "$NET_I2" addr add 203.0.113.11/24 dev eth0
	ip -n "$NET_R" addr add 169.254.169.254/32 dev lo
	ip -n "$NET_H" route add default via 100.64.0.1
	ip -n "$NET_I1" route add default via 198.51.100.1
	ip -n "$NET_I2" route add default via 203.0.113.1
	ip -n "$NET_D" route add default via 100.64.53.1
	ip -n "$NET_R" route add 10.88.0.0/16 via 100.64.0.2
}

net_zone() { # net_zone LINE...: replaces the DNS zone
	printf '%s\n' "$@" >"$NET_T/zone.new" && mv "$NET_T/zone.new" "$NET_T/zone"
}

# drv ARGS...: the driver with the test configuration (one-shot commands)
drv() {
	ip netns exec "$NET_H" "$NET_DRV" --state "$NET_T/state" --upstream 100.64.53.53 \
		--ttl-min "$NET_TTL_MIN" --ttl-max 30 --dns-timeout 700 "$@"
}

drv_start() {
	ip netns exec "$NET_H" "$NET_DRV" --state "$NET_T/state" --upstream 100.64.53.53 \
		--ttl-min "$NET_TTL_MIN" --ttl-max 30 --dns-timeout 700 serve "$NET_T/ctl.sock" \
		>>"$NET_T/drv.log" 2>&1 &
	NET_DRV_PID=$!
	NET_PIDS+=($NET_DRV_PID)
	wait_for test -S "$NET_T/ctl.sock" && wait_for ctl resolver
}

drv_kill() { # a crash: SIGKILL, nothing cleaned up
	kill -9 "$NET_DRV_PID" 2>/dev/null
	wait "$NET_DRV_PID" 2>/dev/null
	rm -f "$NET_T/ctl.sock"
}

ctl() { "$NET_DRV" ctl "$NET_T/ctl.sock" "$@"; }

net_env_up() {
	trap net_env_down EXIT
	need_root
	need_cmd ip
	[ -x "$NET_DRV" ] || skip "needs $NET_DRV (make all)"
	ip netns add "${NET_N}probe" 2>/dev/null || skip "cannot create network namespaces"
	ip netns del "${NET_N}probe"
	net_topology || { fail "building the test topology"; t_done; }
	net_zone "web.test 1 A 198.51.100.11" "bad.test 1 A 203.0.113.10" \
		"alias.test 1 CNAME web.test" "two.test 1 A 198.51.100.10 198.51.100.12"
	bg "$NET_D" "$NET_T/dnsd.log" "$PY" "$NET_HELPERS/dnsd.py" "$NET_T/zone" 100.64.53.53 &&
	bg "$NET_I1" "$NET_T/i1.log" "$PY" "$NET_HELPERS/srv.py" 198.51.100.10:80 \
		198.51.100.11:80 198.51.100.12:80 udp:198.51.100.10:7 &&
	bg "$NET_I2" "$NET_T/i2.log" "$PY" "$NET_HELPERS/srv.py" 203.0.113.10:80 203.0.113.11:80 &&
	bg "$NET_R" "$NET_T/r.log" "$PY" "$NET_HELPERS/srv.py" 169.254.169.254:80 ||
		{ fail "starting the fake internet's servers"; t_done; }
	drv_start || { fail "starting hutch-netdrv"; cat "$NET_T/drv.log"; t_done; }
	bg "$NET_H" "$NET_T/h.log" "$PY" "$NET_HELPERS/srv.py" 100.64.0.2:9000 10.88.0.1:9000 \
		127.0.0.1:9000 || { fail "starting the host's listeners"; t_done; }
}

# sb_add NAME: a "sandbox" network namespace (lo up, as the runtime leaves it)
sb_add() { ns_add "$NET_N$1"; }
sb_ns() { echo "$NET_N$1"; }
sb_path() { echo "/run/netns/$NET_N$1"; }

# attach NAME [POLICY]: prints the address
attach() { ctl attach "$1" "$(sb_path "$1")" ${2:+"$2"} | awk '{print $2}'; }

# reach NAME ADDR [PORT]: does a TCP connection from the sandbox get the server's hello?
reach() { ip netns exec "$(sb_ns "$1")" "$PY" "$NET_HELPERS/cli.py" connect "$2" "${3:-80}" 1; }

expect_reach() { check "$1" reach "$2" "$3" "${4:-80}"; }
expect_blocked() {
	if reach "$2" "$3" "${4:-80}" >/dev/null 2>&1; then fail "$1 (reached $3:${4:-80})"; else pass "$1"; fi
}

# dnsq NAME QNAME [tcp]: asks the sandbox's resolver (the gateway address)
dnsq() { ip netns exec "$(sb_ns "$1")" "$PY" "$NET_HELPERS/dnsq.py" 10.88.0.1 "$2" ${3:-udp} 1; }

# expect_status DESC STATUS CMD...: CMD fails and prints "err STATUS ..."
expect_status() {
	local desc=$1 want=$2 out
	shift 2
	if out=$("$@" 2>&1); then fail "$desc (succeeded: $out)"; return; fi
	expect_match "$desc" "$out" "^err $want "
}

dns_works() { dnsq "$1" web.test >/dev/null; }
expect_dns() { check "$1" dns_works "$2"; }
expect_no_dns() { if dns_works "$2"; then fail "$1 (DNS answered)"; else pass "$1"; fi; }

# net_done: stops the driver cleanly (so a sanitizer build reports leaks), fails if it did not
# exit 0 or its log shows a sanitizer report, then ends the test like t_done.
net_done() {
	local rc=0
	if [ -n "${NET_DRV_PID:-}" ] && kill -0 "$NET_DRV_PID" 2>/dev/null; then
		ctl quit >/dev/null 2>&1
		wait "$NET_DRV_PID" 2>/dev/null || rc=$?
		if [ "$rc" != 0 ] || grep -q "Sanitizer" "$NET_T/drv.log"; then
			fail "hutch-netdrv exited with status $rc"; sed 's/^/    | /' "$NET_T/drv.log" | head -n 40
		else pass "hutch-netdrv exited cleanly"; fi
	fi
	t_done
}
