/* Private structures shared by the files of lib/proxy: the proxy object, the upstream connection
 * pool, exchanges (one proxied request), tunnels (one upgraded connection), wake and activity
 * bookkeeping. Nothing outside lib/proxy includes this. */
#ifndef HUTCH_PROXY_INTERNAL_H
#define HUTCH_PROXY_INTERNAL_H

#include <http_parser.h>

#include "base/util.h"
#include "http/client.h"
#include "proxy/map.h"
#include "proxy/proxy.h"
#include "proxy/route.h"

#define PROXY_READ_BUF         (64 * 1024)
#define PROXY_RESP_HEAD_MAX    (64 * 1024)
#define PROXY_RESP_HEADERS_MAX 100
#define PROXY_KEY_MAX          160 /* "unix:" + a socket path (at most 107) or "tcp:" + ip:port */

/* ---- upstream connections (upstream.c) ---- */

struct proxy_upstream;

/* What an upstream connection reports to its current owner (an exchange or a tunnel). */
struct proxy_upstream_ops {
	/* status is 0 or a negative libuv code */
	void (*on_connect)(struct proxy_upstream *up, int status);
	/* nread > 0: data (valid during the call only); nread < 0: EOF or an error (reading or
	 * writing failed), reported once; the owner then releases or closes the connection. */
	void (*on_read)(struct proxy_upstream *up, const char *data, ssize_t nread);
	/* queued writes fell below half the high-water mark after a write reported pressure */
	void (*on_drain)(struct proxy_upstream *up);
};

/* The connections to one target. Each open connection refers to its bucket (no lookup by key
 * when it is released or taken); the bucket goes when the last of them closes. */
struct proxy_bucket {
	struct proxy_upstream *idle; /* most recently used first */
	size_t nidle;
	size_t nref; /* open connections to this target */
	bool orphan; /* no longer in the pool's map (the pool closed) */
};

struct proxy_pool {
	uv_loop_t *loop;
	const struct proxy_config *cfg;
	struct proxy_map buckets;   /* key -> struct proxy_bucket */
	struct proxy_upstream *lru; /* every idle connection, oldest first */
	struct proxy_upstream *lru_tail;
	uv_timer_t sweep;
	size_t open;
	size_t idle;
	uint64_t connects, reuses;
	bool closing;
	char rbuf[PROXY_READ_BUF]; /* shared read buffer: every read is consumed in its callback */
};

union proxy_stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct proxy_upstream {
	struct proxy_pool *pool;
	union proxy_stream h;
	uv_connect_t connect;
	char *key;                   /* "unix:/path" or "tcp:A.B.C.D:PORT" */
	struct proxy_bucket *bucket; /* NULL once closing */
	const struct proxy_upstream_ops *ops;
	void *owner; /* NULL while idle or closing */
	size_t write_queued;
	uint64_t idle_since;
	struct proxy_upstream *bnext, *bprev; /* in the bucket's idle list */
	struct proxy_upstream *lnext, *lprev; /* in the pool's LRU list */
	bool connected;
	bool reused;
	bool reading;
	bool idle;
	bool closing;
	bool failed;
	bool pressure;
};

void proxy_pool_init(struct proxy_pool *pool, uv_loop_t *loop, const struct proxy_config *cfg);
/* Closes idle connections and the sweep timer; busy ones are closed by their owners. */
void proxy_pool_close(struct proxy_pool *pool);
/* Takes an idle connection to key (returns 1) or starts connecting a new one (returns 0;
 * ops->on_connect follows). fresh skips the idle ones. Negative libuv code on a bad key or an
 * immediate failure. */
int proxy_pool_acquire(struct proxy_pool *pool, const char *key, bool fresh,
                       const struct proxy_upstream_ops *ops, void *owner,
                       struct proxy_upstream **ret);
/* The upstream key for a sandbox and port into key ("unix:<agent socket>" for the agent,
 * "tcp:<ip>:<port>" for a user port); 0 or a negative errno with err set (503 without an agent
 * socket, 502 without an address or when the key would not fit). */
int proxy_target_key(const struct sandbox_rec *rec, uint16_t port, char key[PROXY_KEY_MAX],
                     struct hutch_error *err);
/* The owner is done: reusable connections go back to the pool, others are closed. */
void proxy_upstream_release(struct proxy_upstream *up, bool reusable);
/* Queues a + b + c as one write (copied). Returns 0, 1 above the high-water mark, or -EPIPE. */
int proxy_upstream_write(struct proxy_upstream *up, const void *a, size_t alen, const void *b,
                         size_t blen, const void *c, size_t clen);
