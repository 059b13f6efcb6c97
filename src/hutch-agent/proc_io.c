/* Process output: reading the stdout/stderr pipes into the per-stream line logs, the drain after
 * exit, and the SSE subscribers (follow streams and run). A subscriber is a cursor into the logs:
 * it replays the backlog and then live lines at its own pace, bounded by the HTTP layer's write
 * high-water mark. A slow follower never holds up the pipes (it only loses lines the log evicts,
 * and is told so); a slow `run` client pauses its own process's pipes (back-pressure). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "agent.h"

struct sub {
	struct sub *prev, *next;
	struct proc *p;
	struct http_request *req;
	enum sub_kind kind;
	uint64_t cur[2];
	bool pressured;
};

static const char *const stream_names[2] = {"stdout", "stderr"};

/* ---- reading ---- */

struct line_ctx {
	struct proc *p;
	int stream;
};

static void on_line(const char *line, size_t len, void *arg)
{
	struct line_ctx *c = arg;
	struct proc *p = c->p;
	outlog_append(&p->out[c->stream].log, p->next_seq++, time_now_ms(), line, len);
}

static void poll_closed_cb(uv_handle_t *h)
{
	struct proc *p = h->data;
	free(h);
	proc_unref(p);
}

/* Closes one stream's pipe; flushes its partial line. */
static void out_close(struct proc *p, int i, bool flush)
{
	struct proc_out *o = &p->out[i];
	if (o->fd < 0)
		return;
	if (flush) {
		struct line_ctx c = {p, i};
		linesplit_flush(&o->split, on_line, &c);
	}
	if (o->poll) {
		uv_close((uv_handle_t *)o->poll, poll_closed_cb);
		o->poll = NULL;
		o->polling = false;
	}
	close(o->fd);
	o->fd = -1;
}

static void output_check_done(struct proc *p)
{
	if (p->out[0].fd >= 0 || p->out[1].fd >= 0)
		return;
	p->output_done = true;
	if (p->reaped && !p->run_finished) {
		p->run_finished = true;
		proc_finish(p);
	}
}

