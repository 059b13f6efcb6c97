/* Parsing and validation of sandbox create and update bodies. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apimodel/apimodel.h"
#include "base/cleanup.h"
#include "base/xalloc.h"

#define MAX_JSON_DEPTH      16
#define MAX_ENTRYPOINT_ARGS 256
#define MAX_ARG_LEN         8192
#define MAX_POLICY_ENTRIES  256
#define MAX_PORTS           64

void apimodel_limits_defaults(struct apimodel_limits *l)
{
	l->default_timeout_secs = 600;
	l->max_timeout_secs = 86400;
	l->max_cpus = 64;
	l->max_memory_mb = 256 * 1024;
	l->max_disk_mb = 1024 * 1024;
}

static int bad(struct hutch_error *err, const char *field, const char *fmt, const char *detail)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, detail ? detail : "");
	return hutch_error_api(err, 400, "INVALID_ARGUMENT", "%s: %s", field, msg);
}

/* Depth of nested containers, to refuse absurdly deep documents before walking them. */
static int json_depth(json_t *v, int limit)
{
	if (limit < 0)
		return 1 << 20;
	int max = 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach(v, k, c)
		{
			int d = json_depth(c, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c)
		{
			int d = json_depth(c, limit - 1);
			if (d > max)
				max = d;
		}
		return max + 1;
	}
	return 0;
}

/* Parses body as a JSON object; empty input is {}. */
static int parse_object(const char *body, size_t len, json_t **ret, struct hutch_error *err)
{
	if (!body || len == 0) {
		*ret = json_object();
		return 0;
	}
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v)
		return hutch_error_api(err, 400, "INVALID_JSON",
		                       "malformed JSON at line %d column %d: %s", je.line,
		                       je.column, je.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return hutch_error_api(err, 400, "INVALID_JSON",
		                       "the request body must be a JSON object");
	}
	if (json_depth(v, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
		json_decref(v);
		return hutch_error_api(err, 400, "INVALID_JSON", "JSON nested too deeply");
	}
	*ret = v;
	return 0;
}

bool apimodel_name_valid(const char *s, size_t len, const char **ret_why)
{
	const char *why = NULL;
	if (len == 0 || len > 63)
		why = "must be 1 to 63 characters";
	else if (!(s[0] >= 'a' && s[0] <= 'z'))
		why = "must start with a lowercase letter";
	else if (s[len - 1] == '-')
		why = "must not end with '-'";
	else {
		bool all_alnum = true;
		for (size_t i = 0; i < len && !why; i++) {
			char c = s[i];
			bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
			if (!ok)
				why = "may only contain lowercase letters, digits and '-'";
			if (c == '-')
				all_alnum = false;
		}
		if (!why && len == 21 && all_alnum)
			why = "must not look like a sandbox id (21 lowercase alphanumerics)";
	}
	if (ret_why)
		*ret_why = why;
	return why == NULL;
}

bool apimodel_image_valid(const char *s, size_t len)
{
	if (len == 0 || len > 128)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '/' || c == ':' || c == '-'))
			return false;
	}
	return strstr(s, "..") == NULL;
}

/* ---- field helpers ---- */

static int get_string(json_t *o, const char *key, const char *field, size_t max, char **ret,
                      struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(err, field, "must be a string%s", NULL);
	if (json_string_length(v) > max)
		return bad(err, field, "is too long%s", NULL);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return bad(err, field, "must not contain NUL characters%s", NULL);
	*ret = xstrdup(json_string_value(v));
	return 0;
}

/* Integer field (JSON integers only; 1.0 is accepted as 1). present says if it was there. */
static int get_int(json_t *o, const char *key, const char *field, int64_t min, int64_t max,
                   int64_t *ret, bool *present, struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	int64_t x;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	           fabs(json_real_value(v)) < 9e15) {
		x = (int64_t)json_real_value(v);
	} else {
		return bad(err, field, "must be an integer%s", NULL);
	}
	if (x < min || x > max) {
		char range[96];
		snprintf(range, sizeof(range), "%lld..%lld", (long long)min, (long long)max);
		return bad(err, field, "must be in the range %s", range);
	}
	*ret = x;
	*present = true;
	return 0;
}

