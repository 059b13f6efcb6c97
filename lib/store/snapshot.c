/* Snapshot and pool rows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "store/store.h"

static char *col(struct db_row *row, int i)
{
	const char *s = db_row_text(row, i);
	return s ? xstrdup(s) : NULL;
}

/* ---- snapshots ---- */

#define SN_COLS                                                                                   \
	"id, ns, sandbox_id, snapshot_type, status, desired, error, base_image, cpus, memory_mb," \
	" disk_mb, entrypoint, executor_id, digest, size_bytes, rootfs_disk_bytes, created_at,"   \
	" updated_at"
#define SN_NCOLS 18

void snapshot_rec_release(struct snapshot_rec *r)
{
	char **strs[] = {&r->id,         &r->ns,          &r->sandbox_id, &r->snapshot_type,
	                 &r->status,     &r->desired,     &r->error,      &r->base_image,
	                 &r->entrypoint, &r->executor_id, &r->digest};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	memset(r, 0, sizeof(*r));
}

static void sn_from_row(struct db_row *row, struct snapshot_rec *r)
{
	r->id = col(row, 0);
	r->ns = col(row, 1);
	r->sandbox_id = col(row, 2);
	r->snapshot_type = col(row, 3);
	r->status = col(row, 4);
	r->desired = col(row, 5);
	r->error = col(row, 6);
	r->base_image = col(row, 7);
	r->cpus = db_row_real(row, 8);
	r->memory_mb = db_row_int(row, 9);
	r->disk_mb = db_row_int(row, 10);
	r->entrypoint = col(row, 11);
	r->executor_id = col(row, 12);
	r->digest = col(row, 13);
	r->size_bytes = db_row_int(row, 14);
	r->rootfs_disk_bytes = db_row_int(row, 15);
	r->created_at = db_row_int(row, 16);
	r->updated_at = db_row_int(row, 17);
}

static void sn_params(const struct snapshot_rec *r, struct db_value p[SN_NCOLS])
{
	struct db_value v[] = {
	        DB_T(r->id),          DB_T(r->ns),
	        DB_T(r->sandbox_id),  DB_T(r->snapshot_type),
	        DB_T(r->status),      DB_T(r->desired),
	        DB_T(r->error),       DB_T(r->base_image),
	        DB_R(r->cpus),        DB_I(r->memory_mb),
	        DB_I(r->disk_mb),     DB_T(r->entrypoint),
	        DB_T(r->executor_id), DB_T(r->digest),
	        DB_I(r->size_bytes),  DB_I(r->rootfs_disk_bytes),
	        DB_I(r->created_at),  DB_I(r->updated_at),
	};
	_Static_assert(sizeof(v) / sizeof(v[0]) == SN_NCOLS, "one parameter per column");
	memcpy(p, v, sizeof(v));
}

int store_snapshot_insert(struct store *s, const struct snapshot_rec *r, struct hutch_error *err)
{
	struct db_value p[SN_NCOLS];
	sn_params(r, p);
	return db_exec(s->db,
	               "INSERT INTO snapshots(" SN_COLS
	               ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,"
	               "$12,$13,$14,$15,$16,$17,$18)",
	               p, SN_NCOLS, NULL, err);
}

int store_snapshot_update(struct store *s, const struct snapshot_rec *r, struct hutch_error *err)
{
	struct db_value p[SN_NCOLS];
	sn_params(r, p);
	return db_exec(s->db,
	               "UPDATE snapshots SET ns=$2, sandbox_id=$3, snapshot_type=$4, status=$5,"
	               " desired=$6, error=$7, base_image=$8, cpus=$9, memory_mb=$10, disk_mb=$11,"
	               " entrypoint=$12, executor_id=$13, digest=$14, size_bytes=$15,"
	               " rootfs_disk_bytes=$16, created_at=$17, updated_at=$18 WHERE id=$1",
	               p, SN_NCOLS, NULL, err);
}

static int sn_one(struct db_row *row, void *data)
{
	sn_from_row(row, data);
	return 1;
}

