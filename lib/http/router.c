/* Route matching by path segments. */
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/router.h"

static void clear_params(struct http_request *req)
{
	for (size_t i = 0; i < req->nparams; i++) {
		free(req->params[i].name);
		free(req->params[i].value);
	}
	req->nparams = 0;
}

/* Matches one pattern; returns 1 on match, 0 on no match, -1 on a bad escape. */
static int match_one(const char *pattern, struct sv path, struct http_request *req)
{
	struct sv pat = sv_from(pattern), pseg, sseg;

	clear_params(req);
	if (path.len > 1 && path.p[path.len - 1] == '/')
		path.len--; /* one trailing slash is tolerated */
	if (!sv_starts_with(path, SV("/")) || !sv_starts_with(pat, SV("/")))
		return 0;
	pat = sv_make(pat.p + 1, pat.len - 1);
	path = sv_make(path.p + 1, path.len - 1);
	for (;;) {
		bool more_pat = sv_split(pat, '/', &pseg, &pat);
		bool more_path = sv_split(path, '/', &sseg, &path);
		if (pseg.len >= 2 && pseg.p[0] == '{' && pseg.p[pseg.len - 1] == '}') {
			if (sseg.len == 0 || req->nparams >= ARRAY_SIZE(req->params))
				return 0;
			struct buf v = BUF_INIT;
			if (url_decode(sseg.p, sseg.len, &v) < 0) {
				buf_release(&v);
				return -1;
			}
			req->params[req->nparams].name = sv_dup(sv_make(pseg.p + 1, pseg.len - 2));
			req->params[req->nparams].value = buf_detach(&v, NULL);
			req->nparams++;
		} else if (!sv_eq(pseg, sseg)) {
			return 0;
		}
		if (more_pat != more_path)
			return 0;
		if (!more_pat)
			return 1;
	}
}

const struct http_route *http_router_match(const struct http_route *routes, size_t n,
                                           struct http_request *req, struct sv path,
                                           int *ret_status)
{
	bool path_matched = false;
	for (size_t i = 0; i < n; i++) {
		int m = match_one(routes[i].pattern, path, req);
		if (m < 0) {
			*ret_status = 400;
			clear_params(req);
			return NULL;
		}
		if (m == 0)
			continue;
		path_matched = true;
		if (routes[i].method != HTTP_ANY_METHOD && routes[i].method != (int)req->method)
			continue;
		return &routes[i];
	}
	clear_params(req);
	*ret_status = path_matched ? 405 : 404;
	return NULL;
}
