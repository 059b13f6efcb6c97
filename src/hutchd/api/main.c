/* The api role's entry point: store, first-start bootstrap, HTTP routing for the flat and the
 * /v1/namespaces/{ns} trees, authentication, the internal API and the periodic sweep. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth/auth.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/router.h"

typedef void (*api_handler)(struct http_request *req, struct api_ctx *ctx);

struct api_route {
	int method;
	const char *pattern;
	api_handler fn;
};

/* Public routes, matched after an optional /v1/namespaces/{ns} prefix is removed. */
static const struct api_route public_routes[] = {
        {HTTP_POST, "/sandboxes", api_sandbox_create},
        {HTTP_GET, "/sandboxes", api_sandbox_list},
        {HTTP_GET, "/sandboxes/{id}", api_sandbox_get},
        {HTTP_PATCH, "/sandboxes/{id}", api_sandbox_update},
        {HTTP_DELETE, "/sandboxes/{id}", api_sandbox_delete},
        {HTTP_POST, "/sandboxes/{id}/suspend", api_sandbox_suspend},
        {HTTP_POST, "/sandboxes/{id}/resume", api_sandbox_resume},
        {HTTP_POST, "/sandboxes/{id}/snapshot", api_snapshot_create},
        {HTTP_POST, "/sandboxes/{id}/copy", api_sandbox_copy},
        {HTTP_GET, "/sandboxes/{id}/logs", api_sandbox_logs},
        {HTTP_GET, "/sandboxes/{id}/processes", api_sandbox_logs},
        {HTTP_POST, "/sandboxes/{id}/file_systems", api_sandbox_file_systems},
        {HTTP_DELETE, "/sandboxes/{id}/file_systems", api_sandbox_file_systems},
        {HTTP_GET, "/snapshots", api_snapshot_list},
        {HTTP_GET, "/snapshots/{snapshot_id}", api_snapshot_get},
        {HTTP_DELETE, "/snapshots/{snapshot_id}", api_snapshot_delete},
        {HTTP_GET, "/archived-sandboxes", api_sandbox_list_archived},
        {HTTP_GET, "/archived-sandboxes/{id}", api_sandbox_get_archived},
        {HTTP_POST, "/sandbox-pools", api_pool_create},
        {HTTP_GET, "/sandbox-pools", api_pool_list},
        {HTTP_GET, "/sandbox-pools/{pool_id}", api_pool_get},
        {HTTP_PUT, "/sandbox-pools/{pool_id}", api_pool_replace},
        {HTTP_DELETE, "/sandbox-pools/{pool_id}", api_pool_delete},
        {HTTP_POST, "/sandbox-pools/{pool_id}/sandboxes", api_pool_claim},
        {HTTP_POST, "/api-keys", api_key_create},
        {HTTP_GET, "/api-keys", api_key_list},
        {HTTP_DELETE, "/api-keys/{key_id}", api_key_revoke},
        {HTTP_POST, "/platform/v1/keys/introspect", api_key_introspect},
};

/* Internal routes for executors and proxies (node token). */
static const struct api_route internal_routes[] = {
        {HTTP_GET, "/internal/v1/executors/{node}/assignments", api_internal_assignments},
        {HTTP_POST, "/internal/v1/executors/{node}/report", api_internal_report},
        {HTTP_POST, "/internal/v1/activity", api_internal_activity},
        {HTTP_POST, "/internal/v1/sandboxes/{id}/wake", api_internal_wake},
};

void api_respond_json(struct http_request *req, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	http_respond(req, status, "application/json", s, strlen(s));
	free(s);
}

void api_respond_err(struct http_request *req, const struct hutch_error *err)
{
	int status = hutch_error_http_status(err);
	if (status >= 500 && status != 501)
		log_warn("%.*s %.*s: %s", SV_FMT(sv_from(http_method_str(req->method))),
		         SV_FMT(req->path), err->msg);
	http_respond_error(req, status, hutch_error_kind(err), "%s", err->msg);
}

/* Splits /v1/namespaces/{ns}/rest into ns and rest. Returns 0 when the path has no prefix,
 * 1 when it had one, -1 when the prefix is malformed. */
