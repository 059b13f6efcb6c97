#!/bin/bash
# Runs the store's unit tests (test_store) against a throwaway PostgreSQL cluster:
#   tests/unit/store-pg.sh [BUILD_DIR]
# Prints the test's closing "N passed, N failed" line (SKIP without PostgreSQL).
cd "$(dirname "$0")/../.." || exit 1
b=${1:-build}
. tests/unit/store-pg-cluster.sh
trap pg_cluster_stop EXIT
trap 'exit 1' INT TERM # and so through the EXIT trap: never leave a server running
pg_cluster_start
rc=$?
if [ $rc = 77 ]; then
	echo "SKIP: needs postgresql (scripts/deps.sh test)"
	echo "0 passed, 0 failed"
	exit 0
fi
[ $rc = 0 ] || { echo "store-pg: could not start PostgreSQL"; echo "0 passed, 1 failed"; exit 1; }
HUTCH_TEST_PG_URL=$PG_URL "$b/tests/unit/test_store"
