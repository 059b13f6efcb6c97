/* hutch port expose|ls|rm: the exposed user ports of a sandbox, changed read-modify-write like
 * the SDK helpers (GET, then PATCH of exposed_ports and allow_unauthenticated_access). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "cli.h"

const char cli_port_help[] =
        "hutch port expose ID|NAME PORT... [--private]\n"
        "hutch port ls ID|NAME\n"
        "hutch port rm ID|NAME PORT...\n"
        "  expose adds ports to the sandbox's exposed ports and, like `tl sbx port expose`, makes\n"
        "  them reachable without an API key (--private keeps the current access mode). rm removes\n"
        "  ports; when none is left, access becomes private again. Both print the resulting ports\n"
        "  with the URL (or proxy address and Host header) each is reachable at.";

static int port_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Parses PORT arguments (1..65535, not 9501) into ports; returns the count or -1. */
static int ports_parse(int argc, char **argv, int first, int *ports, bool *private_flag)
{
	int n = 0;
	for (int i = first; i < argc; i++) {
		char *end;
		long p = strtol(argv[i], &end, 10);
		if (strcmp(argv[i], "--private") == 0 && private_flag) {
			*private_flag = true;
			continue;
		}
		if (!argv[i][0] || *end || p < 1 || p > 65535 || p == 9501) {
			cli_error("port: '%s' is not a user port (1-65535, 9501 is reserved)",
			          argv[i]);
			return -1;
		}
		ports[n++] = (int)p;
	}
	return n;
}

static bool has_port(const int *ports, int n, int p)
{
	for (int i = 0; i < n; i++)
		if (ports[i] == p)
			return true;
	return false;
}

/* The public address of a user port: "URL" or "PROXY (Host: PORT-ID.local)". */
static char *port_url(json_t *sb, int port)
{
	const char *id = json_string_value(json_object_get(sb, "id"));
	const char *ep = json_string_value(json_object_get(sb, "ingress_endpoint"));
	if (!ep)
		ep = json_string_value(json_object_get(sb, "sandbox_url"));
	if (!ep || !id)
		return xstrdup("-");
	const char *host = strstr(ep, "://");
	host = host ? host + 3 : ep;
	bool local = (host[0] >= '0' && host[0] <= '9') || host[0] == '[' ||
	             strncmp(host, "localhost", 9) == 0;
	if (local)
		return xasprintf("%s (Host: %d-%s.local)", ep, port, id);
	return xasprintf("%.*s%d-%s.%s", (int)(host - ep), ep, port, id, host);
}

static void ports_print(json_t *sb)
{
	json_t *ports = json_object_get(sb, "exposed_ports");
	bool pub = json_is_true(json_object_get(sb, "allow_unauthenticated_access"));
	if (cli.json) {
		json_t *o = json_object();
		json_object_set(o, "exposed_ports", ports ? ports : json_array());
		json_object_set_new(o, "allow_unauthenticated_access", json_boolean(pub));
		json_t *urls = json_object();
		size_t i;
		json_t *p;
		json_array_foreach(ports, i, p)
		{
			char key[16];
			snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(p));
			_cleanup_free_ char *u = port_url(sb, (int)json_integer_value(p));
			json_object_set_new(urls, key, json_string(u));
		}
		json_object_set_new(o, "urls", urls);
		cli_print_json(o);
		json_decref(o);
		return;
	}
	printf("%-6s  %-7s  %s\n", "PORT", "ACCESS", "URL");
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
	{
		_cleanup_free_ char *u = port_url(sb, (int)json_integer_value(p));
		printf("%-6lld  %-7s  %s\n", (long long)json_integer_value(p),
		       pub ? "public" : "api-key", u);
	}
}

/* PATCHes exposed_ports and access; prints the resulting sandbox's ports. */
static int ports_patch(const char *id, const int *ports, int n, bool pub)
{
	json_t *body = json_object(), *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, json_integer(ports[i]));
	json_object_set_new(body, "exposed_ports", arr);
	json_object_set_new(body, "allow_unauthenticated_access", json_boolean(pub));
	_cleanup_free_ char *e = cli_escape(id);
	_cleanup_free_ char *path = xasprintf("/sandboxes/%s", e);
	struct cli_response r;
	int rc = cli_api("PATCH", path, body, &r);
	json_decref(body);
	if (rc < 0)
		return 1;
	json_t *v = r.status == 200 ? cli_json(&r) : NULL;
	if (r.status != 200)
		rc = cli_fail(&r, "port");
	else if (!v)
		rc = 1;
	else if (!cli.quiet)
		ports_print(v);
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

/* expose (add) or rm (remove) ports, read-modify-write. */
static int port_change(int argc, char **argv, bool add)
{
	if (argc < 4)
		return cli_usage(cli_port_help);
	size_t cap = 65536 + (size_t)argc;
	_cleanup_free_ int *want = xmalloc(sizeof(int) * (size_t)argc);
	_cleanup_free_ int *have = xmalloc(sizeof(int) * cap);
	bool private_flag = false;
	int nw = ports_parse(argc, argv, 3, want, add ? &private_flag : NULL);
	if (nw <= 0)
		return nw < 0 ? 2 : cli_usage(cli_port_help);
	json_t *sb = cli_sandbox_get(argv[2]);
	if (!sb)
		return 1;
	int nh = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(sb, "exposed_ports"), i, p)
	{
		int port = (int)json_integer_value(p);
		if ((size_t)nh < cap && (add || !has_port(want, nw, port)))
			have[nh++] = port;
	}
	for (int j = 0; add && j < nw; j++)
		if (!has_port(have, nh, want[j]))
			have[nh++] = want[j];
	qsort(have, (size_t)nh, sizeof(int), port_cmp);
	bool pub = json_is_true(json_object_get(sb, "allow_unauthenticated_access"));
	if (add && !private_flag)
		pub = true; /* like `tl sbx port expose` */
	if (!add && nh == 0)
		pub = false; /* like the SDK's unexposePorts */
	int rc = ports_patch(json_string_value(json_object_get(sb, "id")), have, nh, pub);
	json_decref(sb);
	return rc;
}

int cmd_port(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return argc < 2 ? cli_usage(cli_port_help)
		                : (printf("usage: %s\n", cli_port_help), 0);
	if (strcmp(argv[1], "expose") == 0 || strcmp(argv[1], "add") == 0)
		return port_change(argc, argv, true);
	if (strcmp(argv[1], "rm") == 0 || strcmp(argv[1], "unexpose") == 0)
		return port_change(argc, argv, false);
	if ((strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0) && argc == 3) {
		json_t *sb = cli_sandbox_get(argv[2]);
		if (!sb)
			return 1;
		ports_print(sb);
		json_decref(sb);
		return 0;
	}
	return cli_usage(cli_port_help);
}
