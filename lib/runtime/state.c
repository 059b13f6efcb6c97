/* sandboxes/<id>/state.json: what re-adoption needs, written atomically once PID 1 exists. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/internal.h"

#define STATE_VERSION 1

int rt_state_write(const struct rt_config *cfg, const struct rt_state *st, struct hutch_error *err)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, st->id, "state.json");
	json_t *o = json_pack("{s:i, s:s, s:I, s:I, s:s, s:s, s:I}", "version", STATE_VERSION, "id",
	                      st->id, "init_pid", (json_int_t)st->init_pid, "init_start",
	                      (json_int_t)st->init_start, "cgroup", st->cgroup, "image", st->image,
	                      "created_at_ms", (json_int_t)st->created_at_ms);
	if (!o)
		return hutch_error_set(err, -ENOMEM, "building state for %s", st->id);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return hutch_error_set(err, -ENOMEM, "serializing state for %s", st->id);
	int r = rt_write_replace(path, s, strlen(s), 0600);
	free(s);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s", path);
	}
	return 0;
}

static int copy_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (!v || strlen(v) >= size)
		return -EINVAL;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

int rt_state_read(const struct rt_config *cfg, const char *id, struct rt_state *ret,
                  struct hutch_error *err)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, id, "state.json");
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct rt_state st;
	json_error_t je;
	int r = read_file(path, 1 << 16, &b);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "reading %s", path);
	}
	json_t *o = json_loadb(b.data, b.len, 0, &je);
	if (!o)
		return hutch_error_set(err, -EINVAL, "%s: %s", path, je.text);
	memset(&st, 0, sizeof(st));
	json_int_t pid = json_integer_value(json_object_get(o, "init_pid"));
	json_int_t start = json_integer_value(json_object_get(o, "init_start"));
	st.created_at_ms = json_integer_value(json_object_get(o, "created_at_ms"));
	r = copy_str(o, "id", st.id, sizeof(st.id));
	if (r == 0)
		r = copy_str(o, "cgroup", st.cgroup, sizeof(st.cgroup));
	if (r == 0)
		r = copy_str(o, "image", st.image, sizeof(st.image));
	json_decref(o);
	if (r < 0 || pid <= 0 || pid > INT32_MAX || start <= 0 || strcmp(st.id, id) != 0)
		return hutch_error_set(err, -EINVAL, "%s: malformed state", path);
	st.init_pid = (pid_t)pid;
	st.init_start = (uint64_t)start;
	*ret = st;
	return 0;
}
