/* Warm pools: /sandbox-pools create, list, get, replace, delete, and claim. The sweep keeps
 * warm_containers unclaimed sandboxes ready within max_containers and recycles warm ones made
 * under an older template. A claimed sandbox is an ordinary sandbox from then on; warm
 * sandboxes are never handed out twice, so every claim gets its own identity and disk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

/* ---- request parsing ---- */

static int bad(struct hutch_error *err, const char *msg)
{
	return hutch_error_api(err, 400, "INVALID_ARGUMENT", "%s", msg);
}

static int opt_count(json_t *o, const char *key, int64_t *ret, struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000)
		return hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                       "%s: must be an integer 0..10000", key);
	*ret = json_integer_value(v);
	return 0;
}

/* Reuses the sandbox create validation for the shared fields, then the pool's own. */
static int pool_parse(struct api *api, const char *body, size_t len, struct pool_rec *p,
                      struct hutch_error *err)
{
	json_t *o = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return hutch_error_api(err, 400, "INVALID_JSON", "the body must be a JSON object");
	}
	struct create_req c = {0};
	json_t *copy = json_deep_copy(o);
	/* fields a pool does not have are checked by the sandbox parser only if present */
	json_object_del(copy, "max_containers");
	json_object_del(copy, "warm_containers");
	json_object_del(copy, "min_containers");
	json_object_del(copy, "id");
	json_object_del(copy, "pool_id");
	char *s = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	int rc = create_req_parse(s, strlen(s), &api->limits, &c, err);
	free(s);
	p->max_containers = -1;
	if (rc == 0 && c.name)
		rc = bad(err, "name: pools have no sandbox name");
	if (rc == 0)
		rc = opt_count(o, "max_containers", &p->max_containers, err);
	if (rc == 0)
		rc = opt_count(o, "warm_containers", &p->warm_containers, err);
	if (rc == 0)
		rc = opt_count(o, "min_containers", &p->min_containers, err);
	if (rc == 0 && p->max_containers >= 0 && p->warm_containers > p->max_containers)
		rc = bad(err, "warm_containers must not exceed max_containers");
	if (rc == 0 && p->max_containers >= 0 && p->min_containers > p->max_containers)
		rc = bad(err, "min_containers must not exceed max_containers");
	if (rc == 0 && (p->warm_containers > api->cfg->max_sandboxes_per_ns ||
	                p->min_containers > api->cfg->max_sandboxes_per_ns))
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                     "warm_containers and min_containers must not exceed the "
		                     "namespace limit of %lld sandboxes",
		                     (long long)api->cfg->max_sandboxes_per_ns);
	if (rc == 0 && !json_object_get(o, "timeout_secs"))
		c.timeout_secs = 0; /* a pool's default is no timeout */
	if (rc == 0) {
		p->image = TAKE_PTR(c.image);
		p->cpus = c.cpus;
		p->memory_mb = c.memory_mb;
		p->disk_mb = c.disk_mb;
		p->timeout_secs = c.timeout_secs;
		p->entrypoint = TAKE_PTR(c.entrypoint);
		p->network = TAKE_PTR(c.network);
		p->allow_unauth = c.allow_unauth;
		p->exposed_ports = TAKE_PTR(c.exposed_ports);
	}
	create_req_release(&c);
	json_decref(o);
	return rc;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* ---- rendering ---- */

static json_t *text_json(const char *t)
{
	json_t *v = t ? json_loads(t, 0, NULL) : NULL;
	return v ? v : json_null();
}

static int add_container(struct sandbox_rec *r, void *data)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	bool warm = r->pool_state && strcmp(r->pool_state, "warm") == 0;
	json_object_set_new(o, "state", json_string(warm ? "Idle" : "Running"));
	json_object_set_new(o, "sandbox_id", warm ? json_null() : json_string(r->id));
	json_object_set_new(o, "executor_id", json_string(r->executor_id ? r->executor_id : ""));
	json_object_set_new(o, "status", json_string(r->status));
	json_array_append_new(data, o);
	return 0;
}

