/* A minimal SQL interface the store is written against, so that SQLite (default) and
 * PostgreSQL backends share all domain code. SQL uses $1, $2, ... placeholders, which both
 * engines accept. Statements given as string literals may be cached by pointer. */
#ifndef HUTCH_DB_H
#define HUTCH_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct buf;
struct db;
struct db_ops;

/* A result row as passed to db_row_fn; read it with db_row_int/real/text. */
struct db_row {
	const struct db_ops *ops;
	void *impl;
};

enum db_type { DB_NULL, DB_INT, DB_REAL, DB_TEXT };

struct db_value {
	enum db_type type;
	int64_t i;
	double d;
	const char *s;
};

#define DB_I(x) ((struct db_value){.type = DB_INT, .i = (int64_t)(x)})
#define DB_R(x) ((struct db_value){.type = DB_REAL, .d = (double)(x)})
/* text; NULL becomes SQL NULL */
#define DB_T(x) ((struct db_value){.type = (x) ? DB_TEXT : DB_NULL, .s = (x)})
#define DB_NUL  ((struct db_value){.type = DB_NULL})

/* Called for each result row; a non-zero return stops the query and is returned by it. */
typedef int (*db_row_fn)(struct db_row *row, void *data);

struct db_ops {
	/* Runs a statement; ret_changes (may be NULL) receives the number of rows changed.
	 * A unique-constraint violation returns -EEXIST. */
	int (*exec)(struct db *db, const char *sql, const struct db_value *params, size_t n,
	            int64_t *ret_changes, struct hutch_error *err);
	int (*query)(struct db *db, const char *sql, const struct db_value *params, size_t n,
	             db_row_fn fn, void *data, struct hutch_error *err);
	/* Runs several statements separated by ';' (migrations); never cached. */
	int (*script)(struct db *db, const char *sql, struct hutch_error *err);
	/* Commits that follow are durable against a crash of the process but may be lost with
	 * the machine (relaxed true), or durable before they return (false, the default). */
	int (*relax)(struct db *db, bool relaxed);
	int (*begin)(struct db *db, struct hutch_error *err);
	int (*commit)(struct db *db, struct hutch_error *err);
	void (*rollback)(struct db *db);
	void (*close)(struct db *db);
	/* column accessors for rows passed to db_row_fn */
	int64_t (*row_int)(struct db_row *row, int col);
	double (*row_real)(struct db_row *row, int col);
	const char *(*row_text)(struct db_row *row, int col); /* NULL for SQL NULL */
	const char *name;
};

struct db {
	const struct db_ops *ops;
};

/* Opens the SQLite database at path (WAL, synchronous=FULL, foreign keys, busy timeout).
 * readonly opens it for reading only (the proxy). */
int db_sqlite_open(const char *path, bool readonly, struct db **ret, struct hutch_error *err);

/* Opens the PostgreSQL database at url (a libpq URL, postgres:// or postgresql://): one
 * connection, synchronous_commit on. readonly makes every transaction read-only (the proxy).
 * A failure's message names the store without its password. */
int db_pg_open(const char *url, bool readonly, struct db **ret, struct hutch_error *err);
/* The server process id behind a PostgreSQL db (0 for other backends): notifications it sent
 * are this node's own. */
int db_pg_backend_pid(struct db *db);
/* Appends url with any password replaced by "***". */
void db_pg_redact(const char *url, struct buf *ret);
/* Appends SQLite DDL with its types widened for PostgreSQL (INTEGER -> BIGINT, REAL -> DOUBLE
 * PRECISION, whole words outside quotes). */
void db_pg_translate(const char *sql, struct buf *ret);

/* A second PostgreSQL connection that LISTENs for the notification every write sends (at its
 * commit), for nodes sharing one database. Nonblocking: poll its fd for reading, then drain. */
struct db_pg_watch;
int db_pg_watch_open(const char *url, struct db_pg_watch **ret, struct hutch_error *err);
int db_pg_watch_fd(struct db_pg_watch *w);
/* Reads what arrived: the number of notifications from other server processes than
 * ignore_pid (our own store connection's, db_pg_backend_pid; it changes after a reconnect),
 * 0 = none, or -EIO when the connection is lost (reopen it; changes may have been missed). */
int db_pg_watch_drain(struct db_pg_watch *w, int ignore_pid);
void db_pg_watch_free(struct db_pg_watch *w);

static inline int db_exec(struct db *db, const char *sql, const struct db_value *p, size_t n,
                          int64_t *ret_changes, struct hutch_error *err)
{
	return db->ops->exec(db, sql, p, n, ret_changes, err);
}

static inline int64_t db_row_int(struct db_row *row, int col)
{
	return row->ops->row_int(row, col);
}

static inline double db_row_real(struct db_row *row, int col)
{
	return row->ops->row_real(row, col);
}

/* NULL for SQL NULL; valid until the callback returns. */
static inline const char *db_row_text(struct db_row *row, int col)
{
	return row->ops->row_text(row, col);
}

static inline int db_query(struct db *db, const char *sql, const struct db_value *p, size_t n,
                           db_row_fn fn, void *data, struct hutch_error *err)
{
	return db->ops->query(db, sql, p, n, fn, data, err);
}

#endif
