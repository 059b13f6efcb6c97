#!/bin/sh
# Source checks that the compiler cannot do: banned unbounded string functions (git's banned.h
# list), and fds opened without close-on-exec.
cd "$(dirname "$0")/.." || exit 1
rc=0
files=$(git ls-files 'lib/*.c' 'lib/*.h' 'src/*.c' 'src/*.h' 2>/dev/null)
[ -n "$files" ] || files=$(find lib src -name '*.[ch]')
if grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' $files; then
	echo "lint: banned function used (use buf_*, snprintf or the sv_* helpers)"; rc=1
fi
if grep -nE '[^a-z_](open|openat)\([^;]*O_(RDONLY|WRONLY|RDWR)' $files | grep -v O_CLOEXEC | grep -v 'lint: allow'; then
	echo "lint: open without O_CLOEXEC"; rc=1
fi
[ $rc = 0 ] && echo "lint: ok"
exit $rc
