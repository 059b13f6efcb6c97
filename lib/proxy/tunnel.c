/* Upgraded connections (WebSocket and other 101 upgrades): after the upstream's 101 the client
 * stream and the upstream connection are spliced both ways as raw bytes, with back-pressure in
 * each direction and no timeout. When one side ends, what was read from it is flushed to the
 * other (bounded by a deadline) and both are closed. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "proxy/internal.h"

#define TUNNEL_FLUSH_MS 5000

struct proxy_tunnel {
	struct proxy *px;
	uv_stream_t *client;
	struct proxy_upstream *up;
	uv_timer_t timer; /* flush deadline once one side ended */
	size_t client_queued;
	char id[HUTCH_ID_LEN + 1];
	uint64_t activity_ms;
	int refs; /* client stream, timer, shutdown requests in flight */
	bool client_reading;
	bool client_paused; /* stopped because the upstream's queue is full */
	bool up_paused;     /* stopped because the client's queue is full */
	bool ending;
	bool closed;
	struct proxy_tunnel *prev, *next;
};

struct tunnel_write {
	uv_write_t w;
	struct proxy_tunnel *t;
	size_t len;
	char data[];
};

static const struct proxy_upstream_ops tunnel_up_ops;

static void tunnel_unref(struct proxy_tunnel *t)
{
	if (--t->refs == 0)
		free(t);
}

static void tunnel_handle_closed(uv_handle_t *h)
{
	struct proxy_tunnel *t = h->data;
	if (h != (uv_handle_t *)&t->timer)
		http_stream_free(h);
	tunnel_unref(t);
}

static void tunnel_close(struct proxy_tunnel *t)
{
	if (t->closed)
		return;
	struct proxy *px = t->px;
	t->closed = true;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, tunnel_handle_closed);
	uv_close((uv_handle_t *)t->client, tunnel_handle_closed);
	if (t->up) {
		proxy_upstream_release(t->up, false);
		t->up = NULL;
	}
	if (t->prev)
		t->prev->next = t->next;
	else
		px->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	px->ntunnels--;
}

static void tunnel_mark(struct proxy_tunnel *t)
{
	uint64_t now = uv_now(t->px->loop);
	if (t->id[0] && now - t->activity_ms >= 1000) {
		t->activity_ms = now;
		proxy_activity_mark(t->px, t->id);
	}
}

static void tunnel_deadline(uv_timer_t *timer)
{
	tunnel_close(timer->data);
}

static void tunnel_shutdown_done(uv_shutdown_t *sr, int status)
{
	struct proxy_tunnel *t = sr->data;
	free(sr);
	tunnel_close(t);
	tunnel_unref(t);
}

/* One side ended. On EOF the other side gets what is still queued for it, then both close. */
static void tunnel_end(struct proxy_tunnel *t, bool client_side, ssize_t status)
{
	if (t->ending || t->closed) {
		tunnel_close(t);
		return;
	}
	t->ending = true;
	if (t->client_reading)
		uv_read_stop(t->client);
	t->client_reading = false;
	if (t->up)
		proxy_upstream_read(t->up, false);
	uv_stream_t *other = client_side ? (t->up ? &t->up->h.stream : NULL) : t->client;
	if (status != UV_EOF || !other) {
		tunnel_close(t);
		return;
	}
	uv_shutdown_t *sr = xcalloc(1, sizeof(*sr));
	sr->data = t;
	if (uv_shutdown(sr, other, tunnel_shutdown_done) < 0) {
		free(sr);
		tunnel_close(t);
		return;
	}
	t->refs++;
	uv_timer_start(&t->timer, tunnel_deadline, TUNNEL_FLUSH_MS, 0);
}

/* ---- client -> upstream ---- */

static void tunnel_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct proxy_tunnel *t = h->data;
	b->base = t->px->pool.rbuf;
	b->len = sizeof(t->px->pool.rbuf);
}

