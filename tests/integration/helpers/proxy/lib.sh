# Shared setup for the proxy's integration tests (tests/integration/3*-proxy-*.sh), sourced
# after tests/integration/lib.sh. Everything listens on 127.0.0.1 or unix sockets in a temp dir;
# every process started here is stopped by pid on exit.
#
#   proxy_env_init             temp dir, helpers built, store created, fake upstream started
#   proxy_start [hutchd flags] starts the proxy role (build/bin/hutchd --roles proxy, or the
#                              proxyd helper when hutchd is not built) on $PPORT
#   proxy_stop                 SIGTERM; fails the test if a sanitizer reported anything
#   sbx ID NS NAME STATUS [PORTS] [ALLOW] [EXECUTOR]   inserts a sandbox row
#   code ARGS...               curl through the proxy, prints the HTTP status only
#   body ARGS...               curl through the proxy, prints the body only

need_cmd python3
need_cmd curl

PH=$HUTCH_ROOT/tests/integration/helpers/proxy
T=$(mktemp -d /tmp/hutch-proxy-test.XXXXXX)
PIDS=()
PROXY_PID=

proxy_cleanup() {
	local p
	for p in "${PIDS[@]}" $PROXY_PID; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}" $PROXY_PID; do wait "$p" 2>/dev/null; done
	[ -n "$KEEP_TMP" ] || rm -rf "$T"
}
trap proxy_cleanup EXIT

# sandbox_id N: a 21-character id in the store's shape
sandbox_id() { printf 'p%020d' "$1"; }

proxy_env_init() {
	HELPERS=$("$PH/build.sh") || { fail "building the proxy helpers"; t_done; }
	ST=$HELPERS/store_tool
	DB=$T/hutch.db
	mkdir -p "$T/data"
	NODE_TOKEN=nodetoken$RANDOM$RANDOM
	printf '%s\n' "$NODE_TOKEN" >"$T/data/node.token"
	"$ST" "$DB" init || { fail "creating the store"; t_done; }
	KEY_A=$("$ST" "$DB" key team-a)
	KEY_B=$("$ST" "$DB" key team-b)
	AGENT_SOCK=$T/agent.sock
	UPORT=$(free_port)
	UPORT2=$(free_port)
	PPORT=$(free_port)
	APORT=$(free_port)
	python3 "$PH/fake.py" upstream --unix "$AGENT_SOCK" --tcp "$UPORT" --tcp "$UPORT2" \
		--log "$T/upstream.log" 2>>"$T/upstream.err" &
	PIDS+=($!)
	wait_for grep -q READY "$T/upstream.log" || { fail "fake upstream did not start"; t_done; }
}

fake_api_start() {
	python3 "$PH/fake.py" api --port "$APORT" --token "$NODE_TOKEN" --log "$T/api.log" \
		--store-tool "$ST" --db "$DB" "$@" 2>>"$T/api.err" &
	PIDS+=($!)
	FAKE_API_PID=$!
	wait_for grep -q READY "$T/api.log" || { fail "fake api did not start"; t_done; }
}

proxy_start() {
	local bin=("$HUTCH_BIN/hutchd" --roles proxy)
	[ -x "$HUTCH_BIN/hutchd" ] || bin=("$HELPERS/proxyd")
	: >"$T/proxy.log"
	"${bin[@]}" --data-dir "$T/data" --store "$DB" --proxy-listen "127.0.0.1:$PPORT" \
		--proxy-domain sandbox.test --api-url "127.0.0.1:$APORT" --node-id node1 \
		--log-level debug "$@" >>"$T/proxy.log" 2>&1 &
	PROXY_PID=$!
	wait_for curl -s -o /dev/null "http://127.0.0.1:$PPORT/" ||
		{ fail "proxy did not start"; cat "$T/proxy.log"; t_done; }
}

proxy_stop() {
	[ -n "$PROXY_PID" ] || return 0
	kill -TERM "$PROXY_PID"
	local i
	for i in $(seq 1 100); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$PROXY_PID" 2>/dev/null; then
		fail "proxy did not stop within 10 s"
		kill -KILL "$PROXY_PID"
	fi
	wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=
	if grep -qE 'Sanitizer|runtime error:' "$T/proxy.log"; then
		fail "sanitizer report in the proxy log"
		grep -A30 -E 'Sanitizer|runtime error:' "$T/proxy.log" | head -60
	else
		pass "proxy stopped cleanly (no sanitizer reports)"
	fi
}

sbx() {
	"$ST" "$DB" put "$1" "$2" "$3" "$4" "$AGENT_SOCK" 127.0.0.1 "${5:--}" "${6:-0}" "${7:-node1}"
}

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
body() { curl -s --max-time 20 "$@"; }
P=http://127.0.0.1

# The pid of the process running the proxy role (hutchd forks it as a child).
proxy_worker_pid() {
	local c
	c=$(pgrep -P "$PROXY_PID" 2>/dev/null | head -n 1)
	echo "${c:-$PROXY_PID}"
}

# proc_kb PID FIELD: VmRSS / VmHWM in KiB
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

is_san_build() { [[ "$(basename "$HUTCH_BUILD")" == *san* ]]; }
