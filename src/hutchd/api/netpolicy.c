/* Live network policy changes. A PATCH of `network` on a sandbox that runs somewhere is applied
 * by its executor, which is the one that resolves host names and swaps the nftables rules
 * atomically: the api keeps the new policy in network_pending, holds the PATCH, and answers once
 * the executor reports the outcome (200 with the new policy, or 400 with the old one kept). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

#define NETWORK_WAIT_MS 15000

struct network_outcome {
	bool ok;
	const char *error;
};

/* Answers a held PATCH: with the outcome, or on timeout with the sandbox as it is now (the
 * pending policy still shows as not applied). */
static void network_answer(struct http_request *req, struct api *api, const char *id,
                           const void *outcome)
{
	const struct network_outcome *o = outcome;
	struct sandbox_rec r = {0};
	if (o && !o->ok)
		http_respond_error(req, 400, "INVALID_NETWORK_POLICY", "network: %s",
		                   o->error ? o->error : "the policy could not be applied");
	else if (store_sandbox_get_id(api->store, id, &r, NULL) == 0)
		api_respond_json(req, o ? 200 : 202, api_sandbox_json(api, &r));
	else
		http_respond_error(req, 504, "TIMEOUT",
		                   "the sandbox's host did not confirm the change");
	sandbox_rec_release(&r);
}

bool api_network_needs_executor(const struct sandbox_rec *r)
{
	static const char *const live[] = {"running", "suspending", "suspended", "snapshotting"};
	if (!r->executor_id)
		return false;
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (strcmp(r->status, live[i]) == 0)
			return true;
	return false;
}

void api_network_wait(struct api *api, struct http_request *req, const char *id)
{
	api_hold(api, req, id, API_HOLD_NETWORK, NETWORK_WAIT_MS, network_answer);
}

void api_network_report(struct api *api, struct sandbox_rec *r, json_t *result)
{
	if (!r->network_pending)
		return;
	bool ok = json_is_true(json_object_get(result, "ok"));
	const char *error = json_string_value(json_object_get(result, "error"));
	if (ok)
		rec_set(&r->network,
		        strcmp(r->network_pending, "null") == 0 ? NULL : r->network_pending);
	rec_set(&r->network_pending, NULL);
	r->updated_at = time_now_ms();
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (store_sandbox_update(api->store, r, &err) < 0)
		log_warn("sandbox %s: saving its network policy: %s", r->id, err.msg);
	log_info("sandbox %s: network policy %s%s%s", r->id, ok ? "applied" : "rejected",
	         error ? ": " : "", error ? error : "");
	struct network_outcome o = {ok, error};
	api_hold_release(api, r->id, API_HOLD_NETWORK, &o);
}
