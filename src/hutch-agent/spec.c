/* Request bodies (StartProcess, RunProcess, the entrypoint file) parsed with jansson into a
 * struct proc_spec, with every field checked and defaulted as docs/design/agent.md describes. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "agent.h"

#define MAX_ARGS 65536

#define _cleanup_jsonp_ _cleanup_(json_decrefp) /* jansson's own cleanup helper */

void proc_spec_free(struct proc_spec *s)
{
	if (!s)
		return;
	strv_free(s->argv);
	strv_free(s->env);
	free(s->working_dir);
	free(s->user);
	free(s->name);
	free(s->health_path);
	free(s);
}

static int bad(struct hutch_error *err, const char *fmt, const char *field)
{
	return hutch_error_api(err, 400, "BAD_REQUEST", fmt, field);
}

/* An optional non-negative integer field. */
static int get_u64(json_t *o, const char *key, uint64_t def, uint64_t *ret, struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		*ret = def;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ret = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e18) {
		*ret = (uint64_t)json_real_value(v);
		return 0;
	}
	return bad(err, "\"%s\" must be a non-negative integer", key);
}

/* An optional string field; *ret stays NULL when absent or null. */
static int get_str(json_t *o, const char *key, char **ret, struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, "\"%s\" must be a string", key);
	*ret = xstrdup(json_string_value(v));
	return 0;
}

static int parse_argv(json_t *cmd, json_t *args, struct proc_spec *s, struct hutch_error *err)
{
	if (!json_is_string(cmd) || json_string_length(cmd) == 0 ||
	    strlen(json_string_value(cmd)) != json_string_length(cmd))
		return bad(err, "\"%s\" must be a non-empty string", "command");
	if (args && !json_is_null(args) &&
	    (!json_is_array(args) || json_array_size(args) > MAX_ARGS))
		return bad(err, "\"%s\" must be an array of strings", "args");
	size_t n = args && json_is_array(args) ? json_array_size(args) : 0;
	s->argv = xcalloc(n + 2, sizeof(char *));
	s->argv[0] = xstrdup(json_string_value(cmd));
	s->argc = 1;
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(args, i);
		if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
			return bad(err, "\"%s\" must be an array of strings", "args");
		s->argv[s->argc++] = xstrdup(json_string_value(a));
	}
	return 0;
}

static int parse_env(json_t *env, struct proc_spec *s, struct hutch_error *err)
{
	if (!env || json_is_null(env))
		return 0;
	if (!json_is_object(env) || json_object_size(env) > MAX_ARGS)
		return bad(err, "\"%s\" must be an object of strings", "env");
	s->env = xcalloc(json_object_size(env) + 1, sizeof(char *));
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(env, k, v)
	{
		if (!k[0] || strchr(k, '='))
			return bad(err, "invalid name in \"%s\"", "env");
		if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
			s->env[n++] = xasprintf("%s=%s", k, json_string_value(v));
		else if (json_is_integer(v))
			s->env[n++] = xasprintf("%s=%lld", k, (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			s->env[n++] = xasprintf("%s=%s", k, json_is_true(v) ? "true" : "false");
		else
			return bad(err, "\"%s\" values must be strings", "env");
	}
	return 0;
}

/* user: "name" | "uid" | "uid:gid" | {name} | {uid, gid?} (not both name and uid). */
static int parse_user(json_t *u, struct proc_spec *s, struct hutch_error *err)
{
	if (!u || json_is_null(u))
		return 0;
	if (json_is_string(u)) {
		if (json_string_length(u) == 0 ||
		    strlen(json_string_value(u)) != json_string_length(u))
			return bad(err, "\"%s\" must not be empty", "user");
		s->user = xstrdup(json_string_value(u));
		return 0;
	}
	if (!json_is_object(u))
		return bad(err, "\"%s\" must be a string or an object", "user");
	json_t *name = json_object_get(u, "name"), *uid = json_object_get(u, "uid");
	json_t *gid = json_object_get(u, "gid");
	if (name && !json_is_null(name)) {
		if (uid || !json_is_string(name) || json_string_length(name) == 0)
			return bad(err, "\"%s\" needs either a name or a uid", "user");
		s->user = xstrdup(json_string_value(name));
		return 0;
	}
	if (!json_is_integer(uid) || json_integer_value(uid) < 0 ||
	    (gid && !json_is_null(gid) && (!json_is_integer(gid) || json_integer_value(gid) < 0)))
		return bad(err, "\"%s\" needs a name or a non-negative uid", "user");
	if (gid && !json_is_null(gid))
		s->user = xasprintf("%lld:%lld", (long long)json_integer_value(uid),
		                    (long long)json_integer_value(gid));
	else
		s->user = xasprintf("%lld", (long long)json_integer_value(uid));
	return 0;
}

static int parse_mode(json_t *o, const char *key, const char *a, const char *b, bool *ret_b,
                      struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	*ret_b = false;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v) && strcmp(json_string_value(v), a) == 0)
		return 0;
	if (json_is_string(v) && strcmp(json_string_value(v), b) == 0) {
		*ret_b = true;
		return 0;
	}
	return hutch_error_api(err, 400, "BAD_REQUEST", "\"%s\" must be \"%s\" or \"%s\"", key, a,
	                       b);
}

