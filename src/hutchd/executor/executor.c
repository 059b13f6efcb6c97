/* The executor role: makes this host's sandboxes match the desired state the api assigns to it.
 * It long-polls /internal/v1/executors/{node}/assignments, runs runtime operations (create,
 * freeze, thaw, destroy) on libuv's thread pool with at most one operation per sandbox at a
 * time, watches each sandbox's PID 1 through its pidfd, and reports observed state back one
 * report at a time so reports never overtake each other. On start it re-adopts the sandboxes
 * whose runtime state survived and destroys what is no longer wanted. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../config.h"
#include "base/cleanup.h"
#include "base/sv.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/client.h"
#include "executor.h"
#include "runtime/checkpoint.h"
#include "runtime/runtime.h"

#define POLL_WAIT_MS 25000

static void poll_assignments(struct ex *ex);
static void net_orphans(struct ex *ex);

/* ---- reports ---- */

/* Results (a snapshot's, a network verdict) must reach the api even when a newer report for
 * the same sandbox replaces the one that carried them. */
static void keep_results(json_t *newer, json_t *older)
{
	static const char *const keys[] = {"snapshot", "network_result"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (!json_object_get(newer, keys[i]) && json_object_get(older, keys[i]))
			json_object_set(newer, keys[i], json_object_get(older, keys[i]));
}

/* A batch the api did not take goes back in the queue under anything newer for the same
 * sandbox (a newer status wins; results are kept). */
static void requeue(struct ex *ex, json_t *batch)
{
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(batch, "sandboxes"), i, item)
	{
		const char *id = json_string_value(json_object_get(item, "id"));
		json_t *newer = id ? json_object_get(ex->pending_reports, id) : NULL;
		if (newer)
			keep_results(newer, item);
		else if (id)
			json_object_set(ex->pending_reports, id, item);
	}
	json_array_extend(ex->snapshots_deleted, json_object_get(batch, "snapshots_deleted"));
}

static void report_retry_fire(uv_timer_t *t)
{
	ex_send_reports(t->data);
}

static void report_done(int err, struct http_client_response *resp, void *data)
{
	struct ex *ex = data;
	ex->report_in_flight = false;
	json_t *batch = ex->report_sent;
	ex->report_sent = NULL;
	if (ex->stopping) {
		json_decref(batch);
		return;
	}
	if (err || resp->status >= 300) {
		ex->report_backoff_ms = ex->report_backoff_ms ? ex->report_backoff_ms * 2 : 250;
		if (ex->report_backoff_ms > 5000)
			ex->report_backoff_ms = 5000;
		log_warn("report to the api failed (%s): again in %llu ms",
		         err ? strerror(-err) : "bad status",
		         (unsigned long long)ex->report_backoff_ms);
		requeue(ex, batch);
		json_decref(batch);
		uv_timer_start(&ex->report_retry, report_retry_fire, ex->report_backoff_ms, 0);
		return;
	}
	json_decref(batch);
	ex->report_backoff_ms = 0;
	ex_send_reports(ex);
}

void ex_send_reports(struct ex *ex)
{
	if (ex->stopping || !ex->client || ex->report_in_flight ||
	    uv_is_active((uv_handle_t *)&ex->report_retry) ||
	    (json_object_size(ex->pending_reports) == 0 &&
	     json_array_size(ex->snapshots_deleted) == 0))
		return;
	json_t *arr = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(ex->pending_reports, k, v) json_array_append(arr, v);
	json_object_clear(ex->pending_reports);
	json_t *body = json_object();
	json_object_set_new(body, "sandboxes", arr);
	json_object_set_new(body, "snapshots_deleted", ex->snapshots_deleted);
	ex->snapshots_deleted = json_array();
	char *s = json_dumps(body, JSON_COMPACT);
	_cleanup_free_ char *path = xasprintf("/internal/v1/executors/%s/report", ex->cfg->node_id);
	ex->report_in_flight = true;
	ex->report_sent = body;
	if (http_client_request(ex->client, ex->cfg->api_url, "POST", path, ex->auth_header, s,
	                        strlen(s), 10000, 0, report_done, ex) < 0) {
		ex->report_in_flight = false;
		ex->report_sent = NULL;
		requeue(ex, body);
		json_decref(body);
		uv_timer_start(&ex->report_retry, report_retry_fire, 1000, 0);
	}
	free(s);
}

