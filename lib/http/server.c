/* HTTP/1.1 server connections: parsing with libhttp-parser, dispatch, body flow control,
 * keep-alive, timeouts and limits. Responses are written by response.c.
 *
 * The parser is paused at "headers complete" and "message complete" so that handlers never run
 * inside parser callbacks; conn_process() is the one loop that feeds the parser and dispatches. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/http.h"
#include "http/internal.h"

static const http_parser_settings parser_settings;

void http_server_config_defaults(struct http_server_config *cfg)
{
	cfg->max_head_bytes = 32 * 1024;
	cfg->max_headers = 100;
	cfg->max_connections = 10000;
	cfg->head_timeout_ms = 30000;
	cfg->idle_timeout_ms = 75000;
	cfg->write_high_water = 1024 * 1024;
	cfg->reuse_port = false;
}

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_fn handler, void *data)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	srv->loop = loop;
	if (cfg)
		srv->cfg = *cfg;
	else
		http_server_config_defaults(&srv->cfg);
	srv->handler = handler;
	srv->data = data;
	return srv;
}

size_t http_server_connection_count(const struct http_server *srv)
{
	return srv->nconns;
}

static void server_maybe_free(struct http_server *srv)
{
	if (srv->closing && srv->open_handles == 0 && srv->nconns == 0)
		free(srv);
}

/* ---- requests ---- */

/* A spare request is poisoned under ASan while it waits, so that a handler still touching a
 * finished request is caught as if the request had been freed. */
static void request_poison(struct http_request *req, bool on)
{
#if defined(__SANITIZE_ADDRESS__)
	if (!on) {
		ASAN_UNPOISON_MEMORY_REGION(req, sizeof(*req));
		ASAN_UNPOISON_MEMORY_REGION(req->priv, sizeof(*req->priv));
	}
	struct http_req_priv *pr = req->priv;
	struct {
		void *p;
		size_t n;
	} r[] = {
	        {req->head_store.data, req->head_store.cap},
	        {req->body.data, req->body.cap},
	        {req->headers, pr->headers_cap * sizeof(*req->headers)},
	        {pr->resp_headers.data, pr->resp_headers.cap},
	};
	for (size_t i = 0; i < ARRAY_SIZE(r); i++) {
		if (r[i].p && on)
			ASAN_POISON_MEMORY_REGION(r[i].p, r[i].n);
		else if (r[i].p)
			ASAN_UNPOISON_MEMORY_REGION(r[i].p, r[i].n);
	}
	if (on) {
		ASAN_POISON_MEMORY_REGION(pr, sizeof(*pr));
		ASAN_POISON_MEMORY_REGION(req, sizeof(*req));
	}
#else
	(void)req;
	(void)on;
#endif
}

static void request_free(struct http_request *req)
{
	if (!req)
		return;
	buf_release(&req->head_store);
	buf_release(&req->body);
	if (req->priv)
		buf_release(&req->priv->resp_headers);
	for (size_t i = 0; i < req->nparams; i++) {
		free(req->params[i].name);
		free(req->params[i].value);
	}
	free(req->headers);
	free(req->priv);
	free(req);
}

/* The request for the next message: the connection's spare one if it has one, else a new one. */
static struct http_request *request_new(struct http_conn *conn)
{
	struct http_request *req = conn->spare;
	if (req) {
		conn->spare = NULL;
		request_poison(req, false);
	} else {
		req = xcalloc(1, sizeof(*req));
		req->priv = xcalloc(1, sizeof(*req->priv));
	}
	req->conn = conn;
	return req;
}

#define SPARE_BUF_MAX     4096 /* larger buffers of a finished request are not kept */
#define SPARE_HEADERS_MAX 32

/* Keeps a finished request as the connection's spare, cleared as if new but keeping the memory
 * of its head, header array and response head when they are small (an idle connection stays
 * cheap): every request of a keep-alive connection would otherwise allocate and grow them
 * again. */
