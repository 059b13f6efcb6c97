/* The PostgreSQL backend of struct db (libpq): one connection, typed parameters, SQLite DDL
 * types widened to PostgreSQL's in migration scripts, and a change notification after every
 * write so that other nodes sharing the database can wake their waiters (db_pg_watch_*). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/db.h"

#define PG_MAX_PARAMS 64
#define PG_STMT_CACHE 96
#define PG_CHANNEL    "hutch_store"
/* pg_advisory_xact_lock(PG_LOCK_CLASS, 1): held by every write transaction (and so by
 * migrations), like SQLite's BEGIN IMMEDIATE serializes writers */
#define PG_LOCK_CLASS 0x68757463

/* type OIDs from pg_type.h (stable since PostgreSQL 7) */
#define OID_INT8   20
#define OID_TEXT   25
#define OID_FLOAT8 701

/* A statement prepared on the connection as "hutch_<index>", for one SQL text (a literal, found
 * by pointer and checked by text) and one list of parameter types. */
struct pg_stmt {
	const char *sql;
	char *text;
	int n;
	Oid types[PG_MAX_PARAMS];
};

struct db_pg {
	struct db base;
	PGconn *c;
	const char *setup; /* session settings, applied again after a reconnect */
	struct pg_stmt cache[PG_STMT_CACHE];
	size_t ncache;
	bool in_tx;
	bool dirty; /* the open transaction changed rows: notify at commit */
};

struct pg_row {
	PGresult *res;
	int row;
};

struct db_pg_watch {
	PGconn *c;
};

void db_pg_redact(const char *url, struct buf *ret)
{
	/* postgres://user:secret@host/db?password=secret: both secrets become "***" */
	const char *p = strstr(url, "://");
	const char *auth = p ? p + 3 : url;
	const char *at = strchr(auth, '@');
	const char *slash = strchr(auth, '/');
	const char *colon = strchr(auth, ':');
	if (at && (!slash || at < slash) && colon && colon < at) {
		buf_add(ret, url, (size_t)(colon + 1 - url));
		buf_adds(ret, "***");
		p = at;
	} else {
		p = url;
	}
	const char *pw;
	while ((pw = strstr(p, "password=")) != NULL) {
		buf_add(ret, p, (size_t)(pw + 9 - p));
		buf_adds(ret, "***");
		p = pw + 9;
		while (*p && *p != '&' && *p != ' ')
			p++;
	}
	buf_adds(ret, p);
}

/* Maps a failed result (or a failed send when res is NULL) to an error: 23505 (unique
 * violation) is -EEXIST, serialization failures and deadlocks -EAGAIN, the rest -EIO. */
static int pg_error(struct db_pg *d, PGresult *res, const char *what, struct hutch_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(d->c);
	struct buf m = BUF_INIT;
	buf_adds(&m, msg && msg[0] ? msg : "connection lost");
	while (m.len && (m.data[m.len - 1] == '\n' || m.data[m.len - 1] == ' '))
		buf_truncate(&m, m.len - 1);
	int code = -EIO;
	if (state && strcmp(state, "23505") == 0)
		code = -EEXIST;
	else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
		code = -EAGAIN;
	int r = hutch_error_set(err, code, "%s: %s", what, buf_cstr(&m));
	buf_release(&m);
	return r;
}

