/* HTTP handlers for /api/v1/processes: start, run (SSE), list, get, kill, signal, restart, stdin,
 * captured output and the follow streams. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "agent.h"

#define STDIN_MAX_BODY   (16 * 1024 * 1024)
#define STDIN_MAX_QUEUED (64 * 1024 * 1024)

static struct proc *find_or_404(struct http_request *req, struct agent *a)
{
	const char *key = http_request_param(req, "p");
	struct proc *p = key ? proc_find(a, key) : NULL;
	if (!p)
		agent_error(req, 404, "NOT_FOUND", "no process \"%s\"", key ? key : "");
	return p;
}

static void respond_info(struct http_request *req, int status, struct proc *p)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	proc_info_json(p, &w);
	agent_respond_json(req, status, &b);
	buf_release(&b);
}

/* ---- start ---- */

static void start_body(struct http_request *req)
{
	struct agent *a = req->data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proc_spec *spec;
	struct proc *p;
	if (proc_spec_parse(buf_cstr(&req->body), req->body.len, false, &spec, &err) < 0) {
		agent_error_from(req, &err);
		return;
	}
	if (proc_start(a, spec, &p, &err) < 0) {
		proc_spec_free(spec);
		agent_error_from(req, &err);
		return;
	}
	respond_info(req, 201, p);
}

void api_process_start(struct http_request *req, struct agent *a)
{
	req->data = a;
	http_request_read_body(req, a->cfg.max_json_body, start_body);
}

/* ---- run ---- */

static void run_timeout(uv_timer_t *t)
{
	struct proc *p = t->data;
	proc_kill(p, SIGKILL, true);
}

static void run_body(struct http_request *req)
{
	struct agent *a = req->data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proc_spec *spec;
	struct proc *p;
	if (proc_spec_parse(buf_cstr(&req->body), req->body.len, true, &spec, &err) < 0) {
		agent_error_from(req, &err);
		return;
	}
	double timeout_ms = spec->timeout_s * 1000.0;
	if (proc_start(a, spec, &p, &err) < 0) {
		proc_spec_free(spec);
		agent_error_from(req, &err);
		return;
	}
	if (timeout_ms > 0)
		proc_timer_start(p, timeout_ms < 1 ? 1 : (uint64_t)timeout_ms, run_timeout);
	struct buf b = BUF_INIT;
	buf_printf(&b, "{\"handle\":%lld,\"pid\":%d,\"started_at\":%lld}", (long long)p->handle,
	           (int)p->pid, (long long)p->started_at);
	http_sse_start(req);
	http_sse_send(req, NULL, b.data, b.len);
	buf_release(&b);
	sub_attach(p, req, SUB_RUN);
}

void api_process_run(struct http_request *req, struct agent *a)
{
	req->data = a;
	http_request_read_body(req, a->cfg.max_json_body, run_body);
}

/* ---- list, get, delete ---- */