static void tunnel_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct proxy_tunnel *t = s->data;
	if (nread == 0 || t->closed)
		return;
	if (nread < 0) {
		tunnel_end(t, true, nread);
		return;
	}
	tunnel_mark(t);
	if (!t->up)
		return;
	if (proxy_upstream_write(t->up, b->base, (size_t)nread, NULL, 0, NULL, 0) == 1 &&
	    t->client_reading) {
		uv_read_stop(t->client);
		t->client_reading = false;
		t->client_paused = true;
	}
}

static void tunnel_client_resume(struct proxy_tunnel *t)
{
	if (t->closed || t->ending || t->client_reading)
		return;
	if (uv_read_start(t->client, tunnel_alloc, tunnel_client_read) == 0)
		t->client_reading = true;
}

static void tunnel_on_up_drain(struct proxy_upstream *up)
{
	struct proxy_tunnel *t = up->owner;
	if (t->client_paused) {
		t->client_paused = false;
		tunnel_client_resume(t);
	}
}

/* ---- upstream -> client ---- */

static void tunnel_client_written(uv_write_t *w, int status)
{
	struct tunnel_write *wr = (struct tunnel_write *)w;
	struct proxy_tunnel *t = wr->t;
	t->client_queued -= wr->len;
	free(wr);
	if (t->closed)
		return;
	if (status < 0) {
		tunnel_close(t);
		return;
	}
	if (t->up_paused && t->up && t->client_queued <= t->px->cfg.upstream_high_water / 2) {
		t->up_paused = false;
		proxy_upstream_read(t->up, true);
	}
}

static void tunnel_client_write(struct proxy_tunnel *t, const char *data, size_t len)
{
	if (len == 0 || t->closed)
		return;
	struct tunnel_write *wr = xmalloc(sizeof(*wr) + len);
	wr->t = t;
	wr->len = len;
	memcpy(wr->data, data, len);
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->w, t->client, &b, 1, tunnel_client_written) < 0) {
		free(wr);
		tunnel_close(t);
		return;
	}
	t->client_queued += len;
	if (t->client_queued > t->px->cfg.upstream_high_water && t->up && !t->up_paused) {
		t->up_paused = true;
		proxy_upstream_read(t->up, false);
	}
}

static void tunnel_on_up_read(struct proxy_upstream *up, const char *data, ssize_t nread)
{
	struct proxy_tunnel *t = up->owner;
	if (nread < 0) {
		tunnel_end(t, false, nread);
		return;
	}
	tunnel_mark(t);
	tunnel_client_write(t, data, (size_t)nread);
}

static const struct proxy_upstream_ops tunnel_up_ops = {
        .on_read = tunnel_on_up_read,
        .on_drain = tunnel_on_up_drain,
};

void proxy_tunnel_start(struct proxy *px, const char *sandbox_id, uv_stream_t *client,
                        struct proxy_upstream *up, const char *client_left, size_t client_left_len,
                        const char *up_left, size_t up_left_len)
{
	struct proxy_tunnel *t = xcalloc(1, sizeof(*t));
	t->px = px;
	t->client = client;
	t->up = up;
	t->refs = 2;
	t->activity_ms = uv_now(px->loop);
	snprintf(t->id, sizeof(t->id), "%s", sandbox_id);
	client->data = t;
	uv_timer_init(px->loop, &t->timer);
	t->timer.data = t;
	t->next = px->tunnels;
	if (px->tunnels)
		px->tunnels->prev = t;
	px->tunnels = t;
	px->ntunnels++;
	px->stats.tunnels++;
	proxy_upstream_adopt(up, &tunnel_up_ops, t);
	if (client_left_len &&
	    proxy_upstream_write(up, client_left, client_left_len, NULL, 0, NULL, 0) == 1)
		t->client_paused = true;
	tunnel_client_write(t, up_left, up_left_len);
	if (t->closed)
		return;
	if (!t->client_paused)
		tunnel_client_resume(t);
	if (!t->up_paused && t->up)
		proxy_upstream_read(t->up, true);
}

void proxy_tunnel_close_all(struct proxy *px)
{
	while (px->tunnels)
		tunnel_close(px->tunnels);
}