static void request_recycle(struct http_conn *conn, struct http_request *req)
{
	struct http_req_priv *pr = req->priv;
	struct buf head = req->head_store, resp = pr->resp_headers;
	struct http_header *headers = req->headers;
	size_t headers_cap = pr->headers_cap;

	if (conn->spare) {
		request_free(req);
		return;
	}
	for (size_t i = 0; i < req->nparams; i++) {
		free(req->params[i].name);
		free(req->params[i].value);
	}
	buf_release(&req->body);
	if (head.cap > SPARE_BUF_MAX)
		buf_release(&head);
	if (resp.cap > SPARE_BUF_MAX)
		buf_release(&resp);
	if (headers_cap > SPARE_HEADERS_MAX) {
		free(headers);
		headers = NULL;
		headers_cap = 0;
	}
	memset(req, 0, sizeof(*req));
	memset(pr, 0, sizeof(*pr));
	buf_reset(&head);
	buf_reset(&resp);
	req->head_store = head;
	req->headers = headers;
	req->priv = pr;
	pr->resp_headers = resp;
	pr->headers_cap = headers_cap;
	request_poison(req, true);
	conn->spare = req;
}

/* ---- connection lifetime ---- */

void http_conn_unref(struct http_conn *conn)
{
	if (--conn->open_handles > 0)
		return;
	struct http_server *srv = conn->srv;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		srv->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	srv->nconns--;
	if (conn->spare)
		request_poison(conn->spare, false);
	request_free(conn->spare);
	buf_release(&conn->in);
	free(conn->hoffs);
	free(conn);
	server_maybe_free(srv);
}

static void conn_handle_closed(uv_handle_t *h)
{
	http_conn_unref(h->data);
}

void http_stream_free(uv_handle_t *h)
{
	free(h);
}

/* Ends the request in flight without a complete response: tells the handler, then frees it. */
static void conn_abort_request(struct http_conn *conn)
{
	struct http_request *req = conn->req;
	if (!req)
		return;
	conn->req = NULL;
	if (!req->priv->ended && req->priv->dispatched && req->on_abort) {
		req->priv->aborted = true;
		req->on_abort(req);
	}
	request_free(req);
}

void http_conn_close(struct http_conn *conn)
{
	if (conn->closing)
		return;
	conn->closing = true;
	conn_abort_request(conn);
	uv_timer_stop(&conn->timer);
	uv_close((uv_handle_t *)&conn->timer, conn_handle_closed);
	if (conn->stream) {
		uv_close((uv_handle_t *)conn->stream, http_stream_free_conn);
		conn->stream = NULL;
	} else {
		conn->open_handles--;
	}
}

/* Close callback for a stream still owned by its connection. */
void http_stream_free_conn(uv_handle_t *h)
{
	struct http_conn *conn = h->data;
	free(h);
	http_conn_unref(conn);
}

static void shutdown_done(uv_shutdown_t *sr, int status)
{
	struct http_conn *conn = sr->data;
	free(sr);
	http_conn_close(conn);
}

static void conn_arm_timer(struct http_conn *conn, uint64_t ms);

/* Closes after everything queued has been written (Connection: close, errors). */
void http_conn_close_after_write(struct http_conn *conn)
{
	if (conn->closing || conn->shutting_down)
		return;
	conn->shutting_down = true;
	uv_read_stop(conn->stream);
	/* bounded: a peer that never reads must not hold the connection */
	conn_arm_timer(conn, conn->srv->cfg.idle_timeout_ms);
	uv_shutdown_t *sr = xcalloc(1, sizeof(*sr));
	sr->data = conn;
	if (uv_shutdown(sr, conn->stream, shutdown_done) < 0) {
		free(sr);
		http_conn_close(conn);
	}
}

/* ---- timers ---- */

static void conn_timeout(struct http_conn *conn)
{
	if (conn->shutting_down) {
		/* the peer does not take the rest of the response: give up on it */
		http_conn_close(conn);
		return;
	}
	if (conn->req && conn->req->priv->dispatched) {
		/* body stalled: nothing can be answered sensibly any more */
		if (!conn->req->priv->message_complete)
			http_conn_close(conn);
		return;
	}
	if (conn->in.len > 0 || conn->req) {
		conn->keep_alive = false;
		http_conn_reply_error(conn, 408, "REQUEST_TIMEOUT",
		                      "request head not received in time");
		return;
	}
	http_conn_close(conn);
}

/* The timer fires at timer_due; the deadline may have moved later meanwhile (every request moves
 * it), so it is set again for the rest, or does nothing when the deadline was cleared. */
