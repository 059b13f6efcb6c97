/* hutch-agent's entry point: configuration from flags and the runtime's environment, PID 1 duties
 * (reaping every child, orphans included; SIGTERM shutdown; SIGPIPE ignored), the listeners and
 * the readiness byte, and the entrypoint. Runs as an ordinary process (a child subreaper) too. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/client.h"
#include "agent.h"

extern char **environ;

static void config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_path = "/run/hutch/agent.sock";
	c->ready_fd = -1;
	c->exit_reason_file = "/run/hutch/exit-reason";
	c->passwd_path = "/etc/passwd";
	c->group_path = "/etc/group";
	c->max_output_bytes = 8 * 1024 * 1024;
	c->max_output_lines = 100000;
	c->max_line_bytes = 64 * 1024;
	c->max_exited = 1000;
	c->max_exited_bytes = 64 * 1024 * 1024;
	c->max_running = 4096;
	c->max_json_body = 1024 * 1024;
	c->keepalive_ms = 15000;
	c->shutdown_grace_ms = 5000;
	c->exit_drain_ms = 100;
	c->max_ptys = 64;
	c->pty_history_bytes = 1024 * 1024;
	c->pty_idle_kill_ms = 300000;
	c->pty_reap_ms = 60000;
	c->ws_ping_ms = 30000;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: hutch-agent [--socket PATH] [--listen ADDR:PORT] [--max-output-bytes N]\n"
	        "                   [--max-output-lines N] [--max-exited N] [--max-exited-bytes N] [--tunnel-502]\n"
	        "Environment: HUTCH_AGENT_SOCKET, HUTCH_READY_FD, HUTCH_OOM_FILE,\n"
	        "HUTCH_ENTRYPOINT_FILE, HUTCH_EXIT_REASON_FILE, HUTCH_AGENT_LOG_LEVEL.\n"
	        "Test knobs: HUTCH_AGENT_PTY_IDLE_MS, HUTCH_AGENT_PTY_REAP_MS,\n"
	        "HUTCH_AGENT_KEEPALIVE_MS, HUTCH_AGENT_WS_PING_MS.\n");
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	uint64_t n;
	return v && sv_to_u64(sv_from(v), UINT64_MAX, &n) == 0 ? n : def;
}

static size_t arg_size(const char *s)
{
	uint64_t v;
	if (sv_to_u64(sv_from(s), SIZE_MAX, &v) < 0 || v == 0)
		fatal("not a positive number: %s", s);
	return (size_t)v;
}

static void config_from_env(struct agent_config *c)
{
	const char *v;
	if ((v = getenv("HUTCH_AGENT_SOCKET")) && *v)
		c->socket_path = v;
	if ((v = getenv("HUTCH_READY_FD")) && *v)
		c->ready_fd = (int)env_u64("HUTCH_READY_FD", (uint64_t)-1);
	if ((v = getenv("HUTCH_OOM_FILE")) && *v)
		c->oom_file = v;
	if ((v = getenv("HUTCH_ENTRYPOINT_FILE")) && *v)
		c->entrypoint_file = v;
	if ((v = getenv("HUTCH_EXIT_REASON_FILE")) && *v)
		c->exit_reason_file = v;
	c->pty_idle_kill_ms = env_u64("HUTCH_AGENT_PTY_IDLE_MS", c->pty_idle_kill_ms);
	c->pty_reap_ms = env_u64("HUTCH_AGENT_PTY_REAP_MS", c->pty_reap_ms);
	c->keepalive_ms = env_u64("HUTCH_AGENT_KEEPALIVE_MS", c->keepalive_ms);
	c->ws_ping_ms = env_u64("HUTCH_AGENT_WS_PING_MS", c->ws_ping_ms);
}

static void parse_args(int argc, char **argv, struct agent_config *c)
{
	static const struct option opts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"listen", required_argument, NULL, 'l'},
	        {"max-output-bytes", required_argument, NULL, 'b'},
	        {"max-output-lines", required_argument, NULL, 'n'},
	        {"max-exited", required_argument, NULL, 'x'},
	        {"max-exited-bytes", required_argument, NULL, 'X'},
	        {"tunnel-502", no_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "s:l:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			c->socket_path = optarg;
			break;
		case 'l':
			c->tcp_addr = optarg;
			break;
		case 'b':
			c->max_output_bytes = arg_size(optarg);
			break;
		case 'n':
			c->max_output_lines = arg_size(optarg);
			break;
		case 'x':
			c->max_exited = arg_size(optarg);
			break;
		case 'X':
			c->max_exited_bytes = arg_size(optarg);
			break;
		case 't':
			c->tunnel_refused_502 = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (c->max_line_bytes > c->max_output_bytes)
		c->max_line_bytes = c->max_output_bytes;
}

/* The children's base environment: ours, minus the runtime's control variables. */
static char **base_env(void)
{
	static const char *const drop[] = {
	        "HUTCH_AGENT_SOCKET=", "HUTCH_READY_FD=", "HUTCH_OOM_FILE=",
	        "HUTCH_ENTRYPOINT_FILE=", "HUTCH_EXIT_REASON_FILE="};
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **v = xcalloc(n + 1, sizeof(char *));
	n = 0;
	for (char **e = environ; *e; e++) {
		bool skip = false;
		for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
			skip |= strncmp(*e, drop[i], strlen(drop[i])) == 0;
		if (!skip)
			v[n++] = xstrdup(*e);
	}
	return v;
}