static int parse_restart(json_t *r, struct proc_spec *s, struct hutch_error *err)
{
	s->policy = RESTART_ON_FAILURE;
	s->max_restarts = -1;
	s->initial_backoff_ms = 500;
	s->max_backoff_ms = 30000;
	if (!r || json_is_null(r))
		return 0;
	if (!json_is_object(r))
		return bad(err, "\"%s\" must be an object", "restart");
	json_t *pol = json_object_get(r, "policy");
	if (pol && !json_is_null(pol)) {
		const char *p = json_is_string(pol) ? json_string_value(pol) : "";
		if (strcmp(p, "never") == 0)
			s->policy = RESTART_NEVER;
		else if (strcmp(p, "on_failure") == 0)
			s->policy = RESTART_ON_FAILURE;
		else if (strcmp(p, "always") == 0)
			s->policy = RESTART_ALWAYS;
		else
			return bad(err, "\"%s\" must be never, on_failure or always", "policy");
	}
	uint64_t mr;
	if (get_u64(r, "max_restarts", UINT64_MAX, &mr, err) < 0 ||
	    get_u64(r, "initial_backoff_ms", 500, &s->initial_backoff_ms, err) < 0 ||
	    get_u64(r, "max_backoff_ms", 30000, &s->max_backoff_ms, err) < 0)
		return err->code;
	s->max_restarts = mr == UINT64_MAX ? -1 : (int64_t)(mr > INT32_MAX ? INT32_MAX : mr);
	if (s->max_backoff_ms < s->initial_backoff_ms)
		s->max_backoff_ms = s->initial_backoff_ms;
	return 0;
}

static int parse_health(json_t *h, struct proc_spec *s, struct hutch_error *err)
{
	if (!h || json_is_null(h))
		return 0;
	if (!json_is_object(h))
		return bad(err, "\"%s\" must be an object", "health_check");
	json_t *t = json_object_get(h, "type");
	const char *ts = json_is_string(t) ? json_string_value(t) : "";
	if (strcmp(ts, "http") == 0)
		s->health = HEALTH_HTTP;
	else if (strcmp(ts, "tcp") == 0)
		s->health = HEALTH_TCP;
	else
		return bad(err, "\"%s\" must be http or tcp", "health_check.type");
	uint64_t port;
	if (get_u64(h, "port", 0, &port, err) < 0 || port == 0 || port > 65535)
		return bad(err, "\"%s\" must be a port number", "health_check.port");
	s->health_port = (int)port;
	if (get_str(h, "path", &s->health_path, err) < 0)
		return err->code;
	if (s->health_path && s->health_path[0] != '/')
		return bad(err, "\"%s\" must start with /", "health_check.path");
	if (get_u64(h, "initial_delay_ms", 5000, &s->health_initial_delay_ms, err) < 0 ||
	    get_u64(h, "interval_ms", 1000, &s->health_interval_ms, err) < 0 ||
	    get_u64(h, "timeout_ms", 500, &s->health_timeout_ms, err) < 0 ||
	    get_u64(h, "failure_threshold", 3, &s->health_failure_threshold, err) < 0)
		return err->code;
	if (s->health_interval_ms == 0)
		s->health_interval_ms = 1;
	if (s->health_timeout_ms == 0)
		s->health_timeout_ms = 1;
	if (s->health_failure_threshold == 0)
		s->health_failure_threshold = 1;
	return 0;
}

