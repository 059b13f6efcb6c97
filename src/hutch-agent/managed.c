/* Supervision of managed processes: restart policies with exponential backoff and a restart cap,
 * manual restarts, and HTTP/TCP health checks (a process that fails failure_threshold checks in a
 * row is killed so that its restart policy takes over, unless the policy is "never"). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/client.h"
#include "agent.h"

struct health_probe {
	struct proc *p;
	bool cancelled;
	bool done;
	int handles;
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_timer_t timer;
};

static void timer_free_cb(uv_handle_t *h)
{
	free(h);
}

static uv_timer_t *timer_new(struct agent *a, void *data)
{
	uv_timer_t *t = xcalloc(1, sizeof(*t));
	uv_timer_init(a->loop, t);
	t->data = data;
	return t;
}

static void timer_free(uv_timer_t **t)
{
	if (*t) {
		uv_close((uv_handle_t *)*t, timer_free_cb);
		*t = NULL;
	}
}

struct managed *managed_new(struct proc_spec *spec)
{
	struct managed *m = xcalloc(1, sizeof(*m));
	if (spec->name) {
		snprintf(m->id, sizeof(m->id), "%.31s", spec->name);
		m->named = true;
	} else {
		char id[HUTCH_ID_LEN + 1];
		id_generate(id);
		snprintf(m->id, sizeof(m->id), "m-%s", id);
	}
	m->backoff_ms = spec->initial_backoff_ms;
	m->health = spec->health == HEALTH_NONE ? HEALTH_DISABLED : HEALTH_STARTING;
	return m;
}

static void health_stop(struct managed *m)
{
	timer_free(&m->health_timer);
	if (m->probe) {
		m->probe->cancelled = true;
		m->probe = NULL;
	}
}

void managed_free(struct agent *a, struct managed *m)
{
	if (m->restart_req) {
		struct http_request *req = m->restart_req;
		struct proc *p = req->data;
		req->on_abort = NULL;
		agent_error(req, 409, "NOT_FOUND", "the process was removed");
		proc_unref(p);
	}
	health_stop(m);
	timer_free(&m->restart_timer);
	free(m);
}

/* ---- health checks ---- */

static void health_result(struct proc *p, bool ok, const char *why)
{
	struct managed *m = p->m;
	const struct proc_spec *s = p->spec;
	if (ok) {
		m->consecutive_failures = 0;
		m->health = HEALTH_HEALTHY;
		if (m->status == MANAGED_STARTING)
			m->status = MANAGED_RUNNING;
		return;
	}
	m->consecutive_failures++;
	if (m->consecutive_failures < s->health_failure_threshold)
		return;
	m->health = HEALTH_UNHEALTHY;
	snprintf(m->last_error, sizeof(m->last_error), "health check failed %llu times: %s",
	         (unsigned long long)m->consecutive_failures, why);
	if (s->policy != RESTART_NEVER && !p->reaped)
		proc_kill(p, SIGKILL, true);
}

static void probe_handle_closed(uv_handle_t *h)
{
	struct health_probe *pr = h->data;
	if (--pr->handles == 0) {
		proc_unref(pr->p);
		free(pr);
	}
}

static void probe_finish(struct health_probe *pr, bool ok, const char *why)
{
	if (pr->done)
		return;
	pr->done = true;
	if (!pr->cancelled && pr->p->m) {
		pr->p->m->probe = NULL;
		health_result(pr->p, ok, why);
	}
	uv_close((uv_handle_t *)&pr->tcp, probe_handle_closed);
	uv_close((uv_handle_t *)&pr->timer, probe_handle_closed);
}

static void tcp_connected(uv_connect_t *c, int status)
{
	struct health_probe *pr = c->data;
	probe_finish(pr, status == 0, status == 0 ? "" : uv_strerror(status));
}

static void probe_timeout(uv_timer_t *t)
{
	probe_finish(t->data, false, "timed out");
}

static void http_probe_done(int err, struct http_client_response *resp, void *data)
{
	struct health_probe *pr = data;
	char why[64];
	bool ok = err == 0 && resp->status >= 200 && resp->status < 400;
	if (err)
		snprintf(why, sizeof(why), "%s", uv_strerror(err));
	else
		snprintf(why, sizeof(why), "HTTP status %d", resp->status);
	probe_finish(pr, ok, why);
}