/* fds 0-2 must exist, or a pipe could land on them and be lost at exec. */
static void std_fds_open(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR); /* lint: allow (must be inherited) */
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

static int read_oom_score_adj(void)
{
	struct buf b = BUF_INIT;
	int v = 0;
	if (read_file("/proc/self/oom_score_adj", 64, &b) == 0)
		v = atoi(buf_cstr(&b));
	buf_release(&b);
	return v;
}

/* ---- signals ---- */

static void on_sigchld(uv_signal_t *h, int sig)
{
	struct agent *a = h->data;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		proc_reaped(a, pid, status);
	}
	agent_exit_check(a);
}

static void kill_everything(struct agent *a, int sig)
{
	for (struct proc *p = a->procs_head; p; p = p->next)
		proc_kill(p, sig, true);
	pty_kill_all(a, sig);
	if (a->pid1)
		kill(-1, sig); /* everything else in the sandbox's pid namespace, orphans too */
}

static void shutdown_timeout(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (a->killed_all) {
		uv_stop(a->loop); /* something would not die even from SIGKILL: leave anyway */
		return;
	}
	log_warn("children still running after %llu ms: sending SIGKILL",
	         (unsigned long long)a->cfg.shutdown_grace_ms);
	a->killed_all = true;
	kill_everything(a, SIGKILL);
	/* reap them before leaving, so no zombie is handed to our parent */
	uv_timer_start(&a->shutdown_timer, shutdown_timeout, 2000, 0);
}

static void agent_shutdown(struct agent *a)
{
	if (a->shutting_down)
		return;
	a->shutting_down = true;
	log_info("shutting down");
	for (struct proc *p = a->procs_head; p; p = p->next)
		managed_stop(p);
	kill_everything(a, SIGTERM);
	uv_timer_start(&a->shutdown_timer, shutdown_timeout, a->cfg.shutdown_grace_ms, 0);
	agent_exit_check(a);
}

void agent_exit_check(struct agent *a)
{
	if (a->exit_status && !a->shutting_down) {
		agent_shutdown(a); /* the entrypoint was OOM-killed: the sandbox ends */
		return;
	}
	if (a->shutting_down && a->nrunning == 0 && !pty_any_alive(a))
		uv_stop(a->loop);
}

static void on_sigterm(uv_signal_t *h, int sig)
{
	agent_shutdown(h->data);
}

/* SIGUSR2 from the host: the sandbox is about to be checkpointed. Every client connection (HTTP,
 * PTY and tunnel WebSockets) is closed, because the checkpoint cannot hold sockets whose other
 * end is outside the sandbox; then "clients-dropped" is written next to the socket so the host
 * knows. Processes and PTY sessions carry on; clients reconnect after the resume. */
static void on_sigusr2(uv_signal_t *h, int sig)
{
	struct agent *a = h->data;
	http_server_drop_connections(a->srv);
	pty_detach_all(a);
	tunnel_close_all(a);
	const char *sock = a->cfg.socket_path;
	const char *slash = strrchr(sock, '/');
	char path[512];
	snprintf(path, sizeof(path), "%.*s/clients-dropped", slash ? (int)(slash - sock) : 1,
	         slash ? sock : ".");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	log_info("client connections closed for a checkpoint");
}

static void keepalive_tick(uv_timer_t *t)
{
	proc_subs_keepalive(t->data);
}

/* ---- start-up ---- */

static void start_entrypoint(struct agent *a)
{
	struct buf b = BUF_INIT;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct proc_spec *spec;
	struct proc *p;
	int r = read_file(a->cfg.entrypoint_file, 1024 * 1024, &b);
	if (r == -ENOENT) {
		buf_release(&b);
		return;
	}
	if (r < 0 || proc_spec_from_argv_json(buf_cstr(&b), b.len, &spec, &err) < 0) {
		log_error("entrypoint %s: %s", a->cfg.entrypoint_file,
		          r < 0 ? strerror(-r) : err.msg);
		buf_release(&b);
		return;
	}
	buf_release(&b);
	if (proc_start(a, spec, &p, &err) < 0) {
		log_error("entrypoint: %s", err.msg);
		proc_spec_free(spec);
		return;
	}
	a->entrypoint = p;
	log_info("entrypoint started as pid %d", (int)p->pid);
}

