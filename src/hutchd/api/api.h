/* The api role: the Tensorlake-compatible control plane. It validates requests, authenticates
 * keys, keeps desired state in the store and answers from it; executors learn desired state
 * through the internal API and report what they observe. Single-threaded on one libuv loop. */
#ifndef HUTCHD_API_H
#define HUTCHD_API_H

#include <jansson.h>
#include <uv.h>

#include "apimodel/apimodel.h"
#include "http/http.h"
#include "store/store.h"
#include "../config.h"

struct api_waiter;
struct api_copy_job;

/* An executor known to this api (from its long-polls). */
struct api_executor {
	char id[128];
	char address[128];
	uint64_t last_seen_ms; /* monotonic */
	int64_t capacity;
	bool criu;             /* can take memory snapshots */
	char criu_reason[128]; /* why not, as the executor said */
	struct api_executor *next;
};

struct api {
	struct hutchd_config *cfg;
	uv_loop_t *loop;
	struct store *store;
	struct http_server *srv;
	struct apimodel_limits limits;
	uv_timer_t sweep;
	uv_signal_t sigterm, sigint;
	uint64_t version; /* bumped whenever any executor's desired state changes */
	struct api_waiter *waiters;
	struct api_executor *executors;
	struct api_copy_job *copy_jobs;
	struct api_watch *watch; /* a shared store's outside changes (watch.c), or NULL */
};

/* Per-request context after routing and authentication. */
struct api_ctx {
	struct api *api;
	char ns[64];
	bool admin; /* key may manage other namespaces */
};

/* ---- main.c ---- */
void api_respond_json(struct http_request *req, int status, json_t *body); /* steals body */
void api_respond_err(struct http_request *req, const struct hutch_error *err);
/* Called after a sandbox's status changed: wakes create waiters for it. */
void api_sandbox_changed(struct api *api, const char *id);
/* Called after desired state or assignment changed: wakes executor long-polls. */
void api_desired_changed(struct api *api);
struct api_executor *api_executor_find(struct api *api, const char *id);
/* Picks the executor for a new sandbox, or NULL if none is live. */
struct api_executor *api_executor_pick(struct api *api);

/* ---- sandboxes.c ---- */
/* Buffers the request body (up to --max-body-bytes), then calls fn with a copy of ctx. */
void api_read_body(struct http_request *req, struct api_ctx *ctx,
                   void (*fn)(struct http_request *req, struct api_ctx *ctx));
/* How long a blocking call may hold req: the client's X-Tensorlake-Request-Timeout-Ms minus a
 * margin, else --create-wait-ms; 0 with ?wait=false. */
