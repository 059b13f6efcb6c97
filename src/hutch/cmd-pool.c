/* hutch pool create|ls|describe|update|rm|claim: warm sandbox pools (/sandbox-pools). update is
 * read-modify-write, so flags it is not given keep their current values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cli.h"

#define CLAIM_TIMEOUT_S 120

const char cli_pool_help[] =
        "hutch pool create --image IMAGE [--id ID] [POOL OPTIONS]\n"
        "hutch pool ls\n"
        "hutch pool describe POOL\n"
        "hutch pool update POOL [--image IMAGE] [POOL OPTIONS]\n"
        "hutch pool rm POOL...\n"
        "hutch pool claim POOL [--timeout S]\n"
        "  POOL OPTIONS: --cpus N --memory MB --disk MB --timeout SECS (idle timeout of claimed\n"
        "  sandboxes, 0 = none) --warm N --max N --entrypoint CMD [ARG...] -- --no-internet\n"
        "  --network-allow DEST... --network-deny DEST... --clear-network\n"
        "  claim hands out a sandbox (a warm one when there is one) and prints its id. rm refuses a\n"
        "  pool whose sandboxes are still running.";

/* Keys of a pool object that a PUT takes back (the rest are read-only). */
static const char *const writable[] = {
        "image",          "resources",
        "timeout_secs",   "entrypoint",
        "max_containers", "warm_containers",
        "min_containers", "network",
        "secret_names",   "allow_unauthenticated_access",
        "exposed_ports",
};

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static int num(const char *flag, const char *v, double *ret)
{
	char *end;
	*ret = strtod(v, &end);
	if (!v[0] || *end || *ret < 0)
		return cli_error("pool: %s expects a number, not '%s'", flag, v), 2;
	return 0;
}

/* Sets resources.key in body. */
static void res_set(json_t *body, const char *key, json_t *v)
{
	json_t *res = json_object_get(body, "resources");
	if (!json_is_object(res)) {
		res = json_object();
		json_object_set_new(body, "resources", res);
	}
	json_object_set_new(res, key, v);
}

static json_t *network_of(json_t *body)
{
	json_t *n = json_object_get(body, "network");
	if (!json_is_object(n)) {
		n = json_object();
		json_object_set_new(n, "allow_internet_access", json_true());
		json_object_set_new(n, "allow_out", json_array());
		json_object_set_new(n, "deny_out", json_array());
		json_object_set_new(body, "network", n);
	}
	return n;
}

/* One numeric option: --cpus, --memory, --disk, --timeout, --warm, --max. 1 when matched. */
static int pool_num_opt(json_t *body, const char *a, const char *v, int *rc)
{
	static const struct {
		const char *flag, *key;
		bool res, real;
	} opts[] = {
	        {"--cpus", "cpus", true, true},
	        {"--memory", "memory_mb", true, false},
	        {"--disk", "ephemeral_disk_mb", true, false},
	        {"--timeout", "timeout_secs", false, false},
	        {"--warm", "warm_containers", false, false},
	        {"--max", "max_containers", false, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		double d;
		if (strcmp(a, opts[i].flag) != 0)
			continue;
		if ((*rc = num(a, v, &d)))
			return 1;
		json_t *j = opts[i].real ? json_real(d) : json_integer((json_int_t)d);
		if (opts[i].res)
			res_set(body, opts[i].key, j);
		else
			json_object_set_new(body, opts[i].key, j);
		return 1;
	}
	return 0;
}

/* Applies POOL OPTIONS from argv[first..] to body; ret_pos gets the one positional argument. */
static int pool_opts_apply(int argc, char **argv, int first, json_t *body, const char **ret_pos)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = 0;
		if (v && pool_num_opt(body, a, v, &rc)) {
			if (rc)
				return rc;
			i++;
		} else if (v && (strcmp(a, "--image") == 0 || strcmp(a, "--id") == 0)) {
			json_object_set_new(body, a + 2, json_string(v));
			i++;
		} else if (strcmp(a, "--entrypoint") == 0) {
			json_t *ep = json_array();
			for (i++; i < argc && strcmp(argv[i], "--") != 0; i++)
				json_array_append_new(ep, json_string(argv[i]));
			json_object_set_new(body, "entrypoint", ep);
		} else if (strcmp(a, "--no-internet") == 0) {
			json_object_set_new(network_of(body), "allow_internet_access",
			                    json_false());
		} else if (v && strcmp(a, "--network-allow") == 0) {
			json_array_append_new(json_object_get(network_of(body), "allow_out"),
			                      json_string(v));
			i++;
		} else if (v && strcmp(a, "--network-deny") == 0) {
			json_array_append_new(json_object_get(network_of(body), "deny_out"),
			                      json_string(v));
			i++;
		} else if (strcmp(a, "--clear-network") == 0) {
			json_object_set_new(body, "network", json_null());
		} else if (a[0] != '-' && ret_pos && !*ret_pos) {
			*ret_pos = a;
		} else {
			return cli_usage(cli_pool_help);
		}
	}
	return 0;
}

