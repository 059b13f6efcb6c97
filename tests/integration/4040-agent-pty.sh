#!/bin/bash
# hutch-agent: PTY sessions and their WebSocket protocol, with a stdlib Python client.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
agent_start
python3 "$AGENT_HELPERS/pty_test.py" "$AGENT_SOCK" main || T_FAILS=$((T_FAILS + 1))
check "no zombies left" wait_for no_zombies $AGENT_PID
agent_stop
HUTCH_AGENT_PTY_IDLE_MS=400 HUTCH_AGENT_PTY_REAP_MS=600 HUTCH_AGENT_WS_PING_MS=200 agent_start
python3 "$AGENT_HELPERS/pty_test.py" "$AGENT_SOCK" timing || T_FAILS=$((T_FAILS + 1))
agent_stop
t_done