static json_t *pool_json(struct api *api, const struct pool_rec *p, bool containers)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(p->id));
	json_object_set_new(o, "namespace", json_string(p->ns));
	json_object_set_new(o, "image", json_string(p->image ? p->image : "ubuntu-minimal"));
	json_t *res = json_object();
	json_object_set_new(res, "cpus", json_real(p->cpus));
	json_object_set_new(res, "memory_mb", json_integer(p->memory_mb));
	json_object_set_new(res, "ephemeral_disk_mb", json_integer(p->disk_mb));
	json_object_set_new(res, "disk_mb", json_integer(p->disk_mb));
	json_object_set_new(o, "resources", res);
	json_object_set_new(o, "timeout_secs", json_integer(p->timeout_secs));
	json_object_set_new(o, "entrypoint", text_json(p->entrypoint));
	json_object_set_new(o, "max_containers",
	                    p->max_containers >= 0 ? json_integer(p->max_containers) : json_null());
	json_object_set_new(o, "warm_containers", json_integer(p->warm_containers));
	json_object_set_new(o, "min_containers", json_integer(p->min_containers));
	json_object_set_new(o, "network", text_json(p->network));
	json_object_set_new(o, "network_policy", text_json(p->network));
	json_object_set_new(o, "allow_unauthenticated_access", json_boolean(p->allow_unauth));
	json_t *ports = text_json(p->exposed_ports);
	json_object_set_new(o, "exposed_ports", json_is_null(ports) ? json_array() : ports);
	json_object_set_new(o, "created_at", json_integer(p->created_at));
	json_object_set_new(o, "updated_at", json_integer(p->updated_at));
	if (containers) {
		json_t *arr = json_array();
		store_pool_sandboxes(api->store, p->ns, p->id, add_container, arr, NULL);
		json_object_set_new(o, "containers", arr);
	}
	return o;
}

/* ---- endpoints ---- */

struct pool_body {
	struct api_ctx ctx;
	void (*fn)(struct http_request *req, struct api_ctx *ctx);
};

static void pb_abort(struct http_request *req)
{
	free(req->data);
}

static void pb_done(struct http_request *req)
{
	struct pool_body *pb = req->data;
	req->data = NULL;
	req->on_abort = NULL;
	pb->fn(req, &pb->ctx);
	free(pb);
}

static void with_body(struct http_request *req, struct api_ctx *ctx,
                      void (*fn)(struct http_request *, struct api_ctx *))
{
	struct pool_body *pb = xcalloc(1, sizeof(*pb));
	pb->ctx = *ctx;
	pb->fn = fn;
	req->data = pb;
	req->on_abort = pb_abort;
	http_request_read_body(req, (size_t)ctx->api->cfg->max_body_bytes, pb_done);
}

static bool pool_id_valid(const char *s)
{
	return apimodel_name_valid(s, strlen(s), NULL) || id_is_valid(s, strlen(s));
}

static void create_done(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct pool_rec p = {0};
	int rc = pool_parse(ctx->api, req->body.data, req->body.len, &p, &err);
	json_t *o = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
	const char *want = json_string_value(json_object_get(o, "id"));
	if (!want)
		want = json_string_value(json_object_get(o, "pool_id"));
	char id[HUTCH_ID_LEN + 1];
	id_generate(id);
	if (rc == 0 && want && !pool_id_valid(want))
		rc = bad(&err, "id: lowercase letters, digits and '-', starting with a letter");
	if (rc == 0) {
		p.id = xstrdup(want ? want : id);
		p.ns = xstrdup(ctx->ns);
		p.created_at = p.updated_at = time_now_ms();
		p.generation = 1;
		rc = store_pool_insert(ctx->api->store, &p, &err);
	}
	json_decref(o);
	if (rc < 0) {
		api_respond_err(req, &err);
	} else {
		json_t *out = json_object();
		json_object_set_new(out, "pool_id", json_string(p.id));
		json_object_set_new(out, "namespace", json_string(p.ns));
		api_respond_json(req, 200, out);
		log_info("pool %s created in %s", p.id, p.ns);
		api_pool_sweep(ctx->api);
	}
	pool_rec_release(&p);
}

void api_pool_create(struct http_request *req, struct api_ctx *ctx)
{
	with_body(req, ctx, create_done);
}

static int add_pool(struct pool_rec *p, void *data)
{
	struct api_ctx *ctx = ((struct api_ctx **)data)[1];
	json_array_append_new(((json_t **)data)[0], pool_json(ctx->api, p, false));
	return 0;
}

void api_pool_list(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *arr = json_array();
	void *data[2] = {arr, ctx};
	if (store_pool_each(ctx->api->store, ctx->ns, add_pool, data, &err) < 0) {
		json_decref(arr);
		api_respond_err(req, &err);
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "pools", arr);
	api_respond_json(req, 200, o);
}

void api_pool_get(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct pool_rec p = {0};
	if (store_pool_get(ctx->api->store, ctx->ns, http_request_param(req, "pool_id"), &p, &err) <
	    0) {
		api_respond_err(req, &err);
		return;
	}
	api_respond_json(req, 200, pool_json(ctx->api, &p, true));
	pool_rec_release(&p);
}