static void conn_timer_fired(uv_timer_t *t)
{
	struct http_conn *conn = t->data;
	uint64_t now = uv_now(conn->srv->loop);
	if (!conn->deadline)
		return;
	if (now < conn->deadline) {
		conn->timer_due = conn->deadline;
		uv_timer_start(&conn->timer, conn_timer_fired, conn->deadline - now, 0);
		return;
	}
	conn->deadline = 0;
	conn_timeout(conn);
}

/* Sets the connection's deadline ms from now. The timer is started only when it would fire too
 * late (or not at all): moving a deadline later, which each request of a keep-alive connection
 * does three times, costs no timer operation. */
static void conn_arm_timer(struct http_conn *conn, uint64_t ms)
{
	if (conn->closing)
		return;
	conn->deadline = uv_now(conn->srv->loop) + ms;
	if (!uv_is_active((uv_handle_t *)&conn->timer) || conn->timer_due > conn->deadline) {
		conn->timer_due = conn->deadline;
		uv_timer_start(&conn->timer, conn_timer_fired, ms, 0);
	}
}

/* No deadline; a running timer finds none when it fires. */
static void conn_disarm_timer(struct http_conn *conn)
{
	conn->deadline = 0;
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct http_conn *conn = h->data;
	buf_grow(&conn->in, 64 * 1024);
	b->base = conn->in.data + conn->in.len;
	b->len = conn->in.cap - conn->in.len - 1;
}

static void conn_update_reading(struct http_conn *conn);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct http_conn *conn = s->data;
	if (nread > 0) {
		conn->in.len += (size_t)nread;
		conn->in.data[conn->in.len] = '\0';
		if (conn->req && conn->req->priv->dispatched && !conn->req->priv->message_complete)
			conn_arm_timer(conn, conn->srv->cfg.idle_timeout_ms);
		http_conn_process(conn);
		return;
	}
	if (nread == 0)
		return;
	if (nread != UV_EOF) {
		http_conn_close(conn);
		return;
	}
	conn->read_eof = true;
	uv_read_stop(s);
	struct http_request *req = conn->req;
	if (!req || !req->priv->dispatched) {
		http_conn_close(conn);
		return;
	}
	/* A half-closed client still gets a plain response, but a stream it stopped listening
	 * to is over, and so is a request whose body was cut off (nothing left to parse). */
	bool body_cut = !req->priv->message_complete && conn->in.len == 0;
	if ((req->priv->started && req->priv->chunked) || body_cut) {
		http_conn_close(conn);
		return;
	}
	conn->keep_alive = false;
	http_conn_process(conn);
}

static void conn_update_reading(struct http_conn *conn)
{
	if (conn->closing || conn->shutting_down || conn->read_eof || !conn->stream)
		return;
	struct http_request *req = conn->req;
	bool want = true;
	if (req && req->priv->body_paused)
		want = false;
	if (conn->stop_parsing)
		want = false; /* nothing more is parsed: do not buffer an upload nobody reads */
	/* while a response is pending, read only a bounded amount ahead (pipelining) */
	if (req && req->priv->message_complete && conn->in.len > conn->srv->cfg.max_head_bytes)
		want = false;
	if (want && !conn->reading) {
		if (uv_read_start(conn->stream, alloc_cb, read_cb) == 0)
			conn->reading = true;
	} else if (!want && conn->reading) {
		uv_read_stop(conn->stream);
		conn->reading = false;
	}
}

/* ---- parser callbacks ---- */

static struct http_conn *pconn(http_parser *p)
{
	return p->data;
}

