/* Sandbox lifecycle commands: create, ls, describe, update, terminate, suspend, resume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

/* Returns argv[*i + 1] when argv[*i] is flag (advancing *i), else NULL. A missing value sets
 * *missing. */
static const char *opt_val(int argc, char **argv, int *i, const char *flag, bool *missing)
{
	if (strcmp(argv[*i], flag) != 0)
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static char *path_for(const char *fmt, const char *id)
{
	char *e = cli_escape(id);
	char *p = xasprintf(fmt, e);
	free(e);
	return p;
}

/* ---- network flags shared by create and update ---- */

struct netflags {
	bool no_internet, clear, any;
	json_t *allow, *deny;
};

static bool net_flag(int argc, char **argv, int *i, struct netflags *nf, bool *missing)
{
	const char *v;
	if (strcmp(argv[*i], "--no-internet") == 0 || strcmp(argv[*i], "-N") == 0) {
		nf->no_internet = nf->any = true;
		return true;
	}
	if (strcmp(argv[*i], "--clear-network") == 0) {
		nf->clear = nf->any = true;
		return true;
	}
	if ((v = opt_val(argc, argv, i, "--network-allow", missing)) ||
	    (v = opt_val(argc, argv, i, "-A", missing))) {
		json_array_append_new(nf->allow, json_string(v));
		nf->any = true;
		return true;
	}
	if ((v = opt_val(argc, argv, i, "--network-deny", missing)) ||
	    (v = opt_val(argc, argv, i, "-D", missing))) {
		json_array_append_new(nf->deny, json_string(v));
		nf->any = true;
		return true;
	}
	return false;
}

static json_t *net_json(struct netflags *nf)
{
	if (nf->clear)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "allow_internet_access", json_boolean(!nf->no_internet));
	json_object_set(o, "allow_out", nf->allow);
	json_object_set(o, "deny_out", nf->deny);
	return o;
}

/* ---- create ---- */

static const char create_usage[] =
        "hutch create [NAME] [--image IMAGE] [--cpus N] [--memory MB] [--disk MB]\n"
        "       [--timeout SECS] [--entrypoint CMD [ARG...] --] [--expose PORT]... [--public]\n"
        "       [--no-internet] [--network-allow DEST]... [--network-deny DEST]...\n"
        "       [--snapshot ID] [--no-wait]";

static int number(const char *flag, const char *v, double *ret)
{
	char *end;
	*ret = strtod(v, &end);
	if (!v[0] || *end)
		return cli_error("%s: '%s' is not a number", flag, v);
	return 0;
}

