/* hutchd: the server. The parent process is a small supervisor: it forks one child per role
 * (api, proxy, executor), restarts a child that dies, reaps orphans (it is a child subreaper so
 * sandboxes of a crashed executor are still reaped), and forwards SIGTERM/SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "config.h"

struct role {
	const char *name;
	int (*main)(struct hutchd_config *cfg);
	pid_t pid;
	uint64_t started_ms;
	unsigned restarts;
};

static struct role roles[] = {
        {"api", api_main, 0, 0, 0},
        {"executor", executor_main, 0, 0, 0},
        {"proxy", proxy_main, 0, 0, 0},
};

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	stopping = sig;
}

static char log_names[3][32];

static pid_t role_start(struct role *r, struct hutchd_config *cfg, int idx)
{
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork for role %s: %s", r->name, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		prctl(PR_SET_NAME, r->name);
		snprintf(log_names[idx], sizeof(log_names[idx]), "hutchd[%s]", r->name);
		log_init(log_names[idx]);
		log_set_level((enum log_level)log_level_parse(cfg->log_level));
		_exit(r->main(cfg));
	}
	r->pid = pid;
	r->started_ms = time_mono_ms();
	return pid;
}

/* Waits for children; restarts a role that died unexpectedly, with a growing delay. */
static void supervise(struct hutchd_config *cfg, size_t n)
{
	while (!stopping) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				sleep(1);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			struct role *r = &roles[i];
			if (r->pid != pid)
				continue;
			r->pid = 0;
			if (stopping)
				break;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
				log_error(
				        "role %s cannot run on this host (see above); not restarting",
				        r->name);
				break;
			}
			log_warn("role %s exited (%s %d); restarting", r->name,
			         WIFSIGNALED(status) ? "signal" : "status",
			         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			if (time_mono_ms() - r->started_ms < 5000 && r->restarts++ > 5)
				sleep(r->restarts > 10 ? 10 : r->restarts);
			else if (time_mono_ms() - r->started_ms >= 5000)
				r->restarts = 0;
			role_start(r, cfg, (int)i);
		}
		/* any other pid is an orphaned sandbox process: reaped, nothing else to do */
	}
}

static void stop_all(size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (roles[i].pid > 0)
			kill(roles[i].pid, SIGTERM);
	uint64_t deadline = time_mono_ms() + 10000;
	for (;;) {
		bool alive = false;
		for (size_t i = 0; i < n; i++)
			if (roles[i].pid > 0) {
				if (waitpid(roles[i].pid, NULL, WNOHANG) == roles[i].pid)
					roles[i].pid = 0;
				else
					alive = true;
			}
		if (!alive)
			return;
		if (time_mono_ms() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (roles[i].pid > 0)
					kill(roles[i].pid, SIGKILL);
			deadline = UINT64_MAX;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	struct hutchd_config cfg;
	struct hutch_error err = HUTCH_ERROR_INIT;

	log_init("hutchd");
	bool cleanup = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cleanup") == 0) {
			cleanup = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(char *));
			argc--;
			break;
		}
	}
	int rc = 0;
	if (hutchd_config_load(&cfg, argc, argv, &err) < 0) {
		log_error("%s", err.msg);
		rc = 2;
		goto out;
	}
	log_set_level((enum log_level)log_level_parse(cfg.log_level));
	if (cleanup) {
		rc = hutchd_cleanup(&cfg);
		goto out;
	}
	if (mkdir_p(cfg.data_dir, 0700) < 0) {
		log_error("cannot create data directory %s: %s", cfg.data_dir, strerror(errno));
		rc = 1;
		goto out;
	}
	/* the token the executor and proxy use on the internal API */
	if (hutchd_node_token_load(&cfg, hutchd_config_has_role(&cfg, "api"), &err) < 0) {
		log_error("%s", err.msg);
		rc = 1;
		goto out;
	}
	size_t n = sizeof(roles) / sizeof(roles[0]);
	size_t active = 0;
	for (size_t i = 0; i < n; i++) {
		if (!hutchd_config_has_role(&cfg, roles[i].name))
			continue;
		if (i != active) {
			struct role t = roles[active];
			roles[active] = roles[i];
			roles[i] = t;
		}
		active++;
	}
	if (active == 0) {
		log_error("no known role in --roles '%s' (api, proxy, executor)", cfg.roles);
		rc = 2;
		goto out;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	struct sigaction sa = {.sa_handler = on_stop};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("hutchd %s starting roles %s (data dir %s)", HUTCH_VERSION, cfg.roles,
	         cfg.data_dir);
	for (size_t i = 0; i < active; i++) {
		if (role_start(&roles[i], &cfg, (int)i) < 0) {
			rc = 1;
			goto out;
		}
		if (i == 0 && strcmp(roles[i].name, "api") == 0)
			usleep(1000); /* let the api bind first; others retry anyway */
	}
	supervise(&cfg, active);
	log_info("stopping (signal %d)", (int)stopping);
	stop_all(active);
out:
	hutchd_config_release(&cfg);
	return rc;
}
