#!/bin/bash
# Prepares the shared image cache the integration tests link to: the busybox image (seconds)
# and the default Debian image (minutes, once; debootstrap from the host's apt mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${HUTCH_TEST_CACHE:-/var/cache/hutch-test}
mkdir -p "$cache"
export HUTCH_DATA_DIR=$cache HUTCH_RUN_DIR=/run/hutch-test-images
hutch=build/bin/hutch
if ! $hutch image ls 2>/dev/null | grep -q '^busybox '; then
	$hutch image build busybox
fi
if [ -z "${HUTCH_TEST_NO_DEFAULT_IMAGE:-}" ] && ! $hutch image ls 2>/dev/null | grep -q '^default '; then
	echo "building the default Debian image (debootstrap; takes a few minutes, once)"
	$hutch image build default
fi
$hutch image ls