static int create_parse(int argc, char **argv, json_t *body, struct netflags *nf, bool *nowait)
{
	json_t *res = json_object(), *ports = json_array();
	bool missing = false;
	json_object_set_new(body, "resources", res);
	for (int i = 1; i < argc; i++) {
		const char *v;
		double d;
		if (is_help(argv[i]))
			return cli_usage(create_usage);
		if ((v = opt_val(argc, argv, &i, "--image", &missing)))
			json_object_set_new(body, "image", json_string(v));
		else if ((v = opt_val(argc, argv, &i, "--cpus", &missing))) {
			if (number("--cpus", v, &d))
				return 2;
			json_object_set_new(res, "cpus", json_real(d));
		} else if ((v = opt_val(argc, argv, &i, "--memory", &missing))) {
			if (number("--memory", v, &d))
				return 2;
			json_object_set_new(res, "memory_mb", json_integer((json_int_t)d));
		} else if ((v = opt_val(argc, argv, &i, "--disk", &missing)) ||
		           (v = opt_val(argc, argv, &i, "--disk_mb", &missing))) {
			if (number("--disk", v, &d))
				return 2;
			json_object_set_new(res, "disk_mb", json_integer((json_int_t)d));
		} else if ((v = opt_val(argc, argv, &i, "--timeout", &missing))) {
			if (number("--timeout", v, &d))
				return 2;
			json_object_set_new(body, "timeout_secs", json_integer((json_int_t)d));
		} else if ((v = opt_val(argc, argv, &i, "--expose", &missing)) ||
		           (v = opt_val(argc, argv, &i, "-x", &missing))) {
			if (number("--expose", v, &d))
				return 2;
			json_array_append_new(ports, json_integer((json_int_t)d));
		} else if ((v = opt_val(argc, argv, &i, "--snapshot", &missing)))
			json_object_set_new(body, "snapshot_id", json_string(v));
		else if (strcmp(argv[i], "--entrypoint") == 0) {
			json_t *ep = json_array();
			for (i++; i < argc && strcmp(argv[i], "--") != 0; i++)
				json_array_append_new(ep, json_string(argv[i]));
			json_object_set_new(body, "entrypoint", ep);
		} else if (strcmp(argv[i], "--public") == 0)
			json_object_set_new(body, "allow_unauthenticated_access", json_true());
		else if (strcmp(argv[i], "--no-wait") == 0)
			*nowait = true;
		else if (net_flag(argc, argv, &i, nf, &missing))
			;
		else if (argv[i][0] != '-' && !json_object_get(body, "name"))
			json_object_set_new(body, "name", json_string(argv[i]));
		else if (!missing)
			return cli_error("create: unknown argument '%s'", argv[i]), 2;
		if (missing)
			return cli_error("create: %s needs a value", argv[i]), 2;
	}
	if (json_array_size(ports)) {
		json_object_set_new(body, "exposed_ports", ports);
		/* like `tl sbx create --expose`: exposing makes the ports public */
		if (!json_object_get(body, "allow_unauthenticated_access"))
			json_object_set_new(body, "allow_unauthenticated_access", json_true());
	} else {
		json_decref(ports);
	}
	if (nf->any)
		json_object_set_new(body, "network", net_json(nf));
	return 0;
}

