/* Process commands over the sandbox agent: exec (streamed, exit code follows the remote
 * command), run (create + exec + terminate, never leaving the sandbox behind), ps, logs, kill. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cli.h"

static const char exec_usage[] =
        "hutch exec ID|NAME [--env K=V]... [--workdir DIR] [--timeout SECS] [--user USER]\n"
        "       [--detach [--name NAME]] [--] COMMAND [ARG...]";

struct exec_state {
	int exit_code;
	bool got_exit;
	bool out_broken; /* stdout or stderr could not be written (EPIPE with SIGPIPE ignored) */
};

static int on_run_event(const char *event, const char *data, size_t len, void *arg)
{
	struct exec_state *st = arg;
	json_t *v = json_loadb(data, len, 0, NULL);
	if (!v)
		return 0;
	json_t *line = json_object_get(v, "line");
	if (json_is_string(line)) {
		const char *stream = json_string_value(json_object_get(v, "stream"));
		FILE *out = stream && strcmp(stream, "stderr") == 0 ? stderr : stdout;
		fwrite(json_string_value(line), 1, json_string_length(line), out);
		fputc('\n', out);
		if (fflush(out) != 0 || ferror(out)) {
			st->out_broken = true;
			json_decref(v);
			return 1; /* nowhere to write: stop the stream */
		}
	} else if (json_is_integer(json_object_get(v, "exit_code"))) {
		st->exit_code = (int)json_integer_value(json_object_get(v, "exit_code"));
		st->got_exit = true;
	} else if (json_is_integer(json_object_get(v, "signal"))) {
		int sig = (int)json_integer_value(json_object_get(v, "signal"));
		st->exit_code = 128 + sig;
		st->got_exit = true;
		if (json_is_true(json_object_get(v, "oom_killed")))
			fprintf(stderr,
			        "hutch: the command was killed by the out-of-memory killer\n");
		else
			fprintf(stderr, "hutch: the command was killed by signal %d\n", sig);
	}
	json_decref(v);
	return 0;
}

/* Parses exec options into a process body; *ret_first is the index of COMMAND. */
static int exec_parse(int argc, char **argv, int start, json_t *body, bool *detach, int *ret_first)
{
	json_t *env = json_object();
	json_object_set_new(body, "env", env);
	int i = start;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (strcmp(a, "--detach") == 0 || strcmp(a, "-d") == 0) {
			*detach = true;
			continue;
		}
		if (i + 1 >= argc)
			return cli_usage(exec_usage);
		const char *v = argv[++i];
		if (strcmp(a, "--env") == 0 || strcmp(a, "-e") == 0) {
			const char *eq = strchr(v, '=');
			if (!eq)
				return cli_error("--env expects KEY=VALUE"), 2;
			char *k = xstrndup(v, (size_t)(eq - v));
			json_object_set_new(env, k, json_string(eq + 1));
			free(k);
		} else if (strcmp(a, "--workdir") == 0 || strcmp(a, "-w") == 0) {
			json_object_set_new(body, "working_dir", json_string(v));
		} else if (strcmp(a, "--timeout") == 0) {
			json_object_set_new(body, "timeout", json_real(atof(v)));
		} else if (strcmp(a, "--user") == 0 || strcmp(a, "-u") == 0) {
			json_object_set_new(body, "user", json_string(v));
		} else if (strcmp(a, "--name") == 0) {
			json_object_set_new(body, "name", json_string(v));
		} else {
			return cli_usage(exec_usage);
		}
	}
	if (i >= argc)
		return cli_usage(exec_usage);
	json_object_set_new(body, "command", json_string(argv[i]));
	json_t *args = json_array();
	for (int j = i + 1; j < argc; j++)
		json_array_append_new(args, json_string(argv[j]));
	json_object_set_new(body, "args", args);
	*ret_first = i;
	return 0;
}

