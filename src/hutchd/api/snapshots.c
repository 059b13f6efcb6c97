/* Snapshots and copies. A snapshot request marks the sandbox `snapshotting` and hands the
 * executor a snapshot_op; the executor's report completes or fails the snapshot and returns the
 * sandbox to `running`. A copy is a memory snapshot followed by N creates from it, answered when
 * all N settled (422 when some failed, 504 when the client's bound elapsed). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

#define MAX_COPIES 16

/* ---- rendering ---- */

json_t *api_snapshot_json(const struct snapshot_rec *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(s->id));
	json_object_set_new(o, "namespace", json_string(s->ns));
	json_object_set_new(o, "sandbox_id", json_string(s->sandbox_id));
	json_object_set_new(o, "base_image",
	                    json_string(s->base_image ? s->base_image : "ubuntu-minimal"));
	json_object_set_new(o, "status", json_string(s->status));
	json_object_set_new(o, "snapshot_type", json_string(s->snapshot_type));
	json_object_set_new(o, "error", s->error ? json_string(s->error) : json_null());
	json_object_set_new(o, "snapshot_format_version",
	                    json_string(strcmp(s->snapshot_type, "memory") == 0 ? "hutch_memory_v1"
	                                                                        : "hutch_fs_v1"));
	json_object_set_new(o, "snapshot_uri", json_null());
	json_object_set_new(o, "digest", s->digest ? json_string(s->digest) : json_null());
	json_object_set_new(o, "size_bytes", json_integer(s->size_bytes));
	json_object_set_new(o, "rootfs_disk_bytes", json_integer(s->rootfs_disk_bytes));
	json_object_set_new(o, "created_at", json_integer(s->created_at));
	return o;
}

/* ---- taking a snapshot ---- */

/* Parses {} / {"snapshot_type": ...} / the older {"snapshot_content_mode": ...}. */
static int parse_type(const char *body, size_t len, const char **ret, struct hutch_error *err)
{
	*ret = "filesystem";
	if (!body || len == 0)
		return 0;
	json_t *o = json_loadb(body, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return hutch_error_api(err, 400, "INVALID_JSON", "the body must be a JSON object");
	}
	const char *t = json_string_value(json_object_get(o, "snapshot_type"));
	const char *m = json_string_value(json_object_get(o, "snapshot_content_mode"));
	int rc = 0;
	if (t && strcmp(t, "memory") == 0)
		*ret = "memory";
	else if (t && strcmp(t, "filesystem") != 0)
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                     "snapshot_type must be \"memory\" or \"filesystem\"");
	else if (!t && m && strcmp(m, "full") == 0)
		*ret = "memory";
	else if (!t && m && strcmp(m, "filesystem_only") != 0)
		rc = hutch_error_api(
		        err, 400, "INVALID_ARGUMENT",
		        "snapshot_content_mode must be \"full\" or \"filesystem_only\"");
	else if (json_object_get(o, "snapshot_type") && !t)
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                     "snapshot_type must be a string");
	json_decref(o);
	return rc;
}

