/* hutch-agent: the in-sandbox daemon (PID 1 of every sandbox) serving the Tensorlake daemon API
 * (/api/v1/...) on a unix socket. This header holds the state shared by the agent's files: the
 * configuration, the agent itself, processes, managed supervision and the cross-file entry
 * points. Everything runs on one libuv loop thread. */
#ifndef HUTCH_AGENT_H
#define HUTCH_AGENT_H

#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/buf.h"
#include "base/error.h"
#include "http/http.h"
#include "jsonw.h"
#include "outlog.h"
#include "user.h"

struct agent_config {
	const char *socket_path;     /* unix socket to serve on */
	const char *tcp_addr;        /* optional extra TCP listener ("127.0.0.1:9501") */
	int ready_fd;                /* written and closed once listening; -1 = none */
	const char *oom_file;        /* memory.events / memory.oom_control; NULL = none */
	const char *entrypoint_file; /* JSON array started at boot; NULL = none */
	const char *exit_reason_file;
	const char *passwd_path, *group_path;
	size_t max_output_bytes; /* captured bytes kept per stream */
	size_t max_output_lines; /* captured lines kept per stream */
	size_t max_line_bytes;   /* longer lines are split */
	size_t max_exited;       /* exited processes kept in the table */
	size_t max_exited_bytes; /* captured output they keep, all together */
	size_t max_running;      /* live processes started through the API */
	size_t max_json_body;
	uint64_t keepalive_ms;      /* SSE keep-alive comments */
	uint64_t shutdown_grace_ms; /* SIGTERM to SIGKILL on shutdown */
	uint64_t exit_drain_ms;     /* wait for pipe EOF after a process exited */
	size_t max_ptys;
	size_t pty_history_bytes;
	uint64_t pty_idle_kill_ms; /* kill a PTY this long after its last client left */
	uint64_t pty_reap_ms;      /* forget an ended PTY this long after it ended */
	uint64_t ws_ping_ms;
	bool tunnel_refused_502; /* answer 502 instead of 101 + close 1011 */
};

enum proc_state {
	PROC_RUNNING,
	PROC_EXITED,
	PROC_SIGNALED,
};

enum out_stream { OUT_STDOUT = 0, OUT_STDERR = 1 };

enum restart_policy { RESTART_NEVER, RESTART_ON_FAILURE, RESTART_ALWAYS };
enum health_type { HEALTH_NONE, HEALTH_HTTP, HEALTH_TCP };

/* What to run: the parsed StartProcess / RunProcess body (owned strings). */
struct proc_spec {
	char **argv; /* argv[0] = command; NULL-terminated */
	size_t argc;
	char **env; /* "K=V" overrides; NULL-terminated */
	char *working_dir;
	char *user; /* spec string ("name", "uid", "uid:gid") or NULL */
	bool stdin_pipe;
	bool discard[2];
	double timeout_s; /* run only; 0 = none */
	/* supervision */
	bool managed;
	char *name;
	enum restart_policy policy;
	int64_t max_restarts; /* -1 = unlimited */
	uint64_t initial_backoff_ms, max_backoff_ms;
	enum health_type health;
	int health_port;
	char *health_path;
	uint64_t health_initial_delay_ms, health_interval_ms, health_timeout_ms;
	uint64_t health_failure_threshold;
};

struct proc_out {
	int fd; /* -1 once closed */
	uv_poll_t *poll;
	bool polling;
	struct linesplit split;
	struct outlog log;
};

struct sub;
struct managed;

struct proc {
	struct proc *prev, *next;
	struct agent *a;
	struct proc_spec *spec;
	int64_t handle; /* 1, 2, ... in start order (the SDK reads an integer) */
	pid_t pid;
	enum proc_state state;
	int exit_code, signal;
	bool oom_killed;
	int64_t started_at, ended_at;
	bool reaped;       /* the pid has exited */
	bool output_done;  /* both output streams reached EOF (for this run) */
	bool run_finished; /* proc_finish ran for this run */
	/* stdin */
	uv_pipe_t *stdin_pipe;
	size_t stdin_queued;
	bool stdin_closing;
	struct proc_out out[2];
	uint64_t next_seq;
	uv_timer_t *timer; /* run timeout, then exit drain */
	struct sub *subs;
	size_t paused_by;  /* run subscribers under back-pressure */
	struct managed *m; /* NULL when unsupervised */
	bool removed;      /* DELETE'd or evicted: free once nothing refers to it */
	int refs;
};