static char *pool_path(const char *id, const char *suffix)
{
	_cleanup_free_ char *e = cli_escape(id);
	return xasprintf("/sandbox-pools/%s%s", e, suffix);
}

/* One request whose 2xx answer is JSON; prints the error otherwise. */
static json_t *pool_call(const char *method, const char *path, json_t *body, const char *what)
{
	struct cli_response r;
	if (cli_api(method, path, body, &r) < 0)
		return NULL;
	json_t *v = NULL;
	if (r.status >= 300)
		cli_fail(&r, what);
	else
		v = cli_json(&r);
	cli_response_release(&r);
	return v;
}

static int pool_create(int argc, char **argv)
{
	json_t *body = json_object();
	int rc = pool_opts_apply(argc, argv, 2, body, NULL);
	if (rc == 0 && !json_object_get(body, "image"))
		rc = (cli_error("pool create: --image is required"), 2);
	json_t *v = rc ? NULL : pool_call("POST", "/sandbox-pools", body, "pool create");
	json_decref(body);
	if (!v)
		return rc ? rc : 1;
	if (cli.json)
		cli_print_json(v);
	else
		printf("%s\n", json_string_value(json_object_get(v, "pool_id")));
	json_decref(v);
	return 0;
}

static void pool_row(json_t *p)
{
	json_t *res = json_object_get(p, "resources");
	const char *id = json_string_value(json_object_get(p, "id"));
	if (!id)
		id = json_string_value(json_object_get(p, "pool_id"));
	printf("%-21s  %-16s  %4.1f  %6lld  %4lld  %4lld  %7lld\n", id,
	       json_string_value(json_object_get(p, "image")),
	       json_number_value(json_object_get(res, "cpus")),
	       (long long)json_integer_value(json_object_get(res, "memory_mb")),
	       (long long)json_integer_value(json_object_get(p, "warm_containers")),
	       (long long)json_integer_value(json_object_get(p, "max_containers")),
	       (long long)json_integer_value(json_object_get(p, "timeout_secs")));
}

static int pool_ls(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(cli_pool_help);
	json_t *v = pool_call("GET", "/sandbox-pools", NULL, "pool ls");
	if (!v)
		return 1;
	json_t *pools = json_object_get(v, "pools");
	if (cli.json) {
		cli_print_json(pools);
	} else {
		printf("%-21s  %-16s  %4s  %6s  %4s  %4s  %7s\n", "ID", "IMAGE", "CPUS", "MEM_MB",
		       "WARM", "MAX", "TIMEOUT");
		size_t i;
		json_t *p;
		json_array_foreach(pools, i, p) pool_row(p);
	}
	json_decref(v);
	return 0;
}

