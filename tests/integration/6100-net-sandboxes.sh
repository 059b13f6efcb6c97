#!/bin/bash
# Sandbox networking through the real server: hutchd runs in the test's "host" namespace of the
# fake internet (helpers/net/env.sh), so sandbox traffic only ever meets namespaces this test
# made. Egress by default, a closed policy, allow_out by host name, a live PATCH (and a rejected
# one that keeps the old policy), a create naming a host that does not resolve (400, nothing
# made), DNS through the forwarder, a user port through the proxy, suspend/resume, a memory
# snapshot and a restore, a kill -9 of the server, and nothing left behind.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/net/env.sh"
need_root; need_cmd jq; need_cmd ip; need_cmd nsenter
ip netns add "${NET_N}probe" 2>/dev/null || skip "cannot create network namespaces"
ip netns del "${NET_N}probe"
trap net_env_down EXIT
net_topology || { fail "building the test topology"; t_done; }
net_zone "web.test 1 A 198.51.100.11" "bad.test 1 A 203.0.113.10"
bg "$NET_D" "$NET_T/dnsd.log" "$PY" "$NET_HELPERS/dnsd.py" "$NET_T/zone" 100.64.53.53 &&
bg "$NET_I1" "$NET_T/i1.log" "$PY" "$NET_HELPERS/srv.py" 198.51.100.10:80 198.51.100.11:80 \
	198.51.100.12:80 &&
bg "$NET_I2" "$NET_T/i2.log" "$PY" "$NET_HELPERS/srv.py" 203.0.113.10:80 ||
	{ fail "starting the fake internet's servers"; t_done; }

hutchd_netns "$NET_H"
hutchd_start --dns-upstreams 100.64.53.53
trap 'hutchd_cleanup; net_env_down' EXIT
grep -q "sandbox networking unavailable" "$T_DATA/hutchd.log" &&
	{ fail "the server has no sandbox networking: $(grep unavailable "$T_DATA/hutchd.log")"; t_done; }

T="X-Tensorlake-Request-Timeout-Ms: 30000"
mk() { curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d "$1"; }
# hello ID ADDR: the first line a TCP connection from sandbox ID to ADDR:80 gets
hello() { sb_run "$1" "echo | nc -w 2 $2 80 2>/dev/null | head -n 1"; }
expect_reach() { expect_eq "$1" "$(hello "$2" "$3")" "hello $3"; }
expect_blocked() { expect_eq "$1" "$(hello "$2" "$3")" ""; }
sb_status_is() { [ "$(apij GET "/sandboxes/$1" | jq_get .status)" = "$2" ]; }
snap_done() { apij GET "/snapshots/$1" | jq -e '.status=="completed" or .status=="failed"'; }

a=$(mk '{"image":"busybox","name":"open"}' | jq_get .sandbox_id)
expect_eq "an unrestricted sandbox runs" "$(apij GET "/sandboxes/$a" | jq_get .status)" running
expect_reach "it reaches the internet" "$a" 198.51.100.10
expect_match "its resolver is the gateway" "$(sb_run "$a" 'grep ^nameserver /etc/resolv.conf')" '^nameserver 10\.89\.'
expect_match "names resolve through the forwarder" "$(sb_run "$a" 'nslookup web.test')" '198\.51\.100\.11'
expect_blocked "the metadata address is blocked" "$a" 169.254.169.254

# the network is there before the first process runs: an entrypoint connecting at once works
e=$(mk '{"image":"busybox","entrypoint":["sh","-c","echo | nc -w 2 198.51.100.10 80 > /tmp/first 2>&1; sleep 600"]}' | jq_get .sandbox_id)
wait_for sh -c "[ -s /proc/\$(jq -r .init_pid $T_DATA/runtime/sandboxes/$e/state.json)/root/tmp/first ]"
expect_eq "an entrypoint's first connection goes through" "$(sb_run "$e" 'head -n 1 /tmp/first')" "hello 198.51.100.10"

b=$(mk '{"image":"busybox","network":{"allow_internet_access":false}}' | jq_get .sandbox_id)
expect_blocked "allow_internet_access false: blocked" "$b" 198.51.100.10

c=$(mk '{"image":"busybox","network":{"allow_internet_access":false,"allow_out":["web.test"]}}' | jq_get .sandbox_id)
expect_reach "allow_out by host name reaches it" "$c" 198.51.100.11
expect_blocked "and nothing else" "$c" 198.51.100.10

