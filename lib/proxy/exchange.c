/* One proxied request ("exchange"): waits for a suspended sandbox to wake, takes an upstream
 * connection, streams the request body up and the response down with back-pressure both ways,
 * parses the upstream response strictly (a malformed or smuggling-shaped one is a 502) and hands
 * upgraded connections to a tunnel.
 *
 * Lifetime: callbacks from the client side (lib/http) and the upstream side can re-enter each
 * other (a write can fail and abort the request synchronously), so every entry point holds the
 * exchange and the memory goes only when the last hold is dropped after it was killed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EX_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define EX_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define EX_POISON(p, n)   ((void)(p), (void)(n))
#define EX_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "proxy/internal.h"

#define EX_SPARE_BUF_MAX 4096 /* an exchange with larger buffers is not kept for reuse */

enum ex_state {
	EX_WAKING,     /* the sandbox is suspended: waiting for it to run */
	EX_CONNECTING, /* waiting for a new upstream connection */
	EX_WAITING,    /* request head sent, no response byte yet */
	EX_RESPONDING, /* response head passed to the client, body streaming */
	EX_DONE,
};

struct rh_hdr {
	uint32_t name, value;         /* offsets of NUL-terminated strings in rh */
	uint32_t name_len, value_len; /* value_len untrimmed */
};

struct proxy_exchange {
	struct proxy *px;
	struct http_request *req; /* NULL once the client side is finished or gone */
	struct proxy_upstream *up;
	uint64_t deadline;      /* connect / first-byte timeout (loop time), 0 = none; checked by
	                         * proxy_exchange_sweep() */
	uv_timer_t *wake_timer; /* store polling while the sandbox wakes */
	http_parser parser;
	enum ex_state state;
	struct proxy_target t;
	char key[PROXY_KEY_MAX]; /* upstream key */
	struct buf head;         /* the upstream request head, kept for one retry */
	/* response head being parsed */
	struct buf rh;
	struct rh_hdr hdrs[PROXY_RESP_HEADERS_MAX];
	size_t nhdrs;
	int ncl, nte;
	int connection, acao; /* index of Connection / Access-Control-Allow-Origin, or -1 */
	bool te_bad;
	bool in_value;
	bool head_done;
	bool interim;
	const char *exec_base;
	char prev_byte;
	/* progress */
	bool is_head, is_upgrade, chunked_up;
	bool body_started, body_done, got_bytes, resp_done, upgraded;
	bool client_paused, upstream_paused, retried;
	uint64_t wake_deadline;
	uint64_t activity_ms;
	int holds;
	bool dead;
	struct proxy_exchange *prev, *next;
};

static const http_parser_settings resp_settings;
static const struct proxy_upstream_ops ex_up_ops;

/* ---- lifetime ---- */

/* A finished exchange is kept for the next request (with its head buffers) while there is room,
 * poisoned under ASan meanwhile so that a late use is still caught. */
static void ex_free(struct proxy_exchange *ex)
{
	struct proxy *px = ex->px;
	if (!px->closing && px->nex_spare < ARRAY_SIZE(px->ex_spare) &&
	    ex->head.cap <= EX_SPARE_BUF_MAX && ex->rh.cap <= EX_SPARE_BUF_MAX) {
		EX_POISON(ex->head.data, ex->head.cap);
		EX_POISON(ex->rh.data, ex->rh.cap);
		EX_POISON(ex, sizeof(*ex));
		px->ex_spare[px->nex_spare++] = ex;
		return;
	}
	buf_release(&ex->head);
	buf_release(&ex->rh);
	free(ex);
}