/* Runs body on target t; returns the remote exit code (or 1 on errors). */
static int exec_on(struct cli_target *t, json_t *body, bool detach)
{
	if (detach) {
		char *s = json_dumps(body, JSON_COMPACT);
		struct cli_response r;
		int rc = cli_agent(t, "POST", "/api/v1/processes", s, strlen(s), "application/json",
		                   &r);
		free(s);
		if (rc < 0)
			return 1;
		if (r.status >= 300) {
			rc = cli_fail(&r, "exec");
		} else if (cli.json) {
			printf("%s\n", buf_cstr(&r.body));
		} else {
			json_t *v = cli_json(&r);
			printf("%lld\n", (long long)json_integer_value(json_object_get(v, "pid")));
			json_decref(v);
		}
		cli_response_release(&r);
		return rc;
	}
	struct exec_state st = {0};
	long status = cli_agent_sse(t, "POST", "/api/v1/processes/run", body, on_run_event, &st);
	if (st.out_broken)
		return 128 + SIGPIPE; /* as if the pipe's signal had ended hutch */
	if (status < 0 || status >= 300)
		return 1;
	if (!st.got_exit)
		return cli_error("the stream ended without an exit status");
	return st.exit_code;
}

int cmd_exec(int argc, char **argv)
{
	/* the sandbox may come after options: exec [opts] ID [opts] [--] CMD...; move it first */
	int idpos = 1;
	while (idpos < argc && argv[idpos][0] == '-' && strcmp(argv[idpos], "--") != 0)
		idpos += (strcmp(argv[idpos], "--detach") == 0 || strcmp(argv[idpos], "-d") == 0)
		                 ? 1
		                 : 2;
	if (idpos >= argc || argc < 3)
		return cli_usage(exec_usage);
	char *id = argv[idpos];
	memmove(&argv[2], &argv[1], (size_t)(idpos - 1) * sizeof(char *));
	argv[1] = id;
	json_t *body = json_object();
	bool detach = false;
	int first;
	int rc = exec_parse(argc, argv, 2, body, &detach, &first);
	struct cli_target t = {0};
	if (rc == 0 && cli_target_for(argv[1], &t) < 0)
		rc = 1;
	if (rc == 0) {
		rc = exec_on(&t, body, detach);
		cli_target_release(&t);
	}
	json_decref(body);
	return rc;
}

static const char run_usage[] =
        "hutch run [--image IMAGE] [--keep] [exec options] -- COMMAND [ARG...]";

static void on_run_signal(int sig)
{
	static const char msg[] = "hutch: interrupted\n";
	if (!cli_interrupted) {
		ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)n;
	}
	cli_interrupted = sig;
}

/* SIGINT, SIGTERM and SIGHUP (unless ignored, as under nohup) end the command's output stream
 * instead of hutch, and SIGPIPE is ignored (a closed stdout ends the stream too), so that run
 * always gets to remove its sandbox. */
static void run_catch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on_run_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

/* Creates the sandbox of `hutch run`; the server answers once it runs or ended. Returns 0 when
 * it runs, else 1 after printing why. *created gets the id of any sandbox the server made, also
 * when it answered 504 (not started in time) or the sandbox ended, for the caller to remove. */
static int run_create(const char *image, char **created)
{
	json_t *req = json_object();
	if (image)
		json_object_set_new(req, "image", json_string(image));
	const char *hdr[] = {"X-Tensorlake-Request-Timeout-Ms: 120000", NULL};
	struct cli_response r;
	int rc = cli_api_h("POST", "/sandboxes", req, hdr, &r);
	json_decref(req);
	if (rc < 0)
		return 1;
	json_t *v = json_loadb(r.body.data, r.body.len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "sandbox_id"));
	const char *status = json_string_value(json_object_get(v, "status"));
	const char *why = json_string_value(json_object_get(v, "pending_reason"));
	if (!why)
		why = json_string_value(
		        json_object_get(json_object_get(v, "error_details"), "message"));
	if (id && (r.status < 300 || r.status == 504))
		*created = xstrdup(id);
	if (r.status == 200 && id && status && strcmp(status, "running") == 0)
		rc = 0;
	else if (*created)
		rc = cli_error("sandbox %s did not start%s (%s%s%s)", id,
		               r.status == 504 ? " in time" : "", status ? status : "?",
		               why ? ": " : "", why ? why : "");
	else
		rc = cli_fail(&r, "run");
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

