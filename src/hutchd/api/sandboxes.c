/* Sandbox endpoints and the sandbox state machine on the api side:
 *   create -> pending -> (executor) running -> suspending -> suspended -> running ...
 *   any live state -> terminated (delete, idle timeout of an ephemeral sandbox, failures)
 * A request the current state does not allow answers 409 naming the state. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "net/net.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

/* ---- body reading with a context that outlives the handler call ---- */

struct body_ctx {
	struct api_ctx ctx;
	void (*fn)(struct http_request *req, struct api_ctx *ctx);
};

static void body_abort(struct http_request *req)
{
	free(req->data);
	req->data = NULL;
}

static void body_done(struct http_request *req)
{
	struct body_ctx *b = req->data;
	req->data = NULL;
	req->on_abort = NULL;
	b->fn(req, &b->ctx);
	free(b);
}

void api_read_body(struct http_request *req, struct api_ctx *ctx,
                   void (*fn)(struct http_request *req, struct api_ctx *ctx))
{
	struct body_ctx *b = xcalloc(1, sizeof(*b));
	b->ctx = *ctx;
	b->fn = fn;
	req->data = b;
	req->on_abort = body_abort;
	http_request_read_body(req, (size_t)ctx->api->cfg->max_body_bytes, body_done);
}

/* ---- helpers ---- */

static int load(struct api_ctx *ctx, struct http_request *req, struct sandbox_rec *ret,
                struct hutch_error *err)
{
	return store_sandbox_get(ctx->api->store, ctx->ns, http_request_param(req, "id"), 0, ret,
	                         err);
}

static int conflict(struct hutch_error *err, const struct sandbox_rec *r, const char *what)
{
	return hutch_error_api(err, 409, "INVALID_STATE", "cannot %s sandbox %s: it is %s", what,
	                       r->id, r->status);
}

static int save(struct api *api, struct sandbox_rec *r, struct hutch_error *err)
{
	r->updated_at = time_now_ms();
	return store_sandbox_update(api->store, r, err);
}

static bool status_is(const struct sandbox_rec *r, const char *s)
{
	return strcmp(r->status, s) == 0;
}

/* ---- create ---- */

static void fill_new(struct api_ctx *ctx, struct create_req *c, struct sandbox_rec *r)
{
	char id[HUTCH_ID_LEN + 1];
	int64_t now = time_now_ms();
	id_generate(id);
	rec_set(&r->id, id);
	rec_set(&r->ns, ctx->ns);
	r->name = TAKE_PTR(c->name);
	r->image = TAKE_PTR(c->image);
	r->cpus = c->cpus;
	r->memory_mb = c->memory_mb;
	r->disk_mb = c->disk_mb;
	r->timeout_secs = c->timeout_secs;
	r->entrypoint = TAKE_PTR(c->entrypoint);
	r->network = TAKE_PTR(c->network);
	r->allow_unauth = c->allow_unauth;
	r->exposed_ports = TAKE_PTR(c->exposed_ports);
	r->snapshot_id = TAKE_PTR(c->snapshot_id);
	r->template_id = TAKE_PTR(c->template_id);
	r->secret_names = TAKE_PTR(c->secret_names);
	rec_set(&r->status, "pending");
	rec_set(&r->desired, "running");
	r->created_at = r->updated_at = r->last_activity_at = now;
	r->generation = 1;
	struct api_executor *e = api_executor_pick(ctx->api);
	rec_set(&r->executor_id, e ? e->id : NULL);
	rec_set(&r->pending_reason, e ? "scheduling" : "no_executors_available");
}

int api_ns_room(struct api *api, const char *ns, int64_t want, struct hutch_error *err)
{
	int64_t live = 0;
	int rc = store_sandbox_count_live(api->store, ns, &live, err);
	if (rc == 0 && live + want > api->cfg->max_sandboxes_per_ns)
		rc = hutch_error_api(
		        err, 429, "SANDBOX_LIMIT_REACHED",
		        "namespace %s has %lld live sandboxes; %lld more would pass the "
		        "limit of %lld",
		        ns, (long long)live, (long long)want,
		        (long long)api->cfg->max_sandboxes_per_ns);
	return rc;
}

