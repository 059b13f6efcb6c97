/* Store lifecycle, versioned migrations, API keys, executors and pagination cursors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "store/store.h"

/* Each entry moves the schema one version up; never edit a released entry, add a new one. */
static const char *const migrations[] = {
        /* 1: keys, sandboxes, executors */
        "CREATE TABLE api_keys ("
        " id TEXT PRIMARY KEY, ns TEXT NOT NULL, name TEXT, hash TEXT NOT NULL,"
        " created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0,"
        " admin INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE sandboxes ("
        " id TEXT PRIMARY KEY, ns TEXT NOT NULL, name TEXT, image TEXT,"
        " cpus REAL NOT NULL, memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL,"
        " timeout_secs INTEGER NOT NULL, entrypoint TEXT, network TEXT,"
        " allow_unauth INTEGER NOT NULL DEFAULT 0, exposed_ports TEXT, snapshot_id TEXT,"
        " template_id TEXT, secret_names TEXT, pool_id TEXT,"
        " status TEXT NOT NULL, desired TEXT NOT NULL, pending_reason TEXT, outcome TEXT,"
        " termination_reason TEXT, error_details TEXT,"
        " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
        " terminated_at INTEGER NOT NULL DEFAULT 0, archived_at INTEGER NOT NULL DEFAULT 0,"
        " last_activity_at INTEGER NOT NULL DEFAULT 0, executor_id TEXT, agent_socket TEXT,"
        " ip TEXT, generation INTEGER NOT NULL DEFAULT 0);"
        "CREATE UNIQUE INDEX sandboxes_live_name ON sandboxes(ns, name)"
        " WHERE name IS NOT NULL AND status <> 'terminated';"
        "CREATE INDEX sandboxes_list ON sandboxes(ns, archived_at, created_at, id);"
        "CREATE INDEX sandboxes_executor ON sandboxes(executor_id, status);"
        "CREATE TABLE executors ("
        " id TEXT PRIMARY KEY, address TEXT, last_seen INTEGER NOT NULL,"
        " capacity INTEGER NOT NULL DEFAULT 0);",
        /* 2: live counts and executor lists without scanning a namespace */
        "CREATE INDEX sandboxes_live ON sandboxes(ns) WHERE status <> 'terminated';"
        "CREATE INDEX sandboxes_unfinished ON sandboxes(executor_id)"
        " WHERE status <> 'terminated' OR agent_socket IS NOT NULL;",
        /* 3: snapshots and warm pools */
        "CREATE TABLE snapshots ("
        " id TEXT PRIMARY KEY, ns TEXT NOT NULL, sandbox_id TEXT NOT NULL, snapshot_type TEXT NOT NULL,"
        " status TEXT NOT NULL, desired TEXT NOT NULL, error TEXT, base_image TEXT,"
        " cpus REAL NOT NULL, memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL,"
        " entrypoint TEXT, executor_id TEXT, digest TEXT, size_bytes INTEGER NOT NULL DEFAULT 0,"
        " rootfs_disk_bytes INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL);"
        "CREATE INDEX snapshots_ns ON snapshots(ns, created_at);"
        "CREATE INDEX snapshots_executor ON snapshots(executor_id, desired);"
        "CREATE TABLE pools ("
        " id TEXT PRIMARY KEY, ns TEXT NOT NULL, image TEXT, cpus REAL NOT NULL,"
        " memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL, timeout_secs INTEGER NOT NULL,"
        " entrypoint TEXT, max_containers INTEGER, warm_containers INTEGER, min_containers INTEGER,"
        " network TEXT, allow_unauth INTEGER NOT NULL DEFAULT 0, exposed_ports TEXT,"
        " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0);"
        "ALTER TABLE sandboxes ADD COLUMN pool_state TEXT;"
        "ALTER TABLE sandboxes ADD COLUMN pool_generation INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE sandboxes ADD COLUMN snapshot_op TEXT;"
        "CREATE INDEX sandboxes_pool ON sandboxes(pool_id, pool_state) WHERE pool_id IS NOT NULL;",
        /* 4: a network policy change waiting for its executor to apply it */
        "ALTER TABLE sandboxes ADD COLUMN network_pending TEXT;",
        /* 5: pool ids are unique per namespace, not across namespaces */
        "CREATE TABLE pools5 ("
        " id TEXT NOT NULL, ns TEXT NOT NULL, image TEXT, cpus REAL NOT NULL,"
        " memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL, timeout_secs INTEGER NOT NULL,"
        " entrypoint TEXT, max_containers INTEGER, warm_containers INTEGER, min_containers INTEGER,"
        " network TEXT, allow_unauth INTEGER NOT NULL DEFAULT 0, exposed_ports TEXT,"
        " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (ns, id));"
        "INSERT INTO pools5 SELECT id, ns, image, cpus, memory_mb, disk_mb, timeout_secs, entrypoint,"
        " max_containers, warm_containers, min_containers, network, allow_unauth, exposed_ports,"
        " created_at, updated_at, generation FROM pools;"
        "DROP TABLE pools;"
        "ALTER TABLE pools5 RENAME TO pools;",
        /* 6: a suspend that goes to disk at once */
        "ALTER TABLE sandboxes ADD COLUMN suspend_to_disk INTEGER NOT NULL DEFAULT 0;",
};

