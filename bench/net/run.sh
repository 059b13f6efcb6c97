#!/bin/bash
# Network part of sandbox setup and teardown: lib/net's net_sandbox_attach + net_sandbox_detach
# (p50 over N sandboxes) against the same work done with ip(8) and nft(8) commands, on an empty
# host and on one already running SCALE sandboxes. Everything runs in private network namespaces
# (the machine's own network is not touched). Prints the figures and appends them, with the
# machine, the command and the date, to docs/benchmarks.md.
#   N=100 SCALE=500 CLI_SCALE_N=10 bench/net/run.sh      (root; builds build/bin/hutch-netdrv)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
N=${N:-100}
SCALE=${SCALE:-500}
CLI_SCALE_N=${CLI_SCALE_N:-10}
DRV=$PWD/build/bin/hutch-netdrv
[ "$(id -u)" = 0 ] || { echo "bench/net/run.sh: needs root" >&2; exit 1; }
make -s build/bin/hutch-netdrv >/dev/null || exit 1
P=hnb$$
T=$(mktemp -d /tmp/hutch-netbench.XXXXXX)
NS=()

cleanup() {
	local ns
	for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

ns_add() { ip netns add "$1" && ip -n "$1" link set lo up && NS+=("$1"); }
H=${P}h
ns_add "$H" || exit 1
for i in $(seq 0 $((N + SCALE - 1))); do ns_add "${P}s$i" || exit 1; done
paths() { for i in $(seq "$1" "$2"); do echo "/run/netns/${P}s$i"; done; }
drv() { ip netns exec "$H" "$DRV" --state "$T/state" --upstream 127.0.0.1 "$@"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

ALLOW='{"allow_internet_access": false, "allow_out": ["203.0.113.0/24", "198.51.100.7", "10.88.0.1"], "deny_out": ["203.0.113.9"]}'
SWAP='{"deny_out": ["192.0.2.0/24", "198.51.100.0/25"]}'
echo "lib/net: $N x attach + detach"
lib_plain=$(drv bench $(paths 0 $((N - 1)))) || exit 1
drv reap >/dev/null
lib_allow=$(drv bench --policy "$ALLOW" --swap "$SWAP" $(paths 0 $((N - 1)))) || exit 1
start=$(date +%s%N)
drv reap >/dev/null
reap_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "lib/net: $N x attach + detach with $SCALE other sandboxes attached"
lib_scale=$(drv bench --preload "$SCALE" $(paths "$N" $((N + SCALE - 1))) $(paths 0 $((N - 1)))) || exit 1
drv reap >/dev/null

# The same with commands: what a shell-out implementation would run for one sandbox (these run
# inside the host namespace H).
cli_attach() { # cli_attach I NS
	local i=$1 ns=$2 ip=10.88.200.$(( $1 % 250 + 2 )) k=c$1
	ip link add "hv$k" mtu 1500 type veth peer name eth0 mtu 1500 netns "$ns" &&
	ip link set "hv$k" up &&
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 &&
	ip -n "$ns" link set eth0 up &&
	ip -n "$ns" addr add "$ip" peer 10.88.0.1 dev eth0 &&
	ip -n "$ns" route add default via 10.88.0.1 &&
	ip route add "$ip/32" dev "hv$k" src 10.88.0.1 &&
	nft -f - <<EOF
add set inet hutch sb_${k}_allow { type ipv4_addr; flags interval; }
add set inet hutch sb_${k}_deny { type ipv4_addr; flags interval; }
add set inet hutch sb_${k}_allow_dns { type ipv4_addr; flags timeout; }
add set inet hutch sb_${k}_deny_dns { type ipv4_addr; flags timeout; }
add set inet hutch sb_${k}_gen { type mark; }
add element inet hutch sb_${k}_gen { 0x1 }
add chain inet hutch sb_${k}_out
add chain inet hutch sb_${k}_in
add rule inet hutch sb_${k}_out meta nfproto != ipv4 drop
add rule inet hutch sb_${k}_out ip saddr != $ip drop
add rule inet hutch sb_${k}_out ct state invalid drop
add rule inet hutch sb_${k}_out ct direction reply accept
add rule inet hutch sb_${k}_out ct state established,related ct mark 0x1 accept
add rule inet hutch sb_${k}_out ip daddr @sb_${k}_deny goto deny
add rule inet hutch sb_${k}_out ip daddr @sb_${k}_deny_dns goto deny
add rule inet hutch sb_${k}_out ip daddr 10.88.0.1 udp dport 53 ct mark set 0x1 accept
add rule inet hutch sb_${k}_out ip daddr 10.88.0.1 tcp dport 53 ct mark set 0x1 accept
add rule inet hutch sb_${k}_out fib daddr type != unicast goto deny
add rule inet hutch sb_${k}_out ip daddr 169.254.0.0/16 goto deny
add rule inet hutch sb_${k}_out ip daddr 10.88.0.0/16 goto deny
add rule inet hutch sb_${k}_out ct mark set 0x1 accept
add rule inet hutch sb_${k}_in ct state invalid drop
add rule inet hutch sb_${k}_in ct direction original drop
add rule inet hutch sb_${k}_in ct mark 0x1 accept
add rule inet hutch sb_${k}_in ip saddr @sb_${k}_deny drop
add rule inet hutch sb_${k}_in ip saddr @sb_${k}_deny_dns drop
add rule inet hutch sb_${k}_in ct mark set 0x1 accept
add element inet hutch veth_out { "hv$k" : goto sb_${k}_out }
add element inet hutch veth_in { "hv$k" : goto sb_${k}_in }
EOF
}
cli_detach() { # cli_detach I
	local k=c$1
	ip link del "hv$k" &&
	nft -f - <<EOF
delete element inet hutch veth_out { "hv$k" }
delete element inet hutch veth_in { "hv$k" }
delete chain inet hutch sb_${k}_out
delete chain inet hutch sb_${k}_in
delete set inet hutch sb_${k}_allow
delete set inet hutch sb_${k}_deny
delete set inet hutch sb_${k}_allow_dns
delete set inet hutch sb_${k}_deny_dns
delete set inet hutch sb_${k}_gen
EOF
}
cli_run() { # cli_run COUNT PREFIX: attach + detach on namespaces 0..COUNT-1, prints p50/p90 (ms)
	local i a d tot=()
	for i in $(seq 0 $(($1 - 1))); do
		a=$(date +%s%N)
		cli_attach "$i" "$2$i" || { echo "cli attach failed" >&2; return 1; }
		cli_detach "$i" || { echo "cli detach failed" >&2; return 1; }
		d=$(date +%s%N)
		tot+=($(( (d - a) / 1000 )))
	done
	printf '%s\n' "${tot[@]}" | sort -n | awk '{v[NR]=$1} END {
		printf "total_p50_ms=%.3f total_p90_ms=%.3f\n", v[int(0.5*(NR-1)+1.5)]/1000, v[int(0.9*(NR-1)+1.5)]/1000}'
}
cli_in_host() { # cli_in_host COUNT: cli_run inside H
	ip netns exec "$H" bash -c "$(declare -f cli_attach cli_detach cli_run); cli_run $1 ${P}s"
}
echo "ip + nft commands: $N x attach + detach"
cli_plain=$(cli_in_host "$N") || exit 1
echo "ip + nft commands: $CLI_SCALE_N x attach + detach with $SCALE other sandboxes attached"
for i in $(seq "$N" $((N + SCALE - 1))); do drv attach "pre$i" "/run/netns/${P}s$i" >/dev/null || exit 1; done
cli_scale=$(cli_in_host "$CLI_SCALE_N") || exit 1

lp=$(field total_p50_ms "$lib_plain"); la=$(field total_p50_ms "$lib_allow")
ls=$(field total_p50_ms "$lib_scale"); cp=$(field total_p50_ms "$cli_plain")
cs=$(field total_p50_ms "$cli_scale")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0fx", a / b }'; }
row() { # row CASE OUTPUT
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$(field attach_p50_ms "$2")" \
		"$(field detach_p50_ms "$2")" "$(field total_p50_ms "$2")" "$(field total_p90_ms "$2")"
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
report=$(cat <<EOF

## Network: sandbox attach + detach (lib/net) — $(date -u +%Y-%m-%dT%H:%MZ)

Machine: $cpu, $(nproc) CPUs, $mem, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null).
Command: \`N=$N SCALE=$SCALE CLI_SCALE_N=$CLI_SCALE_N bench/net/run.sh\` (as root; in private
network namespaces). Times in ms; "attach + detach" is what the executor pays per sandbox.

| case | attach p50 | detach p50 | attach + detach p50 | attach + detach p90 |
|---|---|---|---|---|
$(row "lib/net, unrestricted policy, empty host (n=$N)" "$lib_plain")
$(row "lib/net, allow/deny lists, empty host (n=$N)" "$lib_allow")
$(row "lib/net, $SCALE other sandboxes attached (n=$N)" "$lib_scale")
| ip + nft commands, empty host (n=$N) | | | $cp | $(field total_p90_ms "$cli_plain") |
| ip + nft commands, $SCALE other sandboxes attached (n=$CLI_SCALE_N) | | | $cs | $(field total_p90_ms "$cli_scale") |

- Policy swap (net_sandbox_policy_set, allow/deny lists to another policy): p50
  $(field swap_p50_ms "$lib_allow") ms, p90 $(field swap_p90_ms "$lib_allow") ms.
- net_reap of the $N veths retired by detach (one kernel call, off the hot path): $reap_ms ms.
- Ratios, commands / lib/net at p50: $(ratio "$cp" "$lp") on an empty host, $(ratio "$cs" "$ls") with
  $SCALE sandboxes attached (nft(8) reads the whole ruleset on every command; lib/net sends one
  cache-free libnftnl batch, and retires veths instead of waiting for their deletion).
EOF
)
printf '%s\n' "$report"
mkdir -p docs
[ -f docs/benchmarks.md ] || printf '# Benchmarks\n\nMeasured figures, newest last. Each section says how it was measured.\n' >docs/benchmarks.md
printf '%s\n' "$report" >>docs/benchmarks.md