/* Queues a report for sb (a newer one for the same sandbox replaces an unsent one). */
void ex_report(struct ex_sandbox *sb, const char *status, const char *outcome, const char *error,
               bool destroyed)
{
	struct ex *ex = sb->ex;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(sb->id));
	if (status)
		json_object_set_new(o, "status", json_string(status));
	if (outcome)
		json_object_set_new(o, "outcome", json_string(outcome));
	if (error)
		json_object_set_new(o, "error", json_string(error));
	if (destroyed)
		json_object_set_new(o, "destroyed", json_true());
	if (sb->rt && status && strcmp(status, "running") == 0) {
		json_object_set_new(o, "agent_socket", json_string(sb->rt->agent_socket));
		if (sb->ip[0])
			json_object_set_new(o, "ip", json_string(sb->ip));
	}
	/* snapshot and network results waiting in an unsent report must not be lost */
	json_t *prev = json_object_get(ex->pending_reports, sb->id);
	if (prev)
		keep_results(o, prev);
	json_object_set_new(ex->pending_reports, sb->id, o);
	snprintf(sb->reported, sizeof(sb->reported), "%s", destroyed ? "destroyed" : status);
	ex_send_reports(ex);
}

/* The unsent report of sb, made if needed (carrying "running" and the address if it runs). */
static json_t *pending_report(struct ex_sandbox *sb)
{
	json_t *o = json_object_get(sb->ex->pending_reports, sb->id);
	if (o)
		return o;
	o = json_object();
	json_object_set_new(o, "id", json_string(sb->id));
	if (sb->state == S_RUNNING && sb->rt) {
		json_object_set_new(o, "status", json_string("running"));
		json_object_set_new(o, "agent_socket", json_string(sb->rt->agent_socket));
		if (sb->ip[0])
			json_object_set_new(o, "ip", json_string(sb->ip));
	}
	json_object_set_new(sb->ex->pending_reports, sb->id, o);
	return o;
}

void ex_report_snapshot(struct ex_sandbox *sb, json_t *snap)
{
	json_object_set_new(pending_report(sb), "snapshot", snap);
	ex_send_reports(sb->ex);
}

void ex_report_network(struct ex_sandbox *sb, json_t *result)
{
	json_object_set_new(pending_report(sb), "network_result", result);
	ex_send_reports(sb->ex);
}

char *ex_wanted_policy(struct ex_sandbox *sb, bool *ret_pending)
{
	json_t *want = sb->want;
	bool pending = json_is_true(json_object_get(want, "network_pending_set"));
	json_t *pol = json_object_get(want, pending ? "network_pending" : "network");
	*ret_pending = pending;
	return pol && !json_is_null(pol) ? json_dumps(pol, JSON_COMPACT | JSON_SORT_KEYS)
	                                 : xstrdup("null");
}

/* ---- sandbox bookkeeping ---- */

