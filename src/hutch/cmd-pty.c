/* hutch pty: an interactive terminal in a sandbox over the agent's PTY WebSocket (one-byte
 * opcodes, reference §5.5): raw mode on the local tty, SIGWINCH resizes the remote terminal, and
 * the remote process's exit code becomes hutch's. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

enum pty_op { PTY_DATA = 0, PTY_RESIZE = 1, PTY_READY = 2, PTY_EXIT = 3 };

#define PTY_CHUNK         (16 * 1024)
#define PTY_DEFAULT_SHELL "command -v bash >/dev/null 2>&1 && exec bash -l; exec sh -l"

const char cli_pty_help[] =
        "hutch pty ID|NAME [--env K=V]... [--workdir DIR] [--] [COMMAND [ARG...]]\n"
        "  Opens an interactive terminal in the sandbox (default: a login shell, bash when the\n"
        "  image has it). The local terminal is put in raw mode and resizes follow the window.\n"
        "  hutch exits with the remote command's exit code (128+N when it died of signal N).";

static struct termios saved_tio;
static bool tty_is_raw;
static int sig_pipe[2] = {-1, -1};

static void tty_restore(void)
{
	if (tty_is_raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tty_is_raw = false;
}

static void tty_raw(void)
{
	struct termios t;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	t = saved_tio;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) {
		tty_is_raw = true;
		atexit(tty_restore);
	}
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a signal is already pending */
	}
	errno = saved;
}

static int signals_setup(void)
{
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL); /* only reaches us when the tty is not raw */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* The local window size (80x24 when there is no terminal). */
static void window_size(unsigned *ret_cols, unsigned *ret_rows)
{
	struct winsize w = {0};
	if ((ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) < 0 || !w.ws_col) &&
	    (ioctl(STDIN_FILENO, TIOCGWINSZ, &w) < 0 || !w.ws_col))
		w.ws_col = 80, w.ws_row = 24;
	*ret_cols = w.ws_col;
	*ret_rows = w.ws_row ? w.ws_row : 24;
}

static int send_resize(struct cli_ws *ws)
{
	unsigned cols, rows;
	window_size(&cols, &rows);
	uint8_t m[5] = {PTY_RESIZE, (uint8_t)(cols >> 8), (uint8_t)cols, (uint8_t)(rows >> 8),
	                (uint8_t)rows};
	return cli_ws_send(ws, WS_OP_BINARY, NULL, 0, m, sizeof(m));
}

/* Parses options and the command into a PTY create body. */
static int pty_parse(int argc, char **argv, const char **ret_id, json_t *body)
{
	json_t *env = json_object();
	const char *term = getenv("TERM");
	json_object_set_new(env, "TERM", json_string(term && term[0] ? term : "xterm-256color"));
	json_object_set_new(body, "env", env);
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
		if ((strcmp(argv[i], "--env") == 0 || strcmp(argv[i], "-e") == 0) && i + 1 < argc) {
			const char *v = argv[++i], *eq = strchr(v, '=');
			if (!eq)
				return cli_error("--env expects KEY=VALUE"), 2;
			_cleanup_free_ char *k = xstrndup(v, (size_t)(eq - v));
			json_object_set_new(env, k, json_string(eq + 1));
		} else if ((strcmp(argv[i], "--workdir") == 0 || strcmp(argv[i], "-w") == 0) &&
		           i + 1 < argc) {
			json_object_set_new(body, "working_dir", json_string(argv[++i]));
		} else {
			return cli_usage(cli_pty_help);
		}
	}
	if (i < argc && strcmp(argv[i], "--") != 0)
		*ret_id = argv[i++];
	if (!*ret_id)
		return cli_usage(cli_pty_help);
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	json_t *args = json_array();
	if (i < argc) {
		json_object_set_new(body, "command", json_string(argv[i]));
		for (i++; i < argc; i++)
			json_array_append_new(args, json_string(argv[i]));
	} else {
		json_object_set_new(body, "command", json_string("/bin/sh"));
		json_array_append_new(args, json_string("-c"));
		json_array_append_new(args, json_string(PTY_DEFAULT_SHELL));
	}
	json_object_set_new(body, "args", args);
	return 0;
}

