# Shared helpers for integration tests (sourced by tests/integration/NNNN-*.sh).
# Each check prints "PASS: ..." or "FAIL: ..."; a script that cannot run prints "SKIP: <reason>".
# The runner (tests/run-integration.sh) counts these lines.

HUTCH_ROOT=${HUTCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HUTCH_BUILD=${HUTCH_BUILD:-$HUTCH_ROOT/build}
HUTCH_BIN=$HUTCH_BUILD/bin
# the agent runs inside sandboxes, which have no shared libraries: always the static build
HUTCH_AGENT=${HUTCH_AGENT:-$HUTCH_ROOT/build/bin/hutch-agent}
T_FAILS=0
T_NETFLAGS=()
# T_IN_NETNS: a command prefix that runs hutchd in a test's network namespace (set with
# hutchd_netns NS before hutchd_start); empty = the host's.
T_IN_NETNS=(env)
T_CGROUP=hutch

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; T_FAILS=$((T_FAILS + 1)); }
skip() { echo "SKIP: $*"; exit 0; }

# check DESC CMD...: passes when CMD exits 0.
check() {
	local desc=$1; shift
	if "$@" >/tmp/hutch-check.$$ 2>&1; then pass "$desc"; else
		fail "$desc"; sed 's/^/    | /' /tmp/hutch-check.$$ | head -n 20; fi
	rm -f /tmp/hutch-check.$$
}

# expect_eq DESC ACTUAL EXPECTED
expect_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1 (got '$2', want '$3')"; fi
}

# expect_match DESC ACTUAL REGEX
expect_match() {
	if [[ "$2" =~ $3 ]]; then pass "$1"; else fail "$1 (got '$2', want /$3/)"; fi
}

need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || skip "needs $1"; }

# Picks a free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for CMD...: retries CMD for up to 10 s.
wait_for() {
	local i
	for i in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}

t_done() { exit $((T_FAILS > 0)); }

# ---- a real hutchd per test script ----
# Images come from a shared cache (scripts/test-images.sh) so no test rebuilds them.
HUTCH_TEST_CACHE=${HUTCH_TEST_CACHE:-/var/cache/hutch-test}

# net_slot: a top cgroup (T_CGROUP) and a sandbox network of its own for this test's server
# (10.89.N.0/24, bridge hitN, table hutch_itN, veth prefix tXX), so that servers of tests
# running side by side never touch each other's sandboxes, veths and rules. The slot is held
# by a lock directory until cleanup.
net_slot() {
	local n i
	for i in $(seq 1 500); do
		n=$(( (RANDOM + i) % 250 + 1 ))
		if mkdir "/run/hutch-it-netslot.$n" 2>/dev/null; then
			echo "$T_DATA" > "/run/hutch-it-netslot.$n/owner"
			T_NETSLOT=$n
			T_CGROUP=hutch-it$n
			local p
			p=$(printf 't%02x' "$n")
			T_VETH_PREFIX=$p
			# names resolve nowhere by default (127.0.0.1:1 refuses at once): no test
			# query ever leaves the machine; a test with its own DNS passes
			# --dns-upstreams again (the last one wins)
			T_NETFLAGS=(--cgroup-name "hutch-it$n" --network-cidr "10.89.$n.0/24"
				--network-bridge "hit$n" --network-table "hutch_it$n"
				--network-veth-prefix "$p" --dns-upstreams 127.0.0.1:1)
			return 0
		fi
		# a slot whose owner is gone is free again
		if [ ! -d "$(cat "/run/hutch-it-netslot.$n/owner" 2>/dev/null)" ]; then
			rm -rf "/run/hutch-it-netslot.$n"
		fi
	done
	echo "no free network slot"; return 1
}

# hutchd_netns NS: the server (and curl, through a function of the same name) run in network
# namespace NS, so that sandbox traffic only ever meets the test's own namespaces.
hutchd_netns() {
	T_IN_NETNS=(nsenter "--net=/run/netns/$1")
	curl() { nsenter "--net=/run/netns/$T_NETNS_NAME" /usr/bin/curl "$@"; }
	T_NETNS_NAME=$1
}