static int get_bool(json_t *o, const char *key, const char *field, bool *ret, bool *present,
                    struct hutch_error *err)
{
	json_t *v = json_object_get(o, key);
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return bad(err, field, "must be true or false%s", NULL);
	*ret = json_is_true(v);
	*present = true;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* exposed_ports: integers 1..65535 except 9501, de-duplicated and sorted, as JSON text. */
static int parse_ports(json_t *v, struct buf *ret, struct hutch_error *err)
{
	if (!json_is_array(v))
		return bad(err, "exposed_ports", "must be an array of port numbers%s", NULL);
	size_t n = json_array_size(v);
	if (n > MAX_PORTS)
		return bad(err, "exposed_ports", "has more than 64 ports%s", NULL);
	int64_t ports[MAX_PORTS];
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(v, i);
		if (!json_is_integer(p) || json_integer_value(p) < 1 ||
		    json_integer_value(p) > 65535)
			return bad(err, "exposed_ports", "entries must be integers 1..65535%s",
			           NULL);
		if (json_integer_value(p) == 9501)
			return bad(err, "exposed_ports",
			           "9501 is reserved for the sandbox agent and always routed%s",
			           NULL);
		ports[i] = json_integer_value(p);
	}
	qsort(ports, n, sizeof(ports[0]), cmp_int);
	buf_addch(ret, '[');
	for (size_t i = 0, out = 0; i < n; i++) {
		if (i > 0 && ports[i] == ports[i - 1])
			continue;
		buf_printf(ret, "%s%lld", out++ ? "," : "", (long long)ports[i]);
	}
	buf_addch(ret, ']');
	return 0;
}

static int parse_string_array(json_t *v, const char *field, size_t max_items, size_t max_len,
                              bool nonempty, char **ret, struct hutch_error *err)
{
	if (!json_is_array(v))
		return bad(err, field, "must be an array of strings%s", NULL);
	size_t n = json_array_size(v);
	if (nonempty && n == 0)
		return bad(err, field, "must not be empty%s", NULL);
	if (n > max_items)
		return bad(err, field, "has too many entries%s", NULL);
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(v, i);
		if (!json_is_string(s) || json_string_length(s) > max_len ||
		    memchr(json_string_value(s), '\0', json_string_length(s)))
			return bad(err, field, "entries must be strings without NUL characters%s",
			           NULL);
	}
	*ret = json_dumps(v, JSON_COMPACT);
	return 0;
}

/* ---- create ---- */

static int parse_resources(json_t *o, const struct apimodel_limits *lim, struct create_req *r,
                           struct hutch_error *err)
{
	json_t *res = json_object_get(o, "resources");
	r->cpus = 1.0;
	r->memory_mb = 1024;
	r->disk_mb = 10240;
	if (!res || json_is_null(res))
		return 0;
	if (!json_is_object(res))
		return bad(err, "resources", "must be an object%s", NULL);
	json_t *cpus = json_object_get(res, "cpus");
	if (cpus && !json_is_null(cpus)) {
		if (!json_is_number(cpus))
			return bad(err, "resources.cpus", "must be a number%s", NULL);
		double c = json_number_value(cpus);
		if (!(c > 0) || c > lim->max_cpus || !isfinite(c))
			return bad(err, "resources.cpus",
			           "must be greater than 0 and at most the "
			           "server maximum%s",
			           NULL);
		r->cpus = c;
	}
	bool has;
	int rc = get_int(res, "memory_mb", "resources.memory_mb", 16, lim->max_memory_mb,
	                 &r->memory_mb, &has, err);
	int64_t disk = 0, eph = 0;
	bool has_disk = false, has_eph = false;
	if (rc == 0)
		rc = get_int(res, "disk_mb", "resources.disk_mb", 64, lim->max_disk_mb, &disk,
		             &has_disk, err);
	if (rc == 0)
		rc = get_int(res, "ephemeral_disk_mb", "resources.ephemeral_disk_mb", 64,
		             lim->max_disk_mb, &eph, &has_eph, err);
	if (rc < 0)
		return rc;
	if (has_disk && has_eph && disk != eph)
		return bad(err, "resources.disk_mb", "and resources.ephemeral_disk_mb disagree%s",
		           NULL);
	if (has_disk || has_eph)
		r->disk_mb = has_disk ? disk : eph;
	json_t *gpus = json_object_get(res, "gpus");
	if (gpus && !json_is_null(gpus) && !(json_is_array(gpus) && json_array_size(gpus) == 0))
		return hutch_error_api(err, 400, "GPUS_UNAVAILABLE",
		                       "resources.gpus: this server has no GPUs to offer");
	return 0;
}