/* Reads what is available (at most max bytes). Returns 1 at EOF, 0 otherwise. */
static int out_read(struct proc *p, int i, size_t max)
{
	struct proc_out *o = &p->out[i];
	char chunk[65536];
	struct line_ctx c = {p, i};
	size_t total = 0;
	while (total < max) {
		ssize_t n = read(o->fd, chunk, sizeof(chunk));
		if (n > 0) {
			linesplit_feed(&o->split, chunk, (size_t)n, on_line, &c);
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return 1; /* EOF, or an error that ends the stream all the same */
	}
	return 0;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct proc *p = h->data;
	int i = h == p->out[0].poll ? 0 : 1;
	int eof = status < 0 ? 1 : out_read(p, i, 256 * 1024);
	proc_ref(p);
	if (eof)
		out_close(p, i, true);
	proc_subs_notify(p);
	output_check_done(p);
	proc_unref(p);
}

int proc_io_setup(struct proc *p, int fds[2])
{
	for (int i = 0; i < 2; i++) {
		struct proc_out *o = &p->out[i];
		o->fd = fds[i];
		if (o->fd < 0)
			continue;
		o->poll = xcalloc(1, sizeof(*o->poll));
		uv_poll_init(p->a->loop, o->poll, o->fd);
		o->poll->data = p;
		proc_ref(p);
		if (!p->paused_by) {
			uv_poll_start(o->poll, UV_READABLE | UV_DISCONNECT, poll_cb);
			o->polling = true;
		}
	}
	output_check_done(p);
	return 0;
}

static void drain_timeout(uv_timer_t *t)
{
	struct proc *p = t->data;
	proc_ref(p);
	out_close(p, 0, true);
	out_close(p, 1, true);
	proc_subs_notify(p);
	output_check_done(p);
	proc_unref(p);
}

void proc_io_exited(struct proc *p)
{
	proc_ref(p);
	for (int i = 0; i < 2; i++)
		if (p->out[i].fd >= 0 && out_read(p, i, SIZE_MAX))
			out_close(p, i, true);
	proc_subs_notify(p);
	if (p->out[0].fd >= 0 || p->out[1].fd >= 0) {
		/* something (a background child) still holds the pipe: give it a moment */
		proc_timer_start(p, p->a->cfg.exit_drain_ms, drain_timeout);
	} else {
		output_check_done(p);
	}
	proc_unref(p);
}

void proc_io_close(struct proc *p)
{
	out_close(p, 0, false);
	out_close(p, 1, false);
}

void proc_io_pause(struct proc *p)
{
	for (int i = 0; i < 2; i++)
		if (p->out[i].polling) {
			uv_poll_stop(p->out[i].poll);
			p->out[i].polling = false;
		}
}

void proc_io_resume(struct proc *p)
{
	for (int i = 0; i < 2; i++)
		if (p->out[i].poll && !p->out[i].polling) {
			uv_poll_start(p->out[i].poll, UV_READABLE | UV_DISCONNECT, poll_cb);
			p->out[i].polling = true;
		}
}

/* ---- captured output as JSON ---- */

static void marker_line(struct buf *b, int stream, uint64_t dropped, const struct agent *a)
{
	buf_printf(b, "[hutch-agent: %llu earlier %s lines dropped (limit %zu bytes / %zu lines)]",
	           (unsigned long long)dropped, stream_names[stream], a->cfg.max_output_bytes,
	           a->cfg.max_output_lines);
}

/* Streams a kind reads: bit 0 stdout, bit 1 stderr. */
static unsigned kind_streams(enum sub_kind k)
{
	return k == SUB_STDOUT ? 1 : k == SUB_STDERR ? 2 : 3;
}

/* Next line for a cursor pair over the selected streams, by sequence; -1 when none. */
static int next_line(struct proc *p, unsigned streams, const uint64_t cur[2],
                     const struct out_line **ret)
{
	const struct out_line *best = NULL;
	int bi = -1;
	for (int i = 0; i < 2; i++) {
		if (!(streams & (1u << i)))
			continue;
		const struct out_line *l = outlog_get(&p->out[i].log, cur[i]);
		if (l && (!best || l->seq < best->seq))
			best = l, bi = i;
	}
	*ret = best;
	return bi;
}

void proc_output_json(struct proc *p, enum sub_kind kind, struct buf *out)
{
	struct jw w;
	unsigned streams = kind_streams(kind);
	uint64_t cur[2] = {p->out[0].log.first, p->out[1].log.first};
	size_t n = 0;
	struct buf m = BUF_INIT;

	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_kint(&w, "pid", p->pid);
	jw_key(&w, "lines");
	jw_arr_begin(&w);
	for (int i = 0; i < 2; i++) {
		if ((streams & (1u << i)) && cur[i] > 0) {
			buf_reset(&m);
			marker_line(&m, i, cur[i], p->a);
			jw_strn(&w, m.data, m.len);
			n++;
		}
	}
	const struct out_line *l;
	int i;
	while ((i = next_line(p, streams, cur, &l)) >= 0) {
		jw_strn(&w, l->data, l->len);
		cur[i]++;
		n++;
	}
	jw_arr_end(&w);
	jw_kint(&w, "line_count", (int64_t)n);
	jw_obj_end(&w);
	buf_release(&m);
}

/* ---- subscribers ---- */

static void trim_fire(uv_timer_t *t)
{
	proc_table_trim(t->data);
}

static void sub_detach(struct sub *s)
{
	struct proc *p = s->p;
	struct agent *a = p->a;
	if (s->pressured && s->kind == SUB_RUN && --p->paused_by == 0)
		proc_io_resume(p);
	if (s->prev)
		s->prev->next = s->next;
	else
		p->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->req->data = NULL;
	free(s);
	proc_unref(p);
	/* a finished process nobody follows any more may go now: soon, not from inside whatever
	 * walk of the tables got here */
	if (!uv_is_closing((uv_handle_t *)&a->trim_timer))
		uv_timer_start(&a->trim_timer, trim_fire, 0, 0);
}

/* Appends one line's event to out (sent in batches: one write per batch, not per line). The
 * JSON holds no raw CR or LF (the writer escapes every control byte), so it is one `data:` line,
 * written in place. */
static void sub_format_line(struct sub *s, int stream, int64_t ts, const char *line, size_t len,
                            struct buf *out)
{
	struct jw w;
	if (s->kind != SUB_RUN)
		buf_adds(out, "event: output\n");
	buf_adds(out, "data: ");
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "line");
	jw_strn(&w, line, len);
	jw_kint(&w, "timestamp", ts);
	if (s->kind == SUB_OUTPUT || s->kind == SUB_RUN)
		jw_kstr(&w, "stream", stream_names[stream]);
	jw_obj_end(&w);
	buf_adds(out, "\n\n");
}

