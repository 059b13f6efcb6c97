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

struct api_net_waiter {
	struct api *api;
	struct http_request *req;
	char id[32];
	uv_timer_t timer;
	struct api_net_waiter *next;
};

static void waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

static struct http_request *waiter_take(struct api_net_waiter *w)
{
	struct http_request *req = w->req;
	if (req) {
		req->on_abort = NULL;
		req->data = NULL;
	}
	w->req = NULL;
	return req;
}

static void waiter_end(struct api_net_waiter *w)
{
	for (struct api_net_waiter **pp = &w->api->net_waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	waiter_take(w);
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_abort(struct http_request *req)
{
	struct api_net_waiter *w = req->data;
	if (w) {
		w->req = NULL;
		waiter_end(w);
	}
}

/* Answers with the sandbox as it is now (the pending policy still shows as not applied). */
static void waiter_timeout(uv_timer_t *t)
{
	struct api_net_waiter *w = t->data;
	struct sandbox_rec r = {0};
	struct http_request *req = waiter_take(w);
	if (req && store_sandbox_get_id(w->api->store, w->id, &r, NULL) == 0)
		api_respond_json(req, 202, api_sandbox_json(w->api, &r));
	else if (req)
		http_respond_error(req, 504, "TIMEOUT",
		                   "the sandbox's host did not confirm the change");
	sandbox_rec_release(&r);
	waiter_end(w);
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
	struct api_net_waiter *w = xcalloc(1, sizeof(*w));
	w->api = api;
	w->req = req;
	snprintf(w->id, sizeof(w->id), "%s", id);
	req->data = w;
	req->on_abort = waiter_abort;
	uv_timer_init(api->loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, waiter_timeout, NETWORK_WAIT_MS, 0);
	w->next = api->net_waiters;
	api->net_waiters = w;
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
	for (struct api_net_waiter *w = api->net_waiters, *next; w; w = next) {
		next = w->next;
		if (strcmp(w->id, r->id) != 0 || !w->req)
			continue;
		struct http_request *req = waiter_take(w);
		if (ok)
			api_respond_json(req, 200, api_sandbox_json(api, r));
		else
			http_respond_error(req, 400, "INVALID_NETWORK_POLICY", "network: %s",
			                   error ? error : "the policy could not be applied");
		waiter_end(w);
	}
}

void api_network_close(struct api *api)
{
	while (api->net_waiters) {
		struct api_net_waiter *w = api->net_waiters;
		struct http_request *req = waiter_take(w);
		if (req)
			http_respond_error(req, 503, "SHUTTING_DOWN",
			                   "the server is shutting down");
		waiter_end(w);
	}
}
