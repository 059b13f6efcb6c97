/* Snapshot commands: snapshot (take, ls, describe, rm), copy (live copies of a running sandbox)
 * and clone (a memory snapshot and a create from it), written against reference §3.7. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

#define SNAPSHOT_TIMEOUT_S 300
#define CREATE_TIMEOUT_S   120

const char cli_snapshot_help[] =
        "hutch snapshot ID|NAME [--type memory|filesystem] [--no-wait] [--completed] [--timeout S]\n"
        "hutch snapshot ls [--sandbox ID]\n"
        "hutch snapshot describe SNAPSHOT\n"
        "hutch snapshot rm SNAPSHOT...\n"
        "  Takes a snapshot (filesystem by default; memory keeps running processes) and waits until\n"
        "  it can be restored (local_ready; --completed waits for completed). Prints its id. Create\n"
        "  a sandbox from it with `hutch create --snapshot SNAPSHOT`. Alias: checkpoint.";

const char cli_copy_help[] =
        "hutch copy ID|NAME [-n N] [--timeout S]\n"
        "  Makes N (default 1) live copies of a running sandbox, each a new running sandbox with the\n"
        "  source's memory and files. Prints one new sandbox id per line; exits 1 if any failed.";

const char cli_clone_help[] =
        "hutch clone ID|NAME [--name NAME] [--type memory|filesystem] [--keep-snapshot] [--timeout S]\n"
        "  Takes a memory snapshot of the sandbox (filesystem with --type filesystem), creates a new\n"
        "  sandbox from it and prints the new id. The snapshot is deleted afterwards unless\n"
        "  --keep-snapshot.";

static bool progress_shown;

void cli_progress(const char *fmt, ...)
{
	if (cli.quiet || !isatty(STDERR_FILENO))
		return;
	if (!fmt) {
		if (progress_shown)
			fputs("\r\033[K", stderr);
		progress_shown = false;
		return;
	}
	va_list ap;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
	progress_shown = true;
}

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* GETs path and parses the 200 answer; prints the error otherwise. */
static json_t *api_get(const char *path, const char *what)
{
	struct cli_response r;
	if (cli_api("GET", path, NULL, &r) < 0)
		return NULL;
	json_t *v = NULL;
	if (r.status == 200)
		v = cli_json(&r);
	else
		cli_fail(&r, what);
	cli_response_release(&r);
	return v;
}

static bool snapshot_ready(const char *st, bool want_completed)
{
	return st && (strcmp(st, "completed") == 0 ||
	              (!want_completed && strcmp(st, "local_ready") == 0));
}

int cli_snapshot_wait(const char *snapshot_id, bool want_completed, int timeout_s, json_t **ret)
{
	_cleanup_free_ char *e = cli_escape(snapshot_id);
	_cleanup_free_ char *path = xasprintf("/snapshots/%s", e);
	uint64_t start = time_mono_ms();
	for (;;) {
		json_t *v = api_get(path, snapshot_id);
		const char *st = json_string_value(json_object_get(v, "status"));
		unsigned secs = (unsigned)((time_mono_ms() - start) / 1000);
		if (!v) {
			cli_progress(NULL);
			return 1;
		}
		if (snapshot_ready(st, want_completed)) {
			cli_progress(NULL);
			*ret = v;
			return 0;
		}
		if (st && strcmp(st, "failed") == 0) {
			const char *err = json_string_value(json_object_get(v, "error"));
			cli_progress(NULL);
			cli_error("snapshot %s failed: %s", snapshot_id, err ? err : "(no reason)");
			json_decref(v);
			return 1;
		}
		json_decref(v);
		if (secs >= (unsigned)timeout_s) {
			cli_progress(NULL);
			return cli_error("snapshot %s is still %s after %ds", snapshot_id,
			                 st ? st : "?", timeout_s);
		}
		cli_progress("snapshot %s: %s (%us)", snapshot_id, st ? st : "?", secs);
		usleep(250 * 1000);
	}
}

/* POST /sandboxes/{id}/snapshot; returns the new snapshot id (malloc'd) or NULL. */
static char *snapshot_begin(const char *id, const char *type)
{
	_cleanup_free_ char *e = cli_escape(id);
	_cleanup_free_ char *path = xasprintf("/sandboxes/%s/snapshot", e);
	json_t *body = NULL;
	if (type) {
		body = json_object();
		json_object_set_new(body, "snapshot_type", json_string(type));
	}
	struct cli_response r;
	int rc = cli_api("POST", path, body, &r);
	json_decref(body);
	if (rc < 0)
		return NULL;
	char *sid = NULL;
	json_t *v = r.status < 300 ? cli_json(&r) : NULL;
	if (r.status >= 300)
		cli_fail(&r, "snapshot");
	else if (!json_is_string(json_object_get(v, "snapshot_id")))
		cli_error("snapshot: the answer has no snapshot_id: %.200s", buf_cstr(&r.body));
	else
		sid = xstrdup(json_string_value(json_object_get(v, "snapshot_id")));
	json_decref(v);
	cli_response_release(&r);
	return sid;
}

