/* The per-sandbox DNS forwarder: UDP and TCP on the resolver address, port 53, answering only
 * the pool; each answer is learned from (net_learn_answer) before it is relayed, so a sandbox
 * can connect to an allowed host name's address the moment it has it. A refresher re-resolves
 * every sandbox's policy host names every dns_ttl_min / 3 seconds, which keeps the learned
 * addresses current even for a sandbox that never asks (hard-coded addresses, its own DNS). The
 * same timer runs net_reap in the libuv thread pool. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "net/dnsfwd.h"

struct uq {
	struct uq *next;
	struct sockaddr_in client;
	uint16_t cid;
	uint8_t *q;
	size_t len;
};

struct tconn {
	uv_tcp_t h; /* first: the handle is the connection */
	uv_timer_t idle;
	struct tconn *prev, *next;
	struct net_dns *d;
	uint32_t peer;
	struct buf in;
	uint16_t cid;
	uint8_t *q;
	size_t qlen;
	bool busy, closing;
	int refs; /* the connection, its two handles, an exchange in flight, a write */
};

struct rkey {
	char key[NET_KEY_LEN + 1];
	uint64_t due;
	bool seen;
};

void net_dns_ref(struct net_dns *d)
{
	d->refs++;
}

void net_dns_unref(struct net_dns *d)
{
	if (--d->refs == 0) {
		free(d->rkeys);
		free(d);
	}
}

static void dns_handle_closed(uv_handle_t *h)
{
	net_dns_unref(h->data);
}

static bool in_pool(const struct net_dns *d, uint32_t ip)
{
	uint32_t mask = ~0u << (32 - d->pool.prefix);

	return (ip & mask) == d->pool.net && ip != d->pool.gw;
}

static uint32_t learn(struct net_dns *d, uint32_t client, const uint8_t *ans, size_t len,
                      bool *ret_ok)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	int r = net_learn_answer(d->cfg, client, ans, len, &err);

	/* fail closed: an answer whose addresses could not reach a deny set is not relayed */
	*ret_ok = r >= 0;
	if (r > 0)
		d->stats.learned += (uint64_t)r;
	return r > 0 ? (uint32_t)r : 0;
}

/* ---- UDP ---- */

static unsigned source_count(const struct net_dns *d, uint32_t ip)
{
	unsigned n = 0;

	for (const struct uq *q = d->queries; q; q = q->next)
		n += q->client.sin_addr.s_addr == htonl(ip);
	return n;
}

static void uq_unlink(struct net_dns *d, struct uq *q)
{
	for (struct uq **p = &d->queries; *p; p = &(*p)->next) {
		if (*p == q) {
			*p = q->next;
			break;
		}
	}
	d->inflight--;
}

static void udp_reply(struct net_dns *d, struct uq *q, uint8_t *msg, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);

	msg[0] = (uint8_t)(q->cid >> 8);
	msg[1] = (uint8_t)q->cid;
	uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)&q->client);
}