int cmd_create(int argc, char **argv)
{
	json_t *body = json_object();
	struct netflags nf = {.allow = json_array(), .deny = json_array()};
	bool nowait = false;
	int rc = create_parse(argc, argv, body, &nf, &nowait);
	if (rc) {
		json_decref(body);
		json_decref(nf.allow);
		json_decref(nf.deny);
		return rc;
	}
	const char *hdr[] = {"X-Tensorlake-Request-Timeout-Ms: 120000", NULL};
	struct cli_response r;
	if (!cli.quiet && !nowait && isatty(2))
		fprintf(stderr, "creating sandbox...\n");
	rc = cli_api_h("POST", nowait ? "/sandboxes?wait=false" : "/sandboxes", body, hdr, &r);
	json_decref(body);
	json_decref(nf.allow);
	json_decref(nf.deny);
	if (rc < 0)
		return 1;
	json_t *v = cli_json(&r);
	const char *status = json_string_value(json_object_get(v, "status"));
	if (r.status >= 300 && !(r.status == 504 && status))
		rc = cli_fail(&r, "create");
	else if (cli.json)
		cli_print_json(v);
	else
		printf("%s\n", json_string_value(json_object_get(v, "sandbox_id")));
	if (rc == 0 && status && strcmp(status, "running") != 0 && !nowait) {
		json_t *det = json_object_get(v, "error_details");
		const char *msg = json_string_value(json_object_get(det, "message"));
		rc = cli_error("sandbox %s is %s%s%s",
		               json_string_value(json_object_get(v, "sandbox_id")), status,
		               msg ? ": " : "", msg ? msg : "");
	}
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

/* ---- ls ---- */

static void print_row(json_t *s)
{
	json_t *res = json_object_get(s, "resources");
	const char *name = json_string_value(json_object_get(s, "name"));
	printf("%-21s  %-20s  %-11s  %-16s  %4.1f  %6lld\n",
	       json_string_value(json_object_get(s, "id")), name ? name : "-",
	       json_string_value(json_object_get(s, "status")),
	       json_string_value(json_object_get(s, "image")),
	       json_number_value(json_object_get(res, "cpus")),
	       (long long)json_integer_value(json_object_get(res, "memory_mb")));
}

static bool keep(json_t *s, const char *filter, bool all)
{
	const char *st = json_string_value(json_object_get(s, "status"));
	if (filter)
		return st && strcmp(st, filter) == 0;
	return all || (st && strcmp(st, "terminated") != 0);
}

int cmd_ls(int argc, char **argv)
{
	bool all = false, archived = false;
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") == 0 || strcmp(argv[i], "-a") == 0)
			all = true;
		else if (strcmp(argv[i], "--running") == 0)
			filter = "running";
		else if (strcmp(argv[i], "--suspended") == 0)
			filter = "suspended";
		else if (strcmp(argv[i], "--archived") == 0)
			archived = all = true;
		else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
			cli.quiet = true;
		else
			return cli_usage(
			        "hutch ls [--all|--running|--suspended|--archived] [--quiet]");
	}
	json_t *out = json_array();
	char *cursor = NULL;
	int rc = 0;
	for (int page = 0; page < 10000; page++) {
		struct buf path = BUF_INIT;
		buf_printf(&path, "/%s?limit=500", archived ? "archived-sandboxes" : "sandboxes");
		if (filter && !archived)
			buf_printf(&path, "&status=%s", filter);
		if (cursor) {
			char *e = cli_escape(cursor);
			buf_printf(&path, "&cursor=%s", e);
			free(e);
		}
		struct cli_response r;
		rc = cli_api("GET", buf_cstr(&path), NULL, &r);
		buf_release(&path);
		if (rc < 0 || r.status != 200) {
			rc = rc < 0 ? 1 : cli_fail(&r, "ls");
			cli_response_release(&r);
			break;
		}
		json_t *v = cli_json(&r);
		cli_response_release(&r);
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(v, "sandboxes"), i, s)
		{
			if (keep(s, filter, all))
				json_array_append(out, s);
		}
		free(cursor);
		const char *next = json_string_value(json_object_get(v, "next_cursor"));
		cursor = next ? xstrdup(next) : NULL;
		json_decref(v);
		if (!cursor)
			break;
	}
	free(cursor);
	if (rc == 0) {
		size_t i;
		json_t *s;
		if (cli.json)
			cli_print_json(out);
		else if (cli.quiet)
			json_array_foreach(out, i, s)
			        printf("%s\n", json_string_value(json_object_get(s, "id")));
		else {
			printf("%-21s  %-20s  %-11s  %-16s  %4s  %6s\n", "ID", "NAME", "STATUS",
			       "IMAGE", "CPUS", "MEM_MB");
			json_array_foreach(out, i, s) print_row(s);
		}
	}
	json_decref(out);
	return rc;
}

/* ---- describe ---- */

int cmd_describe(int argc, char **argv)
{
	if (argc != 2 || is_help(argv[1]))
		return cli_usage("hutch describe ID|NAME");
	json_t *v = cli_sandbox_get(argv[1]);
	if (!v)
		return 1;
	if (cli.json) {
		cli_print_json(v);
	} else {
		const char *k;
		json_t *f;
		json_object_foreach(v, k, f)
		{
			char *s = json_is_string(f) ? xstrdup(json_string_value(f))
			                            : json_dumps(f, JSON_COMPACT | JSON_ENCODE_ANY);
			printf("%-30s %s\n", k, s);
			free(s);
		}
	}
	json_decref(v);
	return 0;
}

/* ---- update ---- */

static const char update_usage[] =
        "hutch update ID|NAME [--name NEW] [--expose PORT]... [--unexpose-all] [--public|--private]\n"
        "       [--no-internet | --network-allow DEST... | --network-deny DEST... | --clear-network]";