/* How long a create blocks: the client's patience minus a margin, else the server default. */
uint64_t api_request_bound_ms(struct api *api, struct http_request *req)
{
	struct buf q = BUF_INIT;
	bool nowait = http_request_query(req, "wait", &q) && strcmp(buf_cstr(&q), "false") == 0;
	buf_release(&q);
	if (nowait)
		return 0;
	struct sv h = http_request_header(req, "x-tensorlake-request-timeout-ms");
	uint64_t ms;
	if (h.p && sv_to_u64(sv_trim(h), 24ull * 3600 * 1000, &ms) == 0 && ms > 0)
		return ms > 500 ? ms - 250 : ms / 2;
	return (uint64_t)api->cfg->create_wait_ms;
}

/* Places a validated create (c is released). */
static void create_finish(struct http_request *req, struct api_ctx *ctx, struct create_req *c)
{
	struct api *api = ctx->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	int rc = 0;
	fill_new(ctx, c, &r);
	if (r.snapshot_id) {
		c->snapshot_id = r.snapshot_id;
		rc = api_snapshot_apply(api, ctx->ns, c, &api->limits, &r, &err);
		c->snapshot_id = NULL;
	}
	create_req_release(c);
	if (rc == 0)
		rc = store_sandbox_insert(api->store, &r, &err);
	if (rc < 0) {
		sandbox_rec_release(&r);
		api_respond_err(req, &err);
		return;
	}
	log_info("sandbox %s created in %s (executor %s)", r.id, r.ns,
	         r.executor_id ? r.executor_id : "none yet");
	api_desired_changed(api);
	uint64_t wait = api_request_bound_ms(api, req);
	if (wait == 0)
		api_respond_json(req, 200, api_create_response_json(api, &r, NULL));
	else
		api_wait_for_start(api, req, r.id, wait);
	sandbox_rec_release(&r);
}

/* A create whose policy names hosts: they must resolve (else 400, as a PATCH gets) before the
 * sandbox exists. Resolving blocks, so it runs in the thread pool. */
struct create_check {
	uv_work_t work;
	struct http_request *req; /* NULL once the client went away */
	struct api_ctx ctx;
	struct create_req c;
	struct net_config net;
	struct hutch_error err;
	int rc;
};

static void check_abort(struct http_request *req)
{
	struct create_check *k = req->data;
	k->req = NULL;
}

static void check_run(uv_work_t *w)
{
	struct create_check *k = w->data;
	k->rc = net_policy_check(&k->net, k->c.network, &k->err);
	if (k->rc < 0 && hutch_error_http_status(&k->err) == 400)
		snprintf(k->err.kind, sizeof(k->err.kind), "INVALID_NETWORK_POLICY");
}

static void check_done(uv_work_t *w, int status)
{
	struct create_check *k = w->data;
	struct http_request *req = k->req;
	if (req) {
		req->on_abort = NULL;
		req->data = NULL;
		if (k->rc < 0)
			api_respond_err(req, &k->err);
		else
			create_finish(req, &k->ctx, &k->c);
	}
	create_req_release(&k->c);
	free(k);
}

/* True when a normalised policy has an allow_out or deny_out entry that is not an address. */
static bool policy_names_hosts(const char *network)
{
	json_t *o = network ? json_loads(network, 0, NULL) : NULL;
	bool names = false;
	const char *lists[] = {"allow_out", "deny_out"};
	for (size_t l = 0; l < ARRAY_SIZE(lists) && !names; l++) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(o, lists[l]), i, v)
		{
			const char *s = json_string_value(v);
			for (; s && *s && !names; s++)
				names = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
		}
	}
	json_decref(o);
	return names;
}

