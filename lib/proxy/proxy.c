/* The proxy object and its request handler: route parsing, the caller's credentials, the sandbox
 * lookup, the authorization decision, the sandbox's state, placement, and then an exchange (see
 * exchange.c) that forwards the request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/xalloc.h"
#include "proxy/internal.h"
#include "proxy/policy.h"
#include "ws/ws.h"

void proxy_config_defaults(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->domain = "";
	cfg->api_url = "";
	cfg->node_token = "";
	cfg->node_id = "";
	cfg->connect_timeout_ms = 5000;
	cfg->first_byte_timeout_ms = 300000;
	cfg->wake_timeout_ms = 30000;
	cfg->wake_poll_ms = 50;
	cfg->activity_interval_ms = 1000;
	cfg->activity_max_ids = 10000;
	cfg->upstream_idle_ms = 20000;
	cfg->upstream_idle_max = 64;
	cfg->upstream_high_water = 1024 * 1024;
	http_server_config_defaults(&cfg->http);
}

/* ---- answers ---- */

static void ws_refused_written(uv_stream_t *s, int status, void *arg)
{
	uv_close((uv_handle_t *)s, http_stream_free);
}

static bool ws_refuse(struct http_request *req, const struct hutch_error *err)
{
	int status = hutch_error_http_status(err);
	struct sv key = sv_trim(http_request_header(req, "sec-websocket-key"));
	struct sv up = sv_trim(http_request_header(req, "upgrade"));
	if (!req->upgrade || !key.p || key.len != WS_KEY_LEN || !sv_case_eq(up, SV("websocket")) ||
	    (status != 502 && status != 503 && status != 504))
		return false;
	char accept[WS_ACCEPT_LEN + 1];
	ws_accept_key(key, accept);
	struct buf out = BUF_INIT, payload = BUF_INIT, left = BUF_INIT;
	buf_printf(&out,
	           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	           accept);
	ws_close_payload_build(&payload, WS_CLOSE_INTERNAL, err->msg);
	ws_frame_build(&out, WS_OP_CLOSE, true, payload.data, payload.len, NULL);
	uv_stream_t *s = http_conn_takeover(req, &left);
	if (s && http_stream_write(s, out.data, out.len, ws_refused_written, NULL) < 0)
		uv_close((uv_handle_t *)s, http_stream_free);
	buf_release(&out);
	buf_release(&payload);
	buf_release(&left);
	return true;
}

bool proxy_respond_error(struct http_request *req, const struct hutch_error *err)
{
	if (ws_refuse(req, err))
		return true;
	proxy_cors_headers(req);
	http_respond_error(req, hutch_error_http_status(err), hutch_error_kind(err), "%s",
	                   err->msg);
	return false;
}

void proxy_client_abort(struct http_request *req)
{
	struct buf left = BUF_INIT;
	uv_stream_t *s = http_conn_takeover(req, &left);
	buf_release(&left);
	if (s)
		uv_close((uv_handle_t *)s, http_stream_free);
}

/* ---- the caller and the sandbox ---- */

/* Who is calling: fills ns (empty when anonymous) and the credential class as far as it is known
 * before the lookup (OWNER means "valid key" until the sandbox's namespace is compared). */
static int proxy_caller(struct proxy *px, struct http_request *req, char ns[64],
                        enum proxy_cred *ret, struct hutch_error *err)
{
	ns[0] = '\0';
	if (px->cfg.auth_none) {
		snprintf(ns, 64, "default");
		*ret = PROXY_CRED_OWNER;
		return 0;
	}
	struct sv h = http_request_header(req, "authorization");
	if (!h.p) {
		*ret = PROXY_CRED_NONE;
		return 0;
	}
	int r = proxy_cache_key_get(&px->cache, h, ns);
	if (r == -ENOENT) {
		r = auth_verify(px->store, h.p, h.len, ns, NULL, err);
		if (r == -EACCES || (r < 0 && hutch_error_http_status(err) == 401))
			r = -EACCES;
		if (r == 0 || r == -EACCES)
			proxy_cache_key_put(&px->cache, h, r == 0 ? ns : NULL);
	}
	if (r == -EACCES) {
		ns[0] = '\0';
		*ret = PROXY_CRED_INVALID;
		return 0;
	}
	if (r < 0)
		return hutch_error_api(err, 503, "PROXY_ERROR", "checking the API key failed: %s",
		                       err->msg);
	*ret = PROXY_CRED_OWNER;
	return 0;
}

static int lookup_result(int r, bool *found, struct hutch_error *err)
{
	if (r == 0) {
		*found = true;
		return 0;
	}
	if (r == -ENOENT)
		return 0;
	return hutch_error_api(err, 503, "PROXY_ERROR", "reading the sandbox failed: %s", err->msg);
}

