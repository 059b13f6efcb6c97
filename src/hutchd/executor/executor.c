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
#include "runtime/runtime.h"

#define POLL_WAIT_MS 25000

enum sb_state {
	S_NONE,    /* nothing on this host */
	S_ADOPTED, /* found at start; frozen or not is unknown until desired state says */
	S_RUNNING,
	S_FROZEN,
	S_DEAD, /* PID 1 exited; resources still to be removed */
};

enum sb_op { OP_CREATE, OP_FREEZE, OP_THAW, OP_DESTROY };

struct ex;

struct ex_sandbox {
	struct ex *ex;
	char id[32];
	enum sb_state state;
	bool busy;   /* a thread-pool operation is in flight */
	bool wanted; /* present in the latest assignment list */
	bool reported_destroyed;
	json_t *want;      /* latest assignment (owned) */
	char reported[16]; /* last status reported */
	struct rt_sandbox *rt;
	uv_poll_t *poll; /* on rt->pidfd */
	struct ex_sandbox *next;
};

struct ex_work {
	uv_work_t w;
	struct ex_sandbox *sb;
	enum sb_op op;
	struct rt_spec spec;
	char **argv;
	char *image, *hostname;
	struct rt_sandbox *result;
	uint64_t queued_ns, started_ns, done_ns;
	int rc;
	struct hutch_error err;
	enum rt_exit_reason reason;
};

struct ex {
	struct hutchd_config *cfg;
	struct rt_config rt;
	uv_loop_t *loop;
	struct http_client *client;
	char *auth_header;
	struct ex_sandbox *sandboxes;
	uint64_t version;
	bool synced; /* got at least one assignment list */
	bool stopping;
	unsigned poll_failures;
	uv_timer_t retry;
	uv_signal_t sigterm, sigint;
	json_t *pending_reports; /* object id -> report, waiting to be sent */
	bool report_in_flight;
	bool refill_busy;
	char *state_dir;
};

static void kick(struct ex_sandbox *sb);
static void poll_assignments(struct ex *ex);

/* ---- reports ---- */

static void send_reports(struct ex *ex);

static void report_done(int err, struct http_client_response *resp, void *data)
{
	struct ex *ex = data;
	ex->report_in_flight = false;
	if (err || resp->status >= 300)
		log_warn("report to api failed: %s", err ? strerror(-err) : "bad status");
	if (json_object_size(ex->pending_reports) && !ex->stopping)
		send_reports(ex);
}

static void send_reports(struct ex *ex)
{
	if (ex->report_in_flight || json_object_size(ex->pending_reports) == 0)
		return;
	json_t *arr = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(ex->pending_reports, k, v) json_array_append(arr, v);
	json_object_clear(ex->pending_reports);
	json_t *body = json_object();
	json_object_set_new(body, "sandboxes", arr);
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	_cleanup_free_ char *path = xasprintf("/internal/v1/executors/%s/report", ex->cfg->node_id);
	ex->report_in_flight = true;
	if (http_client_request(ex->client, ex->cfg->api_url, "POST", path, ex->auth_header, s,
	                        strlen(s), 10000, 0, report_done, ex) < 0)
		ex->report_in_flight = false;
	free(s);
}

/* Queues a report for sb (a newer one for the same sandbox replaces an unsent one). */
static void report(struct ex_sandbox *sb, const char *status, const char *outcome,
                   const char *error, bool destroyed)
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
	if (sb->rt && status && strcmp(status, "running") == 0)
		json_object_set_new(o, "agent_socket", json_string(sb->rt->agent_socket));
	json_object_set_new(ex->pending_reports, sb->id, o);
	snprintf(sb->reported, sizeof(sb->reported), "%s", destroyed ? "destroyed" : status);
	send_reports(ex);
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

static void sb_remove(struct ex_sandbox *sb)
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
	free(sb);
}

static const char *want_str(struct ex_sandbox *sb, const char *key)
{
	return sb->want ? json_string_value(json_object_get(sb->want, key)) : NULL;
}

/* ---- PID 1 watching ---- */

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

static void unwatch(struct ex_sandbox *sb)
{
	if (sb->poll) {
		uv_poll_stop(sb->poll);
		uv_close((uv_handle_t *)sb->poll, poll_closed);
		sb->poll = NULL;
	}
}

