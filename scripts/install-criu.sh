#!/bin/sh
# Installs CRIU 4.1 or newer into a private prefix (default /opt/hutch/criu) from Debian 13's
# packages, for hosts whose own CRIU is too old for their kernel (Debian 12's 3.17 fails on 6.13+).
#
# What it does, in order:
#   1. reads the Debian mirror from this machine's apt configuration (no host name is written
#      here), fetches <mirror>/dists/$SUITE/InRelease and checks its signature with gpgv against
#      the installed debian-archive-keyring;
#   2. fetches main/binary-$ARCH/Packages.xz and checks it against the sha256 in InRelease;
#   3. resolves criu's Depends recursively in that index (the whole closure, libc6 included, so
#      the prefix is self-contained and never mixes the host's libraries with Debian 13's);
#   4. downloads each .deb from the mirror's pool, checks its sha256 against the index, and
#      unpacks it with dpkg-deb -x into a staging copy of the prefix (no maintainer scripts run,
#      nothing outside the prefix changes);
#   5. writes PREFIX/bin/criu, a wrapper that starts criu through the prefix's own dynamic loader
#      (ld-linux-x86-64.so.2 --library-path ...), checks `criu --version` >= 4.1, swaps the
#      staging copy into place, and runs `criu check` (reported, not fatal).
#
# Idempotent: when PREFIX/bin/criu already reports >= $MIN_VERSION and PREFIX/.installed names
# the same package version, it only re-runs the checks. --force reinstalls.
# Which suite: Debian 13 (trixie) has 4.1.1, which cannot dump TCP/UDP sockets on Linux 6.16+
# (SO_PASSCRED became unix/netlink-only there; fixed in CRIU 4.2). On such kernels the script
# takes the first suite of "trixie forky" (forky = testing) whose criu is 4.2 or newer.
# Usage: scripts/install-criu.sh [--force] [--prefix DIR] [--suite SUITE]
set -eu

PREFIX=/opt/hutch/criu
SUITES="trixie forky" # first one whose criu is new enough wins (--suite forces one)
MIN_VERSION=4.1
FORCE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--force) FORCE=1 ;;
	--prefix) PREFIX=$2; shift ;;
	--suite) SUITES=$2; shift ;;
	-h|--help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "install-criu: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

say() { echo "install-criu: $*"; }
die() { echo "install-criu: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for tool in curl xz gpgv dpkg-deb sha256sum awk; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install curl xz-utils gpgv dpkg)"
done
ARCH=$(dpkg --print-architecture)
[ "$ARCH" = amd64 ] || die "only amd64 is supported (this is $ARCH)"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
kver=$(uname -r | awk -F. '{ printf "%d.%d", $1, $2 }')
if dpkg --compare-versions "$kver" ge 6.16; then MIN_VERSION=4.2; fi
[ -r "$KEYRING" ] || die "$KEYRING missing (apt-get install debian-archive-keyring)"

# The main Debian mirror of this machine: the first deb entry whose suite has no '-' (not
# -updates or -security), from deb822 .sources files first, then one-line .list files.
apt_mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'function flush() { if (types ~ /(^| )deb( |$)/ && uris != "") {
			n = split(suites, s, " "); for (i = 1; i <= n; i++) if (s[i] !~ /-/) {
			split(uris, u, " "); print u[1]; exit } } types = uris = suites = "" }
		/^[ \t]*$/ { flush(); next }
		/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
		/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
		END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) !~ /-/) { print $i; exit } }' "$f"
	done
}
MIRROR=$(apt_mirror | head -n 1)
MIRROR=${MIRROR%/}
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt"
say "mirror from apt configuration; kernel $kver needs criu >= $MIN_VERSION; prefix $PREFIX"

