/* The proxy's authorization decision (reference section 6.2) as a pure function of what the
 * request presented and what the sandbox allows, so the whole matrix is unit-tested. */
#ifndef HUTCH_PROXY_POLICY_H
#define HUTCH_PROXY_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

enum proxy_cred {
	PROXY_CRED_NONE,    /* no Authorization header */
	PROXY_CRED_INVALID, /* a key that did not verify (malformed, unknown, revoked) */
	PROXY_CRED_OWNER,   /* a valid key of the sandbox's namespace */
	PROXY_CRED_OTHER,   /* a valid key of another namespace */
};

struct proxy_access {
	uint16_t port;     /* the port asked for; PROXY_AGENT_PORT = the agent */
	bool found;        /* the sandbox exists (as far as this caller may look it up) */
	bool exposed;      /* port is listed in the sandbox's exposed_ports */
	bool allow_unauth; /* the sandbox's allow_unauthenticated_access */
	enum proxy_cred cred;
};

/* Decides whether the request may be forwarded. Returns 0 to forward, or a negative errno with err
 * holding the answer: 401 UNAUTHENTICATED (credentials needed and missing or invalid), 403
 * PORT_NOT_EXPOSED, 404 SANDBOX_NOT_FOUND (also for a key of another namespace, so that existence
 * is not revealed). The agent port always needs the owner's key and never reveals anything to an
 * anonymous caller; an exposed port of an unauthenticated-access sandbox is open to everyone. */
int proxy_policy_decide(const struct proxy_access *a, const char *target, struct hutch_error *err);

#endif
