/* Asynchronous pooled HTTP client. Each request owns one connection while in flight; a
 * connection whose response allowed keep-alive goes back to its target's idle list. A request
 * sent on a reused connection that dies before any response byte is retried once on a new one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "http/client.h"
#include "http/internal.h"

struct cconn;

struct creq {
	struct http_client *client;
	char *target;
	struct buf wire; /* the serialized request, kept for one retry */
	uint64_t timeout_ms;
	size_t max_body;
	http_client_cb cb;
	void *data;
	uv_timer_t timer;
	struct cconn *conn;
	struct http_client_response resp;
	bool retried;
	bool done;
	struct creq *next; /* in client->reqs */
};

struct cconn {
	struct http_client *client;
	union http_stream_box h;
	uv_connect_t connect;
	http_parser parser;
	char *target;
	struct creq *req;
	struct buf in;
	bool reused;
	bool got_bytes;
	bool keep_alive;
	bool complete;
	bool last_was_value;
	bool closing;
	struct cconn *next; /* in client->idle */
};

struct http_client {
	uv_loop_t *loop;
	struct cconn *idle;
	struct creq *reqs;
	int open_handles;
	bool freeing;
};

static void client_maybe_free(struct http_client *c)
{
	if (c->freeing && c->open_handles == 0 && !c->reqs && !c->idle)
		free(c);
}

struct http_client *http_client_new(uv_loop_t *loop)
{
	struct http_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	return c;
}

/* ---- connections ---- */

static void cconn_closed(uv_handle_t *h)
{
	struct cconn *cc = h->data;
	struct http_client *c = cc->client;
	buf_release(&cc->in);
	free(cc->target);
	free(cc);
	c->open_handles--;
	client_maybe_free(c);
}

static void cconn_close(struct cconn *cc)
{
	if (cc->closing)
		return;
	cc->closing = true;
	struct http_client *c = cc->client;
	for (struct cconn **pp = &c->idle; *pp; pp = &(*pp)->next) {
		if (*pp == cc) {
			*pp = cc->next;
			break;
		}
	}
	uv_close(&cc->h.handle, cconn_closed);
}

static void creq_finish(struct creq *r, int err);
static int creq_send(struct creq *r);

static int on_c_header_field(http_parser *p, const char *at, size_t len)
{
	struct cconn *cc = p->data;
	struct buf *h = &cc->req->resp.head;
	if (cc->last_was_value || h->len == 0) {
		if (h->len)
			buf_adds(h, "\r\n");
		cc->last_was_value = false;
	}
	if (h->len > 64 * 1024)
		return -1;
	buf_add(h, at, len);
	return 0;
}

static int on_c_header_value(http_parser *p, const char *at, size_t len)
{
	struct cconn *cc = p->data;
	struct buf *h = &cc->req->resp.head;
	if (!cc->last_was_value) {
		buf_adds(h, ": ");
		cc->last_was_value = true;
	}
	buf_add(h, at, len);
	return 0;
}

static int on_c_headers_complete(http_parser *p)
{
	struct cconn *cc = p->data;
	if (cc->req->resp.head.len)
		buf_adds(&cc->req->resp.head, "\r\n");
	cc->req->resp.status = p->status_code;
	return 0;
}

static int on_c_body(http_parser *p, const char *at, size_t len)
{
	struct cconn *cc = p->data;
	if (cc->req->resp.body.len + len > cc->req->max_body)
		return -1;
	buf_add(&cc->req->resp.body, at, len);
	return 0;
}

static int on_c_message_complete(http_parser *p)
{
	struct cconn *cc = p->data;
	cc->complete = true;
	cc->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings csettings = {
        .on_header_field = on_c_header_field,
        .on_header_value = on_c_header_value,
        .on_headers_complete = on_c_headers_complete,
        .on_body = on_c_body,
        .on_message_complete = on_c_message_complete,
};

static void c_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct cconn *cc = h->data;
	buf_grow(&cc->in, 64 * 1024);
	b->base = cc->in.data + cc->in.len;
	b->len = cc->in.cap - cc->in.len - 1;
}

/* The request on cc ended: hand cc back to the pool or close it. */
static void cconn_release(struct cconn *cc, bool reusable)
{
	cc->req = NULL;
	if (!reusable || cc->client->freeing) {
		cconn_close(cc);
		return;
	}
	uv_read_stop(&cc->h.stream);
	cc->reused = true;
	cc->complete = false;
	cc->got_bytes = false;
	buf_reset(&cc->in);
	cc->next = cc->client->idle;
	cc->client->idle = cc;
}

