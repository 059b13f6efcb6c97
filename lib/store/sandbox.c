/* Sandbox rows: mapping, insert/update, lookups by id or name, keyset pagination. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "store/store.h"

#define SB_COLS                                                                                  \
	"id, ns, name, image, cpus, memory_mb, disk_mb, timeout_secs, entrypoint, network,"      \
	" allow_unauth, exposed_ports, snapshot_id, template_id, secret_names, pool_id, status," \
	" desired, pending_reason, outcome, termination_reason, error_details, created_at,"      \
	" updated_at, terminated_at, archived_at, last_activity_at, executor_id, agent_socket,"  \
	" ip, generation, pool_state, pool_generation, snapshot_op, network_pending, suspend_to_disk"

void sandbox_rec_release(struct sandbox_rec *r)
{
	char **strs[] = {&r->id,
	                 &r->ns,
	                 &r->name,
	                 &r->image,
	                 &r->entrypoint,
	                 &r->network,
	                 &r->exposed_ports,
	                 &r->snapshot_id,
	                 &r->template_id,
	                 &r->secret_names,
	                 &r->pool_id,
	                 &r->status,
	                 &r->desired,
	                 &r->pending_reason,
	                 &r->outcome,
	                 &r->termination_reason,
	                 &r->error_details,
	                 &r->executor_id,
	                 &r->agent_socket,
	                 &r->ip,
	                 &r->pool_state,
	                 &r->snapshot_op,
	                 &r->network_pending};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	memset(r, 0, sizeof(*r));
}

static char *col(struct db_row *row, int i)
{
	const char *s = db_row_text(row, i);
	return s ? xstrdup(s) : NULL;
}

static void sb_from_row(struct db_row *row, struct sandbox_rec *r)
{
	r->id = col(row, 0);
	r->ns = col(row, 1);
	r->name = col(row, 2);
	r->image = col(row, 3);
	r->cpus = db_row_real(row, 4);
	r->memory_mb = db_row_int(row, 5);
	r->disk_mb = db_row_int(row, 6);
	r->timeout_secs = db_row_int(row, 7);
	r->entrypoint = col(row, 8);
	r->network = col(row, 9);
	r->allow_unauth = db_row_int(row, 10) != 0;
	r->exposed_ports = col(row, 11);
	r->snapshot_id = col(row, 12);
	r->template_id = col(row, 13);
	r->secret_names = col(row, 14);
	r->pool_id = col(row, 15);
	r->status = col(row, 16);
	r->desired = col(row, 17);
	r->pending_reason = col(row, 18);
	r->outcome = col(row, 19);
	r->termination_reason = col(row, 20);
	r->error_details = col(row, 21);
	r->created_at = db_row_int(row, 22);
	r->updated_at = db_row_int(row, 23);
	r->terminated_at = db_row_int(row, 24);
	r->archived_at = db_row_int(row, 25);
	r->last_activity_at = db_row_int(row, 26);
	r->executor_id = col(row, 27);
	r->agent_socket = col(row, 28);
	r->ip = col(row, 29);
	r->generation = db_row_int(row, 30);
	r->pool_state = col(row, 31);
	r->pool_generation = db_row_int(row, 32);
	r->snapshot_op = col(row, 33);
	r->network_pending = col(row, 34);
	r->suspend_to_disk = db_row_int(row, 35) != 0;
}

/* Parameters in SB_COLS order, for insert and update. */
#define SB_NCOLS 36
/* warm pool sandboxes belong to their pool until claimed: users do not see them */
#define NOT_WARM "(pool_state IS NULL OR pool_state <> 'warm')"

