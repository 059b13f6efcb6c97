/* PTY sessions: a process on a pseudo-terminal, its 1 MiB output history, and the WebSocket
 * clients attached to it with the one-byte opcode protocol (DATA 0x00, RESIZE 0x01, READY 0x02
 * from the client; DATA 0x00 and EXIT 0x03 from the agent). Output is held back per client
 * until READY (history first); sessions without a client are killed after 300 s, ended ones are
 * forgotten 60 s after they exit. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "agent.h"
#include "ws/ws_conn.h"

#define PTY_ID_LEN      21
#define PTY_FRAME_MAX   (64 * 1024 - 1) /* output bytes per DATA frame (plus the opcode) */
#define PTY_PENDING_MAX (1024 * 1024)
#define PTY_LAG_MAX     (1024 * 1024)
#define PTY_INPUT_RATE  (1024 * 1024) /* bytes per second per client */
#define PTY_INPUT_MAX   (1024 * 1024)

enum { OP_DATA = 0x00, OP_RESIZE = 0x01, OP_READY = 0x02, OP_EXIT = 0x03 };

struct pty_client {
	struct pty_client *prev, *next;
	struct pty_session *s;
	struct ws_conn *ws;
	struct buf pending; /* output held until READY */
	bool ready;
	bool closing;
	uint64_t window_start;
	size_t window_bytes;
};

struct pty_session {
	struct pty_session *prev, *next;
	struct agent *a;
	char id[PTY_ID_LEN + 1];
	char token[65];
	pid_t pid;
	int master;
	uv_poll_t *poll;
	int poll_events;
	char **argv;
	size_t argc;
	unsigned rows, cols;
	int64_t created_at, ended_at;
	int exit_code;
	bool alive;
	bool removed;
	struct buf history;
	struct buf input; /* typed bytes the terminal has not taken yet */
	struct pty_client *clients;
	uv_timer_t *timer;
	int refs;
};

static void session_unref(struct pty_session *s)
{
	if (--s->refs > 0)
		return;
	strv_free(s->argv);
	buf_release(&s->history);
	buf_release(&s->input);
	free(s);
}

static void handle_closed_cb(uv_handle_t *h)
{
	struct pty_session *s = h->data;
	free(h);
	session_unref(s);
}

static void session_timer(struct pty_session *s, uint64_t ms, uv_timer_cb cb)
{
	if (!s->timer) {
		s->timer = xcalloc(1, sizeof(*s->timer));
		uv_timer_init(s->a->loop, s->timer);
		s->timer->data = s;
		s->refs++;
	}
	uv_timer_stop(s->timer);
	if (cb)
		uv_timer_start(s->timer, cb, ms, 0);
}

static void nanoid(char out[PTY_ID_LEN + 1])
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	unsigned char r[PTY_ID_LEN];
	random_bytes(r, sizeof(r));
	for (int i = 0; i < PTY_ID_LEN; i++)
		out[i] = abc[r[i] & 63];
	out[PTY_ID_LEN] = '\0';
}