static void c_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct cconn *cc = s->data;
	struct creq *r = cc->req;
	if (!r) { /* idle connection closed or sent garbage */
		cconn_close(cc);
		return;
	}
	if (nread > 0) {
		cc->got_bytes = true;
		cc->in.len += (size_t)nread;
		size_t n = http_parser_execute(&cc->parser, &csettings, cc->in.data, cc->in.len);
		enum http_errno e = HTTP_PARSER_ERRNO(&cc->parser);
		if (e == HPE_PAUSED || cc->complete) {
			r->conn = NULL;
			cconn_release(cc, cc->keep_alive && n + 1 >= cc->in.len);
			creq_finish(r, 0);
			return;
		}
		buf_reset(&cc->in);
		if (e != HPE_OK) {
			cconn_close(cc);
			creq_finish(r, r->resp.body.len >= r->max_body ? -EMSGSIZE : -EPROTO);
		}
		return;
	}
	if (nread == 0)
		return;
	/* EOF or error: EOF may end a close-delimited body */
	if (nread == UV_EOF && cc->got_bytes) {
		http_parser_execute(&cc->parser, &csettings, NULL, 0);
		if (cc->complete) {
			r->conn = NULL;
			cc->req = NULL;
			cconn_close(cc);
			creq_finish(r, 0);
			return;
		}
	}
	bool retry = cc->reused && !cc->got_bytes && !r->retried;
	cconn_close(cc);
	r->conn = NULL;
	if (retry) {
		r->retried = true;
		if (creq_send(r) == 0)
			return;
	}
	creq_finish(r, nread == UV_EOF ? -ECONNRESET : (int)nread);
}

static void c_write_done(uv_write_t *w, int status)
{
	struct cconn *cc = w->data;
	free(w);
	if (status < 0 && cc->req && !cc->closing) {
		struct creq *r = cc->req;
		bool retry = cc->reused && !r->retried;
		cconn_close(cc);
		r->conn = NULL;
		if (retry) {
			r->retried = true;
			if (creq_send(r) == 0)
				return;
		}
		creq_finish(r, status);
	}
}

static void cconn_write_request(struct cconn *cc)
{
	struct creq *r = cc->req;
	uv_write_t *w = xcalloc(1, sizeof(*w));
	w->data = cc;
	http_parser_init(&cc->parser, HTTP_RESPONSE);
	cc->parser.data = cc;
	cc->last_was_value = false;
	uv_buf_t b = uv_buf_init(r->wire.data, (unsigned)r->wire.len);
	if (uv_write(w, &cc->h.stream, &b, 1, c_write_done) < 0) {
		free(w);
		cconn_close(cc);
		r->conn = NULL;
		creq_finish(r, -EPIPE);
		return;
	}
	uv_read_start(&cc->h.stream, c_alloc, c_read);
}

static void c_connected(uv_connect_t *creq, int status)
{
	struct cconn *cc = creq->data;
	struct creq *r = cc->req;
	if (!r) {
		cconn_close(cc);
		return;
	}
	if (status < 0) {
		cconn_close(cc);
		r->conn = NULL;
		creq_finish(r, status);
		return;
	}
	cconn_write_request(cc);
}

static int parse_target(const char *target, struct sockaddr_in *ret_addr, const char **ret_path)
{
	if (strncmp(target, "unix:", 5) == 0) {
		*ret_path = target + 5;
		return 0;
	}
	if (strncmp(target, "http://", 7) == 0)
		target += 7;
	char host[64];
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof(host))
		return -EINVAL;
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	uint64_t port;
	struct sv ps = sv_from(colon + 1);
	if (sv_ends_with(ps, SV("/")))
		ps.len--;
	if (sv_to_u64(ps, 65535, &port) < 0)
		return -EINVAL;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (uv_ip4_addr(host, (int)port, ret_addr) < 0)
		return -EINVAL;
	*ret_path = NULL;
	return 0;
}

static int cconn_open(struct http_client *c, struct creq *r)
{
	struct sockaddr_in addr;
	const char *path;
	if (parse_target(r->target, &addr, &path) < 0)
		return -EINVAL;
	struct cconn *cc = xcalloc(1, sizeof(*cc));
	cc->client = c;
	cc->target = xstrdup(r->target);
	cc->req = r;
	r->conn = cc;
	cc->connect.data = cc;
	c->open_handles++;
	if (path) {
		uv_pipe_init(c->loop, &cc->h.pipe, 0);
		cc->h.handle.data = cc;
		uv_pipe_connect(&cc->connect, &cc->h.pipe, path, c_connected);
		return 0;
	}
	uv_tcp_init(c->loop, &cc->h.tcp);
	cc->h.handle.data = cc;
	uv_tcp_nodelay(&cc->h.tcp, 1);
	int rc = uv_tcp_connect(&cc->connect, &cc->h.tcp, (struct sockaddr *)&addr, c_connected);
	if (rc < 0) {
		r->conn = NULL;
		cc->req = NULL;
		cconn_close(cc);
		return rc;
	}
	return 0;
}