static void sb_params(const struct sandbox_rec *r, struct db_value p[SB_NCOLS])
{
	struct db_value v[] = {
	        DB_T(r->id),
	        DB_T(r->ns),
	        DB_T(r->name),
	        DB_T(r->image),
	        DB_R(r->cpus),
	        DB_I(r->memory_mb),
	        DB_I(r->disk_mb),
	        DB_I(r->timeout_secs),
	        DB_T(r->entrypoint),
	        DB_T(r->network),
	        DB_I(r->allow_unauth),
	        DB_T(r->exposed_ports),
	        DB_T(r->snapshot_id),
	        DB_T(r->template_id),
	        DB_T(r->secret_names),
	        DB_T(r->pool_id),
	        DB_T(r->status),
	        DB_T(r->desired),
	        DB_T(r->pending_reason),
	        DB_T(r->outcome),
	        DB_T(r->termination_reason),
	        DB_T(r->error_details),
	        DB_I(r->created_at),
	        DB_I(r->updated_at),
	        DB_I(r->terminated_at),
	        DB_I(r->archived_at),
	        DB_I(r->last_activity_at),
	        DB_T(r->executor_id),
	        DB_T(r->agent_socket),
	        DB_T(r->ip),
	        DB_I(r->generation),
	        DB_T(r->pool_state),
	        DB_I(r->pool_generation),
	        DB_T(r->snapshot_op),
	        DB_T(r->network_pending),
	        DB_I(r->suspend_to_disk),
	};
	_Static_assert(sizeof(v) / sizeof(v[0]) == SB_NCOLS, "one parameter per column");
	memcpy(p, v, sizeof(v));
}

int store_sandbox_insert(struct store *s, const struct sandbox_rec *r, struct hutch_error *err)
{
	struct db_value p[SB_NCOLS];
	sb_params(r, p);
	int rc = db_exec(s->db,
	                 "INSERT INTO sandboxes(" SB_COLS ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,"
	                 "$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,"
	                 "$29,$30,$31,$32,$33,$34,$35,$36)",
	                 p, SB_NCOLS, NULL, err);
	if (rc == -EEXIST)
		return hutch_error_api(err, 409, "NAME_TAKEN",
		                       "a sandbox named '%s' already exists in namespace %s",
		                       r->name ? r->name : "", r->ns);
	return rc;
}

int store_sandbox_update(struct store *s, const struct sandbox_rec *r, struct hutch_error *err)
{
	struct db_value p[SB_NCOLS];
	int64_t changes = 0;
	sb_params(r, p);
	int rc = db_exec(
	        s->db,
	        "UPDATE sandboxes SET ns=$2, name=$3, image=$4, cpus=$5, memory_mb=$6,"
	        " disk_mb=$7, timeout_secs=$8, entrypoint=$9, network=$10, allow_unauth=$11,"
	        " exposed_ports=$12, snapshot_id=$13, template_id=$14, secret_names=$15,"
	        " pool_id=$16, status=$17, desired=$18, pending_reason=$19, outcome=$20,"
	        " termination_reason=$21, error_details=$22, created_at=$23, updated_at=$24,"
	        " terminated_at=$25, archived_at=$26, last_activity_at=$27, executor_id=$28,"
	        " agent_socket=$29, ip=$30, generation=$31, pool_state=$32,"
	        " pool_generation=$33, snapshot_op=$34, network_pending=$35, suspend_to_disk=$36 WHERE id=$1",
	        p, SB_NCOLS, &changes, err);
	if (rc == -EEXIST)
		return hutch_error_api(err, 409, "NAME_TAKEN",
		                       "a sandbox named '%s' already exists in namespace %s",
		                       r->name ? r->name : "", r->ns);
	if (rc < 0)
		return rc;
	return changes ? 0 : hutch_error_set(err, -ENOENT, "sandbox %s not found", r->id);
}

static int sb_one(struct db_row *row, void *data)
{
	sb_from_row(row, data);
	return 1;
}

int store_sandbox_get(struct store *s, const char *ns, const char *id_or_name, int archived,
                      struct sandbox_rec *ret, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns), DB_T(id_or_name)};
	struct sandbox_rec r = {0};
	int rc;

	/* an id is tried first; a name only matches live sandboxes (names are reusable) */
	if (archived)
		rc = db_query(s->db,
		              "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND id = $2"
		              " AND archived_at <> 0",
		              p, 2, sb_one, &r, err);
	else
		rc = db_query(s->db,
		              "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND archived_at = 0"
		              " AND " NOT_WARM
		              " AND (id = $2 OR (name = $2 AND status <> 'terminated'))"
		              " ORDER BY (id = $2) DESC LIMIT 1",
		              p, 2, sb_one, &r, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return hutch_error_api(err, 404, "SANDBOX_NOT_FOUND", "sandbox %s not found",
		                       id_or_name);
	*ret = r;
	return 0;
}