static void probe_start(struct proc *p)
{
	struct agent *a = p->a;
	const struct proc_spec *s = p->spec;
	struct health_probe *pr = xcalloc(1, sizeof(*pr));
	pr->p = p;
	proc_ref(p);
	p->m->probe = pr;
	uv_tcp_init(a->loop, &pr->tcp);
	uv_timer_init(a->loop, &pr->timer);
	pr->tcp.data = pr->timer.data = pr->connect.data = pr;
	pr->handles = 2;
	if (s->health == HEALTH_HTTP) {
		char target[32];
		snprintf(target, sizeof(target), "127.0.0.1:%d", s->health_port);
		if (http_client_request(a->hc, target, "GET", s->health_path ? s->health_path : "/",
		                        "User-Agent: hutch-agent-health\r\n", NULL, 0,
		                        s->health_timeout_ms, 65536, http_probe_done, pr) < 0)
			probe_finish(pr, false, "bad target");
		return;
	}
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", s->health_port, &sa);
	uv_timer_start(&pr->timer, probe_timeout, s->health_timeout_ms, 0);
	if (uv_tcp_connect(&pr->connect, &pr->tcp, (struct sockaddr *)&sa, tcp_connected) < 0)
		probe_finish(pr, false, "connect failed");
}

static void health_tick(uv_timer_t *t)
{
	struct proc *p = t->data;
	if (!p->m || p->reaped || p->m->probe)
		return;
	probe_start(p);
}

/* ---- lifecycle ---- */

void managed_on_start(struct proc *p)
{
	struct managed *m = p->m;
	const struct proc_spec *s = p->spec;
	m->next_restart_at = 0;
	m->status = s->health == HEALTH_NONE ? MANAGED_RUNNING : MANAGED_STARTING;
	if (s->health == HEALTH_NONE)
		return;
	m->health = HEALTH_STARTING;
	m->consecutive_failures = 0;
	health_stop(m);
	m->health_timer = timer_new(p->a, p);
	uv_timer_start(m->health_timer, health_tick, s->health_initial_delay_ms,
	               s->health_interval_ms);
}

static void respond_pending_restart(struct proc *p, int status, const struct hutch_error *err)
{
	struct managed *m = p->m;
	struct http_request *req = m->restart_req;
	if (!req)
		return;
	m->restart_req = NULL;
	req->on_abort = NULL;
	if (status != 200) {
		agent_error_from(req, err);
	} else {
		struct buf b = BUF_INIT;
		struct jw w;
		jw_init(&w, &b);
		proc_info_json(p, &w);
		agent_respond_json(req, 200, &b);
		buf_release(&b);
	}
	proc_unref(p); /* the request's reference */
}

/* Spawns the next run; on failure records it and backs off again. */
static void managed_respawn(struct proc *p, bool manual)
{
	struct managed *m = p->m;
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (!manual)
		m->restart_count++;
	if (proc_respawn(p, &err) < 0) {
		snprintf(m->last_error, sizeof(m->last_error), "restart failed: %.200s", err.msg);
		respond_pending_restart(p, 400, &err);
		managed_on_exit(p);
		return;
	}
	respond_pending_restart(p, 200, NULL);
}

static void restart_due(uv_timer_t *t)
{
	struct proc *p = t->data;
	timer_free(&p->m->restart_timer);
	managed_respawn(p, false);
}

static bool wants_restart(const struct proc *p)
{
	const struct proc_spec *s = p->spec;
	bool failed = p->state != PROC_EXITED || p->exit_code != 0;
	if (s->policy == RESTART_NEVER || (s->policy == RESTART_ON_FAILURE && !failed))
		return false;
	return s->max_restarts < 0 || p->m->restart_count < (uint64_t)s->max_restarts;
}

void managed_on_exit(struct proc *p)
{
	struct managed *m = p->m;
	health_stop(m);
	m->has_last_exit = true;
	m->last_exit_code = p->state == PROC_EXITED ? p->exit_code : -1;
	m->last_signal = p->state == PROC_SIGNALED ? p->signal : 0;
	m->last_oom = p->oom_killed;
	m->last_ended_at = p->ended_at;
	if (m->status == MANAGED_STOPPED || p->a->shutting_down) {
		m->status = MANAGED_STOPPED;
		return;
	}
	if (m->restart_req) {
		managed_respawn(p, true);
		return;
	}
	if (!wants_restart(p)) {
		m->status = MANAGED_STOPPED;
		if (p->spec->policy != RESTART_NEVER && p->spec->max_restarts >= 0 &&
		    m->restart_count >= (uint64_t)p->spec->max_restarts) {
			char prev[sizeof(m->last_error)];
			snprintf(prev, sizeof(prev), "%s", m->last_error);
			snprintf(m->last_error, sizeof(m->last_error),
			         "gave up after %llu restarts%s%.180s",
			         (unsigned long long)m->restart_count,
			         prev[0] ? "; last error: " : "", prev);
		}
		return;
	}
	/* a run that lasted a while starts the backoff over */
	if (p->ended_at - p->started_at >= 10000)
		m->backoff_ms = p->spec->initial_backoff_ms;
	m->status = MANAGED_BACKING_OFF;
	m->next_restart_at = time_now_ms() + (int64_t)m->backoff_ms;
	m->restart_timer = timer_new(p->a, p);
	uv_timer_start(m->restart_timer, restart_due, m->backoff_ms, 0);
	m->backoff_ms = m->backoff_ms * 2 > p->spec->max_backoff_ms ? p->spec->max_backoff_ms
	                                                            : m->backoff_ms * 2;
}

