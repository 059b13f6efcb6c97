#!/bin/bash
# hutch-agent as PID 1 of a fresh pid namespace (as in a sandbox): children see it as their
# parent, orphans are reaped, SIGTERM ends everything in the namespace, orphans included.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
need_root
need_cmd unshare
AGENT_DIR=$(mktemp -d /tmp/hutch-agent-pid1.XXXXXX)
AGENT_SOCK=$AGENT_DIR/agent.sock
unshare --pid --fork --mount-proc "$AGENT_BIN" --socket "$AGENT_SOCK" >"$AGENT_DIR/log" 2>&1 &
UPID=$!
trap 'kill -9 $UPID 2>/dev/null; rm -rf "$AGENT_DIR"' EXIT
wait_for test -S "$AGENT_SOCK" || { fail "agent did not start as PID 1"; cat "$AGENT_DIR/log"; t_done; }
expect_match "the agent runs as pid 1" "$(cat "$AGENT_DIR/log")" "\(pid 1\)"
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","echo $PPID; sleep 0.2 & sleep 0.2 & exit 0"]}' /processes/run | sed -n 's/^data: //p')
check "children have the agent (pid 1) as parent" jq -se '[.[]|select(.line)|.line]==["1"]' <<<"$ev"
sleep 0.6
zombies() { A -N -X POST -d '{"command":"sh","args":["-c","ps -eo stat= | grep -c ^Z || true"]}' /processes/run | sed -n 's/^data: //p' | jq -rs '[.[]|select(.line)|.line][0]'; }
expect_eq "orphans were reaped by PID 1" "$(zombies)" 0
A -X POST -d '{"command":"sh","args":["-c","sleep 60 & sleep 60"]}' /processes >/dev/null
agent_pid=$(ps -o pid= --ppid $UPID | tr -d ' ')
ns=$(readlink /proc/"$agent_pid"/ns/pid)
sleepers=""
wait_for sh -c "[ \$(pgrep -x sleep | wc -l) -ge 2 ]"
for p in $(pgrep -x sleep); do [ "$(readlink /proc/$p/ns/pid 2>/dev/null)" = "$ns" ] && sleepers="$sleepers $p"; done
expect_eq "two sleepers run in the namespace" "$(wc -w <<<"$sleepers")" 2
kill -TERM "$agent_pid"
rc=0
timeout 10 tail --pid="$agent_pid" -f /dev/null || rc=$?
expect_eq "SIGTERM ends PID 1 promptly" "$rc" 0
wait $UPID
expect_eq "exit status 0" "$?" 0
alive=0
for p in $sleepers; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
expect_eq "no process of the namespace is left (orphans included)" "$alive" 0
t_done