static void uq_done(struct net_dns *d, void *data, const uint8_t *ans, size_t len)
{
	struct uq *q = data;
	bool ok = false;

	uq_unlink(d, q);
	if (!d->stopping) {
		if (ans)
			learn(d, ntohl(q->client.sin_addr.s_addr), ans, len, &ok);
		if (ok) {
			uint8_t *copy = xmalloc(len);
			memcpy(copy, ans, len);
			udp_reply(d, q, copy, len);
			free(copy);
			d->stats.answered++;
		} else {
			udp_reply(d, q, q->q, dns_servfail(q->q, q->len));
			d->stats.failed++;
		}
	}
	free(q->q);
	free(q);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char buf[65536];

	(void)h;
	(void)suggested;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_udp_query(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                         unsigned flags)
{
	struct net_dns *d = h->data;
	const struct sockaddr_in *sa = (const struct sockaddr_in *)from;
	uint32_t ip;
	struct uq *q;

	if (n <= 0 || !from || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
		return;
	ip = ntohl(sa->sin_addr.s_addr);
	if (!in_pool(d, ip) || n < 12 || (b->base[2] & 0x80) || d->inflight >= DNS_MAX_INFLIGHT ||
	    source_count(d, ip) >= DNS_MAX_PER_SOURCE) {
		d->stats.dropped++;
		return;
	}
	d->stats.queries++;
	q = xcalloc(1, sizeof(*q));
	q->client = *sa;
	q->cid = (uint16_t)((uint8_t)b->base[0] << 8 | (uint8_t)b->base[1]);
	q->len = (size_t)n;
	q->q = xmalloc(q->len);
	memcpy(q->q, b->base, q->len);
	q->next = d->queries;
	d->queries = q;
	d->inflight++;
	upx_start(d, q->q, q->len, false, uq_done, q);
}

/* ---- TCP: one query at a time per connection, in order ---- */

static void tconn_unref(struct tconn *c)
{
	if (--c->refs == 0) {
		struct net_dns *d = c->d;
		buf_release(&c->in);
		free(c->q);
		free(c);
		net_dns_unref(d);
	}
}

static void tconn_handle_closed(uv_handle_t *h)
{
	tconn_unref(h->data);
}

static void tconn_close(struct tconn *c)
{
	struct net_dns *d = c->d;

	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->n_conns--;
	uv_close((uv_handle_t *)&c->h, tconn_handle_closed);
	uv_close((uv_handle_t *)&c->idle, tconn_handle_closed);
	tconn_unref(c);
}

static void on_idle(uv_timer_t *t)
{
	tconn_close(t->data);
}

struct twrite {
	uv_write_t req;
	struct tconn *c;
	uint8_t data[];
};

static void tconn_process(struct tconn *c);

static void on_twrite(uv_write_t *w, int status)
{
	struct twrite *tw = (struct twrite *)w;
	struct tconn *c = tw->c;

	free(tw);
	if (status < 0)
		tconn_close(c);
	else if (!c->closing)
		tconn_process(c);
	tconn_unref(c);
}

static void tconn_send(struct tconn *c, const uint8_t *msg, size_t len)
{
	struct twrite *tw = xmalloc(sizeof(*tw) + len + 2);
	uv_buf_t b = uv_buf_init((char *)tw->data, (unsigned)len + 2);

	tw->c = c;
	tw->data[0] = (uint8_t)(len >> 8);
	tw->data[1] = (uint8_t)len;
	memcpy(tw->data + 2, msg, len);
	tw->data[2] = (uint8_t)(c->cid >> 8);
	tw->data[3] = (uint8_t)c->cid;
	c->refs++;
	if (uv_write(&tw->req, (uv_stream_t *)&c->h, &b, 1, on_twrite) < 0) {
		free(tw);
		tconn_unref(c);
		tconn_close(c);
	}
}

static void tq_done(struct net_dns *d, void *data, const uint8_t *ans, size_t len)
{
	struct tconn *c = data;
	bool ok = false;

	c->busy = false;
	if (!c->closing && !d->stopping) {
		if (ans)
			learn(d, c->peer, ans, len, &ok);
		if (ok) {
			tconn_send(c, ans, len);
			d->stats.answered++;
		} else {
			tconn_send(c, c->q, dns_servfail(c->q, c->qlen));
			d->stats.failed++;
		}
		uv_timer_again(&c->idle);
	}
	tconn_unref(c);
}

static void tconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct tconn *c = h->data;

	(void)suggested;
	buf_grow(&c->in, 4096);
	*b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_tread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct tconn *c = s->data;

	(void)b;
	if (n < 0) {
		tconn_close(c);
		return;
	}
	c->in.len += (size_t)n;
	uv_timer_again(&c->idle);
	tconn_process(c);
}

static void tconn_process(struct tconn *c)
{
	size_t len;

	if (c->busy || c->closing)
		return;
	if (c->in.len >= 2) {
		len = (size_t)((uint8_t)c->in.data[0] << 8 | (uint8_t)c->in.data[1]);
		if (len < 12) {
			c->d->stats.dropped++;
			tconn_close(c);
			return;
		}
		if (c->in.len >= 2 + len) {
			free(c->q);
			c->q = xmalloc(len);
			memcpy(c->q, c->in.data + 2, len);
			c->qlen = len;
			c->cid = (uint16_t)(c->q[0] << 8 | c->q[1]);
			buf_consume(&c->in, 2 + len);
			c->busy = true;
			c->refs++;
			c->d->stats.queries++;
			uv_read_stop((uv_stream_t *)&c->h);
			upx_start(c->d, c->q, len, true, tq_done, c);
			return;
		}
	}
	uv_read_start((uv_stream_t *)&c->h, tconn_alloc, on_tread);
}

static uint32_t peer_ip(uv_tcp_t *h)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getpeername(h, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_INET)
		return 0;
	return ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);
}

