/* HTTP responses: the head, Content-Length / chunked / close-delimited framing, write queueing
 * with high-water back-pressure, SSE framing, and raw writes for upgraded connections. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsonesc.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/http.h"
#include "http/internal.h"

const char *http_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

void http_json_escape(struct buf *b, const char *s)
{
	json_escape_append(b, s, strlen(s), 0);
}

/* ---- the write queue ---- */

struct wreq {
	uv_write_t w;
	struct http_conn *conn;
	size_t len;
	char data[];
};

static void conn_write_done(uv_write_t *w, int status)
{
	struct wreq *wr = (struct wreq *)w;
	struct http_conn *conn = wr->conn;
	conn->write_queued -= wr->len;
	free(wr);
	if (conn->closing || !conn->stream) {
		http_conn_unref(conn); /* taken over or closed: the write only kept conn alive */
		return;
	}
	http_conn_unref(conn);
	if (status < 0) {
		http_conn_close(conn);
		return;
	}
	if (conn->pressure && conn->write_queued <= conn->srv->cfg.write_high_water / 2) {
		conn->pressure = false;
		struct http_request *req = conn->req;
		if (req && req->on_drain && !req->priv->ended && !req->priv->aborted)
			req->on_drain(req);
	}
}

/* Writes pre + data + post: straight to the socket when nothing is queued (no copy, and none of
 * the epoll_ctl calls a completed uv_write costs), and whatever the socket did not take as one
 * queued write. An error is left to the queued write, which reports it from its callback, never
 * from inside this call. Returns 0, 1 (above high water) or -EPIPE. */
static int conn_write3(struct http_conn *conn, const char *pre, size_t prelen, const void *data,
                       size_t len, const char *post, size_t postlen)
{
	const char *part[3] = {pre, data, post};
	size_t plen[3] = {prelen, len, postlen};
	size_t total = prelen + len + postlen, skip = 0;

	if (conn->closing || !conn->stream)
		return -EPIPE;
	if (conn->write_queued == 0 && total) {
		uv_buf_t b[3];
		unsigned n = 0;
		for (int i = 0; i < 3; i++)
			if (plen[i])
				b[n++] = uv_buf_init((char *)part[i], (unsigned)plen[i]);
		int w = uv_try_write(conn->stream, b, n);
		skip = w > 0 ? (size_t)w : 0;
	}
	if (skip == total)
		return conn->pressure ? 1 : 0;
	struct wreq *wr = xmalloc(sizeof(*wr) + total - skip);
	wr->conn = conn;
	wr->len = total - skip;
	char *out = wr->data;
	for (int i = 0; i < 3; i++) {
		size_t off = skip < plen[i] ? skip : plen[i];
		skip -= off;
		if (plen[i] > off)
			memcpy(out, part[i] + off, plen[i] - off);
		out += plen[i] - off;
	}
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
	conn->write_queued += wr->len;
	conn->open_handles++; /* a pending write keeps the connection struct alive */
	if (uv_write(&wr->w, conn->stream, &b, 1, conn_write_done) < 0) {
		conn->open_handles--;
		conn->write_queued -= wr->len;
		free(wr);
		http_conn_close(conn);
		return -EPIPE;
	}
	if (conn->write_queued > conn->srv->cfg.write_high_water) {
		conn->pressure = true;
		return 1;
	}
	return 0;
}

/* ---- number formatting (no printf on the hot path) ---- */