void proxy_upstream_read(struct proxy_upstream *up, bool on);
/* Hands the connection to a new owner (the tunnel after an upgrade). */
void proxy_upstream_adopt(struct proxy_upstream *up, const struct proxy_upstream_ops *ops,
                          void *owner);

/* ---- the lookup cache (cache.c) ---- */

struct proxy_cache {
	int64_t version;            /* the store's data version of the entries; -1 = not caching */
	struct proxy_map keys;      /* Authorization value -> verification */
	struct proxy_map sandboxes; /* "ns/target" -> lookup result */
	char *shm_path;             /* the SQLite -shm file, or NULL */
	const volatile unsigned char *shm; /* its WAL-index header, mapped read-only */
	unsigned char hdr[48];             /* the header at the last full check */
	bool hdr_valid;
	uint64_t checked_ms;
};

/* db_path is the SQLite file (NULL: no -shm shortcut). */
void proxy_cache_init(struct proxy_cache *c, const char *db_path);
/* Empties the cache if the store changed since the last call (see cache.c for how). */
void proxy_cache_validate(struct proxy_cache *c, struct store *store, uint64_t now_ms);
/* 0 with ns, -EACCES for a cached invalid key, -ENOENT when not cached. */
int proxy_cache_key_get(struct proxy_cache *c, struct sv header, char ns[64]);
/* ns NULL records an invalid key. */
void proxy_cache_key_put(struct proxy_cache *c, struct sv header, const char *ns);
/* 0 with *ret (NULL: cached as not found), -ENOENT when not cached. ns is the caller's
 * namespace ("" when anonymous), part of the key because names resolve per namespace. The record
 * stays the cache's, valid until the next proxy_cache_validate() or put of the same key. */
int proxy_cache_sandbox_get(struct proxy_cache *c, const char *target, const char *ns,
                            const struct sandbox_rec **ret);
/* Records rec (NULL: "not found") and returns the cached copy (NULL when not caching). */
const struct sandbox_rec *proxy_cache_sandbox_put(struct proxy_cache *c, const char *target,
                                                  const char *ns, const struct sandbox_rec *rec);
void proxy_cache_release(struct proxy_cache *c);

/* ---- the proxy (proxy.c) ---- */

struct proxy_exchange;
struct proxy_tunnel;

struct proxy_wake {
	uint64_t posted_ms; /* last wake POST */
	bool in_flight;
	int failed_status; /* the api's answer when the wake was refused; 0 = none */
	char failed_msg[160];
};

struct proxy {
	uv_loop_t *loop;
	struct proxy_config cfg; /* strings owned (copies) */
	struct store *store;
	struct proxy_cache cache;
	struct buf scratch; /* reused for response header blocks */
	struct http_server *srv;
	struct http_client *client;
	struct proxy_pool pool;
	struct proxy_exchange *exchanges;
	struct proxy_exchange *ex_spare[64]; /* finished exchanges kept for reuse */
	size_t nex_spare;
	struct proxy_tunnel *tunnels;
	size_t nexchanges, ntunnels;
	struct proxy_activity *activity; /* shared, or own_activity */
	struct proxy_map marked;         /* ids passed to activity since the last tick */
	bool own_activity;
	/* wake.c */
	struct proxy_map wakes; /* sandbox id -> struct proxy_wake */
	uv_timer_t tick;        /* housekeeping: forgets old wake records */
	uv_timer_t deadlines;   /* every 100 ms: connect and first-byte timeouts, draining */
	bool draining;          /* proxy_shutdown(): finishing requests in flight */
	uint64_t drain_deadline;
	bool closing;
	struct proxy_stats stats;
};

/* Answers req with err's status, code and message as JSON, plus CORS headers. A WebSocket
 * upgrade that cannot be forwarded (502, 503, 504) is accepted instead and closed at once with
 * 1011 and the message: the SDK's tunnel relay turns a refused handshake into an uncaught
 * exception that ends the user's program. Returns true when req was consumed that way (the
 * connection is taken over: req is freed). */
bool proxy_respond_error(struct http_request *req, const struct hutch_error *err);
/* Aborts the client connection of req (a response already started cannot carry an error);
 * req is freed. */
void proxy_client_abort(struct http_request *req);

/* ---- headers and CORS (headers.c) ---- */