static int read_int(struct db_row *row, void *data)
{
	*(int64_t *)data = db_row_int(row, 0);
	return 0;
}

int store_schema_version(struct store *s)
{
	int64_t v = 0;
	db_query(s->db, "SELECT value FROM meta WHERE key = 'schema_version'", NULL, 0, read_int,
	         &v, NULL);
	return (int)v;
}

/* Brings the schema up to date, one migration per transaction. Each step rereads the version
 * inside its transaction, which holds the database's write lock (SQLite BEGIN IMMEDIATE, a
 * PostgreSQL advisory lock): two servers starting at once against one database never run a
 * migration twice. */
static int migrate(struct store *s, struct hutch_error *err)
{
	for (;;) {
		int r = store_begin(s, err);
		if (r < 0)
			return r;
		r = s->db->ops->script(
		        s->db,
		        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)",
		        err);
		if (r < 0) {
			store_rollback(s);
			return r;
		}
		size_t v = (size_t)store_schema_version(s);
		if (v > ARRAY_SIZE(migrations)) {
			store_rollback(s);
			return hutch_error_set(
			        err, -EPROTO,
			        "store schema version %zu is newer than this hutchd (%zu)", v,
			        ARRAY_SIZE(migrations));
		}
		if (v == ARRAY_SIZE(migrations))
			return store_commit(s, err);
		/* a migration holds several statements: run them as one script */
		r = s->db->ops->script(s->db, migrations[v], err);
		struct db_value p[] = {DB_I(v + 1)};
		if (r == 0)
			r = db_exec(s->db,
			            "INSERT INTO meta(key, value) VALUES('schema_version', $1)"
			            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			            p, 1, NULL, err);
		if (r == 0)
			r = store_commit(s, err);
		if (r < 0) {
			store_rollback(s);
			return hutch_error_wrap(err, "migrating the store to version %zu", v + 1);
		}
	}
}

