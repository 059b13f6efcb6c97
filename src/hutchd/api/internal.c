/* The internal API (node token): executors long-poll their assignments and report what they
 * observe; proxies report traffic and ask for suspended sandboxes to be woken. Documented in
 * docs/design/internal-api.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

#define MAX_POLL_MS 30000

/* ---- assignments ---- */

static json_t *json_text(const char *text)
{
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;
	return v ? v : json_null();
}

static json_t *assignment_json(const struct sandbox_rec *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "namespace", json_string(r->ns));
	json_object_set_new(o, "generation", json_integer(r->generation));
	json_object_set_new(o, "desired", json_string(r->desired));
	json_object_set_new(o, "status", json_string(r->status));
	json_object_set_new(o, "name", r->name ? json_string(r->name) : json_null());
	json_object_set_new(o, "image", r->image ? json_string(r->image) : json_null());
	json_object_set_new(o, "cpus", json_real(r->cpus));
	json_object_set_new(o, "memory_mb", json_integer(r->memory_mb));
	json_object_set_new(o, "disk_mb", json_integer(r->disk_mb));
	json_object_set_new(o, "entrypoint", json_text(r->entrypoint));
	json_object_set_new(o, "network", json_text(r->network));
	json_object_set_new(o, "snapshot_id",
	                    r->snapshot_id ? json_string(r->snapshot_id) : json_null());
	json_object_set_new(o, "snapshot_op", json_text(r->snapshot_op));
	json_object_set_new(o, "network_pending_set", json_boolean(r->network_pending != NULL));
	json_object_set_new(o, "network_pending", json_text(r->network_pending));
	json_object_set_new(o, "suspend_to_disk", json_boolean(r->suspend_to_disk));
	return o;
}

struct assign_ctx {
	struct api *api;
	json_t *arr;
};

static int add_assignment(struct sandbox_rec *r, void *data)
{
	struct assign_ctx *ac = data;
	json_t *o = assignment_json(r);
	if (r->snapshot_id && strcmp(r->status, "pending") == 0) {
		/* what the executor needs to restore from */
		struct snapshot_rec s = {0};
		if (store_snapshot_get(ac->api->store, NULL, r->snapshot_id, &s, NULL) == 0) {
			json_object_set_new(o, "snapshot_type", json_string(s.snapshot_type));
			json_object_set_new(o, "snapshot_digest",
			                    s.digest ? json_string(s.digest) : json_null());
			snapshot_rec_release(&s);
		}
	}
	json_array_append_new(ac->arr, o);
	return 0;
}

static int add_deleted_snapshot(struct snapshot_rec *s, void *data)
{
	json_array_append_new(data, json_string(s->id));
	return 0;
}

struct poll_state {
	struct api *api;
	char node[128];
};

static void assignments_answer(struct http_request *req, void *data)
{
	struct poll_state *ps = data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *arr = json_array();
	if (req) {
		/* read the version before the rows: a change in between only causes a re-poll */
		uint64_t version = ps->api->version;
		struct assign_ctx ac = {ps->api, arr};
		json_t *deleted = json_array();
		if (store_sandbox_each_live(ps->api->store, ps->node, add_assignment, &ac, &err) <
		            0 ||
		    store_snapshot_each_deleted(ps->api->store, ps->node, add_deleted_snapshot,
		                                deleted, &err) < 0) {
			json_decref(arr);
			json_decref(deleted);
			api_respond_err(req, &err);
		} else {
			json_t *o = json_object();
			json_object_set_new(o, "version", json_integer((json_int_t)version));
			json_object_set_new(o, "sandboxes", arr);
			json_object_set_new(o, "deleted_snapshots", deleted);
			arr = NULL;
			api_respond_json(req, 200, o);
		}
	}
	json_decref(arr);
	free(ps);
}

static struct api_executor *executor_seen(struct api *api, const char *node, const char *address,
                                          int64_t capacity, const char *criu, bool *ret_new)
{
	struct api_executor *e = api_executor_find(api, node);
	*ret_new = false;
	if (!e) {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", node);
		e->next = api->executors;
		api->executors = e;
		*ret_new = true;
		log_info("executor %s connected", node);
	}
	snprintf(e->address, sizeof(e->address), "%s", address);
	e->capacity = capacity;
	/* criu=ok or criu=<why not> */
	e->criu = criu && strcmp(criu, "ok") == 0;
	snprintf(e->criu_reason, sizeof(e->criu_reason), "%s", e->criu || !criu ? "" : criu);
	bool was_stale = time_mono_ms() - e->last_seen_ms > 30000;
	e->last_seen_ms = time_mono_ms();
	*ret_new = *ret_new || was_stale;
	struct executor_rec rec = {.id = e->id,
	                           .address = e->address,
	                           .last_seen = time_now_ms(),
	                           .capacity = capacity};
	store_executor_upsert(api->store, &rec, NULL);
	return e;
}