# hutchd_start [hutchd flags...]: starts hutchd (all roles unless --roles is given) on free
# ports with a fresh data dir. Sets T_DATA, T_RUN, API, PROXY, KEY, AUTH, HUTCHD_PID.
hutchd_start() {
	T_DATA=$(mktemp -d /tmp/hutch-it-XXXXXX)
	T_RUN=/run/hutch-it-${T_DATA##*-}
	mkdir -p "$T_DATA/runtime"
	if [ -d "$HUTCH_TEST_CACHE/runtime/images" ]; then
		ln -s "$HUTCH_TEST_CACHE/runtime/images" "$T_DATA/runtime/images"
	fi
	local api_port proxy_port
	api_port=$(free_port); proxy_port=$(free_port)
	API=http://127.0.0.1:$api_port
	PROXY=http://127.0.0.1:$proxy_port
	net_slot
	"${T_IN_NETNS[@]}" "$HUTCH_BIN/hutchd" --data-dir "$T_DATA" --run-dir "$T_RUN" \
		--listen "127.0.0.1:$api_port" --proxy-listen "127.0.0.1:$proxy_port" \
		--agent-path "$HUTCH_AGENT" --node-id "it-${T_DATA##*-}" "${T_NETFLAGS[@]}" "$@" \
		>>"$T_DATA/hutchd.log" 2>&1 &
	HUTCHD_PID=$!
	trap hutchd_cleanup EXIT
	if ! wait_for curl -sf "$API/health"; then
		echo "hutchd did not start:"; tail -n 30 "$T_DATA/hutchd.log"; return 1
	fi
	wait_for test -s "$T_DATA/admin.key"
	KEY=$(cat "$T_DATA/admin.key")
	AUTH="Authorization: Bearer $KEY"
	export HUTCH_API_URL=$API HUTCH_API_KEY=$KEY HUTCH_DATA_DIR=$T_DATA
}

# hutchd_kill [SIGNAL]: stops the server processes (sandboxes keep running).
hutchd_kill() {
	local sig=${1:-TERM}
	pkill -"$sig" -f -- "--data-dir $T_DATA " 2>/dev/null
	for _ in $(seq 1 100); do pgrep -f -- "--data-dir $T_DATA " >/dev/null || return 0; sleep 0.05; done
	pkill -KILL -f -- "--data-dir $T_DATA " 2>/dev/null
	return 0
}

# hutchd_restart [hutchd flags...]: starts hutchd again on the same data dir and ports.
hutchd_restart() {
	"${T_IN_NETNS[@]}" "$HUTCH_BIN/hutchd" --data-dir "$T_DATA" --run-dir "$T_RUN" \
		--listen "${API#http://}" --proxy-listen "${PROXY#http://}" \
		--agent-path "$HUTCH_AGENT" --node-id "it-${T_DATA##*-}" "${T_NETFLAGS[@]}" "$@" \
		>>"$T_DATA/hutchd.log" 2>&1 &
	HUTCHD_PID=$!
	wait_for curl -sf "$API/health"
}

# Stops the server, destroys whatever sandboxes remain, and removes the data dir. The log is
# kept when a check failed (path printed).
hutchd_cleanup() {
	[ -n "${T_DATA:-}" ] || return 0
	hutchd_kill TERM
	if ! "${T_IN_NETNS[@]}" "$HUTCH_BIN/hutchd" --cleanup --data-dir "$T_DATA" --run-dir "$T_RUN" "${T_NETFLAGS[@]}" \
		>>"$T_DATA/cleanup.log" 2>&1; then
		echo "    | hutchd --cleanup failed: $(tail -n 2 "$T_DATA/cleanup.log" | tr '\n' ' ')"
	fi
	umount -l "$T_DATA/runtime" 2>/dev/null || true
	if [ "$T_FAILS" -gt 0 ]; then
		cp "$T_DATA/hutchd.log" "/tmp/hutchd-failed-$(basename "$0" .sh).log" 2>/dev/null &&
			echo "    | server log kept in /tmp/hutchd-failed-$(basename "$0" .sh).log"
	fi
	rm -rf "$T_DATA" "$T_RUN" 2>/dev/null || true
	[ -n "${T_NETSLOT:-}" ] && rm -rf "/run/hutch-it-netslot.$T_NETSLOT"
	T_DATA=
}

# api METHOD PATH [JSON]: calls the api with $AUTH; sets CODE and BODY (no output).
api() {
	CODE=$(curl -s -o /tmp/hutch-api.$$ -w '%{http_code}' -X "$1" -H "$AUTH" \
		-H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$API$2")
	BODY=$(cat /tmp/hutch-api.$$); rm -f /tmp/hutch-api.$$
}

# apij METHOD PATH [JSON]: like api but prints the body (for pipelines).
apij() { api "$@"; printf '%s\n' "$BODY"; }

# jq_get FILTER: reads JSON on stdin.
jq_get() { jq -r "$1"; }

# sb_run ID SHELL_CMD: runs a shell command in sandbox ID through the proxy (run SSE). Prints
# the output lines (decoded), sets RC to the exit code ("sig9" when killed by a signal, with
# "+oom" when OOM-killed, "none" when the stream ended without an exit event), SSE_RAW to the
# raw stream.
sb_run() {
	SSE_RAW=$(curl -s -m "${SB_RUN_TIMEOUT:-120}" -H "$AUTH" -H "Host: $1.local" \
		"$PROXY/api/v1/processes/run" \
		--data-binary "$(jq -nc --arg c "$2" '{command:"/bin/sh",args:["-c",$c]}')")
	local events
	events=$(sed -n 's/^data: //p' <<<"$SSE_RAW")
	RC=$(jq -r 'if has("exit_code") then .exit_code elif has("signal") then "sig\(.signal)\(if .oom_killed then "+oom" else "" end)" else empty end' <<<"$events" | tail -n 1)
	[ -n "$RC" ] || RC=none
	jq -r 'select(has("line")) | .line' <<<"$events"
}

# no_leftovers DESC: checks that no sandbox of this server left anything on the host: runtime
# state, mounts, loop devices, cgroups, run directories, processes.
no_leftovers() {
	local bad="" d
	d=$(ls "$T_DATA/runtime/sandboxes" 2>/dev/null | tr '\n' ' ')
	[ -z "$d" ] || bad="$bad state:[$d]"
	d=$(awk -v p="$T_DATA/runtime/sandboxes/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')
	[ -z "$d" ] || bad="$bad mounts:[$d]"
	d=$(losetup -a 2>/dev/null | grep -F "$T_DATA/runtime/sandboxes/" | tr '\n' ' ')
	[ -z "$d" ] || bad="$bad loops:[$d]"
	d=$(ls "$T_RUN" 2>/dev/null | tr '\n' ' ')
	[ -z "$d" ] || bad="$bad run:[$d]"
	for id in ${T_IDS:-}; do
		for c in /sys/fs/cgroup/*/"$T_CGROUP"/$id /sys/fs/cgroup/"$T_CGROUP"/$id; do
			[ -e "$c" ] && bad="$bad cgroup:[$c]"
		done
	done
	d=$(pgrep -f "^/run/hutch-agent" | while read -r p; do
		grep -q "$T_RUN" /proc/$p/mountinfo 2>/dev/null && echo "$p"; done | tr '\n' ' ')
	[ -z "$d" ] || bad="$bad processes:[$d]"
	# veths of sandboxes (retired ones are reaped within seconds)
	if [ -n "${T_VETH_PREFIX:-}" ]; then
		d=$("${T_IN_NETNS[@]}" ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep "^$T_VETH_PREFIX" | tr '\n' ' ')
		[ -z "$d" ] || bad="$bad veths:[$d]"
	fi
	if [ -z "$bad" ]; then pass "$1"; else fail "$1:$bad"; fi
}

# A throwaway PostgreSQL cluster for this test (tests/unit/store-pg-cluster.sh: PG_DIR, PG_BIN,
# PG_URL), stopped on exit (a test that sets its own EXIT trap calls pg_cluster_stop there); SKIP
# without PostgreSQL. psql runs statements on it.
pg_test_cluster() {
	. "$HUTCH_ROOT/tests/unit/store-pg-cluster.sh"
	pg_cluster_start
	case $? in
	0) ;;
	77) skip "needs postgresql (scripts/deps.sh test)" ;;
	*) pg_cluster_stop; fail "starting a throwaway PostgreSQL cluster"; t_done ;;
	esac
	trap pg_cluster_stop EXIT
	trap 'exit 1' INT TERM # a timeout's TERM goes through the EXIT trap: nothing is left running
	psql() { runuser -u postgres -- "$PG_BIN/psql" -h "$PG_DIR" -p 5432 -U postgres -XAtq "$@"; }
}
