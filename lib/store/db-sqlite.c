/* The SQLite backend of struct db: one connection, prepared statements cached by SQL pointer. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "base/sv.h"
#include "base/xalloc.h"
#include "store/db.h"

#define STMT_CACHE 96

struct db_sqlite {
	struct db base;
	sqlite3 *h;
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
	size_t ncache;
};

static int sq_error(struct db_sqlite *d, int rc, const char *what, struct hutch_error *err)
{
	int ext = sqlite3_extended_errcode(d->h);
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return hutch_error_set(err, -EEXIST, "%s: %s", what, sqlite3_errmsg(d->h));
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return hutch_error_set(err, -EAGAIN, "%s: database busy", what);
	return hutch_error_set(err, -EIO, "%s: %s", what, sqlite3_errmsg(d->h));
}

static sqlite3_stmt *sq_prepare(struct db_sqlite *d, const char *sql, struct hutch_error *err)
{
	/* cached by pointer (statements are string literals), checked by text so that a pointer
	 * reused after a free can never run another statement */
	for (size_t i = 0; i < d->ncache; i++)
		if (d->cache[i].sql == sql && strcmp(sqlite3_sql(d->cache[i].stmt), sql) == 0)
			return d->cache[i].stmt;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK) {
		sq_error(d, rc, "prepare", err);
		return NULL;
	}
	if (d->ncache < STMT_CACHE) {
		d->cache[d->ncache].sql = sql;
		d->cache[d->ncache].stmt = st;
		d->ncache++;
	}
	return st;
}

static void sq_done(struct db_sqlite *d, sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (size_t i = 0; i < d->ncache; i++)
		if (d->cache[i].stmt == st)
			return;
	sqlite3_finalize(st);
}

/* Binds p[N-1] to each "$N" parameter the statement uses (SQLite numbers named parameters in
 * order of first appearance, which need not be N). */
static int sq_bind(struct db_sqlite *d, sqlite3_stmt *st, const struct db_value *p, size_t n,
                   struct hutch_error *err)
{
	int count = sqlite3_bind_parameter_count(st);
	for (int idx = 1; idx <= count; idx++) {
		const char *name = sqlite3_bind_parameter_name(st, idx);
		uint64_t num;
		if (!name || name[0] != '$' || sv_to_u64(sv_from(name + 1), n, &num) < 0 ||
		    num == 0)
			return hutch_error_set(err, -EINVAL, "bind: parameter %s has no value",
			                       name ? name : "?");
		const struct db_value *v = &p[num - 1];
		int rc;
		switch (v->type) {
		case DB_INT:
			rc = sqlite3_bind_int64(st, idx, v->i);
			break;
		case DB_REAL:
			rc = sqlite3_bind_double(st, idx, v->d);
			break;
		case DB_TEXT:
			rc = sqlite3_bind_text(st, idx, v->s, -1, SQLITE_STATIC);
			break;
		default:
			rc = sqlite3_bind_null(st, idx);
			break;
		}
		if (rc != SQLITE_OK)
			return sq_error(d, rc, "bind", err);
	}
	return 0;
}

static int sq_exec(struct db *db, const char *sql, const struct db_value *p, size_t n,
                   int64_t *ret_changes, struct hutch_error *err)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	sqlite3_stmt *st = sq_prepare(d, sql, err);
	if (!st)
		return err ? err->code : -EIO;
	int r = sq_bind(d, st, p, n, err);
	if (r == 0) {
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE)
			r = sq_error(d, rc, "exec", err);
		else if (ret_changes)
			*ret_changes = sqlite3_changes64(d->h);
	}
	sq_done(d, st);
	return r;
}

static int sq_query(struct db *db, const char *sql, const struct db_value *p, size_t n,
                    db_row_fn fn, void *data, struct hutch_error *err)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	sqlite3_stmt *st = sq_prepare(d, sql, err);
	if (!st)
		return err ? err->code : -EIO;
	int r = sq_bind(d, st, p, n, err);
	struct db_row row = {d->base.ops, st};
	while (r == 0) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			r = sq_error(d, rc, "query", err);
			break;
		}
		r = fn(&row, data);
	}
	sq_done(d, st);
	return r;
}

static int sq_simple(struct db_sqlite *d, const char *sql, struct hutch_error *err)
{
	int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_error(d, rc, sql, err);
}

static int sq_script(struct db *db, const char *sql, struct hutch_error *err)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sq_error(d, rc, "script", err);
}

static int sq_relax(struct db *db, bool relaxed)
{
	/* WAL: NORMAL syncs at checkpoints only; FULL syncs the WAL at every commit */
	return sq_simple((struct db_sqlite *)db,
	                 relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL);
}

static int sq_begin(struct db *db, struct hutch_error *err)
{
	return sq_simple((struct db_sqlite *)db, "BEGIN IMMEDIATE", err);
}

static int sq_commit(struct db *db, struct hutch_error *err)
{
	return sq_simple((struct db_sqlite *)db, "COMMIT", err);
}

static void sq_rollback(struct db *db)
{
	sqlite3_exec(((struct db_sqlite *)db)->h, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_close(struct db *db)
{
	struct db_sqlite *d = (struct db_sqlite *)db;
	if (!d)
		return;
	for (size_t i = 0; i < d->ncache; i++)
		sqlite3_finalize(d->cache[i].stmt);
	sqlite3_close(d->h);
	free(d);
}

static int64_t sq_row_int(struct db_row *row, int col)
{
	return sqlite3_column_int64(row->impl, col);
}

static double sq_row_real(struct db_row *row, int col)
{
	return sqlite3_column_double(row->impl, col);
}

static const char *sq_row_text(struct db_row *row, int col)
{
	if (sqlite3_column_type(row->impl, col) == SQLITE_NULL)
		return NULL;
	return (const char *)sqlite3_column_text(row->impl, col);
}

static const struct db_ops sqlite_ops = {
        .exec = sq_exec,
        .query = sq_query,
        .script = sq_script,
        .relax = sq_relax,
        .begin = sq_begin,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .close = sq_close,
        .row_int = sq_row_int,
        .row_real = sq_row_real,
        .row_text = sq_row_text,
        .name = "sqlite",
};

int db_sqlite_open(const char *path, bool readonly, struct db **ret, struct hutch_error *err)
{
	struct db_sqlite *d = xcalloc(1, sizeof(*d));
	d->base.ops = &sqlite_ops;
	int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	int rc = sqlite3_open_v2(path, &d->h, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int r = hutch_error_set(err, -EIO, "opening %s: %s", path,
		                        d->h ? sqlite3_errmsg(d->h) : "out of memory");
		sq_close(&d->base);
		return r;
	}
	sqlite3_busy_timeout(d->h, 5000);
	const char *setup = readonly ? "PRAGMA query_only=1;"
	                             : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	                               " PRAGMA foreign_keys=ON;";
	int r = sq_simple(d, setup, err);
	if (r < 0) {
		sq_close(&d->base);
		return r;
	}
	*ret = &d->base;
	return 0;
}