/* A cleared exchange: a kept one (its buffers emptied but allocated) or a new one. */
static struct proxy_exchange *ex_alloc(struct proxy *px)
{
	if (px->nex_spare == 0)
		return xcalloc(1, sizeof(struct proxy_exchange));
	struct proxy_exchange *ex = px->ex_spare[--px->nex_spare];
	EX_UNPOISON(ex, sizeof(*ex));
	struct buf head = ex->head, rh = ex->rh;
	EX_UNPOISON(head.data, head.cap);
	EX_UNPOISON(rh.data, rh.cap);
	memset(ex, 0, sizeof(*ex));
	buf_reset(&head);
	buf_reset(&rh);
	ex->head = head;
	ex->rh = rh;
	return ex;
}

void proxy_exchange_spares_release(struct proxy *px)
{
	while (px->nex_spare) {
		struct proxy_exchange *ex = px->ex_spare[--px->nex_spare];
		EX_UNPOISON(ex, sizeof(*ex));
		EX_UNPOISON(ex->head.data, ex->head.cap);
		EX_UNPOISON(ex->rh.data, ex->rh.cap);
		buf_release(&ex->head);
		buf_release(&ex->rh);
		free(ex);
	}
}

static void ex_wake_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void ex_deadline(struct proxy_exchange *ex, uint64_t ms)
{
	ex->deadline = ms ? uv_now(ex->px->loop) + ms : 0;
}

static void ex_hold(struct proxy_exchange *ex)
{
	ex->holds++;
}

static void ex_release(struct proxy_exchange *ex)
{
	if (--ex->holds == 0 && ex->dead)
		ex_free(ex);
}

/* Ends the exchange: the upstream connection (if still held) is closed, the client side must
 * already be detached or gone. */
static void ex_kill(struct proxy_exchange *ex)
{
	if (ex->dead)
		return;
	struct proxy *px = ex->px;
	ex->dead = true;
	ex->state = EX_DONE;
	ex->deadline = 0;
	if (ex->wake_timer) {
		uv_close((uv_handle_t *)ex->wake_timer, ex_wake_timer_closed);
		ex->wake_timer = NULL;
	}
	if (ex->up) {
		proxy_upstream_release(ex->up, false);
		ex->up = NULL;
	}
	if (ex->prev)
		ex->prev->next = ex->next;
	else
		px->exchanges = ex->next;
	if (ex->next)
		ex->next->prev = ex->prev;
	px->nexchanges--;
	ex_release(ex); /* the hold taken at creation */
}

/* Takes the request away from the exchange so that no more client callbacks arrive. *ret_complete
 * tells whether the request body was fully received (otherwise the caller must resume it after
 * answering so lib/http can skip the rest). */
static struct http_request *ex_detach_client(struct proxy_exchange *ex, bool *ret_complete)
{
	struct http_request *req = ex->req;
	ex->req = NULL;
	*ret_complete = ex->body_done;
	if (req) {
		req->data = NULL;
		req->on_body = NULL;
		req->on_body_end = NULL;
		req->on_abort = NULL;
		req->on_drain = NULL;
	}
	return req;
}

/* Answers the client with err (or aborts it if the response already started) and ends. */
static void ex_fail(struct proxy_exchange *ex, const struct hutch_error *err)
{
	bool complete;
	bool started = ex->state == EX_RESPONDING;
	struct http_request *req = ex_detach_client(ex, &complete);
	ex_kill(ex);
	if (!req)
		return;
	if (started) {
		proxy_client_abort(req);
		return;
	}
	if (proxy_respond_error(req, err))
		return; /* a refused WebSocket: the connection is gone */
	if (!complete)
		http_request_resume(req);
}

static void ex_fail_api(struct proxy_exchange *ex, int status, const char *code, const char *msg)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	hutch_error_api(&err, status, code, "%s", msg);
	ex_fail(ex, &err);
}

/* The upstream response is complete: pool the connection if possible and end the client's
 * response. */
static void ex_finish(struct proxy_exchange *ex, bool reusable)
{
	bool complete;
	struct proxy_upstream *up = ex->up;
	ex->up = NULL;
	reusable =
	        reusable && ex->body_done && !ex->is_upgrade && http_should_keep_alive(&ex->parser);
	proxy_upstream_release(up, reusable);
	struct http_request *req = ex_detach_client(ex, &complete);
	ex_kill(ex);
	if (!req)
		return;
	http_response_end(req);
	if (!complete)
		http_request_resume(req);
}

