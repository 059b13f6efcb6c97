/* hutch's ingress proxy as a library: routes each HTTP request to a sandbox's agent (port 9501,
 * over the agent's unix socket) or to an exposed user port (TCP to the sandbox address), or, for a
 * sandbox of another node, to that node's proxy (its advertised address), checks
 * credentials against the store, streams bodies both ways with back-pressure, splices upgraded
 * connections (WebSocket), answers CORS preflights, wakes suspended sandboxes on traffic and
 * reports traffic to the api in batches. hutchd's proxy role (src/hutchd/proxy_main.c) is a thin
 * wrapper around it.
 *
 * Threading: a proxy belongs to the libuv loop it was created on; call these functions only from
 * that loop's thread. The store handle is used synchronously on that thread. */
#ifndef HUTCH_PROXY_H
#define HUTCH_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "http/http.h"
#include "store/store.h"

struct proxy;
struct proxy_activity;

struct proxy_config {
	const char *domain;             /* --proxy-domain: {label}.DOMAIN hosts ("" = none) */
	const char *api_url;            /* the api for wake and activity ("" = none) */
	const char *node_token;         /* Bearer token for the api's /internal/v1 routes */
	const char *node_id;            /* this node; sandboxes of other executors are remote */
	bool auth_none;                 /* --auth none: every request acts as namespace default */
	const char *store_path;         /* the SQLite file behind store (NULL = unknown), to notice
	                                 * commits without a query */
	uint64_t connect_timeout_ms;    /* upstream connect (default 5 s) */
	uint64_t first_byte_timeout_ms; /* request sent to first response byte (default 300 s) */
	uint64_t wake_timeout_ms;       /* waiting for a suspended sandbox to run (default 30 s) */
	uint64_t wake_poll_ms;          /* store re-read interval while waiting (default 50 ms) */
	uint64_t activity_interval_ms;  /* activity batch period (default 1 s) */
	size_t activity_max_ids;        /* distinct sandboxes per batch; more are dropped (10000) */
	uint64_t upstream_idle_ms;  /* pooled upstream connections closed after (default 20 s) */
	size_t upstream_idle_max;   /* idle pooled connections per target (default 64) */
	size_t upstream_high_water; /* bytes queued towards one peer before pausing the other
	                             * side (default 1 MiB) */
	struct http_server_config http; /* the client-facing server's limits */
	/* a traffic batcher shared by several proxies of one process (one per worker thread);
	 * NULL: the proxy makes its own */
	struct proxy_activity *activity;
};

struct proxy_stats {
	uint64_t requests;          /* requests received */
	uint64_t forwarded;         /* requests that reached an upstream */
	uint64_t upstream_connects; /* new upstream connections */
	uint64_t upstream_reuses;   /* requests sent on a pooled connection */
	uint64_t tunnels;           /* upgraded connections spliced */
	uint64_t wakes_posted;      /* wake requests sent to the api */
	uint64_t activity_posts;    /* activity batches posted */
	uint64_t activity_dropped;  /* sandbox ids dropped (batch full or api failure) */
	size_t exchanges_open;      /* requests in flight */
	size_t tunnels_open;        /* upgraded connections open */
	size_t upstreams_open;      /* upstream connections open (busy and idle) */
	size_t upstreams_idle;      /* pooled idle upstream connections */
};

/* Fills cfg with the defaults listed above (strings "" and auth by key). */
void proxy_config_defaults(struct proxy_config *cfg);

/* Creates a proxy on loop reading sandboxes and keys from store (not owned; it must outlive the
 * proxy). cfg's strings are copied. Returns 0 or a negative errno with err set. */
int proxy_new(uv_loop_t *loop, const struct proxy_config *cfg, struct store *store,
              struct proxy **ret, struct hutch_error *err);

/* Listens on "ADDR:PORT" or "unix:/path" (see http_server_listen); ret_port (may be NULL)
 * receives the bound TCP port. Returns 0 or a negative errno with err set. */
int proxy_listen(struct proxy *p, const char *addr, int *ret_port, struct hutch_error *err);

/* Shuts down: stops listening, aborts requests and tunnels in flight, posts the last activity
 * batch (waiting at most one second for the api) and closes every handle. Run the loop until it
 * has no more work, then call proxy_free(). */
void proxy_close(struct proxy *p);

/* Graceful shutdown: tunnels are closed, new requests are answered 503, and requests in flight
 * get up to drain_ms to finish before proxy_close() runs. */
void proxy_shutdown(struct proxy *p, uint64_t drain_ms);

/* Frees a proxy after proxy_close() and the loop run that followed it. Accepts NULL. */
void proxy_free(struct proxy *p);

void proxy_stats_get(const struct proxy *p, struct proxy_stats *ret);

/* A traffic batcher that posts from loop every cfg->activity_interval_ms to cfg->api_url, for
 * several proxies to share (proxy_config.activity): proxies on any thread mark traffic, the
 * loop's thread posts. */
struct proxy_activity *proxy_activity_new(uv_loop_t *loop, const struct proxy_config *cfg);
/* Posts what is pending and frees the batcher once the api answered (at most a second later);
 * keep running its loop. Call from its loop's thread, after the proxies using it are closed. */
void proxy_activity_close(struct proxy_activity *a);

#endif
