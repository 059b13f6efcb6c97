/* Traffic reporting: the sandbox ids that saw proxied traffic are collected in a set and posted
 * to the api ({"sandbox_ids":[...]} on /internal/v1/activity, node token) once per interval,
 * which resets their idle timers. One batcher may serve several proxies running on other threads
 * (marks take a mutex); it posts from its own loop. A batch the api does not take is dropped:
 * requests never wait for it. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "proxy/internal.h"

#define ACTIVITY_TIMEOUT_MS 2000

struct proxy_activity {
	uv_loop_t *loop;
	uv_timer_t timer;
	uv_timer_t close_timer;
	struct http_client *client;
	pthread_mutex_t lock;
	struct proxy_map ids; /* sandbox id -> (void *)1, under lock */
	size_t max_ids;
	char *api_url, *node_token;
	int open_handles;
	bool in_flight;
	bool closing;
	uint64_t posts, dropped; /* under lock */
};

static void activity_close_cb(uv_timer_t *t);

static void activity_posted(int err, struct http_client_response *resp, void *data)
{
	struct proxy_activity *a = data;
	a->in_flight = false;
	if (err == -ECANCELED)
		return;
	if (err || resp->status / 100 != 2) {
		pthread_mutex_lock(&a->lock);
		a->dropped++;
		pthread_mutex_unlock(&a->lock);
	}
	if (a->closing) /* the last batch is delivered: no need to wait any longer */
		uv_timer_start(&a->close_timer, activity_close_cb, 0, 0);
}

/* Takes the pending ids as a JSON body and empties the set. Returns how many. */
static size_t activity_take(struct proxy_activity *a, struct buf *body)
{
	size_t pos = 0, n = 0;
	struct proxy_map_slot *s;
	pthread_mutex_lock(&a->lock);
	buf_adds(body, "{\"sandbox_ids\":[");
	while ((s = proxy_map_next(&a->ids, &pos))) {
		/* ids come from the store and are lowercase alphanumerics: no escaping needed */
		buf_printf(body, "%s\"%s\"", n ? "," : "", s->key);
		n++;
	}
	buf_adds(body, "]}");
	proxy_map_release(&a->ids, NULL);
	pthread_mutex_unlock(&a->lock);
	return n;
}

static void activity_flush(struct proxy_activity *a)
{
	struct buf body = BUF_INIT, hdr = BUF_INIT;
	if (a->in_flight || !a->client)
		return;
	if (activity_take(a, &body) == 0 || !a->api_url[0])
		goto out;
	buf_printf(&hdr, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n",
	           a->node_token);
	if (http_client_request(a->client, a->api_url, "POST", "/internal/v1/activity", hdr.data,
	                        body.data, body.len, ACTIVITY_TIMEOUT_MS, 64 * 1024,
	                        activity_posted, a) == 0) {
		a->in_flight = true;
		a->posts++;
	} else {
		a->dropped++;
	}
out:
	buf_release(&body);
	buf_release(&hdr);
}

static void activity_tick(uv_timer_t *t)
{
	activity_flush(t->data);
}

struct proxy_activity *proxy_activity_new(uv_loop_t *loop, const struct proxy_config *cfg)
{
	struct proxy_activity *a = xcalloc(1, sizeof(*a));
	uint64_t every = cfg->activity_interval_ms ? cfg->activity_interval_ms : 1000;
	a->loop = loop;
	a->client = http_client_new(loop);
	a->max_ids = cfg->activity_max_ids ? cfg->activity_max_ids : 10000;
	a->api_url = xstrdup(cfg->api_url ? cfg->api_url : "");
	a->node_token = xstrdup(cfg->node_token ? cfg->node_token : "");
	pthread_mutex_init(&a->lock, NULL);
	uv_timer_init(loop, &a->timer);
	uv_timer_init(loop, &a->close_timer);
	a->timer.data = a->close_timer.data = a;
	a->open_handles = 2;
	uv_timer_start(&a->timer, activity_tick, every, every);
	uv_unref((uv_handle_t *)&a->timer);
	return a;
}

void proxy_activity_add(struct proxy_activity *a, const char *id)
{
	pthread_mutex_lock(&a->lock);
	if (a->closing || proxy_map_get(&a->ids, id))
		;
	else if (a->ids.n >= a->max_ids)
		a->dropped++;
	else
		proxy_map_put(&a->ids, id, (void *)1);
	pthread_mutex_unlock(&a->lock);
}

void proxy_activity_counts(struct proxy_activity *a, uint64_t *ret_posts, uint64_t *ret_dropped)
{
	pthread_mutex_lock(&a->lock);
	*ret_posts = a->posts;
	*ret_dropped = a->dropped;
	pthread_mutex_unlock(&a->lock);
}

static void activity_handle_closed(uv_handle_t *h)
{
	struct proxy_activity *a = h->data;
	if (--a->open_handles > 0)
		return;
	proxy_map_release(&a->ids, NULL);
	pthread_mutex_destroy(&a->lock);
	free(a->api_url);
	free(a->node_token);
	free(a);
}

static void activity_close_cb(uv_timer_t *t)
{
	struct proxy_activity *a = t->data;
	if (!a->client)
		return;
	http_client_free(a->client);
	a->client = NULL;
	uv_close((uv_handle_t *)&a->timer, activity_handle_closed);
	uv_close((uv_handle_t *)&a->close_timer, activity_handle_closed);
}

void proxy_activity_close(struct proxy_activity *a)
{
	if (a->closing)
		return;
	uv_timer_stop(&a->timer);
	activity_flush(a);
	pthread_mutex_lock(&a->lock);
	a->closing = true;
	pthread_mutex_unlock(&a->lock);
	/* the client gets a second to deliver the last batch */
	uv_timer_start(&a->close_timer, activity_close_cb, a->in_flight ? 1000 : 0, 0);
}