int store_sandbox_get_id(struct store *s, const char *id, struct sandbox_rec *ret,
                         struct hutch_error *err)
{
	struct db_value p[] = {DB_T(id)};
	struct sandbox_rec r = {0};
	int rc = db_query(s->db, "SELECT " SB_COLS " FROM sandboxes WHERE id = $1", p, 1, sb_one,
	                  &r, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return hutch_error_api(err, 404, "SANDBOX_NOT_FOUND", "sandbox %s not found", id);
	*ret = r;
	return 0;
}

struct name_any {
	struct sandbox_rec r;
	int n;
};

static int sb_name_any(struct db_row *row, void *data)
{
	struct name_any *a = data;
	if (a->n++ == 0)
		sb_from_row(row, &a->r);
	return 0;
}

int store_sandbox_get_name_any(struct store *s, const char *name, struct sandbox_rec *ret,
                               struct hutch_error *err)
{
	struct db_value p[] = {DB_T(name)};
	struct name_any a = {0};
	int rc = db_query(s->db,
	                  "SELECT " SB_COLS
	                  " FROM sandboxes WHERE name = $1 AND status <> 'terminated'"
	                  " LIMIT 2",
	                  p, 1, sb_name_any, &a, err);
	if (rc < 0) {
		sandbox_rec_release(&a.r);
		return rc;
	}
	if (a.n != 1) {
		sandbox_rec_release(&a.r);
		return hutch_error_api(err, 404, "SANDBOX_NOT_FOUND", "sandbox %s not found", name);
	}
	*ret = a.r;
	return 0;
}

/* ---- listing ---- */

static int sb_collect(struct db_row *row, void *data)
{
	struct sandbox_page *pg = data;
	pg->items = xreallocarray(pg->items, pg->n + 1, sizeof(*pg->items));
	memset(&pg->items[pg->n], 0, sizeof(pg->items[0]));
	sb_from_row(row, &pg->items[pg->n++]);
	return 0;
}

int store_sandbox_list(struct store *s, struct sandbox_page *pg, struct hutch_error *err)
{
	/* $1 ns, $2 archived flag, $3 status filter (NULL = any), $4 cursor created_at,
	 * $5 cursor id, $6 limit + 1 */
	struct db_value p[] = {DB_T(pg->ns),
	                       DB_I(pg->archived ? 1 : 0),
	                       DB_T(pg->status),
	                       DB_I(pg->has_cursor ? pg->cursor_created_at : 0),
	                       DB_T(pg->has_cursor ? pg->cursor_id : NULL),
	                       DB_I(pg->limit + 1)};
	int rc;

	pg->items = NULL;
	pg->n = 0;
	/* one statement per shape so each can walk the (ns, archived_at, created_at, id) index in
	 * order instead of sorting */
	if (!pg->archived && !pg->backward)
		rc = db_query(
		        s->db,
		        "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND archived_at = 0"
		        " AND ($3 IS NULL OR status = $3) AND " NOT_WARM
		        " AND ($5 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5))"
		        " ORDER BY created_at DESC, id DESC LIMIT $6",
		        p, ARRAY_SIZE(p), sb_collect, pg, err);
	else if (!pg->archived)
		rc = db_query(
		        s->db,
		        "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND archived_at = 0"
		        " AND ($3 IS NULL OR status = $3) AND " NOT_WARM
		        " AND ($5 IS NULL OR created_at > $4 OR (created_at = $4 AND id > $5))"
		        " ORDER BY created_at ASC, id ASC LIMIT $6",
		        p, ARRAY_SIZE(p), sb_collect, pg, err);
	else if (!pg->backward)
		rc = db_query(
		        s->db,
		        "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND archived_at <> 0"
		        " AND ($5 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5))"
		        " ORDER BY created_at DESC, id DESC LIMIT $6",
		        p, ARRAY_SIZE(p), sb_collect, pg, err);
	else
		rc = db_query(
		        s->db,
		        "SELECT " SB_COLS " FROM sandboxes WHERE ns = $1 AND archived_at <> 0"
		        " AND ($5 IS NULL OR created_at > $4 OR (created_at = $4 AND id > $5))"
		        " ORDER BY created_at ASC, id ASC LIMIT $6",
		        p, ARRAY_SIZE(p), sb_collect, pg, err);
	if (rc < 0) {
		store_sandbox_page_release(pg);
		return rc;
	}
	pg->has_more = (int64_t)pg->n > pg->limit;
	if (pg->has_more) {
		sandbox_rec_release(&pg->items[pg->n - 1]);
		pg->n--;
	}
	if (pg->backward) { /* present newest first in both directions */
		for (size_t i = 0; i < pg->n / 2; i++) {
			struct sandbox_rec t = pg->items[i];
			pg->items[i] = pg->items[pg->n - 1 - i];
			pg->items[pg->n - 1 - i] = t;
		}
	}
	return 0;
}

void store_sandbox_page_release(struct sandbox_page *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		sandbox_rec_release(&pg->items[i]);
	free(pg->items);
	pg->items = NULL;
	pg->n = 0;
}

struct sb_walk {
	int (*cb)(struct sandbox_rec *r, void *d);
	void *data;
};

static int sb_each(struct db_row *row, void *data)
{
	struct sb_walk *w = data;
	struct sandbox_rec r = {0};
	sb_from_row(row, &r);
	int rc = w->cb(&r, w->data);
	sandbox_rec_release(&r);
	return rc;
}

int store_sandbox_each_live(struct store *s, const char *executor_id,
                            int (*cb)(struct sandbox_rec *r, void *d), void *data,
                            struct hutch_error *err)
{
	struct sb_walk w = {cb, data};
	struct db_value p[] = {DB_T(executor_id)};
	if (executor_id)
		return db_query(s->db,
		                "SELECT " SB_COLS " FROM sandboxes WHERE executor_id = $1"
		                " AND (status <> 'terminated' OR agent_socket IS NOT NULL)"
		                " ORDER BY created_at",
		                p, 1, sb_each, &w, err);
	return db_query(s->db,
	                "SELECT " SB_COLS " FROM sandboxes WHERE status <> 'terminated'"
	                " ORDER BY created_at",
	                NULL, 0, sb_each, &w, err);
}

int store_sandbox_archive(struct store *s, int64_t cutoff, int64_t now, int64_t *ret,
                          struct hutch_error *err)
{
	struct db_value p[] = {DB_I(cutoff), DB_I(now)};
	return db_exec(s->db,
	               "UPDATE sandboxes SET archived_at = $2 WHERE status = 'terminated'"
	               " AND archived_at = 0 AND terminated_at <> 0 AND terminated_at < $1",
	               p, 2, ret, err);
}

static int read_count(struct db_row *row, void *data)
{
	*(int64_t *)data = db_row_int(row, 0);
	return 0;
}

int store_sandbox_count_live(struct store *s, const char *ns, int64_t *ret, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns)};
	*ret = 0;
	return db_query(s->db,
	                "SELECT count(*) FROM sandboxes WHERE ns = $1 AND status <> 'terminated'",
	                p, 1, read_count, ret, err);
}