static struct pty_session *session_find(struct agent *a, const char *id)
{
	for (struct pty_session *s = a->ptys; s; s = s->next)
		if (id && strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

static void master_close(struct pty_session *s)
{
	if (s->poll) {
		uv_close((uv_handle_t *)s->poll, handle_closed_cb);
		s->poll = NULL;
	}
	if (s->master >= 0) {
		close(s->master);
		s->master = -1;
	}
}

static void session_remove(struct pty_session *s)
{
	struct agent *a = s->a;
	if (s->removed)
		return;
	s->removed = true;
	if (s->prev)
		s->prev->next = s->next;
	else
		a->ptys = s->next;
	if (s->next)
		s->next->prev = s->prev;
	a->nptys--;
	master_close(s);
	if (s->timer) {
		uv_close((uv_handle_t *)s->timer, handle_closed_cb);
		s->timer = NULL;
	}
	session_unref(s);
}

/* ---- output to clients ---- */

static void client_close(struct pty_client *c, unsigned code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	ws_conn_close(c->ws, code, reason);
}

static void client_send_data(struct pty_client *c, const char *data, size_t len)
{
	uint8_t op = OP_DATA;
	while (len && !c->closing) {
		size_t n = len < PTY_FRAME_MAX ? len : PTY_FRAME_MAX;
		ws_conn_send(c->ws, WS_OP_BINARY, &op, 1, data, n);
		data += n;
		len -= n;
	}
	if (!c->closing && ws_conn_queued(c->ws) > PTY_LAG_MAX)
		client_close(c, WS_CLOSE_POLICY, "output lag");
}

static void client_send_exit(struct pty_client *c)
{
	int32_t code = c->s->exit_code;
	uint8_t f[5] = {OP_EXIT, (uint8_t)((uint32_t)code >> 24), (uint8_t)((uint32_t)code >> 16),
	                (uint8_t)((uint32_t)code >> 8), (uint8_t)code};
	char reason[32];
	ws_conn_send(c->ws, WS_OP_BINARY, f, sizeof(f), NULL, 0);
	snprintf(reason, sizeof(reason), "exit:%d", code);
	client_close(c, WS_CLOSE_NORMAL, reason);
}

static void session_output(struct pty_session *s, const char *data, size_t len)
{
	size_t cap = s->a->cfg.pty_history_bytes;
	buf_add(&s->history, data, len);
	if (s->history.len > 2 * cap)
		buf_consume(&s->history, s->history.len - cap);
	for (struct pty_client *c = s->clients; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->ready) {
			client_send_data(c, data, len);
			continue;
		}
		buf_add(&c->pending, data, len);
		if (c->pending.len > PTY_PENDING_MAX)
			client_close(c, WS_CLOSE_POLICY, "too much output before READY");
	}
}

/* Reads what the terminal has; returns 1 when it is gone (EIO once the last slave closed). */
static int master_read(struct pty_session *s, size_t max)
{
	char chunk[65536];
	size_t total = 0;
	while (total < max) {
		ssize_t n = read(s->master, chunk, sizeof(chunk));
		if (n > 0) {
			session_output(s, chunk, (size_t)n);
			total += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN ? 0 : 1;
	}
	return 0;
}

static void master_update_poll(struct pty_session *s);

static void master_write(struct pty_session *s)
{
	while (s->input.len) {
		ssize_t n = write(s->master, s->input.data, s->input.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				buf_reset(&s->input);
			break;
		}
		buf_consume(&s->input, (size_t)n);
	}
	master_update_poll(s);
}

static void master_poll_cb(uv_poll_t *h, int status, int events)
{
	struct pty_session *s = h->data;
	s->refs++;
	if (events & UV_WRITABLE)
		master_write(s);
	if ((events & (UV_READABLE | UV_DISCONNECT)) || status < 0) {
		if (master_read(s, 256 * 1024) && s->poll) {
			uv_poll_stop(s->poll); /* hung up: wait for the exit */
			s->poll_events = 0;
		}
	}
	session_unref(s);
}

static void master_update_poll(struct pty_session *s)
{
	if (!s->poll || !s->alive)
		return;
	int ev = UV_READABLE | (s->input.len ? UV_WRITABLE : 0);
	if (ev != s->poll_events) {
		uv_poll_start(s->poll, ev, master_poll_cb);
		s->poll_events = ev;
	}
}

/* ---- the process ---- */

static void idle_kill(uv_timer_t *t)
{
	struct pty_session *s = t->data;
	if (s->alive && !s->clients)
		kill(-s->pid, SIGKILL);
}

static void reap_due(uv_timer_t *t)
{
	session_remove(t->data);
}

bool pty_reaped(struct agent *a, pid_t pid, int status)
{
	struct pty_session *s = a->ptys;
	while (s && !(s->pid == pid && s->alive))
		s = s->next;
	if (!s)
		return false;
	s->alive = false;
	s->ended_at = time_now_ms();
	s->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	s->refs++;
	if (s->master >= 0)
		master_read(s, SIZE_MAX);
	master_close(s);
	for (struct pty_client *c = s->clients; c; c = c->next)
		if (c->ready && !c->closing)
			client_send_exit(c);
	session_timer(s, a->cfg.pty_reap_ms, reap_due);
	session_unref(s);
	return true;
}

static int open_pty(unsigned rows, unsigned cols, int *ret_master, int *ret_slave,
                    struct hutch_error *err)
{
	_cleanup_close_ int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	int unlock = 0;
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return hutch_error_errno(err, "cannot open a pseudo-terminal");
	int sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0) {
		char name[64];
		if (ptsname_r(m, name, sizeof(name)) != 0 ||
		    (sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
			return hutch_error_errno(err, "cannot open the terminal's slave side");
	}
	ioctl(m, TIOCSWINSZ, &ws);
	*ret_master = TAKE_FD(m);
	*ret_slave = sl;
	return 0;
}

static unsigned clamp(long long v, unsigned lo, unsigned hi, unsigned def)
{
	if (v == LLONG_MIN)
		return def;
	return v < lo ? lo : v > hi ? hi : (unsigned)v;
}

static long long json_int_or(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : LLONG_MIN;
}

/* Parses the create body into a spec (command, args, env, working_dir) and a size. */
static int pty_parse(const struct buf *body, struct proc_spec **ret, unsigned *rows, unsigned *cols,
                     struct hutch_error *err)
{
	json_error_t jerr;
	json_t *o = json_loadb(buf_cstr(body), body->len, 0, &jerr);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return hutch_error_api(err, 400, "BAD_REQUEST", "the body must be a JSON object");
	}
	int r = proc_spec_from_json(o, false, ret, err);
	*rows = clamp(json_int_or(o, "rows"), 1, 500, 24);
	*cols = clamp(json_int_or(o, "cols"), 1, 1000, 80);
	json_decref(o);
	return r;
}

static int session_spawn(struct pty_session *s, const struct proc_spec *spec,
                         struct hutch_error *err)
{
	struct agent_user user, *u = NULL;
	int slave = -1;
	if (spec->user) {
		if (user_resolve(spec->user, s->a->cfg.passwd_path, s->a->cfg.group_path, &user,
		                 err) < 0)
			return agent_error_classify(err, 400, "BAD_REQUEST");
		u = &user;
	}
	if (open_pty(s->rows, s->cols, &s->master, &slave, err) < 0)
		return err->code;
	char **env = env_merge(s->a->base_env, spec->env, u ? u->home : NULL);
	bool has_term = false;
	for (char **e = env; *e; e++)
		has_term |= strncmp(*e, "TERM=", 5) == 0;
	char *term[] = {"TERM=xterm-256color", NULL};
	if (!has_term) {
		char **more = env_merge(env, term, NULL);
		strv_free(env);
		env = more;
	}
	struct spawn_opts o = {.argv = spec->argv,
	                       .envp = env,
	                       .cwd = spec->working_dir,
	                       .user = u,
	                       .fd_in = slave,
	                       .fd_out = slave,
	                       .fd_err = slave,
	                       .pty = true,
	                       .reset_oom_score = s->a->oom_score_adj != 0};
	int r = spawn_process(&o, &s->pid, err);
	close(slave);
	strv_free(env);
	return r;
}

static void session_json(const struct pty_session *s, struct jw *w)
{
	jw_obj_begin(w);
	jw_kstr(w, "session_id", s->id);
	jw_kint(w, "pid", s->pid);
	jw_kstr(w, "command", s->argv[0]);
	jw_key(w, "args");
	jw_arr_begin(w);
	for (size_t i = 1; i < s->argc; i++)
		jw_str(w, s->argv[i]);
	jw_arr_end(w);
	jw_kint(w, "rows", s->rows);
	jw_kint(w, "cols", s->cols);
	jw_kint(w, "created_at", s->created_at);
	if (s->alive) {
		jw_knull(w, "ended_at");
		jw_knull(w, "exit_code");
	} else {
		jw_kint(w, "ended_at", s->ended_at);
		jw_kint(w, "exit_code", s->exit_code);
	}
	jw_kbool(w, "is_alive", s->alive);
	jw_obj_end(w);
}

/* ---- HTTP ---- */

static size_t live_sessions(struct agent *a)
{
	size_t n = 0;
	for (struct pty_session *s = a->ptys; s; s = s->next)
		n += s->alive;
	return n;
}

static int session_start(struct agent *a, struct proc_spec *spec, unsigned rows, unsigned cols,
                         struct pty_session **ret, struct hutch_error *err)
{
	struct pty_session *s = xcalloc(1, sizeof(*s));
	s->a = a;
	s->refs = 1;
	s->master = -1;
	s->rows = rows;
	s->cols = cols;
	nanoid(s->id);
	uint8_t tok[32];
	random_bytes(tok, sizeof(tok));
	hex_encode(tok, sizeof(tok), s->token);
	if (session_spawn(s, spec, err) < 0) {
		master_close(s);
		session_unref(s);
		return err->code;
	}
	s->argv = spec->argv;
	s->argc = spec->argc;
	spec->argv = NULL;
	s->alive = true;
	s->created_at = time_now_ms();
	s->poll = xcalloc(1, sizeof(*s->poll));
	uv_poll_init(a->loop, s->poll, s->master);
	s->poll->data = s;
	s->refs++;
	master_update_poll(s);
	s->next = a->ptys;
	if (a->ptys)
		a->ptys->prev = s;
	a->ptys = s;
	a->nptys++;
	session_timer(s, a->cfg.pty_idle_kill_ms, idle_kill);
	*ret = s;
	return 0;
}

static void create_body(struct http_request *req)
{
	struct agent *a = req->data;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proc_spec *spec = NULL;
	struct pty_session *s = NULL;
	unsigned rows = 24, cols = 80;
	if (pty_parse(&req->body, &spec, &rows, &cols, &err) < 0 ||
	    session_start(a, spec, rows, cols, &s, &err) < 0) {
		proc_spec_free(spec);
		agent_error_from(req, &err);
		return;
	}
	proc_spec_free(spec);
	struct buf b = BUF_INIT;
	buf_printf(&b, "{\"session_id\":\"%s\",\"token\":\"%s\"}", s->id, s->token);
	agent_respond_json(req, 201, &b);
	buf_release(&b);
}

void api_pty_create(struct http_request *req, struct agent *a)
{
	if (live_sessions(a) >= a->cfg.max_ptys) {
		agent_error(req, 429, "TOO_MANY_SESSIONS",
		            "at most %zu PTY sessions may run at once", a->cfg.max_ptys);
		return;
	}
	req->data = a;
	http_request_read_body(req, a->cfg.max_json_body, create_body);
}

void api_pty_list(struct http_request *req, struct agent *a)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_key(&w, "sessions");
	jw_arr_begin(&w);
	for (struct pty_session *s = a->ptys; s; s = s->next)
		session_json(s, &w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

static struct pty_session *find_or_404(struct http_request *req, struct agent *a)
{
	const char *id = http_request_param(req, "id");
	struct pty_session *s = session_find(a, id);
	if (!s)
		agent_error(req, 404, "SESSION_NOT_FOUND", "no PTY session \"%s\"", id ? id : "");
	return s;
}

void api_pty_get(struct http_request *req, struct agent *a)
{
	struct pty_session *s = find_or_404(req, a);
	if (!s)
		return;
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	session_json(s, &w);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

void api_pty_delete(struct http_request *req, struct agent *a)
{
	struct pty_session *s = find_or_404(req, a);
	if (!s)
		return;
	if (s->alive)
		kill(-s->pid, SIGKILL);
	for (struct pty_client *c = s->clients; c; c = c->next)
		client_close(c, WS_CLOSE_GOING_AWAY, "session terminated");
	session_remove(s);
	http_respond(req, 204, NULL, NULL, 0);
}

static void session_resize(struct pty_session *s, long long rows, long long cols)
{
	s->rows = clamp(rows, 1, 500, s->rows);
	s->cols = clamp(cols, 1, 1000, s->cols);
	struct winsize ws = {.ws_row = (unsigned short)s->rows, .ws_col = (unsigned short)s->cols};
	if (s->master >= 0)
		ioctl(s->master, TIOCSWINSZ, &ws);
}

static void resize_body(struct http_request *req)
{
	struct agent *a = req->data;
	json_error_t jerr;
	json_t *o = json_loadb(buf_cstr(&req->body), req->body.len, 0, &jerr);
	long long rows = json_int_or(o, "rows"), cols = json_int_or(o, "cols");
	json_decref(o);
	if (rows == LLONG_MIN || cols == LLONG_MIN) {
		agent_error(req, 400, "BAD_REQUEST", "\"rows\" and \"cols\" must be integers");
		return;
	}
	struct pty_session *s = find_or_404(req, a);
	if (!s)
		return;
	session_resize(s, rows, cols);
	http_respond(req, 204, NULL, NULL, 0);
}

void api_pty_resize(struct http_request *req, struct agent *a)
{
	req->data = a;
	http_request_read_body(req, 4096, resize_body);
}

/* ---- WebSocket clients ---- */

static void client_ready(struct pty_client *c)
{
	if (c->ready)
		return;
	c->ready = true;
	client_send_data(c, c->pending.data, c->pending.len);
	buf_release(&c->pending);
	if (!c->s->alive && !c->closing)
		client_send_exit(c);
}

static void client_input(struct pty_client *c, const uint8_t *d, size_t len)
{
	struct pty_session *s = c->s;
	uint64_t now = time_mono_ms();
	if (now - c->window_start >= 1000) {
		c->window_start = now;
		c->window_bytes = 0;
	}
	c->window_bytes += len;
	if (c->window_bytes > PTY_INPUT_RATE) {
		client_close(c, WS_CLOSE_POLICY, "input rate limit");
		return;
	}
	if (!s->alive || s->master < 0)
		return;
	if (s->input.len + len > PTY_INPUT_MAX) {
		client_close(c, WS_CLOSE_POLICY, "terminal input backlog");
		return;
	}
	buf_add(&s->input, d, len);
	master_write(s);
}

static void client_message(struct ws_conn *ws, uint8_t opcode, const uint8_t *d, size_t len,
                           void *arg)
{
	struct pty_client *c = arg;
	c->ws = ws; /* leftover frames arrive before ws_conn_new returns */
	if (opcode != WS_OP_BINARY || len == 0 || c->closing)
		return; /* text frames are ignored */
	switch (d[0]) {
	case OP_DATA:
		client_input(c, d + 1, len - 1);
		break;
	case OP_RESIZE:
		if (len >= 5)
			session_resize(c->s, d[3] << 8 | d[4], d[1] << 8 | d[2]);
		break;
	case OP_READY:
		client_ready(c);
		break;
	default:
		break;
	}
}

static void client_closed(struct ws_conn *ws, unsigned code, struct sv reason, void *arg)
{
	struct pty_client *c = arg;
	struct pty_session *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	buf_release(&c->pending);
	free(c);
	if (!s->clients && s->alive && !s->removed)
		session_timer(s, s->a->cfg.pty_idle_kill_ms, idle_kill);
	session_unref(s);
}

static const struct ws_conn_ops client_ops = {
        .on_message = client_message,
        .on_close = client_closed,
};

static bool token_ok(struct http_request *req, const struct pty_session *s)
{
	struct buf q = BUF_INIT;
	struct sv tok = http_request_header(req, "x-pty-token");
	if (!tok.p && http_request_query(req, "token", &q))
		tok = sv_make(q.data ? q.data : "", q.len);
	bool ok = tok.p && tok.len == 64 && ct_equal(tok.p, s->token, 64);
	buf_release(&q);
	return ok;
}

void api_pty_ws(struct http_request *req, struct agent *a)
{
	const char *id = http_request_param(req, "id");
	struct pty_session *s = session_find(a, id);
	if (!s) {
		agent_error(req, 404, "SESSION_NOT_FOUND", "no PTY session \"%s\"", id ? id : "");
		return;
	}
	if (!token_ok(req, s)) {
		agent_error(req, 403, "INVALID_TOKEN", "invalid PTY token");
		return;
	}
	struct buf left = BUF_INIT;
	uv_stream_t *stream = agent_ws_accept(req, &left);
	if (!stream) {
		buf_release(&left);
		return;
	}
	struct pty_client *c = xcalloc(1, sizeof(*c));
	c->s = s;
	s->refs++;
	buf_add(&c->pending, s->history.data ? s->history.data : "", s->history.len);
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	if (s->alive)
		session_timer(s, 0, NULL); /* attached: no idle kill */
	struct ws_conn_config cfg;
	ws_conn_config_defaults(&cfg);
	cfg.max_message = 64 * 1024;
	cfg.ping_interval_ms = a->cfg.ws_ping_ms;
	c->ws = ws_conn_new(stream, &cfg, &client_ops, c, left.data, left.len);
	buf_release(&left);
}

bool pty_any_alive(struct agent *a)
{
	return live_sessions(a) > 0;
}

void pty_kill_all(struct agent *a, int sig)
{
	for (struct pty_session *s = a->ptys; s; s = s->next)
		if (s->alive)
			kill(-s->pid, sig);
}

void pty_detach_all(struct agent *a)
{
	for (struct pty_session *s = a->ptys; s; s = s->next)
		for (struct pty_client *c = s->clients, *next; c; c = next) {
			next = c->next;
			client_close(c, WS_CLOSE_GOING_AWAY, "sandbox suspending");
		}
}

void pty_free_all(struct agent *a)
{
	while (a->ptys) {
		struct pty_session *s = a->ptys;
		for (struct pty_client *c = s->clients; c; c = c->next)
			client_close(c, WS_CLOSE_GOING_AWAY, "session terminated");
		session_remove(s);
	}
}
