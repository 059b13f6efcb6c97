#!/bin/bash
# Installs what the tests need and runs every test: lint and format checks, unit tests (release
# and ASan+UBSan builds), integration tests against the real binaries (release and sanitizer
# builds), the official-SDK compatibility suite, and a short run of every fuzzer.
# Prints one closing line: "N passed, N failed".  Run as root on Debian 12.
#   HUTCH_TEST_QUICK=1   skip the sanitizer integration pass and the fuzzers
#   HUTCH_TEST_ONLY=...  run only the named integration scripts (space separated)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
export PATH="$root/build/bin:$PATH"
log() { printf '\n== %s\n' "$*"; }
total_pass=0; total_fail=0
count() { # count LABEL OUTPUT_FILE: add the closing "N passed, N failed" line of a suite
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$2" | tail -n 1)
	p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
	if [ -z "$line" ]; then p=0; f=1; echo "$1: no closing line (treated as one failure)"; fi
	total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
	echo "$1: $p passed, $f failed"
}
single() { # single LABEL CMD...: a check that passes or fails as a whole
	local out=/tmp/hutch-test-$$.out
	if "${@:2}" >"$out" 2>&1; then total_pass=$((total_pass + 1)); echo "$1: ok"
	else total_fail=$((total_fail + 1)); echo "$1: FAILED"; tail -n 40 "$out"; fi
	rm -f "$out"
}

log "dependencies"
scripts/deps.sh build runtime test || { echo "0 passed, 1 failed"; exit 1; }
scripts/install-criu.sh || echo "(CRIU could not be installed: memory snapshot tests will SKIP)"

log "build (release and ASan+UBSan)"
single "build release" make -j"$(nproc)" all units
single "build sanitizer" make -j"$(nproc)" SAN=1 all units
single "lint" scripts/lint.sh
single "format" scripts/format-check.sh

log "unit tests"
make check >/tmp/hutch-unit.out 2>&1; cat /tmp/hutch-unit.out | grep -E '^(unit|FAIL|SKIP)|passed'
count "unit (release)" /tmp/hutch-unit.out
make SAN=1 check >/tmp/hutch-unit-san.out 2>&1; grep -E '^(unit|FAIL|SKIP)' /tmp/hutch-unit-san.out
count "unit (sanitizer)" /tmp/hutch-unit-san.out
# the store's unit tests again on a throwaway PostgreSQL cluster (started and removed by it)
tests/unit/store-pg.sh build >/tmp/hutch-unit-pg.out 2>&1; grep -E '^(FAIL|SKIP)|passed' /tmp/hutch-unit-pg.out
count "unit store on PostgreSQL (release)" /tmp/hutch-unit-pg.out
tests/unit/store-pg.sh build-san >/tmp/hutch-unit-pg-san.out 2>&1; grep -E '^(FAIL|SKIP)|passed' /tmp/hutch-unit-pg-san.out
count "unit store on PostgreSQL (sanitizer)" /tmp/hutch-unit-pg-san.out

log "test images"
scripts/test-images.sh || echo "(image preparation failed; tests needing images will fail)"

log "integration tests (release build)"
only=${HUTCH_TEST_ONLY:-}
HUTCH_BUILD=$root/build tests/run-integration.sh $only >/tmp/hutch-int.out 2>&1
cat /tmp/hutch-int.out
count "integration (release)" /tmp/hutch-int.out

if [ -z "${HUTCH_TEST_QUICK:-}" ]; then
	log "integration tests (sanitizer build)"
	HUTCH_BUILD=$root/build-san ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1 tests/run-integration.sh $only >/tmp/hutch-int-san.out 2>&1
	cat /tmp/hutch-int-san.out
	count "integration (sanitizer)" /tmp/hutch-int-san.out
fi

if [ -x tests/compat/run.sh ]; then
	log "compatibility suite (official Tensorlake TypeScript SDK)"
	tests/compat/run.sh >/tmp/hutch-compat.out 2>&1
	cat /tmp/hutch-compat.out
	count "compat" /tmp/hutch-compat.out
fi

if [ -z "${HUTCH_TEST_QUICK:-}" ] && [ -x scripts/fuzz-smoke.sh ]; then
	log "fuzzers (short runs)"
	scripts/fuzz-smoke.sh >/tmp/hutch-fuzz.out 2>&1
	cat /tmp/hutch-fuzz.out
	count "fuzz" /tmp/hutch-fuzz.out
fi

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
