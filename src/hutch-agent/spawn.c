/* Starting child processes: fork, then in the child reset signals, start a new session (and take
 * the PTY as controlling terminal), undo the agent's OOM protection, switch credentials, change
 * directory, close every inherited fd but 0-2 and exec, searching PATH from the child's own
 * environment. A failure before exec travels back on a close-on-exec pipe as (stage, errno). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "agent.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

enum spawn_stage { ST_FDS = 1, ST_CREDS, ST_CWD, ST_EXEC };

struct spawn_fail {
	int stage;
	int err;
};

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* Index of the entry with the same "K=" in env, or -1. */
static long env_find(char **env, size_t n, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], kv, klen) == 0 && env[i][klen] == '=')
			return (long)i;
	return -1;
}

static void env_set(char ***env, size_t *n, const char *kv, bool overwrite)
{
	long i = env_find(*env, *n, kv);
	if (i >= 0) {
		if (!overwrite)
			return;
		free((*env)[i]);
		(*env)[i] = xstrdup(kv);
		return;
	}
	*env = xreallocarray(*env, *n + 2, sizeof(char *));
	(*env)[(*n)++] = xstrdup(kv);
	(*env)[*n] = NULL;
}

char **env_merge(char *const *base, char *const *over, const char *home)
{
	size_t n = 0;
	char **env = xcalloc(strv_len(base) + 1, sizeof(char *));
	for (size_t i = 0; base && base[i]; i++)
		env[n++] = xstrdup(base[i]);
	for (size_t i = 0; over && over[i]; i++)
		env_set(&env, &n, over[i], true);
	if (home && home[0]) {
		_cleanup_free_ char *kv = xasprintf("HOME=%s", home);
		bool user_set = false;
		for (size_t i = 0; over && over[i]; i++)
			user_set |= strncmp(over[i], "HOME=", 5) == 0;
		env_set(&env, &n, kv, !user_set);
	}
	return env;
}

static void child_fail(int errfd, int stage)
{
	struct spawn_fail f = {stage, errno};
	if (write(errfd, &f, sizeof(f)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

static void child_reset_signals(void)
{
	sigset_t all;
	struct sigaction sa = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

/* dup2 that also clears close-on-exec when the fd is already in place. */
static int child_dup(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

static int child_fds(const struct spawn_opts *o)
{
	if (o->pty && ioctl(o->fd_in, TIOCSCTTY, 0) < 0)
		return -1;
	if (child_dup(o->fd_in, 0) < 0 || child_dup(o->fd_out, 1) < 0 ||
	    child_dup(o->fd_err, 2) < 0)
		return -1;
	/* every other inherited fd goes at exec (the error pipe must live until then) */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return 0;
}

static int child_creds(const struct agent_user *u)
{
	if (!u)
		return 0;
	if (setgroups(u->ngroups, u->groups) < 0 && !(errno == EPERM && getuid() == u->uid))
		return -1;
	if (setgid(u->gid) < 0 || setuid(u->uid) < 0)
		return -1;
	return 0;
}

static const char *env_path(char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			return envp[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* execvpe with the PATH of the child's environment; uses only a stack buffer. */
static void child_exec(char *const *argv, char *const *envp)
{
	const char *cmd = argv[0];
	if (strchr(cmd, '/')) {
		execve(cmd, argv, envp);
		return;
	}
	char path[4096];
	size_t clen = strlen(cmd);
	int saved = ENOENT;
	for (const char *p = env_path(envp);; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		if (dlen + clen + 2 <= sizeof(path)) {
			memcpy(path, p, dlen);
			path[dlen] = '/';
			memcpy(path + dlen + (dlen ? 1 : 0), cmd, clen + 1);
			execve(path, argv, envp);
			if (errno == EACCES)
				saved = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR)
				return;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = saved;
}

static void child_main(const struct spawn_opts *o, int errfd)
{
	child_reset_signals();
	setsid();
	if (child_fds(o) < 0)
		child_fail(errfd, ST_FDS);
	if (o->reset_oom_score) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "0", 1) < 0) {
				/* best effort: the process just keeps the agent's score */
			}
			close(fd);
		}
	}
	if (child_creds(o->user) < 0)
		child_fail(errfd, ST_CREDS);
	if (o->cwd && chdir(o->cwd) < 0)
		child_fail(errfd, ST_CWD);
	child_exec(o->argv, o->envp);
	child_fail(errfd, ST_EXEC);
}

static int report_failure(const struct spawn_opts *o, const struct spawn_fail *f,
                          struct hutch_error *err)
{
	errno = f->err;
	switch (f->stage) {
	case ST_CREDS:
		return hutch_error_errno(err, "cannot switch to user %u:%u",
		                         o->user ? o->user->uid : 0, o->user ? o->user->gid : 0);
	case ST_CWD:
		return hutch_error_errno(err, "cannot change to working directory \"%s\"", o->cwd);
	case ST_EXEC:
		return hutch_error_errno(err, "cannot execute \"%s\"", o->argv[0]);
	default:
		return hutch_error_errno(err, "cannot set up the process's files");
	}
}

int spawn_process(const struct spawn_opts *o, pid_t *ret_pid, struct hutch_error *err)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return hutch_error_errno(err, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int r = hutch_error_errno(err, "fork");
		close(ep[0]);
		close(ep[1]);
		return r;
	}
	if (pid == 0) {
		close(ep[0]);
		child_main(o, ep[1]);
	}
	close(ep[1]);
	struct spawn_fail f;
	ssize_t n;
	do
		n = read(ep[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(f)) {
		/* the child is about to _exit: collect it here so the reaper never sees it */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return report_failure(o, &f, err);
	}
	*ret_pid = pid;
	return 0;
}
