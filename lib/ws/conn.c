/* ws_conn: the WebSocket protocol on a libuv stream (read/parse loop, pings, close handshake,
 * write queue with back-pressure). The conn is freed once its stream and timer are closed; the
 * user's on_close runs from that last close callback, so it never runs inside a user call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "ws/ws_conn.h"

struct ws_conn {
	uv_stream_t *stream;
	uv_timer_t timer;
	struct ws_conn_config cfg;
	const struct ws_conn_ops *ops;
	void *arg;
	struct ws_parser parser;
	struct buf in;
	size_t queued;
	int refs; /* open handles and writes in flight */
	uint64_t prng;
	unsigned close_code;
	char close_reason[WS_MAX_CONTROL_PAYLOAD];
	bool pressure;
	bool paused;
	bool reading;
	bool awaiting_pong;
	bool close_sent;
	bool close_received;
	bool finishing;
};

struct ws_wreq {
	uv_write_t w;
	struct ws_conn *c;
	struct buf b;
	bool finish; /* tear the connection down once this is written */
};

static void conn_finish(struct ws_conn *c);
static void conn_process(struct ws_conn *c);

void ws_conn_config_defaults(struct ws_conn_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->role = WS_ROLE_SERVER;
	cfg->max_message = 64 * 1024;
	cfg->write_high_water = 256 * 1024;
	cfg->close_timeout_ms = 2000;
}

static void conn_unref(struct ws_conn *c)
{
	if (--c->refs > 0)
		return;
	struct sv reason = sv_from(c->close_reason);
	if (c->ops->on_close)
		c->ops->on_close(c, c->close_code, reason, c->arg);
	ws_parser_release(&c->parser);
	buf_release(&c->in);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	struct ws_conn *c = h->data;
	if ((uv_handle_t *)c->stream == h)
		free(h);
	conn_unref(c);
}

static void conn_finish(struct ws_conn *c)
{
	if (c->finishing)
		return;
	c->finishing = true;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	uv_close((uv_handle_t *)c->stream, handle_closed);
}

static void record_close(struct ws_conn *c, unsigned code, struct sv reason)
{
	c->close_code = code;
	size_t n =
	        reason.len < sizeof(c->close_reason) - 1 ? reason.len : sizeof(c->close_reason) - 1;
	memcpy(c->close_reason, reason.p ? reason.p : "", n);
	c->close_reason[n] = '\0';
}

/* ---- writing ---- */

static void write_done(uv_write_t *w, int status)
{
	struct ws_wreq *wr = (struct ws_wreq *)w;
	struct ws_conn *c = wr->c;
	c->queued -= wr->b.len;
	bool finish = wr->finish;
	buf_release(&wr->b);
	free(wr);
	if (!c->finishing && (status < 0 || finish))
		conn_finish(c);
	if (!c->finishing && c->pressure && c->queued <= c->cfg.write_high_water / 2) {
		c->pressure = false;
		if (c->ops->on_drain)
			c->ops->on_drain(c, c->arg);
	}
	conn_unref(c);
}

static uint64_t prng_next(struct ws_conn *c)
{
	/* xorshift64*: masking keys must be unpredictable to intermediaries, not secret */
	c->prng ^= c->prng >> 12;
	c->prng ^= c->prng << 25;
	c->prng ^= c->prng >> 27;
	return c->prng * 0x2545f4914f6cdd1dull;
}

/* Queues one frame. Returns 0 / 1 (pressure) / -EPIPE. */
static int conn_write_frame(struct ws_conn *c, uint8_t opcode, const void *prefix, size_t plen,
                            const void *data, size_t len, bool finish)
{
	if (c->finishing)
		return -EPIPE;
	struct ws_wreq *wr = xcalloc(1, sizeof(*wr));
	uint8_t mask[4];
	uint64_t r = prng_next(c);
	memcpy(mask, &r, 4);
	wr->c = c;
	wr->finish = finish;
	buf_grow(&wr->b, plen + len + WS_MAX_HEADER);
	ws_frame_build2(&wr->b, opcode, prefix, plen, data, len,
	                c->cfg.role == WS_ROLE_CLIENT ? mask : NULL);
	uv_buf_t ub = uv_buf_init(wr->b.data, (unsigned)wr->b.len);
	if (uv_write(&wr->w, c->stream, &ub, 1, write_done) < 0) {
		buf_release(&wr->b);
		free(wr);
		conn_finish(c);
		return -EPIPE;
	}
	c->refs++;
	c->queued += wr->b.len;
	if (c->queued > c->cfg.write_high_water) {
		c->pressure = true;
		return 1;
	}
	return 0;
}

int ws_conn_send(struct ws_conn *c, uint8_t opcode, const void *prefix, size_t plen,
                 const void *data, size_t len)
{
	if (c->close_sent || c->finishing)
		return -EPIPE;
	return conn_write_frame(c, opcode, prefix, plen, data, len, false);
}

static void send_close(struct ws_conn *c, unsigned code, const char *reason, bool finish)
{
	struct buf p = BUF_INIT;
	if (code != WS_CLOSE_NO_STATUS)
		ws_close_payload_build(&p, code, reason);
	c->close_sent = true;
	conn_write_frame(c, WS_OP_CLOSE, NULL, 0, p.data, p.len, finish);
	buf_release(&p);
}