int cmd_update(int argc, char **argv)
{
	if (argc < 3 || is_help(argv[1]))
		return cli_usage(update_usage);
	json_t *body = json_object(), *ports = NULL;
	struct netflags nf = {.allow = json_array(), .deny = json_array()};
	bool missing = false;
	int rc = 0;
	for (int i = 2; i < argc && rc == 0; i++) {
		const char *v;
		if ((v = opt_val(argc, argv, &i, "--name", &missing)))
			json_object_set_new(body, "name", json_string(v));
		else if ((v = opt_val(argc, argv, &i, "--expose", &missing))) {
			if (!ports)
				ports = json_array();
			json_array_append_new(ports, json_integer(atoll(v)));
		} else if (strcmp(argv[i], "--unexpose-all") == 0)
			ports = ports ? ports : json_array();
		else if (strcmp(argv[i], "--public") == 0)
			json_object_set_new(body, "allow_unauthenticated_access", json_true());
		else if (strcmp(argv[i], "--private") == 0)
			json_object_set_new(body, "allow_unauthenticated_access", json_false());
		else if (!net_flag(argc, argv, &i, &nf, &missing) || missing)
			rc = missing ? cli_usage(update_usage) : cli_usage(update_usage);
	}
	if (ports)
		json_object_set_new(body, "exposed_ports", ports);
	if (nf.any)
		json_object_set_new(body, "network", net_json(&nf));
	json_decref(nf.allow);
	json_decref(nf.deny);
	if (rc) {
		json_decref(body);
		return rc;
	}
	char *path = path_for("/sandboxes/%s", argv[1]);
	struct cli_response r;
	rc = cli_api("PATCH", path, body, &r);
	free(path);
	json_decref(body);
	if (rc < 0)
		return 1;
	if (r.status != 200)
		rc = cli_fail(&r, "update");
	else if (cli.json)
		printf("%s\n", buf_cstr(&r.body));
	cli_response_release(&r);
	return rc;
}

/* ---- terminate, suspend, resume ---- */

int cmd_terminate(int argc, char **argv)
{
	if (argc < 2 || is_help(argv[1]))
		return cli_usage("hutch terminate ID|NAME...");
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		char *path = path_for("/sandboxes/%s", argv[i]);
		struct cli_response r;
		if (cli_api("DELETE", path, NULL, &r) < 0)
			rc = 1;
		else if (r.status >= 300)
			rc = cli_fail(&r, argv[i]);
		else if (!cli.quiet)
			printf("%s terminated\n", argv[i]);
		cli_response_release(&r);
		free(path);
	}
	return rc;
}

/* Polls a sandbox until its status is want (or terminated), up to timeout seconds. */
static int wait_status(const char *id, const char *want, int timeout)
{
	for (int waited = 0; waited <= timeout * 10; waited++) {
		json_t *v = cli_sandbox_get(id);
		if (!v)
			return 1;
		const char *st = json_string_value(json_object_get(v, "status"));
		bool done = st && strcmp(st, want) == 0;
		bool dead = st && strcmp(st, "terminated") == 0;
		json_decref(v);
		if (done)
			return 0;
		if (dead)
			return cli_error("sandbox %s terminated while waiting for %s", id, want);
		usleep(100 * 1000);
	}
	return cli_error("sandbox %s did not become %s within %ds", id, want, timeout);
}

static int lifecycle(int argc, char **argv, const char *verb, const char *want)
{
	bool nowait = false;
	const char *id = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-wait") == 0)
			nowait = true;
		else if (argv[i][0] != '-' && !id)
			id = argv[i];
		else
			id = NULL, i = argc;
	}
	if (!id) {
		fprintf(stderr, "usage: hutch %s ID|NAME [--no-wait]\n", verb);
		return 2;
	}
	char *fmt = xasprintf("/sandboxes/%%s/%s", verb);
	char *path = path_for(fmt, id);
	free(fmt);
	struct cli_response r;
	int rc = cli_api("POST", path, NULL, &r);
	free(path);
	if (rc < 0)
		return 1;
	if (r.status >= 300)
		rc = cli_fail(&r, verb);
	cli_response_release(&r);
	if (rc == 0 && !nowait) {
		if (!cli.quiet && isatty(2))
			fprintf(stderr, "waiting for %s to be %s...\n", id, want);
		rc = wait_status(id, want, 300);
	}
	if (rc == 0 && !cli.quiet)
		printf("%s %s\n", id, nowait ? "requested" : want);
	return rc;
}

int cmd_suspend(int argc, char **argv)
{
	return lifecycle(argc, argv, "suspend", "suspended");
}

int cmd_resume(int argc, char **argv)
{
	return lifecycle(argc, argv, "resume", "running");
}