void api_process_list(struct http_request *req, struct agent *a)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_key(&w, "processes");
	jw_arr_begin(&w);
	for (struct proc *p = a->procs_head; p; p = p->next)
		proc_info_json(p, &w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

void api_process_get(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (p)
		respond_info(req, 200, p);
}

void api_process_delete(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	managed_stop(p);
	proc_kill(p, SIGKILL, true);
	if (p->m && p->reaped && p->output_done)
		proc_subs_notify(p); /* a managed process backing off is over now */
	http_respond(req, 204, NULL, NULL, 0);
}

/* ---- signal, restart ---- */

static void signal_body(struct http_request *req)
{
	struct agent *a = req->data;
	json_error_t jerr;
	json_t *o = json_loadb(buf_cstr(&req->body), req->body.len, 0, &jerr);
	json_t *sig = o ? json_object_get(o, "signal") : NULL;
	long long n = json_is_integer(sig) ? json_integer_value(sig) : -1;
	json_decref(o);
	if (n < 1 || n > SIGRTMAX) {
		agent_error(req, 400, "INVALID_SIGNAL", "\"signal\" must be a signal number (1-%d)",
		            SIGRTMAX);
		return;
	}
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	int r = proc_kill(p, (int)n, false);
	const char *body = r == 0 ? "{\"success\":true}" : "{\"success\":false}";
	http_respond(req, 200, "application/json", body, strlen(body));
}

void api_process_signal(struct http_request *req, struct agent *a)
{
	req->data = a;
	http_request_read_body(req, 4096, signal_body);
}

void api_process_restart(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	if (!p->m) {
		agent_error(req, 400, "NOT_MANAGED", "only managed processes can be restarted");
		return;
	}
	managed_restart(p, req);
}

/* ---- stdin ---- */

struct stdin_write {
	uv_write_t w;
	struct proc *p;
	size_t len;
	char data[];
};

static void stdin_written(uv_write_t *w, int status)
{
	struct stdin_write *sw = (struct stdin_write *)w;
	struct proc *p = sw->p;
	p->stdin_queued -= sw->len;
	free(sw);
	if (status < 0 && status != UV_ECANCELED && p->stdin_pipe)
		proc_stdin_close(p); /* EPIPE: the reader is gone */
	else if (p->stdin_closing && p->stdin_queued == 0 && p->stdin_pipe)
		proc_stdin_close(p);
	proc_unref(p);
}

static int stdin_queue(struct proc *p, const char *data, size_t len)
{
	struct stdin_write *sw = xmalloc(sizeof(*sw) + len);
	sw->p = p;
	sw->len = len;
	memcpy(sw->data, data, len);
	uv_buf_t b = uv_buf_init(sw->data, (unsigned)len);
	if (uv_write(&sw->w, (uv_stream_t *)p->stdin_pipe, &b, 1, stdin_written) < 0) {
		free(sw);
		return -EPIPE;
	}
	proc_ref(p);
	p->stdin_queued += len;
	return 0;
}

static void stdin_abort(struct http_request *req)
{
	proc_unref(req->data);
}

static void stdin_body(struct http_request *req)
{
	struct proc *p = req->data;
	req->on_abort = NULL;
	if (!proc_stdin_writable(p)) {
		agent_error(req, 400, "STDIN_NOT_WRITABLE", "stdin of process %d is not writable",
		            (int)p->pid);
	} else if (p->stdin_queued + req->body.len > STDIN_MAX_QUEUED) {
		agent_error(req, 503, "STDIN_BUFFER_FULL",
		            "the process is not reading its stdin; try again later");
	} else if (req->body.len && stdin_queue(p, req->body.data, req->body.len) < 0) {
		agent_error(req, 400, "STDIN_NOT_WRITABLE", "stdin of process %d is closed",
		            (int)p->pid);
	} else {
		http_respond(req, 204, NULL, NULL, 0);
	}
	proc_unref(p);
}

void api_process_stdin(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	if (!proc_stdin_writable(p)) {
		agent_error(req, 400, "STDIN_NOT_WRITABLE", "stdin of process %d is not writable",
		            (int)p->pid);
		return;
	}
	proc_ref(p);
	req->data = p;
	req->on_abort = stdin_abort;
	http_request_read_body(req, STDIN_MAX_BODY, stdin_body);
}

void api_process_stdin_close(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	if (!proc_stdin_writable(p)) {
		agent_error(req, 400, "STDIN_NOT_WRITABLE", "stdin of process %d is not open",
		            (int)p->pid);
		return;
	}
	proc_stdin_close(p);
	http_respond(req, 204, NULL, NULL, 0);
}

/* ---- output ---- */

static enum sub_kind kind_of(const struct http_request *req)
{
	struct sv path = req->path;
	if (path.len > 1 && path.p[path.len - 1] == '/')
		path.len--;
	if (sv_ends_with(path, SV("/follow")))
		path.len -= 7;
	if (sv_ends_with(path, SV("/stdout")))
		return SUB_STDOUT;
	if (sv_ends_with(path, SV("/stderr")))
		return SUB_STDERR;
	return SUB_OUTPUT;
}

void api_process_output(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (!p)
		return;
	struct buf b = BUF_INIT;
	proc_output_json(p, kind_of(req), &b);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

void api_process_follow(struct http_request *req, struct agent *a)
{
	struct proc *p = find_or_404(req, a);
	if (p)
		sub_attach(p, req, kind_of(req));
}
