/* Upstream connections to agents (unix sockets) and user ports (TCP), pooled per target with an
 * idle limit and an idle timeout. An idle connection keeps reading so that a peer's close is
 * noticed at once; anything it receives while idle makes it unusable. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "proxy/internal.h"

static void pool_sweep(uv_timer_t *t);

void proxy_pool_init(struct proxy_pool *pool, uv_loop_t *loop, const struct proxy_config *cfg)
{
	memset(pool, 0, offsetof(struct proxy_pool, rbuf));
	pool->loop = loop;
	pool->cfg = cfg;
	uv_timer_init(loop, &pool->sweep);
	pool->sweep.data = pool;
	uint64_t every = cfg->upstream_idle_ms / 4 ? cfg->upstream_idle_ms / 4 : 1;
	uv_timer_start(&pool->sweep, pool_sweep, every, every);
	uv_unref((uv_handle_t *)&pool->sweep);
}

/* ---- idle lists ---- */

/* The bucket for key, made when there is none. */
static struct proxy_bucket *bucket_get(struct proxy_pool *pool, const char *key)
{
	struct proxy_bucket *b = proxy_map_get(&pool->buckets, key);
	if (!b) {
		b = xcalloc(1, sizeof(*b));
		proxy_map_put(&pool->buckets, key, b);
	}
	return b;
}

/* A connection of the bucket closed: the last one takes the bucket with it. */
static void bucket_unref(struct proxy_pool *pool, struct proxy_bucket *b, const char *key)
{
	if (--b->nref > 0)
		return;
	if (!b->orphan)
		proxy_map_remove(&pool->buckets, key);
	free(b);
}

static void idle_unlink(struct proxy_upstream *up)
{
	struct proxy_pool *pool = up->pool;
	struct proxy_bucket *b = up->bucket;
	if (up->bprev)
		up->bprev->bnext = up->bnext;
	else
		b->idle = up->bnext;
	if (up->bnext)
		up->bnext->bprev = up->bprev;
	b->nidle--;
	if (up->lprev)
		up->lprev->lnext = up->lnext;
	else
		pool->lru = up->lnext;
	if (up->lnext)
		up->lnext->lprev = up->lprev;
	else
		pool->lru_tail = up->lprev;
	up->bnext = up->bprev = up->lnext = up->lprev = NULL;
	up->idle = false;
	pool->idle--;
}

static void idle_link(struct proxy_upstream *up)
{
	struct proxy_pool *pool = up->pool;
	struct proxy_bucket *b = up->bucket;
	up->bnext = b->idle;
	if (b->idle)
		b->idle->bprev = up;
	b->idle = up;
	b->nidle++;
	up->lprev = pool->lru_tail;
	if (pool->lru_tail)
		pool->lru_tail->lnext = up;
	else
		pool->lru = up;
	pool->lru_tail = up;
	up->idle = true;
	up->idle_since = uv_now(pool->loop);
	pool->idle++;
}

/* ---- closing ---- */

static void up_closed(uv_handle_t *h)
{
	struct proxy_upstream *up = h->data;
	up->pool->open--;
	free(up->key);
	free(up);
}

static void up_close(struct proxy_upstream *up)
{
	if (up->closing)
		return;
	if (up->idle)
		idle_unlink(up);
	if (up->bucket) {
		bucket_unref(up->pool, up->bucket, up->key);
		up->bucket = NULL;
	}
	up->closing = true;
	up->owner = NULL;
	up->ops = NULL;
	uv_close(&up->h.handle, up_closed);
}

static void pool_sweep(uv_timer_t *t)
{
	struct proxy_pool *pool = t->data;
	uint64_t now = uv_now(pool->loop);
	while (pool->lru && now - pool->lru->idle_since >= pool->cfg->upstream_idle_ms)
		up_close(pool->lru);
}

void proxy_pool_close(struct proxy_pool *pool)
{
	pool->closing = true;
	while (pool->lru)
		up_close(pool->lru);
	/* connections still owned by exchanges or tunnels keep their buckets until they close */
	size_t pos = 0;
	struct proxy_map_slot *slot;
	while ((slot = proxy_map_next(&pool->buckets, &pos))) {
		struct proxy_bucket *b = slot->value;
		b->orphan = true;
	}
	proxy_map_release(&pool->buckets, NULL);
	uv_close((uv_handle_t *)&pool->sweep, NULL);
}

/* ---- reading ---- */

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct proxy_upstream *up = h->data;
	b->base = up->pool->rbuf;
	b->len = sizeof(up->pool->rbuf);
}

