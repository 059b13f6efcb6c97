#!/bin/bash
# Builds every libFuzzer target and runs each for a short while (HUTCH_FUZZ_SECONDS, default
# 30) from its seed corpus in tests/fuzz/corpus/<target>/. A crash, leak or timeout fails.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${HUTCH_FUZZ_SECONDS:-30}
pass=0; fail=0
if ! make -j"$(nproc)" fuzz >/tmp/hutch-fuzz-build.log 2>&1; then
	tail -n 30 /tmp/hutch-fuzz-build.log; echo "0 passed, 1 failed"; exit 1
fi
for f in build-fuzz/fuzz/*; do
	name=$(basename "$f")
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	if (cd "$work" && timeout $((secs + 60)) "$OLDPWD/$f" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 . >"$work.log" 2>&1); then
		echo "fuzz $name: ok ($(grep -o 'Done [0-9]* runs' "$work.log"))"; pass=$((pass + 1))
	else
		echo "fuzz $name: FAILED"; tail -n 40 "$work.log"; fail=$((fail + 1))
	fi
	rm -rf "$work" "$work.log"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
