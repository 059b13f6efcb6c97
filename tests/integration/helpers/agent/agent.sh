# Shared helpers for the hutch-agent integration tests (tests/integration/4*-agent-*.sh): start the
# built agent as an ordinary process on a temporary unix socket, talk to it with curl, stop it and
# fail on sanitizer reports. Needs curl, jq and python3.

AGENT_BIN=${AGENT_BIN:-$HUTCH_BIN/hutch-agent}
AGENT_HELPERS=$HUTCH_ROOT/tests/integration/helpers/agent

agent_need() {
	need_cmd curl
	need_cmd jq
	need_cmd python3
	[ -x "$AGENT_BIN" ] || skip "no agent binary at $AGENT_BIN (run make)"
}

# agent_start [ARGS...]: starts the agent in a fresh temp dir; sets AGENT_DIR, AGENT_SOCK, AGENT_PID.
agent_start() {
	AGENT_DIR=$(mktemp -d /tmp/hutch-agent-test.XXXXXX)
	AGENT_SOCK=$AGENT_DIR/agent.sock
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
		"$AGENT_BIN" --socket "$AGENT_SOCK" "$@" >"$AGENT_DIR/log" 2>&1 &
	AGENT_PID=$!
	if ! wait_for test -S "$AGENT_SOCK"; then
		fail "agent did not start"; cat "$AGENT_DIR/log"; t_done
	fi
	trap agent_cleanup EXIT
}

agent_cleanup() {
	[ -n "${AGENT_PID:-}" ] && kill -9 "$AGENT_PID" 2>/dev/null
	[ -n "${AGENT_DIR:-}" ] && rm -rf "$AGENT_DIR"
}

# agent_stop: SIGTERM, waits, checks the exit status and the log for sanitizer reports.
agent_stop() {
	kill -TERM "$AGENT_PID" 2>/dev/null
	local rc=0
	wait "$AGENT_PID" || rc=$?
	expect_eq "agent exits cleanly on SIGTERM" "$rc" 0
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$AGENT_DIR/log"; then
		fail "sanitizer report in the agent log"
		grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$AGENT_DIR/log" | head -60
	else
		pass "no sanitizer reports"
	fi
	AGENT_PID=
}

# A [CURL ARGS...] PATH: a request to the agent; PATH is relative to /api/v1.
A() {
	local path=${*: -1}
	curl -s --max-time 30 --unix-socket "$AGENT_SOCK" "${@:1:$#-1}" "http://agent/api/v1$path"
}

# status_of [CURL ARGS...] PATH: prints only the HTTP status.
status_of() {
	A -o /dev/null -w '%{http_code}' "$@"
}

# start_proc JSON: starts a process, prints its pid.
start_proc() {
	A -X POST -H 'Content-Type: application/json' -d "$1" /processes | jq -r .pid
}

# wait_status PID STATUS: waits (10 s) until the process reports STATUS.
wait_status() {
	wait_for sh -c "curl -s --unix-socket '$AGENT_SOCK' http://agent/api/v1/processes/$1 | jq -e '.status == \"$2\"'"
}

# zombies_of PID: number of zombie children of PID.
zombies_of() {
	local n=0 c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		[ "$(sed 's/.*) //' /proc/"$c"/stat 2>/dev/null | cut -d' ' -f1)" = Z ] && n=$((n + 1))
	done
	echo $n
}

# no_zombies PID: true when PID has no zombie children (use with wait_for: reaping is async).
no_zombies() {
	[ "$(zombies_of "$1")" = 0 ]
}

# agent_sanitized: true when the running agent is a sanitizer build (its RSS means nothing).
agent_sanitized() {
	grep -q 'libasan' /proc/"$AGENT_PID"/maps 2>/dev/null
}
