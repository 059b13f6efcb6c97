/* Which sandbox and port a proxied request names, from the Host header ({id_or_name}.local,
 * {label}.{domain}) or the X-Tensorlake-Sandbox-Id / -Port headers, and which ports a sandbox
 * exposes. Pure code with no I/O; tests/fuzz/fuzz_route.c feeds it arbitrary input. */
#ifndef HUTCH_PROXY_ROUTE_H
#define HUTCH_PROXY_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/sv.h"

#define PROXY_AGENT_PORT 9501
#define PROXY_TARGET_MAX 63
#define PROXY_HOST_MAX   255

enum proxy_route_via {
	PROXY_VIA_HEADER,      /* X-Tensorlake-Sandbox-Id */
	PROXY_VIA_LOCAL_HOST,  /* Host: {label}.local (the SDK's local mode) */
	PROXY_VIA_DOMAIN_HOST, /* Host: {label}.{proxy_domain} */
};

struct proxy_route {
	char target[PROXY_TARGET_MAX + 1]; /* sandbox id or name, lowercase */
	uint16_t port;                     /* PROXY_AGENT_PORT = the agent */
	enum proxy_route_via via;
};

/* Parses the routing inputs of one request. host, id_header and port_header are the raw header
 * values (SV_NULL or empty when absent); domain is the configured proxy domain (NULL or "" for
 * none). The id header wins over the host; the port header wins over a port label and defaults to
 * 9501. Returns 0 and fills ret, or a negative errno with err holding the API answer:
 * 400 MISSING_SANDBOX_ID (nothing names a sandbox), 400 INVALID_SANDBOX_ID, 400 INVALID_PORT. */
int proxy_route_parse(struct sv host, struct sv id_header, struct sv port_header,
                      const char *domain, struct proxy_route *ret, struct hutch_error *err);

/* True when target has the shape of a sandbox id (21 lowercase alphanumerics) rather than a
 * name. */
bool proxy_target_is_id(const char *target);

/* True when port is listed in exposed_ports, the JSON array of integers stored with the sandbox
 * (NULL or malformed text = nothing exposed). */
bool proxy_ports_contains(const char *exposed_ports, uint16_t port);

#endif