int store_snapshot_get(struct store *s, const char *ns, const char *id, struct snapshot_rec *ret,
                       struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns), DB_T(id)};
	struct snapshot_rec r = {0};
	int rc = db_query(s->db,
	                  "SELECT " SN_COLS " FROM snapshots WHERE id = $2 AND desired = 'kept'"
	                  " AND ($1 IS NULL OR ns = $1)",
	                  p, 2, sn_one, &r, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return hutch_error_api(err, 404, "SNAPSHOT_NOT_FOUND", "snapshot %s not found", id);
	*ret = r;
	return 0;
}

struct sn_walk {
	int (*cb)(struct snapshot_rec *r, void *d);
	void *data;
};

static int sn_each(struct db_row *row, void *data)
{
	struct sn_walk *w = data;
	struct snapshot_rec r = {0};
	sn_from_row(row, &r);
	int rc = w->cb(&r, w->data);
	snapshot_rec_release(&r);
	return rc;
}

int store_snapshot_each(struct store *s, const char *ns, int (*cb)(struct snapshot_rec *r, void *d),
                        void *data, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns)};
	struct sn_walk w = {cb, data};
	return db_query(s->db,
	                "SELECT " SN_COLS " FROM snapshots WHERE ns = $1 AND desired = 'kept'"
	                " ORDER BY created_at DESC, id DESC",
	                p, 1, sn_each, &w, err);
}

int store_snapshot_each_deleted(struct store *s, const char *executor_id,
                                int (*cb)(struct snapshot_rec *r, void *d), void *data,
                                struct hutch_error *err)
{
	struct db_value p[] = {DB_T(executor_id)};
	struct sn_walk w = {cb, data};
	return db_query(s->db,
	                "SELECT " SN_COLS
	                " FROM snapshots WHERE executor_id = $1 AND desired = 'deleted'"
	                " AND status <> 'in_progress'",
	                p, 1, sn_each, &w, err);
}

int store_snapshot_remove(struct store *s, const char *id, const char *executor_id,
                          struct hutch_error *err)
{
	struct db_value p[] = {DB_T(id), DB_T(executor_id)};
	return db_exec(s->db,
	               "DELETE FROM snapshots WHERE id = $1 AND executor_id = $2"
	               " AND desired = 'deleted'",
	               p, 2, NULL, err);
}

