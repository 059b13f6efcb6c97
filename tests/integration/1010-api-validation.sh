#!/bin/bash
# Every validation rule of create and update: each bad request gets a 4xx with
# {"error","code"} naming the field; good edge cases are accepted.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api --max-body-bytes 65536

# bad BODY WANT_STATUS WANT_SUBSTRING
bad() {
	api POST "/sandboxes?wait=false" "$1"
	if [ "$CODE" = "$2" ] && grep -qF -- "$3" <<<"$BODY" && jq -e '.error and .code' >/dev/null <<<"$BODY"; then
		pass "rejects $1 ($2)"
	else fail "rejects $1: got $CODE $BODY, want $2 containing '$3'"; fi
}
good() {
	api POST "/sandboxes?wait=false" "$1"
	if [ "$CODE" = 200 ]; then pass "accepts $1"; api DELETE "/sandboxes/$(jq_get .sandbox_id <<<"$BODY")";
	else fail "accepts $1: got $CODE $BODY"; fi
}

bad '{' 400 'malformed JSON'
bad '[1,2]' 400 'must be a JSON object'
bad '"x"' 400 'must be a JSON object'
bad '{"a":1,"a":2}' 400 'malformed JSON'
bad '{"image":5}' 400 'image: must be a string'
bad '{"image":"Ubuntu"}' 400 'image: is not a valid image name'
bad '{"image":"a/../b"}' 400 'image'
bad '{"resources":"big"}' 400 'resources: must be an object'
bad '{"resources":{"cpus":"2"}}' 400 'resources.cpus: must be a number'
bad '{"resources":{"cpus":0}}' 400 'resources.cpus'
bad '{"resources":{"cpus":-1}}' 400 'resources.cpus'
bad '{"resources":{"cpus":1000}}' 400 'resources.cpus'
bad '{"resources":{"memory_mb":1.5}}' 400 'resources.memory_mb: must be an integer'
bad '{"resources":{"memory_mb":8}}' 400 'resources.memory_mb: must be in the range'
bad '{"resources":{"memory_mb":"1024"}}' 400 'resources.memory_mb'
bad '{"resources":{"disk_mb":10}}' 400 'resources.disk_mb'
bad '{"resources":{"disk_mb":1024,"ephemeral_disk_mb":2048}}' 400 'disagree'
bad '{"resources":{"gpus":[{"count":1,"model":"A10"}]}}' 400 'GPUS_UNAVAILABLE'
bad '{"timeout_secs":-1}' 400 'timeout_secs'
bad '{"timeout_secs":"600"}' 400 'timeout_secs: must be an integer'
bad '{"timeout_secs":99999999}' 400 'timeout_secs: must be in the range'
bad '{"entrypoint":"sleep 1"}' 400 'entrypoint: must be an array of strings'
bad '{"entrypoint":[]}' 400 'entrypoint: must not be empty'
bad '{"entrypoint":["a",1]}' 400 'entrypoint'
bad '{"name":"Bad"}' 400 'name: must start with a lowercase letter'
bad '{"name":"1abc"}' 400 'name: must start with a lowercase letter'
bad '{"name":"abc-"}' 400 "name: must not end with '-'"
bad '{"name":"a_b"}' 400 'name: may only contain'
bad '{"name":"abcdefghij0123456789a"}' 400 'name: must not look like a sandbox id'
bad "{\"name\":\"$(printf 'a%.0s' $(seq 64))\"}" 400 'name: must be 1 to 63'
bad '{"name":""}' 400 'name'
bad '{"name":7}' 400 'name: must be a string'
bad '{"allow_unauthenticated_access":"yes"}' 400 'allow_unauthenticated_access: must be true or false'
bad '{"allow_unauthenticated_access":true,"allow_unauthenticated_proxy_access":false}' 400 'disagree'
bad '{"exposed_ports":8080}' 400 'exposed_ports: must be an array'
bad '{"exposed_ports":[0]}' 400 'exposed_ports: entries must be integers 1..65535'
bad '{"exposed_ports":[65536]}' 400 'exposed_ports'
bad '{"exposed_ports":["80"]}' 400 'exposed_ports'
bad '{"exposed_ports":[9501]}' 400 'reserved'
bad '{"network":"none"}' 400 'network must be an object'
bad '{"network":{"allow_internet_access":"no"}}' 400 'network.allow_internet_access'
bad '{"network":{"allow_out":"1.1.1.1"}}' 400 'network.allow_out must be an array'
bad '{"network":{"allow_out":[1]}}' 400 'network.allow_out[0] must be a string'
bad '{"network":{"deny_out":["300.1.1.1"]}}' 400 'network.deny_out[0]'
bad '{"network":{"deny_out":["10.0.0.0/33"]}}' 400 'network.deny_out[0]'
bad '{"network":{"deny_out":["10.0.0.1:0"]}}' 400 'port'
bad '{"network":{"deny_out":["::1"]}}' 400 'IPv6'
bad '{"network":{"deny_out":["bad host!"]}}' 400 'network.deny_out[0]'
bad '{"network":{"allow":["1.1.1.1"]}}' 400 'network.allow is not a known field'
bad '{"secret_names":["db"]}' 400 'SECRETS_UNAVAILABLE'
bad '{"file_systems":[{"file_system_id":"f","mount_path":"/m"}]}' 400 'FILE_SYSTEMS_UNAVAILABLE'
bad '{"pool_id":"p"}' 400 'pool_id'
bad '{"snapshot_id":"nosuchsnapshot"}' 404 'SNAPSHOT_NOT_FOUND'