static int pool_describe(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage(cli_pool_help);
	_cleanup_free_ char *path = pool_path(argv[2], "");
	json_t *v = pool_call("GET", path, NULL, argv[2]);
	if (!v)
		return 1;
	if (cli.json) {
		cli_print_json(v);
		json_decref(v);
		return 0;
	}
	pool_row(v);
	size_t i;
	json_t *c;
	printf("\n%-21s  %-8s  %-11s  %s\n", "CONTAINER", "STATE", "STATUS", "SANDBOX");
	json_array_foreach(json_object_get(v, "containers"), i, c)
	{
		const char *sb = json_string_value(json_object_get(c, "sandbox_id"));
		const char *st = json_string_value(json_object_get(c, "status"));
		printf("%-21s  %-8s  %-11s  %s\n", json_string_value(json_object_get(c, "id")),
		       json_string_value(json_object_get(c, "state")), st ? st : "-",
		       sb ? sb : "-");
	}
	json_decref(v);
	return 0;
}

static int pool_update(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage(cli_pool_help);
	_cleanup_free_ char *path = pool_path(argv[2], "");
	json_t *cur = pool_call("GET", path, NULL, argv[2]);
	if (!cur)
		return 1;
	json_t *body = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(writable); i++) {
		json_t *f = json_object_get(cur, writable[i]);
		if (f && !json_is_null(f))
			json_object_set(body, writable[i], f);
	}
	json_decref(cur);
	int rc = pool_opts_apply(argc, argv, 3, body, NULL);
	json_t *v = rc ? NULL : pool_call("PUT", path, body, "pool update");
	json_decref(body);
	if (!v)
		return rc ? rc : 1;
	if (cli.json)
		cli_print_json(v);
	json_decref(v);
	return 0;
}

static int pool_rm(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage(cli_pool_help);
	int rc = 0;
	for (int i = 2; i < argc; i++) {
		_cleanup_free_ char *path = pool_path(argv[i], "");
		struct cli_response r;
		if (cli_api("DELETE", path, NULL, &r) < 0) {
			rc = 1;
			continue;
		}
		if (r.status == 409)
			rc = cli_fail(&r, "pool rm (terminate its claimed sandboxes first)");
		else if (r.status >= 300)
			rc = cli_fail(&r, argv[i]);
		else if (!cli.quiet)
			printf("%s deleted\n", argv[i]);
		cli_response_release(&r);
	}
	return rc;
}

static int pool_claim(int argc, char **argv)
{
	int timeout = CLAIM_TIMEOUT_S;
	if (argc == 5 && strcmp(argv[3], "--timeout") == 0)
		timeout = atoi(argv[4]);
	else if (argc != 3)
		return cli_usage(cli_pool_help);
	_cleanup_free_ char *path = pool_path(argv[2], "/sandboxes");
	_cleanup_free_ char *hdr = xasprintf("X-Tensorlake-Request-Timeout-Ms: %d", timeout * 1000);
	const char *headers[] = {hdr, NULL};
	struct cli_response r;
	cli_progress("claiming a sandbox from %s...", argv[2]);
	int rc = cli_api_h("POST", path, NULL, headers, &r);
	cli_progress(NULL);
	if (rc < 0)
		return 1;
	json_t *v = json_loadb(r.body.data, r.body.len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "sandbox_id"));
	const char *st = json_string_value(json_object_get(v, "status"));
	const char *why = json_string_value(json_object_get(v, "pending_reason"));
	if (r.status >= 300 && !(r.status == 504 && st))
		rc = cli_fail(&r, "pool claim");
	else if (cli.json)
		cli_print_json(v);
	else
		printf("%s\n", id ? id : "?");
	if (rc == 0 && (!st || strcmp(st, "running") != 0))
		rc = cli_error("sandbox %s is %s%s%s", id ? id : "?", st ? st : "?",
		               why ? ": " : "", why ? why : "");
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

int cmd_pool(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
	        {"create", pool_create}, {"ls", pool_ls},
	        {"list", pool_ls},       {"describe", pool_describe},
	        {"get", pool_describe},  {"update", pool_update},
	        {"rm", pool_rm},         {"delete", pool_rm},
	        {"claim", pool_claim},
	};
	if (argc >= 2 && is_help(argv[1]))
		return printf("usage: %s\n", cli_pool_help), 0;
	for (size_t i = 0; argc >= 2 && i < ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(argc, argv);
	return cli_usage(cli_pool_help);
}