/* Terminates the sandbox run created, retrying transport errors and 5xx answers a few times:
 * leaving it behind is what run must not do. Returns 0 (also when it is already gone), or 1
 * after printing how to remove it by hand. */
static int run_remove(const char *id)
{
	_cleanup_free_ char *e = cli_escape(id);
	_cleanup_free_ char *path = xasprintf("/sandboxes/%s", e);
	for (int attempt = 1;; attempt++) {
		struct cli_response r;
		long status = cli_api("DELETE", path, NULL, &r) < 0 ? 0 : r.status;
		if (status) {
			if (status >= 300 && status != 404)
				cli_fail(&r, "terminate");
			cli_response_release(&r);
		}
		if (status && (status < 300 || status == 404))
			return 0;
		if ((status && status < 500) || attempt == 3)
			break;
		sleep(1);
	}
	return cli_error("sandbox %s was left behind: remove it with `hutch terminate %s`", id, id);
}

int cmd_run(int argc, char **argv)
{
	const char *image = NULL;
	bool keep = false;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--image") == 0 && i + 1 < argc)
			image = argv[++i];
		else if (strcmp(argv[i], "--keep") == 0)
			keep = true;
		else
			break;
	}
	json_t *body = json_object();
	bool detach = false;
	int first;
	int rc = exec_parse(argc, argv, i, body, &detach, &first);
	if (rc) {
		json_decref(body);
		return rc == 2 ? cli_usage(run_usage) : rc;
	}
	run_catch_signals();
	char *id = NULL;
	rc = run_create(image, &id);
	bool started = rc == 0 && !cli_interrupted;
	if (started) {
		struct cli_target t = {0};
		rc = cli_target_for(id, &t) < 0 ? 1 : exec_on(&t, body, detach);
		cli_target_release(&t);
	}
	if (id && keep && started)
		fprintf(stderr, "hutch: sandbox %s kept\n", id);
	else if (id && run_remove(id) && rc == 0)
		rc = 1;
	free(id);
	json_decref(body);
	if (cli_interrupted) {
		/* die of the signal, so that a calling shell stops too */
		int sig = cli_interrupted;
		fflush(NULL);
		signal(sig, SIG_DFL);
		raise(sig);
		rc = 128 + sig;
	}
	return rc;
}

/* ---- ps, logs, kill ---- */

static int agent_get_json(const char *id, const char *path, json_t **ret)
{
	struct cli_target t;
	if (cli_target_for(id, &t) < 0)
		return 1;
	struct cli_response r;
	int rc = cli_agent(&t, "GET", path, NULL, 0, NULL, &r);
	cli_target_release(&t);
	if (rc < 0)
		return 1;
	if (r.status != 200) {
		rc = cli_fail(&r, path);
		cli_response_release(&r);
		return rc;
	}
	*ret = cli_json(&r);
	cli_response_release(&r);
	return *ret ? 0 : 1;
}

int cmd_ps(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("hutch ps ID|NAME");
	json_t *v;
	if (agent_get_json(argv[1], "/api/v1/processes", &v))
		return 1;
	if (cli.json) {
		cli_print_json(json_object_get(v, "processes"));
	} else {
		printf("%-8s  %-10s  %-6s  %s\n", "PID", "STATUS", "EXIT", "COMMAND");
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(v, "processes"), i, p)
		{
			json_t *ec = json_object_get(p, "exit_code");
			char exitbuf[16] = "-";
			if (json_is_integer(ec))
				snprintf(exitbuf, sizeof(exitbuf), "%lld",
				         (long long)json_integer_value(ec));
			printf("%-8lld  %-10s  %-6s  %s",
			       (long long)json_integer_value(json_object_get(p, "pid")),
			       json_string_value(json_object_get(p, "status")), exitbuf,
			       json_string_value(json_object_get(p, "command")));
			size_t j;
			json_t *a;
			json_array_foreach(json_object_get(p, "args"), j, a)
			        printf(" %s", json_string_value(a));
			printf("\n");
		}
	}
	json_decref(v);
	return 0;
}