static int head_add(struct http_conn *conn, const char *at, size_t len)
{
	struct http_request *req = conn->req;
	if (req->head_store.len + len > conn->srv->cfg.max_head_bytes) {
		conn->fail_status = 431;
		return -1;
	}
	buf_add(&req->head_store, at, len);
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *conn = pconn(p);
	conn->req = request_new(conn);
	conn->nh = 0;
	conn->last_was_value = false;
	conn_arm_timer(conn, conn->srv->cfg.head_timeout_ms);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *conn = pconn(p);
	conn->url_len += len;
	return head_add(conn, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *conn = pconn(p);
	/* trailers of a chunked body are dropped: the headers point into head_store, which
	 * must not grow (move) once they are built */
	if (conn->req->priv->headers_done)
		return 0;
	if (conn->nh == 0 || conn->last_was_value) {
		if (conn->nh >= conn->srv->cfg.max_headers) {
			conn->fail_status = 431;
			return -1;
		}
		if (conn->nh == conn->caph) {
			conn->caph = conn->caph ? conn->caph * 2 : 16;
			conn->hoffs = xreallocarray(conn->hoffs, conn->caph, sizeof(*conn->hoffs));
		}
		struct hdr_off *h = &conn->hoffs[conn->nh++];
		h->name_off = conn->req->head_store.len;
		h->name_len = 0;
		h->value_off = 0;
		h->value_len = 0;
		conn->last_was_value = false;
	}
	conn->hoffs[conn->nh - 1].name_len += len;
	return head_add(conn, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *conn = pconn(p);
	if (conn->req->priv->headers_done)
		return 0; /* a trailer */
	struct hdr_off *h = &conn->hoffs[conn->nh - 1];
	/* obs-fold (a value continued on the next line): rejected, RFC 9112 section 5.2 */
	char before = at > conn->in.data ? at[-1] : conn->last_parsed;
	if (before == '\n') {
		conn->fail_status = 400;
		return -1;
	}
	if (!conn->last_was_value) {
		h->value_off = conn->req->head_store.len;
		conn->last_was_value = true;
	}
	h->value_len += len;
	return head_add(conn, at, len);
}

/* RFC 9110 token characters; http_parser (non-strict) also lets spaces into field names, which
 * other parsers read differently ("Content-Length : 5"). */
static bool is_token(struct sv s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || (c && strchr(extra, c));
		if (!ok)
			return false;
	}
	return true;
}

/* Rejects the framing shapes request smuggling relies on; sets has_content_length. */
static int check_framing(struct http_conn *conn, struct http_request *req)
{
	int ncl = 0, nte = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (!is_token(req->headers[i].name))
			return 400;
		if (sv_case_eq(req->headers[i].name, SV("content-length")))
			ncl++;
		else if (sv_case_eq(req->headers[i].name, SV("transfer-encoding"))) {
			nte++;
			if (!sv_case_eq(sv_trim(req->headers[i].value), SV("chunked")))
				return 501;
		}
	}
	if (ncl > 1 || nte > 1 || (ncl && nte))
		return 400;
	req->has_content_length = ncl == 1;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *conn = pconn(p);
	struct http_request *req = conn->req;
	struct http_req_priv *pr = req->priv;
	const char *base = req->head_store.data ? req->head_store.data : "";

	if (conn->nh > pr->headers_cap || !req->headers) {
		pr->headers_cap = conn->nh > 16 ? conn->nh : 16;
		free(req->headers);
		req->headers = xcalloc(pr->headers_cap, sizeof(*req->headers));
	}
	pr->headers_done = true;
	for (size_t i = 0; i < conn->nh; i++) {
		struct hdr_off *h = &conn->hoffs[i];
		req->headers[i].name = sv_make(base + h->name_off, h->name_len);
		req->headers[i].value =
		        sv_trim(sv_make(h->value_len ? base + h->value_off : base, h->value_len));
	}
	req->nheaders = conn->nh;
	req->url = sv_make(base, conn->url_len);
	conn->url_len = 0;
	sv_split(req->url, '?', &req->path, &req->query);
	req->method = (enum http_method)p->method;
	req->http_major = p->http_major;
	req->http_minor = p->http_minor;
	req->upgrade = p->upgrade;
	req->chunked = (p->flags & F_CHUNKED) != 0;
	conn->keep_alive = http_should_keep_alive(p);
	int bad = check_framing(conn, req);
	if (req->has_content_length)
		req->content_length = p->content_length;
	if (!bad && (req->path.len == 0 || (req->path.p[0] != '/' && !sv_eq(req->path, SV("*")))))
		bad = 400;
	if (bad) {
		conn->fail_status = bad;
		return -1;
	}
	/* from here the idle timer guards the body (re-armed by every read, stopped once the
	 * message is complete); a bodyless request completes at once */
	conn_arm_timer(conn, conn->srv->cfg.idle_timeout_ms);
	conn->event = EV_HEADERS;
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *conn = pconn(p);
	struct http_request *req = conn->req;
	struct http_req_priv *pr = req->priv;

	if (pr->buffering) {
		if (req->body.len + len > pr->body_max) {
			conn->fail_status = 413;
			return -1;
		}
		buf_add(&req->body, at, len);
		return 0;
	}
	if (req->on_body && !pr->ended && !pr->aborted) {
		req->on_body(req, at, len);
		if (pr->body_paused)
			http_parser_pause(p, 1);
		return 0;
	}
	/* Nobody wants the body (the handler already answered): skip a little, then give up on
	 * the connection rather than read an unbounded upload. */
	pr->discarded += len;
	if (pr->discarded > 64 * 1024) {
		conn->keep_alive = false;
		conn->stop_parsing = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *conn = pconn(p);
	conn_disarm_timer(conn); /* the response takes as long as its handler needs */
	conn->req->priv->message_complete = true;
	conn->event = EV_MESSAGE;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* ---- the processing loop ---- */

static void dispatch(struct http_conn *conn)
{
	struct http_request *req = conn->req;
	req->priv->dispatched = true;
	conn->srv->handler(req, conn->srv->data);
}

static void message_done(struct http_conn *conn)
{
	struct http_request *req = conn->req;
	struct http_req_priv *pr = req->priv;
	if (pr->buffering) {
		pr->buffering = false;
		if (pr->body_done)
			pr->body_done(req);
	} else if (req->on_body_end && !pr->ended && !pr->aborted) {
		req->on_body_end(req);
	}
}

/* Finishes the current request once both its message and its response are complete.
 * Returns true if the connection can go on with the next request. */
static bool request_finish(struct http_conn *conn)
{
	struct http_request *req = conn->req;
	conn->req = NULL;
	if (!conn->keep_alive || conn->read_eof) {
		request_free(req);
		http_conn_close_after_write(conn);
		return false;
	}
	request_recycle(conn, req);
	conn_arm_timer(conn, conn->srv->cfg.idle_timeout_ms);
	return true;
}

static void parse_failed(struct http_conn *conn)
{
	int status = conn->fail_status ? conn->fail_status : 400;
	const char *msg = status == 431   ? "request head too large or too many headers"
	                  : status == 413 ? "request body too large"
	                  : status == 501 ? "unsupported transfer coding"
	                                  : "malformed request";
	const char *code = status == 431   ? "HEADERS_TOO_LARGE"
	                   : status == 413 ? "PAYLOAD_TOO_LARGE"
	                   : status == 501 ? "NOT_IMPLEMENTED"
	                                   : "BAD_REQUEST";
	conn->keep_alive = false;
	if (conn->req && conn->req->priv->started) {
		http_conn_close(conn);
		return;
	}
	http_conn_reply_error(conn, status, code, "%s", msg);
}

void http_conn_process(struct http_conn *conn)
{
	if (conn->processing)
		return;
	conn->processing = true;
	while (!conn->closing && !conn->taken_over && !conn->shutting_down) {
		struct http_request *req = conn->req;
		if (req && req->priv->message_complete) {
			if (!req->priv->ended && !conn->stop_parsing)
				break;
			if (!req->priv->ended)
				break;
			if (!request_finish(conn))
				break;
			continue;
		}
		if (conn->stop_parsing) {
			if (!req || req->priv->ended) {
				request_free(conn->req);
				conn->req = NULL;
				http_conn_close_after_write(conn);
			}
			break;
		}
		if (req && req->priv->body_paused)
			break;
		if (conn->in.len == 0)
			break;
		size_t n = http_parser_execute(&conn->parser, &parser_settings, conn->in.data,
		                               conn->in.len);
		enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);
		if (n)
			conn->last_parsed = conn->in.data[n - 1];
		buf_consume(&conn->in, n);
		if (e == HPE_PAUSED) {
			http_parser_pause(&conn->parser, 0);
			enum conn_event ev = conn->event;
			conn->event = EV_NONE;
			if (ev == EV_HEADERS)
				dispatch(conn);
			else if (ev == EV_MESSAGE)
				message_done(conn);
			continue;
		}
		if (e != HPE_OK) {
			parse_failed(conn);
			break;
		}
	}
	conn->processing = false;
	if (conn->taken_over) {
		http_conn_close(conn);
		return;
	}
	if (!conn->closing && conn->req && conn->req->priv->message_complete &&
	    conn->req->priv->ended && !conn->stop_parsing) {
		/* the response ended inside a callback after the loop looked */
		http_conn_process(conn);
		return;
	}
	conn_update_reading(conn);
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *server, int status)
{
	struct http_listener *l = server->data;
	struct http_server *srv = l->srv;
	if (status < 0 || srv->closing)
		return;
	struct http_conn *conn = xcalloc(1, sizeof(*conn));
	conn->srv = srv;
	conn->stream = xcalloc(1, sizeof(union http_stream_box));
	if (l->is_pipe)
		uv_pipe_init(srv->loop, (uv_pipe_t *)conn->stream, 0);
	else
		uv_tcp_init(srv->loop, (uv_tcp_t *)conn->stream);
	conn->stream->data = conn;
	uv_timer_init(srv->loop, &conn->timer);
	conn->timer.data = conn;
	conn->open_handles = 2;
	conn->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = conn;
	srv->conns = conn;
	srv->nconns++;
	http_parser_init(&conn->parser, HTTP_REQUEST);
	conn->parser.data = conn;
	if (uv_accept(server, conn->stream) < 0) {
		http_conn_close(conn);
		return;
	}
	if (l->is_pipe) {
		snprintf(conn->peer, sizeof(conn->peer), "unix");
	} else {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		uv_tcp_nodelay((uv_tcp_t *)conn->stream, 1);
		if (uv_tcp_getpeername((uv_tcp_t *)conn->stream, (struct sockaddr *)&ss, &len) ==
		    0) {
			char ip[64] = "?";
			int port = 0;
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;
				uv_ip4_name(a, ip, sizeof(ip));
				port = ntohs(a->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
				uv_ip6_name(a, ip, sizeof(ip));
				port = ntohs(a->sin6_port);
			}
			snprintf(conn->peer, sizeof(conn->peer), "%s:%d", ip, port);
		}
	}
	if (srv->nconns > srv->cfg.max_connections) {
		conn->keep_alive = false;
		http_conn_reply_error(conn, 503, "TOO_MANY_CONNECTIONS",
		                      "server is at its connection limit");
		return;
	}
	conn_arm_timer(conn, srv->cfg.idle_timeout_ms);
	conn_update_reading(conn);
}

static int listen_unix(struct http_server *srv, struct http_listener *l, const char *path)
{
	l->is_pipe = true;
	uv_pipe_init(srv->loop, &l->h.pipe, 0);
	unlink(path);
	int r = uv_pipe_bind(&l->h.pipe, path);
	if (r == 0)
		chmod(path, 0660);
	return r;
}

static int listen_tcp(struct http_server *srv, struct http_listener *l, const char *addr,
                      int *ret_port)
{
	struct sockaddr_storage ss;
	char host[128];
	const char *colon = strrchr(addr, ':');
	int r;

	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return UV_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	uint64_t port;
	if (sv_to_u64(sv_from(colon + 1), 65535, &port) < 0)
		return UV_EINVAL;
	if (host[0] == '[') {
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return UV_EINVAL;
		host[hl - 1] = '\0';
		r = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)&ss);
	} else {
		r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
	}
	if (r < 0)
		return r;
	uv_tcp_init_ex(srv->loop, &l->h.tcp, ss.ss_family);
	if (srv->cfg.reuse_port) {
		/* several loops (threads) each listen on the address; the kernel spreads
		 * connections between them */
		int one = 1;
		uv_os_fd_t fd;
		if (uv_fileno(&l->h.handle, &fd) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
			return uv_translate_sys_error(errno);
	}
	r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
	if (r == 0 && ret_port) {
		int len = sizeof(ss);
		uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
		*ret_port = ss.ss_family == AF_INET
		                    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
		                    : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return r;
}

static void listener_closed(uv_handle_t *h)
{
	struct http_listener *l = h->data;
	struct http_server *srv = l->srv;
	free(l);
	srv->open_handles--;
	server_maybe_free(srv);
}

int http_server_listen(struct http_server *srv, const char *addr, int *ret_port)
{
	if (srv->nlisteners >= ARRAY_SIZE(srv->listeners))
		return UV_ENOSPC;
	struct http_listener *l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	int r = strncmp(addr, "unix:", 5) == 0 ? listen_unix(srv, l, addr + 5)
	                                       : listen_tcp(srv, l, addr, ret_port);
	if (l->h.handle.type == UV_UNKNOWN_HANDLE) {
		free(l); /* the address was refused before a handle was made */
		return r < 0 ? r : UV_EINVAL;
	}
	l->h.stream.data = l;
	srv->open_handles++;
	srv->listeners[srv->nlisteners++] = l;
	if (r == 0)
		r = uv_listen(&l->h.stream, 1024, on_connection);
	if (r < 0) {
		srv->nlisteners--;
		uv_close(&l->h.handle, listener_closed);
	}
	return r;
}

void http_server_drop_connections(struct http_server *srv)
{
	for (struct http_conn *c = srv->conns, *next; c; c = next) {
		next = c->next; /* unlinked only when its handles are closed */
		http_conn_close(c);
	}
}

void http_server_close(struct http_server *srv)
{
	srv->closing = true;
	for (size_t i = 0; i < srv->nlisteners; i++)
		uv_close(&srv->listeners[i]->h.handle, listener_closed);
	srv->nlisteners = 0;
	for (struct http_conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		http_conn_close(c);
	}
	server_maybe_free(srv);
}

/* ---- request helpers ---- */

struct sv http_request_header(const struct http_request *req, const char *name)
{
	struct sv n = sv_from(name);
	for (size_t i = 0; i < req->nheaders; i++)
		if (sv_case_eq(req->headers[i].name, n))
			return req->headers[i].value;
	return SV_NULL;
}

bool http_request_query(const struct http_request *req, const char *name, struct buf *ret)
{
	struct sv rest = req->query, item, key, val;
	while (rest.len) {
		sv_split(rest, '&', &item, &rest);
		sv_split(item, '=', &key, &val);
		if (!sv_eq_cstr(key, name))
			continue;
		_cleanup_free_ char *plus = sv_dup(val);
		for (char *c = plus; *c; c++)
			if (*c == '+')
				*c = ' ';
		buf_reset(ret);
		return url_decode(plus, val.len, ret) == 0;
	}
	return false;
}

bool http_request_query_has(const struct http_request *req, const char *name)
{
	struct sv rest = req->query, item, key, val;
	while (rest.len) {
		sv_split(rest, '&', &item, &rest);
		sv_split(item, '=', &key, &val);
		if (sv_eq_cstr(key, name))
			return true;
	}
	return false;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	return NULL;
}

const char *http_request_peer(const struct http_request *req)
{
	return req->conn->peer;
}

void http_request_read_body(struct http_request *req, size_t max,
                            void (*done)(struct http_request *req))
{
	struct http_req_priv *pr = req->priv;
	if (req->has_content_length && req->content_length > max) {
		req->conn->fail_status = 413;
		req->conn->keep_alive = false;
		http_respond_error(req, 413, "PAYLOAD_TOO_LARGE",
		                   "request body of %llu bytes is over the limit of %zu",
		                   (unsigned long long)req->content_length, max);
		return;
	}
	pr->body_max = max;
	pr->body_done = done;
	if (pr->message_complete) {
		done(req);
		return;
	}
	pr->buffering = true;
}

void http_request_pause(struct http_request *req)
{
	req->priv->body_paused = true;
	conn_update_reading(req->conn);
}

void http_request_resume(struct http_request *req)
{
	if (!req->priv->body_paused)
		return;
	req->priv->body_paused = false;
	http_conn_process(req->conn);
}

uv_stream_t *http_conn_takeover(struct http_request *req, struct buf *leftover)
{
	struct http_conn *conn = req->conn;
	uv_stream_t *s = conn->stream;
	if (!s)
		return NULL;
	if (conn->reading)
		uv_read_stop(s);
	conn->reading = false;
	if (!req->priv->message_complete && conn->in.len) {
		/* paused at "headers complete": let the parser take the rest of the head (an
		 * upgrade request has no body) so only the new protocol's bytes are left over */
		size_t n = http_parser_execute(&conn->parser, &parser_settings, conn->in.data,
		                               conn->in.len);
		buf_consume(&conn->in, n);
	}
	buf_add(leftover, conn->in.data ? conn->in.data : "", conn->in.len);
	buf_reset(&conn->in);
	s->data = NULL;
	conn->stream = NULL;
	conn->taken_over = true;
	req->priv->ended = true; /* no abort callback: the handler owns the stream now */
	if (!conn->processing)
		http_conn_close(conn);
	return s;
}
