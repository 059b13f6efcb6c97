#!/bin/bash
# Control plane basics over HTTP: health, authentication, both route trees, create/get/list/
# delete, error shapes. Runs the api role alone so sandboxes stay pending.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api

expect_eq "health needs no key" "$(curl -s "$API/health" | jq_get .status)" ok
code=$(curl -s -o /tmp/b.$$ -w '%{http_code}' "$API/sandboxes")
expect_eq "missing key is 401" "$code" 401
expect_eq "401 body has a code" "$(jq_get .code </tmp/b.$$)" UNAUTHENTICATED
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer hk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" "$API/sandboxes")
expect_eq "unknown key is 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${KEY}x" "$API/sandboxes")
expect_eq "malformed key is 401" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic abc" "$API/sandboxes")
expect_eq "other auth scheme is 401" "$code" 401
stat -c %a "$T_DATA/admin.key" | grep -qx 600 && pass "admin key file is 0600" || fail "admin key mode"
if sqlite3 "$T_DATA/hutch.db" "select hash from api_keys" | grep -q "${KEY##*_}"; then
	fail "the key secret is stored in clear"; else pass "only a hash of the key is stored"; fi

api POST "/sandboxes?wait=false" '{"image":"busybox","name":"first","resources":{"cpus":0.5,"memory_mb":256}}'; body=$BODY
expect_eq "create answers 200" "$CODE" 200
id=$(jq_get .sandbox_id <<<"$body")
expect_match "id is 21 lowercase alphanumerics" "$id" '^[a-z0-9]{21}$'
expect_eq "create response has no id alias" "$(jq_get 'has("id")' <<<"$body")" false
expect_eq "pending without executors" "$(jq_get .status <<<"$body")" pending
expect_eq "pending reason" "$(jq_get .pending_reason <<<"$body")" no_executors_available
expect_eq "create response carries sandbox_url" "$(jq_get .sandbox_url <<<"$body")" "$PROXY"

api GET "/sandboxes/$id"; sb=$BODY
expect_eq "get by id" "$CODE" 200
expect_eq "object has id" "$(jq_get .id <<<"$sb")" "$id"
expect_eq "object has no sandbox_id alias" "$(jq_get 'has("sandbox_id")' <<<"$sb")" false
expect_eq "namespace" "$(jq_get .namespace <<<"$sb")" default
expect_eq "memory_mb is an integer" "$(jq_get '.resources.memory_mb|type' <<<"$sb")" number
expect_eq "ephemeral_disk_mb and disk_mb both" "$(jq_get '.resources.ephemeral_disk_mb == .resources.disk_mb' <<<"$sb")" true
expect_eq "cpus" "$(jq_get .resources.cpus <<<"$sb")" 0.5
expect_eq "default timeout 600" "$(jq_get .timeout_secs <<<"$sb")" 600
expect_eq "file_systems is an array" "$(jq_get '.file_systems|type' <<<"$sb")" array
expect_eq "network and network_policy both present" "$(jq_get '(has("network") and has("network_policy"))' <<<"$sb")" true
ca=$(jq_get .created_at <<<"$sb")
[ "$ca" -gt 1700000000000 ] && pass "created_at is in milliseconds" || fail "created_at $ca"
expect_eq "get by name" "$(apij GET /sandboxes/first | jq_get .id)" "$id"
expect_eq "namespaced route sees it" "$(apij GET "/v1/namespaces/default/sandboxes/$id" | jq_get .id)" "$id"
expect_eq "list has it" "$(apij GET /sandboxes | jq_get '.sandboxes[0].id')" "$id"
expect_eq "namespaced list" "$(apij GET /v1/namespaces/default/sandboxes | jq_get '.sandboxes|length')" 1

# features hutch does not have: a clear refusal for a live sandbox, never "not found"
api GET "/v1/namespaces/default/sandboxes/$id/logs?head=10"
expect_eq "persisted logs are 501" "$CODE" 501
expect_eq "with LOGS_UNAVAILABLE" "$(jq_get .code <<<"$BODY")" LOGS_UNAVAILABLE
api GET "/v1/namespaces/default/sandboxes/$id/processes"; expect_eq "log processes are 501" "$CODE" 501
api POST "/sandboxes/$id/file_systems" '{"file_system_id":"fs1","mount_path":"/mnt/a"}'
expect_eq "attaching a file system is 400" "$CODE" 400
expect_eq "with FILE_SYSTEMS_UNAVAILABLE" "$(jq_get .code <<<"$BODY")" FILE_SYSTEMS_UNAVAILABLE
api DELETE "/sandboxes/$id/file_systems" '{"mount_path":"/mnt/a"}'; expect_eq "detaching is 400" "$CODE" 400
api GET /sandboxes/nonexistentsandboxid1/logs; expect_eq "logs of an unknown sandbox are 404" "$CODE" 404

api GET /sandboxes/nonexistentsandboxid1; echo "$BODY" >/tmp/b.$$
expect_eq "unknown id is 404" "$CODE" 404
expect_eq "404 code" "$(jq_get .code </tmp/b.$$)" SANDBOX_NOT_FOUND
api GET /nope; expect_eq "unknown route is 404" "$CODE" 404
api PUT /sandboxes; expect_eq "wrong method is 405" "$CODE" 405
api GET "/v1/namespaces/Bad_NS/sandboxes"; expect_eq "malformed namespace is 404" "$CODE" 404

api DELETE "/sandboxes/$id"; expect_eq "delete is 200" "$CODE" 200
api GET "/sandboxes/$id"; sb=$BODY
expect_eq "terminated after delete" "$(jq_get .status <<<"$sb")" terminated
expect_eq "outcome user terminated" "$(jq_get .outcome <<<"$sb")" "Success(UserTerminated)"
expect_eq "terminated sandboxes have no sandbox_url" "$(jq_get .sandbox_url <<<"$sb")" null
api DELETE "/sandboxes/$id"; expect_eq "delete is idempotent" "$CODE" 200
api DELETE /sandboxes/nonexistentsandboxid1; expect_eq "delete unknown is 404" "$CODE" 404
expect_eq "the name is free again" "$(apij POST '/sandboxes?wait=false' '{"name":"first"}' | jq_get .status)" pending
expect_eq "introspect" "$(apij POST /platform/v1/keys/introspect | jq_get .projectId)" default
rm -f /tmp/b.$$
t_done