static void on_tcp_conn(uv_stream_t *server, int status)
{
	struct net_dns *d = server->data;
	struct tconn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->refs = 3;
	net_dns_ref(d);
	uv_tcp_init(d->loop, &c->h);
	uv_timer_init(d->loop, &c->idle);
	c->h.data = c->idle.data = c;
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->n_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0 || !in_pool(d, c->peer = peer_ip(&c->h)) ||
	    d->n_conns > DNS_MAX_TCP) {
		d->stats.dropped++;
		tconn_close(c);
		return;
	}
	uv_timer_start(&c->idle, on_idle, DNS_TCP_IDLE_MS, DNS_TCP_IDLE_MS);
	tconn_process(c);
}

/* ---- refresher ---- */

/* Learned addresses live at least dns_ttl_min; a name is re-resolved every third of that, and
 * the timer looks every sixth, so a refresh is never later than half the shortest lifetime. */
static uint64_t refresh_interval_ms(const struct net_dns *d)
{
	uint64_t ms = (uint64_t)net_cfg_ttl_clamp(d->cfg, 0) * 1000 / 3;

	return ms < 1000 ? 1000 : ms;
}

static void rq_done(struct net_dns *d, void *data, const uint8_t *ans, size_t len)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	char *key = data;
	int r;

	if (ans && !d->stopping && (r = net_learn_for_key(d->cfg, key, ans, len, &err)) > 0)
		d->stats.learned += (uint64_t)r;
	free(key);
}

static void refresh_hosts(struct net_dns *d, const char *key, const struct net_host *h, size_t n)
{
	struct buf q = BUF_INIT;

	for (size_t i = 0; i < n && !d->stopping; i++) {
		buf_reset(&q);
		if (dns_query_build(&q, 0, h[i].name, DNS_TYPE_A) < 0)
			continue;
		d->stats.refreshes++;
		upx_start(d, (uint8_t *)q.data, q.len, false, rq_done, xstrdup(key));
	}
	buf_release(&q);
}

static void refresh_key(struct net_dns *d, const char *key)
{
	struct net_state st = {0};
	struct net_policy p = {0};

	if (net_state_read(d->cfg, key, &st, NULL) == 0 &&
	    net_policy_parse(st.policy, &p, NULL) == 0) {
		refresh_hosts(d, key, p.allow_hosts, p.n_allow_hosts);
		refresh_hosts(d, key, p.deny_hosts, p.n_deny_hosts);
	}
	net_policy_release(&p);
	net_state_release(&st);
}

static int refresh_cb(const char *key, void *data)
{
	struct net_dns *d = data;
	uint64_t now = time_mono_ms();
	struct rkey *k = NULL;

	for (size_t i = 0; i < d->n_rkeys && !k; i++)
		if (strcmp(d->rkeys[i].key, key) == 0)
			k = &d->rkeys[i];
	if (!k) { /* new: its names were just resolved when the policy was applied */
		d->rkeys = xreallocarray(d->rkeys, d->n_rkeys + 1, sizeof(*d->rkeys));
		k = &d->rkeys[d->n_rkeys++];
		snprintf(k->key, sizeof(k->key), "%s", key);
		k->due = now + refresh_interval_ms(d);
	}
	k->seen = true;
	if (now >= k->due) {
		k->due = now + refresh_interval_ms(d);
		refresh_key(d, key);
	}
	return 0;
}