static int parse_access(json_t *o, bool *ret, bool *ret_present, struct hutch_error *err)
{
	bool a = false, b = false, has_a = false, has_b = false;
	int rc = get_bool(o, "allow_unauthenticated_access", "allow_unauthenticated_access", &a,
	                  &has_a, err);
	if (rc == 0)
		rc = get_bool(o, "allow_unauthenticated_proxy_access",
		              "allow_unauthenticated_proxy_access", &b, &has_b, err);
	if (rc < 0)
		return rc;
	if (has_a && has_b && a != b)
		return bad(err, "allow_unauthenticated_access",
		           "and its legacy alias allow_unauthenticated_proxy_access disagree%s",
		           NULL);
	*ret = has_a ? a : b;
	*ret_present = has_a || has_b;
	return 0;
}

static int parse_name(json_t *o, char **ret, bool *present, struct hutch_error *err)
{
	json_t *v = json_object_get(o, "name");
	*present = v != NULL;
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(err, "name", "must be a string%s", NULL);
	const char *why;
	if (!apimodel_name_valid(json_string_value(v), json_string_length(v), &why))
		return bad(err, "name", "%s", why);
	*ret = xstrdup(json_string_value(v));
	return 0;
}

static int parse_unsupported(json_t *o, struct hutch_error *err)
{
	json_t *v = json_object_get(o, "file_systems");
	if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
		return hutch_error_api(err, 400, "FILE_SYSTEMS_UNAVAILABLE",
		                       "file_systems: artifact file systems are not available on "
		                       "this server");
	v = json_object_get(o, "pool_id");
	if (v && !json_is_null(v))
		return bad(err, "pool_id",
		           "is not accepted here; claim from a pool with POST "
		           "/sandbox-pools/{id}/sandboxes%s",
		           NULL);
	return 0;
}

static int create_fields(json_t *o, const struct apimodel_limits *lim, struct create_req *r,
                         struct hutch_error *err)
{
	bool has;
	int rc = get_string(o, "image", "image", 128, &r->image, err);
	if (rc == 0 && r->image && !apimodel_image_valid(r->image, strlen(r->image)))
		rc = bad(err, "image", "is not a valid image name%s", NULL);
	if (rc == 0)
		rc = parse_resources(o, lim, r, err);
	r->timeout_secs = lim->default_timeout_secs;
	if (rc == 0)
		rc = get_int(o, "timeout_secs", "timeout_secs", 0, lim->max_timeout_secs,
		             &r->timeout_secs, &has, err);
	json_t *v = json_object_get(o, "entrypoint");
	if (rc == 0 && v && !json_is_null(v))
		rc = parse_string_array(v, "entrypoint", MAX_ENTRYPOINT_ARGS, MAX_ARG_LEN, true,
		                        &r->entrypoint, err);
	v = json_object_get(o, "network");
	if (rc == 0 && v && !json_is_null(v)) {
		struct buf b = BUF_INIT;
		rc = netpol_normalise(v, "network", &b, err);
		r->network = rc == 0 ? buf_detach(&b, NULL) : NULL;
		buf_release(&b);
	}
	if (rc == 0)
		rc = parse_name(o, &r->name, &has, err);
	if (rc == 0)
		rc = parse_access(o, &r->allow_unauth, &has, err);
	v = json_object_get(o, "exposed_ports");
	if (rc == 0 && v && !json_is_null(v)) {
		struct buf b = BUF_INIT;
		rc = parse_ports(v, &b, err);
		r->exposed_ports = rc == 0 ? buf_detach(&b, NULL) : NULL;
		buf_release(&b);
	}
	if (rc == 0)
		rc = get_string(o, "snapshot_id", "snapshot_id", 128, &r->snapshot_id, err);
	if (rc == 0)
		rc = get_string(o, "template_id", "template_id", 128, &r->template_id, err);
	v = json_object_get(o, "secret_names");
	if (rc == 0 && v && !json_is_null(v)) {
		rc = parse_string_array(v, "secret_names", 64, 256, false, &r->secret_names, err);
		if (rc == 0 && json_array_size(v) > 0)
			rc = hutch_error_api(err, 400, "SECRETS_UNAVAILABLE",
			                     "secret_names: this server has no secret store");
	}
	if (rc == 0)
		rc = parse_unsupported(o, err);
	return rc;
}