static int store_open_db(struct db *db, bool migrated, struct store **ret, struct hutch_error *err)
{
	struct store *s = xcalloc(1, sizeof(*s));
	s->db = db;
	int r = migrated ? migrate(s, err) : 0;
	if (r < 0) {
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

int store_open_sqlite(const char *path, struct store **ret, struct hutch_error *err)
{
	struct db *db;
	int r = db_sqlite_open(path, false, &db, err);
	return r < 0 ? r : store_open_db(db, true, ret, err);
}

int store_open_sqlite_readonly(const char *path, struct store **ret, struct hutch_error *err)
{
	struct db *db;
	int r = db_sqlite_open(path, true, &db, err);
	return r < 0 ? r : store_open_db(db, false, ret, err);
}

bool store_spec_is_postgres(const char *spec)
{
	return strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0;
}

void store_spec_display(const char *spec, struct buf *ret)
{
	if (store_spec_is_postgres(spec))
		db_pg_redact(spec, ret);
	else
		buf_adds(ret, spec);
}

int store_open(const char *spec, struct store **ret, struct hutch_error *err)
{
	if (!store_spec_is_postgres(spec))
		return store_open_sqlite(spec, ret, err);
	struct db *db;
	int r = db_pg_open(spec, false, &db, err);
	return r < 0 ? r : store_open_db(db, true, ret, err);
}

int store_open_readonly(const char *spec, struct store **ret, struct hutch_error *err)
{
	if (!store_spec_is_postgres(spec))
		return store_open_sqlite_readonly(spec, ret, err);
	struct db *db;
	int r = db_pg_open(spec, true, &db, err);
	if (r < 0)
		return r;
	struct store *s;
	store_open_db(db, false, &s, err);
	if (store_schema_version(s) <= 0) {
		store_close(s);
		return hutch_error_set(err, -EAGAIN, "the PostgreSQL store has no schema yet");
	}
	*ret = s;
	return 0;
}

struct store_watch {
	struct db_pg_watch *w;
	struct store *s; /* whose own writes are not news */
};

int store_watch_open(struct store *s, const char *spec, struct store_watch **ret,
                     struct hutch_error *err)
{
	if (!store_spec_is_postgres(spec))
		return hutch_error_set(err, -EOPNOTSUPP, "only a PostgreSQL store is shared");
	struct db_pg_watch *w;
	int r = db_pg_watch_open(spec, &w, err);
	if (r < 0)
		return r;
	*ret = xcalloc(1, sizeof(**ret));
	(*ret)->w = w;
	(*ret)->s = s;
	return 0;
}

int store_watch_fd(struct store_watch *w)
{
	return db_pg_watch_fd(w->w);
}

int store_watch_drain(struct store_watch *w)
{
	return db_pg_watch_drain(w->w, db_pg_backend_pid(w->s->db));
}

void store_watch_free(struct store_watch *w)
{
	if (!w)
		return;
	db_pg_watch_free(w->w);
	free(w);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	s->db->ops->close(s->db);
	free(s);
}

void store_relax(struct store *s, bool relaxed)
{
	if (s->db->ops->relax)
		s->db->ops->relax(s->db, relaxed);
}

int store_begin(struct store *s, struct hutch_error *err)
{
	return s->db->ops->begin(s->db, err);
}

int store_commit(struct store *s, struct hutch_error *err)
{
	return s->db->ops->commit(s->db, err);
}

void store_rollback(struct store *s)
{
	s->db->ops->rollback(s->db);
}

void rec_set(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* ---- keys ---- */

void key_rec_release(struct key_rec *k)
{
	free(k->id);
	free(k->ns);
	free(k->name);
	free(k->hash);
	memset(k, 0, sizeof(*k));
}

int store_key_insert(struct store *s, const struct key_rec *k, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(k->id),   DB_T(k->ns),         DB_T(k->name),
	                       DB_T(k->hash), DB_I(k->created_at), DB_I(k->admin)};
	return db_exec(s->db,
	               "INSERT INTO api_keys(id, ns, name, hash, created_at, admin)"
	               " VALUES($1,$2,$3,$4,$5,$6)",
	               p, ARRAY_SIZE(p), NULL, err);
}

#define KEY_COLS "id, ns, name, hash, created_at, revoked_at, admin"

static void key_from_row(struct db_row *row, struct key_rec *k)
{
	k->id = dup_or_null(db_row_text(row, 0));
	k->ns = dup_or_null(db_row_text(row, 1));
	k->name = dup_or_null(db_row_text(row, 2));
	k->hash = dup_or_null(db_row_text(row, 3));
	k->created_at = db_row_int(row, 4);
	k->revoked_at = db_row_int(row, 5);
	k->admin = db_row_int(row, 6) != 0;
}

static int key_one(struct db_row *row, void *data)
{
	key_from_row(row, data);
	return 1;
}

int store_key_get(struct store *s, const char *id, struct key_rec *ret, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(id)};
	struct key_rec k = {0};
	int r = db_query(s->db, "SELECT " KEY_COLS " FROM api_keys WHERE id = $1", p, 1, key_one,
	                 &k, err);
	if (r < 0)
		return r;
	if (r == 0)
		return hutch_error_set(err, -ENOENT, "no such key");
	*ret = k;
	return 0;
}

struct key_walk {
	int (*cb)(const struct key_rec *k, void *d);
	void *data;
};

static int key_each(struct db_row *row, void *data)
{
	struct key_walk *w = data;
	struct key_rec k = {0};
	key_from_row(row, &k);
	int r = w->cb(&k, w->data);
	key_rec_release(&k);
	return r;
}

int store_key_list(struct store *s, const char *ns, int (*cb)(const struct key_rec *k, void *d),
                   void *data, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns)};
	struct key_walk w = {cb, data};
	return db_query(s->db,
	                "SELECT " KEY_COLS " FROM api_keys WHERE ns = $1 ORDER BY created_at, id",
	                p, 1, key_each, &w, err);
}

