/* The process table and each process's lifecycle: start (user, environment, pipes, spawn), stdin,
 * signals, reaping with OOM detection, the end of a run, eviction of old exited processes, and
 * the ProcessInfo JSON. */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "agent.h"

static void table_link(struct agent *a, struct proc *p)
{
	p->prev = a->procs_tail;
	if (a->procs_tail)
		a->procs_tail->next = p;
	else
		a->procs_head = p;
	a->procs_tail = p;
	a->nprocs++;
}

static void table_unlink(struct agent *a, struct proc *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		a->procs_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		a->procs_tail = p->prev;
	p->prev = p->next = NULL;
	a->nprocs--;
}

void proc_ref(struct proc *p)
{
	p->refs++;
}

void proc_unref(struct proc *p)
{
	if (--p->refs > 0)
		return;
	for (int i = 0; i < 2; i++) {
		linesplit_release(&p->out[i].split);
		outlog_release(&p->out[i].log);
	}
	proc_spec_free(p->spec);
	free(p);
}

static struct proc *proc_new(struct agent *a, struct proc_spec *spec)
{
	struct proc *p = xcalloc(1, sizeof(*p));
	p->a = a;
	p->spec = spec;
	p->refs = 1; /* the table's */
	p->pid = -1;
	for (int i = 0; i < 2; i++) {
		p->out[i].fd = -1;
		linesplit_init(&p->out[i].split, a->cfg.max_line_bytes);
		outlog_init(&p->out[i].log, a->cfg.max_output_bytes, a->cfg.max_output_lines);
	}
	p->handle = ++a->last_handle;
	return p;
}

bool proc_over(const struct proc *p)
{
	return p->reaped && p->output_done && (!p->m || p->m->status == MANAGED_STOPPED);
}

/* Gives err an API status and code, keeping its message. */
int agent_error_classify(struct hutch_error *err, int status, const char *kind)
{
	char msg[sizeof(err->msg)];
	snprintf(msg, sizeof(msg), "%s", err->msg);
	return hutch_error_api(err, status, kind, "%s", msg);
}