/* Reports a failure to the owner once. */
static void up_fail(struct proxy_upstream *up, ssize_t status)
{
	if (up->failed)
		return;
	up->failed = true;
	if (up->reading) {
		uv_read_stop(&up->h.stream);
		up->reading = false;
	}
	if (up->owner && up->ops && up->ops->on_read)
		up->ops->on_read(up, NULL, status);
}

static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct proxy_upstream *up = s->data;
	if (nread == 0)
		return;
	if (up->idle) { /* closed by the peer, or unsolicited bytes: unusable either way */
		up_close(up);
		return;
	}
	if (nread < 0) {
		up_fail(up, nread);
		return;
	}
	if (up->owner && up->ops && up->ops->on_read)
		up->ops->on_read(up, b->base, nread);
}

void proxy_upstream_read(struct proxy_upstream *up, bool on)
{
	if (up->closing || up->failed || !up->connected || on == up->reading)
		return;
	if (on) {
		if (uv_read_start(&up->h.stream, up_alloc, up_read_cb) == 0)
			up->reading = true;
	} else {
		uv_read_stop(&up->h.stream);
		up->reading = false;
	}
}

/* ---- writing ---- */

struct up_write {
	uv_write_t w;
	struct proxy_upstream *up;
	size_t len;
	char data[];
};

static void up_write_done(uv_write_t *w, int status)
{
	struct up_write *wr = (struct up_write *)w;
	struct proxy_upstream *up = wr->up;
	up->write_queued -= wr->len;
	free(wr);
	if (up->closing)
		return;
	if (status < 0) {
		up_fail(up, status);
		return;
	}
	if (up->pressure && up->write_queued <= up->pool->cfg->upstream_high_water / 2) {
		up->pressure = false;
		if (up->owner && up->ops && up->ops->on_drain)
			up->ops->on_drain(up);
	}
}

/* Copies the three parts, less their first skip bytes, to out. */
static void copy_tail(char *out, const char *part[3], const size_t plen[3], size_t skip)
{
	for (int i = 0; i < 3; i++) {
		size_t off = skip < plen[i] ? skip : plen[i];
		skip -= off;
		if (plen[i] > off)
			memcpy(out, part[i] + off, plen[i] - off);
		out += plen[i] - off;
	}
}

int proxy_upstream_write(struct proxy_upstream *up, const void *a, size_t alen, const void *b,
                         size_t blen, const void *c, size_t clen)
{
	const char *part[3] = {a, b, c};
	size_t plen[3] = {alen, blen, clen};
	size_t total = alen + blen + clen, skip = 0;

	if (up->closing || up->failed)
		return -EPIPE;
	if (up->write_queued == 0 && total) {
		/* straight to the socket when nothing is queued: no copy, no epoll_ctl */
		uv_buf_t bufs[3];
		unsigned n = 0;
		for (int i = 0; i < 3; i++)
			if (plen[i])
				bufs[n++] = uv_buf_init((char *)part[i], (unsigned)plen[i]);
		int w = uv_try_write(&up->h.stream, bufs, n);
		skip = w > 0 ? (size_t)w : 0;
	}
	if (skip == total)
		return 0;
	struct up_write *wr = xmalloc(sizeof(*wr) + total - skip);
	wr->up = up;
	wr->len = total - skip;
	copy_tail(wr->data, part, plen, skip);
	uv_buf_t buf = uv_buf_init(wr->data, (unsigned)wr->len);
	int r = uv_write(&wr->w, &up->h.stream, &buf, 1, up_write_done);
	if (r < 0) {
		free(wr);
		up_fail(up, r);
		return -EPIPE;
	}
	up->write_queued += wr->len;
	if (up->write_queued > up->pool->cfg->upstream_high_water) {
		up->pressure = true;
		return 1;
	}
	return 0;
}

/* ---- keys ---- */

/* Appends the first len bytes of s to key (n bytes used so far); false when it does not fit. */
static bool key_put(char key[PROXY_KEY_MAX], size_t *n, const char *s, size_t len)
{
	if (len >= PROXY_KEY_MAX - *n)
		return false;
	memcpy(key + *n, s, len);
	*n += len;
	key[*n] = '\0';
	return true;
}

