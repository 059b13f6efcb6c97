#!/bin/bash
# Sourced helpers that run a throwaway PostgreSQL cluster for tests: initdb into a temporary
# directory as the postgres OS user, a server listening only on a unix socket in that directory,
# one empty database. Nothing of the system's own clusters is used or touched.
#   pg_cluster_start        sets PG_DIR, PG_BIN and PG_URL; returns 77 when PostgreSQL is missing
#                           (the caller prints "SKIP: needs postgresql (scripts/deps.sh test)")
#   pg_cluster_createdb N   creates another empty database N, prints its URL
#   pg_cluster_stop         stops the server and removes the directory (safe to call twice)

pg_cluster_start() {
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ] ||
		! id postgres >/dev/null 2>&1; then
		return 77
	fi
	PG_DIR=$(mktemp -d /tmp/hutch-pg-XXXXXX) || return 1
	chown postgres: "$PG_DIR" && chmod 700 "$PG_DIR" || return 1
	if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-locale \
		-E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1; then
		cat "$PG_DIR/initdb.log" >&2
		return 1
	fi
	# a unix socket in our own directory only; fsync off: the tests kill hutchd, never this
	# server, and a lost machine loses the whole temporary cluster anyway
	if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
		-t 60 -o "-c listen_addresses='' -k $PG_DIR -p 5432 -c fsync=off" start \
		>/dev/null 2>&1; then
		cat "$PG_DIR/server.log" >&2
		return 1
	fi
	PG_URL=$(pg_cluster_createdb hutch) || return 1
}

pg_cluster_createdb() {
	runuser -u postgres -- "$PG_BIN/createdb" -h "$PG_DIR" -p 5432 -U postgres "$1" || return 1
	echo "postgresql://postgres@/$1?host=$PG_DIR&port=5432"
}

pg_cluster_stop() {
	[ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
	if [ -f "$PG_DIR/data/postmaster.pid" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop \
			>/dev/null 2>&1
	fi
	rm -rf "$PG_DIR"
	PG_DIR=
}
