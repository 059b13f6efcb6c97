#!/bin/bash
# hutch CLI: --help on every command, create (options, name, --no-wait), ls (--json, --quiet,
# filters), describe, update, suspend/resume, terminate, key and image commands, usage errors.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
H=$HUTCH_BIN/hutch

# --help on every command (and before or after other arguments), exit 0, text on stdout
for c in create ls describe get info update terminate rm stop suspend resume exec run pty ssh \
	shell ps logs kill cp tunnel port snapshot checkpoint copy clone pool key image; do
	out=$($H "$c" --help 2>/dev/null); rc=$?
	[ $rc = 0 ] && [[ "$out" == usage:* ]] && pass "$c --help" || fail "$c --help (rc $rc: ${out:0:60})"
done
out=$($H pool create --help); expect_match "--help after a subcommand" "$out" '^usage: hutch pool create'
out=$($H ls --all --help); expect_match "--help after an option" "$out" '^usage: hutch ls'
$H no-such-command >/dev/null 2>&1; expect_eq "unknown command exits 2" $? 2
$H describe >/dev/null 2>&1; expect_eq "missing argument exits 2" $? 2

id=$($H create clibox --image busybox --cpus 0.5 --memory 200 --disk 1500 --timeout 0 \
	--entrypoint sh -c 'echo ep > /tmp/ep; exec sleep 100000' --)
expect_match "create prints the id" "$id" '^[a-z0-9]{21}$'
d=$($H describe clibox --json)
expect_eq "describe --json by name" "$(jq -r .id <<<"$d")" "$id"
expect_eq "status running" "$(jq -r .status <<<"$d")" running
expect_eq "resources" "$(jq -c '.resources|[.cpus,.memory_mb,.ephemeral_disk_mb]' <<<"$d")" '[0.5,200,1500]'
expect_eq "timeout 0" "$(jq -r .timeout_secs <<<"$d")" 0
expect_eq "entrypoint" "$(jq -c .entrypoint <<<"$d")" '["sh","-c","echo ep > /tmp/ep; exec sleep 100000"]'
expect_eq "--json after the command is the same as before it" "$($H --json describe "$id" | jq -r .name)" clibox
expect_match "describe text" "$($H describe "$id")" 'status +running'

id2=$($H create --image busybox --no-internet --network-allow 10.0.0.1)
expect_eq "create network flags" "$($H describe "$id2" --json | jq -c .network)" \
	'{"allow_internet_access":false,"allow_out":["10.0.0.1"],"deny_out":[]}'
id3=$($H create --image busybox --no-wait)
expect_match "create --no-wait prints the id" "$id3" '^[a-z0-9]{21}$'
wait_for sh -c "$H describe $id3 --json | jq -e '.status==\"running\"'"

ls_json=$($H ls --json)
expect_eq "ls --json lists the three" "$(jq 'length' <<<"$ls_json")" 3
expect_eq "ls --json entries are sandbox objects" "$(jq -r "map(select(.id==\"$id\"))[0].name" <<<"$ls_json")" clibox
expect_eq "ls --quiet prints ids" "$($H ls --quiet | sort | tr '\n' ' ')" "$(printf '%s\n' "$id" "$id2" "$id3" | sort | tr '\n' ' ')"
expect_match "ls table" "$($H ls)" "ID +NAME +STATUS.*$id +clibox +running"

$H update "$id2" --name renamed >/dev/null
expect_eq "update --name" "$($H describe renamed --json | jq -r .id)" "$id2"
$H update renamed --expose 8000 --public >/dev/null
expect_eq "update --expose --public" "$($H describe renamed --json | jq -c '[.exposed_ports,.allow_unauthenticated_access]')" '[[8000],true]'

out=$($H suspend clibox); expect_eq "suspend waits for suspended" "$out" "clibox suspended"
expect_eq "ls --suspended" "$($H ls --suspended --quiet)" "$id"
out=$($H resume clibox); expect_eq "resume waits for running" "$out" "clibox running"
expect_eq "the entrypoint's state survived" "$($H exec clibox -- cat /tmp/ep)" ep
$H suspend "$id3" >/dev/null 2>&1; expect_eq "suspending an ephemeral sandbox fails" $? 1

$H terminate "$id3" renamed >/dev/null
expect_eq "terminate several" "$($H describe "$id3" --json | jq -r .status)" terminated
expect_eq "ls hides terminated" "$($H ls --quiet)" "$id"
expect_eq "ls --all shows them" "$($H ls --all --json | jq length)" 3
$H describe nope-nope >/dev/null 2>&1; expect_eq "describe unknown fails" $? 1

key=$($H key create --name cli-test 2>/dev/null)
expect_match "key create prints the key" "$key" '^hk_'
kid=$($H key ls --json | jq -r '.[] | select(.name=="cli-test") | .id')
[ -n "$kid" ] && pass "key ls --json" || fail "key ls --json has no cli-test key"
expect_eq "the new key sees the namespace" "$(HUTCH_API_KEY=$key $H ls --quiet)" "$id"
okey=$($H key create --namespace other 2>/dev/null)
expect_eq "a key of another namespace sees none of them" "$(HUTCH_API_KEY=$okey $H ls --quiet)" ""
$H key revoke "$kid" >/dev/null; expect_eq "key revoke" $? 0
HUTCH_API_KEY=$key $H ls >/dev/null 2>&1; expect_eq "a revoked key is refused" $? 1

# without a key the CLI falls back to DATA_DIR/admin.key, only for a loopback API URL (which
# URLs count is unit-tested in tests/unit/test_cli.c)
port=${API##*:}
expect_eq "no key, 127.0.0.1: the local admin key is used" "$(env -u HUTCH_API_KEY $H ls --quiet)" "$id"
expect_eq "no key, localhost: the local admin key is used" \
	"$(env -u HUTCH_API_KEY HUTCH_API_URL=http://localhost:$port/ $H ls --quiet)" "$id"
expect_eq "the URL checked is the one used (--api-url over HUTCH_API_URL)" \
	"$(env -u HUTCH_API_KEY HUTCH_API_URL=https://api.example.invalid $H --api-url "$API" ls --quiet)" "$id"
out=$(env -u HUTCH_API_KEY HUTCH_DATA_DIR=/nonexistent $H ls 2>&1); rc=$?
expect_eq "no key at all is refused" $rc 1
expect_match "and the error asks for HUTCH_API_KEY / --api-key" "$out" \
	'no API key.*set HUTCH_API_KEY or pass --api-key'
out=$(env -u HUTCH_API_KEY $H --api-key "$key" ls 2>&1)
[[ "$out" != *"set HUTCH_API_KEY"* ]] && pass "a given (revoked) key gets no key hint" ||
	fail "a given key got the hint: $out"
wrong=$(mktemp -d /tmp/hutch-cli-key-XXXXXX); echo hk_wrong >"$wrong/admin.key"
out=$(env -u HUTCH_API_KEY HUTCH_DATA_DIR=$wrong $H ls 2>&1)
expect_match "a refused admin.key says so" "$out" "admin key \\($wrong/admin.key\\) was refused"
rm -rf "$wrong"
expect_match "image ls" "$($H image ls)" 'busybox'
expect_eq "image ls --json" "$($H image ls --json | jq -r '.[] | select(.name=="busybox") | .name')" busybox
t_done