static void reap_work(uv_work_t *w)
{
	struct net_dns *d = w->data;
	struct hutch_error err = HUTCH_ERROR_INIT;

	net_reap(d->cfg, &err); /* a failure is retried at the next tick */
}

static void reap_done(uv_work_t *w, int status)
{
	struct net_dns *d = w->data;

	(void)status;
	d->reaping = false;
	net_dns_unref(d);
}

static void on_refresh(uv_timer_t *t)
{
	struct net_dns *d = t->data;
	size_t n = 0;

	if (!d->reaping) { /* retired veths: deleted off the loop, many per kernel call */
		d->reaping = true;
		d->reap.data = d;
		net_dns_ref(d);
		uv_queue_work(d->loop, &d->reap, reap_work, reap_done);
	}
	for (size_t i = 0; i < d->n_rkeys; i++)
		d->rkeys[i].seen = false;
	net_state_list(d->cfg, refresh_cb, d);
	for (size_t i = 0; i < d->n_rkeys; i++)
		if (d->rkeys[i].seen)
			d->rkeys[n++] = d->rkeys[i];
	d->n_rkeys = n;
}

/* ---- start and stop ---- */

static int servers_start(struct net_dns *d, struct hutch_error *err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	char ip[16];
	int r;

	sa.sin_addr.s_addr = htonl(d->pool.gw);
	net_ip_format(d->pool.gw, ip);
	if ((r = uv_udp_bind(&d->udp, (struct sockaddr *)&sa, 0)) < 0 ||
	    (r = uv_udp_recv_start(&d->udp, udp_alloc, on_udp_query)) < 0 ||
	    (r = uv_tcp_bind(&d->tcp, (struct sockaddr *)&sa, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&d->tcp, 128, on_tcp_conn)) < 0)
		return hutch_error_set(err, r, "DNS forwarder on %s:53: %s (did net_init run?)", ip,
		                       uv_strerror(r));
	return 0;
}

int net_dns_start(const struct net_config *cfg, struct uv_loop_s *loop, struct net_dns **ret,
                  struct hutch_error *err)
{
	struct net_dns *d = xcalloc(1, sizeof(*d));
	uint64_t tick;
	int r;

	d->cfg = cfg;
	d->loop = loop;
	d->refs = 1;
	if ((r = net_cfg_pool(cfg, &d->pool, err)) < 0 ||
	    (r = net_upstreams_load(cfg, d->ups, &d->n_ups, err)) < 0) {
		free(d);
		return r;
	}
	uv_udp_init(loop, &d->udp);
	uv_tcp_init(loop, &d->tcp);
	uv_timer_init(loop, &d->refresh);
	d->udp.data = d->tcp.data = d->refresh.data = d;
	d->refs += 3;
	if ((r = servers_start(d, err)) < 0) {
		net_dns_stop(d);
		return r;
	}
	tick = refresh_interval_ms(d) / 2 < 5000 ? refresh_interval_ms(d) / 2 : 5000;
	uv_timer_start(&d->refresh, on_refresh, tick, tick);
	*ret = d;
	return 0;
}

void net_dns_stop(struct net_dns *d)
{
	if (!d)
		return;
	d->stopping = true;
	uv_close((uv_handle_t *)&d->udp, dns_handle_closed);
	uv_close((uv_handle_t *)&d->tcp, dns_handle_closed);
	uv_close((uv_handle_t *)&d->refresh, dns_handle_closed);
	while (d->conns)
		tconn_close(d->conns);
	net_dns_unref(d);
}

void net_dns_stats_get(const struct net_dns *dns, struct net_dns_stats *ret)
{
	*ret = dns->stats;
}