uint64_t api_request_bound_ms(struct api *api, struct http_request *req);
/* 0 when namespace ns may have want more live sandboxes, else 429 SANDBOX_LIMIT_REACHED. */
int api_ns_room(struct api *api, const char *ns, int64_t want, struct hutch_error *err);
void api_sandbox_create(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_list(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_list_archived(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_get(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_get_archived(struct http_request *req, struct api_ctx *ctx);
/* Persisted logs and file-system mounts are not supported: a clear refusal for a sandbox that
 * exists (501 LOGS_UNAVAILABLE, 400 FILE_SYSTEMS_UNAVAILABLE), 404 for one that does not. */
void api_sandbox_logs(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_file_systems(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_update(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_delete(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_suspend(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_resume(struct http_request *req, struct api_ctx *ctx);
/* The periodic sweep: idle timeouts, archiving, assigning unplaced sandboxes. */
void api_sandbox_sweep(struct api *api);
/* Terminates a sandbox record (status and desired terminated) with an outcome. */
int api_sandbox_terminate(struct api *api, struct sandbox_rec *r, const char *outcome,
                          struct hutch_error *err);
/* Marks r suspending (desired suspended). */
int api_sandbox_begin_suspend(struct api *api, struct sandbox_rec *r, struct hutch_error *err);
/* Marks r to be resumed (desired running). */
int api_sandbox_begin_resume(struct api *api, struct sandbox_rec *r, struct hutch_error *err);

/* A list of records collected from a store walk (so the walk is over before anything is
 * written back). */
struct api_sandbox_list {
	struct sandbox_rec *items;
	size_t n;
};
/* store walk callback: moves r into the struct api_sandbox_list at data. */
int api_collect_sandbox(struct sandbox_rec *r, void *data);

/* ---- pools.c ---- */
void api_pool_create(struct http_request *req, struct api_ctx *ctx);
void api_pool_list(struct http_request *req, struct api_ctx *ctx);
void api_pool_get(struct http_request *req, struct api_ctx *ctx);
void api_pool_replace(struct http_request *req, struct api_ctx *ctx);
void api_pool_delete(struct http_request *req, struct api_ctx *ctx);
void api_pool_claim(struct http_request *req, struct api_ctx *ctx);
void api_pool_sweep(struct api *api);

/* ---- snapshots.c, copy.c ---- */
json_t *api_snapshot_json(const struct snapshot_rec *s);
/* Starts a snapshot of running sandbox r (r is updated and saved). */
int api_snapshot_begin(struct api *api, struct sandbox_rec *r, const char *type,
                       struct snapshot_rec *ret, struct hutch_error *err);
int api_snapshot_drop(struct api *api, struct snapshot_rec *s, struct hutch_error *err);
/* Applies an executor's snapshot result to its snapshot and to sandbox r (not saved). */
void api_snapshot_report(struct api *api, struct sandbox_rec *r, json_t *rep);
/* Fills a new sandbox r from c->snapshot_id (image, resources, placement). */
int api_snapshot_apply(struct api *api, const char *ns, struct create_req *c,
                       const struct apimodel_limits *lim, struct sandbox_rec *r,
                       struct hutch_error *err);
void api_snapshot_changed(struct api *api, const char *snap_id);
void api_snapshot_create(struct http_request *req, struct api_ctx *ctx);
void api_snapshot_list(struct http_request *req, struct api_ctx *ctx);
void api_snapshot_get(struct http_request *req, struct api_ctx *ctx);
void api_snapshot_delete(struct http_request *req, struct api_ctx *ctx);
void api_sandbox_copy(struct http_request *req, struct api_ctx *ctx);
void api_copy_snapshot_changed(struct api *api, const char *snap_id);
void api_copy_sandbox_changed(struct api *api, const char *id);
void api_copy_close(struct api *api);

/* ---- netpolicy.c ---- */
/* True when a network change of r must go through its executor (it runs somewhere). */
bool api_network_needs_executor(const struct sandbox_rec *r);
/* Holds a PATCH until the executor applied or rejected r's pending policy. */
void api_network_wait(struct api *api, struct http_request *req, const char *id);
/* Applies an executor's network_result to r (saved) and answers the waiting PATCH. */
void api_network_report(struct api *api, struct sandbox_rec *r, json_t *result);

/* ---- render.c ---- */
json_t *api_sandbox_json(struct api *api, const struct sandbox_rec *r);
json_t *api_create_response_json(struct api *api, const struct sandbox_rec *r,
                                 const char *status_override);
char *api_sandbox_url(struct api *api, const struct sandbox_rec *r);

/* ---- wait.c ---- */
/* Answers req with the create response once sandbox id is running, suspended or terminated,
 * or with 504 {status: "timeout"} after timeout_ms. */
void api_wait_for_start(struct api *api, struct http_request *req, const char *id,
                        uint64_t timeout_ms);
/* Holds an executor's long-poll until api->version passes since or timeout_ms elapses, then
 * calls done(req, data). */
void api_wait_for_version(struct api *api, struct http_request *req, uint64_t since,
                          uint64_t timeout_ms, void (*done)(struct http_request *, void *),
                          void *data);
/* Holds req until api_hold_release(id, tag) brings an outcome, or timeout_ms passes (fn then
 * gets outcome NULL). fn answers req. */
typedef void (*api_held_fn)(struct http_request *req, struct api *api, const char *id,
                            const void *outcome);
void api_hold(struct api *api, struct http_request *req, const char *id, int tag,
              uint64_t timeout_ms, api_held_fn fn);
void api_hold_release(struct api *api, const char *id, int tag, const void *outcome);
#define API_HOLD_NETWORK 1 /* a PATCH of network, until the executor applied it */
void api_waiters_sandbox(struct api *api, const char *id);
void api_waiters_version(struct api *api);
void api_waiters_close(struct api *api);
/* Rechecks every blocking create (a sandbox may have changed through another api node). */
void api_waiters_all_sandboxes(struct api *api);

/* ---- watch.c ---- */
/* With a shared (PostgreSQL) store, runs the wakeups of api_desired_changed and
 * api_waiters_all_sandboxes whenever another node commits a write; nothing for SQLite. Loop
 * thread only; api_watch_stop closes its handles. */
void api_watch_start(struct api *api);
void api_watch_stop(struct api *api);

/* ---- internal.c ---- */
void api_internal_assignments(struct http_request *req, struct api_ctx *ctx);
void api_internal_report(struct http_request *req, struct api_ctx *ctx);
void api_internal_activity(struct http_request *req, struct api_ctx *ctx);
void api_internal_wake(struct http_request *req, struct api_ctx *ctx);

/* ---- keys.c ---- */
void api_key_create(struct http_request *req, struct api_ctx *ctx);
void api_key_list(struct http_request *req, struct api_ctx *ctx);
void api_key_revoke(struct http_request *req, struct api_ctx *ctx);
void api_key_introspect(struct http_request *req, struct api_ctx *ctx);
/* Creates the admin key on first start and writes it to DATA_DIR/admin.key (0600). */
int api_keys_bootstrap(struct api *api, struct hutch_error *err);

#endif