void managed_stop(struct proc *p)
{
	struct managed *m = p->m;
	if (!m)
		return;
	health_stop(m);
	timer_free(&m->restart_timer);
	m->next_restart_at = 0;
	m->status = MANAGED_STOPPED;
}

static void restart_req_abort(struct http_request *req)
{
	struct proc *p = req->data;
	if (p->m)
		p->m->restart_req = NULL;
	proc_unref(p);
}

void managed_restart(struct proc *p, struct http_request *req)
{
	struct managed *m = p->m;
	if (m->restart_req) {
		agent_error(req, 409, "RESTART_IN_PROGRESS", "a restart is already in progress");
		return;
	}
	m->restart_req = req;
	req->data = p;
	proc_ref(p);
	req->on_abort = restart_req_abort;
	timer_free(&m->restart_timer);
	m->next_restart_at = 0;
	m->status = MANAGED_STARTING;
	if (p->reaped && p->output_done) {
		managed_respawn(p, true);
		return;
	}
	proc_kill(p, SIGKILL, true); /* managed_on_exit respawns once it is reaped */
}

/* ---- JSON ---- */

static const char *const status_names[] = {"starting", "running", "backing_off", "stopped"};
static const char *const health_names[] = {"disabled", "starting", "healthy", "unhealthy"};
static const char *const policy_names[] = {"never", "on_failure", "always"};

static void health_json(const struct proc_spec *s, struct jw *w)
{
	jw_key(w, "health_check");
	if (s->health == HEALTH_NONE) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kstr(w, "type", s->health == HEALTH_HTTP ? "http" : "tcp");
	jw_kint(w, "port", s->health_port);
	if (s->health_path)
		jw_kstr(w, "path", s->health_path);
	else
		jw_knull(w, "path");
	jw_kint(w, "initial_delay_ms", (int64_t)s->health_initial_delay_ms);
	jw_kint(w, "interval_ms", (int64_t)s->health_interval_ms);
	jw_kint(w, "timeout_ms", (int64_t)s->health_timeout_ms);
	jw_kint(w, "failure_threshold", (int64_t)s->health_failure_threshold);
	jw_obj_end(w);
}

static void last_exit_json(const struct managed *m, struct jw *w)
{
	jw_key(w, "last_exit");
	if (!m->has_last_exit) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	if (m->last_signal)
		jw_kint(w, "signal", m->last_signal), jw_knull(w, "exit_code");
	else
		jw_kint(w, "exit_code", m->last_exit_code), jw_knull(w, "signal");
	jw_kbool(w, "oom_killed", m->last_oom);
	jw_kint(w, "ended_at", m->last_ended_at);
	jw_obj_end(w);
}

void managed_json(struct proc *p, struct jw *w)
{
	const struct managed *m = p->m;
	const struct proc_spec *s = p->spec;
	jw_key(w, "managed");
	jw_obj_begin(w);
	jw_kstr(w, "id", m->id);
	if (m->named)
		jw_kstr(w, "name", s->name);
	else
		jw_knull(w, "name");
	jw_kstr(w, "status", status_names[m->status]);
	jw_kint(w, "restart_count", (int64_t)m->restart_count);
	jw_key(w, "restart");
	jw_obj_begin(w);
	jw_kstr(w, "policy", policy_names[s->policy]);
	if (s->max_restarts >= 0)
		jw_kint(w, "max_restarts", s->max_restarts);
	else
		jw_knull(w, "max_restarts");
	jw_kint(w, "initial_backoff_ms", (int64_t)s->initial_backoff_ms);
	jw_kint(w, "max_backoff_ms", (int64_t)s->max_backoff_ms);
	jw_obj_end(w);
	health_json(s, w);
	jw_kstr(w, "health_status", health_names[m->health]);
	jw_kint(w, "consecutive_health_failures", (int64_t)m->consecutive_failures);
	last_exit_json(m, w);
	if (m->last_error[0])
		jw_kstr(w, "last_error", m->last_error);
	else
		jw_knull(w, "last_error");
	if (m->next_restart_at)
		jw_kint(w, "next_restart_at", m->next_restart_at);
	else
		jw_knull(w, "next_restart_at");
	jw_obj_end(w);
}