int store_key_revoke(struct store *s, const char *ns, const char *id, int64_t now,
                     bool may_revoke_admin, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns), DB_T(id), DB_I(now), DB_I(may_revoke_admin)};
	int64_t changes = 0;
	int r = db_exec(s->db,
	                "UPDATE api_keys SET revoked_at = $3 WHERE ns = $1 AND id = $2"
	                " AND revoked_at = 0 AND (admin = 0 OR $4 <> 0)",
	                p, 4, &changes, err);
	if (r < 0)
		return r;
	return changes ? 0 : hutch_error_set(err, -ENOENT, "no active key %s", id);
}

int store_key_count(struct store *s, int64_t *ret, struct hutch_error *err)
{
	*ret = 0;
	return db_query(s->db, "SELECT count(*) FROM api_keys", NULL, 0, read_int, ret, err);
}

/* ---- executors ---- */

void executor_rec_release(struct executor_rec *e)
{
	free(e->id);
	free(e->address);
	memset(e, 0, sizeof(*e));
}

int store_executor_upsert(struct store *s, const struct executor_rec *e, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(e->id), DB_T(e->address), DB_I(e->last_seen),
	                       DB_I(e->capacity)};
	return db_exec(s->db,
	               "INSERT INTO executors(id, address, last_seen, capacity) VALUES($1,$2,$3,$4)"
	               " ON CONFLICT(id) DO UPDATE SET address = excluded.address,"
	               " last_seen = excluded.last_seen, capacity = excluded.capacity",
	               p, ARRAY_SIZE(p), NULL, err);
}

struct exec_walk {
	int (*cb)(struct executor_rec *e, void *d);
	void *data;
};

static int executor_each(struct db_row *row, void *data)
{
	struct exec_walk *w = data;
	struct executor_rec e = {
	        .id = dup_or_null(db_row_text(row, 0)),
	        .address = dup_or_null(db_row_text(row, 1)),
	        .last_seen = db_row_int(row, 2),
	        .capacity = db_row_int(row, 3),
	};
	int r = w->cb(&e, w->data);
	executor_rec_release(&e);
	return r;
}

int store_executor_each(struct store *s, int (*cb)(struct executor_rec *e, void *d), void *data,
                        struct hutch_error *err)
{
	struct exec_walk w = {cb, data};
	return db_query(s->db, "SELECT id, address, last_seen, capacity FROM executors ORDER BY id",
	                NULL, 0, executor_each, &w, err);
}

/* ---- cursors ---- */

void store_cursor_encode(int64_t created_at, const char *id, struct buf *ret)
{
	struct buf raw = BUF_INIT;
	buf_printf(&raw, "%lld:%s", (long long)created_at, id);
	base64url_encode(raw.data, raw.len, ret);
	buf_release(&raw);
}

int store_cursor_decode(const char *s, int64_t *ret_created_at, char *ret_id, size_t id_size)
{
	struct buf raw = BUF_INIT;
	struct sv t = sv_from(s), head, tail;
	/* tolerate standard base64 padding */
	while (t.len && t.p[t.len - 1] == '=')
		t.len--;
	int r = base64url_decode(t.p, t.len, &raw);
	uint64_t at;
	if (r == 0 && (!sv_split(sv_make(raw.data, raw.len), ':', &head, &tail) ||
	               sv_to_u64(head, INT64_MAX, &at) < 0 || !id_is_valid(tail.p, tail.len) ||
	               tail.len >= id_size))
		r = -EINVAL;
	if (r == 0) {
		*ret_created_at = (int64_t)at;
		memcpy(ret_id, tail.p, tail.len);
		ret_id[tail.len] = '\0';
	}
	buf_release(&raw);
	return r;
}
