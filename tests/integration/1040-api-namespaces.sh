#!/bin/bash
# API keys and namespace isolation: a key sees only its namespace (404 for other ids, 403 for
# another namespace's path), keys are created, listed and revoked, revocation is immediate.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api
hutch=$HUTCH_BIN/hutch

keyb=$($hutch key create --name team-b --namespace team-b 2>/dev/null)
expect_match "admin creates a key for a new namespace" "$keyb" '^hk_[a-z0-9]{12}_[a-z0-9]{32}$'
keya=$($hutch key create --name second 2>/dev/null)
expect_match "a key for the same namespace" "$keya" '^hk_'
AUTHB="Authorization: Bearer $keyb"

api POST "/sandboxes?wait=false" '{"name":"shared-name"}'; ida=$(jq_get .sandbox_id <<<"$BODY")
idb=$(curl -s -X POST -H "$AUTHB" "$API/sandboxes?wait=false" -d '{"name":"shared-name"}' | jq_get .sandbox_id)
expect_match "the same name in two namespaces" "$idb" '^[a-z0-9]{21}$'
expect_eq "B lists only its own" "$(curl -s -H "$AUTHB" "$API/sandboxes" | jq -r '[.sandboxes[].id]|join(",")')" "$idb"
expect_eq "B's sandbox is in namespace team-b" "$(curl -s -H "$AUTHB" "$API/sandboxes/$idb" | jq_get .namespace)" team-b
expect_eq "B cannot see A's id" "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTHB" "$API/sandboxes/$ida")" 404
expect_eq "B cannot delete A's id" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTHB" "$API/sandboxes/$ida")" 404
expect_eq "B cannot patch A's id" "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "$AUTHB" -d '{"name":"x"}' "$API/sandboxes/$ida")" 404
expect_eq "names resolve per namespace" "$(curl -s -H "$AUTHB" "$API/sandboxes/shared-name" | jq_get .id)" "$idb"
expect_eq "B's key on A's namespace path is 403" "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTHB" "$API/v1/namespaces/default/sandboxes")" 403
expect_eq "B on its own namespace path" "$(curl -s -H "$AUTHB" "$API/v1/namespaces/team-b/sandboxes" | jq '.sandboxes|length')" 1

# pool ids are per namespace too: the same id in both, neither sees or touches the other's
api POST /sandbox-pools '{"id":"workers","image":"busybox","warm_containers":0}'
expect_eq "A makes pool 'workers'" "$CODE" 200
expect_eq "B makes its own pool 'workers'" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTHB" -d '{"id":"workers","image":"busybox","max_containers":7}' "$API/sandbox-pools")" 200
expect_eq "B sees its own" "$(curl -s -H "$AUTHB" "$API/sandbox-pools/workers" | jq_get .max_containers)" 7
expect_eq "A sees its own" "$(apij GET /sandbox-pools/workers | jq_get .max_containers)" null
expect_eq "B deletes its pool" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "$AUTHB" "$API/sandbox-pools/workers")" 200
expect_eq "A's pool is untouched" "$(apij GET /sandbox-pools/workers | jq_get .namespace)" default
expect_eq "the admin key may address another namespace" "$(apij GET /v1/namespaces/team-b/sandboxes | jq '.sandboxes|length')" 1
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$AUTHB" -d '{"namespace":"default"}' "$API/api-keys")
expect_eq "a plain key cannot mint keys for another namespace" "$code" 403
expect_eq "A still sees A's" "$(apij GET "/sandboxes/$ida" | jq_get .id)" "$ida"

out=$($hutch key ls)
grep -q second <<<"$out" && pass "key ls lists keys" || fail "key ls: $out"
grep -q team-b <<<"$out" && fail "key ls leaked another namespace's key" || pass "key ls is per namespace"
kid=$(cut -d_ -f2 <<<"$keyb")
HUTCH_API_KEY=$keyb $hutch key revoke "$kid" >/dev/null && pass "key revoke" || fail "key revoke"
expect_eq "a revoked key is 401 at once" "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTHB" "$API/sandboxes")" 401
HUTCH_API_KEY=$keya $hutch key revoke "$kid" >/dev/null 2>&1 && fail "revoking twice" || pass "revoking twice fails"
$hutch --json key ls | jq -e 'length >= 2' >/dev/null && pass "key ls --json" || fail "key ls --json"
t_done