/* Lines the log evicted before this subscriber read them become one marker line each. */
static void sub_format_markers(struct sub *s, unsigned streams, struct buf *out)
{
	for (int i = 0; i < 2; i++) {
		const struct outlog *log = &s->p->out[i].log;
		if (!(streams & (1u << i)) || s->cur[i] >= log->first)
			continue;
		struct buf m = BUF_INIT;
		marker_line(&m, i, log->first - s->cur[i], s->p->a);
		const struct out_line *l = outlog_get(log, log->first);
		s->cur[i] = log->first;
		sub_format_line(s, i, l ? l->ts : time_now_ms(), m.data, m.len, out);
		buf_release(&m);
	}
}

static void sub_end(struct sub *s)
{
	struct proc *p = s->p;
	struct http_request *req = s->req;
	if (s->kind == SUB_RUN) {
		struct buf b = BUF_INIT;
		if (p->state == PROC_EXITED)
			buf_printf(&b, "{\"exit_code\":%d}", p->exit_code);
		else if (p->oom_killed)
			buf_printf(&b, "{\"signal\":%d,\"oom_killed\":true}", p->signal);
		else
			buf_printf(&b, "{\"signal\":%d}", p->signal);
		http_sse_send(req, NULL, b.data, b.len);
		buf_release(&b);
	} else {
		http_sse_send(req, "eof", "{}", 2);
	}
	sub_detach(s);
	http_response_end(req);
}

static void sub_set_pressure(struct sub *s)
{
	s->pressured = true;
	if (s->kind == SUB_RUN && s->p->paused_by++ == 0)
		proc_io_pause(s->p);
}

#define SUB_BATCH_BYTES (64 * 1024)

/* Sends what the subscriber has not seen yet, as far as the client keeps up, in batches of
 * lines (one write each). */
static void sub_pump(struct sub *s)
{
	unsigned streams = kind_streams(s->kind);
	struct buf batch = BUF_INIT;
	while (!s->pressured) {
		sub_format_markers(s, streams, &batch);
		const struct out_line *l;
		int i;
		while (batch.len < SUB_BATCH_BYTES &&
		       (i = next_line(s->p, streams, s->cur, &l)) >= 0) {
			s->cur[i]++;
			sub_format_line(s, i, l->ts, l->data, l->len, &batch);
		}
		if (batch.len == 0)
			break;
		int r = http_response_write(s->req, batch.data, batch.len);
		buf_reset(&batch);
		if (r < 0) {
			buf_release(&batch);
			return; /* the connection is gone (and s with it, via on_abort) */
		}
		if (r > 0)
			sub_set_pressure(s);
	}
	buf_release(&batch);
	if (!s->pressured && proc_over(s->p))
		sub_end(s);
}

static void sub_on_drain(struct http_request *req)
{
	struct sub *s = req->data;
	if (!s)
		return;
	if (s->pressured && s->kind == SUB_RUN && --s->p->paused_by == 0)
		proc_io_resume(s->p);
	s->pressured = false;
	sub_pump(s);
}

static void sub_on_abort(struct http_request *req)
{
	struct sub *s = req->data;
	if (!s)
		return;
	struct proc *p = s->p;
	/* a run whose client went away has nobody to report to: stop it */
	if (s->kind == SUB_RUN && !p->reaped)
		proc_kill(p, SIGKILL, true);
	sub_detach(s);
}

void sub_attach(struct proc *p, struct http_request *req, enum sub_kind kind)
{
	struct sub *s = xcalloc(1, sizeof(*s));
	s->p = p;
	s->req = req;
	s->kind = kind;
	proc_ref(p);
	s->next = p->subs;
	if (p->subs)
		p->subs->prev = s;
	p->subs = s;
	req->data = s;
	req->on_drain = sub_on_drain;
	req->on_abort = sub_on_abort;
	if (!http_response_started(req))
		http_sse_start(req);
	sub_pump(s);
}

void proc_subs_notify(struct proc *p)
{
	proc_ref(p);
	for (struct sub *s = p->subs, *next; s; s = next) {
		next = s->next;
		if (!s->pressured)
			sub_pump(s);
	}
	proc_unref(p);
}

void proc_subs_keepalive(struct agent *a)
{
	for (struct proc *p = a->procs_head, *pn; p; p = pn) {
		proc_ref(p);
		for (struct sub *s = p->subs, *next; s; s = next) {
			next = s->next;
			if (!s->pressured)
				http_sse_comment(s->req, "keep-alive");
		}
		pn = p->next;
		proc_unref(p);
	}
}
