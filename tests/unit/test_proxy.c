/* Unit tests for lib/proxy's pure parts: the route parser (hosts, ports, labels, headers, names,
 * bad input), the authorization matrix, the exposed-ports check, the request head rewriting and
 * the hash map. */
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "proxy/internal.h"
#include "proxy/policy.h"
#include "proxy/route.h"
#include "t.h"

#define ID "5gm9wex8dm6ko1ed441ym"

static int route(const char *host, const char *id, const char *port, const char *domain,
                 struct proxy_route *r, struct hutch_error *err)
{
	hutch_error_clear(err);
	memset(r, 0, sizeof(*r));
	return proxy_route_parse(host ? sv_from(host) : SV_NULL, id ? sv_from(id) : SV_NULL,
	                         port ? sv_from(port) : SV_NULL, domain, r, err);
}

static void expect_route(const char *host, const char *id, const char *port, const char *domain,
                         const char *target, unsigned want_port, enum proxy_route_via via)
{
	struct proxy_route r;
	struct hutch_error err = HUTCH_ERROR_INIT;
	int rc = route(host, id, port, domain, &r, &err);
	CHECK(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "  route(%s, %s, %s, %s): %s\n", host, id, port, domain, err.msg);
		return;
	}
	CHECK_STR(r.target, target);
	CHECK(r.port == want_port);
	CHECK(r.via == via);
}

static void expect_bad(const char *host, const char *id, const char *port, const char *domain,
                       int status, const char *kind)
{
	struct proxy_route r;
	struct hutch_error err = HUTCH_ERROR_INIT;
	int rc = route(host, id, port, domain, &r, &err);
	CHECK(rc < 0);
	CHECK(hutch_error_http_status(&err) == status);
	CHECK_STR(hutch_error_kind(&err), kind);
}

