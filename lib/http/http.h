/* hutch's one HTTP/1.1 layer, shared by the api, the proxy and the agent: a libuv server with
 * buffered or streamed request bodies, streamed responses (Content-Length, chunked, SSE), flow
 * control in both directions, connection takeover for upgrades, and limits on everything a
 * client controls. Requests are parsed with libhttp-parser.
 *
 * Threading: a server and everything hanging off it belong to the loop that runs it; call these
 * functions only from that loop's thread. */
#ifndef HUTCH_HTTP_H
#define HUTCH_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/sv.h"

struct http_server;
struct http_conn;
struct http_request;

struct http_header {
	struct sv name;
	struct sv value;
};

struct http_server_config {
	size_t max_head_bytes;    /* request line + headers; 431 beyond (default 32 KiB) */
	size_t max_headers;       /* header count; 431 beyond (default 100) */
	size_t max_connections;   /* open connections; new ones get 503 (default 10000) */
	uint64_t head_timeout_ms; /* time to send a whole request head (default 30 s) */
	uint64_t idle_timeout_ms; /* keep-alive idle time (default 75 s) */
	size_t write_high_water;  /* queued response bytes before writes report pressure
	                           * (default 1 MiB) */
	bool reuse_port;          /* SO_REUSEPORT on TCP listeners, for one server per thread
	                           * on the same address (default off) */
};

/* Called once the request head is complete. The handler must eventually respond (or take over
 * the connection); if it wants the body it calls http_request_read_body() or sets
 * req->on_body / req->on_body_end before returning. */
typedef void (*http_handler_fn)(struct http_request *req, void *data);

struct http_request {
	struct http_conn *conn;
	enum http_method method;
	struct sv url;   /* raw request target */
	struct sv path;  /* part of url before '?', not decoded */
	struct sv query; /* part after '?', not decoded, may be empty */
	struct http_header *headers;
	size_t nheaders;
	unsigned short http_major, http_minor;
	bool upgrade; /* the client asked for a protocol upgrade */
	bool has_content_length;
	uint64_t content_length;
	bool chunked;    /* request body uses chunked transfer coding */
	struct buf body; /* filled by http_request_read_body() */

	/* Streaming request body (set by the handler). on_body may be called many times; the
	 * handler can apply back-pressure with http_request_pause(). */
	void (*on_body)(struct http_request *req, const char *data, size_t len);
	void (*on_body_end)(struct http_request *req);
	/* Called once if the connection ends before the response was completed; req is freed
	 * right after, so drop every reference to it here. */
	void (*on_abort)(struct http_request *req);
	/* Called when queued response bytes fell below the low-water mark after a write reported
	 * pressure (http_response_write returned 1). */
	void (*on_drain)(struct http_request *req);
	void *data; /* handler's state */

	/* route parameters filled by http_router_match (decoded) */
	struct http_route_param {
		char *name;
		char *value;
	} params[8];
	size_t nparams;

	/* private to the http layer */
	struct buf head_store;
	struct http_req_priv *priv;
};

/* Server lifecycle. */
void http_server_config_defaults(struct http_server_config *cfg);
/* Creates a server on loop that will call handler for every request. */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_fn handler, void *data);
/* Listens on "ADDR:PORT" (IPv4 or [IPv6]) or "unix:/path" (an existing socket file is replaced).
 * Returns 0 or a negative libuv/errno code. May be called several times for several
 * addresses. ret_port (may be NULL) receives the bound TCP port (useful with port 0). */
int http_server_listen(struct http_server *srv, const char *addr, int *ret_port);
/* Closes listeners and every connection (aborting requests in flight), then frees the server
 * once libuv has released the handles. */
void http_server_close(struct http_server *srv);
size_t http_server_connection_count(const struct http_server *srv);
/* Closes every open connection (requests in flight are aborted) and keeps listening. */
void http_server_drop_connections(struct http_server *srv);