static struct ex_sandbox *sb_find(struct ex *ex, const char *id)
{
	for (struct ex_sandbox *s = ex->sandboxes; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static struct ex_sandbox *sb_get(struct ex *ex, const char *id)
{
	struct ex_sandbox *sb = sb_find(ex, id);
	if (sb)
		return sb;
	sb = xcalloc(1, sizeof(*sb));
	sb->ex = ex;
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	sb->next = ex->sandboxes;
	ex->sandboxes = sb;
	return sb;
}

void ex_sb_remove(struct ex_sandbox *sb)
{
	struct ex *ex = sb->ex;
	for (struct ex_sandbox **pp = &ex->sandboxes; *pp; pp = &(*pp)->next) {
		if (*pp == sb) {
			*pp = sb->next;
			break;
		}
	}
	json_decref(sb->want);
	rt_sandbox_free(sb->rt);
	free(sb->net_applied);
	free(sb);
}

const char *ex_want_str(struct ex_sandbox *sb, const char *key)
{
	return sb->want ? json_string_value(json_object_get(sb->want, key)) : NULL;
}

/* ---- PID 1 watching ---- */

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

void ex_unwatch(struct ex_sandbox *sb)
{
	if (sb->poll) {
		uv_poll_stop(sb->poll);
		uv_close((uv_handle_t *)sb->poll, poll_closed);
		sb->poll = NULL;
	}
}

/* The last lines of the agent's log (it explains most deaths), for logs and error_details. */
static void agent_log_tail(struct ex_sandbox *sb, char *ret_last, size_t size)
{
	struct buf b = BUF_INIT;
	ret_last[0] = '\0';
	if (!sb->rt || read_file(sb->rt->agent_log, 1 << 20, &b) < 0 || b.len == 0) {
		buf_release(&b);
		return;
	}
	size_t start = b.len > 2048 ? b.len - 2048 : 0;
	log_warn("sandbox %s: agent log tail:\n%s", sb->id, b.data + start);
	struct sv all = sv_trim(sv_make(b.data, b.len)), head, last;
	sv_rsplit(all, '\n', &head, &last);
	if (last.len == 0)
		last = all;
	snprintf(ret_last, size, "%.*s", SV_FMT(last));
	buf_release(&b);
}

static void on_pid1_exit(uv_poll_t *p, int status, int events)
{
	struct ex_sandbox *sb = p->data;
	int ws = 0;
	if (sb->rt && rt_sandbox_reap(sb->rt, &ws) == 0)
		return; /* spurious wake-up: still running */
	ex_unwatch(sb);
	enum rt_exit_reason reason = rt_sandbox_exit_reason(&sb->ex->rt, sb->id);
	log_info("sandbox %s: PID 1 exited (%s)", sb->id, ex_outcome_for(reason));
	sb->state = S_DEAD;
	const char *desired = ex_want_str(sb, "desired");
	if (!desired || strcmp(desired, "terminated") != 0) {
		char last[512], msg[768];
		agent_log_tail(sb, last, sizeof(last));
		snprintf(msg, sizeof(msg), "%s%s%s (wait status %d)",
		         reason == RT_EXIT_OOM ? "the sandbox ran out of memory"
		                               : "the sandbox agent (PID 1) exited",
		         last[0] ? ": " : "", last, ws);
		ex_report(sb, "terminated", ex_outcome_for(reason), msg, false);
	}
	ex_kick(sb);
}

void ex_watch(struct ex_sandbox *sb)
{
	if (sb->ex->stopping || sb->poll || !sb->rt || sb->rt->pidfd < 0)
		return;
	sb->poll = xcalloc(1, sizeof(*sb->poll));
	if (uv_poll_init(sb->ex->loop, sb->poll, sb->rt->pidfd) < 0) {
		free(sb->poll);
		sb->poll = NULL;
		return;
	}
	sb->poll->data = sb;
	uv_poll_start(sb->poll, UV_READABLE, on_pid1_exit);
}

/* ---- reconciliation ---- */

static void kick_terminated(struct ex_sandbox *sb)
{
	if (sb->state != S_NONE) {
		ex_start_op(sb, OP_DESTROY);
		return;
	}
	if (!sb->reported_destroyed) {
		log_debug("sandbox %s: nothing here; reporting it destroyed", sb->id);
		ex_report(sb, NULL, NULL, NULL, true);
		sb->reported_destroyed = true;
	}
}

/* A snapshot the api asked for and this executor has not taken yet: takes it. */
static bool kick_snapshot(struct ex_sandbox *sb)
{
	json_t *op = json_object_get(sb->want, "snapshot_op");
	const char *id = json_string_value(json_object_get(op, "id"));
	if (!id || strcmp(id, sb->snap_done) == 0)
		return false;
	if (sb->state != S_RUNNING && sb->state != S_ADOPTED) {
		/* not running any more: the snapshot cannot be taken */
		json_t *res = json_object();
		json_object_set_new(res, "id", json_string(id));
		json_object_set_new(res, "status", json_string("failed"));
		json_object_set_new(res, "error", json_string("the sandbox is not running"));
		snprintf(sb->snap_done, sizeof(sb->snap_done), "%s", id);
		ex_report_snapshot(sb, res);
		return false;
	}
	ex_start_op(sb, OP_SNAPSHOT);
	return true;
}

/* Attaches a running sandbox that has no network (re-adopted), or applies a changed policy. */
static bool kick_network(struct ex_sandbox *sb)
{
	if (!sb->ex->net_ok || !sb->rt || (sb->state != S_RUNNING && sb->state != S_FROZEN))
		return false;
	bool pending;
	char *want = ex_wanted_policy(sb, &pending);
	bool differs = !sb->net_applied || strcmp(want, sb->net_applied) != 0;
	free(want);
	if (!differs && pending) {
		/* already in force (e.g. applied before a restart): confirm it */
		json_t *res = json_object();
		json_object_set_new(res, "ok", json_true());
		ex_report_network(sb, res);
		return false;
	}
	if (!differs)
		return false;
	ex_start_op(sb, OP_NETWORK);
	return true;
}

/* A sandbox frozen in memory long enough, or whose suspend asked for it, moves to disk (when
 * CRIU is there). */
static bool suspend_to_disk_due(struct ex_sandbox *sb)
{
	int64_t after = sb->ex->cfg->suspend_to_disk_secs;
	if (!sb->ex->criu || !sb->frozen_at_ms)
		return false;
	if (json_is_true(json_object_get(sb->want, "suspend_to_disk")))
		return true;
	return after >= 0 && time_mono_ms() - sb->frozen_at_ms >= (uint64_t)after * 1000;
}

/* Decides the next operation for sb from its desired and actual state. */
void ex_kick(struct ex_sandbox *sb)
{
	if (sb->busy || sb->ex->stopping || !sb->ex->synced)
		return;
	const char *desired = ex_want_str(sb, "desired");
	if (!sb->wanted || !desired || strcmp(desired, "terminated") == 0) {
		kick_terminated(sb);
		if (!sb->wanted && sb->state == S_NONE && !sb->busy)
			ex_sb_remove(sb);
		return;
	}
	if (sb->state == S_DEAD) {
		ex_start_op(sb, OP_DESTROY); /* the api was told "terminated"; clean up */
		return;
	}
	if (sb->retry_at_ms && time_mono_ms() < sb->retry_at_ms)
		return; /* the last operation failed: on_tick comes back */
	bool run = strcmp(desired, "running") == 0;
	if (sb->state == S_NONE) {
		if (run && strcmp(ex_want_str(sb, "status") ?: "", "pending") == 0)
			ex_start_op(sb, OP_CREATE);
		else if (strcmp(sb->reported, "terminated") != 0)
			ex_report(sb, "terminated", "Failure(ExecutorRemoved)",
			          "the sandbox no longer exists on its executor", false);
		return;
	}
	if (kick_snapshot(sb) || kick_network(sb))
		return;
	if (run && (sb->state == S_FROZEN || sb->state == S_ADOPTED))
		ex_start_op(sb, OP_THAW);
	else if (run && sb->state == S_CHECKPOINTED)
		ex_start_op(sb, OP_RESTORE);
	else if (!run && (sb->state == S_RUNNING || sb->state == S_ADOPTED))
		ex_start_op(sb, OP_FREEZE);
	else if (!run && sb->state == S_FROZEN && suspend_to_disk_due(sb))
		ex_start_op(sb, OP_CHECKPOINT);
	else if (run && strcmp(ex_want_str(sb, "status") ?: "", "running") != 0 &&
	         strcmp(sb->reported, "running") != 0)
		ex_report(sb, "running", NULL, NULL, false);
	else if (!run && strcmp(ex_want_str(sb, "status") ?: "", "suspended") != 0 &&
	         strcmp(sb->reported, "suspended") != 0)
		ex_report(sb, "suspended", NULL, NULL, false);
}

static void apply_assignments(struct ex *ex, json_t *list, json_t *deleted)
{
	for (struct ex_sandbox *s = ex->sandboxes; s; s = s->next)
		s->wanted = false;
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a)
	{
		const char *id = json_string_value(json_object_get(a, "id"));
		if (!id || !id_is_valid(id, strlen(id)))
			continue;
		struct ex_sandbox *sb = sb_get(ex, id);
		sb->wanted = true;
		json_decref(sb->want);
		sb->want = json_incref(a);
		/* the api forgets what we said once it acted on it */
		if (strcmp(json_string_value(json_object_get(a, "status")) ?: "", sb->reported) ==
		    0)
			;
		else if (strcmp(sb->reported, "destroyed") != 0)
			sb->reported[0] = '\0';
	}
	ex->synced = true;
	struct ex_sandbox *s = ex->sandboxes, *next;
	size_t j;
	json_t *del;
	json_array_foreach(deleted, j, del)
	{
		if (!json_is_string(del))
			continue;
		/* the api lists it again until this executor reports it gone */
		if (ex_snapref_delete(ex, json_string_value(del)))
			json_array_append(ex->snapshots_deleted, del);
	}
	if (json_array_size(deleted))
		ex_send_reports(ex);
	net_orphans(ex);
	for (; s; s = next) {
		next = s->next;
		ex_kick(s);
	}
}

/* ---- the long-poll ---- */

static void retry_fire(uv_timer_t *t)
{
	poll_assignments(t->data);
}

static void assignments_done(int err, struct http_client_response *resp, void *data)
{
	struct ex *ex = data;
	if (ex->stopping)
		return;
	json_t *o = NULL;
	if (!err && resp->status == 200)
		o = json_loadb(resp->body.data ?: "", resp->body.len, 0, NULL);
	json_t *list = json_object_get(o, "sandboxes");
	if (!json_is_array(list)) {
		unsigned delay = 250u << (ex->poll_failures < 4 ? ex->poll_failures : 4);
		if (ex->poll_failures++ == 2)
			log_warn("cannot reach the api at %s (%s); retrying", ex->cfg->api_url,
			         err ? strerror(-err) : "bad answer");
		json_decref(o);
		uv_timer_start(&ex->retry, retry_fire, delay, 0);
		return;
	}
	if (ex->poll_failures > 2)
		log_info("api reachable again");
	ex->poll_failures = 0;
	ex->version = (uint64_t)json_integer_value(json_object_get(o, "version"));
	apply_assignments(ex, list, json_object_get(o, "deleted_snapshots"));
	json_decref(o);
	poll_assignments(ex);
}

static void poll_assignments(struct ex *ex)
{
	if (ex->stopping)
		return;
	struct buf criu = BUF_INIT;
	const char *cap = ex->criu ? "ok" : ex->criu_reason;
	url_encode(cap, strlen(cap), &criu);
	/* where other hosts' proxies reach this host's proxy; "local": nowhere but here */
	const char *address = ex->cfg->proxy_advertise[0] ? ex->cfg->proxy_advertise : "local";
	_cleanup_free_ char *path = xasprintf(
	        "/internal/v1/executors/%s/assignments?since=%llu&wait_ms=%d&address=%s"
	        "&capacity=%lld&criu=%s",
	        ex->cfg->node_id, (unsigned long long)ex->version, ex->synced ? POLL_WAIT_MS : 0,
	        address, (long long)ex->cfg->executor_capacity, buf_cstr(&criu));
	buf_release(&criu);
	if (http_client_request(ex->client, ex->cfg->api_url, "GET", path, ex->auth_header, NULL, 0,
	                        POLL_WAIT_MS + 10000, 64 << 20, assignments_done, ex) < 0) {
		log_error("bad --api-url '%s'", ex->cfg->api_url);
		uv_timer_start(&ex->retry, retry_fire, 5000, 0);
	}
}

/* ---- disk pool ---- */

struct refill {
	uv_work_t w;
	struct ex *ex;
	int rc;
	struct hutch_error err;
};

static void refill_run(uv_work_t *w)
{
	struct refill *r = w->data;
	r->rc = rt_disk_pool_refill(&r->ex->rt, &r->err);
}

static void refill_after(uv_work_t *w, int status)
{
	struct refill *r = w->data;
	r->ex->refill_busy = false;
	if (r->rc < 0)
		log_warn("refilling the disk pool: %s", r->err.msg);
	free(r);
}

void ex_refill_pool(struct ex *ex)
{
	if (ex->refill_busy || ex->stopping || ex->rt.disk_pool_disabled)
		return;
	struct refill *r = xcalloc(1, sizeof(*r));
	r->ex = ex;
	r->w.data = r;
	ex->refill_busy = true;
	uv_queue_work(ex->loop, &r->w, refill_run, refill_after);
}

/* ---- start and stop ---- */

static int adopt_one(const char *id, void *data)
{
	struct ex *ex = data;
	struct rt_sandbox *rt = NULL;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct ex_sandbox *sb = sb_get(ex, id);
	int rc = rt_sandbox_adopt(&ex->rt, id, &rt, &err);
	if (rc == 0) {
		sb->rt = rt;
		sb->state = S_ADOPTED;
		ex_watch(sb);
		log_info("re-adopted sandbox %s", id);
	} else if (rt_sandbox_checkpointed(&ex->rt, id, NULL)) {
		sb->state = S_CHECKPOINTED;
		log_info("re-adopted sandbox %s (suspended to disk)", id);
	} else {
		sb->state = S_DEAD; /* half-made or ended while we were away: clean up */
		log_info("sandbox %s: found dead or half-made (%s); it will be removed", id,
		         err.msg);
	}
	return 0;
}

/* Re-evaluates sandboxes once a second (the durable-suspend delay, retries after failures). */
static void on_tick(uv_timer_t *t)
{
	struct ex *ex = t->data;
	for (struct ex_sandbox *sb = ex->sandboxes, *next; sb; sb = next) {
		next = sb->next;
		if (sb->state == S_FROZEN || (sb->retry_at_ms && time_mono_ms() >= sb->retry_at_ms))
			ex_kick(sb);
	}
}

static struct net_config ex_net_config(const struct hutchd_config *cfg, const char *state_dir)
{
	return (struct net_config){.state_dir = state_dir,
	                           .pool = cfg->network_cidr,
	                           .bridge = cfg->network_bridge,
	                           .table = cfg->network_table,
	                           .ifname_prefix = cfg->network_veth_prefix,
	                           .dns_upstreams = (const char *const *)cfg->dns_list};
}

static void net_setup(struct ex *ex)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	ex->net_state_dir = xasprintf("%s/net", ex->cfg->data_dir);
	ex->net = ex_net_config(ex->cfg, ex->net_state_dir);
	if (net_init(&ex->net, &err) < 0) {
		log_warn("sandbox networking unavailable, sandboxes get loopback only: %s",
		         err.msg);
		return;
	}
	if (net_dns_start(&ex->net, ex->loop, &ex->dns, &err) < 0) {
		log_warn("sandbox networking unavailable (DNS forwarder): %s", err.msg);
		return;
	}
	net_resolver_addr(&ex->net, ex->resolver);
	ex->net_ok = true;
	log_info("sandbox network %s, resolver %s", ex->cfg->network_cidr, ex->resolver);
}