struct snap_opts {
	const char *type;
	bool nowait, completed, keep;
	int timeout;
	const char *name;
	int times;
};

/* Options shared by snapshot, copy and clone; positional arguments go to ret_pos. */
static int snap_opts_parse(int argc, char **argv, int first, struct snap_opts *o,
                           const char **ret_pos, const char *help)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (is_help(a))
			return printf("usage: %s\n", help), -1;
		if (strcmp(a, "--type") == 0 && has_val)
			o->type = argv[++i];
		else if (strcmp(a, "--timeout") == 0 && has_val)
			o->timeout = atoi(argv[++i]);
		else if (strcmp(a, "--name") == 0 && has_val)
			o->name = argv[++i];
		else if ((strcmp(a, "-n") == 0 || strcmp(a, "--times") == 0) && has_val)
			o->times = atoi(argv[++i]);
		else if (strcmp(a, "--no-wait") == 0)
			o->nowait = true;
		else if (strcmp(a, "--completed") == 0)
			o->completed = true;
		else if (strcmp(a, "--keep-snapshot") == 0)
			o->keep = true;
		else if (a[0] != '-' && !*ret_pos)
			*ret_pos = a;
		else
			return cli_usage(help);
	}
	if (!*ret_pos || o->timeout <= 0 || o->times < 1 ||
	    (o->type && strcmp(o->type, "memory") != 0 && strcmp(o->type, "filesystem") != 0))
		return cli_usage(help);
	return 0;
}

static int snapshot_take(int argc, char **argv)
{
	struct snap_opts o = {.timeout = SNAPSHOT_TIMEOUT_S, .times = 1};
	const char *id = NULL;
	int rc = snap_opts_parse(argc, argv, 1, &o, &id, cli_snapshot_help);
	if (rc)
		return rc < 0 ? 0 : rc;
	_cleanup_free_ char *sid = snapshot_begin(id, o.type);
	if (!sid)
		return 1;
	json_t *v = NULL;
	if (o.nowait) {
		printf("%s\n", sid);
		return 0;
	}
	if (cli_snapshot_wait(sid, o.completed, o.timeout, &v))
		return 1;
	if (cli.json)
		cli_print_json(v);
	else
		printf("%s\n", sid);
	json_decref(v);
	return 0;
}

static void snapshot_row(json_t *s)
{
	printf("%-21s  %-21s  %-10s  %-11s  %10lld\n", json_string_value(json_object_get(s, "id")),
	       json_string_value(json_object_get(s, "sandbox_id")),
	       json_string_value(json_object_get(s, "snapshot_type")),
	       json_string_value(json_object_get(s, "status")),
	       (long long)json_integer_value(json_object_get(s, "size_bytes")));
}

static int snapshot_ls(int argc, char **argv)
{
	const char *sandbox = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--sandbox") == 0 && i + 1 < argc)
			sandbox = argv[++i];
		else
			return cli_usage(cli_snapshot_help);
	}
	json_t *v = api_get("/snapshots", "snapshot ls");
	if (!v)
		return 1;
	json_t *out = json_array();
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(v, "snapshots"), i, s)
	{
		const char *sb = json_string_value(json_object_get(s, "sandbox_id"));
		if (!sandbox || (sb && strcmp(sb, sandbox) == 0))
			json_array_append(out, s);
	}
	if (cli.json) {
		cli_print_json(out);
	} else {
		printf("%-21s  %-21s  %-10s  %-11s  %10s\n", "ID", "SANDBOX", "TYPE", "STATUS",
		       "SIZE");
		json_array_foreach(out, i, s) snapshot_row(s);
	}
	json_decref(out);
	json_decref(v);
	return 0;
}

static int snapshot_describe(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage(cli_snapshot_help);
	_cleanup_free_ char *e = cli_escape(argv[2]);
	_cleanup_free_ char *path = xasprintf("/snapshots/%s", e);
	json_t *v = api_get(path, argv[2]);
	if (!v)
		return 1;
	cli_print_json(v);
	json_decref(v);
	return 0;
}

static int snapshot_rm(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage(cli_snapshot_help);
	int rc = 0;
	for (int i = 2; i < argc; i++) {
		_cleanup_free_ char *e = cli_escape(argv[i]);
		_cleanup_free_ char *path = xasprintf("/snapshots/%s", e);
		struct cli_response r;
		if (cli_api("DELETE", path, NULL, &r) < 0) {
			rc = 1;
			continue;
		}
		if (r.status >= 300)
			rc = cli_fail(&r, argv[i]);
		else if (!cli.quiet)
			printf("%s deleted\n", argv[i]);
		cli_response_release(&r);
	}
	return rc;
}

