#!/bin/sh
# Runs every unit test binary in $1/tests/unit and prints one closing "N passed, N failed" line.
b=${1:-build}
pass=0; fail=0
for t in "$b"/tests/unit/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1); rc=$?
	line=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [ -z "$p" ]; then p=0; f=1; fi
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$f" != 0 ]; then printf '%s\n' "$out" | sed "s|^|$(basename "$t"): |"; fi
	echo "unit $(basename "$t"): $p passed, $f failed"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