static void close_timeout(uv_timer_t *t)
{
	conn_finish(t->data);
}

void ws_conn_close(struct ws_conn *c, unsigned code, const char *reason)
{
	if (c->close_sent || c->finishing)
		return;
	record_close(c, code, sv_from(reason));
	send_close(c, code, reason, false);
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, close_timeout, c->cfg.close_timeout_ms, 0);
}

size_t ws_conn_queued(const struct ws_conn *c)
{
	return c->queued;
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct ws_conn *c = h->data;
	buf_grow(&c->in, 64 * 1024);
	b->base = c->in.data + c->in.len;
	b->len = c->in.cap - c->in.len - 1;
}

static void fail_conn(struct ws_conn *c, unsigned code, const char *reason)
{
	record_close(c, code, sv_from(reason));
	if (!c->close_sent)
		send_close(c, code, reason, true);
	else
		conn_finish(c);
}

static void on_peer_close(struct ws_conn *c, const struct ws_event *ev)
{
	unsigned code;
	struct sv reason;
	if (ws_close_payload_parse(ev->data, ev->len, &code, &reason) < 0) {
		fail_conn(c, WS_CLOSE_PROTOCOL, "bad close frame");
		return;
	}
	c->close_received = true;
	if (c->close_sent) {
		conn_finish(c); /* our close was answered */
		return;
	}
	record_close(c, code, reason);
	/* echo the code, then close the transport (the server closes TCP first) */
	char rbuf[WS_MAX_CONTROL_PAYLOAD];
	snprintf(rbuf, sizeof(rbuf), "%.*s", SV_FMT(reason));
	send_close(c, code, rbuf, true);
}

static void handle_event(struct ws_conn *c, const struct ws_event *ev)
{
	switch (ev->opcode) {
	case WS_OP_PING:
		if (!c->close_sent)
			conn_write_frame(c, WS_OP_PONG, NULL, 0, ev->data, ev->len, false);
		break;
	case WS_OP_PONG:
		c->awaiting_pong = false;
		break;
	case WS_OP_CLOSE:
		on_peer_close(c, ev);
		break;
	default:
		if (!c->close_sent && c->ops->on_message)
			c->ops->on_message(c, ev->opcode, ev->data, ev->len, c->arg);
	}
}

static void conn_process(struct ws_conn *c)
{
	while (!c->finishing && !c->paused && !c->close_received) {
		struct ws_event ev;
		unsigned code = 0;
		int r = ws_parser_next(&c->parser, &c->in, &ev, &code);
		if (r == 0)
			break;
		if (r < 0) {
			fail_conn(c, code,
			          code == WS_CLOSE_TOO_BIG ? "message too big" : "protocol error");
			break;
		}
		handle_event(c, &ev);
	}
}

static void update_reading(struct ws_conn *c);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct ws_conn *c = s->data;
	if (nread > 0) {
		c->in.len += (size_t)nread;
		c->in.data[c->in.len] = '\0';
		conn_process(c);
		update_reading(c);
		return;
	}
	if (nread == 0)
		return;
	if (!c->close_received && !c->close_sent)
		record_close(c, WS_CLOSE_ABNORMAL, SV(""));
	conn_finish(c);
}

static void update_reading(struct ws_conn *c)
{
	bool want = !c->finishing && !c->paused && !c->close_received;
	if (want && !c->reading) {
		if (uv_read_start(c->stream, alloc_cb, read_cb) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(c->stream);
		c->reading = false;
	}
}

void ws_conn_pause(struct ws_conn *c)
{
	c->paused = true;
	if (!c->finishing)
		update_reading(c);
}

void ws_conn_resume(struct ws_conn *c)
{
	if (!c->paused || c->finishing)
		return;
	c->paused = false;
	conn_process(c);
	update_reading(c);
}

static void ping_tick(uv_timer_t *t)
{
	struct ws_conn *c = t->data;
	if (c->close_sent)
		return;
	if (c->awaiting_pong) {
		record_close(c, WS_CLOSE_ABNORMAL, SV("ping timeout"));
		conn_finish(c);
		return;
	}
	c->awaiting_pong = true;
	conn_write_frame(c, WS_OP_PING, NULL, 0, NULL, 0, false);
}

struct ws_conn *ws_conn_new(uv_stream_t *stream, const struct ws_conn_config *cfg,
                            const struct ws_conn_ops *ops, void *arg, const void *leftover,
                            size_t leftover_len)
{
	struct ws_conn *c = xcalloc(1, sizeof(*c));
	if (cfg)
		c->cfg = *cfg;
	else
		ws_conn_config_defaults(&c->cfg);
	c->stream = stream;
	c->ops = ops;
	c->arg = arg;
	c->refs = 2;
	c->close_code = WS_CLOSE_ABNORMAL;
	random_bytes(&c->prng, sizeof(c->prng));
	c->prng |= 1;
	stream->data = c;
	uv_timer_init(stream->loop, &c->timer);
	c->timer.data = c;
	ws_parser_init(&c->parser, c->cfg.role, c->cfg.max_message);
	if (leftover_len)
		buf_add(&c->in, leftover, leftover_len);
	if (c->cfg.ping_interval_ms)
		uv_timer_start(&c->timer, ping_tick, c->cfg.ping_interval_ms,
		               c->cfg.ping_interval_ms);
	conn_process(c);
	update_reading(c);
	return c;
}
