/* Unit tests for lib/http: a real server on a loop thread, driven over raw sockets and through
 * the async client. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/cleanup.h"
#include "base/xalloc.h"
#include "http/client.h"
#include "http/http.h"
#include "http/router.h"
#include "t.h"

static uv_loop_t loop;
static uv_async_t stop_async;
static struct http_server *srv;
static int port;

/* ---- handlers ---- */

static void echo_done(struct http_request *req)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%.*s %zu:", (int)req->path.len, req->path.p, req->body.len);
	buf_add(&b, req->body.data ? req->body.data : "", req->body.len);
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_release(&b);
}

static void h_echo(struct http_request *req, void *data)
{
	http_request_read_body(req, 1024, echo_done);
}

static void h_stream(struct http_request *req, void *data)
{
	http_response_header(req, "Content-Type", "text/plain");
	http_response_start(req, 200, -1);
	http_response_write(req, "hello ", 6);
	http_response_write(req, "world", 5);
	http_response_end(req);
}

static void h_sse(struct http_request *req, void *data)
{
	http_sse_start(req);
	http_sse_send(req, "output", "{\"line\":\"a\"}", 12);
	http_sse_send(req, NULL, "x\ny", 3);
	http_response_end(req);
}

struct counted {
	size_t n;
};

static void count_body(struct http_request *req, const char *d, size_t len)
{
	((struct counted *)req->data)->n += len;
}

static void count_end(struct http_request *req)
{
	struct counted *c = req->data;
	char out[32];
	int n = snprintf(out, sizeof(out), "%zu", c->n);
	free(c);
	req->data = NULL;
	http_respond(req, 200, "text/plain", out, (size_t)n);
}

static void count_abort(struct http_request *req)
{
	free(req->data);
}

static void h_count(struct http_request *req, void *data)
{
	req->data = xcalloc(1, sizeof(struct counted));
	req->on_body = count_body;
	req->on_body_end = count_end;
	req->on_abort = count_abort;
}

static void h_param(struct http_request *req, void *data)
{
	struct buf q = BUF_INIT, b = BUF_INIT;
	bool has = http_request_query(req, "path", &q);
	buf_printf(&b, "id=%s q=%s", http_request_param(req, "id"), has ? buf_cstr(&q) : "-");
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_release(&q);
	buf_release(&b);
}

static void h_upgrade(struct http_request *req, void *data)
{
	const char *head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
	                   "Connection: Upgrade\r\n\r\n";
	http_response_write_raw(req, head, strlen(head));
	struct buf left = BUF_INIT;
	uv_stream_t *s = http_conn_takeover(req, &left);
	/* echo what was already read, then close */
	http_stream_write(s, "UP:", 3, NULL, NULL);
	if (left.len)
		http_stream_write(s, left.data, left.len, NULL, NULL);
	uv_close((uv_handle_t *)s, http_stream_free);
	buf_release(&left);
}

/* Reports what the request looked like: header count, one header, the query. */
static void h_headers(struct http_request *req, void *data)
{
	struct buf b = BUF_INIT;
	struct sv last = http_request_header(req, "x-last");
	buf_printf(&b, "n=%zu last=%.*s q=%.*s cl=%d", req->nheaders, SV_FMT(last),
	           SV_FMT(req->query), req->has_content_length);
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_release(&b);
}

static void h_error(struct http_request *req, void *data)
{
	http_respond_error(req, 401, "UNAUTHENTICATED", "no \"key\"");
}

static const struct http_route routes[] = {
        {HTTP_POST, "/echo", NULL},  {HTTP_GET, "/stream", NULL},      {HTTP_GET, "/sse", NULL},
        {HTTP_POST, "/count", NULL}, {HTTP_GET, "/things/{id}", NULL}, {HTTP_GET, "/upgrade", NULL},
        {HTTP_POST, "/auth", NULL},  {HTTP_GET, "/headers", NULL},
};
static void (*const handlers[])(struct http_request *, void *) = {
        h_echo, h_stream, h_sse, h_count, h_param, h_upgrade, h_error, h_headers,
};

