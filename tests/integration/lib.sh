# Shared helpers for integration tests (sourced by tests/integration/NNNN-*.sh).
# Each check prints "PASS: ..." or "FAIL: ..."; a script that cannot run prints "SKIP: <reason>".
# The runner (tests/run-integration.sh) counts these lines.

HUTCH_ROOT=${HUTCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HUTCH_BUILD=${HUTCH_BUILD:-$HUTCH_ROOT/build}
HUTCH_BIN=$HUTCH_BUILD/bin
T_FAILS=0

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
