/* TCP tunnels: GET /api/v1/tunnels/tcp?port=N upgrades to a WebSocket whose binary messages are
 * written to a fresh TCP connection to 127.0.0.1:N and whose bytes come back as binary messages.
 * Flow control both ways: a full WebSocket queue stops reading the TCP side and vice versa. The
 * TCP connection is made before the upgrade is answered; when nothing listens the upgrade still
 * succeeds and is closed at once with 1011 (a 502 answer crashes the official TypeScript SDK,
 * see docs/design/agent.md), unless the agent runs with --tunnel-502. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "agent.h"
#include "ws/ws_conn.h"

#define TUNNEL_MAX_MESSAGE (1024 * 1024)
#define TCP_HIGH_WATER     (1024 * 1024)

struct tunnel {
	struct agent *a;
	struct tunnel *prev, *next; /* in a->tunnels while the WebSocket is open */
	struct http_request *req;   /* until the upgrade is answered */
	uv_tcp_t tcp;
	uv_connect_t connect;
	struct ws_conn *ws;
	size_t tcp_queued;
	int port;
	int refs; /* tcp handle, ws conn, request, writes in flight */
	bool tcp_closed;
	bool ws_paused;
	bool tcp_reading;
};

struct tcp_write {
	uv_write_t w;
	struct tunnel *t;
	size_t len;
	char data[];
};

static void tunnel_unref(struct tunnel *t)
{
	if (--t->refs == 0)
		free(t);
}

static void tcp_closed_cb(uv_handle_t *h)
{
	tunnel_unref(h->data);
}

static void tcp_close(struct tunnel *t)
{
	if (t->tcp_closed)
		return;
	t->tcp_closed = true;
	uv_close((uv_handle_t *)&t->tcp, tcp_closed_cb);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char chunk[64 * 1024];
	b->base = chunk;
	b->len = sizeof(chunk);
}

static void tcp_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct tunnel *t = s->data;
	if (n > 0) {
		if (t->ws && ws_conn_send(t->ws, WS_OP_BINARY, NULL, 0, b->base, (size_t)n) == 1) {
			uv_read_stop(s); /* resumed by the WebSocket's on_drain */
			t->tcp_reading = false;
		}
		return;
	}
	if (n == 0)
		return;
	if (t->ws)
		ws_conn_close(t->ws, n == UV_EOF ? WS_CLOSE_NORMAL : WS_CLOSE_INTERNAL,
		              n == UV_EOF ? "connection closed" : uv_strerror((int)n));
	tcp_close(t);
}

static void tcp_start_reading(struct tunnel *t)
{
	if (!t->tcp_closed && !t->tcp_reading &&
	    uv_read_start((uv_stream_t *)&t->tcp, tcp_alloc, tcp_read_cb) == 0)
		t->tcp_reading = true;
}

static void tcp_written(uv_write_t *w, int status)
{
	struct tcp_write *tw = (struct tcp_write *)w;
	struct tunnel *t = tw->t;
	t->tcp_queued -= tw->len;
	free(tw);
	if (t->ws_paused && t->tcp_queued <= TCP_HIGH_WATER / 2 && t->ws) {
		t->ws_paused = false;
		ws_conn_resume(t->ws);
	}
	tunnel_unref(t);
}

static void ws_message(struct ws_conn *ws, uint8_t opcode, const uint8_t *d, size_t len, void *arg)
{
	struct tunnel *t = arg;
	t->ws = ws;
	if (opcode != WS_OP_BINARY) {
		ws_conn_close(ws, WS_CLOSE_UNSUPPORTED, "text frames are not supported");
		return;
	}
	if (t->tcp_closed || len == 0)
		return;
	struct tcp_write *tw = xmalloc(sizeof(*tw) + len);
	tw->t = t;
	tw->len = len;
	memcpy(tw->data, d, len);
	uv_buf_t b = uv_buf_init(tw->data, (unsigned)len);
	if (uv_write(&tw->w, (uv_stream_t *)&t->tcp, &b, 1, tcp_written) < 0) {
		free(tw);
		ws_conn_close(ws, WS_CLOSE_INTERNAL, "write to the port failed");
		return;
	}
	t->refs++;
	t->tcp_queued += len;
	if (t->tcp_queued > TCP_HIGH_WATER && !t->ws_paused) {
		t->ws_paused = true;
		ws_conn_pause(ws);
	}
}