static int strip_namespace(struct sv path, char *ret_ns, struct sv *ret_rest)
{
	static const struct sv prefix = SV("/v1/namespaces/");
	*ret_rest = path;
	if (!sv_starts_with(path, prefix))
		return 0;
	struct sv after = sv_make(path.p + prefix.len, path.len - prefix.len), ns, rest;
	if (!sv_split(after, '/', &ns, &rest))
		return -1;
	if (!auth_ns_valid(ns.p, ns.len))
		return -1;
	memcpy(ret_ns, ns.p, ns.len);
	ret_ns[ns.len] = '\0';
	*ret_rest = sv_make(rest.p - 1, rest.len + 1);
	return 1;
}

static bool internal_authorized(struct api *api, struct http_request *req)
{
	struct sv h = http_request_header(req, "authorization"), scheme, tok;
	if (!h.p || !sv_split(h, ' ', &scheme, &tok) || !sv_case_eq(scheme, SV("Bearer")))
		return false;
	tok = sv_trim(tok);
	size_t n = strlen(api->cfg->node_token);
	return tok.len == n && ct_equal(tok.p, api->cfg->node_token, n);
}

static const struct api_route *match(const struct api_route *routes, size_t n,
                                     struct http_request *req, struct sv path, int *ret_status)
{
	struct http_route table[32];
	for (size_t i = 0; i < n; i++)
		table[i] = (struct http_route){routes[i].method, routes[i].pattern, NULL};
	const struct http_route *r = http_router_match(table, n, req, path, ret_status);
	return r ? &routes[r - table] : NULL;
}

static void dispatch_internal(struct api *api, struct http_request *req)
{
	int status;
	const struct api_route *r =
	        match(internal_routes, ARRAY_SIZE(internal_routes), req, req->path, &status);
	if (!r) {
		http_respond_error(req, status, "NOT_FOUND", "no such internal route");
		return;
	}
	if (!internal_authorized(api, req)) {
		http_respond_error(req, 401, "UNAUTHENTICATED", "a valid node token is required");
		return;
	}
	struct api_ctx ctx = {.api = api};
	snprintf(ctx.ns, sizeof(ctx.ns), "default");
	r->fn(req, &ctx);
}

/* Resolves the caller's namespace from the key and the path prefix. */
static int authenticate(struct api *api, struct http_request *req, const char *path_ns,
                        struct api_ctx *ctx, struct hutch_error *err)
{
	if (strcmp(api->cfg->auth, "none") == 0) {
		snprintf(ctx->ns, sizeof(ctx->ns), "%s", path_ns ? path_ns : "default");
		ctx->admin = true;
		return 0;
	}
	struct sv h = http_request_header(req, "authorization");
	int r = auth_verify(api->store, h.p, h.len, ctx->ns, &ctx->admin, err);
	if (r < 0)
		return r;
	if (path_ns && strcmp(path_ns, ctx->ns) != 0) {
		if (!ctx->admin)
			return hutch_error_api(err, 403, "FORBIDDEN",
			                       "this API key belongs to namespace %s, not %s",
			                       ctx->ns, path_ns);
		snprintf(ctx->ns, sizeof(ctx->ns), "%s", path_ns);
	}
	return 0;
}

static void handle(struct http_request *req, void *data)
{
	struct api *api = data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	char path_ns[64];
	struct sv rest;

	if (sv_starts_with(req->path, SV("/internal/"))) {
		dispatch_internal(api, req);
		return;
	}
	if (req->method == HTTP_GET && sv_eq(req->path, SV("/health"))) {
		const char *ok = "{\"status\":\"ok\"}";
		http_respond(req, 200, "application/json", ok, strlen(ok));
		return;
	}
	int has_ns = strip_namespace(req->path, path_ns, &rest);
	if (has_ns < 0) {
		http_respond_error(req, 404, "NOT_FOUND", "malformed namespace in path");
		return;
	}
	int status;
	const struct api_route *r =
	        match(public_routes, ARRAY_SIZE(public_routes), req, rest, &status);
	if (!r) {
		http_respond_error(req, status, status == 405 ? "METHOD_NOT_ALLOWED" : "NOT_FOUND",
		                   "%s %.*s",
		                   status == 405 ? "method not allowed for" : "no route for",
		                   SV_FMT(req->path));
		return;
	}
	struct api_ctx ctx = {.api = api};
	if (authenticate(api, req, has_ns ? path_ns : NULL, &ctx, &err) < 0) {
		api_respond_err(req, &err);
		return;
	}
	r->fn(req, &ctx);
}