int api_snapshot_begin(struct api *api, struct sandbox_rec *r, const char *type,
                       struct snapshot_rec *ret, struct hutch_error *err)
{
	if (strcmp(r->status, "running") != 0)
		return hutch_error_api(err, 409, "INVALID_STATE",
		                       "cannot snapshot sandbox %s: it is %s", r->id, r->status);
	struct api_executor *e = r->executor_id ? api_executor_find(api, r->executor_id) : NULL;
	if (strcmp(type, "memory") == 0 && !(e && e->criu))
		return hutch_error_api(
		        err, 400, "MEMORY_SNAPSHOT_UNAVAILABLE",
		        "memory snapshots need CRIU 4.1 or newer on the sandbox's host"
		        "%s%s",
		        e && e->criu_reason[0] ? ": " : "", e ? e->criu_reason : "");
	char id[HUTCH_ID_LEN + 1];
	int64_t now = time_now_ms();
	id_generate(id);
	struct snapshot_rec s = {
	        .id = xstrdup(id),
	        .ns = xstrdup(r->ns),
	        .sandbox_id = xstrdup(r->id),
	        .snapshot_type = xstrdup(type),
	        .status = xstrdup("in_progress"),
	        .desired = xstrdup("kept"),
	        .base_image = r->image ? xstrdup(r->image) : NULL,
	        .cpus = r->cpus,
	        .memory_mb = r->memory_mb,
	        .disk_mb = r->disk_mb,
	        .entrypoint = r->entrypoint ? xstrdup(r->entrypoint) : NULL,
	        .executor_id = r->executor_id ? xstrdup(r->executor_id) : NULL,
	        .created_at = now,
	        .updated_at = now,
	};
	int rc = store_snapshot_insert(api->store, &s, err);
	if (rc == 0) {
		char *op = xasprintf("{\"id\":\"%s\",\"type\":\"%s\"}", id, type);
		rec_set(&r->status, "snapshotting");
		rec_set(&r->snapshot_op, op);
		free(op);
		r->generation++;
		r->updated_at = now;
		rc = store_sandbox_update(api->store, r, err);
	}
	if (rc < 0) {
		snapshot_rec_release(&s);
		return rc;
	}
	log_info("sandbox %s: %s snapshot %s started", r->id, type, id);
	api_desired_changed(api);
	*ret = s;
	return 0;
}

static void snapshot_with_body(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	struct snapshot_rec s = {0};
	const char *type;
	int rc = parse_type(req->body.data, req->body.len, &type, &err);
	if (rc == 0)
		rc = store_sandbox_get(ctx->api->store, ctx->ns, http_request_param(req, "id"), 0,
		                       &r, &err);
	if (rc == 0)
		rc = api_snapshot_begin(ctx->api, &r, type, &s, &err);
	if (rc < 0) {
		api_respond_err(req, &err);
	} else {
		json_t *o = json_object();
		json_object_set_new(o, "snapshot_id", json_string(s.id));
		json_object_set_new(o, "status", json_string(s.status));
		api_respond_json(req, 200, o);
	}
	sandbox_rec_release(&r);
	snapshot_rec_release(&s);
}

void api_snapshot_create(struct http_request *req, struct api_ctx *ctx)
{
	api_read_body(req, ctx, snapshot_with_body);
}

/* ---- snapshot resources ---- */

static int add_snapshot(struct snapshot_rec *s, void *data)
{
	json_array_append_new(data, api_snapshot_json(s));
	return 0;
}

void api_snapshot_list(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *arr = json_array();
	if (store_snapshot_each(ctx->api->store, ctx->ns, add_snapshot, arr, &err) < 0) {
		json_decref(arr);
		api_respond_err(req, &err);
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "snapshots", arr);
	api_respond_json(req, 200, o);
}

void api_snapshot_get(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct snapshot_rec s = {0};
	if (store_snapshot_get(ctx->api->store, ctx->ns, http_request_param(req, "snapshot_id"), &s,
	                       &err) < 0) {
		api_respond_err(req, &err);
		return;
	}
	api_respond_json(req, 200, api_snapshot_json(&s));
	snapshot_rec_release(&s);
}

int api_snapshot_drop(struct api *api, struct snapshot_rec *s, struct hutch_error *err)
{
	rec_set(&s->desired, "deleted");
	s->updated_at = time_now_ms();
	int rc = store_snapshot_update(api->store, s, err);
	if (rc == 0)
		api_desired_changed(api); /* the executor removes the files */
	return rc;
}

void api_snapshot_delete(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct snapshot_rec s = {0};
	int rc = store_snapshot_get(ctx->api->store, ctx->ns,
	                            http_request_param(req, "snapshot_id"), &s, &err);
	if (rc == 0)
		rc = api_snapshot_drop(ctx->api, &s, &err);
	if (rc < 0)
		api_respond_err(req, &err);
	else
		http_respond(req, 200, NULL, NULL, 0);
	snapshot_rec_release(&s);
}

/* ---- executor reports ---- */