int cmd_snapshot(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(cli_snapshot_help);
	if (strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0)
		return snapshot_ls(argc, argv);
	if (strcmp(argv[1], "describe") == 0 || strcmp(argv[1], "get") == 0)
		return snapshot_describe(argc, argv);
	if (strcmp(argv[1], "rm") == 0 || strcmp(argv[1], "delete") == 0)
		return snapshot_rm(argc, argv);
	return snapshot_take(argc, argv);
}

/* ---- copy ---- */

static int copy_report(json_t *v)
{
	int rc = 0;
	size_t i;
	json_t *s;
	if (cli.json)
		cli_print_json(v);
	json_array_foreach(json_object_get(v, "sandboxes"), i, s)
	{
		const char *id = json_string_value(json_object_get(s, "sandbox_id"));
		const char *st = json_string_value(json_object_get(s, "status"));
		if (st && strcmp(st, "running") == 0) {
			if (!cli.json)
				printf("%s\n", id);
			continue;
		}
		rc = cli_error("copy %s is %s", id ? id : "?", st ? st : "?");
	}
	return rc;
}

int cmd_copy(int argc, char **argv)
{
	struct snap_opts o = {.timeout = SNAPSHOT_TIMEOUT_S, .times = 1};
	const char *id = NULL;
	int rc = snap_opts_parse(argc, argv, 1, &o, &id, cli_copy_help);
	if (rc)
		return rc < 0 ? 0 : rc;
	_cleanup_free_ char *e = cli_escape(id);
	_cleanup_free_ char *path = xasprintf("/sandboxes/%s/copy?times=%d", e, o.times);
	_cleanup_free_ char *hdr =
	        xasprintf("X-Tensorlake-Request-Timeout-Ms: %d", o.timeout * 1000);
	const char *headers[] = {hdr, NULL};
	struct cli_response r;
	cli_progress("copying %s (%d)...", id, o.times);
	rc = cli_api_h("POST", path, NULL, headers, &r);
	cli_progress(NULL);
	if (rc < 0)
		return 1;
	json_t *v = json_loadb(r.body.data, r.body.len, 0, NULL);
	bool body_ok = json_is_array(json_object_get(v, "sandboxes"));
	/* 422 (some failed) and 504 (out of time) carry the same body as a 200 */
	if (body_ok && (r.status == 200 || r.status == 422 || r.status == 504))
		rc = copy_report(v) || r.status != 200;
	else
		rc = cli_fail(&r, "copy");
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

/* ---- clone ---- */

/* POST /sandboxes {snapshot_id, name?}; prints the new id. */
static int clone_create(const char *snapshot_id, const char *name, int timeout_s)
{
	json_t *body = json_object();
	json_object_set_new(body, "snapshot_id", json_string(snapshot_id));
	if (name)
		json_object_set_new(body, "name", json_string(name));
	_cleanup_free_ char *hdr =
	        xasprintf("X-Tensorlake-Request-Timeout-Ms: %d", timeout_s * 1000);
	const char *headers[] = {hdr, NULL};
	struct cli_response r;
	cli_progress("creating a sandbox from %s...", snapshot_id);
	int rc = cli_api_h("POST", "/sandboxes", body, headers, &r);
	cli_progress(NULL);
	json_decref(body);
	if (rc < 0)
		return 1;
	json_t *v = json_loadb(r.body.data, r.body.len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "sandbox_id"));
	const char *st = json_string_value(json_object_get(v, "status"));
	if (r.status >= 300 && !(r.status == 504 && st))
		rc = cli_fail(&r, "clone");
	else if (!st || strcmp(st, "running") != 0)
		rc = cli_error("clone %s is %s", id ? id : "?", st ? st : "?");
	else if (cli.json)
		cli_print_json(v);
	else
		printf("%s\n", id);
	json_decref(v);
	cli_response_release(&r);
	return rc;
}

int cmd_clone(int argc, char **argv)
{
	struct snap_opts o = {.timeout = SNAPSHOT_TIMEOUT_S, .times = 1, .type = "memory"};
	const char *id = NULL;
	int rc = snap_opts_parse(argc, argv, 1, &o, &id, cli_clone_help);
	if (rc)
		return rc < 0 ? 0 : rc;
	_cleanup_free_ char *sid = snapshot_begin(id, o.type);
	json_t *snap = NULL;
	if (!sid || cli_snapshot_wait(sid, false, o.timeout, &snap))
		return 1;
	json_decref(snap);
	rc = clone_create(sid, o.name, o.timeout < CREATE_TIMEOUT_S ? CREATE_TIMEOUT_S : o.timeout);
	if (!o.keep) {
		_cleanup_free_ char *path = xasprintf("/snapshots/%s", sid);
		struct cli_response r;
		if (cli_api("DELETE", path, NULL, &r) == 0)
			cli_response_release(&r);
	} else if (!cli.quiet) {
		fprintf(stderr, "hutch: snapshot %s kept\n", sid);
	}
	return rc;
}