/* ---- notifications and executors ---- */

void api_sandbox_changed(struct api *api, const char *id)
{
	api_waiters_sandbox(api, id);
	api_copy_sandbox_changed(api, id);
}

void api_snapshot_changed(struct api *api, const char *snap_id)
{
	api_copy_snapshot_changed(api, snap_id);
}

void api_desired_changed(struct api *api)
{
	api->version++;
	api_waiters_version(api);
}

struct api_executor *api_executor_find(struct api *api, const char *id)
{
	for (struct api_executor *e = api->executors; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

struct api_executor *api_executor_pick(struct api *api)
{
	struct api_executor *best = NULL;
	int64_t best_n = INT64_MAX;
	uint64_t now = time_mono_ms();
	for (struct api_executor *e = api->executors; e; e = e->next) {
		if (now - e->last_seen_ms > 30000)
			continue;
		int64_t n = 0;
		store_sandbox_count_executor(api->store, e->id, &n, NULL);
		if (e->capacity > 0 && n >= e->capacity)
			continue;
		if (n < best_n) {
			best = e;
			best_n = n;
		}
	}
	return best;
}

/* ---- lifecycle ---- */

static void on_sweep(uv_timer_t *t)
{
	api_sandbox_sweep(t->data);
}

static void on_signal(uv_signal_t *s, int sig)
{
	struct api *api = s->data;
	log_info("signal %d: shutting down", sig);
	uv_signal_stop(&api->sigterm);
	uv_signal_stop(&api->sigint);
	uv_timer_stop(&api->sweep);
	api_waiters_close(api);
	api_copy_close(api);
	api_watch_stop(api);
	http_server_close(api->srv);
	uv_close((uv_handle_t *)&api->sweep, NULL);
	uv_close((uv_handle_t *)&api->sigterm, NULL);
	uv_close((uv_handle_t *)&api->sigint, NULL);
}

static int api_open(struct api *api, struct hutchd_config *cfg, struct hutch_error *err)
{
	api->cfg = cfg;
	apimodel_limits_defaults(&api->limits);
	api->limits.default_timeout_secs = cfg->default_timeout_secs;
	api->limits.max_timeout_secs = cfg->max_timeout_secs;
	int r = store_open(cfg->store_path, &api->store, err);
	if (r < 0)
		return r;
	return api_keys_bootstrap(api, err);
}

int api_main(struct hutchd_config *cfg)
{
	struct api api = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	if (api_open(&api, cfg, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	uv_loop_init(&loop);
	api.loop = &loop;
	struct http_server_config hc;
	http_server_config_defaults(&hc);
	api.srv = http_server_new(&loop, &hc, handle, &api);
	int r = http_server_listen(api.srv, cfg->listen, NULL);
	if (r < 0) {
		log_error("cannot listen on %s: %s", cfg->listen, uv_strerror(r));
		return 1;
	}
	api.version = (uint64_t)time_now_ms() * 1000; /* grows across restarts */
	uv_timer_init(&loop, &api.sweep);
	api.sweep.data = &api;
	uv_timer_start(&api.sweep, on_sweep, 1000, 1000);
	api_watch_start(&api);
	uv_signal_init(&loop, &api.sigterm);
	uv_signal_init(&loop, &api.sigint);
	api.sigterm.data = api.sigint.data = &api;
	uv_signal_start(&api.sigterm, on_signal, SIGTERM);
	uv_signal_start(&api.sigint, on_signal, SIGINT);
	struct buf store_name = BUF_INIT;
	store_spec_display(cfg->store_path, &store_name);
	log_info("api listening on %s (store %s, schema %d)", cfg->listen, buf_cstr(&store_name),
	         store_schema_version(api.store));
	buf_release(&store_name);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	for (struct api_executor *e = api.executors, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	store_close(api.store);
	return 0;
}