void api_snapshot_report(struct api *api, struct sandbox_rec *r, json_t *rep)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct snapshot_rec s = {0};
	const char *id = json_string_value(json_object_get(rep, "id"));
	const char *status = json_string_value(json_object_get(rep, "status"));
	if (!id || !status)
		return;
	/* the sandbox goes back to running whatever happens to the snapshot record */
	json_t *op = r->snapshot_op ? json_loads(r->snapshot_op, 0, NULL) : NULL;
	const char *op_id = json_string_value(json_object_get(op, "id"));
	if (op_id && strcmp(op_id, id) == 0) {
		rec_set(&r->snapshot_op, NULL);
		if (strcmp(r->status, "snapshotting") == 0)
			rec_set(&r->status, "running");
	}
	json_decref(op);
	/* deleted meanwhile or not: record the outcome (a deleted one is removed once settled),
	 * but only for a snapshot of this very sandbox */
	if (store_snapshot_get_any(api->store, id, &s, &err) < 0 ||
	    strcmp(s.sandbox_id, r->id) != 0) {
		snapshot_rec_release(&s);
		return;
	}
	if (strcmp(s.status, "in_progress") == 0) {
		rec_set(&s.status, strcmp(status, "completed") == 0 ? "completed" : "failed");
		rec_set(&s.error, json_string_value(json_object_get(rep, "error")));
		rec_set(&s.digest, json_string_value(json_object_get(rep, "digest")));
		s.size_bytes = json_integer_value(json_object_get(rep, "size_bytes"));
		s.rootfs_disk_bytes = json_integer_value(json_object_get(rep, "rootfs_disk_bytes"));
		s.updated_at = time_now_ms();
		if (store_snapshot_update(api->store, &s, &err) < 0)
			log_warn("snapshot %s: %s", s.id, err.msg);
		else
			log_info("snapshot %s %s%s%s", s.id, s.status, s.error ? ": " : "",
			         s.error ? s.error : "");
	}
	if (strcmp(s.desired, "deleted") == 0)
		api_desired_changed(api); /* settled: its data can go now */
	api_snapshot_changed(api, s.id);
	snapshot_rec_release(&s);
}

/* ---- create from a snapshot ---- */

int api_snapshot_apply(struct api *api, const char *ns, struct create_req *c,
                       const struct apimodel_limits *lim, struct sandbox_rec *r,
                       struct hutch_error *err)
{
	struct snapshot_rec s = {0};
	int rc = store_snapshot_get(api->store, ns, c->snapshot_id, &s, err);
	if (rc < 0)
		return rc;
	if (strcmp(s.status, "completed") != 0)
		rc = hutch_error_api(err, 400, "SNAPSHOT_NOT_READY",
		                     "snapshot %s is %s, not completed", s.id, s.status);
	else if (r->image && !(s.base_image && strcmp(r->image, s.base_image) == 0) &&
	         strcmp(s.snapshot_type, "filesystem") == 0)
		rc = hutch_error_api(
		        err, 400, "INVALID_ARGUMENT",
		        "image: a filesystem snapshot restores onto its own image (%s)",
		        s.base_image ? s.base_image : "default");
	if (rc == 0) {
		rec_set(&r->image, s.base_image);
		rec_set(&r->snapshot_id, s.id);
		rec_set(&r->executor_id, s.executor_id); /* the snapshot's files live there */
		if (strcmp(s.snapshot_type, "memory") == 0) {
			/* processes continue: everything comes from the snapshot */
			r->cpus = s.cpus;
			r->memory_mb = s.memory_mb;
			r->disk_mb = s.disk_mb;
			rec_set(&r->entrypoint, s.entrypoint);
		} else if (r->disk_mb < s.disk_mb) {
			r->disk_mb = s.disk_mb; /* grow-only */
		}
		struct api_executor *e =
		        s.executor_id ? api_executor_find(api, s.executor_id) : NULL;
		rec_set(&r->pending_reason, e ? "scheduling" : "no_executors_available");
	}
	(void)lim;
	snapshot_rec_release(&s);
	return rc;
}