/* Writes v in lowercase hex to out (at least 16 bytes); returns the length. */
static size_t fmt_hex(char *out, uint64_t v)
{
	char tmp[16];
	size_t n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* ---- responses ---- */

void http_response_header(struct http_request *req, const char *name, const char *fmt, ...)
{
	va_list ap;
	struct buf *h = &req->priv->resp_headers;
	buf_adds(h, name);
	buf_adds(h, ": ");
	va_start(ap, fmt);
	buf_vprintf(h, fmt, ap);
	va_end(ap);
	buf_adds(h, "\r\n");
}

void http_response_header_block(struct http_request *req, const char *block, size_t len)
{
	buf_add(&req->priv->resp_headers, block, len);
}

/* "HTTP/1.1 <status> <text>\r\n" into pr->status_line. */
static void status_line_build(struct http_req_priv *pr, int status)
{
	const char *text = http_status_text(status);
	size_t tlen = strlen(text), n = 0;
	char *o = pr->status_line;
	memcpy(o, "HTTP/1.1 ", 9);
	n = 9;
	n += fmt_u64(o + n, status >= 0 && status <= 999 ? (uint64_t)status : 500);
	o[n++] = ' ';
	if (tlen > sizeof(pr->status_line) - n - 2)
		tlen = sizeof(pr->status_line) - n - 2;
	memcpy(o + n, text, tlen);
	n += tlen;
	memcpy(o + n, "\r\n", 2);
	pr->status_len = n + 2;
}

void http_response_start(struct http_request *req, int status, int64_t content_length)
{
	struct http_req_priv *pr = req->priv;
	struct http_conn *conn = req->conn;
	struct buf *head = &pr->resp_headers; /* the status line goes in front when written */

	if (pr->started || pr->aborted)
		return;
	pr->started = true;
	bool bodyless = status < 200 || status == 204 || status == 304;
	bool http11 = req->http_major == 1 && req->http_minor >= 1;
	status_line_build(pr, status);
	if (bodyless) {
		pr->no_body = true;
	} else if (content_length >= 0) {
		char num[24];
		buf_add(head, "Content-Length: ", 16);
		buf_add(head, num, fmt_u64(num, (uint64_t)content_length));
		buf_add(head, "\r\n", 2);
	} else if (http11) {
		buf_adds(head, "Transfer-Encoding: chunked\r\n");
		pr->chunked = true;
	} else {
		conn->keep_alive = false; /* close-delimited */
	}
	if (req->method == HTTP_HEAD)
		pr->no_body = true;
	if (status == 101)
		;
	else if (!conn->keep_alive)
		buf_adds(head, "Connection: close\r\n");
	else if (!http11)
		buf_adds(head, "Connection: keep-alive\r\n");
	buf_add(head, "\r\n", 2);
	if (!pr->no_body && content_length > 0) {
		/* held back to go out with the first body bytes: one write instead of two */
		pr->head_pending = true;
		return;
	}
	conn_write3(conn, pr->status_line, pr->status_len, head->data, head->len, NULL, 0);
}

void http_response_flush(struct http_request *req)
{
	struct http_req_priv *pr = req->priv;
	if (!pr->head_pending)
		return;
	pr->head_pending = false;
	conn_write3(req->conn, pr->status_line, pr->status_len, pr->resp_headers.data,
	            pr->resp_headers.len, NULL, 0);
}

void http_response_continue(struct http_request *req)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http_req_priv *pr = req->priv;
	if (pr->started || pr->aborted || req->http_major != 1 || req->http_minor < 1)
		return;
	conn_write3(req->conn, cont, sizeof(cont) - 1, NULL, 0, NULL, 0);
}

int http_response_write(struct http_request *req, const void *data, size_t len)
{
	struct http_req_priv *pr = req->priv;
	if (pr->aborted || req->conn->closing)
		return -EPIPE;
	if (!pr->started)
		http_response_start(req, 200, -1);
	if (pr->no_body || len == 0)
		return req->conn->pressure ? 1 : 0;
	if (pr->head_pending) {
		/* status line, headers and the first body bytes in one write */
		pr->head_pending = false;
		return conn_write3(req->conn, pr->status_line, pr->status_len,
		                   pr->resp_headers.data, pr->resp_headers.len, data, len);
	}
	if (!pr->chunked)
		return conn_write3(req->conn, NULL, 0, data, len, NULL, 0);
	char pre[24];
	size_t n = fmt_hex(pre, len);
	memcpy(pre + n, "\r\n", 2);
	return conn_write3(req->conn, pre, n + 2, data, len, "\r\n", 2);
}

void http_response_end(struct http_request *req)
{
	struct http_req_priv *pr = req->priv;
	struct http_conn *conn = req->conn;
	if (pr->ended)
		return;
	if (!pr->started)
		http_response_start(req, 200, 0);
	http_response_flush(req);
	if (pr->chunked && !pr->no_body && !pr->aborted)
		conn_write3(conn, "0\r\n\r\n", 5, NULL, 0, NULL, 0);
	pr->ended = true;
	if (!pr->message_complete && !pr->buffering && !req->on_body) {
		/* the rest of the body will be skipped (or the connection closed if it is big) */
	}
	http_conn_process(conn);
}