static const char *outcome_for(enum rt_exit_reason reason)
{
	switch (reason) {
	case RT_EXIT_OOM:
		return "Failure(OutOfMemory)";
	case RT_EXIT_AGENT_DIED:
		return "Failure(ContainerTerminated(ProcessCrash))";
	case RT_EXIT_KILLED:
		return "Failure(ContainerTerminated(Unknown))";
	default:
		return "Failure(Unknown)";
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
	unwatch(sb);
	enum rt_exit_reason reason = rt_sandbox_exit_reason(&sb->ex->rt, sb->id);
	log_info("sandbox %s: PID 1 exited (%s)", sb->id, outcome_for(reason));
	sb->state = S_DEAD;
	const char *desired = want_str(sb, "desired");
	if (!desired || strcmp(desired, "terminated") != 0) {
		char last[512], msg[768];
		agent_log_tail(sb, last, sizeof(last));
		snprintf(msg, sizeof(msg), "%s%s%s (wait status %d)",
			 reason == RT_EXIT_OOM ? "the sandbox ran out of memory"
					       : "the sandbox agent (PID 1) exited",
			 last[0] ? ": " : "", last, ws);
		report(sb, "terminated", outcome_for(reason), msg, false);
	}
	kick(sb);
}

static void watch(struct ex_sandbox *sb)
{
	if (sb->poll || !sb->rt || sb->rt->pidfd < 0)
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

/* ---- thread-pool operations ---- */

static char **json_argv(json_t *arr)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	char **argv = xcalloc(json_array_size(arr) + 1, sizeof(char *));
	for (size_t i = 0; i < json_array_size(arr); i++)
		argv[i] = xstrdup(json_string_value(json_array_get(arr, i)) ?: "");
	return argv;
}

static void work_run(uv_work_t *w)
{
	struct ex_work *wk = w->data;
	const struct rt_config *cfg = &wk->sb->ex->rt;
	wk->started_ns = time_mono_ns();
	switch (wk->op) {
	case OP_CREATE:
		wk->rc = rt_sandbox_create(cfg, &wk->spec, &wk->result, &wk->err);
		break;
	case OP_FREEZE:
	case OP_THAW:
		wk->rc = rt_sandbox_freeze(cfg, wk->sb->id, wk->op == OP_FREEZE, &wk->err);
		break;
	case OP_DESTROY:
		wk->reason = rt_sandbox_exit_reason(cfg, wk->sb->id);
		wk->rc = rt_sandbox_destroy(cfg, wk->sb->id, &wk->err);
		break;
	}
	wk->done_ns = time_mono_ns();
}

static void work_free(struct ex_work *wk)
{
	if (wk->argv)
		for (char **a = wk->argv; *a; a++)
			free(*a);
	free(wk->argv);
	free(wk->image);
	free(wk->hostname);
	free(wk);
}

static void refill_pool(struct ex *ex);

static void work_done_create(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	if (wk->rc < 0) {
		log_warn("sandbox %s: create failed: %s", sb->id, wk->err.msg);
		sb->state = S_NONE;
		report(sb, "terminated", "Failure(ContainerStartupFailed)", wk->err.msg, false);
		return;
	}
	sb->rt = wk->result;
	sb->state = S_RUNNING;
	watch(sb);
	log_info("sandbox %s running (agent %s): queued %.2f ms, runtime and agent %.2f ms", sb->id,
	         sb->rt->agent_socket, (double)(wk->started_ns - wk->queued_ns) / 1e6,
	         (double)(wk->done_ns - wk->started_ns) / 1e6);
	report(sb, "running", NULL, NULL, false);
	refill_pool(sb->ex);
}

static void work_after(uv_work_t *w, int status)
{
	struct ex_work *wk = w->data;
	struct ex_sandbox *sb = wk->sb;
	sb->busy = false;
	switch (wk->op) {
	case OP_CREATE:
		work_done_create(wk);
		break;
	case OP_FREEZE:
	case OP_THAW:
		if (wk->rc < 0) {
			log_warn("sandbox %s: %s failed: %s", sb->id,
			         wk->op == OP_FREEZE ? "freeze" : "thaw", wk->err.msg);
		} else {
			sb->state = wk->op == OP_FREEZE ? S_FROZEN : S_RUNNING;
			report(sb, wk->op == OP_FREEZE ? "suspended" : "running", NULL, NULL,
			       false);
		}
		break;
	case OP_DESTROY:
		if (wk->rc < 0)
			log_warn("sandbox %s: destroy failed: %s", sb->id, wk->err.msg);
		rt_sandbox_free(sb->rt);
		sb->rt = NULL;
		sb->state = S_NONE;
		report(sb, NULL, NULL, NULL, true);
		sb->reported_destroyed = true;
		log_info("sandbox %s destroyed", sb->id);
		break;
	}
	work_free(wk);
	if (!sb->wanted && sb->state == S_NONE && !sb->busy) {
		sb_remove(sb);
		return;
	}
	kick(sb);
}

static const char *const op_names[] = {"create", "freeze", "thaw", "destroy"};
static const char *const state_names[] = {"none", "adopted", "running", "frozen", "dead"};

static void start_op(struct ex_sandbox *sb, enum sb_op op)
{
	log_debug("sandbox %s: %s (state %s)", sb->id, op_names[op], state_names[sb->state]);
	struct ex_work *wk = xcalloc(1, sizeof(*wk));
	wk->sb = sb;
	wk->op = op;
	wk->w.data = wk;
	wk->queued_ns = time_mono_ns();
	if (op == OP_CREATE) {
		const char *name = want_str(sb, "name");
		json_t *w = sb->want;
		wk->image = want_str(sb, "image") ? xstrdup(want_str(sb, "image")) : NULL;
		wk->hostname = xstrdup(name ? name : sb->id);
		wk->argv = json_argv(json_object_get(w, "entrypoint"));
		wk->spec = (struct rt_spec){
		        .id = sb->id,
		        .hostname = wk->hostname,
		        .image = wk->image,
		        .cpus = json_number_value(json_object_get(w, "cpus")),
		        .memory_mb = (uint64_t)json_integer_value(json_object_get(w, "memory_mb")),
		        .disk_mb = (uint64_t)json_integer_value(json_object_get(w, "disk_mb")),
		        .entrypoint = wk->argv,
		};
	}
	if (op == OP_DESTROY)
		unwatch(sb);
	sb->busy = true;
	uv_queue_work(sb->ex->loop, &wk->w, work_run, work_after);
}

/* ---- reconciliation ---- */

static void kick_terminated(struct ex_sandbox *sb)
{
	if (sb->state != S_NONE) {
		start_op(sb, OP_DESTROY);
		return;
	}
	if (!sb->reported_destroyed) {
		log_debug("sandbox %s: nothing here; reporting it destroyed", sb->id);
		report(sb, NULL, NULL, NULL, true);
		sb->reported_destroyed = true;
	}
}

/* Decides the next operation for sb from its desired and actual state. */
static void kick(struct ex_sandbox *sb)
{
	if (sb->busy || sb->ex->stopping || !sb->ex->synced)
		return;
	const char *desired = want_str(sb, "desired");
	if (!sb->wanted || !desired || strcmp(desired, "terminated") == 0) {
		kick_terminated(sb);
		if (!sb->wanted && sb->state == S_NONE && !sb->busy)
			sb_remove(sb);
		return;
	}
	if (sb->state == S_DEAD) {
		start_op(sb, OP_DESTROY); /* the api was told "terminated"; clean up */
		return;
	}
	bool run = strcmp(desired, "running") == 0;
	if (sb->state == S_NONE) {
		if (run && strcmp(want_str(sb, "status") ?: "", "pending") == 0)
			start_op(sb, OP_CREATE);
		else if (strcmp(sb->reported, "terminated") != 0)
			report(sb, "terminated", "Failure(ExecutorRemoved)",
			       "the sandbox no longer exists on its executor", false);
		return;
	}
	if (run && (sb->state == S_FROZEN || sb->state == S_ADOPTED))
		start_op(sb, OP_THAW);
	else if (!run && (sb->state == S_RUNNING || sb->state == S_ADOPTED))
		start_op(sb, OP_FREEZE);
	else if (run && strcmp(want_str(sb, "status") ?: "", "running") != 0 &&
	         strcmp(sb->reported, "running") != 0)
		report(sb, "running", NULL, NULL, false);
	else if (!run && strcmp(want_str(sb, "status") ?: "", "suspended") != 0 &&
	         strcmp(sb->reported, "suspended") != 0)
		report(sb, "suspended", NULL, NULL, false);
}

static void apply_assignments(struct ex *ex, json_t *list)
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
	for (; s; s = next) {
		next = s->next;
		kick(s);
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
	apply_assignments(ex, list);
	json_decref(o);
	poll_assignments(ex);
}

static void poll_assignments(struct ex *ex)
{
	if (ex->stopping)
		return;
	_cleanup_free_ char *path = xasprintf(
	        "/internal/v1/executors/%s/assignments?since=%llu&wait_ms=%d&address=local"
	        "&capacity=%lld",
	        ex->cfg->node_id, (unsigned long long)ex->version, ex->synced ? POLL_WAIT_MS : 0,
	        (long long)ex->cfg->executor_capacity);
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

static void refill_pool(struct ex *ex)
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
		watch(sb);
		log_info("re-adopted sandbox %s", id);
	} else {
		sb->state = S_DEAD; /* half-made or ended while we were away: clean up */
		log_info("sandbox %s: found dead or half-made (%s); it will be removed", id,
		         err.msg);
	}
	return 0;
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
	uv_close((uv_handle_t *)&ex->sigterm, NULL);
	uv_close((uv_handle_t *)&ex->sigint, NULL);
	for (struct ex_sandbox *sb = ex->sandboxes; sb; sb = sb->next)
		unwatch(sb);
	http_client_free(ex->client);
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
	        .cgroup_name = "hutch",
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
	if (access(state_dir, F_OK) == 0) {
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
	uv_timer_init(&loop, &ex.retry);
	ex.retry.data = &ex;
	uv_signal_init(&loop, &ex.sigterm);
	uv_signal_init(&loop, &ex.sigint);
	ex.sigterm.data = ex.sigint.data = &ex;
	uv_signal_start(&ex.sigterm, on_signal, SIGTERM);
	uv_signal_start(&ex.sigint, on_signal, SIGINT);
	if (rt_sandbox_list(&ex.rt, adopt_one, &ex, &err) < 0)
		log_warn("listing existing sandboxes: %s", err.msg);
	log_info("executor %s ready (api %s, %s)", cfg->node_id, cfg->api_url, ex.state_dir);
	refill_pool(&ex);
	poll_assignments(&ex);
	uv_run(&loop, UV_RUN_DEFAULT);
	while (ex.sandboxes)
		sb_remove(ex.sandboxes);
	json_decref(ex.pending_reports);
	uv_loop_close(&loop);
	free(ex.auth_header);
	free(ex.state_dir);
	return 0;
}