struct proxy_fwd {
	const char *peer;  /* client address as "ip:port" (or "unix") */
	bool keep_cookies; /* pass Cookie on (user ports addressed by their own host name) */
	bool upgrade;      /* keep Connection: upgrade / Upgrade */
	/* to another node's proxy: keep Authorization (it checks the key again) and add
	 * X-Hutch-Forwarded: <forward_node> (its loop guard); NULL for a sandbox */
	const char *forward_node;
	bool chunked;    /* the body is re-framed as chunked */
	bool has_length; /* the body has this Content-Length */
	uint64_t length;
};

/* Appends the request head to send upstream: the request line with the path and query as
 * received, the client's end-to-end headers minus credentials (Authorization, and Cookie unless
 * keep_cookies) and minus X-Hutch-Forwarded, X-Forwarded-For / -Proto / -Host, and the body
 * framing. With forward_node set the head is for another node's proxy instead: Authorization
 * stays and X-Hutch-Forwarded is added. */
void proxy_head_build(const struct http_request *req, const struct proxy_fwd *f, struct buf *out);
/* True when name is an RFC 9110 token (no spaces, no separators). */
bool proxy_header_name_valid(const char *name);
/* True for headers a proxy must not pass on in a response (hop-by-hop and framing). connection
 * is the response's Connection header value (tokens name further hop-by-hop headers). */
bool proxy_header_is_hop(struct sv name, struct sv connection);
/* True for an OPTIONS CORS preflight (Origin and Access-Control-Request-Method present). */
bool proxy_cors_is_preflight(const struct http_request *req);
/* Answers a preflight locally with 204 and the allowed methods and headers. */
void proxy_cors_preflight(struct http_request *req);
/* Adds Access-Control-Allow-Origin (the request's Origin), -Allow-Credentials and Vary when the
 * request has an Origin. */
void proxy_cors_headers(struct http_request *req);

/* ---- exchanges (exchange.c) and tunnels (tunnel.c) ---- */

/* The request header a proxy adds when it forwards to another node's proxy: a loop guard (such a
 * request is never forwarded again), not a credential. Never passed to a sandbox. */
#define PROXY_HOP_HEADER "x-hutch-forwarded"

struct proxy_target {
	char id[HUTCH_ID_LEN + 1];
	uint16_t port;
	bool keep_cookies;
	bool wake; /* the sandbox is suspended: wake it and wait */
	/* the sandbox runs on another node: forward to its proxy at forward_key ("tcp:ADDR:PORT");
	 * that proxy wakes the sandbox and counts its activity, this one does neither */
	bool forward;
	char forward_key[PROXY_KEY_MAX];
};

/* Forwards req to the sandbox rec (already authorized). Takes over req's callbacks. */
void proxy_exchange_start(struct proxy *px, struct http_request *req, const struct sandbox_rec *rec,
                          const struct proxy_target *t);
/* Fails the exchanges whose connect or first-byte deadline passed (from a periodic timer). */
void proxy_exchange_sweep(struct proxy *px);
/* Aborts every exchange (shutdown). */
void proxy_exchange_abort_all(struct proxy *px);
/* Frees the finished exchanges kept for reuse. */
void proxy_exchange_spares_release(struct proxy *px);

/* Splices client (taken over after the upstream's 101) and up both ways until either ends.
 * client_left / up_left are bytes already read from each side, to deliver first. sandbox_id ""
 * counts no activity (a tunnel to another node's proxy, which counts it). */
void proxy_tunnel_start(struct proxy *px, const char *sandbox_id, uv_stream_t *client,
                        struct proxy_upstream *up, const char *client_left, size_t client_left_len,
                        const char *up_left, size_t up_left_len);
void proxy_tunnel_close_all(struct proxy *px);

/* ---- activity and wake (activity.c, wake.c) ---- */

/* Counts traffic for sandbox id (the proxy's loop). */
void proxy_activity_mark(struct proxy *px, const char *id);
/* Counts traffic for sandbox id in the current batch (any thread). */
void proxy_activity_add(struct proxy_activity *a, const char *id);
void proxy_activity_counts(struct proxy_activity *a, uint64_t *ret_posts, uint64_t *ret_dropped);

/* Asks the api to wake sandbox id, unless that was done less than a second ago. */
void proxy_wake_post(struct proxy *px, const char *id);
/* The api's refusal of a wake for id posted less than a second ago, or NULL. */
const struct proxy_wake *proxy_wake_failure(struct proxy *px, const char *id);
/* Forgets wake records older than a few seconds (called from the housekeeping timer). */
void proxy_wake_sweep(struct proxy *px);
void proxy_wake_release(struct proxy *px);

#endif
