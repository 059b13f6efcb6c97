/* Header rewriting at the proxy boundary: the request head sent upstream (credentials stripped,
 * hop-by-hop headers dropped, X-Forwarded-* added, body re-framed), the response headers that
 * must not be passed back, and CORS (reference section 6.1). */
#include <string.h>

#include "base/cleanup.h"
#include "proxy/internal.h"

static bool token_listed(struct sv list, struct sv name)
{
	struct sv item;
	while (list.len) {
		sv_split(list, ',', &item, &list);
		if (sv_case_eq(sv_trim(item), name))
			return true;
	}
	return false;
}

#define HDR_HOP     1u /* hop-by-hop or framing: dropped both ways */
#define HDR_REQUEST 2u /* dropped from requests only */
#define HDR_COOKIE  4u
#define HDR_AUTH    8u /* the client's key: kept only towards another node's proxy */

/* Dropped from every request: hop-by-hop and framing headers (re-made here), credentials meant
 * for the proxy, and forwarding headers the client must not be able to forge. Responses drop the
 * HDR_HOP ones. Lengths are precomputed: every header of every request is classified. */
static const struct {
	struct sv name;
	unsigned flags;
} special[] = {
#define H(s, f)                       \
	{                             \
		{s, sizeof(s) - 1}, f \
	}
        H("connection", HDR_HOP),
        H("keep-alive", HDR_HOP),
        H("proxy-connection", HDR_HOP),
        H("te", HDR_HOP),
        H("trailer", HDR_HOP),
        H("transfer-encoding", HDR_HOP),
        H("content-length", HDR_HOP),
        H("upgrade", HDR_HOP),
        H("expect", HDR_REQUEST),
        H("authorization", HDR_REQUEST | HDR_AUTH),
        H("proxy-authorization", HDR_REQUEST),
        H("x-forwarded-for", HDR_REQUEST),
        H("x-forwarded-proto", HDR_REQUEST),
        H("x-forwarded-host", HDR_REQUEST),
        H("forwarded", HDR_REQUEST),
        H(PROXY_HOP_HEADER, HDR_REQUEST),
        H("cookie", HDR_COOKIE),
#undef H
};

/* The HDR_* flags of a header name (0 for an ordinary end-to-end header). */
static unsigned header_flags(struct sv name)
{
	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		if (special[i].name.len == name.len && sv_case_eq(special[i].name, name))
			return special[i].flags;
	return 0;
}

bool proxy_header_name_valid(const char *name)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (!name[0])
		return false;
	for (const char *c = name; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		          (*c >= '0' && *c <= '9') || strchr(extra, *c);
		if (!ok)
			return false;
	}
	return true;
}

bool proxy_header_is_hop(struct sv name, struct sv connection)
{
	return (header_flags(name) & HDR_HOP) || (connection.len && token_listed(connection, name));
}

static bool request_keeps(const struct http_request *req, const struct proxy_fwd *f, struct sv name,
                          struct sv connection)
{
	unsigned flags = header_flags(name);
	if ((flags & HDR_AUTH) && f->forward_node)
		return !(connection.len && token_listed(connection, name));
	if (flags & (HDR_HOP | HDR_REQUEST))
		return false;
	if (!f->keep_cookies && (flags & HDR_COOKIE))
		return false;
	return !(connection.len && token_listed(connection, name));
}

/* The client's address without its port ("10.0.0.1:5555" -> "10.0.0.1"). */
static struct sv peer_ip(const char *peer)
{
	struct sv ip, port;
	if (!sv_rsplit(sv_from(peer), ':', &ip, &port))
		return sv_from(peer);
	return ip;
}

static void add_header(struct buf *out, struct sv name, struct sv value)
{
	buf_add(out, name.p, name.len);
	buf_add(out, ": ", 2);
	buf_add(out, value.p, value.len);
	buf_add(out, "\r\n", 2);
}

void proxy_head_build(const struct http_request *req, const struct proxy_fwd *f, struct buf *out)
{
	struct sv connection = http_request_header(req, "connection");
	struct sv host = http_request_header(req, "host");
	const char *method = http_method_str(req->method);

	buf_grow(out, 512 + req->url.len);
	buf_adds(out, method);
	buf_addch(out, ' ');
	buf_add(out, req->url.p, req->url.len);
	buf_adds(out, " HTTP/1.1\r\n");
	if (!host.p)
		buf_adds(out, "Host: localhost\r\n");
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (request_keeps(req, f, h->name, connection))
			add_header(out, h->name, h->value);
	}
	add_header(out, SV("X-Forwarded-For"), peer_ip(f->peer));
	buf_adds(out, "X-Forwarded-Proto: http\r\n");
	if (host.p)
		add_header(out, SV("X-Forwarded-Host"), host);
	if (f->forward_node)
		add_header(out, SV("X-Hutch-Forwarded"), sv_from(f->forward_node));
	if (f->upgrade) {
		buf_adds(out, "Connection: Upgrade\r\n");
		add_header(out, SV("Upgrade"), http_request_header(req, "upgrade"));
	}
	if (f->chunked)
		buf_adds(out, "Transfer-Encoding: chunked\r\n");
	else if (f->has_length)
		buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)f->length);
	buf_adds(out, "\r\n");
}

/* ---- CORS ---- */

bool proxy_cors_is_preflight(const struct http_request *req)
{
	return req->method == HTTP_OPTIONS && http_request_header(req, "origin").len &&
	       http_request_header(req, "access-control-request-method").len;
}

void proxy_cors_headers(struct http_request *req)
{
	struct sv origin = http_request_header(req, "origin");
	if (!origin.len)
		return;
	http_response_header(req, "Access-Control-Allow-Origin", "%.*s", SV_FMT(origin));
	http_response_header(req, "Access-Control-Allow-Credentials", "true");
	http_response_header(req, "Vary", "Origin");
}

void proxy_cors_preflight(struct http_request *req)
{
	proxy_cors_headers(req);
	http_response_header(req, "Access-Control-Allow-Methods",
	                     "GET, POST, PUT, DELETE, OPTIONS, PATCH");
	http_response_header(req, "Access-Control-Allow-Headers",
	                     "content-type, authorization, x-tensorlake-sandbox-id, "
	                     "x-tensorlake-sandbox-port, x-pty-token");
	http_response_header(req, "Access-Control-Max-Age", "86400");
	http_respond(req, 204, NULL, NULL, 0);
}
