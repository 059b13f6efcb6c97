#!/bin/bash
# hutch-agent: TCP tunnels over WebSocket, with a stdlib Python client and echo server.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
agent_start
python3 "$AGENT_HELPERS/tunnel_test.py" "$AGENT_SOCK" main || T_FAILS=$((T_FAILS + 1))
agent_stop
agent_start --tunnel-502
python3 "$AGENT_HELPERS/tunnel_test.py" "$AGENT_SOCK" strict || T_FAILS=$((T_FAILS + 1))
agent_stop
t_done