/* POST /api/v1/pty; returns the session id and token (malloc'd). */
static int pty_session_create(struct cli_target *t, json_t *body, char **ret_sid, char **ret_tok)
{
	unsigned cols, rows;
	window_size(&cols, &rows);
	json_object_set_new(body, "cols", json_integer(cols));
	json_object_set_new(body, "rows", json_integer(rows));
	_cleanup_free_ char *s = json_dumps(body, JSON_COMPACT);
	struct cli_response r;
	if (cli_agent(t, "POST", "/api/v1/pty", s, strlen(s), "application/json", &r) < 0)
		return -EIO;
	int rc = -EIO;
	json_t *v = r.status < 300 ? cli_json(&r) : NULL;
	const char *sid = json_string_value(json_object_get(v, "session_id"));
	const char *tok = json_string_value(json_object_get(v, "token"));
	if (r.status >= 300) {
		cli_fail(&r, "pty");
	} else if (!sid || !tok) {
		cli_error("pty: the answer has no session_id/token");
	} else {
		*ret_sid = xstrdup(sid);
		*ret_tok = xstrdup(tok);
		rc = 0;
	}
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

/* Like the SDK: a session we could not attach to is not left behind. */
static void pty_session_delete(struct cli_target *t, const char *sid)
{
	_cleanup_free_ char *path = xasprintf("/api/v1/pty/%s", sid);
	struct cli_response r;
	if (cli_agent(t, "DELETE", path, NULL, 0, NULL, &r) == 0)
		cli_response_release(&r);
}

struct pty_run {
	struct cli_ws ws;
	bool stdin_open;
	bool got_exit;
	int exit_code;
	bool done;
	int result; /* hutch's exit status once done */
};

static int exit_status(int code)
{
	return code < 0 ? 128 + ((-code) & 0x7f) : code & 0xff;
}

/* A close from the server ends the session; works out what it means. */
static void pty_on_close(struct pty_run *p)
{
	const char *reason = p->ws.close_reason;
	p->done = true;
	if (p->got_exit) {
		p->result = exit_status(p->exit_code);
	} else if (strncmp(reason, "exit:", 5) == 0) {
		char *end;
		long c = strtol(reason + 5, &end, 10);
		p->result = end != reason + 5 && !*end ? exit_status((int)c) : 255;
	} else if (strcmp(reason, "session terminated") == 0) {
		tty_restore();
		p->result = cli_error("pty: the session was terminated");
	} else {
		tty_restore();
		p->result = cli_error("pty: the connection closed unexpectedly (%u %s)",
		                      p->ws.close_code, reason);
	}
}

static int pty_from_remote(struct pty_run *p)
{
	int n = cli_ws_fill(&p->ws);
	struct ws_event ev;
	int rc;
	while ((rc = cli_ws_next(&p->ws, &ev)) == 1) {
		if (ev.opcode == WS_OP_CLOSE) {
			pty_on_close(p);
			return 0;
		}
		if (ev.opcode != WS_OP_BINARY || ev.len < 1)
			continue; /* text frames and unknown opcodes are ignored, like the SDK */
		if (ev.data[0] == PTY_DATA && write_all(STDOUT_FILENO, ev.data + 1, ev.len - 1) < 0)
			return -EPIPE;
		if (ev.data[0] == PTY_EXIT && ev.len >= 5) {
			p->exit_code =
			        (int32_t)((uint32_t)ev.data[1] << 24 | (uint32_t)ev.data[2] << 16 |
			                  (uint32_t)ev.data[3] << 8 | ev.data[4]);
			p->got_exit = true;
			cli_ws_close(&p->ws, WS_CLOSE_NORMAL, "");
		}
	}
	if (rc < 0 || n < 0) {
		p->done = true;
		if (p->got_exit) {
			p->result = exit_status(p->exit_code);
		} else {
			tty_restore();
			p->result = cli_error("pty: the connection was lost");
		}
	}
	return 0;
}

static int pty_from_local(struct pty_run *p)
{
	char chunk[PTY_CHUNK];
	uint8_t op = PTY_DATA;
	ssize_t n;
	do
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return cli_ws_send(&p->ws, WS_OP_BINARY, &op, 1, chunk, (size_t)n);
	p->stdin_open = false;
	/* input from a pipe or file ended: send ^D as a terminal would */
	return tty_is_raw ? 0 : cli_ws_send(&p->ws, WS_OP_BINARY, &op, 1, "\x04", 1);
}

static void pty_on_signal(struct pty_run *p)
{
	char sigs[16];
	ssize_t n = read(sig_pipe[0], sigs, sizeof(sigs));
	for (ssize_t i = 0; i < n; i++) {
		if (sigs[i] == SIGWINCH) {
			send_resize(&p->ws);
			continue;
		}
		/* SIGTERM/SIGHUP/SIGINT: leave the session running, like a dropped ssh */
		cli_ws_close(&p->ws, WS_CLOSE_NORMAL, "client disconnect");
		p->done = true;
		p->result = 128 + sigs[i];
	}
}

static int pty_loop(struct pty_run *p)
{
	while (!p->done) {
		struct pollfd fds[3] = {{.fd = p->ws.fd, .events = POLLIN},
		                        {.fd = sig_pipe[0], .events = POLLIN},
		                        {.fd = STDIN_FILENO, .events = POLLIN}};
		/* piped input that ended: ^D again every second until the remote side ends (a
		 * shell may have swallowed the first with the rest of a read) */
		bool nudge = !p->stdin_open && !tty_is_raw && !p->got_exit;
		int n = poll(fds, p->stdin_open ? 3 : 2, p->got_exit ? 2000 : nudge ? 1000 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && nudge) {
			uint8_t op = PTY_DATA;
			if (cli_ws_send(&p->ws, WS_OP_BINARY, &op, 1, "\x04", 1) < 0)
				return cli_error("pty: sending input failed");
			continue;
		}
		if (n <= 0) {
			p->done = true;
			p->result = p->got_exit ? exit_status(p->exit_code) : 1;
			break;
		}
		if (fds[1].revents)
			pty_on_signal(p);
		if (fds[0].revents && pty_from_remote(p) < 0)
			return 1;
		if (!p->done && p->stdin_open && fds[2].revents && pty_from_local(p) < 0)
			return cli_error("pty: sending input failed");
	}
	return p->result;
}

int cmd_pty(int argc, char **argv)
{
	const char *id = NULL;
	json_t *body = json_object();
	int rc = pty_parse(argc, argv, &id, body);
	struct cli_target t;
	if (rc || cli_target_for(id, &t) < 0) {
		json_decref(body);
		return rc ? rc : 1;
	}
	_cleanup_free_ char *sid = NULL, *tok = NULL;
	rc = pty_session_create(&t, body, &sid, &tok);
	json_decref(body);
	struct pty_run p = {.stdin_open = true};
	if (rc == 0 && signals_setup() < 0)
		rc = cli_error("pty: %s", strerror(errno));
	if (rc == 0) {
		_cleanup_free_ char *path = xasprintf("/api/v1/pty/%s/ws?token=%s", sid, tok);
		_cleanup_free_ char *hdr = xasprintf("X-PTY-Token: %s", tok);
		const char *headers[] = {hdr, NULL};
		rc = cli_ws_connect(&t, path, headers, &p.ws);
		if (rc < 0)
			pty_session_delete(&t, sid);
	}
	uint8_t ready = PTY_READY;
	if (rc == 0 &&
	    (cli_ws_send(&p.ws, WS_OP_BINARY, NULL, 0, &ready, 1) < 0 || send_resize(&p.ws) < 0))
		rc = cli_error("pty: the connection closed at once");
	if (rc == 0) {
		tty_raw();
		rc = pty_loop(&p);
		tty_restore();
	} else {
		rc = 1;
	}
	if (p.ws.curl)
		cli_ws_release(&p.ws);
	cli_target_release(&t);
	return rc;
}
