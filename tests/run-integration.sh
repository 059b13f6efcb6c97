#!/bin/bash
# Runs tests/integration/[0-9]*.sh in order (or the ones named) and prints one closing line
# "N passed, N failed". HUTCH_BUILD selects the build (build/ or build-san/).
cd "$(dirname "$0")/.." || exit 1
export HUTCH_ROOT=$PWD
export HUTCH_BUILD=${HUTCH_BUILD:-$PWD/build}
pass=0; fail=0; skipped=0
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(tests/integration/[0-9]*.sh)
for t in "${scripts[@]}"; do
	name=$(basename "$t" .sh)
	start=$(date +%s)
	out=$(timeout "${HUTCH_TEST_TIMEOUT:-600}" bash "$t" 2>&1); rc=$?
	p=$(grep -c '^PASS: ' <<<"$out"); f=$(grep -c '^FAIL: ' <<<"$out")
	s=$(grep -c '^SKIP: ' <<<"$out")
	if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; out="$out
FAIL: $name exited with status $rc"; fi
	pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
	if [ "$f" != 0 ]; then printf '%s\n' "$out" | sed "s|^|$name: |"; fi
	grep '^SKIP: ' <<<"$out" | sed "s|^|$name: |"
	echo "integration $name: $p passed, $f failed ($(( $(date +%s) - start ))s)"
done
[ $skipped = 0 ] || echo "($skipped skipped)"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
