/* A static route table: method + path pattern ("/sandboxes/{id}/suspend") to a handler. {name}
 * matches one non-empty segment, which is percent-decoded into the request's params. */
#ifndef HUTCH_ROUTER_H
#define HUTCH_ROUTER_H

#include "http/http.h"

#define HTTP_ANY_METHOD (-1)

struct http_route {
	int method; /* enum http_method, or HTTP_ANY_METHOD */
	const char *pattern;
	void (*handler)(struct http_request *req, void *data);
};

/* Finds the route for path (normally req->path, or a suffix of it). On success fills
 * req->params and returns the route. Returns NULL with *ret_status 404 when no pattern matches,
 * 405 when a pattern matches but not the method, 400 when a parameter is badly encoded. */
const struct http_route *http_router_match(const struct http_route *routes, size_t n,
                                           struct http_request *req, struct sv path,
                                           int *ret_status);

#endif