static void create_with_body(struct http_request *req, struct api_ctx *ctx)
{
	struct api *api = ctx->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct create_req c = {0};
	int rc = create_req_parse(req->body.data, req->body.len, &api->limits, &c, &err);
	if (rc == 0)
		rc = api_ns_room(api, ctx->ns, 1, &err);
	if (rc < 0) {
		create_req_release(&c);
		api_respond_err(req, &err);
		return;
	}
	if (!policy_names_hosts(c.network)) {
		create_finish(req, ctx, &c);
		return;
	}
	struct create_check *k = xcalloc(1, sizeof(*k));
	k->req = req;
	k->ctx = *ctx;
	k->c = c;
	k->net = (struct net_config){.dns_upstreams = (const char *const *)api->cfg->dns_list};
	k->err = (struct hutch_error)HUTCH_ERROR_INIT;
	k->work.data = k;
	req->data = k;
	req->on_abort = check_abort;
	uv_queue_work(api->loop, &k->work, check_run, check_done);
}

void api_sandbox_create(struct http_request *req, struct api_ctx *ctx)
{
	api_read_body(req, ctx, create_with_body);
}

/* ---- list ---- */

static int parse_page(struct http_request *req, struct sandbox_page *pg, char *cid, size_t cidsz,
                      struct hutch_error *err)
{
	struct buf q = BUF_INIT;
	int rc = 0;
	uint64_t limit = 100;
	if (http_request_query(req, "limit", &q) &&
	    (sv_to_u64(sv_make(q.data, q.len), 1000, &limit) < 0 || limit == 0))
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT", "limit must be 1..1000");
	pg->limit = (int64_t)limit;
	if (rc == 0 && http_request_query(req, "direction", &q)) {
		if (strcmp(buf_cstr(&q), "backward") == 0)
			pg->backward = true;
		else if (strcmp(buf_cstr(&q), "forward") != 0)
			rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
			                     "direction must be forward or backward");
	}
	if (rc == 0 && http_request_query_has(req, "cursor") &&
	    !http_request_query(req, "cursor", &q))
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT", "cursor is not valid");
	if (rc == 0 && http_request_query(req, "cursor", &q) && q.len) {
		if (store_cursor_decode(buf_cstr(&q), &pg->cursor_created_at, cid, cidsz) < 0)
			rc = hutch_error_api(err, 400, "INVALID_ARGUMENT", "cursor is not valid");
		pg->has_cursor = true;
		pg->cursor_id = cid;
	}
	buf_release(&q);
	return rc;
}

static bool status_known(const char *s)
{
	static const char *const all[] = {"pending",    "running",   "snapshotting",
	                                  "suspending", "suspended", "terminated"};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (strcmp(s, all[i]) == 0)
			return true;
	return false;
}

static json_t *cursor_json(const struct sandbox_rec *r)
{
	struct buf b = BUF_INIT;
	store_cursor_encode(r->created_at, r->id, &b);
	json_t *j = json_string(buf_cstr(&b));
	buf_release(&b);
	return j;
}