static void ws_drain(struct ws_conn *ws, void *arg)
{
	tcp_start_reading(arg);
}

static void tunnel_unlink(struct tunnel *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else if (t->a->tunnels == t)
		t->a->tunnels = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

void tunnel_close_all(struct agent *a)
{
	for (struct tunnel *t = a->tunnels, *next; t; t = next) {
		next = t->next;
		if (t->ws)
			ws_conn_close(t->ws, WS_CLOSE_GOING_AWAY, "sandbox suspending");
	}
}

static void ws_closed(struct ws_conn *ws, unsigned code, struct sv reason, void *arg)
{
	struct tunnel *t = arg;
	tunnel_unlink(t);
	t->ws = NULL;
	tcp_close(t);
	tunnel_unref(t);
}

static const struct ws_conn_ops tunnel_ops = {
        .on_message = ws_message,
        .on_drain = ws_drain,
        .on_close = ws_closed,
};

static void request_abort(struct http_request *req)
{
	struct tunnel *t = req->data;
	t->req = NULL;
	tcp_close(t);
	tunnel_unref(t);
}

/* The TCP side answered (or not): finish the upgrade. */
static void connected(uv_connect_t *c, int status)
{
	struct tunnel *t = c->data;
	struct http_request *req = t->req;
	if (!req) /* the client went away meanwhile */
		return;
	t->req = NULL;
	req->on_abort = NULL;
	if (status < 0 && t->a->cfg.tunnel_refused_502) {
		agent_error(req, 502, "CONNECTION_REFUSED", "nothing is listening on 127.0.0.1:%d",
		            t->port);
		tcp_close(t);
		tunnel_unref(t);
		return;
	}
	struct buf left = BUF_INIT;
	uv_stream_t *s = agent_ws_accept(req, &left);
	tunnel_unref(t); /* the request's reference passes to the WebSocket */
	if (!s) {
		buf_release(&left);
		tcp_close(t);
		return;
	}
	struct ws_conn_config cfg;
	ws_conn_config_defaults(&cfg);
	cfg.max_message = TUNNEL_MAX_MESSAGE;
	cfg.write_high_water = 1024 * 1024;
	t->refs++;
	t->ws = ws_conn_new(s, &cfg, &tunnel_ops, t, left.data, left.len);
	buf_release(&left);
	t->next = t->a->tunnels;
	if (t->next)
		t->next->prev = t;
	t->a->tunnels = t;
	if (status < 0) {
		char reason[96];
		snprintf(reason, sizeof(reason), "connection refused: nothing listening on port %d",
		         t->port);
		ws_conn_close(t->ws, WS_CLOSE_INTERNAL, reason);
		tcp_close(t);
		return;
	}
	tcp_start_reading(t);
}

void api_tunnel_tcp(struct http_request *req, struct agent *a)
{
	struct buf q = BUF_INIT;
	uint64_t port = 0;
	bool ok = http_request_query(req, "port", &q) &&
	          sv_to_u64(sv_make(buf_cstr(&q), q.len), 65535, &port) == 0 && port > 0;
	buf_release(&q);
	if (!ok) {
		agent_error(req, 400, "BAD_REQUEST", "\"port\" must be a port number (1-65535)");
		return;
	}
	if (!http_request_header(req, "sec-websocket-key").p) {
		agent_error(req, 400, "BAD_REQUEST", "a WebSocket upgrade is required here");
		return;
	}
	struct tunnel *t = xcalloc(1, sizeof(*t));
	t->a = a;
	t->req = req;
	t->port = (int)port;
	t->refs = 2; /* tcp handle + request */
	uv_tcp_init(a->loop, &t->tcp);
	uv_tcp_nodelay(&t->tcp, 1);
	t->tcp.data = t;
	t->connect.data = t;
	req->data = t;
	req->on_abort = request_abort;
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", (int)port, &sa);
	int r = uv_tcp_connect(&t->connect, &t->tcp, (struct sockaddr *)&sa, connected);
	if (r < 0) {
		t->connect.data = t;
		connected(&t->connect, r);
	}
}