size_t http_response_queued(const struct http_request *req)
{
	return req->conn->write_queued;
}

bool http_response_started(const struct http_request *req)
{
	return req->priv->started;
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len)
{
	if (content_type)
		http_response_header(req, "Content-Type", "%s", content_type);
	http_response_start(req, status, (int64_t)len);
	if (len)
		http_response_write(req, body, len);
	http_response_end(req);
}

static void error_body(struct buf *b, const char *code, const char *fmt, va_list ap)
{
	struct buf msg = BUF_INIT;
	buf_vprintf(&msg, fmt, ap);
	buf_adds(b, "{\"error\":");
	http_json_escape(b, buf_cstr(&msg));
	buf_adds(b, ",\"code\":");
	http_json_escape(b, code);
	buf_adds(b, "}");
	buf_release(&msg);
}

void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...)
{
	va_list ap;
	struct buf b = BUF_INIT;
	va_start(ap, fmt);
	error_body(&b, code, fmt, ap);
	va_end(ap);
	http_respond(req, status, "application/json", b.data, b.len);
	buf_release(&b);
}

void http_conn_reply_error(struct http_conn *conn, int status, const char *code, const char *fmt,
                           ...)
{
	va_list ap;
	struct buf body = BUF_INIT, head = BUF_INIT;
	va_start(ap, fmt);
	error_body(&body, code, fmt, ap);
	va_end(ap);
	buf_printf(&head,
	           "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	           "Connection: close\r\n\r\n",
	           status, http_status_text(status), body.len);
	struct http_request *req = conn->req;
	if (req && req->priv->dispatched && !req->priv->ended && !req->priv->aborted) {
		/* a handler streaming this request's body must learn that it is over (it is
		 * freed when the connection closes) */
		req->priv->aborted = true;
		if (req->on_abort)
			req->on_abort(req);
	}
	if (req)
		req->priv->ended = true;
	conn_write3(conn, head.data, head.len, body.data, body.len, NULL, 0);
	buf_release(&body);
	buf_release(&head);
	conn->keep_alive = false;
	http_conn_close_after_write(conn);
}

/* ---- server-sent events ---- */

void http_sse_start(struct http_request *req)
{
	http_response_header(req, "Content-Type", "text/event-stream");
	http_response_header(req, "Cache-Control", "no-cache");
	http_response_header(req, "X-Accel-Buffering", "no");
	http_response_start(req, 200, -1);
}

void http_sse_append(struct buf *b, const char *event, const char *data, size_t len)
{
	if (event)
		buf_printf(b, "event: %s\n", event);
	/* one data: line per line of data, as SSE requires */
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || data[i] == '\n') {
			buf_adds(b, "data: ");
			buf_add(b, data + start, i - start);
			buf_addch(b, '\n');
			start = i + 1;
		}
	}
	buf_addch(b, '\n');
}

int http_sse_send(struct http_request *req, const char *event, const char *data, size_t len)
{
	struct buf b = BUF_INIT;
	http_sse_append(&b, event, data, len);
	int r = http_response_write(req, b.data, b.len);
	buf_release(&b);
	return r;
}

int http_sse_comment(struct http_request *req, const char *text)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, ": %s\n\n", text);
	int r = http_response_write(req, b.data, b.len);
	buf_release(&b);
	return r;
}

/* ---- raw writes ---- */

int http_response_write_raw(struct http_request *req, const void *data, size_t len)
{
	http_response_flush(req);
	req->priv->started = true;
	return conn_write3(req->conn, data, len, NULL, 0, NULL, 0);
}

struct swreq {
	uv_write_t w;
	void (*cb)(uv_stream_t *s, int status, void *arg);
	void *arg;
	char data[];
};

static void stream_write_done(uv_write_t *w, int status)
{
	struct swreq *wr = (struct swreq *)w;
	if (wr->cb)
		wr->cb(w->handle, status, wr->arg);
	free(wr);
}

int http_stream_write(uv_stream_t *s, const void *data, size_t len,
                      void (*cb)(uv_stream_t *s, int status, void *arg), void *arg)
{
	struct swreq *wr = xmalloc(sizeof(*wr) + len);
	wr->cb = cb;
	wr->arg = arg;
	memcpy(wr->data, data, len);
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
	int r = uv_write(&wr->w, s, &b, 1, stream_write_done);
	if (r < 0)
		free(wr);
	return r;
}
