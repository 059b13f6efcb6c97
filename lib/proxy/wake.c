/* Wake-on-traffic: a request for a suspended sandbox asks the api to wake it (POST
 * /internal/v1/sandboxes/{id}/wake with the node token) and then waits for the store to show it
 * running (exchange.c). Requests for the same sandbox share one POST per second; a refusal is
 * remembered for a few seconds so waiting requests can fail fast. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "proxy/internal.h"

#define WAKE_REPOST_MS  1000
#define WAKE_FORGET_MS  5000
#define WAKE_TIMEOUT_MS 5000

struct wake_call {
	struct proxy *px;
	char id[HUTCH_ID_LEN + 1];
};

static void wake_answered(int err, struct http_client_response *resp, void *data)
{
	struct wake_call *c = data;
	struct proxy_wake *w = err == -ECANCELED ? NULL : proxy_map_get(&c->px->wakes, c->id);
	if (w) {
		w->in_flight = false;
		/* 409: already running or resuming, which is what we want */
		if (err) {
			w->failed_status = 503;
			snprintf(w->failed_msg, sizeof(w->failed_msg),
			         "could not reach the api to wake sandbox %s: %s", c->id,
			         strerror(-err));
		} else if (resp->status / 100 != 2 && resp->status != 409) {
			w->failed_status = resp->status;
			snprintf(w->failed_msg, sizeof(w->failed_msg),
			         "the api refused to wake sandbox %s (status %d)", c->id,
			         resp->status);
		}
	}
	free(c);
}

void proxy_wake_post(struct proxy *px, const char *id)
{
	struct proxy_wake *w = proxy_map_get(&px->wakes, id);
	uint64_t now = uv_now(px->loop);
	if (w && (w->in_flight || now - w->posted_ms < WAKE_REPOST_MS))
		return;
	if (!w) {
		w = xcalloc(1, sizeof(*w));
		proxy_map_put(&px->wakes, id, w);
	}
	w->posted_ms = now;
	w->failed_status = 0;
	if (!px->cfg.api_url[0]) {
		w->failed_status = 503;
		snprintf(w->failed_msg, sizeof(w->failed_msg),
		         "sandbox %s is suspended and no api is configured to wake it", id);
		return;
	}
	struct wake_call *c = xcalloc(1, sizeof(*c));
	c->px = px;
	snprintf(c->id, sizeof(c->id), "%s", id);
	char *path = xasprintf("/internal/v1/sandboxes/%s/wake", id);
	char *hdr = xasprintf("Authorization: Bearer %s\r\n", px->cfg.node_token);
	if (http_client_request(px->client, px->cfg.api_url, "POST", path, hdr, NULL, 0,
	                        WAKE_TIMEOUT_MS, 64 * 1024, wake_answered, c) == 0) {
		w->in_flight = true;
		px->stats.wakes_posted++;
	} else {
		free(c);
		w->failed_status = 503;
		snprintf(w->failed_msg, sizeof(w->failed_msg), "bad api url '%s'", px->cfg.api_url);
	}
	free(path);
	free(hdr);
}

const struct proxy_wake *proxy_wake_failure(struct proxy *px, const char *id)
{
	struct proxy_wake *w = proxy_map_get(&px->wakes, id);
	/* only the answer to a recent attempt counts; an old refusal is retried */
	if (!w || !w->failed_status || uv_now(px->loop) - w->posted_ms >= WAKE_REPOST_MS)
		return NULL;
	return w;
}

void proxy_wake_sweep(struct proxy *px)
{
	size_t pos = 0;
	struct proxy_map_slot *s;
	uint64_t now = uv_now(px->loop);
	while ((s = proxy_map_next(&px->wakes, &pos))) {
		struct proxy_wake *w = s->value;
		if (!w->in_flight && now - w->posted_ms >= WAKE_FORGET_MS)
			free(proxy_map_remove(&px->wakes, s->key));
	}
}

void proxy_wake_release(struct proxy *px)
{
	proxy_map_release(&px->wakes, free);
}
