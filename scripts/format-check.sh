#!/bin/sh
# Fails when a tracked C file differs from what clang-format makes of it.
cd "$(dirname "$0")/.." || exit 1
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if ! clang-format --style=file "$f" | cmp -s - "$f"; then
		echo "format: $f differs from clang-format (run: clang-format -i $f)"; bad=1
	fi
done
[ $bad = 0 ] && echo "format: ok"
exit $bad