struct managed {
	char id[32];
	bool named;
	enum { MANAGED_STARTING, MANAGED_RUNNING, MANAGED_BACKING_OFF, MANAGED_STOPPED } status;
	uint64_t restart_count;
	enum { HEALTH_DISABLED, HEALTH_STARTING, HEALTH_HEALTHY, HEALTH_UNHEALTHY } health;
	uint64_t consecutive_failures;
	bool has_last_exit;
	int last_exit_code, last_signal;
	bool last_oom;
	int64_t last_ended_at;
	char last_error[256];
	int64_t next_restart_at; /* 0 = none */
	uint64_t backoff_ms;
	uv_timer_t *restart_timer;
	uv_timer_t *health_timer;
	struct health_probe *probe;       /* in flight */
	struct http_request *restart_req; /* a POST .../restart waiting for the new run */
};

struct agent {
	uv_loop_t *loop;
	struct agent_config cfg;
	struct http_server *srv;
	struct http_client *hc;
	int64_t started_at;
	uint64_t started_mono_ms;
	bool pid1;
	bool shutting_down;
	bool killed_all;                      /* shutdown escalated to SIGKILL */
	struct proc *procs_head, *procs_tail; /* in start order */
	size_t nprocs, nrunning, nfinished;
	struct pty_session *ptys;
	size_t nptys;
	struct tunnel *tunnels; /* open tunnel WebSockets */
	uv_signal_t sig_usr2;
	struct proc *entrypoint;
	uint64_t oom_count;
	int64_t last_handle;
	int oom_score_adj;
	char **base_env; /* the agent's environment, minus its own control variables */
	uv_signal_t sig_chld, sig_term, sig_int;
	uv_timer_t keepalive_timer, shutdown_timer;
	uv_timer_t trim_timer; /* a deferred proc_table_trim (safe point, not inside a walk) */
	int exit_status;
};

/* ---- api.c ---- */
void agent_dispatch(struct http_request *req, void *data);
/* JSON error {"error","code"}. */
void agent_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void agent_error_from(struct http_request *req, const struct hutch_error *err);
/* Gives err an API status and machine code, keeping its message. Returns err->code. */
int agent_error_classify(struct hutch_error *err, int status, const char *kind);
void agent_respond_json(struct http_request *req, int status, const struct buf *b);

/* ---- proc.c: the table and the lifecycle ---- */
/* Starts spec (ownership passes to the process on success). Returns 0 and the process, or a
 * negative code with err set (400-worthy for bad users / directories / commands). */
int proc_start(struct agent *a, struct proc_spec *spec, struct proc **ret, struct hutch_error *err);
/* Evicts the oldest finished processes beyond the caps (--max-exited, --max-exited-bytes). */
void proc_table_trim(struct agent *a);
/* Respawns a managed process in place (new pid, same name/output). */
int proc_respawn(struct proc *p, struct hutch_error *err);
/* By decimal pid or managed name; NULL when unknown. */
struct proc *proc_find(struct agent *a, const char *key);
/* Sends sig to the process (group = also to its process group). Returns 0 or -errno. */
int proc_kill(struct proc *p, int sig, bool group);
/* Marks the process deleted: it leaves the table, and is freed when nothing refers to it. */
void proc_remove(struct proc *p);
void proc_ref(struct proc *p);
void proc_unref(struct proc *p);
/* Called by the reaper for every waited-for pid. */
void proc_reaped(struct agent *a, pid_t pid, int status);
/* The process's run ended (exited and output drained): tell subscribers and supervision. */
void proc_finish(struct proc *p);
void proc_info_json(struct proc *p, struct jw *w);
/* The process's one timer (run timeout, then the exit drain); starting replaces it. */
void proc_timer_start(struct proc *p, uint64_t ms, uv_timer_cb cb);
void proc_timer_stop(struct proc *p);
/* True when the process will produce nothing more (ended, drained, not to be restarted). */
bool proc_over(const struct proc *p);
void agent_oom_init(struct agent *a);
void proc_spec_free(struct proc_spec *s);
bool proc_stdin_writable(const struct proc *p);
void proc_stdin_close(struct proc *p);

/* ---- proc_io.c: output capture and SSE subscribers ---- */
int proc_io_setup(struct proc *p, int fds[2]);
void proc_io_exited(struct proc *p);
void proc_io_close(struct proc *p);
void proc_io_pause(struct proc *p);
void proc_io_resume(struct proc *p);
enum sub_kind { SUB_STDOUT, SUB_STDERR, SUB_OUTPUT, SUB_RUN };
/* Attaches an SSE stream to p: replays the backlog, then live lines, then eof/exit. */
void sub_attach(struct proc *p, struct http_request *req, enum sub_kind kind);
/* Wakes the subscribers of p (new lines or the end of the output). */
void proc_subs_notify(struct proc *p);
void proc_subs_keepalive(struct agent *a);
/* Captured lines as {pid, lines, line_count}. */
void proc_output_json(struct proc *p, enum sub_kind kind, struct buf *out);

