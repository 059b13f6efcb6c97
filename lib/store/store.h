/* The store: hutch's durable state (API keys, sandboxes, snapshots, pools, executors) on top of
 * struct db. Every write is committed durably before the function returns. Domain rules
 * (validation, state transitions) live in the api, not here.
 *
 * Records own their strings (malloc'd, NULL = SQL NULL); release them with *_rec_release().
 * JSON-valued columns (entrypoint, network, exposed_ports, ...) are stored as JSON text. */
#ifndef HUTCH_STORE_H
#define HUTCH_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "store/db.h"

struct store {
	struct db *db;
};

/* True when spec names a PostgreSQL store (postgres:// or postgresql:// URL). */
bool store_spec_is_postgres(const char *spec);
/* Appends spec as it may be logged (a PostgreSQL URL without its password). */
void store_spec_display(const char *spec, struct buf *ret);
/* Opens the store spec names, a PostgreSQL URL or a SQLite path (created if needed), and runs
 * pending migrations. Several processes may do this at once against one database: migrations
 * are serialized. */
int store_open(const char *spec, struct store **ret, struct hutch_error *err);
/* Opens an existing, migrated store for reading only (the proxy); -EAGAIN while a PostgreSQL
 * store has no schema yet. */
int store_open_readonly(const char *spec, struct store **ret, struct hutch_error *err);
/* Opens (creating if needed) the SQLite store at path and runs pending migrations. */
int store_open_sqlite(const char *path, struct store **ret, struct hutch_error *err);
/* Opens an existing SQLite store for reading only (the proxy); no migrations. */
int store_open_sqlite_readonly(const char *path, struct store **ret, struct hutch_error *err);
void store_close(struct store *s);
/* Executors' observations (a status they will report again after any restart) may be stored
 * without waiting for the disk: store_relax(s, true) around them, false after. What a user
 * asked for is always durable before it is answered. */
void store_relax(struct store *s, bool relaxed);
int store_begin(struct store *s, struct hutch_error *err);
int store_commit(struct store *s, struct hutch_error *err);
void store_rollback(struct store *s);
/* The schema version after migrations. */
int store_schema_version(struct store *s);

/* Changes made through other connections to a shared (PostgreSQL) store: a watch has an fd to
 * poll for reading; store_watch_drain then says whether another connection than s's own wrote
 * (> 0), nothing did (0), or the watch broke (< 0: free it, open a new one and treat it as a
 * change). s must outlive the watch. Opening one on a SQLite store gives -EOPNOTSUPP (one api
 * node owns it; its own writes wake it). */
struct store_watch;
int store_watch_open(struct store *s, const char *spec, struct store_watch **ret,
                     struct hutch_error *err);
int store_watch_fd(struct store_watch *w);
int store_watch_drain(struct store_watch *w);
void store_watch_free(struct store_watch *w);

/* ---- API keys ---- */

struct key_rec {
	char *id; /* short public id, part of the key text */
	char *ns;
	char *name;
	char *hash; /* hex SHA-256 of the secret part */
	int64_t created_at;
	int64_t revoked_at; /* 0 = active */
	bool admin;         /* may manage keys of every namespace */
};

void key_rec_release(struct key_rec *k);
int store_key_insert(struct store *s, const struct key_rec *k, struct hutch_error *err);
/* -ENOENT if there is no key with this id. */
int store_key_get(struct store *s, const char *id, struct key_rec *ret, struct hutch_error *err);
int store_key_list(struct store *s, const char *ns, int (*cb)(const struct key_rec *k, void *d),
                   void *data, struct hutch_error *err);
/* Marks the key revoked; -ENOENT if it does not exist in ns (or is an admin key and
 * may_revoke_admin is false). */
int store_key_revoke(struct store *s, const char *ns, const char *id, int64_t now,
                     bool may_revoke_admin, struct hutch_error *err);
int store_key_count(struct store *s, int64_t *ret, struct hutch_error *err);

/* ---- sandboxes ---- */

