/* libFuzzer target: the HTTP server's request handling end to end. Each input is written to a
 * new connection of a real server (unix socket, private libuv loop) whose handler routes,
 * reads query parameters and bodies and answers; the run must never crash, hang or leak. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "http/http.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct http_route routes[] = {
        {HTTP_POST, "/sandboxes", NULL},
        {HTTP_GET, "/sandboxes/{id}", NULL},
        {HTTP_ANY_METHOD, "/v1/namespaces/{ns}/sandboxes/{id}/{action}", NULL},
};

static uv_loop_t loop;
static struct http_server *srv;
static char path[108];

static void body_done(struct http_request *req)
{
	http_respond(req, 200, "text/plain", req->body.data, req->body.len);
}

static void handler(struct http_request *req, void *data)
{
	int status;
	const struct http_route *r = http_router_match(routes, 3, req, req->path, &status);
	struct buf q = BUF_INIT;
	http_request_query(req, "path", &q);
	buf_release(&q);
	if (!r) {
		http_respond_error(req, status, "NOT_FOUND", "no route");
		return;
	}
	http_request_read_body(req, 4096, body_done);
}

static void setup(void)
{
	struct http_server_config cfg;
	uv_loop_init(&loop);
	http_server_config_defaults(&cfg);
	cfg.max_head_bytes = 2048;
	cfg.max_headers = 20;
	srv = http_server_new(&loop, &cfg, handler, NULL);
	snprintf(path, sizeof(path), "/tmp/fuzz-http-%d.sock", (int)getpid());
	char addr[128];
	snprintf(addr, sizeof(addr), "unix:%s", path);
	if (http_server_listen(srv, addr, NULL) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!srv)
		setup();
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	fd_set_nonblock(c, true);
	size_t off = 0;
	bool shut = false, accepted = false;
	uint64_t deadline = time_mono_ms() + 2000;
	char sink[4096];
	while (time_mono_ms() < deadline) {
		if (off < size) {
			ssize_t n = write(c, data + off, size - off);
			if (n > 0)
				off += (size_t)n;
		} else if (!shut) {
			shutdown(c, SHUT_WR);
			shut = true;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		if (http_server_connection_count(srv) > 0)
			accepted = true;
		ssize_t n = read(c, sink, sizeof(sink));
		if (n == 0 || (accepted && shut && http_server_connection_count(srv) == 0))
			break;
	}
	close(c);
	/* let the server notice and release the connection */
	for (int i = 0; i < 100 && http_server_connection_count(srv) > 0; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
