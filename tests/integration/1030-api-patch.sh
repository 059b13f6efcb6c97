#!/bin/bash
# PATCH semantics: tri-state network (absent keeps, null clears, object replaces), exposed_ports
# replaces, rename, promotion of an ephemeral sandbox to named, conflicts.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api

api POST "/sandboxes?wait=false" '{"network":{"allow_internet_access":false,"deny_out":["10.0.0.0/8"]},"exposed_ports":[3000]}'
id=$(jq_get .sandbox_id <<<"$BODY")
api PATCH "/sandboxes/$id" '{"allow_unauthenticated_access":true}'
expect_eq "PATCH answers the full object" "$(jq_get .id <<<"$BODY")" "$id"
expect_eq "absent network is kept" "$(jq -c .network <<<"$BODY")" '{"allow_internet_access":false,"allow_out":[],"deny_out":["10.0.0.0/8"]}'
expect_eq "public access set" "$(jq_get .allow_unauthenticated_access <<<"$BODY")" true
expect_eq "ports kept" "$(jq -c .exposed_ports <<<"$BODY")" "[3000]"
api PATCH "/sandboxes/$id" '{"network":{"allow_out":["example.com"]}}'
expect_eq "object replaces the whole policy" "$(jq -c .network <<<"$BODY")" '{"allow_internet_access":true,"allow_out":["example.com"],"deny_out":[]}'
expect_eq "network_policy mirrors network" "$(jq -c '.network == .network_policy' <<<"$BODY")" true
api PATCH "/sandboxes/$id" '{"network":null}'
expect_eq "null clears the policy" "$(jq -c .network <<<"$BODY")" null
api PATCH "/sandboxes/$id" '{"exposed_ports":[8080,80]}'
expect_eq "exposed_ports replaces" "$(jq -c .exposed_ports <<<"$BODY")" "[80,8080]"
api PATCH "/sandboxes/$id" '{"exposed_ports":[]}'
expect_eq "[] clears the ports" "$(jq -c .exposed_ports <<<"$BODY")" "[]"
expect_eq "ephemeral before rename" "$(apij GET "/sandboxes/$id" | jq_get .name)" null
api PATCH "/sandboxes/$id" '{"name":"promoted"}'
expect_eq "rename promotes to named" "$(jq_get .name <<<"$BODY")" promoted
expect_eq "same id after promotion" "$(jq_get .id <<<"$BODY")" "$id"
expect_eq "reachable by the new name" "$(apij GET /sandboxes/promoted | jq_get .id)" "$id"
api PATCH /sandboxes/promoted '{"name":"renamed"}'
expect_eq "rename a named sandbox" "$(apij GET /sandboxes/renamed | jq_get .id)" "$id"
api GET /sandboxes/promoted; expect_eq "old name is gone" "$CODE" 404
api POST "/sandboxes?wait=false" '{"name":"other"}'
api PATCH /sandboxes/renamed '{"name":"other"}'
expect_eq "rename onto a taken name is 409" "$CODE" 409
expect_eq "409 leaves the name" "$(apij GET "/sandboxes/$id" | jq_get .name)" renamed
api PATCH /sandboxes/nonexistentsandboxid1 '{"name":"x"}'; expect_eq "PATCH unknown is 404" "$CODE" 404
api PATCH "/sandboxes/$id" 'not json'; expect_eq "PATCH malformed JSON is 400" "$CODE" 400
api DELETE "/sandboxes/$id"
api PATCH "/sandboxes/$id" '{"allow_unauthenticated_access":false}'
expect_eq "PATCH of a terminated sandbox is 409" "$CODE" 409
grep -q terminated <<<"$BODY" && pass "409 names the state" || fail "409 body: $BODY"
t_done