/* Sends r on a pooled connection to its target or on a new one. */
static int creq_send(struct creq *r)
{
	struct http_client *c = r->client;
	for (struct cconn **pp = &c->idle; *pp; pp = &(*pp)->next) {
		struct cconn *cc = *pp;
		if (strcmp(cc->target, r->target) != 0)
			continue;
		*pp = cc->next;
		cc->next = NULL;
		cc->req = r;
		r->conn = cc;
		cconn_write_request(cc);
		return 0;
	}
	return cconn_open(c, r);
}

/* ---- requests ---- */

static void creq_timer_closed(uv_handle_t *h)
{
	struct creq *r = h->data;
	struct http_client *c = r->client;
	free(r->target);
	buf_release(&r->wire);
	buf_release(&r->resp.head);
	buf_release(&r->resp.body);
	free(r);
	c->open_handles--;
	client_maybe_free(c);
}

static void creq_finish(struct creq *r, int err)
{
	if (r->done)
		return;
	r->done = true;
	struct http_client *c = r->client;
	for (struct creq **pp = &c->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	uv_timer_stop(&r->timer);
	if (r->conn) {
		r->conn->req = NULL;
		cconn_close(r->conn);
		r->conn = NULL;
	}
	r->cb(err, err ? NULL : &r->resp, r->data);
	uv_close((uv_handle_t *)&r->timer, creq_timer_closed);
}

static void creq_timeout(uv_timer_t *t)
{
	creq_finish(t->data, -ETIMEDOUT);
}

static void creq_start(uv_timer_t *t)
{
	struct creq *r = t->data;
	uv_timer_start(&r->timer, creq_timeout, r->timeout_ms, 0);
	int rc = creq_send(r);
	if (rc < 0)
		creq_finish(r, rc);
}

int http_client_request(struct http_client *c, const char *target, const char *method,
                        const char *path, const char *headers, const void *body, size_t len,
                        uint64_t timeout_ms, size_t max_body, http_client_cb cb, void *data)
{
	struct sockaddr_in addr;
	const char *upath;
	if (c->freeing || parse_target(target, &addr, &upath) < 0)
		return -EINVAL;
	struct creq *r = xcalloc(1, sizeof(*r));
	r->client = c;
	r->target = xstrdup(target);
	r->timeout_ms = timeout_ms ? timeout_ms : 30000;
	r->max_body = max_body ? max_body : 8 * 1024 * 1024;
	r->cb = cb;
	r->data = data;
	buf_printf(&r->wire, "%s %s HTTP/1.1\r\nHost: hutch\r\n", method, path);
	if (headers)
		buf_adds(&r->wire, headers);
	if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0)
		buf_printf(&r->wire, "Content-Length: %zu\r\n", len);
	buf_adds(&r->wire, "\r\n");
	if (body && len)
		buf_add(&r->wire, body, len);
	r->next = c->reqs;
	c->reqs = r;
	c->open_handles++;
	uv_timer_init(c->loop, &r->timer);
	r->timer.data = r;
	/* start on the next loop turn so the callback never runs inside this call */
	uv_timer_start(&r->timer, creq_start, 0, 0);
	return 0;
}

void http_client_free(struct http_client *c)
{
	c->freeing = true;
	while (c->reqs)
		creq_finish(c->reqs, -ECANCELED);
	while (c->idle)
		cconn_close(c->idle);
	client_maybe_free(c);
}

bool http_client_response_header(const struct http_client_response *resp, const char *name,
                                 struct buf *ret)
{
	struct sv rest = sv_make(resp->head.data ? resp->head.data : "", resp->head.len), line;
	struct sv n = sv_from(name), k, v;
	while (rest.len) {
		long i = sv_index(rest, '\n');
		if (i < 0) {
			line = rest;
			rest.len = 0;
		} else {
			line = sv_make(rest.p, (size_t)i);
			rest = sv_make(rest.p + i + 1, rest.len - (size_t)i - 1);
		}
		if (!sv_split(sv_trim(line), ':', &k, &v))
			continue;
		if (sv_case_eq(sv_trim(k), n)) {
			buf_reset(ret);
			struct sv t = sv_trim(v);
			buf_add(ret, t.p, t.len);
			return true;
		}
	}
	return false;
}