/* ---- response head ---- */

static void rh_reset(struct proxy_exchange *ex)
{
	buf_reset(&ex->rh);
	ex->nhdrs = 0;
	ex->ncl = ex->nte = 0;
	ex->connection = ex->acao = -1;
	ex->te_bad = false;
	ex->in_value = false;
}

/* Terminates the header being collected (a header may have an empty value with no callback). */
static void rh_close_header(struct proxy_exchange *ex)
{
	if (ex->nhdrs == 0)
		return;
	if (!ex->in_value) {
		buf_addch(&ex->rh, '\0');
		ex->hdrs[ex->nhdrs - 1].value = (uint32_t)ex->rh.len;
		ex->hdrs[ex->nhdrs - 1].value_len = 0;
	}
	buf_addch(&ex->rh, '\0');
	ex->in_value = false;
}

static const char *rh_str(const struct proxy_exchange *ex, uint32_t off)
{
	return ex->rh.data + off;
}

static struct sv rh_name(const struct proxy_exchange *ex, size_t i)
{
	return sv_make(rh_str(ex, ex->hdrs[i].name), ex->hdrs[i].name_len);
}

/* The value as received (http_parser leaves trailing spaces in it). */
static struct sv rh_value(const struct proxy_exchange *ex, size_t i)
{
	return sv_make(rh_str(ex, ex->hdrs[i].value), ex->hdrs[i].value_len);
}

static int on_r_begin(http_parser *p)
{
	struct proxy_exchange *ex = p->data;
	rh_reset(ex);
	ex->head_done = false;
	return 0;
}