/* Request helpers. */
/* Header value by case-insensitive name; the first match; SV_NULL (p == NULL) when absent. */
struct sv http_request_header(const struct http_request *req, const char *name);
/* A query parameter's decoded value (first occurrence) into ret; returns false if absent or
 * badly encoded. */
bool http_request_query(const struct http_request *req, const char *name, struct buf *ret);
/* True when the query has the parameter at all (even with a malformed value). */
bool http_request_query_has(const struct http_request *req, const char *name);
/* Route parameter by name, or NULL. */
const char *http_request_param(const struct http_request *req, const char *name);
/* The peer's address as text ("127.0.0.1:5555", "unix"). */
const char *http_request_peer(const struct http_request *req);
/* Buffers the whole body (at most max bytes; a larger body is answered with 413 and the
 * connection closed) and then calls done. */
void http_request_read_body(struct http_request *req, size_t max,
                            void (*done)(struct http_request *req));
/* Stops / restarts reading the request body from the socket (flow control for streams). */
void http_request_pause(struct http_request *req);
void http_request_resume(struct http_request *req);

/* Responses. Headers added before http_response_start; Content-Length or chunked framing is
 * chosen by http_response_start. */
void http_response_header(struct http_request *req, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Adds header lines already formatted as "Name: value\r\n" (a proxy passing headers on); the
 * caller guarantees the format. */
void http_response_header_block(struct http_request *req, const char *block, size_t len);
/* Starts the response. content_length >= 0 sends Content-Length; -1 streams (chunked for
 * HTTP/1.1 clients, close-delimited for HTTP/1.0). */
void http_response_start(struct http_request *req, int status, int64_t content_length);
/* A Content-Length response's head is held back by http_response_start() to go out with the
 * first body bytes; this sends it now (for a body that will not follow at once). */
void http_response_flush(struct http_request *req);
/* Sends an interim "100 Continue" (for a client that sent Expect: 100-continue and waits before
 * sending its body); does nothing once the response started. */
void http_response_continue(struct http_request *req);
/* Queues body bytes (copied). Returns 0, 1 when the queue is above the high-water mark (wait for
 * on_drain before writing more), or -EPIPE when the connection is gone. */
int http_response_write(struct http_request *req, const void *data, size_t len);
/* Finishes the response. req must not be used afterwards. */
void http_response_end(struct http_request *req);
/* Bytes queued for the client and not yet written. */
size_t http_response_queued(const struct http_request *req);
bool http_response_started(const struct http_request *req);

/* One-shot responses (start + write + end). */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len);
/* JSON error body {"error": message, "code": code}. */
void http_respond_error(struct http_request *req, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Server-sent events on a started stream (http_sse_start sends the head). */
void http_sse_start(struct http_request *req);
/* Writes "event: <event>\n" (when event is non-NULL) and "data: <data>\n\n". Returns as
 * http_response_write. */
int http_sse_send(struct http_request *req, const char *event, const char *data, size_t len);
/* Appends the same event to out, to send several with one http_response_write. */
void http_sse_append(struct buf *out, const char *event, const char *data, size_t len);
int http_sse_comment(struct http_request *req, const char *text);

/* Takes the connection out of HTTP handling (after a 101 or for a raw tunnel): returns the
 * libuv stream (reading stopped; the caller owns it now, must set its data pointer and
 * eventually uv_close() it with http_stream_free as close callback) and appends bytes already
 * read past the request head to leftover. req is freed. */
uv_stream_t *http_conn_takeover(struct http_request *req, struct buf *leftover);
/* Close callback for streams handed out by http_conn_takeover. */
void http_stream_free(uv_handle_t *h);
/* Writes raw bytes on a stream (copied); cb (may be NULL) runs when written or failed. */
int http_stream_write(uv_stream_t *s, const void *data, size_t len,
                      void (*cb)(uv_stream_t *s, int status, void *arg), void *arg);
/* Writes raw bytes on an HTTP connection before takeover (for a 101 head built by hand). */
int http_response_write_raw(struct http_request *req, const void *data, size_t len);

const char *http_status_text(int status);

#endif
