#!/bin/bash
# Two executors' networks on one host: a second pool gets its own bridge, table and veth prefix
# (derived from the pool), a second network on the same pool is refused with a clear error, the
# two pools' sandboxes cannot reach each other, and one side's orphan cleanup leaves the other's
# sandboxes alone.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
net_env_up
H=$NET_H
drvb() { # the second network: pool 10.77.0.0/24, its own state
	ip netns exec "$H" "$NET_DRV" --state "$NET_T/stateb" --pool 10.77.0.0/24 \
		--upstream 100.64.53.53 "$@"
}

out=$(drv --bridge other0 init 2>&1)
expect_match "a second network on the same pool is refused" "$out" "^err 409 .*10\.88\.0\.1 is already on hutch0"
check "... before creating anything" test -z "$(ip -n "$H" link show other0 2>/dev/null)"
check "a second pool initialises" drvb init
expect_match "it has its own bridge" "$(ip -n "$H" -4 -br addr | grep 10.77.0.1/24)" '^hutch[0-9a-f]{8} '
expect_eq "and its own table" "$(ip netns exec "$H" nft list tables | grep -c '^table inet hutch_[0-9a-f]\{8\}$')" 1

sb_add pa && sb_add pb || { fail "creating sandbox namespaces"; net_done; }
ipa=$(attach pa)
ipb=$(drvb attach pb "$(sb_path pb)" | awk '{print $2}')
expect_match "the second pool's sandbox gets an address from it" "$ipb" '^10\.77\.0\.[0-9]+$'
vb=$(ip -n "$H" -br link | awk '{print $1}' | grep -E 'pb@' | cut -d@ -f1)
expect_match "... and a veth with the pool's own prefix" "$vb" '^h[a-y][a-z0-9]pb$'
expect_reach "both reach the internet: first pool" pa 203.0.113.10
expect_reach "both reach the internet: second pool" pb 203.0.113.10
bg "$(sb_ns pa)" "$NET_T/pa.log" "$PY" "$NET_HELPERS/srv.py" 0.0.0.0:8000 || fail "server in pa"
bg "$(sb_ns pb)" "$NET_T/pb.log" "$PY" "$NET_HELPERS/srv.py" 0.0.0.0:8000 || fail "server in pb"
expect_blocked "the second pool's sandbox cannot reach the first's" pb "$ipa" 8000
expect_blocked "nor the other way round" pa "$ipb" 8000
check "the host reaches both (control)" \
	sh -c "ip netns exec $H $PY $NET_HELPERS/cli.py connect $ipa 8000 1 && ip netns exec $H $PY $NET_HELPERS/cli.py connect $ipb 8000 1"

expect_eq "the second network's orphan cleanup removes only its own sandbox" "$(drvb orphans)" "ok 1"
expect_blocked "... which is gone" pb 203.0.113.10
expect_reach "the first pool's sandbox still works" pa 203.0.113.10
check "... and its rules are still there" \
	grep -q sb_pa_out <<<"$(ip netns exec "$H" nft list table inet hutch)"
ipb2=$(drvb attach pb "$(sb_path pb)" | awk '{print $2}')
check "the second network attaches again" test -n "$ipb2"
check "net_host_remove undoes the second network" drvb uninstall
expect_eq "its table is gone" "$(ip netns exec "$H" nft list tables | grep -c '^table inet hutch_')" 0
check "its bridge is gone" test -z "$(ip -n "$H" -4 -br addr | grep 10.77.0.1/24)"
check "its sandbox's state is gone" test -z "$(ls "$NET_T/stateb/sandboxes")"
expect_blocked "its sandbox has no network" pb 203.0.113.10
expect_reach "the first network is untouched" pa 203.0.113.10
check "detach" ctl detach pa
net_done