void api_internal_assignments(struct http_request *req, struct api_ctx *ctx)
{
	struct api *api = ctx->api;
	const char *node = http_request_param(req, "node");
	struct buf q = BUF_INIT;
	uint64_t since = 0, wait = 0, capacity = 0;
	if (http_request_query(req, "since", &q))
		sv_to_u64(sv_make(q.data, q.len), UINT64_MAX, &since);
	if (http_request_query(req, "wait_ms", &q))
		sv_to_u64(sv_make(q.data, q.len), MAX_POLL_MS, &wait);
	if (http_request_query(req, "capacity", &q))
		sv_to_u64(sv_make(q.data, q.len), INT64_MAX, &capacity);
	struct buf criu = BUF_INIT;
	bool has_criu = http_request_query(req, "criu", &criu);
	if (!http_request_query(req, "address", &q))
		buf_adds(&q, "local");
	/* "local" or where other hosts reach the node's proxy (--proxy-advertise) */
	if (strcmp(buf_cstr(&q), "local") != 0 && !hutchd_advertise_valid(buf_cstr(&q))) {
		http_respond_error(req, 400, "INVALID_REQUEST",
		                   "address must be \"local\" or IPV4:PORT (port 1-65535)");
		buf_release(&q);
		buf_release(&criu);
		return;
	}
	bool fresh;
	executor_seen(api, node, buf_cstr(&q), (int64_t)capacity, has_criu ? buf_cstr(&criu) : NULL,
	              &fresh);
	buf_release(&q);
	buf_release(&criu);
	if (fresh)
		api_sandbox_sweep(api); /* place sandboxes that were waiting for an executor */
	struct poll_state *ps = xcalloc(1, sizeof(*ps));
	ps->api = api;
	snprintf(ps->node, sizeof(ps->node), "%s", node);
	/* since != version also covers an api restart (versions start from the clock) */
	if (since != api->version)
		wait = 0;
	api_wait_for_version(api, req, since, wait, assignments_answer, ps);
}

/* ---- reports ---- */

struct report {
	const char *id;
	const char *status;
	const char *outcome;
	const char *error;
	const char *pending_reason;
	const char *agent_socket;
	const char *ip;
	bool destroyed;
};

static void set_error_details(struct sandbox_rec *r, const char *msg)
{
	if (!msg) {
		rec_set(&r->error_details, NULL);
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "message", json_string(msg));
	char *s = json_dumps(o, JSON_COMPACT);
	rec_set(&r->error_details, s);
	free(s);
	json_decref(o);
}

/* Applies one report; returns true when the record changed. Stale or contradictory reports
 * (a sandbox the user already terminated reporting "running") are ignored. */