static void dispatch(struct http_request *req, void *data)
{
	int status;
	const struct http_route *r =
	        http_router_match(routes, ARRAY_SIZE(routes), req, req->path, &status);
	if (!r) {
		http_respond_error(req, status, status == 404 ? "NOT_FOUND" : "METHOD_NOT_ALLOWED",
		                   "no route");
		return;
	}
	handlers[r - routes](req, data);
}

static void on_stop(uv_async_t *a)
{
	http_server_close(srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void *loop_thread(void *arg)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- raw socket client ---- */

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends req and reads until the peer closes or `until` appears (count times). */
static char *roundtrip(int fd, const char *req, const char *until, int count)
{
	struct buf b = BUF_INIT;
	if (req && write(fd, req, strlen(req)) < 0)
		abort();
	for (;;) {
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			break;
		buf_add(&b, tmp, (size_t)n);
		if (until) {
			int seen = 0;
			for (const char *p = buf_cstr(&b); (p = strstr(p, until)); p++)
				seen++;
			if (seen >= count)
				break;
		}
	}
	return buf_detach(&b, NULL);
}

static void test_basic(void)
{
	int fd = dial();
	char *r = roundtrip(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	                    "hello", 1);
	CHECK(strstr(r, "HTTP/1.1 200 OK") && strstr(r, "/echo 5:hello"));
	free(r);
	/* keep-alive: same connection, chunked request body */
	r = roundtrip(fd,
	              "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	              "abcde", 1);
	CHECK(strstr(r, "/echo 5:abcde") != NULL);
	free(r);
	/* pipelining: two requests in one write, answered in order */
	r = roundtrip(fd,
	              "GET /things/a%20b?path=%2Ftmp%2Fx+y HTTP/1.1\r\nHost: x\r\n\r\n"
	              "GET /things/2 HTTP/1.1\r\nHost: x\r\n\r\n",
	              "id=", 2);
	char *first = strstr(r, "id=a b q=/tmp/x y"), *second = strstr(r, "id=2 q=-");
	CHECK(first && second && first < second);
	free(r);
	close(fd);
}

static void test_errors(void)
{
	int fd = dial();
	char *r = roundtrip(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "}", 1);
	CHECK(strstr(r, "404") && strstr(r, "\"code\":\"NOT_FOUND\""));
	free(r);
	r = roundtrip(fd, "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n", "}", 1);
	CHECK(strstr(r, "405") != NULL);
	free(r);
	r = roundtrip(fd, "POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "}", 1);
	CHECK(strstr(r, "401") && strstr(r, "\"error\":\"no \\\"key\\\"\""));
	free(r);
	close(fd);

	/* body over the limit */
	fd = dial();
	r = roundtrip(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", NULL,
	              0);
	CHECK(strstr(r, "413") != NULL);
	free(r);
	close(fd);
	/* chunked body that grows over the limit */
	fd = dial();
	struct buf big = BUF_INIT;
	buf_adds(&big, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 20; i++) {
		buf_adds(&big, "64\r\n");
		for (int j = 0; j < 100; j++)
			buf_addch(&big, 'z');
		buf_adds(&big, "\r\n");
	}
	r = roundtrip(fd, buf_cstr(&big), NULL, 0);
	CHECK(strstr(r, "413") != NULL);
	free(r);
	buf_release(&big);
	close(fd);

	/* smuggling shapes */
	const char *bad[] = {
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	        "GET noslash HTTP/1.1\r\nHost: x\r\n\r\n",
	        "GARBAGE\r\n\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fd = dial();
		r = roundtrip(fd, bad[i], NULL, 0);
		CHECK(strncmp(r, "HTTP/1.1 40", 11) == 0 || strncmp(r, "HTTP/1.1 50", 11) == 0);
		CHECK(strstr(r, "200 OK") == NULL);
		free(r);
		close(fd);
	}

	/* too many headers */
	fd = dial();
	struct buf h = BUF_INIT;
	buf_adds(&h, "GET /things/1 HTTP/1.1\r\n");
	for (int i = 0; i < 150; i++)
		buf_printf(&h, "X-H%d: v\r\n", i);
	buf_adds(&h, "\r\n");
	r = roundtrip(fd, buf_cstr(&h), NULL, 0);
	CHECK(strstr(r, "431") != NULL);
	free(r);
	buf_release(&h);
	close(fd);
}

/* Trailers are dropped without moving the headers (ASan catches a use after free), a body that
 * stops arriving ends the connection after the idle timeout, bad listen addresses fail. */
static void test_robustness(void)
{
	int fd = dial();
	struct buf t = BUF_INIT;
	buf_adds(&t, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\nabc\r\n0\r\n");
	for (int i = 0; i < 100; i++)
		buf_printf(&t, "X-Trailer-%d: %0*d\r\n", i, 40, i);
	buf_adds(&t, "\r\n");
	char *r = roundtrip(fd, buf_cstr(&t), "abc", 1);
	CHECK(strstr(r, "/echo 3:abc") != NULL);
	free(r);
	buf_release(&t);
	close(fd);

	fd = dial();
	uint64_t t0 = time_mono_ms();
	r = roundtrip(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", NULL,
	              0);
	uint64_t took = time_mono_ms() - t0;
	CHECK(r[0] == '\0' && took >= 200 && took < 4000); /* closed by the idle timer, no answer */
	free(r);
	close(fd);
}

static void test_streams(void)
{
	int fd = dial();
	char *r = roundtrip(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", "0\r\n\r\n", 1);
	CHECK(strstr(r, "Transfer-Encoding: chunked") &&
	      strstr(r, "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"));
	free(r);
	r = roundtrip(fd, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n", "0\r\n\r\n", 1);
	CHECK(strstr(r, "text/event-stream") &&
	      strstr(r, "event: output\ndata: {\"line\":\"a\"}\n\n"));
	CHECK(strstr(r, "data: x\ndata: y\n\n") != NULL);
	free(r);
	/* HTTP/1.0 gets a close-delimited stream */
	close(fd);
	fd = dial();
	r = roundtrip(fd, "GET /stream HTTP/1.0\r\n\r\n", NULL, 0);
	CHECK(strstr(r, "hello world") && !strstr(r, "chunked"));
	free(r);
	close(fd);
	/* streamed request body of 1 MB in pieces */
	fd = dial();
	struct buf big = BUF_INIT;
	buf_printf(&big, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1 << 20);
	for (int i = 0; i < (1 << 20); i++)
		buf_addch(&big, 'q');
	r = roundtrip(fd, buf_cstr(&big), "1048576", 1);
	CHECK(strstr(r, "\r\n\r\n1048576") != NULL);
	free(r);
	buf_release(&big);
	close(fd);
	/* client disconnects mid-body: abort callback frees the handler state (ASan checks) */
	fd = dial();
	const char *partial = "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
	CHECK(write(fd, partial, strlen(partial)) > 0);
	usleep(50000);
	close(fd);
	usleep(50000);
}

/* Requests of one keep-alive connection reuse its request storage: nothing of a request may show
 * in the next (headers, trailers, query, framing), and the connection's deadlines still hold
 * (the timer is moved lazily). */
static void test_reuse(void)
{
	int fd = dial();
	struct buf h = BUF_INIT;
	buf_adds(&h, "GET /headers?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n");
	for (int i = 0; i < 40; i++)
		buf_printf(&h, "X-H%d: v\r\n", i);
	buf_adds(&h, "X-Last: many\r\n\r\n");
	char *r = roundtrip(fd, buf_cstr(&h), "cl=", 1);
	CHECK(strstr(r, "n=43 last=many q=a=1 cl=1") != NULL);
	free(r);
	r = roundtrip(fd, "GET /headers HTTP/1.1\r\nHost: x\r\n\r\n", "cl=", 1);
	CHECK(strstr(r, "n=1 last= q= cl=0") != NULL);
	free(r);
	/* a chunked body with a trailer, then a request whose headers must not be the trailer's */
	r = roundtrip(fd,
	              "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "3\r\nabc\r\n0\r\nX-Last: trailer\r\n\r\n",
	              "abc", 1);
	CHECK(strstr(r, "/echo 3:abc") != NULL);
	free(r);
	r = roundtrip(fd, "GET /headers HTTP/1.1\r\nHost: x\r\nX-Last: mine\r\n\r\n", "cl=", 1);
	CHECK(strstr(r, "n=2 last=mine q= cl=0") != NULL);
	free(r);
	/* a head that stops arriving gets 408 at the head deadline, after requests moved the
	 * idle deadline several times */
	uint64_t t0 = time_mono_ms();
	r = roundtrip(fd, "GET /headers HTTP/1.1\r\nHo", NULL, 0);
	uint64_t took = time_mono_ms() - t0;
	CHECK(strstr(r, "408") != NULL && took >= 500 && took < 4000);
	free(r);
	close(fd);
	/* an idle keep-alive connection is closed at the idle deadline */
	fd = dial();
	r = roundtrip(fd, "GET /headers HTTP/1.1\r\nHost: x\r\n\r\n", "cl=", 1);
	free(r);
	t0 = time_mono_ms();
	r = roundtrip(fd, NULL, NULL, 0);
	took = time_mono_ms() - t0;
	CHECK(r[0] == '\0' && took >= 300 && took < 4000);
	free(r);
	buf_release(&h);
	close(fd);
}

static void test_upgrade(void)
{
	int fd = dial();
	char *r = roundtrip(
	        fd,
	        "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
	        "RAWBYTES",
	        NULL, 0);
	CHECK(strstr(r, "101 Switching") && strstr(r, "UP:RAWBYTES"));
	if (!strstr(r, "UP:RAWBYTES"))
		fprintf(stderr, "upgrade got: %s\n", r);
	free(r);
	close(fd);
}

/* ---- the async client, run on its own loop ---- */

struct cres {
	int err, status;
	char body[256];
	int done;
};

static void client_cb(int err, struct http_client_response *resp, void *data)
{
	struct cres *c = data;
	c->err = err;
	if (resp) {
		c->status = resp->status;
		snprintf(c->body, sizeof(c->body), "%s", buf_cstr(&resp->body));
	}
	c->done = 1;
}

static void test_client(void)
{
	uv_loop_t cl;
	uv_loop_init(&cl);
	struct http_client *c = http_client_new(&cl);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	struct cres a = {0}, b = {0}, d = {0}, e = {0};
	CHECK(http_client_request(c, target, "POST", "/echo", "X-A: 1\r\n", "ping", 4, 2000, 0,
	                          client_cb, &a) == 0);
	uv_run(&cl, UV_RUN_DEFAULT);
	CHECK(a.done && a.err == 0 && a.status == 200 && strcmp(a.body, "/echo 4:ping") == 0);
	/* second request reuses the pooled connection */
	CHECK(http_client_request(c, target, "GET", "/stream", NULL, NULL, 0, 2000, 0, client_cb,
	                          &b) == 0);
	uv_run(&cl, UV_RUN_DEFAULT);
	CHECK(b.done && b.status == 200 && strcmp(b.body, "hello world") == 0);
	/* refused connection */
	CHECK(http_client_request(c, "127.0.0.1:1", "GET", "/", NULL, NULL, 0, 2000, 0, client_cb,
	                          &d) == 0);
	uv_run(&cl, UV_RUN_DEFAULT);
	CHECK(d.done && d.err < 0);
	CHECK(http_client_request(c, "nonsense", "GET", "/", NULL, NULL, 0, 2000, 0, client_cb,
	                          &e) == -EINVAL);
	http_client_free(c);
	uv_run(&cl, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&cl) == 0);
}

int main(void)
{
	pthread_t th;
	uv_loop_init(&loop);
	struct http_server_config cfg;
	http_server_config_defaults(&cfg);
	cfg.max_head_bytes = 4096;
	cfg.idle_timeout_ms = 400;
	cfg.head_timeout_ms = 600;
	srv = http_server_new(&loop, &cfg, dispatch, NULL);
	CHECK(http_server_listen(srv, "127.0.0.1:0", &port) == 0);
	/* refused addresses fail cleanly (no handle to close) */
	CHECK(http_server_listen(srv, "nonsense", NULL) < 0);
	CHECK(http_server_listen(srv, "300.1.1.1:80", NULL) < 0);
	CHECK(http_server_listen(srv, "127.0.0.1:99999", NULL) < 0);
	uv_async_init(&loop, &stop_async, on_stop);
	pthread_create(&th, NULL, loop_thread, NULL);

	test_basic();
	test_errors();
	test_robustness();
	test_streams();
	test_reuse();
	test_upgrade();
	test_client();

	uv_async_send(&stop_async);
	pthread_join(th, NULL);
	CHECK(uv_loop_close(&loop) == 0);
	T_DONE();
}