/* Opens the child's three standard fds and the agent's ends. */
static int proc_pipes(struct proc *p, int child[3], int *ret_stdin, int outs[2],
                      struct hutch_error *err)
{
	int pp[2];
	if (p->spec->stdin_pipe) {
		if (pipe2(pp, O_CLOEXEC) < 0)
			return hutch_error_errno(err, "pipe");
		child[0] = pp[0];
		*ret_stdin = pp[1];
	} else if ((child[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		return hutch_error_errno(err, "/dev/null");
	}
	for (int i = 0; i < 2; i++) {
		if (p->spec->discard[i]) {
			if ((child[1 + i] = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
				return hutch_error_errno(err, "/dev/null");
			continue;
		}
		if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0)
			return hutch_error_errno(err, "pipe");
		outs[i] = pp[0];
		child[1 + i] = pp[1];
		fcntl(pp[1], F_SETFL, 0); /* the child's end blocks as usual */
	}
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static void stdin_closed_cb(uv_handle_t *h)
{
	struct proc *p = h->data;
	free(h);
	proc_unref(p);
}

static void proc_stdin_setup(struct proc *p, int fd)
{
	p->stdin_pipe = xcalloc(1, sizeof(*p->stdin_pipe));
	uv_pipe_init(p->a->loop, p->stdin_pipe, 0);
	p->stdin_pipe->data = p;
	proc_ref(p);
	if (uv_pipe_open(p->stdin_pipe, fd) < 0) {
		close(fd);
		proc_stdin_close(p);
	}
}

/* Spawns p->spec as the process's (next) run. */
static int proc_spawn(struct proc *p, struct hutch_error *err)
{
	struct agent *a = p->a;
	struct proc_spec *s = p->spec;
	struct agent_user user, *u = NULL;
	int child[3] = {-1, -1, -1}, outs[2] = {-1, -1}, in = -1;

	if (s->user) {
		if (user_resolve(s->user, a->cfg.passwd_path, a->cfg.group_path, &user, err) < 0)
			return agent_error_classify(err, 400, "BAD_REQUEST");
		u = &user;
	}
	char **env = env_merge(a->base_env, s->env, u ? u->home : NULL);
	int r = proc_pipes(p, child, &in, outs, err);
	if (r == 0) {
		struct spawn_opts o = {.argv = s->argv,
		                       .envp = env,
		                       .cwd = s->working_dir,
		                       .user = u,
		                       .fd_in = child[0],
		                       .fd_out = child[1],
		                       .fd_err = child[2],
		                       .reset_oom_score = a->oom_score_adj != 0};
		r = spawn_process(&o, &p->pid, err);
		if (r < 0)
			agent_error_classify(err, 400, "SPAWN_FAILED");
	}
	close_fds(child, 3);
	strv_free(env);
	if (r < 0) {
		close_fds(outs, 2);
		close_fds(&in, 1);
		return r;
	}
	p->state = PROC_RUNNING;
	p->reaped = p->output_done = p->oom_killed = p->run_finished = false;
	p->exit_code = p->signal = 0;
	p->started_at = time_now_ms();
	p->ended_at = 0;
	a->nrunning++;
	if (in >= 0)
		proc_stdin_setup(p, in);
	proc_io_setup(p, outs);
	return 0;
}

static int check_name_free(struct agent *a, const char *name, struct hutch_error *err)
{
	for (struct proc *q = a->procs_head; q; q = q->next) {
		if (!q->m || !q->m->named || strcmp(q->spec->name, name) != 0)
			continue;
		if (!proc_over(q))
			return hutch_error_api(err, 409, "ALREADY_EXISTS",
			                       "a managed process named \"%s\" exists", name);
		proc_remove(q); /* a stopped one of the same name is replaced */
		return 0;
	}
	return 0;
}

int proc_start(struct agent *a, struct proc_spec *spec, struct proc **ret, struct hutch_error *err)
{
	if (a->shutting_down)
		return hutch_error_api(err, 503, "SHUTTING_DOWN", "the agent is shutting down");
	if (a->nrunning >= a->cfg.max_running)
		return hutch_error_api(err, 429, "TOO_MANY_PROCESSES",
		                       "%zu processes are running (the limit)", a->nrunning);
	if (spec->name && check_name_free(a, spec->name, err) < 0)
		return err->code;
	struct proc *p = proc_new(a, spec);
	int r = proc_spawn(p, err);
	if (r < 0) {
		p->spec = NULL; /* the caller keeps the spec */
		proc_unref(p);
		return r;
	}
	table_link(a, p);
	if (spec->managed) {
		p->m = managed_new(spec);
		managed_on_start(p);
	}
	proc_table_trim(a);
	*ret = p;
	return 0;
}

int proc_respawn(struct proc *p, struct hutch_error *err)
{
	int r = proc_spawn(p, err);
	if (r == 0)
		managed_on_start(p);
	return r;
}

struct proc *proc_find(struct agent *a, const char *key)
{
	uint64_t pid;
	bool by_pid = sv_to_u64(sv_from(key), INT32_MAX, &pid) == 0;
	for (struct proc *p = a->procs_tail; p; p = p->prev) {
		if (by_pid ? p->pid == (pid_t)pid
		           : (p->m && p->m->named && strcmp(p->spec->name, key) == 0))
			return p;
	}
	return NULL;
}

int proc_kill(struct proc *p, int sig, bool group)
{
	if (p->reaped)
		return -ESRCH;
	if (group)
		kill(-p->pid, sig); /* its own session and group since spawn */
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

bool proc_stdin_writable(const struct proc *p)
{
	return p->stdin_pipe && !p->stdin_closing && !p->reaped;
}

void proc_stdin_close(struct proc *p)
{
	if (!p->stdin_pipe)
		return;
	p->stdin_closing = true;
	if (p->stdin_queued && !p->reaped)
		return; /* closed by the last write's callback */
	uv_close((uv_handle_t *)p->stdin_pipe, stdin_closed_cb);
	p->stdin_pipe = NULL;
}

static void timer_closed_cb(uv_handle_t *h)
{
	struct proc *p = h->data;
	free(h);
	proc_unref(p);
}

void proc_timer_start(struct proc *p, uint64_t ms, uv_timer_cb cb)
{
	proc_timer_stop(p);
	p->timer = xcalloc(1, sizeof(*p->timer));
	uv_timer_init(p->a->loop, p->timer);
	p->timer->data = p;
	proc_ref(p);
	uv_timer_start(p->timer, cb, ms, 0);
}

void proc_timer_stop(struct proc *p)
{
	if (!p->timer)
		return;
	uv_close((uv_handle_t *)p->timer, timer_closed_cb);
	p->timer = NULL;
}

void proc_remove(struct proc *p)
{
	struct agent *a = p->a;
	if (p->removed)
		return;
	p->removed = true;
	if (p == a->entrypoint)
		a->entrypoint = NULL;
	table_unlink(a, p);
	if (p->m) {
		managed_free(a, p->m);
		p->m = NULL;
	}
	proc_timer_stop(p);
	proc_stdin_close(p);
	proc_io_close(p);
	proc_unref(p);
}

static size_t proc_output_bytes(const struct proc *p)
{
	return p->out[0].log.bytes + p->out[1].log.bytes;
}

/* Evicts the oldest finished processes beyond the caps on their number and on the output they
 * keep (ones still being followed stay): the output is charged to the sandbox's memory. */
void proc_table_trim(struct agent *a)
{
	size_t over = 0, bytes = 0, freed = 0;
	for (struct proc *p = a->procs_head; p; p = p->next)
		if (proc_over(p)) {
			over++;
			bytes += proc_output_bytes(p);
		}
	for (struct proc *p = a->procs_head, *next;
	     p && (over > a->cfg.max_exited || bytes > a->cfg.max_exited_bytes); p = next) {
		next = p->next;
		if (proc_over(p) && !p->subs) {
			bytes -= proc_output_bytes(p);
			freed += proc_output_bytes(p);
			proc_remove(p);
			over--;
		}
	}
	if (freed >= 4 * 1024 * 1024)
		malloc_trim(0); /* many small line allocations: give the pages back */
}

/* ---- exit ---- */

static uint64_t oom_counter(const char *path)
{
	struct buf b = BUF_INIT;
	uint64_t v = 0;
	if (path && read_file(path, 65536, &b) == 0) {
		struct sv rest = sv_make(b.data ? b.data : "", b.len), line, k, val;
		while (rest.len) {
			sv_split(rest, '\n', &line, &rest);
			if (sv_split(line, ' ', &k, &val) && sv_eq_cstr(k, "oom_kill"))
				sv_to_u64(sv_trim(val), UINT64_MAX, &v);
		}
	}
	buf_release(&b);
	return v;
}

void agent_oom_init(struct agent *a)
{
	a->oom_count = oom_counter(a->cfg.oom_file);
}

/* A SIGKILL death counts as an OOM kill when the cgroup's oom_kill counter went up. */
static bool oom_check(struct agent *a)
{
	if (!a->cfg.oom_file)
		return false;
	uint64_t now = oom_counter(a->cfg.oom_file);
	bool oom = now > a->oom_count;
	a->oom_count = now;
	return oom;
}

void proc_reaped(struct agent *a, pid_t pid, int status)
{
	struct proc *p = NULL;
	for (struct proc *q = a->procs_tail; q; q = q->prev)
		if (q->pid == pid && !q->reaped) {
			p = q;
			break;
		}
	if (!p) {
		pty_reaped(a, pid, status); /* or an orphan: reaping it was all there was to do */
		return;
	}
	p->reaped = true;
	a->nrunning--;
	p->ended_at = time_now_ms();
	if (WIFSIGNALED(status)) {
		p->state = PROC_SIGNALED;
		p->signal = WTERMSIG(status);
		p->oom_killed = p->signal == SIGKILL && oom_check(a);
	} else {
		p->state = PROC_EXITED;
		p->exit_code = WEXITSTATUS(status);
	}
	if (p->stdin_pipe) {
		uv_close((uv_handle_t *)p->stdin_pipe, stdin_closed_cb);
		p->stdin_pipe = NULL;
	}
	proc_timer_stop(p);
	proc_io_exited(p);
}

/* Creates or replaces the file the runtime reads to learn why the sandbox ended. */
static void write_exit_reason(const char *path, const char *reason)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, reason, strlen(reason)) < 0 || fsync(fd) < 0)
		log_error("cannot write %s: %s", path, strerror(errno));
}

void proc_finish(struct proc *p)
{
	struct agent *a = p->a;
	proc_timer_stop(p);
	if (p == a->entrypoint && p->oom_killed) {
		log_error("the entrypoint was killed by the OOM killer; ending the sandbox");
		if (a->cfg.exit_reason_file)
			write_exit_reason(a->cfg.exit_reason_file, "oom");
		a->exit_status = 137;
		agent_exit_check(a);
	}
	if (p->m && !p->removed)
		managed_on_exit(p);
	proc_subs_notify(p);
	if (!p->removed)
		proc_table_trim(a);
	agent_exit_check(a);
}

/* ---- JSON ---- */

static const char *proc_status(const struct proc *p)
{
	if (p->oom_killed)
		return "oom_killed";
	return p->state == PROC_RUNNING  ? "running"
	       : p->state == PROC_EXITED ? "exited"
	                                 : "signaled";
}

void proc_info_json(struct proc *p, struct jw *w)
{
	jw_obj_begin(w);
	jw_kint(w, "handle", p->handle);
	jw_kint(w, "pid", p->pid);
	jw_kstr(w, "status", proc_status(p));
	if (p->state == PROC_EXITED)
		jw_kint(w, "exit_code", p->exit_code);
	else
		jw_knull(w, "exit_code");
	if (p->state == PROC_SIGNALED)
		jw_kint(w, "signal", p->signal);
	else
		jw_knull(w, "signal");
	jw_kbool(w, "oom_killed", p->oom_killed);
	jw_kbool(w, "stdin_writable", proc_stdin_writable(p));
	jw_kstr(w, "command", p->spec->argv[0]);
	jw_key(w, "args");
	jw_arr_begin(w);
	for (size_t i = 1; i < p->spec->argc; i++)
		jw_str(w, p->spec->argv[i]);
	jw_arr_end(w);
	jw_kint(w, "started_at", p->started_at);
	if (p->reaped)
		jw_kint(w, "ended_at", p->ended_at);
	else
		jw_knull(w, "ended_at");
	if (p->m)
		managed_json(p, w);
	jw_obj_end(w);
}