/* Finds the sandbox: an id anywhere; a name in the caller's namespace first, then (for public
 * ports) as a name unique across namespaces. */
static int proxy_lookup_store(struct proxy *px, const struct proxy_route *rt, const char *ns,
                              struct sandbox_rec *ret, bool *found, struct hutch_error *err)
{
	struct hutch_error e = HUTCH_ERROR_INIT;
	int r;
	*found = false;
	if (proxy_target_is_id(rt->target)) {
		r = lookup_result(store_sandbox_get_id(px->store, rt->target, ret, &e), found, err);
		if (*found && ret->archived_at) {
			sandbox_rec_release(ret);
			*found = false;
		}
		return r;
	}
	if (ns[0]) {
		r = lookup_result(store_sandbox_get(px->store, ns, rt->target, 0, ret, &e), found,
		                  err);
		if (r < 0 || *found)
			return r;
	}
	return lookup_result(store_sandbox_get_name_any(px->store, rt->target, ret, &e), found,
	                     err);
}

/* The sandbox a request names: a cache entry (valid until the next request validates the
 * cache), or own when the cache is off. */
struct proxy_found {
	const struct sandbox_rec *rec; /* NULL: not found */
	struct sandbox_rec own;
	bool own_set; /* own holds a record (to release) */
};

static int proxy_lookup(struct proxy *px, const struct proxy_route *rt, const char *ns,
                        struct proxy_found *f, struct hutch_error *err)
{
	bool found;
	if (proxy_cache_sandbox_get(&px->cache, rt->target, ns, &f->rec) == 0)
		return 0;
	int r = proxy_lookup_store(px, rt, ns, &f->own, &found, err);
	if (r < 0)
		return r;
	f->own_set = found;
	const struct sandbox_rec *c =
	        proxy_cache_sandbox_put(&px->cache, rt->target, ns, found ? &f->own : NULL);
	f->rec = !found ? NULL : c ? c : &f->own;
	return 0;
}

static int proxy_authorize_read(struct proxy *px, struct http_request *req,
                                const struct proxy_route *rt, struct proxy_found *f,
                                struct hutch_error *err)
{
	char ns[64];
	struct proxy_access a = {.port = rt->port};
	int r = proxy_caller(px, req, ns, &a.cred, err);
	if (r < 0)
		return r;
	/* the agent never answers anonymous callers, not even "not found" */
	if (rt->port == PROXY_AGENT_PORT &&
	    (a.cred == PROXY_CRED_NONE || a.cred == PROXY_CRED_INVALID))
		return proxy_policy_decide(&a, rt->target, err);
	r = proxy_lookup(px, rt, ns, f, err);
	if (r < 0)
		return r;
	a.found = f->rec != NULL;
	if (a.found) {
		if (a.cred == PROXY_CRED_OWNER && strcmp(f->rec->ns, ns) != 0)
			a.cred = PROXY_CRED_OTHER;
		a.exposed = proxy_ports_contains(f->rec->exposed_ports, rt->port);
		a.allow_unauth = f->rec->allow_unauth;
	}
	return proxy_policy_decide(&a, rt->target, err);
}

/* Authorizes the request; on success f->rec is the sandbox. The cache is validated against the
 * store's data version first; a lookup that reads a newer version than the one validated only
 * makes the next request empty the cache again, so nothing stale is ever served. */
static int proxy_authorize(struct proxy *px, struct http_request *req, const struct proxy_route *rt,
                           struct proxy_found *f, struct hutch_error *err)
{
	proxy_cache_validate(&px->cache, px->store, uv_now(px->loop));
	return proxy_authorize_read(px, req, rt, f, err);
}

/* Checks the state: returns 0 to forward now, 1 to wake first, or an error. */
static int proxy_state(const struct sandbox_rec *rec, struct hutch_error *err)
{
	if (strcmp(rec->status, "running") == 0)
		return 0;
	if (strcmp(rec->status, "suspended") == 0 || strcmp(rec->status, "suspending") == 0)
		return 1;
	return hutch_error_api(err, 503, "SANDBOX_NOT_RUNNING",
	                       "sandbox %s is not running (state: %s)", rec->id, rec->status);
}

struct executor_find {
	const char *id;
	char *address; /* malloc'd, or NULL */
};

static int executor_find_cb(struct executor_rec *e, void *data)
{
	struct executor_find *f = data;
	if (!f->address && strcmp(e->id, f->id) == 0)
		f->address = xstrdup(e->address ? e->address : "");
	return 0;
}

/* The pool key of the proxy of executor_id's node ("tcp:ADDR:PORT" from the executors table)
 * into t->forward_key; 502 when that node advertises no proxy ("local" or empty: reachable only
 * from its own host), 503 when the store cannot be read. */