struct sandbox_rec {
	char *id;
	char *ns;
	char *name; /* NULL = ephemeral */
	char *image;
	double cpus;
	int64_t memory_mb;
	int64_t disk_mb;
	int64_t timeout_secs;
	char *entrypoint; /* JSON array or NULL */
	char *network;    /* JSON object or NULL (unrestricted) */
	bool allow_unauth;
	char *exposed_ports; /* JSON array of ints or NULL */
	char *snapshot_id;
	char *template_id;
	char *secret_names; /* JSON array or NULL */
	char *pool_id;
	char *status;  /* pending, running, snapshotting, suspending, suspended, terminated */
	char *desired; /* running, suspended, terminated */
	char *pending_reason;
	char *outcome;
	char *termination_reason;
	char *error_details; /* JSON or NULL */
	int64_t created_at;  /* ms */
	int64_t updated_at;
	int64_t terminated_at; /* 0 = not terminated */
	int64_t archived_at;   /* 0 = listed */
	int64_t last_activity_at;
	char *executor_id;
	char *agent_socket;      /* host path of the agent's socket, set by the executor */
	char *ip;                /* sandbox address for user ports, set by the executor */
	int64_t generation;      /* bumped whenever desired state or spec changes */
	char *pool_state;        /* NULL (not from a pool), "warm" (unclaimed) or "claimed" */
	int64_t pool_generation; /* the pool's generation the sandbox was made for */
	char *snapshot_op; /* JSON {"id","type"} of a snapshot the executor must take, or NULL */
	char *network_pending; /* a policy (JSON, "null" = unrestricted) not yet applied by the
	                        * executor, or NULL */
	bool suspend_to_disk;  /* suspended on request straight to disk (CRIU), not after a delay */
};

void sandbox_rec_release(struct sandbox_rec *r);
/* Replaces the string *field with a copy of value (NULL allowed). */
void rec_set(char **field, const char *value);

/* Inserts a new sandbox; -EEXIST when the name is taken by a live sandbox in the namespace. */
int store_sandbox_insert(struct store *s, const struct sandbox_rec *r, struct hutch_error *err);
/* Writes every mutable column of r (by id); -EEXIST on a name clash, -ENOENT if gone. */
int store_sandbox_update(struct store *s, const struct sandbox_rec *r, struct hutch_error *err);
/* By id, or by name among live sandboxes, within ns. archived: 0 = not archived only, 1 =
 * archived only. -ENOENT if none. */
int store_sandbox_get(struct store *s, const char *ns, const char *id_or_name, int archived,
                      struct sandbox_rec *ret, struct hutch_error *err);
/* By id in any namespace. */
int store_sandbox_get_id(struct store *s, const char *id, struct sandbox_rec *ret,
                         struct hutch_error *err);
/* By name among live sandboxes of every namespace; -ENOENT if none, -EEXIST if several. */
int store_sandbox_get_name_any(struct store *s, const char *name, struct sandbox_rec *ret,
                               struct hutch_error *err);

struct sandbox_page {
	const char *ns;
	const char *status; /* filter or NULL */
	bool archived;      /* list archived instead of listed sandboxes */
	int64_t limit;
	bool backward;
	bool has_cursor;
	int64_t cursor_created_at;
	const char *cursor_id;
	/* results */
	struct sandbox_rec *items;
	size_t n;
	bool has_more; /* more items beyond this page in the direction of travel */
};

/* Keyset page over sandboxes, newest first. Fills page->items (release with
 * store_sandbox_page_release). */
int store_sandbox_list(struct store *s, struct sandbox_page *page, struct hutch_error *err);
void store_sandbox_page_release(struct sandbox_page *page);

/* Calls cb for every sandbox that is not terminated (or all sandboxes of an executor when
 * executor_id is set, including terminated ones not yet acknowledged). */
int store_sandbox_each_live(struct store *s, const char *executor_id,
                            int (*cb)(struct sandbox_rec *r, void *d), void *data,
                            struct hutch_error *err);
/* Sets archived_at on terminated sandboxes that ended before cutoff; ret = how many. */
int store_sandbox_archive(struct store *s, int64_t cutoff, int64_t now, int64_t *ret,
                          struct hutch_error *err);
int store_sandbox_count_live(struct store *s, const char *ns, int64_t *ret,
                             struct hutch_error *err);
/* Sandboxes placed on executor_id that are not terminated. */
int store_sandbox_count_executor(struct store *s, const char *executor_id, int64_t *ret,
                                 struct hutch_error *err);
/* Records proxy traffic: last_activity_at = max(old, at). */
int store_sandbox_touch(struct store *s, const char *id, int64_t at, struct hutch_error *err);

/* ---- snapshots ---- */