/* After the first assignment list: network state of sandboxes that no longer exist goes. */
static void net_orphans(struct ex *ex)
{
	static bool done;
	if (done || !ex->net_ok)
		return;
	done = true;
	size_t n = 0;
	for (struct ex_sandbox *s = ex->sandboxes; s; s = s->next)
		n++;
	const char **ids = xcalloc(n + 1, sizeof(char *));
	n = 0;
	for (struct ex_sandbox *s = ex->sandboxes; s; s = s->next)
		if (s->state != S_NONE || s->busy)
			ids[n++] = s->id;
	struct hutch_error err = HUTCH_ERROR_INIT;
	int r = net_cleanup_orphans(&ex->net, ids, n, &err);
	if (r > 0)
		log_info("removed the network state of %d sandboxes that are gone", r);
	else if (r < 0)
		log_warn("network orphans: %s", err.msg);
	free(ids);
}

static void detect_criu(struct ex *ex)
{
	struct rt_criu_version v;
	struct hutch_error err = HUTCH_ERROR_INIT;
	ex->criu = rt_criu_detect(&ex->rt, &v, &err) == 0;
	if (ex->criu) {
		log_info("CRIU %s at %s: memory snapshots and durable suspend available", v.text,
		         v.path);
	} else {
		snprintf(ex->criu_reason, sizeof(ex->criu_reason), "%s", err.msg);
		log_info("memory snapshots unavailable: %s", err.msg);
	}
}