static void replace_done(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct pool_rec old = {0}, p = {0};
	int rc = store_pool_get(ctx->api->store, ctx->ns, http_request_param(req, "pool_id"), &old,
	                        &err);
	if (rc == 0)
		rc = pool_parse(ctx->api, req->body.data, req->body.len, &p, &err);
	if (rc == 0) {
		/* warm sandboxes made from another template are recycled */
		bool changed = !same_str(p.image, old.image) || p.cpus != old.cpus ||
		               p.memory_mb != old.memory_mb || p.disk_mb != old.disk_mb ||
		               p.timeout_secs != old.timeout_secs ||
		               !same_str(p.entrypoint, old.entrypoint) ||
		               !same_str(p.network, old.network) ||
		               p.allow_unauth != old.allow_unauth ||
		               !same_str(p.exposed_ports, old.exposed_ports);
		p.id = xstrdup(old.id);
		p.ns = xstrdup(old.ns);
		p.created_at = old.created_at;
		p.updated_at = time_now_ms();
		p.generation = old.generation + (changed ? 1 : 0);
		rc = store_pool_update(ctx->api->store, &p, &err);
	}
	if (rc < 0) {
		api_respond_err(req, &err);
	} else {
		api_respond_json(req, 200, pool_json(ctx->api, &p, false));
		api_pool_sweep(ctx->api);
	}
	pool_rec_release(&old);
	pool_rec_release(&p);
}

void api_pool_replace(struct http_request *req, struct api_ctx *ctx)
{
	with_body(req, ctx, replace_done);
}

static int terminate_pool_sandbox(struct sandbox_rec *r, void *data)
{
	struct api *api = data;
	if (r->pool_state && strcmp(r->pool_state, "warm") == 0)
		api_sandbox_terminate(api, r, "Failure(PoolDeleted)", NULL);
	return 0;
}

void api_pool_delete(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct pool_rec p = {0};
	int64_t claimed = 0;
	int rc = store_pool_get(ctx->api->store, ctx->ns, http_request_param(req, "pool_id"), &p,
	                        &err);
	if (rc == 0)
		rc = store_pool_count(ctx->api->store, p.ns, p.id, "claimed", &claimed, &err);
	if (rc == 0 && claimed > 0)
		rc = hutch_error_api(&err, 409, "POOL_IN_USE",
		                     "pool %s has %lld claimed sandboxes still running", p.id,
		                     (long long)claimed);
	if (rc == 0) {
		/* collect first: terminating while the query walks would change its rows */
		struct api_sandbox_list l = {0};
		rc = store_pool_sandboxes(ctx->api->store, p.ns, p.id, api_collect_sandbox, &l,
		                          &err);
		for (size_t i = 0; i < l.n; i++) {
			terminate_pool_sandbox(&l.items[i], ctx->api);
			sandbox_rec_release(&l.items[i]);
		}
		free(l.items);
	}
	if (rc == 0)
		rc = store_pool_remove(ctx->api->store, p.ns, p.id, &err);
	if (rc < 0)
		api_respond_err(req, &err);
	else
		http_respond(req, 200, NULL, NULL, 0);
	pool_rec_release(&p);
}

/* ---- claim ---- */

