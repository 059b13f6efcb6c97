#!/bin/bash
# hutch-agent: limits and PID-1 duties: output caps with a marker, long lines, header and body
# limits, 1,000 processes without zombies, orphans reaped, the process table bounded, OOM
# reporting, the entrypoint, the readiness fd and graceful shutdown.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
T=$(mktemp -d /tmp/hutch-agent-limits.XXXXXX)
OOMF=$T/memory.events
printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n' >"$OOMF"
HUTCH_OOM_FILE=$OOMF agent_start --max-output-lines 100 --max-exited 200

pid=$(start_proc '{"command":"seq","args":["1","1000"]}')
wait_status $pid exited
out=$(A /processes/$pid/stdout)
check "capped output: marker then the newest 100 lines" jq -e '.line_count==101 and (.lines[0]|test("^\\[hutch-agent: 900 earlier stdout lines dropped")) and .lines[1]=="901" and .lines[100]=="1000"' <<<"$out"
check "the marker is in /output too" jq -e '.lines[0]|test("900 earlier stdout lines dropped")' <<<"$(A /processes/$pid/output)"
ev=$(A -N /processes/$pid/stdout/follow | sed -n 's/^data: //p')
check "and replayed first by follow" jq -se '(.[0].line|test("dropped")) and .[1].line=="901"' <<<"$ev"
pid=$(start_proc '{"command":"sh","args":["-c","head -c 200000 /dev/zero | tr \"\\\\0\" x; echo; echo end"]}')
wait_status $pid exited
check "a 200 KB line is split into 64 KiB pieces" jq -e '[.lines[]|length]==[65536,65536,65536,3392,3] and .lines[4]=="end"' <<<"$(A /processes/$pid/stdout)"

big=$(head -c 40000 /dev/zero | tr '\0' a)
expect_eq "a 40 KB header is 431" "$(status_of -H "X-Big: $big" /health)" 431
head -c 1100000 /dev/zero | tr '\0' ' ' >"$T/body"
expect_eq "a JSON body over 1 MiB is 413" "$(status_of -X POST --data-binary @"$T/body" /processes)" 413
expect_eq "the agent still answers" "$(A /health)" '{"healthy":true}'

python3 "$AGENT_HELPERS/many_test.py" "$AGENT_SOCK" 1000 200 || T_FAILS=$((T_FAILS + 1))
check "no zombies after 1,000 processes" wait_for no_zombies $AGENT_PID
for i in $(seq 10); do start_proc '{"command":"sh","args":["-c","sleep 0.2 & sleep 0.3 & exit 0"]}' >/dev/null; done
sleep 0.8
check "orphans (reparented to the agent) are reaped" wait_for no_zombies $AGENT_PID

# OOM: a SIGKILL death while the cgroup's oom_kill counter went up
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","sed -i s/^oom_kill.*/oom_kill\\ 1/ '"$OOMF"'; kill -9 $$"]}' /processes/run | sed -n 's/^data: //p')
check "run: OOM kill is {signal:9, oom_killed:true}" jq -se '.[-1]=={"signal":9,"oom_killed":true}' <<<"$ev"
pid=$(start_proc '{"command":"sleep","args":["30"]}')
kill -9 $pid
check "a plain SIGKILL is not an OOM kill" wait_status $pid signaled
check "oom_killed false" jq -e '.oom_killed==false and .signal==9' <<<"$(A /processes/$pid)"
pid=$(start_proc '{"command":"sleep","args":["30"]}')
sed -i 's/^oom_kill.*/oom_kill 2/' "$OOMF"
kill -9 $pid
check "ProcessInfo status oom_killed" wait_status $pid oom_killed
check "oom_killed true, signal 9" jq -e '.oom_killed==true and .signal==9' <<<"$(A /processes/$pid)"

# graceful shutdown: children get SIGTERM and the agent exits promptly when they are gone
pid=$(start_proc '{"command":"sleep","args":["30"]}')
start=$(date +%s%N)
agent_stop
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "shutdown with cooperative children is quick ($ms ms)" test $ms -lt 3000
check "children were terminated" bash -c "! kill -0 $pid 2>/dev/null"

# finished processes keep at most --max-exited-bytes of output together (each 1 MB run of
# 100-byte lines costs about 1.48 MB with its bookkeeping): the oldest go
agent_start --max-exited-bytes 3200000
for i in 1 2 3 4; do
	A -N -X POST -d '{"command":"sh","args":["-c","head -c 1000000 /dev/zero | tr \"\\\\0\" a | fold -w 100"]}' /processes/run >/dev/null
done
check "the newest outputs stay within the cap" jq -e '[.processes[]|select(.status!="running")]|length==2' <<<"$(A /processes)"
if agent_sanitized; then
	echo "SKIP: the agent's RSS bound: a sanitizer build's shadow memory hides it"
else
	check "the agent's memory is bounded by it" test "$(awk '/VmRSS/{print $2}' /proc/$AGENT_PID/status)" -lt 20000
fi
agent_stop

# a child that ignores SIGTERM is SIGKILLed after the 5 s grace
agent_start
pid=$(start_proc '{"command":"sh","args":["-c","trap \"\" TERM; while :; do sleep 0.1; done"]}')
sleep 0.2
start=$(date +%s%N)
agent_stop
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "a SIGTERM-ignoring child is killed after the grace period ($ms ms)" test $ms -ge 4500 -a $ms -lt 9000
check "it is gone" bash -c "! kill -0 $pid 2>/dev/null"

# readiness byte and the entrypoint
printf '["sh","-c","echo from-entrypoint; sleep 30"]' >"$T/entry.json"
exec 4>"$T/ready"
HUTCH_READY_FD=4 HUTCH_ENTRYPOINT_FILE=$T/entry.json agent_start
exec 4>&-
expect_eq "one byte written to HUTCH_READY_FD" "$(wc -c <"$T/ready")" 1
check "the entrypoint runs as a listed process" wait_for sh -c "curl -s --unix-socket '$AGENT_SOCK' http://agent/api/v1/processes | jq -e '.processes[0].command==\"sh\" and .processes[0].status==\"running\"'"
epid=$(A /processes | jq '.processes[0].pid')
check "its output is captured" wait_for sh -c "curl -s --unix-socket '$AGENT_SOCK' http://agent/api/v1/processes/$epid/stdout | jq -e '.lines==[\"from-entrypoint\"]'"
check "the agent's own variables are not passed on" jq -se '[.[]|select(.line)|.line]==["none"]' <<<"$(A -N -X POST -d '{"command":"sh","args":["-c","echo ${HUTCH_READY_FD:-none}${HUTCH_AGENT_SOCKET}"]}' /processes/run | sed -n 's/^data: //p')"
agent_stop

# an entrypoint killed by the OOM killer ends the sandbox
printf 'oom_kill 0\n' >"$OOMF"
printf '["sh","-c","sleep 0.3; echo oom_kill 1 > %s; kill -9 $$"]' "$OOMF" >"$T/entry.json"
HUTCH_OOM_FILE=$OOMF HUTCH_EXIT_REASON_FILE=$T/exit-reason HUTCH_ENTRYPOINT_FILE=$T/entry.json agent_start
rc=0
timeout 10 tail --pid=$AGENT_PID -f /dev/null || rc=$?
wait $AGENT_PID; arc=$?
AGENT_PID=
expect_eq "the agent exits when its entrypoint is OOM-killed" "$rc $arc" "0 137"
expect_eq "exit-reason is oom" "$(cat "$T/exit-reason" 2>/dev/null)" oom
rm -rf "$T"
t_done
