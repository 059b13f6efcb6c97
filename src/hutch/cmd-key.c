/* API key commands: key create [--name N] [--namespace NS], key ls, key revoke ID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli.h"

static const char key_usage[] = "hutch key create [--name NAME] [--namespace NS] | key ls | "
                                "key revoke KEY_ID";

static int key_create(int argc, char **argv)
{
	json_t *body = json_object();
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			json_object_set_new(body, "name", json_string(argv[++i]));
		else if (strcmp(argv[i], "--namespace") == 0 && i + 1 < argc)
			json_object_set_new(body, "namespace", json_string(argv[++i]));
		else {
			json_decref(body);
			return cli_usage(key_usage);
		}
	}
	struct cli_response r;
	int rc = cli_api("POST", "/api-keys", body, &r);
	json_decref(body);
	if (rc < 0)
		return 1;
	if (r.status != 201) {
		rc = cli_fail(&r, "key create");
	} else if (cli.json) {
		printf("%s\n", buf_cstr(&r.body));
	} else {
		json_t *v = cli_json(&r);
		printf("%s\n", json_string_value(json_object_get(v, "key")));
		fprintf(stderr, "key id %s for namespace %s (shown once; store it safely)\n",
		        json_string_value(json_object_get(v, "id")),
		        json_string_value(json_object_get(v, "namespace")));
		json_decref(v);
	}
	cli_response_release(&r);
	return rc;
}

static int key_ls(void)
{
	struct cli_response r;
	if (cli_api("GET", "/api-keys", NULL, &r) < 0)
		return 1;
	int rc = 0;
	json_t *v = r.status == 200 ? cli_json(&r) : NULL;
	if (r.status != 200) {
		rc = cli_fail(&r, "key ls");
	} else if (cli.json) {
		cli_print_json(json_object_get(v, "keys"));
	} else {
		size_t i;
		json_t *k;
		printf("%-14s  %-12s  %-20s  %s\n", "ID", "NAMESPACE", "NAME", "STATE");
		json_array_foreach(json_object_get(v, "keys"), i, k)
		{
			const char *name = json_string_value(json_object_get(k, "name"));
			printf("%-14s  %-12s  %-20s  %s%s\n",
			       json_string_value(json_object_get(k, "id")),
			       json_string_value(json_object_get(k, "namespace")),
			       name ? name : "-",
			       json_is_null(json_object_get(k, "revoked_at")) ? "active"
			                                                      : "revoked",
			       json_is_true(json_object_get(k, "admin")) ? " (admin)" : "");
		}
	}
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

static int key_revoke(const char *id)
{
	char *e = cli_escape(id);
	char *path = xasprintf("/api-keys/%s", e);
	struct cli_response r;
	int rc = cli_api("DELETE", path, NULL, &r);
	free(e);
	free(path);
	if (rc < 0)
		return 1;
	if (r.status >= 300)
		rc = cli_fail(&r, "key revoke");
	else if (!cli.quiet)
		printf("key %s revoked\n", id);
	cli_response_release(&r);
	return rc;
}

int cmd_key(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return key_create(argc, argv);
	if (argc == 2 && strcmp(argv[1], "ls") == 0)
		return key_ls();
	if (argc == 3 && strcmp(argv[1], "revoke") == 0)
		return key_revoke(argv[2]);
	return cli_usage(key_usage);
}