static int first_warm(struct sandbox_rec *r, void *data)
{
	struct sandbox_rec *best = data;
	if (!r->pool_state || strcmp(r->pool_state, "warm") != 0)
		return 0;
	/* prefer a running one; among equals the oldest (the walk is oldest first) */
	bool running = strcmp(r->status, "running") == 0;
	if (best->id && (strcmp(best->status, "running") == 0 || !running))
		return 0;
	sandbox_rec_release(best);
	*best = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

/* Fills a new sandbox record from a pool's template. */
static void from_template(struct api *api, const struct pool_rec *p, const char *pool_state,
                          struct sandbox_rec *r)
{
	char id[HUTCH_ID_LEN + 1];
	int64_t now = time_now_ms();
	id_generate(id);
	rec_set(&r->id, id);
	rec_set(&r->ns, p->ns);
	rec_set(&r->image, p->image);
	r->cpus = p->cpus;
	r->memory_mb = p->memory_mb;
	r->disk_mb = p->disk_mb;
	r->timeout_secs = p->timeout_secs;
	rec_set(&r->entrypoint, p->entrypoint);
	rec_set(&r->network, p->network);
	r->allow_unauth = p->allow_unauth;
	rec_set(&r->exposed_ports, p->exposed_ports);
	rec_set(&r->pool_id, p->id);
	rec_set(&r->pool_state, pool_state);
	r->pool_generation = p->generation;
	rec_set(&r->status, "pending");
	rec_set(&r->desired, "running");
	r->created_at = r->updated_at = r->last_activity_at = now;
	r->generation = 1;
}

/* Places a pending pool sandbox if the pool has room; else marks it pool_at_capacity. */
static void pool_place(struct api *api, const struct pool_rec *p, struct sandbox_rec *r)
{
	int64_t live = 0;
	store_pool_count(api->store, p->ns, p->id, NULL, &live, NULL);
	/* placed ones only: claims waiting at capacity (r among them, perhaps) are not counted */
	bool room = p->max_containers < 0 || live < p->max_containers;
	struct api_executor *e = room ? api_executor_pick(api) : NULL;
	rec_set(&r->executor_id, e ? e->id : NULL);
	rec_set(&r->pending_reason, !room ? "pool_at_capacity"
	                            : e   ? "scheduling"
	                                  : "no_executors_available");
}

void api_pool_claim(struct http_request *req, struct api_ctx *ctx)
{
	struct api *api = ctx->api;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct pool_rec p = {0};
	struct sandbox_rec r = {0};
	int rc = store_pool_get(api->store, ctx->ns, http_request_param(req, "pool_id"), &p, &err);
	if (rc == 0)
		rc = store_pool_sandboxes(api->store, p.ns, p.id, first_warm, &r, &err);
	/* a warm sandbox is already counted; a new one needs room */
	if (rc == 0 && !r.id)
		rc = api_ns_room(api, ctx->ns, 1, &err);
	if (rc == 0 && r.id) {
		rec_set(&r.pool_state, "claimed");
		r.last_activity_at = time_now_ms();
		rc = store_sandbox_update(api->store, &r, &err);
	} else if (rc == 0) {
		from_template(api, &p, "claimed", &r);
		pool_place(api, &p, &r);
		rc = store_sandbox_insert(api->store, &r, &err);
		if (rc == 0)
			api_desired_changed(api);
	}
	if (rc < 0) {
		api_respond_err(req, &err);
	} else {
		log_info("pool %s: sandbox %s claimed", p.id, r.id);
		uint64_t wait = api_request_bound_ms(api, req);
		api_wait_for_start(api, req, r.id, wait);
		api_pool_sweep(api); /* top the warm set up again */
	}
	pool_rec_release(&p);
	sandbox_rec_release(&r);
}

/* ---- the sweep ---- */

static int sweep_pool(struct pool_rec *p, void *data)
{
	struct api *api = data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct api_sandbox_list l = {0};
	int64_t warm = 0;
	store_pool_sandboxes(api->store, p->ns, p->id, api_collect_sandbox, &l, &err);
	for (size_t i = 0; i < l.n; i++) {
		struct sandbox_rec *r = &l.items[i];
		bool is_warm = r->pool_state && strcmp(r->pool_state, "warm") == 0;
		if (is_warm && r->pool_generation < p->generation)
			api_sandbox_terminate(api, r, "Success(Unknown)", &err); /* recycled */
		else if (is_warm)
			warm++;
		else if (strcmp(r->status, "pending") == 0 && r->pending_reason &&
		         strcmp(r->pending_reason, "pool_at_capacity") == 0) {
			pool_place(api, p, r);
			if (strcmp(r->pending_reason, "pool_at_capacity") != 0 &&
			    store_sandbox_update(api->store, r, &err) == 0)
				api_desired_changed(api);
		}
		sandbox_rec_release(r);
	}
	free(l.items);
	int64_t live = 0;
	store_pool_count(api->store, p->ns, p->id, NULL, &live, NULL);
	int64_t want =
	        p->warm_containers > p->min_containers ? p->warm_containers : p->min_containers;
	for (; warm < want && (p->max_containers < 0 || live < p->max_containers); warm++, live++) {
		if (api_ns_room(api, p->ns, 1, NULL) < 0)
			break; /* the namespace is full: claims create on demand */
		struct sandbox_rec r = {0};
		from_template(api, p, "warm", &r);
		struct api_executor *e = api_executor_pick(api);
		rec_set(&r.executor_id, e ? e->id : NULL);
		rec_set(&r.pending_reason, e ? "scheduling" : "no_executors_available");
		if (store_sandbox_insert(api->store, &r, &err) == 0)
			api_desired_changed(api);
		sandbox_rec_release(&r);
	}
	return 0;
}

void api_pool_sweep(struct api *api)
{
	store_pool_each(api->store, NULL, sweep_pool, api, NULL);
}