static void list_common(struct http_request *req, struct api_ctx *ctx, bool archived)
{
	struct api *api = ctx->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_page pg = {.ns = ctx->ns, .archived = archived};
	char cid[32];
	struct buf status = BUF_INIT;

	int rc = parse_page(req, &pg, cid, sizeof(cid), &err);
	if (rc == 0 && !archived && http_request_query(req, "status", &status) && status.len) {
		if (!status_known(buf_cstr(&status)))
			rc = hutch_error_api(&err, 400, "INVALID_ARGUMENT", "unknown status '%s'",
			                     buf_cstr(&status));
		pg.status = buf_cstr(&status);
	}
	if (rc == 0)
		rc = store_sandbox_list(api->store, &pg, &err);
	if (rc < 0) {
		buf_release(&status);
		api_respond_err(req, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < pg.n; i++)
		json_array_append_new(arr, api_sandbox_json(api, &pg.items[i]));
	bool more_older = pg.backward ? pg.has_cursor : pg.has_more;
	bool more_newer = pg.backward ? pg.has_more : pg.has_cursor;
	json_t *o = json_object();
	json_object_set_new(o, "sandboxes", arr);
	json_object_set_new(o, "prev_cursor",
	                    pg.n && more_newer ? cursor_json(&pg.items[0]) : json_null());
	json_object_set_new(o, "next_cursor",
	                    pg.n && more_older ? cursor_json(&pg.items[pg.n - 1]) : json_null());
	store_sandbox_page_release(&pg);
	buf_release(&status);
	api_respond_json(req, 200, o);
}

void api_sandbox_list(struct http_request *req, struct api_ctx *ctx)
{
	list_common(req, ctx, false);
}

void api_sandbox_list_archived(struct http_request *req, struct api_ctx *ctx)
{
	list_common(req, ctx, true);
}

/* ---- get ---- */

static void get_common(struct http_request *req, struct api_ctx *ctx, int archived)
{
	struct sandbox_rec r = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (store_sandbox_get(ctx->api->store, ctx->ns, http_request_param(req, "id"), archived, &r,
	                      &err) < 0) {
		api_respond_err(req, &err);
		return;
	}
	api_respond_json(req, 200, api_sandbox_json(ctx->api, &r));
	sandbox_rec_release(&r);
}

void api_sandbox_get(struct http_request *req, struct api_ctx *ctx)
{
	get_common(req, ctx, 0);
}

void api_sandbox_get_archived(struct http_request *req, struct api_ctx *ctx)
{
	get_common(req, ctx, 1);
}

static void refuse_feature(struct http_request *req, struct api_ctx *ctx, int status,
                           const char *code, const char *msg)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	if (store_sandbox_get(ctx->api->store, ctx->ns, http_request_param(req, "id"), 0, &r,
	                      &err) == 0)
		hutch_error_api(&err, status, code, "%s", msg);
	api_respond_err(req, &err);
	sandbox_rec_release(&r);
}

void api_sandbox_logs(struct http_request *req, struct api_ctx *ctx)
{
	refuse_feature(req, ctx, 501, "LOGS_UNAVAILABLE",
	               "persisted logs are not supported by this server; read a process's output "
	               "through the sandbox (GET /api/v1/processes/{pid}/output)");
}

void api_sandbox_file_systems(struct http_request *req, struct api_ctx *ctx)
{
	refuse_feature(req, ctx, 400, "FILE_SYSTEMS_UNAVAILABLE",
	               "file systems are not supported by this server");
}

/* ---- update ---- */

static int apply_update(struct api *api, struct sandbox_rec *r, struct update_req *u,
                        bool *ret_desired_changed, struct hutch_error *err)
{
	if (status_is(r, "terminated"))
		return conflict(err, r, "update");
	if (u->has_name)
		rec_set(&r->name, u->name);
	if (u->has_allow_unauth)
		r->allow_unauth = u->allow_unauth;
	if (u->has_exposed_ports)
		rec_set(&r->exposed_ports, u->exposed_ports);
	*ret_desired_changed = false;
	if (u->has_network && api_network_needs_executor(r)) {
		/* the executor applies it and reports; the PATCH waits for that */
		rec_set(&r->network_pending, u->network ? u->network : "null");
		r->generation++;
		*ret_desired_changed = true;
	} else if (u->has_network) {
		rec_set(&r->network, u->network); /* applied when the sandbox starts */
		r->generation++;
		*ret_desired_changed = true;
	}
	return save(api, r, err);
}

static void update_with_body(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct update_req u = {0};
	struct sandbox_rec r = {0};
	bool changed = false;
	int rc = update_req_parse(req->body.data, req->body.len, &u, &err);
	if (rc == 0)
		rc = load(ctx, req, &r, &err);
	if (rc == 0)
		rc = apply_update(ctx->api, &r, &u, &changed, &err);
	if (rc < 0)
		api_respond_err(req, &err);
	else if (r.network_pending)
		api_network_wait(ctx->api, req, r.id);
	else
		api_respond_json(req, 200, api_sandbox_json(ctx->api, &r));
	if (rc == 0 && changed)
		api_desired_changed(ctx->api);
	update_req_release(&u);
	sandbox_rec_release(&r);
}

void api_sandbox_update(struct http_request *req, struct api_ctx *ctx)
{
	api_read_body(req, ctx, update_with_body);
}