static void on_signal(uv_signal_t *s, int sig)
{
	struct ex *ex = s->data;
	log_info("signal %d: stopping (sandboxes keep running)", sig);
	ex->stopping = true;
	uv_signal_stop(&ex->sigterm);
	uv_signal_stop(&ex->sigint);
	uv_timer_stop(&ex->retry);
	uv_close((uv_handle_t *)&ex->retry, NULL);
	uv_timer_stop(&ex->tick);
	uv_close((uv_handle_t *)&ex->tick, NULL);
	uv_timer_stop(&ex->report_retry);
	uv_close((uv_handle_t *)&ex->report_retry, NULL);
	uv_close((uv_handle_t *)&ex->sigterm, NULL);
	uv_close((uv_handle_t *)&ex->sigint, NULL);
	for (struct ex_sandbox *sb = ex->sandboxes; sb; sb = sb->next)
		ex_unwatch(sb);
	net_dns_stop(ex->dns);
	ex->dns = NULL;
	http_client_free(ex->client);
	ex->client = NULL; /* operations still finishing in the pool report nothing */
}

static int collect_id(const char *id, void *data);

void hutchd_rt_config(struct hutchd_config *cfg, struct rt_config *rt, char **ret_state_dir)
{
	char *state_dir = xasprintf("%s/runtime", cfg->data_dir);
	*ret_state_dir = state_dir;
	*rt = (struct rt_config){
	        .state_dir = state_dir,
	        .run_dir = cfg->run_dir,
	        .agent_path = cfg->agent_path,
	        .id_base = (uid_t)cfg->id_base,
	        .id_count = 65536,
	        .cgroup_name = cfg->cgroup_name,
	        .default_pids_max = 4096,
	        .ready_timeout_ms = 10000,
	        .disk_pool_size = 4,
	        .disk_pool_mb = 10240,
	        .fault_step = getenv("HUTCH_FAULT_STEP"),
	};
}

