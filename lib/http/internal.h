/* Private structures shared by the files of lib/http; nothing outside lib/http includes this. */
#ifndef HUTCH_HTTP_INTERNAL_H
#define HUTCH_HTTP_INTERNAL_H

#include "http/http.h"

union http_stream_box {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct http_listener {
	union http_stream_box h;
	struct http_server *srv;
	bool is_pipe;
};

struct http_server {
	uv_loop_t *loop;
	struct http_server_config cfg;
	http_handler_fn handler;
	void *data;
	struct http_listener *listeners[8];
	size_t nlisteners;
	struct http_conn *conns;
	size_t nconns;
	int open_handles; /* listeners not yet closed */
	bool closing;
};

enum conn_event { EV_NONE, EV_HEADERS, EV_MESSAGE };

struct hdr_off {
	size_t name_off, name_len, value_off, value_len;
};

struct http_conn {
	struct http_server *srv;
	uv_stream_t *stream; /* separately allocated so takeover can hand it out */
	uv_timer_t timer;
	http_parser parser;
	struct buf in; /* bytes read and not yet parsed */
	struct http_request *req;
	struct http_request *spare; /* the last finished request, kept for its buffers */
	struct http_conn *prev, *next;
	struct hdr_off *hoffs;
	size_t nh, caph;
	size_t url_len;
	enum conn_event event;
	uint64_t deadline;  /* loop time at which conn_timeout() runs; 0 = none */
	uint64_t timer_due; /* when the timer fires (at or before deadline while it runs) */
	int fail_status;
	int open_handles; /* handles not yet closed plus writes not yet completed */
	size_t write_queued;
	bool last_was_value;
	bool keep_alive;
	bool reading;
	bool read_eof;
	bool processing;
	bool closing;
	bool shutting_down;
	bool taken_over;
	bool stop_parsing;
	bool pressure;
	char last_parsed; /* last byte the parser consumed before conn->in.data (obs-fold check) */
	char peer[64];
};

struct http_req_priv {
	size_t body_max;
	void (*body_done)(struct http_request *req);
	size_t discarded;
	bool buffering;
	bool message_complete;
	bool body_paused;
	bool dispatched;
	bool aborted;
	bool headers_done;  /* req->headers built: later header callbacks are trailers */
	size_t headers_cap; /* entries allocated in req->headers */
	/* response */
	struct buf resp_headers; /* header lines, then the framing and the blank line */
	char status_line[48];    /* "HTTP/1.1 200 OK\r\n", sent in front of resp_headers */
	size_t status_len;
	bool started;
	bool head_pending; /* head built, waiting in resp_headers for the first body bytes */
	bool chunked;
	bool no_body;
	bool ended;
};

void http_conn_process(struct http_conn *conn);
void http_conn_close(struct http_conn *conn);
void http_conn_close_after_write(struct http_conn *conn);
void http_stream_free_conn(uv_handle_t *h);
/* Drops one reference (open handle or pending write); frees conn at zero. */
void http_conn_unref(struct http_conn *conn);
/* Answers a request that never reached a handler (parse errors, limits) and closes. */
void http_conn_reply_error(struct http_conn *conn, int status, const char *code, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
/* Appends s as a JSON string literal (quotes included). */
void http_json_escape(struct buf *b, const char *s);

#endif
