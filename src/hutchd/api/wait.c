/* Requests the api holds open: blocking creates (until the sandbox runs or ends), executor
 * long-polls (until desired state changes) and holds until an outcome about a sandbox arrives
 * (a network policy applied by its executor). Each has a timer and ends exactly once: answered,
 * timed out, or abandoned by its client. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/xalloc.h"

enum waiter_kind { W_START, W_VERSION, W_HOLD };

struct api_waiter {
	struct api *api;
	enum waiter_kind kind;
	struct http_request *req;
	char id[32];
	uint64_t since;
	void (*done)(struct http_request *req, void *data);
	void *data;
	int tag;          /* W_HOLD: what it waits for */
	api_held_fn held; /* W_HOLD: answers req */
	uv_timer_t timer;
	struct api_waiter *next;
};

static void waiter_free(uv_handle_t *h)
{
	free(h->data);
}

/* Detaches the request from w before it is answered (answering may free it). */
static struct http_request *waiter_take(struct api_waiter *w)
{
	struct http_request *req = w->req;
	if (req) {
		req->on_abort = NULL;
		req->data = NULL;
	}
	w->req = NULL;
	return req;
}

/* Unlinks w and closes its timer; w is freed by the close callback. */
static void waiter_drop(struct api_waiter *w)
{
	struct api *api = w->api;
	for (struct api_waiter **pp = &api->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	waiter_take(w);
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, waiter_free);
}

/* A version waiter's done callback owns data: it runs exactly once, with NULL when there is
 * no request left to answer. */
static void waiter_release_data(struct api_waiter *w)
{
	if (w->kind == W_VERSION && w->done) {
		w->done(NULL, w->data);
		w->done = NULL;
	}
}

static void waiter_abort(struct http_request *req)
{
	struct api_waiter *w = req->data;
	if (w) {
		w->req = NULL; /* the request is being freed by the http layer */
		waiter_release_data(w);
		waiter_drop(w);
	}
}

static bool start_settled(const struct sandbox_rec *r)
{
	return strcmp(r->status, "running") == 0 || strcmp(r->status, "terminated") == 0 ||
	       strcmp(r->status, "suspended") == 0;
}

/* Answers a start waiter from the store; with timed_out, answers 504 "timeout" if the sandbox
 * has not settled. Returns true when it answered. */
static bool start_answer(struct api_waiter *w, bool timed_out)
{
	struct sandbox_rec r = {0};
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (store_sandbox_get_id(w->api->store, w->id, &r, &err) < 0) {
		api_respond_err(waiter_take(w), &err);
		return true;
	}
	bool settled = start_settled(&r);
	if (settled || timed_out)
		api_respond_json(waiter_take(w), settled ? 200 : 504,
		                 api_create_response_json(w->api, &r, settled ? NULL : "timeout"));
	sandbox_rec_release(&r);
	return settled || timed_out;
}

static void on_timeout(uv_timer_t *t)
{
	struct api_waiter *w = t->data;
	if (w->kind == W_START) {
		start_answer(w, true);
	} else if (w->kind == W_HOLD) {
		w->held(waiter_take(w), w->api, w->id, NULL);
	} else {
		w->done(waiter_take(w), w->data);
		w->done = NULL;
	}
	waiter_drop(w);
}

static struct api_waiter *waiter_new(struct api *api, struct http_request *req,
                                     enum waiter_kind kind, uint64_t timeout_ms)
{
	struct api_waiter *w = xcalloc(1, sizeof(*w));
	w->api = api;
	w->kind = kind;
	w->req = req;
	req->data = w;
	req->on_abort = waiter_abort;
	uv_timer_init(api->loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, on_timeout, timeout_ms, 0);
	w->next = api->waiters;
	api->waiters = w;
	return w;
}

void api_wait_for_start(struct api *api, struct http_request *req, const char *id,
                        uint64_t timeout_ms)
{
	struct api_waiter *w = waiter_new(api, req, W_START, timeout_ms);
	snprintf(w->id, sizeof(w->id), "%s", id);
	/* it may have settled already (or the bound may be zero) */
	if (start_answer(w, timeout_ms == 0))
		waiter_drop(w);
}

void api_wait_for_version(struct api *api, struct http_request *req, uint64_t since,
                          uint64_t timeout_ms, void (*done)(struct http_request *, void *),
                          void *data)
{
	if (api->version > since || timeout_ms == 0) {
		done(req, data);
		return;
	}
	struct api_waiter *w = waiter_new(api, req, W_VERSION, timeout_ms);
	w->since = since;
	w->done = done;
	w->data = data;
}

void api_hold(struct api *api, struct http_request *req, const char *id, int tag,
              uint64_t timeout_ms, api_held_fn fn)
{
	struct api_waiter *w = waiter_new(api, req, W_HOLD, timeout_ms);
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->tag = tag;
	w->held = fn;
}

void api_hold_release(struct api *api, const char *id, int tag, const void *outcome)
{
	struct api_waiter *w = api->waiters, *next;
	for (; w; w = next) {
		next = w->next;
		if (w->kind == W_HOLD && w->tag == tag && w->req && strcmp(w->id, id) == 0) {
			w->held(waiter_take(w), api, id, outcome);
			waiter_drop(w);
		}
	}
}

void api_waiters_sandbox(struct api *api, const char *id)
{
	struct api_waiter *w = api->waiters, *next;
	for (; w; w = next) {
		next = w->next;
		if (w->kind == W_START && w->req && strcmp(w->id, id) == 0 &&
		    start_answer(w, false))
			waiter_drop(w);
	}
}

void api_waiters_all_sandboxes(struct api *api)
{
	struct api_waiter *w = api->waiters, *next;
	for (; w; w = next) {
		next = w->next;
		if (w->kind == W_START && w->req && start_answer(w, false))
			waiter_drop(w);
	}
}

void api_waiters_version(struct api *api)
{
	struct api_waiter *w = api->waiters, *next;
	for (; w; w = next) {
		next = w->next;
		if (w->kind == W_VERSION && w->req && api->version > w->since) {
			w->done(waiter_take(w), w->data);
			w->done = NULL;
			waiter_drop(w);
		}
	}
}

void api_waiters_close(struct api *api)
{
	while (api->waiters) {
		struct api_waiter *w = api->waiters;
		if (w->req)
			http_respond_error(waiter_take(w), 503, "SHUTTING_DOWN",
			                   "the server is shutting down");
		waiter_release_data(w);
		waiter_drop(w);
	}
}