WORK=$(mktemp -d /tmp/install-criu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

fetch() { # url dest
	curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1" || die "download failed: $1"
}

# ---- 1-2: signed index ----
fetch_index() { # suite: leaves $WORK/index (one line per package) for it
	suite=$1
	say "fetching dists/$suite/InRelease and checking its signature"
	fetch "$MIRROR/dists/$suite/InRelease" "$WORK/InRelease"
	gpgv --keyring "$KEYRING" --output "$WORK/Release" "$WORK/InRelease" 2>"$WORK/gpgv.log" ||
		{ cat "$WORK/gpgv.log" >&2; die "InRelease signature check failed"; }
	want=$(awk -v f="main/binary-$ARCH/Packages.xz" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 }
		s && $3 == f { print $1; exit }' "$WORK/Release")
	[ -n "$want" ] || die "Release lists no sha256 for main/binary-$ARCH/Packages.xz"
	say "fetching $suite main/binary-$ARCH/Packages.xz"
	fetch "$MIRROR/dists/$suite/main/binary-$ARCH/Packages.xz" "$WORK/Packages.xz"
	echo "$want  $WORK/Packages.xz" | sha256sum -c --status || die "Packages.xz: sha256 mismatch"
	xz -dc "$WORK/Packages.xz" >"$WORK/Packages"
	# One line per package: name<TAB>version<TAB>filename<TAB>sha256<TAB>pre-depends, depends.
	awk 'BEGIN { FS = ": " } function out() { if (p != "") print p "\t" v "\t" f "\t" h "\t" d; p = v = f = h = d = "" }
		/^$/ { out(); next }
		/^Package: / { p = $2 } /^Version: / { v = $2 } /^Filename: / { f = $2 } /^SHA256: / { h = $2 }
		/^(Pre-)?Depends: / { sub(/^[A-Za-z-]+: /, ""); d = (d == "" ? $0 : d ", " $0) }
		END { out() }' "$WORK/Packages" >"$WORK/index"
}

SUITE=""
for s in $SUITES; do
	fetch_index "$s"
	v=$(awk -F '\t' '$1 == "criu" { print $2; exit }' "$WORK/index")
	say "criu in $s: ${v:-none}"
	if [ -n "$v" ] && dpkg --compare-versions "$v" ge "$MIN_VERSION"; then SUITE=$s; break; fi
done
[ -n "$SUITE" ] || die "no suite of '$SUITES' has criu >= $MIN_VERSION"

CRIU_VERSION=$(awk -F '\t' '$1 == "criu" { print $2; exit }' "$WORK/index")
say "using criu $CRIU_VERSION from $SUITE"

version_ok() { # prints the version of $1 --version and succeeds when >= MIN_VERSION
	v=$("$1" --version 2>/dev/null | awk '/^Version:/ { print $2; exit }')
	[ -n "$v" ] && dpkg --compare-versions "$v" ge "$MIN_VERSION" && echo "$v"
}

if [ "$FORCE" = 0 ] && [ -x "$PREFIX/bin/criu" ] &&
	[ "$(cat "$PREFIX/.installed" 2>/dev/null)" = "criu $CRIU_VERSION $SUITE" ] &&
	v=$(version_ok "$PREFIX/bin/criu"); then
	say "criu $v already installed in $PREFIX (use --force to reinstall)"
	INSTALLED=1
else
	INSTALLED=0
fi

# ---- 3: the dependency closure ----
resolve() {
	todo=criu
	: >"$WORK/closure"
	while [ -n "$todo" ]; do
		set -- $todo
		pkg=$1; shift; todo="$*"
		grep -qx "$pkg" "$WORK/closure" && continue
		line=$(awk -F '\t' -v p="$pkg" '$1 == p { print; exit }' "$WORK/index")
		[ -n "$line" ] || die "dependency $pkg not found in $SUITE"
		echo "$pkg" >>"$WORK/closure"
		deps=$(printf '%s\n' "$line" | cut -f5)
		# "a (>= 1) | b, c:any" -> first alternative that the index has, without version/arch.
		for alt in $(printf '%s\n' "$deps" | tr ',' '\n' | sed 's/([^)]*)//g; s/:[a-z0-9]*//g; s/ //g'); do
			[ -n "$alt" ] || continue
			pick=""
			for a in $(printf '%s\n' "$alt" | tr '|' ' '); do
				if awk -F '\t' -v p="$a" '$1 == p { f = 1 } END { exit !f }' "$WORK/index"; then
					pick=$a; break
				fi
			done
			[ -n "$pick" ] || die "no installable alternative for '$alt' (needed by $pkg)"
			todo="$todo $pick"
		done
	done
}

if [ "$INSTALLED" = 0 ]; then
	resolve
	say "packages: $(tr '\n' ' ' <"$WORK/closure")"
	STAGE="$PREFIX.new"
	rm -rf "$STAGE"
	mkdir -p "$STAGE/bin" "$WORK/debs"
	# ---- 4: download, verify, unpack ----
	while read -r pkg; do
		line=$(awk -F '\t' -v p="$pkg" '$1 == p { print; exit }' "$WORK/index")
		file=$(printf '%s\n' "$line" | cut -f3)
		sum=$(printf '%s\n' "$line" | cut -f4)
		deb="$WORK/debs/$(basename "$file")"
		say "fetching $(basename "$file")"
		fetch "$MIRROR/$file" "$deb"
		echo "$sum  $deb" | sha256sum -c --status || die "$(basename "$file"): sha256 mismatch"
		dpkg-deb -x "$deb" "$STAGE"
		printf '%s %s\n' "$pkg" "$(printf '%s\n' "$line" | cut -f2)" >>"$STAGE/.packages"
	done <"$WORK/closure"
	# ---- 5: the wrapper ----
	LDSO=""
	for cand in usr/lib64/ld-linux-x86-64.so.2 lib64/ld-linux-x86-64.so.2 \
		usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
		if [ -e "$STAGE/$cand" ]; then LDSO=$cand; break; fi
	done
	[ -n "$LDSO" ] || die "no ld-linux-x86-64.so.2 in the unpacked packages"
	CRIU_BIN=""
	for cand in usr/sbin/criu sbin/criu; do
		if [ -x "$STAGE/$cand" ]; then CRIU_BIN=$cand; break; fi
	done
	[ -n "$CRIU_BIN" ] || die "no criu binary in the unpacked criu package"
	# The wrapper names the final prefix; it is tested through a staging-prefix variable.
	cat >"$STAGE/bin/criu" <<EOF
#!/bin/sh
# CRIU $CRIU_VERSION from Debian $SUITE with its own libraries (written by install-criu.sh).
P=\${HUTCH_CRIU_PREFIX:-$PREFIX}
exec "\$P/$LDSO" --library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" "\$P/$CRIU_BIN" "\$@"
EOF
	chmod 0755 "$STAGE/bin/criu"
	v=$(HUTCH_CRIU_PREFIX="$STAGE" version_ok "$STAGE/bin/criu") ||
		die "the unpacked criu does not run or is older than $MIN_VERSION: $(HUTCH_CRIU_PREFIX="$STAGE" "$STAGE/bin/criu" --version 2>&1 | head -3)"
	echo "criu $CRIU_VERSION $SUITE" >"$STAGE/.installed"
	rm -rf "$PREFIX.old"
	[ -e "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
	mkdir -p "$(dirname "$PREFIX")"
	mv "$STAGE" "$PREFIX"
	rm -rf "$PREFIX.old"
	say "installed criu $v in $PREFIX ($(du -sh "$PREFIX" | cut -f1)); run it as $PREFIX/bin/criu"
fi

# ---- criu check: reported, not fatal (see docs/design/checkpoint.md for what matters) ----
say "criu check:"
if "$PREFIX/bin/criu" check >"$WORK/check.log" 2>&1; then
	say "  criu check: Looks good."
else
	sed 's/^/install-criu:   /' "$WORK/check.log"
	say "  criu check reported problems (above); hutch needs none of them unless a line says"
	say "  'Error' about namespaces, seccomp, ptrace, or /proc/PID/map_files"
fi
"$PREFIX/bin/criu" check --extra >"$WORK/extra.log" 2>&1 || true
"$PREFIX/bin/criu" check --experimental >"$WORK/exp.log" 2>&1 || true
say "  --extra: $(tail -n 1 "$WORK/extra.log")"
say "  --experimental: $(tail -n 1 "$WORK/exp.log")"
