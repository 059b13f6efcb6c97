#!/bin/bash
# hutch CLI: exec (exit codes follow the remote command, stdout/stderr kept apart, options),
# exec --detach, ps (--json), logs (and --follow while the process runs), kill, run.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
H=$HUTCH_BIN/hutch
id=$($H create --image busybox execbox)

expect_eq "exec output" "$($H exec execbox -- echo hello world)" "hello world"
$H exec execbox -- sh -c 'exit 7'; expect_eq "exit code 7 follows" $? 7
$H exec execbox -- true; expect_eq "exit code 0" $? 0
$H exec execbox -- sh -c 'kill -9 $$' 2>/dev/null; expect_eq "killed by signal 9 is 137" $? 137
$H exec execbox -- /no/such/cmd >/dev/null 2>&1; rc=$?
[ $rc != 0 ] && pass "a missing command fails ($rc)" || fail "a missing command exited 0"
out=$($H exec execbox -- sh -c 'echo to-out; echo to-err >&2' 2>/tmp/cli-err.$$)
expect_eq "stdout only on stdout" "$out" to-out
expect_eq "stderr only on stderr" "$(cat /tmp/cli-err.$$)" to-err
rm -f /tmp/cli-err.$$
expect_eq "--env and --workdir" "$($H exec execbox --env A=1 --env B='x y' -w /tmp -- sh -c 'echo $A $B $(pwd)')" "1 x y /tmp"
expect_eq "options before the sandbox" "$($H exec -e Z=9 execbox -- sh -c 'echo $Z')" 9
expect_eq "--user" "$($H exec execbox --user nobody -- id -u)" 65534
t0=$(date +%s)
$H exec execbox --timeout 1 -- sleep 30 2>/dev/null; rc=$?
[ $rc != 0 ] && [ $(( $(date +%s) - t0 )) -lt 10 ] && pass "--timeout stops the command ($rc)" || fail "--timeout (rc $rc)"
expect_eq "no -- needed" "$($H exec execbox echo a b)" "a b"
expect_eq "exec with --json before the command is not swallowed" "$($H exec execbox -- echo --json)" "--json"

pid=$($H exec --detach execbox -- sh -c 'i=0; while [ $i -lt 3 ]; do echo tick$i; i=$((i+1)); sleep 1; done; echo bye >&2')
expect_match "--detach prints the pid" "$pid" '^[0-9]+$'
ps_json=$($H ps execbox --json)
expect_eq "ps --json has it running" "$(jq -r ".[] | select(.pid==$pid) | .status" <<<"$ps_json")" running
expect_match "ps table" "$($H ps execbox)" "$pid +running"
t0=$(date +%s%N)
follow=$($H logs execbox "$pid" --follow 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "logs --follow streams until the process ends" "$follow" "$(printf 'tick0\ntick1\ntick2\nbye')"
[ $ms -gt 1000 ] && pass "logs --follow waited for live lines (${ms} ms)" || fail "logs --follow returned after ${ms} ms"
expect_eq "logs after the end" "$($H logs execbox "$pid" --stdout)" "$(printf 'tick0\ntick1\ntick2')"
expect_eq "logs --stderr" "$($H logs execbox "$pid" --stderr)" bye
expect_eq "ps shows the exit code" "$($H ps execbox --json | jq -r ".[] | select(.pid==$pid) | .exit_code")" 0

named=$($H exec --detach --name worker execbox -- sleep 1000)
expect_eq "a named detached process" "$($H ps execbox --json | jq -r '.[] | select(.pid=='"$named"') | .status')" running
$H kill execbox worker --signal 15; expect_eq "kill --signal" $? 0
wait_for sh -c "$H ps execbox --json | jq -e '.[] | select(.pid==$named) | .status!=\"running\"'"
expect_eq "signal 15 ended it" "$($H ps execbox --json | jq -r ".[] | select(.pid==$named) | .signal")" 15
p2=$($H exec -d execbox -- sleep 1000)
$H kill execbox "$p2"; expect_eq "kill" $? 0
wait_for sh -c "$H ps execbox --json | jq -e '.[] | select(.pid==$p2) | .signal==9'"
expect_eq "kill sends SIGKILL" "$($H ps execbox --json | jq -r ".[] | select(.pid==$p2) | .signal")" 9
$H kill execbox 99999 2>/dev/null; expect_eq "kill of an unknown pid fails" $? 1

before=$($H ls --quiet | wc -l)
expect_eq "run: output" "$($H run --image busybox -- sh -c 'echo one-shot')" one-shot
$H run --image busybox -- sh -c 'exit 4'; expect_eq "run: exit code follows" $? 4
expect_eq "run tears the sandbox down" "$($H ls --quiet | wc -l)" "$before"
$H run --image busybox --keep -- true 2>/dev/null
expect_eq "run --keep keeps it" "$($H ls --quiet | wc -l)" $((before + 1))
t_done