int proxy_target_key(const struct sandbox_rec *rec, uint16_t port, char key[PROXY_KEY_MAX],
                     struct hutch_error *err)
{
	size_t n = 0;
	bool ok;
	if (port == PROXY_AGENT_PORT) {
		if (!rec->agent_socket || !rec->agent_socket[0])
			return hutch_error_api(err, 503, "SANDBOX_NOT_RUNNING",
			                       "the agent of sandbox %s is not reachable yet",
			                       rec->id);
		ok = key_put(key, &n, "unix:", 5) &&
		     key_put(key, &n, rec->agent_socket, strlen(rec->agent_socket));
	} else {
		if (!rec->ip || !rec->ip[0])
			return hutch_error_api(err, 502, "PROXY_ERROR",
			                       "sandbox %s has no network address", rec->id);
		char num[20];
		ok = key_put(key, &n, "tcp:", 4) && key_put(key, &n, rec->ip, strlen(rec->ip)) &&
		     key_put(key, &n, ":", 1) && key_put(key, &n, num, fmt_u64(num, port));
	}
	if (!ok)
		return hutch_error_api(err, 502, "PROXY_ERROR", "sandbox %s: address too long",
		                       rec->id);
	return 0;
}

/* ---- connecting ---- */

static void up_connected(uv_connect_t *c, int status)
{
	struct proxy_upstream *up = c->data;
	if (up->closing)
		return;
	if (status == 0)
		up->connected = true;
	else
		up->failed = true;
	if (up->owner && up->ops && up->ops->on_connect)
		up->ops->on_connect(up, status);
}

static int up_open(struct proxy_pool *pool, struct proxy_upstream *up)
{
	int r;
	up->connect.data = up;
	if (strncmp(up->key, "unix:", 5) == 0) {
		uv_pipe_init(pool->loop, &up->h.pipe, 0);
		up->h.handle.data = up;
		uv_pipe_connect(&up->connect, &up->h.pipe, up->key + 5, up_connected);
		return 0;
	}
	struct sockaddr_in addr;
	struct sv rest = sv_from(up->key + 4), host, port;
	uint64_t p;
	char hostz[64];
	if (strncmp(up->key, "tcp:", 4) != 0 || !sv_rsplit(rest, ':', &host, &port) ||
	    host.len >= sizeof(hostz) || sv_to_u64(port, 65535, &p) < 0)
		return UV_EINVAL;
	memcpy(hostz, host.p, host.len);
	hostz[host.len] = '\0';
	if ((r = uv_ip4_addr(hostz, (int)p, &addr)) < 0)
		return r;
	uv_tcp_init(pool->loop, &up->h.tcp);
	up->h.handle.data = up;
	uv_tcp_nodelay(&up->h.tcp, 1);
	r = uv_tcp_connect(&up->connect, &up->h.tcp, (struct sockaddr *)&addr, up_connected);
	return r < 0 ? r : 0;
}

int proxy_pool_acquire(struct proxy_pool *pool, const char *key, bool fresh,
                       const struct proxy_upstream_ops *ops, void *owner,
                       struct proxy_upstream **ret)
{
	struct proxy_bucket *b = bucket_get(pool, key);
	if (!fresh && b->idle) {
		struct proxy_upstream *up = b->idle;
		/* it keeps reading: stopping and restarting would cost two epoll_ctl calls */
		idle_unlink(up);
		up->reused = true;
		up->ops = ops;
		up->owner = owner;
		pool->reuses++;
		*ret = up;
		return 1;
	}
	struct proxy_upstream *up = xcalloc(1, sizeof(*up));
	up->pool = pool;
	up->key = xstrdup(key);
	up->bucket = b;
	b->nref++;
	up->ops = ops;
	up->owner = owner;
	int r = up_open(pool, up);
	pool->open++;
	if (r < 0) {
		if (up->h.handle.data) {
			up_close(up);
		} else {
			bucket_unref(pool, b, key);
			pool->open--;
			free(up->key);
			free(up);
		}
		return r;
	}
	pool->connects++;
	*ret = up;
	return 0;
}

void proxy_upstream_release(struct proxy_upstream *up, bool reusable)
{
	struct proxy_pool *pool = up->pool;
	struct proxy_bucket *b = up->bucket;
	if (!reusable || pool->closing || up->failed || !up->connected || up->write_queued || !b ||
	    pool->cfg->upstream_idle_max == 0 || b->nidle >= pool->cfg->upstream_idle_max) {
		up_close(up);
		return;
	}
	up->owner = NULL;
	up->ops = NULL;
	up->pressure = false;
	idle_link(up);
	if (!up->reading && uv_read_start(&up->h.stream, up_alloc, up_read_cb) == 0)
		up->reading = true;
}

void proxy_upstream_adopt(struct proxy_upstream *up, const struct proxy_upstream_ops *ops,
                          void *owner)
{
	up->ops = ops;
	up->owner = owner;
}