/* ---- state transitions ---- */

int api_sandbox_terminate(struct api *api, struct sandbox_rec *r, const char *outcome,
                          struct hutch_error *err)
{
	int64_t now = time_now_ms();
	rec_set(&r->status, "terminated");
	rec_set(&r->desired, "terminated");
	rec_set(&r->pending_reason, NULL);
	if (!r->outcome || strcmp(r->outcome, "Unknown") == 0)
		rec_set(&r->outcome, outcome);
	r->terminated_at = now;
	r->generation++;
	int rc = save(api, r, err);
	if (rc == 0) {
		log_info("sandbox %s terminated: %s", r->id, r->outcome);
		api_desired_changed(api);
		api_sandbox_changed(api, r->id);
	}
	return rc;
}

int api_sandbox_begin_suspend(struct api *api, struct sandbox_rec *r, struct hutch_error *err)
{
	r->suspend_to_disk = false; /* the executor's --suspend-to-disk-secs decides */
	rec_set(&r->status, "suspending");
	rec_set(&r->desired, "suspended");
	r->generation++;
	int rc = save(api, r, err);
	if (rc == 0)
		api_desired_changed(api);
	return rc;
}

int api_sandbox_begin_resume(struct api *api, struct sandbox_rec *r, struct hutch_error *err)
{
	rec_set(&r->desired, "running");
	r->last_activity_at = time_now_ms();
	r->generation++;
	int rc = save(api, r, err);
	if (rc == 0)
		api_desired_changed(api);
	return rc;
}

void api_sandbox_delete(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	int rc = load(ctx, req, &r, &err);
	if (rc == -ENOENT) /* already archived counts as terminated */
		rc = store_sandbox_get(ctx->api->store, ctx->ns, http_request_param(req, "id"), 1,
		                       &r, &err);
	if (rc == 0 && !status_is(&r, "terminated"))
		rc = api_sandbox_terminate(ctx->api, &r, "Success(UserTerminated)", &err);
	if (rc < 0)
		api_respond_err(req, &err);
	else
		http_respond(req, 200, NULL, NULL, 0);
	sandbox_rec_release(&r);
}

/* ?to_disk=true (a hutch extension): checkpoint to disk at once instead of after
 * --suspend-to-disk-secs; needs CRIU on the sandbox's host. */
static int suspend_to_disk_wanted(struct api *api, struct http_request *req,
                                  const struct sandbox_rec *r, bool *ret, struct hutch_error *err)
{
	struct buf q = BUF_INIT;
	*ret = http_request_query(req, "to_disk", &q) &&
	       (strcmp(buf_cstr(&q), "true") == 0 || strcmp(buf_cstr(&q), "1") == 0);
	bool bad = http_request_query_has(req, "to_disk") && !*ret &&
	           strcmp(buf_cstr(&q), "false") != 0 && strcmp(buf_cstr(&q), "0") != 0;
	buf_release(&q);
	if (bad)
		return hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                       "to_disk must be true or false");
	struct api_executor *e = r->executor_id ? api_executor_find(api, r->executor_id) : NULL;
	if (*ret && !(e && e->criu))
		return hutch_error_api(
		        err, 400, "MEMORY_SNAPSHOT_UNAVAILABLE",
		        "suspending to disk needs CRIU 4.1 or newer on the sandbox's "
		        "host%s%s",
		        e && e->criu_reason[0] ? ": " : "", e ? e->criu_reason : "");
	return 0;
}

