#!/bin/bash
# hutch-agent: follow SSE streams (backlog, live, eof, re-attach, keep-alive, slow followers) and
# run clients that disconnect or read slowly.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
HUTCH_AGENT_KEEPALIVE_MS=300 agent_start --max-output-bytes 12000000
python3 "$AGENT_HELPERS/follow_test.py" "$AGENT_SOCK" || T_FAILS=$((T_FAILS + 1))
check "no zombies left" wait_for no_zombies $AGENT_PID
agent_stop
t_done
