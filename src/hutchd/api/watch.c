/* Changes other api nodes make to a shared (PostgreSQL) store. Each node wakes its own waiters
 * after its own writes; a write through another node arrives here as a notification on a
 * listening connection polled from the loop, and runs the same wakeups: executor long-polls
 * re-read their assignments, blocking creates re-read their sandbox. A SQLite store has one api
 * node and no watch. */
#include <stdlib.h>

#include "api.h"
#include "base/log.h"
#include "base/xalloc.h"

#define WATCH_RETRY_MS 1000

struct api_watch {
	struct api *api;
	struct store_watch *w;
	uv_poll_t poll;
	bool polling;
	uv_timer_t retry;
	bool stopping;
	int open_handles; /* freed when the last one is closed */
};

static void outside_changed(struct api *api)
{
	api_desired_changed(api);
	api_waiters_all_sandboxes(api);
}

static void on_retry(uv_timer_t *t);

static void watch_unref(struct api_watch *aw)
{
	if (--aw->open_handles == 0)
		free(aw);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct api_watch *aw = h->data;
	aw->polling = false;
	store_watch_free(aw->w);
	aw->w = NULL;
	if (!aw->stopping)
		uv_timer_start(&aw->retry, on_retry, WATCH_RETRY_MS, 0);
	watch_unref(aw);
}

static void on_timer_closed(uv_handle_t *h)
{
	watch_unref(h->data);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct api_watch *aw = p->data;
	int n = status < 0 ? -1 : store_watch_drain(aw->w);
	if (n > 0) {
		outside_changed(aw->api);
	} else if (n < 0) {
		log_warn("store: lost the change notifications; reconnecting");
		uv_poll_stop(&aw->poll);
		uv_close((uv_handle_t *)&aw->poll, on_poll_closed);
	}
}

/* Opens the listening connection; after a loss, changes may have been missed meanwhile, so the
 * wakeups run once. */
static void watch_start(struct api_watch *aw, bool after_loss)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (store_watch_open(aw->api->store, aw->api->cfg->store_path, &aw->w, &err) < 0) {
		log_warn("store: %s; retrying", err.msg);
		uv_timer_start(&aw->retry, on_retry, WATCH_RETRY_MS, 0);
		return;
	}
	uv_poll_init(aw->api->loop, &aw->poll, store_watch_fd(aw->w));
	aw->poll.data = aw;
	aw->polling = true;
	aw->open_handles++;
	uv_poll_start(&aw->poll, UV_READABLE, on_readable);
	if (after_loss)
		outside_changed(aw->api);
}

static void on_retry(uv_timer_t *t)
{
	watch_start(t->data, true);
}

void api_watch_start(struct api *api)
{
	if (!store_spec_is_postgres(api->cfg->store_path))
		return;
	struct api_watch *aw = xcalloc(1, sizeof(*aw));
	aw->api = api;
	uv_timer_init(api->loop, &aw->retry);
	aw->retry.data = aw;
	aw->open_handles = 1;
	api->watch = aw;
	watch_start(aw, false);
}

void api_watch_stop(struct api *api)
{
	struct api_watch *aw = api->watch;
	if (!aw)
		return;
	api->watch = NULL;
	aw->stopping = true;
	uv_timer_stop(&aw->retry);
	if (aw->polling && !uv_is_closing((uv_handle_t *)&aw->poll)) {
		uv_poll_stop(&aw->poll);
		uv_close((uv_handle_t *)&aw->poll, on_poll_closed);
	}
	uv_close((uv_handle_t *)&aw->retry, on_timer_closed);
}