static void test_route_hosts(void)
{
	const char *d = "sandbox.example.com";
	/* local mode: {id}.local without a port, tolerated with one */
	expect_route(ID ".local", NULL, NULL, NULL, ID, 9501, PROXY_VIA_LOCAL_HOST);
	expect_route(ID ".local:9443", NULL, NULL, NULL, ID, 9501, PROXY_VIA_LOCAL_HOST);
	expect_route("byname.local", NULL, NULL, "", "byname", 9501, PROXY_VIA_LOCAL_HOST);
	expect_route("8080-" ID ".local", NULL, NULL, NULL, ID, 8080, PROXY_VIA_LOCAL_HOST);
	/* domain mode: {label}.{domain}[:port] */
	expect_route(ID ".sandbox.example.com", NULL, NULL, d, ID, 9501, PROXY_VIA_DOMAIN_HOST);
	expect_route(ID ".sandbox.example.com:9443", NULL, NULL, d, ID, 9501,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("8080-" ID ".sandbox.example.com", NULL, NULL, d, ID, 8080,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("9501-" ID ".sandbox.example.com", NULL, NULL, d, ID, 9501,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("3000-my-web.sandbox.example.com", NULL, NULL, d, "my-web", 3000,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("my-web.sandbox.example.com", NULL, NULL, d, "my-web", 9501,
	             PROXY_VIA_DOMAIN_HOST);
	/* case-insensitive host names, a trailing dot, a domain given with dots or a port */
	expect_route("MY-WEB.Sandbox.EXAMPLE.com.", NULL, NULL, d, "my-web", 9501,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("x1.sandbox.example.com", NULL, NULL, ".sandbox.example.com.", "x1", 9501,
	             PROXY_VIA_DOMAIN_HOST);
	expect_route("x1.sandbox.example.com:80", NULL, NULL, "SANDBOX.example.com:9443", "x1",
	             9501, PROXY_VIA_DOMAIN_HOST);
	expect_route("65535-a.127.0.0.1.nip.io", NULL, NULL, "127.0.0.1.nip.io", "a", 65535,
	             PROXY_VIA_DOMAIN_HOST);
	/* a name may contain digits after its first letter: not a port */
	expect_route("a-8080.local", NULL, NULL, NULL, "a-8080", 9501, PROXY_VIA_LOCAL_HOST);
}

static void test_route_headers(void)
{
	const char *d = "sandbox.example.com";
	/* the id header wins over the host; the port header defaults to 9501 */
	expect_route("localhost:9443", ID, NULL, NULL, ID, 9501, PROXY_VIA_HEADER);
	expect_route("other.local", ID, NULL, NULL, ID, 9501, PROXY_VIA_HEADER);
	expect_route("8080-x.sandbox.example.com", ID, NULL, d, ID, 9501, PROXY_VIA_HEADER);
	expect_route(NULL, "web", "8080", NULL, "web", 8080, PROXY_VIA_HEADER);
	expect_route(NULL, "  " ID " ", " 3000 ", NULL, ID, 3000, PROXY_VIA_HEADER);
	expect_route(NULL, "WEB", NULL, NULL, "web", 9501, PROXY_VIA_HEADER);
	/* the port header also overrides a port label */
	expect_route("8080-" ID ".local", NULL, "9501", NULL, ID, 9501, PROXY_VIA_LOCAL_HOST);
	/* an empty id header counts as absent */
	expect_route(ID ".local", "", NULL, NULL, ID, 9501, PROXY_VIA_LOCAL_HOST);
}

static void test_route_bad(void)
{
	const char *d = "sandbox.example.com";
	expect_bad(NULL, NULL, NULL, NULL, 400, "MISSING_SANDBOX_ID");
	expect_bad("", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad("localhost:9443", NULL, NULL, NULL, 400, "MISSING_SANDBOX_ID");
	expect_bad("127.0.0.1:9443", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad("[::1]:9443", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad("sandbox.example.com", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad("x.sandbox.example.com", NULL, NULL, NULL, 400, "MISSING_SANDBOX_ID");
	expect_bad("xsandbox.example.com", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad(".local", NULL, NULL, d, 400, "MISSING_SANDBOX_ID");
	expect_bad("a.local:http", NULL, NULL, NULL, 400, "MISSING_SANDBOX_ID");
	expect_bad("a.b.local", NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad("a.b.sandbox.example.com", NULL, NULL, d, 400, "INVALID_SANDBOX_ID");
	expect_bad("a_b.local", NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad("-a.local", NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad("a-.local", NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad("8080-.local", NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad("0-a.local", NULL, NULL, NULL, 400, "INVALID_PORT");
	expect_bad("08080-a.local", NULL, NULL, NULL, 400, "INVALID_PORT");
	expect_bad("65536-a.local", NULL, NULL, NULL, 400, "INVALID_PORT");
	expect_bad("999999-a.local", NULL, NULL, NULL, 400, "INVALID_PORT");
	expect_bad(NULL, "a b", NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad(NULL, "a/../b", NULL, NULL, 400, "INVALID_SANDBOX_ID");
	expect_bad(NULL, ID, "0", NULL, 400, "INVALID_PORT");
	expect_bad(NULL, ID, "-1", NULL, 400, "INVALID_PORT");
	expect_bad(NULL, ID, "70000", NULL, 400, "INVALID_PORT");
	expect_bad(NULL, ID, "80x", NULL, 400, "INVALID_PORT");
	char longname[80];
	memset(longname, 'a', 64);
	strcpy(longname + 64, ".local");
	expect_bad(longname, NULL, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	longname[64] = '\0';
	expect_bad(NULL, longname, NULL, NULL, 400, "INVALID_SANDBOX_ID");
	longname[63] = '\0';
	expect_route(NULL, longname, NULL, NULL, longname, 9501, PROXY_VIA_HEADER);
	CHECK(proxy_target_is_id(ID));
	CHECK(!proxy_target_is_id("my-web"));
	CHECK(!proxy_target_is_id("5gm9wex8dm6ko1ed441y"));
}

static void test_ports(void)
{
	CHECK(!proxy_ports_contains(NULL, 80));
	CHECK(!proxy_ports_contains("", 80));
	CHECK(!proxy_ports_contains("[]", 80));
	CHECK(!proxy_ports_contains("null", 80));
	CHECK(proxy_ports_contains("[80]", 80));
	CHECK(proxy_ports_contains(" [ 8080 , 80 ] ", 80));
	CHECK(proxy_ports_contains("[8080,3000,80]", 3000));
	CHECK(!proxy_ports_contains("[8080,3000]", 300));
	CHECK(!proxy_ports_contains("[8080,3000]", 30000));
	CHECK(!proxy_ports_contains("[\"80\"]", 80));
	CHECK(!proxy_ports_contains("[80", 81));
	CHECK(!proxy_ports_contains("[1,,80]", 80));
	CHECK(!proxy_ports_contains("[65616]", 80)); /* no wrap-around to 16 bits */
}

/* The whole 6.2 matrix: agent / exposed / unexposed port x public or not x credential. */
static void test_policy(void)
{
	static const struct {
		uint16_t port;
		bool found, exposed, pub;
		enum proxy_cred cred;
		int status;
		const char *kind;
	} cases[] = {
	        /* agent: always the owner's key; anonymous callers learn nothing */
	        {9501, true, false, false, PROXY_CRED_NONE, 401, "UNAUTHENTICATED"},
	        {9501, true, false, false, PROXY_CRED_INVALID, 401, "UNAUTHENTICATED"},
	        {9501, true, false, false, PROXY_CRED_OTHER, 404, "SANDBOX_NOT_FOUND"},
	        {9501, true, false, false, PROXY_CRED_OWNER, 0, NULL},
	        {9501, true, true, true, PROXY_CRED_NONE, 401, "UNAUTHENTICATED"},
	        {9501, true, true, true, PROXY_CRED_OTHER, 404, "SANDBOX_NOT_FOUND"},
	        {9501, true, true, true, PROXY_CRED_OWNER, 0, NULL},
	        {9501, false, false, false, PROXY_CRED_NONE, 401, "UNAUTHENTICATED"},
	        {9501, false, false, false, PROXY_CRED_OWNER, 404, "SANDBOX_NOT_FOUND"},
	        /* exposed port of a public sandbox: everyone */
	        {8080, true, true, true, PROXY_CRED_NONE, 0, NULL},
	        {8080, true, true, true, PROXY_CRED_INVALID, 0, NULL},
	        {8080, true, true, true, PROXY_CRED_OTHER, 0, NULL},
	        {8080, true, true, true, PROXY_CRED_OWNER, 0, NULL},
	        /* exposed port, not public: the owner's key */
	        {8080, true, true, false, PROXY_CRED_NONE, 401, "UNAUTHENTICATED"},
	        {8080, true, true, false, PROXY_CRED_INVALID, 401, "UNAUTHENTICATED"},
	        {8080, true, true, false, PROXY_CRED_OTHER, 404, "SANDBOX_NOT_FOUND"},
	        {8080, true, true, false, PROXY_CRED_OWNER, 0, NULL},
	        /* unexposed port: never routable */
	        {8080, true, false, true, PROXY_CRED_NONE, 403, "PORT_NOT_EXPOSED"},
	        {8080, true, false, true, PROXY_CRED_INVALID, 403, "PORT_NOT_EXPOSED"},
	        {8080, true, false, true, PROXY_CRED_OTHER, 404, "SANDBOX_NOT_FOUND"},
	        {8080, true, false, true, PROXY_CRED_OWNER, 403, "PORT_NOT_EXPOSED"},
	        {8080, true, false, false, PROXY_CRED_NONE, 401, "UNAUTHENTICATED"},
	        {8080, true, false, false, PROXY_CRED_INVALID, 401, "UNAUTHENTICATED"},
	        {8080, true, false, false, PROXY_CRED_OTHER, 404, "SANDBOX_NOT_FOUND"},
	        {8080, true, false, false, PROXY_CRED_OWNER, 403, "PORT_NOT_EXPOSED"},
	        /* unknown sandbox on a user port */
	        {8080, false, false, false, PROXY_CRED_NONE, 404, "SANDBOX_NOT_FOUND"},
	        {8080, false, false, false, PROXY_CRED_OWNER, 404, "SANDBOX_NOT_FOUND"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct hutch_error err = HUTCH_ERROR_INIT;
		struct proxy_access a = {cases[i].port, cases[i].found, cases[i].exposed,
		                         cases[i].pub, cases[i].cred};
		int rc = proxy_policy_decide(&a, "sbx", &err);
		bool ok = cases[i].status == 0
		                  ? rc == 0
		                  : rc < 0 && hutch_error_http_status(&err) == cases[i].status &&
		                            strcmp(hutch_error_kind(&err), cases[i].kind) == 0;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  policy case %zu: rc %d status %d %s\n", i, rc,
			        hutch_error_http_status(&err), err.msg);
	}
}

/* ---- request head rewriting ---- */

static struct http_request *fake_req(enum http_method m, const char *url, const char *const *hdrs)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	size_t n = 0;
	while (hdrs[n * 2])
		n++;
	req->method = m;
	req->url = sv_from(url);
	sv_split(req->url, '?', &req->path, &req->query);
	req->headers = xcalloc(n + 1, sizeof(*req->headers));
	for (size_t i = 0; i < n; i++) {
		req->headers[i].name = sv_from(hdrs[i * 2]);
		req->headers[i].value = sv_from(hdrs[i * 2 + 1]);
	}
	req->nheaders = n;
	return req;
}

static void free_req(struct http_request *req)
{
	free(req->headers);
	free(req);
}

static void test_head_build(void)
{
	static const char *const hdrs[] = {
	        "Host",
	        ID ".local",
	        "Authorization",
	        "Bearer hk_secret",
	        "Cookie",
	        "session=1",
	        "Connection",
	        "keep-alive, X-Hop",
	        "X-Hop",
	        "drop me",
	        "Keep-Alive",
	        "timeout=5",
	        "Transfer-Encoding",
	        "chunked",
	        "Expect",
	        "100-continue",
	        "X-Forwarded-For",
	        "6.6.6.6",
	        "Proxy-Authorization",
	        "Basic x",
	        "Accept",
	        "text/event-stream",
	        "X-Tensorlake-Sandbox-Id",
	        ID,
	        NULL,
	        NULL,
	};
	struct http_request *req = fake_req(HTTP_POST, "/api/v1/processes/run?a=1&b=%2F", hdrs);
	struct proxy_fwd f = {.peer = "10.1.2.3:5555", .chunked = true};
	struct buf out = BUF_INIT;
	proxy_head_build(req, &f, &out);
	const char *h = buf_cstr(&out);
	static const char line[] = "POST /api/v1/processes/run?a=1&b=%2F HTTP/1.1\r\n";
	CHECK(strncmp(h, line, sizeof(line) - 1) == 0);
	CHECK(strstr(h, "\r\nHost: " ID ".local\r\n"));
	CHECK(!strstr(h, "Authorization"));
	CHECK(!strstr(h, "Cookie"));
	CHECK(!strstr(h, "X-Hop"));
	CHECK(!strstr(h, "Keep-Alive"));
	CHECK(!strstr(h, "Expect"));
	CHECK(!strstr(h, "6.6.6.6"));
	CHECK(strstr(h, "\r\nAccept: text/event-stream\r\n"));
	CHECK(strstr(h, "\r\nX-Forwarded-For: 10.1.2.3\r\n"));
	CHECK(strstr(h, "\r\nX-Forwarded-Proto: http\r\n"));
	CHECK(strstr(h, "\r\nX-Forwarded-Host: " ID ".local\r\n"));
	CHECK(strstr(h, "\r\nTransfer-Encoding: chunked\r\n\r\n"));
	CHECK(!strstr(h, "Content-Length"));
	CHECK(!strstr(h, "Connection"));
	CHECK(sv_eq(http_request_header(req, "accept"), SV("text/event-stream")));
	CHECK(strcmp(http_status_text(404), "Not Found") == 0);

	buf_reset(&out);
	f = (struct proxy_fwd){
	        .peer = "127.0.0.1:1", .keep_cookies = true, .has_length = true, .length = 42};
	proxy_head_build(req, &f, &out);
	h = buf_cstr(&out);
	CHECK(strstr(h, "\r\nCookie: session=1\r\n"));
	CHECK(strstr(h, "\r\nContent-Length: 42\r\n\r\n"));
	CHECK(!strstr(h, "Transfer-Encoding"));
	free_req(req);

	/* towards another node's proxy: the key stays (it checks it again), the hop header is
	 * added; a client's own hop header never passes on (to a sandbox or a proxy) */
	static const char *const fwd[] = {
	        "Host",
	        ID ".local",
	        "Authorization",
	        "Bearer hk_secret",
	        "X-Hutch-Forwarded",
	        "forged",
	        "X-Tensorlake-Sandbox-Port",
	        "8000",
	        "Cookie",
	        "session=1",
	        NULL,
	        NULL,
	};
	req = fake_req(HTTP_GET, "/x", fwd);
	buf_reset(&out);
	f = (struct proxy_fwd){
	        .peer = "10.0.0.9:1", .keep_cookies = true, .forward_node = "node-a"};
	proxy_head_build(req, &f, &out);
	h = buf_cstr(&out);
	CHECK(strstr(h, "\r\nAuthorization: Bearer hk_secret\r\n"));
	CHECK(strstr(h, "\r\nX-Hutch-Forwarded: node-a\r\n"));
	CHECK(!strstr(h, "forged"));
	CHECK(strstr(h, "\r\nHost: " ID ".local\r\n"));
	CHECK(strstr(h, "\r\nX-Tensorlake-Sandbox-Port: 8000\r\n"));
	CHECK(strstr(h, "\r\nCookie: session=1\r\n"));
	buf_reset(&out);
	f = (struct proxy_fwd){.peer = "10.0.0.9:1"};
	proxy_head_build(req, &f, &out);
	h = buf_cstr(&out);
	CHECK(!strstr(h, "Authorization"));
	CHECK(!strstr(h, "X-Hutch-Forwarded"));
	CHECK(!strstr(h, "forged"));
	free_req(req);

	static const char *const ws[] = {
	        "Host",    "x.local",   "Connection",        "Upgrade",
	        "Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==",
	        NULL,      NULL,
	};
	req = fake_req(HTTP_GET, "/api/v1/pty/s/ws?token=t", ws);
	buf_reset(&out);
	f = (struct proxy_fwd){.peer = "unix", .upgrade = true};
	proxy_head_build(req, &f, &out);
	h = buf_cstr(&out);
	CHECK(strstr(h, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"));
	CHECK(strstr(h, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
	CHECK(strstr(h, "\r\nX-Forwarded-For: unix\r\n"));
	free_req(req);
	buf_release(&out);

	CHECK(proxy_header_is_hop(SV("Transfer-Encoding"), SV_NULL));
	CHECK(proxy_header_is_hop(SV("content-length"), SV_NULL));
	CHECK(proxy_header_is_hop(SV("X-Private"), SV("close, x-private")));
	CHECK(!proxy_header_is_hop(SV("Content-Type"), SV("close")));
	CHECK(!proxy_header_is_hop(SV("Set-Cookie"), SV_NULL));
}

/* Every header the proxy drops, in any case, and names that only look like them, which stay. */
static void test_head_names(void)
{
	static const char *const dropped[] = {
	        "cOnnection",
	        "KEEP-ALIVE",
	        "Proxy-Connection",
	        "TE",
	        "Trailer",
	        "Transfer-encoding",
	        "Content-Length",
	        "upgrade",
	        "EXPECT",
	        "authorization",
	        "Proxy-Authorization",
	        "X-Forwarded-For",
	        "x-forwarded-PROTO",
	        "X-Forwarded-Host",
	        "Forwarded",
	        "cookie",
	        "x-HUTCH-forwarded",
	};
	static const char *const kept[] = {
	        "Connections", "TE2",     "Cookie2",        "Content-Lengthy", "X-Forwarded-Fo",
	        "Upgrades",    "Expects", "Authorizations", "Forwarde",        "Trailers",
	};
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(dropped) + ARRAY_SIZE(kept); i++) {
		bool drop = i < ARRAY_SIZE(dropped);
		const char *name = drop ? dropped[i] : kept[i - ARRAY_SIZE(dropped)];
		const char *hdrs[] = {"Host", "h", name, "zzz", "X-Keep", "yes", NULL, NULL};
		struct http_request *req = fake_req(HTTP_GET, "/", hdrs);
		struct proxy_fwd f = {.peer = "1.2.3.4:5"};
		buf_reset(&out);
		proxy_head_build(req, &f, &out);
		const char *h = buf_cstr(&out);
		bool ok = strstr(h, "\r\nX-Keep: yes\r\n") && !strstr(h, "zzz") == drop;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  header %s: %s\n", name, h);
		CHECK(proxy_header_is_hop(sv_from(name), SV_NULL) == (drop && i < 8));
		free_req(req);
	}
	buf_release(&out);
}

/* Upstream keys: the agent's unix socket, a user port over TCP, and the refusals. */
static void test_target_key(void)
{
	char key[PROXY_KEY_MAX], path[200];
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct sandbox_rec rec = {.id = "s1", .agent_socket = "/run/a.sock", .ip = "10.0.0.2"};
	CHECK(proxy_target_key(&rec, PROXY_AGENT_PORT, key, &err) == 0);
	CHECK_STR(key, "unix:/run/a.sock");
	CHECK(proxy_target_key(&rec, 8080, key, &err) == 0);
	CHECK_STR(key, "tcp:10.0.0.2:8080");
	CHECK(proxy_target_key(&rec, 1, key, &err) == 0);
	CHECK_STR(key, "tcp:10.0.0.2:1");
	CHECK(proxy_target_key(&rec, 65535, key, &err) == 0);
	CHECK_STR(key, "tcp:10.0.0.2:65535");
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	rec.agent_socket = path;
	hutch_error_clear(&err);
	CHECK(proxy_target_key(&rec, PROXY_AGENT_PORT, key, &err) < 0);
	CHECK(hutch_error_http_status(&err) == 502);
	path[PROXY_KEY_MAX - 6] = '\0'; /* "unix:" + path + NUL fills the key exactly */
	CHECK(proxy_target_key(&rec, PROXY_AGENT_PORT, key, &err) == 0 &&
	      strlen(key) == PROXY_KEY_MAX - 1);
	path[PROXY_KEY_MAX - 6] = 'p'; /* one byte more */
	path[PROXY_KEY_MAX - 5] = '\0';
	CHECK(proxy_target_key(&rec, PROXY_AGENT_PORT, key, &err) < 0);
	rec.agent_socket = "";
	hutch_error_clear(&err);
	CHECK(proxy_target_key(&rec, PROXY_AGENT_PORT, key, &err) < 0);
	CHECK(hutch_error_http_status(&err) == 503);
	rec.ip = NULL;
	hutch_error_clear(&err);
	CHECK(proxy_target_key(&rec, 8080, key, &err) < 0);
	CHECK(hutch_error_http_status(&err) == 502);
}

static void test_map(void)
{
	struct proxy_map m = PROXY_MAP_INIT;
	char key[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		proxy_map_put(&m, key, (void *)(intptr_t)(i + 1));
	}
	CHECK(m.n == 5000);
	CHECK(proxy_map_get(&m, "k0") == (void *)1);
	CHECK(proxy_map_get(&m, "k4999") == (void *)5000);
	CHECK(proxy_map_get(&m, "k5000") == NULL);
	for (int i = 0; i < 5000; i += 2) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK(proxy_map_remove(&m, key) == (void *)(intptr_t)(i + 1));
	}
	CHECK(m.n == 2500);
	CHECK(proxy_map_get(&m, "k2") == NULL);
	CHECK(proxy_map_get(&m, "k3") == (void *)4);
	/* churn through tombstones without growing without bound */
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "t%d", i);
		proxy_map_put(&m, key, (void *)1);
		proxy_map_remove(&m, key);
	}
	CHECK(m.n == 2500);
	CHECK(m.cap <= 16384);
	size_t pos = 0, seen = 0;
	struct proxy_map_slot *s;
	while ((s = proxy_map_next(&m, &pos)))
		seen++;
	CHECK(seen == 2500);
	proxy_map_put(&m, "k3", (void *)7);
	CHECK(proxy_map_get(&m, "k3") == (void *)7);
	CHECK(m.n == 2500);
	proxy_map_release(&m, NULL);
	CHECK(m.n == 0 && m.slots == NULL);
}

int main(void)
{
	test_route_hosts();
	test_route_headers();
	test_route_bad();
	test_ports();
	test_policy();
	test_head_build();
	test_head_names();
	test_target_key();
	test_map();
	T_DONE();
}
