/* The authorization matrix of section 6.2 (see policy.h for the contract). */
#include <errno.h>

#include "proxy/policy.h"
#include "proxy/route.h"

static int not_found(struct hutch_error *err, const char *target)
{
	return hutch_error_api(err, 404, "SANDBOX_NOT_FOUND", "sandbox %s not found", target);
}

static int unauthenticated(struct hutch_error *err, enum proxy_cred cred)
{
	return hutch_error_api(err, 401, "UNAUTHENTICATED", "%s",
	                       cred == PROXY_CRED_NONE
	                               ? "missing API key (Authorization: Bearer <key>)"
	                               : "invalid API key");
}

static bool anonymous(enum proxy_cred cred)
{
	return cred == PROXY_CRED_NONE || cred == PROXY_CRED_INVALID;
}

int proxy_policy_decide(const struct proxy_access *a, const char *target, struct hutch_error *err)
{
	if (a->port == PROXY_AGENT_PORT) {
		/* checked before existence: an anonymous caller learns nothing about the agent */
		if (anonymous(a->cred))
			return unauthenticated(err, a->cred);
		if (!a->found || a->cred == PROXY_CRED_OTHER)
			return not_found(err, target);
		return 0;
	}
	if (!a->found)
		return not_found(err, target);
	if (a->exposed && a->allow_unauth)
		return 0;
	if (a->cred == PROXY_CRED_OTHER)
		return not_found(err, target);
	if (anonymous(a->cred) && (a->exposed || !a->allow_unauth))
		return unauthenticated(err, a->cred);
	if (!a->exposed)
		return hutch_error_api(err, 403, "PORT_NOT_EXPOSED",
		                       "port %u of sandbox %s is not exposed", a->port, target);
	return 0;
}