/* Managed names: non-empty, no '/', not all digits (digits always address a pid). */
static int check_name(const char *name, struct hutch_error *err)
{
	size_t n = strlen(name), digits = strspn(name, "0123456789");
	if (n == 0 || strchr(name, '/') || digits == n || n > 255)
		return bad(err, "invalid managed process name \"%s\"", name);
	return 0;
}

static int parse_supervision(json_t *o, struct proc_spec *s, struct hutch_error *err)
{
	json_t *restart = json_object_get(o, "restart"),
	       *health = json_object_get(o, "health_check");
	if (get_str(o, "name", &s->name, err) < 0)
		return err->code;
	if (s->name && check_name(s->name, err) < 0)
		return err->code;
	if (parse_restart(restart, s, err) < 0 || parse_health(health, s, err) < 0)
		return err->code;
	s->managed = s->name || (restart && !json_is_null(restart)) || s->health != HEALTH_NONE;
	return 0;
}

static int parse_timeout(json_t *o, struct proc_spec *s, struct hutch_error *err)
{
	json_t *t = json_object_get(o, "timeout");
	if (!t || json_is_null(t))
		return 0;
	if (!json_is_number(t) || json_number_value(t) < 0 || !isfinite(json_number_value(t)))
		return bad(err, "\"%s\" must be a non-negative number of seconds", "timeout");
	s->timeout_s = json_number_value(t);
	return 0;
}

static int spec_fill(json_t *o, bool run, struct proc_spec *s, struct hutch_error *err)
{
	if (parse_argv(json_object_get(o, "command"), json_object_get(o, "args"), s, err) < 0 ||
	    parse_env(json_object_get(o, "env"), s, err) < 0 ||
	    get_str(o, "working_dir", &s->working_dir, err) < 0 ||
	    parse_user(json_object_get(o, "user"), s, err) < 0)
		return err->code;
	if (run)
		return parse_timeout(o, s, err); /* stdin closed, output captured, unsupervised */
	if (parse_mode(o, "stdin_mode", "closed", "pipe", &s->stdin_pipe, err) < 0 ||
	    parse_mode(o, "stdout_mode", "capture", "discard", &s->discard[OUT_STDOUT], err) < 0 ||
	    parse_mode(o, "stderr_mode", "capture", "discard", &s->discard[OUT_STDERR], err) < 0)
		return err->code;
	return parse_supervision(o, s, err);
}

int proc_spec_parse(const char *body, size_t len, bool run, struct proc_spec **ret,
                    struct hutch_error *err)
{
	json_error_t jerr;
	_cleanup_jsonp_ json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return hutch_error_api(err, 400, "BAD_REQUEST", "invalid JSON: %s", jerr.text);
	return proc_spec_from_json(o, run, ret, err);
}

int proc_spec_from_json(json_t *o, bool run, struct proc_spec **ret, struct hutch_error *err)
{
	if (!json_is_object(o))
		return bad(err, "the body must be a JSON %s", "object");
	struct proc_spec *s = xcalloc(1, sizeof(*s));
	if (spec_fill(o, run, s, err) < 0) {
		proc_spec_free(s);
		return err->code;
	}
	*ret = s;
	return 0;
}

int proc_spec_from_argv_json(const char *body, size_t len, struct proc_spec **ret,
                             struct hutch_error *err)
{
	json_error_t jerr;
	_cleanup_jsonp_ json_t *a = json_loadb(body, len, 0, &jerr);
	if (!a || !json_is_array(a) || json_array_size(a) == 0)
		return hutch_error_set(err, -EINVAL, "entrypoint must be a non-empty JSON array");
	json_t *rest = json_array();
	for (size_t i = 1; i < json_array_size(a); i++)
		json_array_append(rest, json_array_get(a, i));
	struct proc_spec *s = xcalloc(1, sizeof(*s));
	int r = parse_argv(json_array_get(a, 0), rest, s, err);
	json_decref(rest);
	if (r < 0) {
		proc_spec_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