static int proxy_remote_key(struct proxy *px, const struct sandbox_rec *rec, struct proxy_target *t,
                            struct hutch_error *err)
{
	struct hutch_error e = HUTCH_ERROR_INIT;
	struct executor_find f = {.id = rec->executor_id};
	if (store_executor_each(px->store, executor_find_cb, &f, &e) < 0) {
		free(f.address);
		return hutch_error_api(err, 503, "PROXY_ERROR", "reading the executors failed: %s",
		                       e.msg);
	}
	int r = 0;
	if (!f.address || !f.address[0] || strcmp(f.address, "local") == 0)
		r = hutch_error_api(
		        err, 502, "PROXY_ERROR",
		        "sandbox %s runs on node %s, which advertises no proxy for other "
		        "hosts (hutchd --proxy-advertise)",
		        rec->id, rec->executor_id);
	else if (snprintf(t->forward_key, sizeof(t->forward_key), "tcp:%s", f.address) >=
	         (int)sizeof(t->forward_key))
		r = hutch_error_api(err, 502, "PROXY_ERROR", "node %s: address too long",
		                    rec->executor_id);
	free(f.address);
	return r;
}

/* Sandboxes run on the node of their executor: one of this node (--node-id) or without an
 * executor is served here (returns 0); one of another node is forwarded to that node's proxy
 * (returns 1 with t->forward_key), unless the request was already forwarded once (hop, a loop
 * guard only: 502) or the node advertises no proxy (502). */
static int proxy_placement(struct proxy *px, const struct sandbox_rec *rec, bool hop,
                           struct proxy_target *t, struct hutch_error *err)
{
	if (!rec->executor_id || !rec->executor_id[0] || !px->cfg.node_id[0] ||
	    strcmp(rec->executor_id, px->cfg.node_id) == 0)
		return 0;
	if (hop)
		return hutch_error_api(
		        err, 502, "PROXY_ERROR",
		        "sandbox %s runs on node %s, not on this node (%s); a request "
		        "forwarded by another proxy is not forwarded again",
		        rec->id, rec->executor_id, px->cfg.node_id);
	int r = proxy_remote_key(px, rec, t, err);
	return r < 0 ? r : 1;
}

static void proxy_handle(struct http_request *req, void *data)
{
	struct proxy *px = data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proxy_route rt;
	struct proxy_found f = {0};
	struct proxy_target t = {0};
	int r;

	px->stats.requests++;
	if (proxy_cors_is_preflight(req)) {
		proxy_cors_preflight(req);
		return;
	}
	r = px->draining ? hutch_error_api(&err, 503, "PROXY_ERROR", "the proxy is shutting down")
	                 : proxy_route_parse(http_request_header(req, "host"),
	                                     http_request_header(req, "x-tensorlake-sandbox-id"),
	                                     http_request_header(req, "x-tensorlake-sandbox-port"),
	                                     px->cfg.domain, &rt, &err);
	if (r == 0)
		r = proxy_authorize(px, req, &rt, &f, &err);
	if (r == 0)
		r = proxy_state(f.rec, &err);
	if (r >= 0) {
		bool hop = http_request_header(req, PROXY_HOP_HEADER).p != NULL;
		int p = proxy_placement(px, f.rec, hop, &t, &err);
		if (p < 0)
			r = p;
		t.forward = p == 1;
	}
	if (r < 0) {
		proxy_respond_error(req,
		                    &err); /* may start the next request: f.rec is stale after */
		if (f.own_set)
			sandbox_rec_release(&f.own);
		return;
	}
	size_t idlen = strnlen(f.rec->id, sizeof(t.id) - 1);
	memcpy(t.id, f.rec->id, idlen);
	t.id[idlen] = '\0';
	t.port = rt.port;
	/* the node of the sandbox wakes it and counts its traffic when it gets the request */
	t.wake = r == 1 && !t.forward;
	/* cookies belong to the origin of a user port's own host name; elsewhere they would leak
	 * between sandboxes sharing the proxy's origin (a forwarded request keeps them: the next
	 * proxy decides) */
	t.keep_cookies =
	        t.forward || (rt.via == PROXY_VIA_DOMAIN_HOST && rt.port != PROXY_AGENT_PORT);
	if (!t.forward)
		proxy_activity_mark(px, t.id);
	proxy_exchange_start(px, req, f.rec, &t);
	if (f.own_set)
		sandbox_rec_release(&f.own);
}

/* ---- lifecycle ---- */

static void config_copy(struct proxy_config *dst, const struct proxy_config *src)
{
	*dst = *src;
	dst->domain = xstrdup(src->domain ? src->domain : "");
	dst->api_url = xstrdup(src->api_url ? src->api_url : "");
	dst->node_token = xstrdup(src->node_token ? src->node_token : "");
	dst->node_id = xstrdup(src->node_id ? src->node_id : "");
}

