#!/bin/bash
# Snapshots: a filesystem snapshot boots a new sandbox cold with the files; a memory snapshot
# continues the processes; copy x3 gives independent running sandboxes; the snapshot API
# (list, get, delete, errors). Memory parts SKIP only when the server says CRIU is unavailable.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 30000"
mk() { curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d "$1" | jq_get .sandbox_id; }
wait_snap() { for _ in $(seq 1 100); do st=$(apij GET "/snapshots/$1" | jq_get .status); [ "$st" != in_progress ] && break; sleep 0.1; done; echo "$st"; }
id=$(mk '{"image":"busybox","name":"origin"}')
sb_run "$id" 'echo data > /root/kept; rm /etc/group; mkdir -p /srv/d; echo x > /srv/d/f; (i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done) </dev/null >/dev/null 2>&1 &' >/dev/null

api POST "/sandboxes/$id/snapshot" '{"snapshot_type":"bogus"}'; expect_eq "unknown snapshot_type is 400" "$CODE" 400
api POST "/sandboxes/$id/snapshot"
expect_eq "snapshot with an empty body (filesystem)" "$CODE" 200
fs=$(jq_get .snapshot_id <<<"$BODY")
expect_eq "create answers in_progress" "$(jq_get .status <<<"$BODY")" in_progress
expect_eq "filesystem snapshot completes" "$(wait_snap "$fs")" completed
api GET "/snapshots/$fs"
expect_eq "snapshot object" "$(jq -r '"\(.sandbox_id) \(.snapshot_type) \(.namespace)"' <<<"$BODY")" "$id filesystem default"
expect_match "digest recorded" "$(jq_get .digest <<<"$BODY")" '^sha256:[0-9a-f]{64}$'
expect_eq "the sandbox is running again" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
expect_eq "listed" "$(apij GET /snapshots | jq -r --arg s "$fs" '[.snapshots[].id]|index($s) != null')" true
c=$(mk "{\"snapshot_id\":\"$fs\"}")
expect_eq "a sandbox boots from the filesystem snapshot" "$(apij GET "/sandboxes/$c" | jq_get .status)" running
expect_eq "files come back" "$(sb_run "$c" 'cat /root/kept /srv/d/f' | tr '\n' ' ')" "data x "
sb_run "$c" 'test -e /etc/group' >/dev/null; [ "$RC" != 0 ] && pass "deletions come back" || fail "deleted file is back"
a=$(sb_run "$c" 'cat /tmp/count'); sleep 0.5
expect_eq "processes do not come back (cold boot)" "$(sb_run "$c" 'cat /tmp/count')" "$a"
api POST /sandboxes '{"snapshot_id":"nosuchsnapshot"}'; expect_eq "unknown snapshot is 404" "$CODE" 404
api POST "/sandboxes?wait=false" "{\"snapshot_id\":\"$fs\",\"image\":\"default\"}"
expect_eq "a filesystem snapshot keeps its image" "$CODE" 400

# memory snapshot
api POST "/sandboxes/$id/snapshot" '{"snapshot_type":"memory"}'
if [ "$CODE" = 400 ] && [ "$(jq_get .code <<<"$BODY")" = MEMORY_SNAPSHOT_UNAVAILABLE ]; then
	echo "SKIP: memory snapshots: $(jq_get .error <<<"$BODY")"
else
	ms=$(jq_get .snapshot_id <<<"$BODY")
	expect_eq "memory snapshot completes" "$(wait_snap "$ms")" completed
	src=$(sb_run "$id" 'cat /tmp/count')
	m=$(mk "{\"snapshot_id\":\"$ms\"}")
	expect_eq "a sandbox starts from the memory snapshot" "$(apij GET "/sandboxes/$m" | jq_get .status)" running
	a=$(sb_run "$m" 'cat /tmp/count'); sleep 0.6; b=$(sb_run "$m" 'cat /tmp/count')
	[ "$a" -gt 1 ] && [ "$b" -gt "$a" ] && pass "its counter continued ($a -> $b, source was at $src)" || fail "counter $a -> $b"
	expect_eq "with its own hostname" "$(sb_run "$m" hostname)" "$m"
	api POST "/sandboxes/$id/copy?times=3"
	expect_eq "copy x3 answers 200" "$CODE" 200
	expect_eq "three copies running" "$(jq -r '[.sandboxes[]|select(.status=="running")]|length' <<<"$BODY")" 3
	expect_eq "source id in the answer" "$(jq_get .source_sandbox_id <<<"$BODY")" "$id"
	copies=$(jq -r '.sandboxes[].sandbox_id' <<<"$BODY")
	for c2 in $copies; do sb_run "$c2" "echo $c2 > /root/me" >/dev/null; done
	ok=0; for c2 in $copies; do [ "$(sb_run "$c2" 'cat /root/me')" = "$c2" ] && ok=$((ok + 1)); done
	expect_eq "copies have independent state" "$ok" 3
	expect_eq "the source is untouched" "$(sb_run "$id" 'cat /root/me 2>/dev/null; cat /root/kept')" data
	api POST "/sandboxes/$id/copy?times=0"; expect_eq "copy times=0 is 400" "$CODE" 400
	api POST "/sandboxes/$id/copy?times=99"; expect_eq "copy times=99 is 400" "$CODE" 400
fi
api DELETE "/snapshots/$fs"; expect_eq "delete a snapshot" "$CODE" 200
api GET "/snapshots/$fs"; expect_eq "deleted snapshot is 404" "$CODE" 404
api DELETE "/snapshots/$fs"; expect_eq "deleting again is 404" "$CODE" 404
wait_for sh -c "! grep -q '$fs' $T_DATA/hutch.db 2>/dev/null || [ \$(sqlite3 $T_DATA/hutch.db \"select count(*) from snapshots where id='$fs'\") = 0 ]"
expect_eq "the executor removed its data" "$(ls "$T_DATA/runtime/snapshot-refs/$fs" 2>/dev/null | wc -l)" 0
api POST "/sandboxes/$id/suspend"; wait_for sh -c "curl -s -H '$AUTH' $API/sandboxes/$id | jq -e '.status==\"suspended\"'"
api POST "/sandboxes/$id/snapshot"; expect_eq "snapshot of a suspended sandbox is 409" "$CODE" 409
t_done