int store_sandbox_count_executor(struct store *s, const char *executor_id, int64_t *ret,
                                 struct hutch_error *err)
{
	struct db_value p[] = {DB_T(executor_id)};
	*ret = 0;
	return db_query(s->db,
	                "SELECT count(*) FROM sandboxes WHERE executor_id = $1"
	                " AND (status <> 'terminated' OR agent_socket IS NOT NULL)"
	                " AND status <> 'terminated'",
	                p, 1, read_count, ret, err);
}

int store_pool_sandboxes(struct store *s, const char *ns, const char *pool_id,
                         int (*cb)(struct sandbox_rec *r, void *d), void *data,
                         struct hutch_error *err)
{
	struct sb_walk w = {cb, data};
	struct db_value p[] = {DB_T(pool_id), DB_T(ns)};
	return db_query(s->db,
	                "SELECT " SB_COLS
	                " FROM sandboxes WHERE pool_id = $1 AND ns = $2 AND status <> 'terminated'"
	                " ORDER BY created_at",
	                p, 2, sb_each, &w, err);
}

int store_sandbox_touch(struct store *s, const char *id, int64_t at, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(id), DB_I(at)};
	return db_exec(s->db,
	               "UPDATE sandboxes SET last_activity_at = $2 WHERE id = $1"
	               " AND last_activity_at < $2",
	               p, 2, NULL, err);
}