int hutchd_cleanup(struct hutchd_config *cfg)
{
	struct rt_config rt;
	char *state_dir;
	struct hutch_error err = HUTCH_ERROR_INIT;
	hutchd_rt_config(cfg, &rt, &state_dir);
	int rc = 0;
	{
		/* sandboxes are found by their state, their run directory and their cgroup: one
		 * whose state is gone is still found (and ended) through the others */
		struct buf ids = BUF_INIT;
		rt_sandbox_list(&rt, collect_id, &ids, &err);
		struct sv rest = sv_make(buf_cstr(&ids), ids.len), id;
		while (rest.len) {
			sv_split(rest, '\n', &id, &rest);
			_cleanup_free_ char *s = sv_dup(id);
			if (rt_sandbox_destroy(&rt, s, &err) < 0) {
				log_error("destroying sandbox %s: %s", s, err.msg);
				rc = 1;
			}
		}
		buf_release(&ids);
		if (rt_disk_pool_drain(&rt, &err) < 0) {
			log_error("draining the disk pool: %s", err.msg);
			rc = 1;
		}
		_cleanup_free_ char *net_dir = xasprintf("%s/net", cfg->data_dir);
		struct net_config net = ex_net_config(cfg, net_dir);
		/* the sandboxes' veths and rules, then the table and bridge themselves */
		if (access(net_dir, F_OK) == 0 && net_host_remove(&net, &err) < 0) {
			log_error("removing the sandbox network: %s", err.msg);
			rc = 1;
		}
		if (rc == 0 && rt_host_release(&rt, &err) < 0) {
			log_error("%s", err.msg);
			rc = 1;
		}
	}
	free(state_dir);
	return rc;
}

