/* One DNS exchange with the upstream resolvers on a libuv loop: the query goes out with a fresh
 * random id from a fresh socket (so a random source port too), over UDP or TCP, to each upstream
 * in turn until one answers within the timeout. The answer must come from the upstream asked and
 * carry the id sent; anything else is ignored. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "net/dnsfwd.h"

#define TCP_MAX 65535

/* One attempt's socket and its requests: freed when the socket is closed, which libuv does only
 * after cancelling the requests, so an attempt never reuses memory the previous one still uses. */
struct sock {
	union {
		uv_handle_t h;
		uv_tcp_t tcp;
		uv_udp_t udp;
	} u;
	struct upx *x;
	uv_udp_send_t send;
	uv_connect_t conn;
	uv_write_t wr;
};

struct upx {
	struct net_dns *d;
	bool tcp;
	uint8_t *q; /* 2-byte length, then the query (with our id) */
	size_t qlen;
	uint16_t id;
	size_t up; /* upstream being asked */
	struct sock *sock;
	uv_timer_t *timer;
	struct buf rx;
	int refs; /* the exchange itself plus each open handle */
	bool finished;
	upx_cb cb;
	void *data;
};

static void upx_unref(struct upx *x)
{
	if (--x->refs == 0) {
		struct net_dns *d = x->d;
		buf_release(&x->rx);
		free(x->q);
		free(x);
		net_dns_unref(d);
	}
}

static void sock_closed(uv_handle_t *h)
{
	struct sock *s = (struct sock *)h;
	struct upx *x = s->x;

	free(s);
	upx_unref(x);
}

static void timer_closed(uv_handle_t *h)
{
	struct upx *x = h->data;

	free(h);
	upx_unref(x);
}

static void handles_close(struct upx *x)
{
	if (x->sock) {
		uv_close(&x->sock->u.h, sock_closed);
		x->sock = NULL;
	}
	if (x->timer) {
		uv_close((uv_handle_t *)x->timer, timer_closed);
		x->timer = NULL;
	}
}

/* Ends the exchange: the callback sees the answer (NULL when none came), then it goes away. */
static void finish(struct upx *x, const uint8_t *ans, size_t len)
{
	if (x->finished)
		return;
	x->finished = true;
	handles_close(x);
	x->cb(x->d, x->data, ans, len);
	upx_unref(x);
}

static void attempt(struct upx *x);

static void on_timeout(uv_timer_t *t)
{
	struct upx *x = t->data;

	handles_close(x);
	if (++x->up < x->d->n_ups)
		attempt(x);
	else
		finish(x, NULL, 0);
}

static struct sockaddr_in up_addr(const struct upx *x)
{
	const struct net_upstream *u = &x->d->ups[x->up];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(u->port)};

	sa.sin_addr.s_addr = htonl(u->addr);
	return sa;
}

static bool answer_ok(const struct upx *x, const uint8_t *p, size_t len)
{
	return len >= 12 && (p[0] << 8 | p[1]) == x->id && (p[2] & 0x80);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static uint8_t udp_buf[TCP_MAX + 1]; /* the loop is single-threaded: one buffer is enough */
	struct upx *x = ((struct sock *)h)->x;

	(void)suggested;
	if (x->tcp) {
		buf_grow(&x->rx, 4096);
		*b = uv_buf_init(x->rx.data + x->rx.len, (unsigned)(x->rx.cap - x->rx.len - 1));
	} else {
		*b = uv_buf_init((char *)udp_buf, sizeof(udp_buf));
	}
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                   unsigned flags)
{
	struct upx *x = ((struct sock *)h)->x;
	struct sockaddr_in sa = up_addr(x);
	const struct sockaddr_in *f = (const struct sockaddr_in *)from;

	(void)flags;
	if (n <= 0 || !from || f->sin_addr.s_addr != sa.sin_addr.s_addr ||
	    f->sin_port != sa.sin_port || !answer_ok(x, (uint8_t *)b->base, (size_t)n))
		return;
	finish(x, (uint8_t *)b->base, (size_t)n);
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct upx *x = ((struct sock *)s)->x;
	size_t want;

	(void)b;
	if (n < 0) {
		on_timeout(x->timer); /* closed or failed: next upstream now */
		return;
	}
	x->rx.len += (size_t)n;
	if (x->rx.len < 2)
		return;
	want = (size_t)((uint8_t)x->rx.data[0] << 8 | (uint8_t)x->rx.data[1]);
	if (x->rx.len < 2 + want)
		return;
	if (answer_ok(x, (uint8_t *)x->rx.data + 2, want))
		finish(x, (uint8_t *)x->rx.data + 2, want);
	else
		on_timeout(x->timer);
}

static void on_write(uv_write_t *w, int status)
{
	(void)w;
	(void)status; /* a failed write ends in a read error or the timeout */
}

static void on_connect(uv_connect_t *c, int status)
{
	struct sock *s = (struct sock *)c->handle;
	struct upx *x = s->x;
	uv_buf_t b = uv_buf_init((char *)x->q, (unsigned)(x->qlen + 2));

	if (status < 0 || x->sock != s)
		return; /* cancelled (closed) or refused: the timeout moves on */
	uv_write(&s->wr, c->handle, &b, 1, on_write);
	uv_read_start(c->handle, alloc_cb, on_tcp_read);
}

static void on_udp_sent(uv_udp_send_t *s, int status)
{
	(void)s;
	(void)status;
}

static int sock_start(struct upx *x)
{
	struct sockaddr_in sa = up_addr(x);
	struct sock *s = xcalloc(1, sizeof(*s));
	uv_buf_t b = uv_buf_init((char *)x->q + 2, (unsigned)x->qlen);
	int r;

	s->x = x;
	x->sock = s;
	x->refs++;
	if (x->tcp) {
		uv_tcp_init(x->d->loop, &s->u.tcp);
		return uv_tcp_connect(&s->conn, &s->u.tcp, (struct sockaddr *)&sa, on_connect);
	}
	uv_udp_init(x->d->loop, &s->u.udp);
	r = uv_udp_send(&s->send, &s->u.udp, &b, 1, (struct sockaddr *)&sa, on_udp_sent);
	return r < 0 ? r : uv_udp_recv_start(&s->u.udp, alloc_cb, on_udp);
}

static void attempt(struct upx *x)
{
	x->timer = xmalloc(sizeof(*x->timer));
	uv_timer_init(x->d->loop, x->timer);
	x->timer->data = x;
	x->refs++;
	random_bytes(&x->id, sizeof(x->id));
	x->q[2] = (uint8_t)(x->id >> 8);
	x->q[3] = (uint8_t)x->id;
	buf_reset(&x->rx);
	/* a socket that cannot even start fails over at once, not after the timeout */
	uv_timer_start(x->timer, on_timeout, sock_start(x) < 0 ? 0 : net_cfg_dns_timeout(x->d->cfg),
	               0);
}

void upx_start(struct net_dns *d, const uint8_t *query, size_t len, bool tcp, upx_cb cb, void *data)
{
	struct upx *x;

	if (len < 12 || len > TCP_MAX || d->n_ups == 0) {
		cb(d, data, NULL, 0);
		return;
	}
	x = xcalloc(1, sizeof(*x));
	net_dns_ref(d);
	x->d = d;
	x->tcp = tcp;
	x->q = xmalloc(len + 2);
	x->q[0] = (uint8_t)(len >> 8);
	x->q[1] = (uint8_t)len;
	memcpy(x->q + 2, query, len);
	x->qlen = len;
	x->cb = cb;
	x->data = data;
	x->refs = 1;
	attempt(x);
}