# a live change, then one that names a host that does not resolve (the old policy stays)
api PATCH "/sandboxes/$a" '{"network":{"allow_internet_access":true,"deny_out":["198.51.100.10"]}}'
expect_eq "PATCH network is 200" "$CODE" 200
expect_eq "and answers the new policy" "$(jq -c '.network.deny_out' <<<"$BODY")" '["198.51.100.10"]'
expect_blocked "deny_out applies at once" "$a" 198.51.100.10
expect_reach "the rest is still open" "$a" 198.51.100.12
api PATCH "/sandboxes/$a" '{"network":{"allow_internet_access":false,"allow_out":["nope.test"]}}'
expect_eq "a policy naming an unknown host is 400" "$CODE" 400
expect_eq "INVALID_NETWORK_POLICY" "$(jq_get .code <<<"$BODY")" INVALID_NETWORK_POLICY
expect_eq "the stored policy is the old one" "$(apij GET "/sandboxes/$a" | jq -c '.network.deny_out')" '["198.51.100.10"]'
expect_reach "and so is the enforced one" "$a" 198.51.100.12

n0=$(apij GET /sandboxes | jq '.sandboxes|length')
out=$(mk '{"image":"busybox","network":{"allow_internet_access":false,"allow_out":["nope.test"]}}')
expect_eq "create naming an unknown host is 400" "$(jq_get .code <<<"$out")" INVALID_NETWORK_POLICY
expect_eq "and makes no sandbox" "$(apij GET /sandboxes | jq '.sandboxes|length')" "$n0"

# a user port through the proxy reaches the sandbox's address
sb_run "$a" 'mkdir -p /tmp/www && echo served > /tmp/www/index.html && httpd -p 8000 -h /tmp/www' >/dev/null
api PATCH "/sandboxes/$a" '{"exposed_ports":[8000]}'
expect_eq "a user port answers through the proxy" \
	"$(curl -s -m 5 -H "$AUTH" -H "Host: 8000-$a.local" "$PROXY/index.html")" served

# suspend and resume (freezer): the network stays
api POST "/sandboxes/$a/suspend"
wait_for sb_status_is "$a" suspended
api POST "/sandboxes/$a/resume"
wait_for sb_status_is "$a" running
expect_reach "after suspend and resume" "$a" 198.51.100.12
expect_blocked "with its policy" "$a" 198.51.100.10

# a memory snapshot detaches the network around the checkpoint; a restore gets a new one
if grep -q "memory snapshots and durable suspend available" "$T_DATA/hutchd.log"; then
	snap=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes/$a/snapshot" -d '{"snapshot_type":"memory"}' | jq_get .snapshot_id)
	wait_for snap_done "$snap"
	expect_eq "memory snapshot completes" "$(apij GET "/snapshots/$snap" | jq_get .status)" completed
	expect_reach "the source is connected again" "$a" 198.51.100.12
	# the policy is the create's, as for any create (a snapshot carries image, resources and
	# entrypoint only)
	d=$(mk "{\"snapshot_id\":\"$snap\",\"network\":{\"deny_out\":[\"198.51.100.12\"]}}" | jq_get .sandbox_id)
	expect_eq "a restore runs" "$(apij GET "/sandboxes/$d" | jq_get .status)" running
	expect_reach "and is connected" "$d" 198.51.100.10
	expect_blocked "under its create's policy" "$d" 198.51.100.12
else
	echo "SKIP: memory snapshot with networking: CRIU is not available on this host"
fi

# kill -9 of the server: the sandboxes keep their addresses and policies
hutchd_kill KILL
hutchd_restart --dns-upstreams 100.64.53.53
wait_for sh -c "grep -q 're-adopted sandbox $a' $T_DATA/hutchd.log"
expect_reach "after a restart" "$a" 198.51.100.12
expect_blocked "the policy survives it" "$a" 198.51.100.10
expect_blocked "so does the closed one" "$b" 198.51.100.10

for s in $(apij GET /sandboxes | jq -r '.sandboxes[].id'); do api DELETE "/sandboxes/$s"; done
wait_for sh -c "[ -z \"\$(ls $T_DATA/runtime/sandboxes)\" ]"
no_leftovers "nothing left after the deletes (veths included)"
t_done
