/* An asynchronous HTTP/1.1 client on libuv for hutch's internal calls (executor to api, proxy to
 * api): buffered request and response bodies, keep-alive connections pooled per target, a
 * timeout per request. Not for streaming; the proxy has its own upstream path. */
#ifndef HUTCH_HTTP_CLIENT_H
#define HUTCH_HTTP_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "http/http.h"

struct http_client;

struct http_client_response {
	int status;
	struct buf head; /* raw header block, "Name: value\r\n" lines */
	struct buf body;
};

/* err is 0 with a response, or a negative errno / libuv code (-ETIMEDOUT, -ECONNREFUSED,
 * -ECANCELED when the client is freed, -EMSGSIZE when the body is over max_body). resp is
 * valid only during the call. */
typedef void (*http_client_cb)(int err, struct http_client_response *resp, void *data);

struct http_client *http_client_new(uv_loop_t *loop);
/* Cancels requests in flight (their callbacks run with -ECANCELED) and frees the client once
 * its handles are closed. */
void http_client_free(struct http_client *c);

/* Sends one request. target is "HOST:PORT", "http://HOST:PORT" (IPv4 literal or localhost) or
 * "unix:/path". headers is a block of "Name: value\r\n" lines or NULL. body may be NULL.
 * Returns 0 (cb will run exactly once, never synchronously) or -EINVAL for a bad target. */
int http_client_request(struct http_client *c, const char *target, const char *method,
                        const char *path, const char *headers, const void *body, size_t len,
                        uint64_t timeout_ms, size_t max_body, http_client_cb cb, void *data);

/* Header value from a response (case-insensitive name), copied into ret; false if absent. */
bool http_client_response_header(const struct http_client_response *resp, const char *name,
                                 struct buf *ret);

#endif
