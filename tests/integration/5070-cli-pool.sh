#!/bin/bash
# hutch CLI: pool create|ls|describe|update|claim|rm, with --json; rm of a pool in use fails
# until its claimed sandboxes are gone.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
H=$HUTCH_BIN/hutch

pool=$($H pool create --image busybox --cpus 0.5 --memory 128 --warm 1 --max 3 --timeout 0 \
	--entrypoint sleep 100000 --)
expect_match "pool create prints the id" "$pool" '^[a-z0-9]{21}$'
$H pool create --cpus 1 >/dev/null 2>&1; expect_eq "--image is required" $? 2
named=$($H pool create --image busybox --id my-pool)
expect_eq "pool create --id" "$named" my-pool
j=$($H pool describe "$pool" --json)
expect_eq "describe --json" "$(jq -c '[.image,.resources.cpus,.resources.memory_mb,.warm_containers,.max_containers,.timeout_secs,.entrypoint]' <<<"$j")" \
	'["busybox",0.5,128,1,3,0,["sleep","100000"]]'
expect_eq "pool ls --json" "$($H pool ls --json | jq -r 'map(.id)|sort|join(" ")')" "$(printf '%s\n' "$pool" my-pool | sort | tr '\n' ' ' | sed 's/ $//')"
expect_match "pool ls table" "$($H pool ls)" "$pool +busybox +0\.5 +128 +1 +3"
wait_for sh -c "$H pool describe $pool --json | jq -e '[.containers[]|select(.state==\"Idle\")]|length==1'"
expect_match "describe lists the warm container" "$($H pool describe "$pool")" 'Idle'

$H pool update "$pool" --memory 192 --max 4 >/dev/null
j=$($H pool describe "$pool" --json)
expect_eq "update changes what it is given" "$(jq -c '[.resources.memory_mb,.max_containers]' <<<"$j")" '[192,4]'
expect_eq "… and keeps the rest" "$(jq -c '[.image,.resources.cpus,.warm_containers,.entrypoint]' <<<"$j")" '["busybox",0.5,1,["sleep","100000"]]'

s1=$($H pool claim "$pool")
expect_match "claim prints a sandbox id" "$s1" '^[a-z0-9]{21}$'
expect_eq "the claimed sandbox runs" "$($H exec "$s1" -- echo claimed)" claimed
expect_eq "it belongs to the pool" "$($H describe "$s1" --json | jq -r .pool_id)" "$pool"
s2=$($H pool claim "$pool" --json | jq -r .sandbox_id)
[ -n "$s2" ] && [ "$s2" != "$s1" ] && pass "claim --json, a second sandbox" || fail "second claim: '$s2'"
$H pool rm "$pool" 2>/dev/null; expect_eq "rm of a pool in use fails" $? 1
$H terminate "$s1" "$s2" >/dev/null
wait_for $H pool rm "$pool"
$H pool describe "$pool" >/dev/null 2>&1; expect_eq "the pool is gone" $? 1
$H pool rm my-pool >/dev/null; expect_eq "rm" $? 0
$H pool claim nope-nope >/dev/null 2>&1; expect_eq "claim from an unknown pool fails" $? 1
expect_eq "pool ls --json is empty" "$($H pool ls --json)" "[]"
t_done