static int collect_id(const char *id, void *data)
{
	buf_printf(data, "%s\n", id);
	return 0;
}

int executor_main(struct hutchd_config *cfg)
{
	struct ex ex = {.cfg = cfg};
	struct hutch_error err = HUTCH_ERROR_INIT;
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	/* creates must not queue behind destroys and disk-pool refills (mkfs): libuv's default of
	 * 4 threads is too few; most of these threads sleep in waits, not on the CPU */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	hutchd_rt_config(cfg, &ex.rt, &ex.state_dir);
	if (access(cfg->agent_path, X_OK) < 0) {
		log_error("the sandbox agent %s is missing or not executable (--agent-path)",
		          cfg->agent_path);
		return 3;
	}
	if (rt_init(&ex.rt, &err) < 0) {
		log_error("this host cannot run sandboxes: %s", err.msg);
		return 3;
	}
	uv_loop_init(&loop);
	ex.loop = &loop;
	ex.client = http_client_new(&loop);
	ex.auth_header = xasprintf("Authorization: Bearer %s\r\n", cfg->node_token);
	ex.pending_reports = json_object();
	ex.snapshots_deleted = json_array();
	uv_timer_init(&loop, &ex.retry);
	ex.retry.data = &ex;
	uv_timer_init(&loop, &ex.tick);
	uv_timer_init(&loop, &ex.report_retry);
	ex.report_retry.data = &ex;
	ex.tick.data = &ex;
	uv_timer_start(&ex.tick, on_tick, 1000, 1000);
	detect_criu(&ex);
	net_setup(&ex);
	_cleanup_free_ char *ckpt = xasprintf("%s/checkpoints", ex.state_dir);
	if (mkdir_p(ckpt, 0711) < 0)
		log_warn("cannot create %s: %s", ckpt, strerror(errno));
	uv_signal_init(&loop, &ex.sigterm);
	uv_signal_init(&loop, &ex.sigint);
	ex.sigterm.data = ex.sigint.data = &ex;
	uv_signal_start(&ex.sigterm, on_signal, SIGTERM);
	uv_signal_start(&ex.sigint, on_signal, SIGINT);
	if (rt_sandbox_list(&ex.rt, adopt_one, &ex, &err) < 0)
		log_warn("listing existing sandboxes: %s", err.msg);
	log_info("executor %s ready (api %s, %s)", cfg->node_id, cfg->api_url, ex.state_dir);
	ex_refill_pool(&ex);
	poll_assignments(&ex);
	uv_run(&loop, UV_RUN_DEFAULT);
	while (ex.sandboxes)
		ex_sb_remove(ex.sandboxes);
	json_decref(ex.pending_reports);
	json_decref(ex.report_sent);
	json_decref(ex.snapshots_deleted);
	uv_loop_close(&loop);
	free(ex.auth_header);
	free(ex.state_dir);
	free(ex.net_state_dir);
	return 0;
}
