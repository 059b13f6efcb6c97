/* Traffic reporting: the sandbox ids that saw proxied traffic are collected in a set and posted
 * to the api ({"sandbox_ids":[...]} on /internal/v1/activity) once per interval, which resets
 * their idle timers. A batch the api does not take is dropped: requests never wait for it. */
#include <errno.h>
#include <stdlib.h>

#include "proxy/internal.h"

#define ACTIVITY_TIMEOUT_MS 2000

static void activity_posted(int err, struct http_client_response *resp, void *data)
{
	struct proxy *px = data;
	px->activity_in_flight = false;
	if (err == -ECANCELED)
		return; /* the proxy is shutting down */
	if (px->closing) /* the last batch is delivered: no need to wait any longer */
		proxy_close_soon(px);
	if (err || resp->status / 100 != 2)
		px->stats.activity_dropped++;
}

/* Serializes the pending ids into body and empties the set. */
static size_t activity_take(struct proxy *px, struct buf *body)
{
	size_t pos = 0, n = 0;
	struct proxy_map_slot *s;
	buf_adds(body, "{\"sandbox_ids\":[");
	while ((s = proxy_map_next(&px->activity, &pos))) {
		/* ids come from the store and are lowercase alphanumerics: no escaping needed */
		buf_printf(body, "%s\"%s\"", n ? "," : "", s->key);
		n++;
	}
	buf_adds(body, "]}");
	proxy_map_release(&px->activity, NULL);
	return n;
}

static void activity_flush(struct proxy *px)
{
	struct buf body = BUF_INIT, hdr = BUF_INIT;
	if (px->activity.n == 0 || px->activity_in_flight)
		goto out;
	if (!px->cfg.api_url[0]) {
		proxy_map_release(&px->activity, NULL);
		goto out;
	}
	activity_take(px, &body);
	buf_printf(&hdr, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
		   px->cfg.node_token);
	if (http_client_request(px->client, px->cfg.api_url, "POST", "/internal/v1/activity",
				hdr.data, body.data, body.len, ACTIVITY_TIMEOUT_MS, 64 * 1024,
				activity_posted, px) == 0) {
		px->activity_in_flight = true;
		px->stats.activity_posts++;
	} else {
		px->stats.activity_dropped++;
	}
out:
	buf_release(&body);
	buf_release(&hdr);
}

static void activity_tick(uv_timer_t *t)
{
	struct proxy *px = t->data;
	activity_flush(px);
	proxy_wake_sweep(px);
}

void proxy_activity_init(struct proxy *px)
{
	uv_timer_init(px->loop, &px->activity_timer);
	px->activity_timer.data = px;
	uv_timer_start(&px->activity_timer, activity_tick, px->cfg.activity_interval_ms,
		       px->cfg.activity_interval_ms);
	uv_unref((uv_handle_t *)&px->activity_timer);
}

void proxy_activity_mark(struct proxy *px, const char *id)
{
	if (px->closing || proxy_map_get(&px->activity, id))
		return;
	if (px->activity.n >= px->cfg.activity_max_ids) {
		px->stats.activity_dropped++;
		return;
	}
	proxy_map_put(&px->activity, id, (void *)1);
}

void proxy_activity_close(struct proxy *px)
{
	uv_timer_stop(&px->activity_timer);
	activity_flush(px);
	proxy_map_release(&px->activity, NULL);
	uv_close((uv_handle_t *)&px->activity_timer, NULL);
}
