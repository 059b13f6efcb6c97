#!/bin/bash
# Installs the Debian packages a hutch task needs: `scripts/deps.sh build runtime test ...`.
# Groups: build (compile), runtime (run sandboxes), test (tests and benchmarks).
set -euo pipefail
declare -A groups=(
	[build]="build-essential pkg-config libuv1-dev libhttp-parser-dev libjansson-dev libsqlite3-dev
		libssl-dev libseccomp-dev libarchive-dev libzstd-dev libmnl-dev libnftnl-dev
		libnftables-dev libcurl4-openssl-dev libpq-dev"
	[runtime]="busybox-static debootstrap e2fsprogs ca-certificates iproute2 util-linux"
	[test]="curl jq python3 sqlite3 clang libclang-rt-14-dev clang-format wrk nginx-light socat
		procps psmisc hyperfine npm postgresql"
)
pkgs=""
for g in "$@"; do
	[ -n "${groups[$g]:-}" ] || { echo "deps.sh: unknown group $g" >&2; exit 2; }
	pkgs="$pkgs ${groups[$g]}"
done
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
stamp=/var/lib/apt/periodic/hutch-apt-updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
	apt-get update -qq
	mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
# npm from Debian may conflict with a preinstalled Node.js; keep the existing one if present
if command -v npm >/dev/null 2>&1; then missing=${missing// npm/}; fi
[ -z "${missing// /}" ] || apt-get install -y -qq --no-install-recommends $missing >/dev/null