static int on_follow_event(const char *event, const char *data, size_t len, void *arg)
{
	json_t *v = json_loadb(data, len, 0, NULL);
	json_t *line = json_object_get(v, "line");
	if (json_is_string(line)) {
		const char *stream = json_string_value(json_object_get(v, "stream"));
		FILE *out = stream && strcmp(stream, "stderr") == 0 ? stderr : stdout;
		fwrite(json_string_value(line), 1, json_string_length(line), out);
		fputc('\n', out);
		fflush(out);
	}
	json_decref(v);
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	const char *which = "output";
	bool follow = false;
	const char *id = NULL, *proc = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0)
			follow = true;
		else if (strcmp(argv[i], "--stdout") == 0)
			which = "stdout";
		else if (strcmp(argv[i], "--stderr") == 0)
			which = "stderr";
		else if (!id)
			id = argv[i];
		else if (!proc)
			proc = argv[i];
		else
			return cli_usage(
			        "hutch logs ID|NAME PID|PROCESS_NAME [--follow] [--stdout|--stderr]");
	}
	if (!id || !proc)
		return cli_usage(
		        "hutch logs ID|NAME PID|PROCESS_NAME [--follow] [--stdout|--stderr]");
	char *e = cli_escape(proc);
	char *path = xasprintf("/api/v1/processes/%s/%s%s", e, which, follow ? "/follow" : "");
	free(e);
	int rc = 0;
	if (follow) {
		struct cli_target t;
		if (cli_target_for(id, &t) < 0) {
			free(path);
			return 1;
		}
		long st = cli_agent_sse(&t, "GET", path, NULL, on_follow_event, NULL);
		rc = st < 0 || st >= 300;
		cli_target_release(&t);
	} else {
		json_t *v;
		rc = agent_get_json(id, path, &v);
		if (rc == 0) {
			size_t i;
			json_t *l;
			json_array_foreach(json_object_get(v, "lines"), i, l)
			        printf("%s\n", json_string_value(l));
			json_decref(v);
		}
	}
	free(path);
	return rc;
}

int cmd_kill(int argc, char **argv)
{
	int sig = 0;
	const char *id = NULL, *proc = NULL;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--signal") == 0 || strcmp(argv[i], "-s") == 0) &&
		    i + 1 < argc)
			sig = atoi(argv[++i]);
		else if (!id)
			id = argv[i];
		else if (!proc)
			proc = argv[i];
	}
	if (!id || !proc)
		return cli_usage("hutch kill ID|NAME PID|PROCESS_NAME [--signal N]");
	struct cli_target t;
	if (cli_target_for(id, &t) < 0)
		return 1;
	char *e = cli_escape(proc);
	struct cli_response r;
	int rc;
	if (sig) {
		char *path = xasprintf("/api/v1/processes/%s/signal", e);
		char *body = xasprintf("{\"signal\":%d}", sig);
		rc = cli_agent(&t, "POST", path, body, strlen(body), "application/json", &r);
		free(path);
		free(body);
	} else {
		char *path = xasprintf("/api/v1/processes/%s", e);
		rc = cli_agent(&t, "DELETE", path, NULL, 0, NULL, &r);
		free(path);
	}
	free(e);
	cli_target_release(&t);
	if (rc < 0)
		return 1;
	rc = r.status >= 300 ? cli_fail(&r, "kill") : 0;
	cli_response_release(&r);
	return rc;
}