void api_sandbox_suspend(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	int status = 202;
	bool to_disk = false;
	int rc = load(ctx, req, &r, &err);
	if (rc == 0 && !r.name)
		rc = hutch_error_api(&err, 400, "EPHEMERAL_SANDBOX",
		                     "only named sandboxes can be suspended; give it a name with "
		                     "PATCH first");
	if (rc == 0)
		rc = suspend_to_disk_wanted(ctx->api, req, &r, &to_disk, &err);
	if (rc < 0)
		; /* answered below */
	else if (status_is(&r, "suspended") && !(to_disk && !r.suspend_to_disk))
		status = 200;
	else if (status_is(&r, "running"))
		rc = api_sandbox_begin_suspend(ctx->api, &r, &err);
	else if (!status_is(&r, "suspending") && !status_is(&r, "suspended"))
		rc = conflict(&err, &r, "suspend");
	if (rc == 0 && to_disk && !r.suspend_to_disk) {
		/* on its way down, or already frozen in memory: to disk now */
		r.suspend_to_disk = true;
		r.generation++;
		if ((rc = save(ctx->api, &r, &err)) == 0)
			api_desired_changed(ctx->api);
	}
	if (rc < 0)
		api_respond_err(req, &err);
	else
		api_respond_json(req, status, api_sandbox_json(ctx->api, &r));
	sandbox_rec_release(&r);
}

void api_sandbox_resume(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec r = {0};
	int status = 202;
	int rc = load(ctx, req, &r, &err);
	if (rc == 0 && !r.name)
		rc = hutch_error_api(&err, 400, "EPHEMERAL_SANDBOX",
		                     "only named sandboxes can be suspended and resumed");
	else if (rc == 0 && status_is(&r, "running"))
		status = 200;
	else if (rc == 0 && (status_is(&r, "suspended") || status_is(&r, "suspending")))
		rc = strcmp(r.desired, "running") == 0
		             ? 0
		             : api_sandbox_begin_resume(ctx->api, &r, &err);
	else if (rc == 0)
		rc = conflict(&err, &r, "resume");
	if (rc < 0)
		api_respond_err(req, &err);
	else
		api_respond_json(req, status, api_sandbox_json(ctx->api, &r));
	sandbox_rec_release(&r);
}

/* ---- the sweep ---- */

int api_collect_sandbox(struct sandbox_rec *r, void *data)
{
	struct api_sandbox_list *l = data;
	l->items = xreallocarray(l->items, l->n + 1, sizeof(*l->items));
	l->items[l->n++] = *r;
	memset(r, 0, sizeof(*r)); /* ownership moved */
	return 0;
}

static void sweep_one(struct api *api, struct sandbox_rec *r, int64_t now)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	int64_t last = r->last_activity_at > r->created_at ? r->last_activity_at : r->created_at;
	bool warm = r->pool_state && strcmp(r->pool_state, "warm") == 0;
	if (!warm && status_is(r, "running") && strcmp(r->desired, "running") == 0 &&
	    r->timeout_secs > 0 && now - last > r->timeout_secs * 1000) {
		int rc = r->name ? api_sandbox_begin_suspend(api, r, &err)
		                 : api_sandbox_terminate(api, r, "Success(Timeout)", &err);
		if (rc < 0)
			log_warn("timeout of sandbox %s: %s", r->id, err.msg);
		else
			log_info("sandbox %s idle for %llds: %s", r->id, (long long)r->timeout_secs,
			         r->name ? "suspending" : "terminated");
		return;
	}
	if (status_is(r, "pending") && !r->executor_id &&
	    !(r->pending_reason && strcmp(r->pending_reason, "pool_at_capacity") == 0)) {
		struct api_executor *e = api_executor_pick(api);
		if (!e)
			return;
		rec_set(&r->executor_id, e->id);
		rec_set(&r->pending_reason, "scheduling");
		if (save(api, r, &err) == 0)
			api_desired_changed(api);
	}
}

void api_sandbox_sweep(struct api *api)
{
	struct api_sandbox_list l = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	int64_t now = time_now_ms();
	if (store_sandbox_each_live(api->store, NULL, api_collect_sandbox, &l, &err) < 0)
		log_warn("sweep: %s", err.msg);
	for (size_t i = 0; i < l.n; i++) {
		sweep_one(api, &l.items[i], now);
		sandbox_rec_release(&l.items[i]);
	}
	free(l.items);
	api_pool_sweep(api);
	int64_t moved = 0;
	if (store_sandbox_archive(api->store, now - api->cfg->archive_after_secs * 1000, now,
	                          &moved, &err) < 0)
		log_warn("archiving: %s", err.msg);
}
