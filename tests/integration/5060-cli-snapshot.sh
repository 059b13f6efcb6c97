#!/bin/bash
# hutch CLI: snapshot (filesystem and memory, --no-wait), snapshot ls/describe/rm, create
# --snapshot, clone and copy -n N. Memory snapshots need CRIU on the host: the server's
# 400 MEMORY_SNAPSHOT_UNAVAILABLE makes those checks SKIP with its reason.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
H=$HUTCH_BIN/hutch
id=$($H create --image busybox snapsrc)
$H exec snapsrc -- sh -c 'mkdir -p /data && echo fs-state > /data/marker'

sid=$($H snapshot snapsrc)
expect_match "snapshot prints the id" "$sid" '^[a-z0-9]{21}$'
d=$($H snapshot describe "$sid")
expect_match "it is ready when snapshot returns" "$(jq -r .status <<<"$d")" '^(local_ready|completed)$'
expect_eq "filesystem is the default type" "$(jq -r .snapshot_type <<<"$d")" filesystem
expect_eq "describe names the source" "$(jq -r .sandbox_id <<<"$d")" "$id"
expect_eq "the source keeps running" "$($H describe snapsrc --json | jq -r .status)" running
expect_eq "snapshot ls --json" "$($H snapshot ls --json | jq -r ".[] | select(.id==\"$sid\") | .sandbox_id")" "$id"
expect_match "snapshot ls table" "$($H snapshot ls)" "$sid +$id +filesystem"
expect_eq "snapshot ls --sandbox filters" "$($H snapshot ls --sandbox nope --json | jq length)" 0
j=$($H snapshot snapsrc --type filesystem --completed --json)
expect_eq "--completed --json waits for completed" "$(jq -r .status <<<"$j")" completed
sid2=$(jq -r .id <<<"$j")
sid3=$($H snapshot snapsrc --no-wait)
expect_match "--no-wait prints the id at once" "$sid3" '^[a-z0-9]{21}$'
wait_for sh -c "$H snapshot describe $sid3 | jq -e '.status==\"completed\" or .status==\"local_ready\"'"

r=$($H create --snapshot "$sid")
expect_eq "create --snapshot restores the files" "$($H exec "$r" -- cat /data/marker)" fs-state
expect_eq "… with the snapshot's image" "$($H describe "$r" --json | jq -r .image)" busybox
out=$($H snapshot rm "$sid" "$sid2" "$sid3"); expect_eq "snapshot rm several" $? 0
$H snapshot describe "$sid" >/dev/null 2>&1; expect_eq "a deleted snapshot is gone" $? 1
$H snapshot rm "$sid" >/dev/null 2>&1; expect_eq "deleting it again fails" $? 1
expect_eq "the restored sandbox outlives its snapshot" "$($H exec "$r" -- cat /data/marker)" fs-state
$H snapshot nope-nope >/dev/null 2>&1; expect_eq "snapshot of an unknown sandbox fails" $? 1
$H snapshot snapsrc --type bogus >/dev/null 2>&1; expect_eq "a bad --type is a usage error" $? 2

# memory: running processes and their memory come along
$H exec -d snapsrc -- sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done' >/dev/null
wait_for sh -c "[ \"\$($H exec snapsrc -- cat /tmp/count 2>/dev/null)\" -ge 5 ]"
if ! msid=$($H snapshot snapsrc --type memory 2>/tmp/hutch-snap.$$); then
	if grep -q MEMORY_SNAPSHOT_UNAVAILABLE /tmp/hutch-snap.$$; then
		echo "SKIP: memory snapshot, clone, copy: $(cat /tmp/hutch-snap.$$)"
		rm -f /tmp/hutch-snap.$$; t_done
	fi
	fail "memory snapshot: $(cat /tmp/hutch-snap.$$)"
fi
rm -f /tmp/hutch-snap.$$
expect_eq "memory snapshot type" "$($H snapshot describe "$msid" | jq -r .snapshot_type)" memory
m=$($H create --snapshot "$msid")
c1=$($H exec "$m" -- cat /tmp/count)
[ "${c1:-0}" -ge 5 ] && pass "a memory restore keeps the counter ($c1)" || fail "counter restarted: '$c1'"
sleep 1
c2=$($H exec "$m" -- cat /tmp/count)
[ "${c2:-0}" -gt "${c1:-0}" ] && pass "… and its process keeps running" || fail "counter stuck: $c1 → $c2"

clone=$($H clone snapsrc --name the-clone)
expect_match "clone prints the new id" "$clone" '^[a-z0-9]{21}$'
expect_eq "the clone is named" "$($H describe the-clone --json | jq -r .id)" "$clone"
expect_eq "the clone has the files" "$($H exec the-clone -- cat /data/marker)" fs-state
expect_match "the clone has the running process" "$($H ps the-clone)" 'running +- +sh -c i=0'
before=$($H snapshot ls --json | jq length)
expect_eq "clone deletes its snapshot" "$before" "$($H snapshot ls --json | jq length)"
$H clone snapsrc --keep-snapshot >/dev/null 2>&1
expect_eq "clone --keep-snapshot keeps it" "$($H snapshot ls --json | jq length)" $((before + 1))

copies=$($H copy snapsrc -n 2)
expect_eq "copy -n 2 prints two ids" "$(wc -l <<<"$copies")" 2
for c in $copies; do
	expect_eq "copy $c has the files" "$($H exec "$c" -- cat /data/marker)" fs-state
done
j=$($H copy snapsrc --json)
expect_eq "copy --json" "$(jq -r '.source_sandbox_id + " " + (.sandboxes|length|tostring)' <<<"$j")" "$id 1"
t_done