static int on_r_field(http_parser *p, const char *at, size_t len)
{
	struct proxy_exchange *ex = p->data;
	if (ex->head_done)
		return 0; /* trailers are dropped */
	if (ex->nhdrs == 0 || ex->in_value) {
		if (ex->nhdrs == PROXY_RESP_HEADERS_MAX)
			return -1;
		rh_close_header(ex);
		ex->hdrs[ex->nhdrs].name = (uint32_t)ex->rh.len;
		ex->hdrs[ex->nhdrs++].name_len = 0;
	}
	if (ex->rh.len + len > PROXY_RESP_HEAD_MAX)
		return -1;
	buf_add(&ex->rh, at, len);
	ex->hdrs[ex->nhdrs - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_r_value(http_parser *p, const char *at, size_t len)
{
	struct proxy_exchange *ex = p->data;
	if (ex->head_done)
		return 0;
	/* obs-fold: a value continuing after a line break (RFC 9112 5.2: reject) */
	char before = at > ex->exec_base ? at[-1] : ex->prev_byte;
	if (before == '\n')
		return -1;
	if (!ex->in_value) {
		buf_addch(&ex->rh, '\0');
		ex->hdrs[ex->nhdrs - 1].value = (uint32_t)ex->rh.len;
		ex->hdrs[ex->nhdrs - 1].value_len = 0;
		ex->in_value = true;
	}
	if (ex->rh.len + len > PROXY_RESP_HEAD_MAX)
		return -1;
	buf_add(&ex->rh, at, len);
	ex->hdrs[ex->nhdrs - 1].value_len += (uint32_t)len;
	return 0;
}

/* Rejects framing that two parsers could read differently; notes where the headers the proxy
 * looks at later are (the first of each), so nothing scans the head again. */
static bool rh_framing_ok(struct proxy_exchange *ex)
{
	for (size_t i = 0; i < ex->nhdrs; i++) {
		struct sv name = rh_name(ex, i);
		if (!proxy_header_name_valid(name.p))
			return false;
		if (sv_case_eq(name, SV("content-length"))) {
			ex->ncl++;
		} else if (sv_case_eq(name, SV("transfer-encoding"))) {
			ex->nte++;
			if (!sv_case_eq(sv_trim(rh_value(ex, i)), SV("chunked")))
				ex->te_bad = true;
		} else if (ex->connection < 0 && sv_case_eq(name, SV("connection"))) {
			ex->connection = (int)i;
		} else if (ex->acao < 0 && sv_case_eq(name, SV("access-control-allow-origin"))) {
			ex->acao = (int)i;
		}
	}
	return ex->ncl <= 1 && ex->nte <= 1 && !ex->te_bad && !(ex->ncl && ex->nte);
}

static void ex_mark_activity(struct proxy_exchange *ex)
{
	uint64_t now = uv_now(ex->px->loop);
	if (!ex->t.forward && now - ex->activity_ms >= 1000) {
		ex->activity_ms = now;
		proxy_activity_mark(ex->px, ex->t.id);
	}
}

/* Passes the response head to the client. */
static void ex_response_begin(struct proxy_exchange *ex)
{
	struct http_request *req = ex->req;
	struct sv connection = ex->connection >= 0 ? rh_value(ex, (size_t)ex->connection) : SV_NULL;
	struct buf *block = &ex->px->scratch; /* names are tokens and values have no CR/LF */
	buf_reset(block);
	for (size_t i = 0; i < ex->nhdrs; i++) {
		struct sv name = rh_name(ex, i);
		struct sv value = rh_value(ex, i);
		if (proxy_header_is_hop(name, connection))
			continue;
		buf_add(block, name.p, name.len);
		buf_add(block, ": ", 2);
		buf_add(block, value.p, value.len);
		buf_add(block, "\r\n", 2);
	}
	http_response_header_block(req, block->data ? block->data : "", block->len);
	if (ex->acao < 0)
		proxy_cors_headers(req);
	int64_t cl = ex->ncl == 1 && !(ex->parser.flags & F_CHUNKED)
	                     ? (int64_t)ex->parser.content_length
	                     : -1;
	ex->state = EX_RESPONDING;
	ex->deadline = 0;
	http_response_start(req, ex->parser.status_code, cl);
}

static int on_r_headers_complete(http_parser *p)
{
	struct proxy_exchange *ex = p->data;
	unsigned status = p->status_code;
	rh_close_header(ex);
	ex->head_done = true;
	if (status >= 100 && status < 200 && status != 101) {
		ex->interim = true; /* 100 Continue and friends are not passed on */
		return 0;
	}
	if (!rh_framing_ok(ex) || !ex->req)
		return -1;
	if (status == 101 && (!ex->is_upgrade || !p->upgrade))
		return -1;
	if (status == 101) {
		ex->upgraded = true;
		return 0;
	}
	ex_response_begin(ex);
	return ex->is_head ? 1 : 0;
}

static int on_r_body(http_parser *p, const char *at, size_t len)
{
	struct proxy_exchange *ex = p->data;
	if (ex->dead || !ex->req)
		return -1;
	int r = http_response_write(ex->req, at, len);
	if (r < 0 || ex->dead)
		return -1;
	if (r == 1 && ex->up) {
		ex->upstream_paused = true;
		proxy_upstream_read(ex->up, false);
	}
	return 0;
}

static int on_r_message_complete(http_parser *p)
{
	struct proxy_exchange *ex = p->data;
	if (ex->interim) {
		ex->interim = false;
		return 0;
	}
	if (ex->upgraded)
		return 0; /* the parser stops by itself; the rest is the new protocol */
	ex->resp_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings resp_settings = {
        .on_message_begin = on_r_begin,
        .on_header_field = on_r_field,
        .on_header_value = on_r_value,
        .on_headers_complete = on_r_headers_complete,
        .on_body = on_r_body,
        .on_message_complete = on_r_message_complete,
};

/* ---- upstream events ---- */

static void ex_send_head(struct proxy_exchange *ex);
static void ex_connect(struct proxy_exchange *ex, bool fresh);

/* Switches to a tunnel after the upstream's 101. */
static void ex_upgrade(struct proxy_exchange *ex, const char *rest, size_t rest_len)
{
	struct buf head = BUF_INIT, left = BUF_INIT;
	bool complete;
	buf_adds(&head, "HTTP/1.1 101 Switching Protocols\r\n");
	for (size_t i = 0; i < ex->nhdrs; i++)
		buf_printf(&head, "%s: %s\r\n", rh_str(ex, ex->hdrs[i].name),
		           rh_str(ex, ex->hdrs[i].value));
	buf_adds(&head, "\r\n");
	struct http_request *req = ex_detach_client(ex, &complete);
	struct proxy_upstream *up = ex->up;
	ex->up = NULL;
	uv_stream_t *client = NULL;
	if (req) {
		http_response_write_raw(req, head.data, head.len);
		client = http_conn_takeover(req, &left);
	}
	if (client)
		proxy_tunnel_start(ex->px, ex->t.forward ? "" : ex->t.id, client, up, left.data,
		                   left.len, rest, rest_len);
	else
		proxy_upstream_release(up, false);
	ex_kill(ex);
	buf_release(&head);
	buf_release(&left);
}

static void ex_parse(struct proxy_exchange *ex, const char *data, size_t len)
{
	ex->exec_base = data;
	size_t n = http_parser_execute(&ex->parser, &resp_settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&ex->parser);
	ex->prev_byte = n ? data[n - 1] : ex->prev_byte;
	if (ex->dead)
		return;
	if (ex->upgraded) {
		ex_upgrade(ex, data + n, len - n);
		return;
	}
	if (e == HPE_PAUSED && ex->resp_done) {
		ex_finish(ex, n == len);
		return;
	}
	if (e == HPE_OK && ex->state == EX_RESPONDING && ex->req)
		http_response_flush(ex->req); /* a head whose body is not here yet goes out now */
	if (e != HPE_OK) {
		struct hutch_error err = HUTCH_ERROR_INIT;
		hutch_error_api(&err, 502, "PROXY_ERROR",
		                "malformed response from the sandbox (%s)",
		                http_errno_description(e));
		ex_fail(ex, &err);
	}
}

/* A pooled connection that died before answering is retried once on a new one, if nothing of
 * the request body was consumed yet. */
static bool ex_retry(struct proxy_exchange *ex)
{
	if (ex->got_bytes || !ex->up->reused || ex->body_started || ex->retried || ex->is_upgrade)
		return false;
	ex->retried = true;
	proxy_upstream_release(ex->up, false);
	ex->up = NULL;
	ex_connect(ex, true);
	return true;
}

static void ex_upstream_ended(struct proxy_exchange *ex, ssize_t status)
{
	if (ex->got_bytes && status == UV_EOF) {
		/* EOF ends a close-delimited body */
		ex->exec_base = NULL;
		http_parser_execute(&ex->parser, &resp_settings, NULL, 0);
		if (ex->dead)
			return;
		if (ex->resp_done) {
			ex_finish(ex, false);
			return;
		}
	}
	if (ex_retry(ex))
		return;
	if (status == UV_EOF || status == UV_ECONNRESET || status == UV_EPIPE)
		ex_fail_api(ex, 502, "CONNECTION_CLOSED",
		            ex->got_bytes ? "the sandbox closed the connection mid-response"
		                          : "the sandbox closed the connection without responding");
	else
		ex_fail_api(ex, 502, "PROXY_ERROR", uv_strerror((int)status));
}

static void ex_on_read(struct proxy_upstream *up, const char *data, ssize_t nread)
{
	struct proxy_exchange *ex = up->owner;
	ex_hold(ex);
	if (nread < 0) {
		ex_upstream_ended(ex, nread);
	} else {
		ex->got_bytes = true;
		ex_mark_activity(ex);
		ex_parse(ex, data, (size_t)nread);
	}
	ex_release(ex);
}

/* Connecting to another node's proxy failed: the same statuses as for a sandbox, naming it. */
static void ex_fail_forward(struct proxy_exchange *ex, int status)
{
	char msg[PROXY_KEY_MAX + 96];
	const char *where = ex->t.forward_key + 4; /* after "tcp:" */
	if (status == UV_ETIMEDOUT) {
		snprintf(msg, sizeof(msg),
		         "connecting to the proxy of the sandbox's node (%s) timed out", where);
		ex_fail_api(ex, 504, "CONNECTION_TIMEOUT", msg);
		return;
	}
	snprintf(msg, sizeof(msg), "connecting to the proxy of the sandbox's node (%s) failed: %s",
	         where, uv_strerror(status));
	ex_fail_api(ex, 502,
	            status == UV_ECONNREFUSED || status == UV_ECONNRESET ? "CONNECTION_REFUSED"
	                                                                 : "PROXY_ERROR",
	            msg);
}

static void ex_on_connect(struct proxy_upstream *up, int status)
{
	struct proxy_exchange *ex = up->owner;
	ex_hold(ex);
	ex->deadline = 0;
	if (status == 0)
		ex_send_head(ex);
	else if (ex->t.forward)
		ex_fail_forward(ex, status);
	else if (status == UV_ECONNREFUSED || status == UV_ENOENT || status == UV_ECONNRESET)
		ex_fail_api(ex, 502, "CONNECTION_REFUSED", "connection to the sandbox refused");
	else if (status == UV_ETIMEDOUT)
		ex_fail_api(ex, 504, "CONNECTION_TIMEOUT", "connecting to the sandbox timed out");
	else
		ex_fail_api(ex, 502, "PROXY_ERROR", uv_strerror(status));
	ex_release(ex);
}

static void ex_on_up_drain(struct proxy_upstream *up)
{
	struct proxy_exchange *ex = up->owner;
	if (!ex->client_paused || !ex->req)
		return;
	ex_hold(ex);
	ex->client_paused = false;
	http_request_resume(ex->req);
	ex_release(ex);
}

static const struct proxy_upstream_ops ex_up_ops = {
        .on_connect = ex_on_connect,
        .on_read = ex_on_read,
        .on_drain = ex_on_up_drain,
};

/* ---- client events ---- */

static void ex_on_body(struct http_request *req, const char *data, size_t len)
{
	struct proxy_exchange *ex = req->data;
	if (!ex->up || len == 0)
		return;
	ex_hold(ex);
	int r;
	ex->body_started = true;
	if (ex->chunked_up) {
		char pre[24];
		int n = snprintf(pre, sizeof(pre), "%zx\r\n", len);
		r = proxy_upstream_write(ex->up, pre, (size_t)n, data, len, "\r\n", 2);
	} else {
		r = proxy_upstream_write(ex->up, data, len, NULL, 0, NULL, 0);
	}
	if (r == 1 && !ex->dead && ex->req) {
		ex->client_paused = true;
		http_request_pause(ex->req);
	}
	if (!ex->dead && ex->state == EX_WAITING)
		ex_deadline(ex, ex->px->cfg.first_byte_timeout_ms);
	ex_release(ex);
}

static void ex_on_body_end(struct http_request *req)
{
	struct proxy_exchange *ex = req->data;
	ex->body_done = true;
	if (ex->chunked_up && ex->up) {
		ex_hold(ex);
		ex->body_started = true;
		proxy_upstream_write(ex->up, "0\r\n\r\n", 5, NULL, 0, NULL, 0);
		ex_release(ex);
	}
}

static void ex_on_abort(struct http_request *req)
{
	struct proxy_exchange *ex = req->data;
	ex->req = NULL;
	ex_kill(ex);
}

static void ex_on_client_drain(struct http_request *req)
{
	struct proxy_exchange *ex = req->data;
	if (ex->upstream_paused && ex->up) { /* uv_read_start: no callback from inside */
		ex->upstream_paused = false;
		proxy_upstream_read(ex->up, true);
	}
}

/* ---- steps ---- */

static void ex_send_head(struct proxy_exchange *ex)
{
	ex->state = EX_WAITING;
	http_parser_init(&ex->parser, HTTP_RESPONSE);
	ex->parser.data = ex;
	ex->prev_byte = '\0';
	if (proxy_upstream_write(ex->up, ex->head.data, ex->head.len, NULL, 0, NULL, 0) < 0 ||
	    ex->dead)
		return;
	ex->px->stats.forwarded++;
	proxy_upstream_read(ex->up, true);
	ex_deadline(ex, ex->px->cfg.first_byte_timeout_ms);
	if (!ex->is_upgrade && ex->req) {
		/* Expect is not passed on: the proxy answers it once the upstream is ready */
		if (!ex->body_done &&
		    sv_case_eq(http_request_header(ex->req, "expect"), SV("100-continue")))
			http_response_continue(ex->req);
		ex->client_paused = false;
		http_request_resume(ex->req);
	}
}

static void ex_connect(struct proxy_exchange *ex, bool fresh)
{
	struct proxy_upstream *up;
	int r = proxy_pool_acquire(&ex->px->pool, ex->key, fresh, &ex_up_ops, ex, &up);
	if (r < 0) {
		ex_fail_api(ex, 502, "PROXY_ERROR", uv_strerror(r));
		return;
	}
	ex->up = up;
	if (r == 1) {
		ex_send_head(ex);
		return;
	}
	ex->state = EX_CONNECTING;
	ex_deadline(ex, ex->px->cfg.connect_timeout_ms);
}

static void ex_wake_tick(struct proxy_exchange *ex);

static void ex_wake_timer(uv_timer_t *t)
{
	struct proxy_exchange *ex = t->data;
	ex_hold(ex);
	ex_wake_tick(ex);
	ex_release(ex);
}

/* A deadline passed; the caller holds ex. */
static void ex_timeout(struct proxy_exchange *ex)
{
	ex->deadline = 0;
	if (ex->state == EX_CONNECTING)
		ex_fail_api(ex, 504, "CONNECTION_TIMEOUT", "connecting to the sandbox timed out");
	else if (ex->state == EX_WAITING)
		ex_fail_api(ex, 504, "READ_TIMEOUT", "the sandbox did not answer in time");
}

/* Connects once the woken sandbox runs; gives up on a state that cannot become running, on a
 * refused wake, or at the deadline. */
static void ex_wake_tick(struct proxy_exchange *ex)
{
	struct proxy *px = ex->px;
	struct sandbox_rec rec = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	const struct proxy_wake *w;
	char msg[200];

	if (store_sandbox_get_id(px->store, ex->t.id, &rec, &err) < 0) {
		ex_fail(ex, &err);
	} else if (strcmp(rec.status, "running") == 0) {
		uv_close((uv_handle_t *)ex->wake_timer, ex_wake_timer_closed);
		ex->wake_timer = NULL;
		if (proxy_target_key(&rec, ex->t.port, ex->key, &err) == 0)
			ex_connect(ex, false);
		else
			ex_fail(ex, &err);
	} else if (strcmp(rec.status, "suspended") != 0 && strcmp(rec.status, "suspending") != 0 &&
	           strcmp(rec.status, "pending") != 0 && strcmp(rec.status, "snapshotting") != 0) {
		snprintf(msg, sizeof(msg), "sandbox %s is not running (state: %s)", rec.id,
		         rec.status);
		ex_fail_api(ex, 503, "SANDBOX_NOT_RUNNING", msg);
	} else {
		if (strcmp(rec.status, "suspended") == 0)
			proxy_wake_post(px, ex->t.id);
		if ((w = proxy_wake_failure(px, ex->t.id))) {
			ex_fail_api(ex, 503, "SANDBOX_NOT_RUNNING", w->failed_msg);
		} else if (uv_now(px->loop) >= ex->wake_deadline) {
			snprintf(msg, sizeof(msg), "sandbox %s did not resume in time (state: %s)",
			         rec.id, rec.status);
			ex_fail_api(ex, 504, "SANDBOX_NOT_RUNNING", msg);
		}
	}
	sandbox_rec_release(&rec);
}

/* A new exchange for req, linked into the proxy and owning req's callbacks. */
static struct proxy_exchange *ex_new(struct proxy *px, struct http_request *req,
                                     const struct proxy_target *t)
{
	struct proxy_exchange *ex = ex_alloc(px);
	ex->px = px;
	ex->req = req;
	ex->t = *t;
	ex->holds = 1; /* until killed */
	ex->is_head = req->method == HTTP_HEAD;
	ex->is_upgrade = req->upgrade;
	ex->chunked_up = req->chunked && !req->upgrade;
	ex->activity_ms = uv_now(px->loop);
	buf_grow(&ex->rh, 1024);
	ex->next = px->exchanges;
	if (px->exchanges)
		px->exchanges->prev = ex;
	px->exchanges = ex;
	px->nexchanges++;
	req->data = ex;
	req->on_body = ex_on_body;
	req->on_body_end = ex_on_body_end;
	req->on_abort = ex_on_abort;
	req->on_drain = ex_on_client_drain;
	return ex;
}

static void ex_wake_start(struct proxy_exchange *ex)
{
	struct proxy *px = ex->px;
	ex->state = EX_WAKING;
	ex->wake_deadline = uv_now(px->loop) + px->cfg.wake_timeout_ms;
	ex->wake_timer = xmalloc(sizeof(*ex->wake_timer));
	uv_timer_init(px->loop, ex->wake_timer);
	ex->wake_timer->data = ex;
	uv_timer_start(ex->wake_timer, ex_wake_timer, 0, px->cfg.wake_poll_ms);
}

void proxy_exchange_start(struct proxy *px, struct http_request *req, const struct sandbox_rec *rec,
                          const struct proxy_target *t)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proxy_exchange *ex = ex_new(px, req, t);
	struct proxy_fwd f = {
	        .peer = http_request_peer(req),
	        .keep_cookies = t->keep_cookies,
	        .upgrade = req->upgrade,
	        .forward_node = t->forward ? px->cfg.node_id : NULL,
	        .chunked = ex->chunked_up,
	        .has_length = req->has_content_length && !req->upgrade,
	        .length = req->content_length,
	};

	ex_hold(ex); /* for this call */
	/* a body must wait for the upstream; a request without one needs no pause (which would
	 * cost two epoll_ctl calls) */
	if (req->has_content_length || req->chunked)
		http_request_pause(req);
	proxy_head_build(req, &f, &ex->head);
	if (t->forward) {
		memcpy(ex->key, t->forward_key, sizeof(ex->key));
		ex_connect(ex, false);
	} else if (t->wake) {
		ex_wake_start(ex);
	} else if (proxy_target_key(rec, t->port, ex->key, &err) == 0) {
		ex_connect(ex, false);
	} else {
		ex_fail(ex, &err);
	}
	ex_release(ex);
}

void proxy_exchange_abort_all(struct proxy *px)
{
	while (px->exchanges) {
		struct proxy_exchange *ex = px->exchanges;
		bool complete;
		struct http_request *req = ex_detach_client(ex, &complete);
		ex_kill(ex);
		if (req)
			proxy_client_abort(req);
	}
}

void proxy_exchange_sweep(struct proxy *px)
{
	uint64_t now = uv_now(px->loop);
restart:
	for (struct proxy_exchange *ex = px->exchanges; ex; ex = ex->next) {
		if (!ex->deadline || now < ex->deadline)
			continue;
		/* a timeout answers a client, which may end or start other requests: the list may
		 * change under us, so start over (timeouts are rare) */
		ex_hold(ex);
		ex_timeout(ex);
		ex_release(ex);
		goto restart;
	}
}