static bool apply_report(struct api *api, struct sandbox_rec *r, const struct report *rp)
{
	const char *st = r->status;
	bool live = strcmp(st, "terminated") != 0;
	if (rp->destroyed) {
		if (live) {
			rec_set(&r->status, "terminated");
			rec_set(&r->desired, "terminated");
			rec_set(&r->outcome,
			        rp->outcome ? rp->outcome : "Failure(ExecutorRemoved)");
			set_error_details(r, rp->error);
			r->terminated_at = time_now_ms();
		}
		rec_set(&r->agent_socket, NULL);
		rec_set(&r->ip, NULL);
		return true;
	}
	if (!rp->status || !live)
		return false;
	if (strcmp(rp->status, "running") == 0 && strcmp(st, "snapshotting") == 0 && r->snapshot_op)
		return false; /* the snapshot's own report ends "snapshotting" */
	if (strcmp(rp->status, "running") == 0 && strcmp(r->desired, "running") == 0) {
		if (strcmp(st, "suspended") == 0 || strcmp(st, "suspending") == 0)
			r->last_activity_at = time_now_ms();
		rec_set(&r->status, "running");
		rec_set(&r->pending_reason, NULL);
		rec_set(&r->agent_socket, rp->agent_socket);
		rec_set(&r->ip, rp->ip);
		return true;
	}
	if (strcmp(rp->status, "suspended") == 0 && strcmp(r->desired, "suspended") == 0) {
		rec_set(&r->status, "suspended");
		return true;
	}
	if (strcmp(rp->status, "terminated") == 0) {
		rec_set(&r->status, "terminated");
		rec_set(&r->desired, "terminated");
		rec_set(&r->pending_reason, NULL);
		rec_set(&r->outcome, rp->outcome ? rp->outcome : "Failure(Unknown)");
		set_error_details(r, rp->error);
		r->terminated_at = time_now_ms();
		return true;
	}
	if (strcmp(rp->status, "pending") == 0 && strcmp(st, "pending") == 0 &&
	    rp->pending_reason) {
		rec_set(&r->pending_reason, rp->pending_reason);
		return true;
	}
	return false;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void report_one(struct api *api, const char *node, json_t *item)
{
	struct report rp = {
	        .id = jstr(item, "id"),
	        .status = jstr(item, "status"),
	        .outcome = jstr(item, "outcome"),
	        .error = jstr(item, "error"),
	        .pending_reason = jstr(item, "pending_reason"),
	        .agent_socket = jstr(item, "agent_socket"),
	        .ip = jstr(item, "ip"),
	        .destroyed = json_is_true(json_object_get(item, "destroyed")),
	};
	struct sandbox_rec r = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (!rp.id || store_sandbox_get_id(api->store, rp.id, &r, &err) < 0)
		return;
	json_t *netres = json_object_get(item, "network_result");
	if (r.executor_id && strcmp(r.executor_id, node) == 0 && json_is_object(netres))
		api_network_report(api, &r, netres);
	json_t *snap = json_object_get(item, "snapshot");
	bool snap_changed = false;
	if (r.executor_id && strcmp(r.executor_id, node) == 0 && json_is_object(snap)) {
		api_snapshot_report(api, &r, snap);
		snap_changed = true;
	}
	if (r.executor_id && strcmp(r.executor_id, node) == 0 &&
	    (apply_report(api, &r, &rp) || snap_changed)) {
		bool ended = strcmp(r.status, "terminated") == 0 && !rp.destroyed;
		r.updated_at = time_now_ms();
		if (store_sandbox_update(api->store, &r, &err) < 0)
			log_warn("report for %s: %s", r.id, err.msg);
		else if (ended)
			log_info("sandbox %s ended: %s", r.id, r.outcome);
		api_sandbox_changed(api, r.id);
		if (ended)
			api_desired_changed(api);
	}
	sandbox_rec_release(&r);
}

static void report_with_body(struct http_request *req, void *unused)
{
	struct api *api = req->data;
	req->data = NULL;
	json_t *o = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
	json_t *arr = json_object_get(o, "sandboxes");
	if (!json_is_array(arr)) {
		json_decref(o);
		http_respond_error(req, 400, "INVALID_JSON", "expected {\"sandboxes\": [...]}");
		return;
	}
	const char *node = http_request_param(req, "node");
	size_t i;
	json_t *item;
	/* statuses are observations the executor reports again after any restart: they need not
	 * wait for the disk; results (a snapshot's outcome) and deletions must */
	bool observations_only = json_array_size(json_object_get(o, "snapshots_deleted")) == 0;
	json_array_foreach(arr, i, item) if (json_object_get(item, "snapshot")) observations_only =
	        false;
	store_relax(api->store, observations_only);
	json_array_foreach(arr, i, item) report_one(api, node, item);
	store_relax(api->store, false);
	json_array_foreach(json_object_get(o, "snapshots_deleted"), i, item)
	{
		if (json_is_string(item))
			store_snapshot_remove(api->store, json_string_value(item), node, NULL);
	}
	json_decref(o);
	http_respond(req, 204, NULL, NULL, 0);
}

static void report_done(struct http_request *req)
{
	report_with_body(req, NULL);
}

void api_internal_report(struct http_request *req, struct api_ctx *ctx)
{
	req->data = ctx->api;
	http_request_read_body(req, 16 * 1024 * 1024, report_done);
}

/* ---- proxy calls ---- */

static void activity_done(struct http_request *req)
{
	struct api *api = req->data;
	req->data = NULL;
	json_t *o = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
	json_t *ids = json_object_get(o, "sandbox_ids");
	int64_t now = time_now_ms();
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		if (json_is_string(id))
			store_sandbox_touch(api->store, json_string_value(id), now, NULL);
	}
	json_decref(o);
	http_respond(req, 204, NULL, NULL, 0);
}

void api_internal_activity(struct http_request *req, struct api_ctx *ctx)
{
	req->data = ctx->api;
	http_request_read_body(req, 4 * 1024 * 1024, activity_done);
}

void api_internal_wake(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	int rc = store_sandbox_get_id(ctx->api->store, http_request_param(req, "id"), &r, &err);
	if (rc == 0 && r.name &&
	    (strcmp(r.status, "suspended") == 0 || strcmp(r.status, "suspending") == 0) &&
	    strcmp(r.desired, "running") != 0)
		rc = api_sandbox_begin_resume(ctx->api, &r, &err);
	if (rc < 0)
		api_respond_err(req, &err);
	else
		api_respond_json(req, 202, api_sandbox_json(ctx->api, &r));
	sandbox_rec_release(&r);
}