int store_snapshot_get_any(struct store *s, const char *id, struct snapshot_rec *ret,
                           struct hutch_error *err)
{
	struct db_value p[] = {DB_T(id)};
	struct snapshot_rec r = {0};
	int rc = db_query(s->db, "SELECT " SN_COLS " FROM snapshots WHERE id = $1", p, 1, sn_one,
	                  &r, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return hutch_error_api(err, 404, "SNAPSHOT_NOT_FOUND", "snapshot %s not found", id);
	*ret = r;
	return 0;
}

/* ---- pools ---- */

#define PL_COLS                                                                               \
	"id, ns, image, cpus, memory_mb, disk_mb, timeout_secs, entrypoint, max_containers,"  \
	" warm_containers, min_containers, network, allow_unauth, exposed_ports, created_at," \
	" updated_at, generation"
#define PL_NCOLS 17

void pool_rec_release(struct pool_rec *r)
{
	free(r->id);
	free(r->ns);
	free(r->image);
	free(r->entrypoint);
	free(r->network);
	free(r->exposed_ports);
	memset(r, 0, sizeof(*r));
}

static void pl_from_row(struct db_row *row, struct pool_rec *r)
{
	r->id = col(row, 0);
	r->ns = col(row, 1);
	r->image = col(row, 2);
	r->cpus = db_row_real(row, 3);
	r->memory_mb = db_row_int(row, 4);
	r->disk_mb = db_row_int(row, 5);
	r->timeout_secs = db_row_int(row, 6);
	r->entrypoint = col(row, 7);
	r->max_containers = db_row_int(row, 8);
	r->warm_containers = db_row_int(row, 9);
	r->min_containers = db_row_int(row, 10);
	r->network = col(row, 11);
	r->allow_unauth = db_row_int(row, 12) != 0;
	r->exposed_ports = col(row, 13);
	r->created_at = db_row_int(row, 14);
	r->updated_at = db_row_int(row, 15);
	r->generation = db_row_int(row, 16);
}

static void pl_params(const struct pool_rec *r, struct db_value p[PL_NCOLS])
{
	struct db_value v[] = {
	        DB_T(r->id),
	        DB_T(r->ns),
	        DB_T(r->image),
	        DB_R(r->cpus),
	        DB_I(r->memory_mb),
	        DB_I(r->disk_mb),
	        DB_I(r->timeout_secs),
	        DB_T(r->entrypoint),
	        DB_I(r->max_containers),
	        DB_I(r->warm_containers),
	        DB_I(r->min_containers),
	        DB_T(r->network),
	        DB_I(r->allow_unauth),
	        DB_T(r->exposed_ports),
	        DB_I(r->created_at),
	        DB_I(r->updated_at),
	        DB_I(r->generation),
	};
	_Static_assert(sizeof(v) / sizeof(v[0]) == PL_NCOLS, "one parameter per column");
	memcpy(p, v, sizeof(v));
}

int store_pool_insert(struct store *s, const struct pool_rec *r, struct hutch_error *err)
{
	struct db_value p[PL_NCOLS];
	pl_params(r, p);
	int rc = db_exec(s->db,
	                 "INSERT INTO pools(" PL_COLS
	                 ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,"
	                 "$13,$14,$15,$16,$17)",
	                 p, PL_NCOLS, NULL, err);
	if (rc == -EEXIST)
		return hutch_error_api(err, 409, "POOL_EXISTS", "pool %s already exists", r->id);
	return rc;
}

int store_pool_update(struct store *s, const struct pool_rec *r, struct hutch_error *err)
{
	struct db_value p[PL_NCOLS];
	pl_params(r, p);
	return db_exec(s->db,
	               "UPDATE pools SET image=$3, cpus=$4, memory_mb=$5, disk_mb=$6,"
	               " timeout_secs=$7, entrypoint=$8, max_containers=$9, warm_containers=$10,"
	               " min_containers=$11, network=$12, allow_unauth=$13, exposed_ports=$14,"
	               " created_at=$15, updated_at=$16, generation=$17 WHERE id=$1 AND ns=$2",
	               p, PL_NCOLS, NULL, err);
}

static int pl_one(struct db_row *row, void *data)
{
	pl_from_row(row, data);
	return 1;
}

int store_pool_get(struct store *s, const char *ns, const char *id, struct pool_rec *ret,
                   struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns), DB_T(id)};
	struct pool_rec r = {0};
	int rc = db_query(s->db, "SELECT " PL_COLS " FROM pools WHERE id = $2 AND ns = $1", p, 2,
	                  pl_one, &r, err);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return hutch_error_api(err, 404, "POOL_NOT_FOUND", "pool %s not found", id);
	*ret = r;
	return 0;
}

struct pl_walk {
	int (*cb)(struct pool_rec *r, void *d);
	void *data;
};

static int pl_each(struct db_row *row, void *data)
{
	struct pl_walk *w = data;
	struct pool_rec r = {0};
	pl_from_row(row, &r);
	int rc = w->cb(&r, w->data);
	pool_rec_release(&r);
	return rc;
}

int store_pool_each(struct store *s, const char *ns, int (*cb)(struct pool_rec *r, void *d),
                    void *data, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns)};
	struct pl_walk w = {cb, data};
	return db_query(s->db,
	                "SELECT " PL_COLS " FROM pools WHERE ($1 IS NULL OR ns = $1)"
	                " ORDER BY created_at, id",
	                p, 1, pl_each, &w, err);
}

int store_pool_remove(struct store *s, const char *ns, const char *id, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(ns), DB_T(id)};
	return db_exec(s->db, "DELETE FROM pools WHERE ns = $1 AND id = $2", p, 2, NULL, err);
}

static int read_one_int(struct db_row *row, void *data)
{
	*(int64_t *)data = db_row_int(row, 0);
	return 0;
}

int store_pool_count(struct store *s, const char *ns, const char *pool_id, const char *pool_state,
                     int64_t *ret, struct hutch_error *err)
{
	struct db_value p[] = {DB_T(pool_id), DB_T(pool_state), DB_T(ns)};
	*ret = 0;
	return db_query(s->db,
	                "SELECT count(*) FROM sandboxes WHERE pool_id = $1 AND ns = $3"
	                " AND status <> 'terminated' AND ($2 IS NULL OR pool_state = $2)"
	                " AND NOT (status = 'pending' AND pending_reason = 'pool_at_capacity')",
	                p, 3, read_one_int, ret, err);
}