static int pg_simple(struct db_pg *d, const char *sql, struct hutch_error *err)
{
	PGresult *res = PQexec(d->c, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int r = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		r = pg_error(d, res, sql, err);
	PQclear(res);
	return r;
}

static void pg_cache_clear(struct db_pg *d)
{
	for (size_t i = 0; i < d->ncache; i++)
		free(d->cache[i].text);
	d->ncache = 0;
}

/* The index of the statement prepared for sql with these parameter types, preparing it if there
 * is room; -1 to run it unprepared (cache full, or the prepare failed: the run then reports
 * why). Parsing and analysis then happen once per connection, as with SQLite's cache. */
static int pg_prepared(struct db_pg *d, const char *sql, const Oid *types, int n)
{
	for (size_t i = 0; i < d->ncache; i++) {
		struct pg_stmt *st = &d->cache[i];
		if (st->sql == sql && st->n == n && strcmp(st->text, sql) == 0 &&
		    memcmp(st->types, types, sizeof(Oid) * (size_t)n) == 0)
			return (int)i;
	}
	if (d->ncache >= PG_STMT_CACHE)
		return -1;
	char name[24];
	snprintf(name, sizeof(name), "hutch_%zu", d->ncache);
	PGresult *res = PQprepare(d->c, name, sql, n, types);
	bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		return -1;
	struct pg_stmt *st = &d->cache[d->ncache];
	st->sql = sql;
	st->text = xstrdup(sql);
	st->n = n;
	memcpy(st->types, types, sizeof(Oid) * (size_t)n);
	return (int)d->ncache++;
}

/* Runs sql with p as typed text parameters; returns the result (caller clears) or NULL with err
 * set. */
static PGresult *pg_run(struct db_pg *d, const char *sql, const struct db_value *p, size_t n,
                        ExecStatusType want, const char *what, struct hutch_error *err)
{
	const char *values[PG_MAX_PARAMS];
	Oid types[PG_MAX_PARAMS];
	char nums[PG_MAX_PARAMS][32];
	/* a restarted server or a dropped connection: reconnect between transactions (inside
	 * one the transaction is gone and must fail) */
	if (PQstatus(d->c) == CONNECTION_BAD && !d->in_tx) {
		PQreset(d->c);
		pg_cache_clear(d); /* prepared statements belong to the old session */
		if (PQstatus(d->c) == CONNECTION_OK)
			pg_simple(d, d->setup, NULL);
	}
	if (n > PG_MAX_PARAMS) {
		hutch_error_set(err, -EINVAL, "%s: %zu parameters (at most %d)", what, n,
		                PG_MAX_PARAMS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		switch (p[i].type) {
		case DB_INT:
			snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p[i].i);
			values[i] = nums[i];
			types[i] = OID_INT8;
			break;
		case DB_REAL:
			snprintf(nums[i], sizeof(nums[i]), "%.17g", p[i].d);
			values[i] = nums[i];
			types[i] = OID_FLOAT8;
			break;
		case DB_TEXT:
			values[i] = p[i].s;
			types[i] = OID_TEXT;
			break;
		default:
			/* typed text: "$3 IS NULL OR status = $3" leaves PostgreSQL nothing to
			 * infer from at the first use, and every NULL the store binds is an
			 * absent string (DB_T(NULL)) */
			values[i] = NULL;
			types[i] = OID_TEXT;
			break;
		}
	}
	int idx = pg_prepared(d, sql, types, (int)n);
	PGresult *res;
	if (idx >= 0) {
		char name[24];
		snprintf(name, sizeof(name), "hutch_%d", idx);
		res = PQexecPrepared(d->c, name, (int)n, values, NULL, NULL, 0);
	} else {
		res = PQexecParams(d->c, sql, (int)n, types, values, NULL, NULL, 0);
	}
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	/* exec may run a SELECT too (its rows are dropped), as with SQLite */
	if (st != want && !(want == PGRES_COMMAND_OK && st == PGRES_TUPLES_OK)) {
		pg_error(d, res, what, err);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Tells the other nodes that the store changed; outside a transaction right away, inside one
 * at its commit. A failure is not the writer's: listeners also recheck after reconnecting. */
static void pg_changed(struct db_pg *d)
{
	if (d->in_tx)
		d->dirty = true;
	else
		pg_simple(d, "NOTIFY " PG_CHANNEL, NULL);
}

static int pg_exec(struct db *db, const char *sql, const struct db_value *p, size_t n,
                   int64_t *ret_changes, struct hutch_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	PGresult *res = pg_run(d, sql, p, n, PGRES_COMMAND_OK, "exec", err);
	if (!res)
		return err ? err->code : -EIO;
	int64_t changes = strncmp(PQcmdStatus(res), "SELECT", 6) == 0
	                          ? 0
	                          : strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	if (changes > 0)
		pg_changed(d);
	if (ret_changes)
		*ret_changes = changes;
	return 0;
}

static int pg_query(struct db *db, const char *sql, const struct db_value *p, size_t n,
                    db_row_fn fn, void *data, struct hutch_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	PGresult *res = pg_run(d, sql, p, n, PGRES_TUPLES_OK, "query", err);
	if (!res)
		return err ? err->code : -EIO;
	struct pg_row pr = {res, 0};
	struct db_row row = {d->base.ops, &pr};
	int r = 0;
	int nrows = PQntuples(res);
	for (pr.row = 0; pr.row < nrows && r == 0; pr.row++)
		r = fn(&row, data);
	PQclear(res);
	return r;
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* SQLite's INTEGER is 64-bit and its REAL a double; PostgreSQL's are 32-bit and single. The
 * migrations are written for SQLite and never edited, so their DDL is widened word by word
 * (outside quoted strings) before it runs here. */
void db_pg_translate(const char *sql, struct buf *ret)
{
	static const struct {
		const char *from, *to;
	} map[] = {{"INTEGER", "BIGINT"}, {"REAL", "DOUBLE PRECISION"}};
	const char *p = sql;
	while (*p) {
		if (*p == '\'' || *p == '"') {
			const char *q = strchr(p + 1, *p);
			size_t len = q ? (size_t)(q + 1 - p) : strlen(p);
			buf_add(ret, p, len);
			p += len;
			continue;
		}
		if (!word_char(*p)) {
			buf_addch(ret, *p++);
			continue;
		}
		const char *w = p;
		while (word_char(*p))
			p++;
		size_t len = (size_t)(p - w);
		const char *to = NULL;
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strlen(map[i].from) == len && strncasecmp(w, map[i].from, len) == 0)
				to = map[i].to;
		if (to)
			buf_adds(ret, to);
		else
			buf_add(ret, w, len);
	}
}

static int pg_script(struct db *db, const char *sql, struct hutch_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	struct buf t = BUF_INIT;
	db_pg_translate(sql, &t);
	PGresult *res = PQexec(d->c, buf_cstr(&t));
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int r = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		r = pg_error(d, res, "script", err);
	else
		pg_changed(d);
	PQclear(res);
	buf_release(&t);
	return r;
}

static int pg_relax(struct db *db, bool relaxed)
{
	/* off: a commit returns before its WAL reaches the disk; a crash of the server (not of
	 * hutchd) may lose the last ones, never corrupts */
	return pg_simple((struct db_pg *)db,
	                 relaxed ? "SET synchronous_commit = off" : "SET synchronous_commit = on",
	                 NULL);
}

static int pg_begin(struct db *db, struct hutch_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	char sql[96];
	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d, 1)", PG_LOCK_CLASS);
	int r = pg_simple(d, sql, err);
	if (r < 0) {
		pg_simple(d, "ROLLBACK", NULL);
		return r;
	}
	d->in_tx = true;
	d->dirty = false;
	return 0;
}

static int pg_commit(struct db *db, struct hutch_error *err)
{
	struct db_pg *d = (struct db_pg *)db;
	PGresult *res = PQexec(d->c, d->dirty ? "NOTIFY " PG_CHANNEL "; COMMIT" : "COMMIT");
	int r = 0;
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_error(d, res, "commit", err);
	else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) /* "ROLLBACK": the transaction failed */
		r = hutch_error_set(err, -EIO, "commit: the transaction was rolled back");
	PQclear(res);
	if (PQtransactionStatus(d->c) != PQTRANS_IDLE)
		pg_simple(d, "ROLLBACK", NULL);
	d->in_tx = false;
	d->dirty = false;
	return r;
}

static void pg_rollback(struct db *db)
{
	struct db_pg *d = (struct db_pg *)db;
	pg_simple(d, "ROLLBACK", NULL);
	d->in_tx = false;
	d->dirty = false;
}

static void pg_close(struct db *db)
{
	struct db_pg *d = (struct db_pg *)db;
	if (!d)
		return;
	pg_cache_clear(d);
	PQfinish(d->c);
	free(d);
}

static const char *pg_value(struct db_row *row, int col)
{
	struct pg_row *pr = row->impl;
	if (col >= PQnfields(pr->res) || PQgetisnull(pr->res, pr->row, col))
		return NULL;
	return PQgetvalue(pr->res, pr->row, col);
}

static int64_t pg_row_int(struct db_row *row, int col)
{
	const char *v = pg_value(row, col);
	if (!v)
		return 0;
	if (v[0] == 't' || v[0] == 'f') /* a boolean expression */
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static double pg_row_real(struct db_row *row, int col)
{
	const char *v = pg_value(row, col);
	return v ? strtod(v, NULL) : 0.0;
}

static const char *pg_row_text(struct db_row *row, int col)
{
	return pg_value(row, col);
}

static const struct db_ops pg_ops = {
        .exec = pg_exec,
        .query = pg_query,
        .script = pg_script,
        .relax = pg_relax,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .close = pg_close,
        .row_int = pg_row_int,
        .row_real = pg_row_real,
        .row_text = pg_row_text,
        .name = "postgres",
};

/* Connects to url; the message of a failure names the store without its password. */
static PGconn *pg_connect(const char *url, struct hutch_error *err)
{
	PGconn *c = PQconnectdb(url);
	if (c && PQstatus(c) == CONNECTION_OK)
		return c;
	struct buf name = BUF_INIT, m = BUF_INIT;
	db_pg_redact(url, &name);
	buf_adds(&m, c ? PQerrorMessage(c) : "out of memory");
	while (m.len && (m.data[m.len - 1] == '\n' || m.data[m.len - 1] == ' '))
		buf_truncate(&m, m.len - 1);
	hutch_error_set(err, -EIO, "cannot connect to the PostgreSQL store %s: %s", buf_cstr(&name),
	                buf_cstr(&m));
	buf_release(&name);
	buf_release(&m);
	PQfinish(c);
	return NULL;
}

int db_pg_open(const char *url, bool readonly, struct db **ret, struct hutch_error *err)
{
	PGconn *c = pg_connect(url, err);
	if (!c)
		return err ? err->code : -EIO;
	struct db_pg *d = xcalloc(1, sizeof(*d));
	d->base.ops = &pg_ops;
	d->c = c;
	/* notices (e.g. "relation already exists, skipping") are not errors: keep them off
	 * stderr, the daemon logs what matters */
	d->setup = readonly ? "SET client_min_messages = warning;"
	                      " SET default_transaction_read_only = on"
	                    : "SET client_min_messages = warning; SET synchronous_commit = on";
	int r = pg_simple(d, d->setup, err);
	if (r < 0) {
		pg_close(&d->base);
		return r;
	}
	*ret = &d->base;
	return 0;
}

int db_pg_backend_pid(struct db *db)
{
	return strcmp(db->ops->name, "postgres") == 0 ? PQbackendPID(((struct db_pg *)db)->c) : 0;
}

int db_pg_watch_open(const char *url, struct db_pg_watch **ret, struct hutch_error *err)
{
	PGconn *c = pg_connect(url, err);
	if (!c)
		return err ? err->code : -EIO;
	PGresult *res = PQexec(c, "LISTEN " PG_CHANNEL);
	if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
		int r = hutch_error_set(err, -EIO, "LISTEN: %s", PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
		return r;
	}
	PQclear(res);
	if (PQsetnonblocking(c, 1) != 0) {
		PQfinish(c);
		return hutch_error_set(err, -EIO, "LISTEN: cannot make the connection nonblocking");
	}
	struct db_pg_watch *w = xcalloc(1, sizeof(*w));
	w->c = c;
	*ret = w;
	return 0;
}

int db_pg_watch_fd(struct db_pg_watch *w)
{
	return PQsocket(w->c);
}

int db_pg_watch_drain(struct db_pg_watch *w, int ignore_pid)
{
	if (!PQconsumeInput(w->c) || PQstatus(w->c) != CONNECTION_OK)
		return -EIO;
	int n = 0;
	PGnotify *note;
	while ((note = PQnotifies(w->c)) != NULL) {
		if (note->be_pid != ignore_pid)
			n++;
		PQfreemem(note);
	}
	return n;
}

void db_pg_watch_free(struct db_pg_watch *w)
{
	if (!w)
		return;
	PQfinish(w->c);
	free(w);
}