good '{}'
good ''
good '{"resources":{"cpus":0.25,"memory_mb":1024.0,"ephemeral_disk_mb":2048},"timeout_secs":0}'
good '{"resources":{"gpus":[]},"secret_names":[],"file_systems":[],"image":null,"name":null}'
good '{"name":"abcdefghij0123456789","exposed_ports":[8080,80,8080]}'
good '{"network":{"allow_internet_access":false,"allow_out":["198.51.100.7:443","10.0.0.0/8"],"deny_out":[]}}'
# a well-formed host name must resolve (this server's DNS answers nothing: 127.0.0.1:1)
bad '{"network":{"allow_out":["example.com"]}}' 400 "INVALID_NETWORK_POLICY"
bad '{"network":{"deny_out":["10.0.0.1","no-such-host.test"]}}' 400 "deny_out[1]"

good '{"allow_unauthenticated_proxy_access":true,"unknown_field_is_ignored":1}'

api POST "/sandboxes?wait=false" '{"name":"ports","exposed_ports":[8080,80,8080,443]}'
expect_eq "ports de-duplicated and sorted" "$(apij GET /sandboxes/ports | jq -c .exposed_ports)" "[80,443,8080]"
expect_eq "legacy alias sets public access" "$(apij GET /sandboxes?limit=1 | jq -r '.sandboxes|length')" 1
api POST "/sandboxes?wait=false" '{"name":"ports"}'
expect_eq "duplicate live name is 409" "$CODE" 409

# body limit (64 KiB here) and header limits
big=$(python3 -c 'print("{\"entrypoint\":[\"" + "a"*70000 + "\"]}")')
api POST "/sandboxes?wait=false" "$big"
expect_eq "oversized body is 413" "$CODE" 413
hdrs=(); for i in $(seq 1 150); do hdrs+=(-H "X-Pad-$i: v"); done
code=$(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" -H "$AUTH" "$API/sandboxes")
expect_eq "too many headers is 431" "$code" 431
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" -H "$AUTH" "$API/sandboxes")
expect_eq "oversized header is 431" "$code" 431
# a slow client does not stall others
(exec 3<>/dev/tcp/127.0.0.1/${API##*:}; printf 'GET /sandboxes HTTP/1.1\r\nHost: x\r\n' >&3; sleep 3) &
slow=$!
code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "$AUTH" "$API/sandboxes")
expect_eq "server keeps serving while a client is slow" "$code" 200
kill $slow 2>/dev/null

# PATCH validation
api PATCH /sandboxes/ports '{}'
expect_eq "empty PATCH is 400" "$CODE" 400
api PATCH /sandboxes/ports '{"name":null}'
expect_eq "PATCH name null is 400" "$CODE" 400
api PATCH /sandboxes/ports '{"exposed_ports":[9501]}'
expect_eq "PATCH reserved port is 400" "$CODE" 400
api PATCH /sandboxes/ports '{"network":{"deny_out":["nope nope"]}}'
expect_eq "PATCH bad policy entry is 400" "$CODE" 400
expect_eq "failed PATCH kept the old state" "$(apij GET /sandboxes/ports | jq -c .exposed_ports)" "[80,443,8080]"
t_done