static void proxy_tick(uv_timer_t *t)
{
	struct proxy *px = t->data;
	proxy_wake_sweep(px);
	proxy_map_release(&px->marked, NULL);
}

/* One timer for every exchange's deadlines instead of a timer each: arming and stopping a timer
 * per request costs more than a scan of the requests in flight ten times a second. */
static void proxy_deadlines(uv_timer_t *t)
{
	struct proxy *px = t->data;
	proxy_exchange_sweep(px);
	if (px->draining && (px->nexchanges == 0 || uv_now(px->loop) >= px->drain_deadline))
		proxy_close(px);
}

int proxy_new(uv_loop_t *loop, const struct proxy_config *cfg, struct store *store,
              struct proxy **ret, struct hutch_error *err)
{
	if (!store)
		return hutch_error_set(err, -EINVAL, "the proxy needs a store");
	struct proxy *px = xcalloc(1, sizeof(*px));
	px->loop = loop;
	px->store = store;
	proxy_cache_init(&px->cache, cfg->store_path);
	config_copy(&px->cfg, cfg);
	if (px->cfg.wake_poll_ms == 0)
		px->cfg.wake_poll_ms = 50;
	px->srv = http_server_new(loop, &px->cfg.http, proxy_handle, px);
	px->client = http_client_new(loop);
	proxy_pool_init(&px->pool, loop, &px->cfg);
	px->activity = cfg->activity;
	if (!px->activity) {
		px->activity = proxy_activity_new(loop, &px->cfg);
		px->own_activity = true;
	}
	uv_timer_init(loop, &px->tick);
	px->tick.data = px;
	uv_timer_start(&px->tick, proxy_tick, 1000, 1000);
	uv_unref((uv_handle_t *)&px->tick);
	uv_timer_init(loop, &px->deadlines);
	px->deadlines.data = px;
	uv_timer_start(&px->deadlines, proxy_deadlines, 100, 100);
	uv_unref((uv_handle_t *)&px->deadlines);
	*ret = px;
	return 0;
}

int proxy_listen(struct proxy *px, const char *addr, int *ret_port, struct hutch_error *err)
{
	int r = http_server_listen(px->srv, addr, ret_port);
	if (r < 0)
		return hutch_error_set(err, r, "listening on %s: %s", addr, uv_strerror(r));
	return 0;
}

void proxy_activity_mark(struct proxy *px, const char *id)
{
	/* the shared batch (a mutex, cache lines bouncing between workers) hears about a sandbox
	 * once per tick of this proxy, however many requests it gets */
	if (px->closing || proxy_map_get(&px->marked, id))
		return;
	proxy_map_put(&px->marked, id, (void *)1);
	proxy_activity_add(px->activity, id);
}

void proxy_shutdown(struct proxy *px, uint64_t drain_ms)
{
	if (px->closing || px->draining)
		return;
	px->draining = true;
	px->drain_deadline = uv_now(px->loop) + drain_ms;
	proxy_tunnel_close_all(px); /* long-lived by nature: not worth waiting for */
	if (px->nexchanges == 0)
		proxy_close(px);
}

void proxy_close(struct proxy *px)
{
	if (px->closing)
		return;
	px->closing = true;
	http_server_close(px->srv);
	px->srv = NULL;
	proxy_exchange_abort_all(px);
	proxy_tunnel_close_all(px);
	proxy_pool_close(&px->pool);
	http_client_free(px->client);
	px->client = NULL;
	uv_close((uv_handle_t *)&px->tick, NULL);
	uv_close((uv_handle_t *)&px->deadlines, NULL);
	proxy_activity_counts(px->activity, &px->stats.activity_posts, &px->stats.activity_dropped);
	if (px->own_activity)
		proxy_activity_close(px->activity); /* posts the last batch */
	px->activity = NULL;
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	proxy_wake_release(px);
	proxy_exchange_spares_release(px);
	proxy_cache_release(&px->cache);
	proxy_map_release(&px->marked, NULL);
	buf_release(&px->scratch);
	free((char *)px->cfg.domain);
	free((char *)px->cfg.api_url);
	free((char *)px->cfg.node_token);
	free((char *)px->cfg.node_id);
	free(px);
}

void proxy_stats_get(const struct proxy *px, struct proxy_stats *ret)
{
	*ret = px->stats;
	ret->upstream_connects = px->pool.connects;
	ret->upstream_reuses = px->pool.reuses;
	ret->exchanges_open = px->nexchanges;
	ret->tunnels_open = px->ntunnels;
	ret->upstreams_open = px->pool.open;
	ret->upstreams_idle = px->pool.idle;
	if (px->activity)
		proxy_activity_counts(px->activity, &ret->activity_posts, &ret->activity_dropped);
}