/* ---- proc_api.c ---- */
void api_process_start(struct http_request *req, struct agent *a);
void api_process_run(struct http_request *req, struct agent *a);
void api_process_list(struct http_request *req, struct agent *a);
void api_process_get(struct http_request *req, struct agent *a);
void api_process_delete(struct http_request *req, struct agent *a);
void api_process_signal(struct http_request *req, struct agent *a);
void api_process_restart(struct http_request *req, struct agent *a);
void api_process_stdin(struct http_request *req, struct agent *a);
void api_process_stdin_close(struct http_request *req, struct agent *a);
void api_process_output(struct http_request *req, struct agent *a);
void api_process_follow(struct http_request *req, struct agent *a);

/* ---- spec.c: request bodies to proc_spec ---- */
/* Parses a StartProcess (run = false) or RunProcess body. */
int proc_spec_parse(const char *body, size_t len, bool run, struct proc_spec **ret,
                    struct hutch_error *err);
/* The same from a parsed JSON object (the PTY create body uses its command/args/env/
 * working_dir/user fields). */
int proc_spec_from_json(json_t *o, bool run, struct proc_spec **ret, struct hutch_error *err);
/* Parses an entrypoint file (a JSON array of strings). */
int proc_spec_from_argv_json(const char *body, size_t len, struct proc_spec **ret,
                             struct hutch_error *err);

/* ---- spawn.c ---- */
struct spawn_opts {
	char *const *argv;
	char *const *envp;
	const char *cwd;
	const struct agent_user *user; /* NULL: keep the agent's credentials */
	int fd_in, fd_out, fd_err;
	bool pty; /* fd_in is the PTY slave: make it the controlling terminal */
	bool reset_oom_score;
};
/* fork + exec with the child's setup (signals, session, credentials, directory, fds); exec
 * failures are reported back through a close-on-exec pipe. Returns 0 and the pid, or a negative
 * errno with err set. */
int spawn_process(const struct spawn_opts *o, pid_t *ret_pid, struct hutch_error *err);
/* The agent's environment with overrides ("K=V") applied; NULL-terminated, malloc'd. */
char **env_merge(char *const *base, char *const *over, const char *home);
void strv_free(char **v);

/* ---- managed.c ---- */
struct managed *managed_new(struct proc_spec *spec);
void managed_free(struct agent *a, struct managed *m);
/* A managed process's run ended: restart per policy or stop. */
void managed_on_exit(struct proc *p);
void managed_on_start(struct proc *p);
/* Stops supervision (DELETE). */
void managed_stop(struct proc *p);
/* POST .../restart: kills the current run and answers req with the next one's ProcessInfo. */
void managed_restart(struct proc *p, struct http_request *req);
void managed_json(struct proc *p, struct jw *w);

/* ---- files.c ---- */
void api_files_get(struct http_request *req, struct agent *a);
void api_files_put(struct http_request *req, struct agent *a);
void api_files_delete(struct http_request *req, struct agent *a);
void api_files_list(struct http_request *req, struct agent *a);

/* ---- pty.c ---- */
void api_pty_create(struct http_request *req, struct agent *a);
void api_pty_list(struct http_request *req, struct agent *a);
void api_pty_get(struct http_request *req, struct agent *a);
void api_pty_delete(struct http_request *req, struct agent *a);
void api_pty_resize(struct http_request *req, struct agent *a);
void api_pty_ws(struct http_request *req, struct agent *a);
/* Returns true when the pid belonged to a PTY session. */
bool pty_reaped(struct agent *a, pid_t pid, int status);
void pty_kill_all(struct agent *a, int sig);
/* Closes every attached PTY client (sessions keep running; clients may re-attach). */
void pty_detach_all(struct agent *a);
/* Closes every tunnel. */
void tunnel_close_all(struct agent *a);
bool pty_any_alive(struct agent *a);
void pty_free_all(struct agent *a);

/* ---- tunnel.c ---- */
void api_tunnel_tcp(struct http_request *req, struct agent *a);

/* ---- ws glue (api.c) ---- */
/* Validates a WebSocket upgrade and answers it with 101; returns the taken-over stream and the
 * bytes read past the head, or NULL after answering with an error. */
uv_stream_t *agent_ws_accept(struct http_request *req, struct buf *leftover);

/* ---- main.c ---- */
void agent_exit_check(struct agent *a);

#endif