static void signal_ready(struct agent *a)
{
	int fd = a->cfg.ready_fd;
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0)
		log_warn("HUTCH_READY_FD %d: %s", fd, strerror(errno));
	close(fd);
	a->cfg.ready_fd = -1;
}

static int agent_listen(struct agent *a)
{
	_cleanup_free_ char *dir = xstrdup(a->cfg.socket_path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir, 0755);
	}
	_cleanup_free_ char *addr = xasprintf("unix:%s", a->cfg.socket_path);
	int r = http_server_listen(a->srv, addr, NULL);
	if (r < 0) {
		log_error("listen on %s: %s", a->cfg.socket_path, uv_strerror(r));
		return r;
	}
	if (a->cfg.tcp_addr && (r = http_server_listen(a->srv, a->cfg.tcp_addr, NULL)) < 0) {
		log_error("listen on %s: %s", a->cfg.tcp_addr, uv_strerror(r));
		return r;
	}
	return 0;
}

static void agent_init(struct agent *a, uv_loop_t *loop)
{
	struct http_server_config hc;
	a->loop = loop;
	a->started_at = time_now_ms();
	a->started_mono_ms = time_mono_ms();
	a->pid1 = getpid() == 1;
	a->oom_score_adj = read_oom_score_adj();
	a->base_env = base_env();
	agent_oom_init(a);
	http_server_config_defaults(&hc);
	hc.max_connections = 4096;
	hc.write_high_water = 256 * 1024;
	a->srv = http_server_new(loop, &hc, agent_dispatch, a);
	a->hc = http_client_new(loop);
	uv_signal_init(loop, &a->sig_chld);
	uv_signal_init(loop, &a->sig_term);
	uv_signal_init(loop, &a->sig_int);
	a->sig_chld.data = a->sig_term.data = a->sig_int.data = a;
	uv_signal_start(&a->sig_chld, on_sigchld, SIGCHLD);
	uv_signal_start(&a->sig_term, on_sigterm, SIGTERM);
	uv_signal_start(&a->sig_int, on_sigterm, SIGINT);
	uv_signal_init(loop, &a->sig_usr2);
	a->sig_usr2.data = a;
	uv_signal_start(&a->sig_usr2, on_sigusr2, SIGUSR2);
	uv_timer_init(loop, &a->keepalive_timer);
	uv_timer_init(loop, &a->shutdown_timer);
	uv_timer_init(loop, &a->trim_timer);
	a->keepalive_timer.data = a->shutdown_timer.data = a->trim_timer.data = a;
	uv_timer_start(&a->keepalive_timer, keepalive_tick, a->cfg.keepalive_ms,
	               a->cfg.keepalive_ms);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Frees everything so that leak checkers see a clean exit. */
static void agent_release(struct agent *a)
{
	http_server_close(a->srv);
	http_client_free(a->hc);
	while (a->procs_head)
		proc_remove(a->procs_head);
	pty_free_all(a);
	uv_run(a->loop, UV_RUN_NOWAIT);
	uv_walk(a->loop, close_walk, NULL);
	uv_run(a->loop, UV_RUN_DEFAULT);
	strv_free(a->base_env);
}

int main(int argc, char **argv)
{
	struct agent a = {0};
	uv_loop_t loop;

	signal(SIGPIPE, SIG_IGN);
	std_fds_open();
	log_init("hutch-agent");
	const char *lvl = getenv("HUTCH_AGENT_LOG_LEVEL");
	if (lvl && log_level_parse(lvl) >= 0)
		log_set_level((enum log_level)log_level_parse(lvl));
	config_defaults(&a.cfg);
	config_from_env(&a.cfg);
	parse_args(argc, argv, &a.cfg);
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	if (a.cfg.ready_fd >= 0)
		fcntl(a.cfg.ready_fd, F_SETFD, FD_CLOEXEC);
	uv_loop_init(&loop);
	agent_init(&a, &loop);
	if (agent_listen(&a) < 0)
		return 1;
	signal_ready(&a);
	log_info("listening on %s (pid %d)", a.cfg.socket_path, (int)getpid());
	if (a.cfg.entrypoint_file)
		start_entrypoint(&a);
	uv_run(&loop, UV_RUN_DEFAULT);
	int status = a.exit_status;
	agent_release(&a);
	uv_loop_close(&loop);
	log_info("exiting with status %d", status);
	return status;
}