struct snapshot_rec {
	char *id;
	char *ns;
	char *sandbox_id;
	char *snapshot_type; /* memory | filesystem */
	char *status;        /* in_progress | completed | failed */
	char *desired;       /* kept | deleted */
	char *error;
	char *base_image;
	double cpus;
	int64_t memory_mb;
	int64_t disk_mb;
	char *entrypoint;
	char *executor_id;
	char *digest;
	int64_t size_bytes;
	int64_t rootfs_disk_bytes;
	int64_t created_at;
	int64_t updated_at;
};

void snapshot_rec_release(struct snapshot_rec *r);
int store_snapshot_insert(struct store *s, const struct snapshot_rec *r, struct hutch_error *err);
int store_snapshot_update(struct store *s, const struct snapshot_rec *r, struct hutch_error *err);
/* A kept snapshot of ns (ns NULL = any namespace); -ENOENT (404) otherwise. */
int store_snapshot_get(struct store *s, const char *ns, const char *id, struct snapshot_rec *ret,
                       struct hutch_error *err);
/* Kept snapshots of ns, newest first. */
int store_snapshot_each(struct store *s, const char *ns, int (*cb)(struct snapshot_rec *r, void *d),
                        void *data, struct hutch_error *err);
/* Snapshots on executor_id marked deleted (their files must go). */
int store_snapshot_each_deleted(struct store *s, const char *executor_id,
                                int (*cb)(struct snapshot_rec *r, void *d), void *data,
                                struct hutch_error *err);
/* Removes a snapshot marked deleted whose data executor_id has removed. */
int store_snapshot_remove(struct store *s, const char *id, const char *executor_id,
                          struct hutch_error *err);
/* By id whatever its state (deleted ones included). */
int store_snapshot_get_any(struct store *s, const char *id, struct snapshot_rec *ret,
                           struct hutch_error *err);

/* ---- pools ---- */

struct pool_rec {
	char *id;
	char *ns;
	char *image;
	double cpus;
	int64_t memory_mb;
	int64_t disk_mb;
	int64_t timeout_secs;
	char *entrypoint;
	int64_t max_containers; /* -1 = no limit */
	int64_t warm_containers;
	int64_t min_containers;
	char *network;
	bool allow_unauth;
	char *exposed_ports;
	int64_t created_at;
	int64_t updated_at;
	int64_t generation; /* bumped when the template changes (warm ones recycle) */
};

void pool_rec_release(struct pool_rec *r);
/* -EEXIST (409) if the id is taken. */
int store_pool_insert(struct store *s, const struct pool_rec *r, struct hutch_error *err);
int store_pool_update(struct store *s, const struct pool_rec *r, struct hutch_error *err);
int store_pool_get(struct store *s, const char *ns, const char *id, struct pool_rec *ret,
                   struct hutch_error *err);
/* Pools of ns (NULL = all namespaces). */
int store_pool_each(struct store *s, const char *ns, int (*cb)(struct pool_rec *r, void *d),
                    void *data, struct hutch_error *err);
int store_pool_remove(struct store *s, const char *ns, const char *id, struct hutch_error *err);
/* Live sandboxes of a pool in a pool_state ("warm", "claimed"; NULL = both), not counting claims
 * still waiting for room (pending with pool_at_capacity). */
int store_pool_count(struct store *s, const char *ns, const char *pool_id, const char *pool_state,
                     int64_t *ret, struct hutch_error *err);
/* Calls cb for the live sandboxes of a pool, oldest first. */
int store_pool_sandboxes(struct store *s, const char *ns, const char *pool_id,
                         int (*cb)(struct sandbox_rec *r, void *d), void *data,
                         struct hutch_error *err);

/* ---- executors ---- */

struct executor_rec {
	char *id;
	char *address; /* how the proxy reaches sandboxes on that node ("local" = same host) */
	int64_t last_seen;
	int64_t capacity; /* max sandboxes, 0 = unlimited */
};

void executor_rec_release(struct executor_rec *e);
int store_executor_upsert(struct store *s, const struct executor_rec *e, struct hutch_error *err);
int store_executor_each(struct store *s, int (*cb)(struct executor_rec *e, void *d), void *data,
                        struct hutch_error *err);

/* ---- cursors ---- */

/* Encodes / decodes the opaque pagination cursor (created_at, id). */
void store_cursor_encode(int64_t created_at, const char *id, struct buf *ret);
int store_cursor_decode(const char *s, int64_t *ret_created_at, char *ret_id, size_t id_size);

#endif
