/* libFuzzer target for the proxy's route parser and exposed-ports check (lib/proxy/route.c): the
 * input is split at NUL bytes into Host, X-Tensorlake-Sandbox-Id, X-Tensorlake-Sandbox-Port, the
 * proxy domain and an exposed_ports text; whatever it parses must satisfy route.h's promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/xalloc.h"
#include "proxy/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sv field(const uint8_t *data, size_t size, size_t *pos)
{
	if (*pos >= size)
		return SV_NULL;
	const uint8_t *start = data + *pos;
	const uint8_t *end = memchr(start, 0, size - *pos);
	size_t len = end ? (size_t)(end - start) : size - *pos;
	*pos += len + 1;
	return sv_make((const char *)start, len);
}

static void check_route(const struct proxy_route *r)
{
	size_t n = strlen(r->target);
	if (n == 0 || n > PROXY_TARGET_MAX || r->port == 0 || r->target[0] == '-' ||
	    r->target[n - 1] == '-')
		__builtin_trap();
	for (size_t i = 0; i < n; i++) {
		char c = r->target[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	struct sv host = field(data, size, &pos);
	struct sv id = field(data, size, &pos);
	struct sv port = field(data, size, &pos);
	struct sv domain = field(data, size, &pos);
	struct sv ports = field(data, size, &pos);
	char *dom = domain.p ? xstrndup(domain.p, domain.len) : NULL;
	char *pts = ports.p ? xstrndup(ports.p, ports.len) : NULL;
	struct proxy_route r;
	struct hutch_error err = HUTCH_ERROR_INIT;

	memset(&r, 0xaa, sizeof(r));
	if (proxy_route_parse(host, id, port, dom, &r, &err) == 0) {
		check_route(&r);
		proxy_target_is_id(r.target);
	} else if (err.status != 400) {
		__builtin_trap();
	}
	proxy_ports_contains(pts, r.port);
	proxy_ports_contains(pts, 80);
	free(dom);
	free(pts);
	return 0;
}