int create_req_parse(const char *body, size_t len, const struct apimodel_limits *lim,
                     struct create_req *ret, struct hutch_error *err)
{
	json_t *o;
	struct create_req r = {0};
	int rc = parse_object(body, len, &o, err);
	if (rc < 0)
		return rc;
	rc = create_fields(o, lim, &r, err);
	json_decref(o);
	if (rc < 0) {
		create_req_release(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

void create_req_release(struct create_req *r)
{
	free(r->image);
	free(r->entrypoint);
	free(r->network);
	free(r->name);
	free(r->exposed_ports);
	free(r->snapshot_id);
	free(r->template_id);
	free(r->secret_names);
	memset(r, 0, sizeof(*r));
}

/* ---- update ---- */

static int update_fields(json_t *o, struct update_req *r, struct hutch_error *err)
{
	int rc = 0;
	json_t *v = json_object_get(o, "name");
	if (v) {
		if (json_is_null(v))
			return bad(err, "name", "cannot be cleared; a named sandbox stays named%s",
			           NULL);
		rc = parse_name(o, &r->name, &r->has_name, err);
	}
	if (rc == 0)
		rc = parse_access(o, &r->allow_unauth, &r->has_allow_unauth, err);
	v = json_object_get(o, "exposed_ports");
	if (rc == 0 && v) {
		struct buf b = BUF_INIT;
		r->has_exposed_ports = true;
		if (json_is_null(v))
			buf_adds(&b, "[]");
		else
			rc = parse_ports(v, &b, err);
		r->exposed_ports = rc == 0 ? buf_detach(&b, NULL) : NULL;
		buf_release(&b);
	}
	v = json_object_get(o, "network");
	if (rc == 0 && v) {
		r->has_network = true;
		if (!json_is_null(v)) {
			struct buf b = BUF_INIT;
			rc = netpol_normalise(v, "network", &b, err);
			r->network = rc == 0 ? buf_detach(&b, NULL) : NULL;
			buf_release(&b);
		}
	}
	if (rc == 0 && !r->has_name && !r->has_allow_unauth && !r->has_exposed_ports &&
	    !r->has_network)
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                     "an update needs at least one of name, "
		                     "allow_unauthenticated_access, exposed_ports, network");
	return rc;
}

int update_req_parse(const char *body, size_t len, struct update_req *ret, struct hutch_error *err)
{
	json_t *o;
	struct update_req r = {0};
	int rc = parse_object(body, len, &o, err);
	if (rc < 0)
		return rc;
	rc = update_fields(o, &r, err);
	json_decref(o);
	if (rc < 0) {
		update_req_release(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

void update_req_release(struct update_req *r)
{
	free(r->name);
	free(r->exposed_ports);
	free(r->network);
	memset(r, 0, sizeof(*r));
}
