/* cgroup v1 backend: one directory per sandbox in each of the memory, cpu, pids and freezer
 * hierarchies, <ctrl>/<cgroup_name>/<id>. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"
#include "runtime/internal.h"

const char *const rt_cgroup_v1_controllers[] = {"memory", "cpu", "pids", "freezer", NULL};

#define CPU_PERIOD_US 100000

static char *v1_dir(const struct rt_config *cfg, const char *ctrl, const char *id)
{
	if (!id)
		return xasprintf(RT_CGROUP_ROOT "/%s/%s", ctrl, rt_cfg_cgroup(cfg));
	return xasprintf(RT_CGROUP_ROOT "/%s/%s/%s", ctrl, rt_cfg_cgroup(cfg), id);
}

static char *v1_file(const struct rt_config *cfg, const char *ctrl, const char *id,
                     const char *leaf)
{
	return xasprintf(RT_CGROUP_ROOT "/%s/%s/%s/%s", ctrl, rt_cfg_cgroup(cfg), id, leaf);
}

static int v1_setup(const struct rt_config *cfg, struct hutch_error *err)
{
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], NULL);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return hutch_error_errno(err, "creating cgroup %s", dir);
	}
	return 0;
}

static int v1_teardown(const struct rt_config *cfg, struct hutch_error *err)
{
	int ret = 0;
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], NULL);
		if (rmdir(dir) < 0 && errno != ENOENT && errno != EBUSY && ret == 0)
			ret = hutch_error_errno(err, "removing cgroup %s", dir);
	}
	return ret;
}

static int v1_set(const struct rt_config *cfg, const char *ctrl, const char *id, const char *leaf,
                  const char *value, struct hutch_error *err)
{
	_cleanup_free_ char *path = v1_file(cfg, ctrl, id, leaf);
	int r = write_file_str(path, value);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s to %s", value, path);
	}
	return 0;
}

static int v1_limits(const struct rt_config *cfg, const char *id, const struct rt_limits *lim,
                     struct hutch_error *err)
{
	char v[32];
	int r;

	snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->memory_bytes);
	if ((r = v1_set(cfg, "memory", id, "memory.limit_in_bytes", v, err)) < 0)
		return r;
	_cleanup_free_ char *memsw = v1_file(cfg, "memory", id, "memory.memsw.limit_in_bytes");
	if (access(memsw, F_OK) == 0 &&
	    (r = v1_set(cfg, "memory", id, "memory.memsw.limit_in_bytes", v, err)) < 0)
		return r;
	if ((r = v1_set(cfg, "memory", id, "memory.swappiness", "0", err)) < 0)
		return r;
	snprintf(v, sizeof(v), "%d", CPU_PERIOD_US);
	if ((r = v1_set(cfg, "cpu", id, "cpu.cfs_period_us", v, err)) < 0)
		return r;
	long long quota = (long long)(lim->cpus * CPU_PERIOD_US);
	snprintf(v, sizeof(v), "%lld", quota < 1000 ? 1000 : quota);
	if ((r = v1_set(cfg, "cpu", id, "cpu.cfs_quota_us", v, err)) < 0)
		return r;
	snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->pids_max);
	return v1_set(cfg, "pids", id, "pids.max", v, err);
}

static int v1_create(const struct rt_config *cfg, const char *id, const struct rt_limits *lim,
                     struct hutch_error *err)
{
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], id);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return hutch_error_errno(err, "creating cgroup %s", dir);
	}
	return v1_limits(cfg, id, lim, err);
}

static int v1_open_for_clone(const struct rt_config *cfg, const char *id)
{
	return -1;
}

static int v1_attach(const struct rt_config *cfg, const char *id, pid_t pid,
                     struct hutch_error *err)
{
	char v[32];

	snprintf(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		int r = v1_set(cfg, rt_cgroup_v1_controllers[i], id, "cgroup.procs", v, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static char **v1_self_attach_files(const struct rt_config *cfg, const char *id)
{
	size_t n = ARRAY_SIZE(rt_cgroup_v1_controllers);
	char **files = xcalloc(n, sizeof(char *));

	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++)
		files[i] = v1_file(cfg, rt_cgroup_v1_controllers[i], id, "tasks");
	return files;
}

static int v1_freeze(const struct rt_config *cfg, const char *id, bool frozen,
                     struct hutch_error *err)
{
	_cleanup_free_ char *path = v1_file(cfg, "freezer", id, "freezer.state");
	const char *want = frozen ? "FROZEN" : "THAWED";

	/* FREEZING can stall while a task is in an uninterruptible sleep: ask again. */
	for (int attempt = 0; attempt < 10; attempt++) {
		int r = write_file_str(path, want);
		if (r < 0) {
			errno = -r;
			return hutch_error_errno(err, "writing %s to %s", want, path);
		}
		r = rt_cgroup_wait_value(path, NULL, want, 200);
		if (r == 0)
			return 0;
		if (r != -ETIMEDOUT) {
			errno = -r;
			return hutch_error_errno(err, "reading %s", path);
		}
	}
	return hutch_error_set(err, -ETIMEDOUT, "cgroup %s did not reach %s", path, want);
}

/* Sends SIGKILL to every pid in the file; returns how many were listed. */
static int kill_listed(const char *procs)
{
	struct buf b = BUF_INIT;
	int n = 0;

	if (read_file(procs, 1 << 22, &b) < 0) {
		buf_release(&b);
		return 0;
	}
	for (char *p = b.data; p && *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 1 || (pid == 1 && getpid() != 1))
			kill((pid_t)pid, SIGKILL);
		n++;
		p = end;
		while (*p == '\n')
			p++;
	}
	buf_release(&b);
	return n;
}

static int v1_kill_all(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	_cleanup_free_ char *fdir = v1_dir(cfg, "freezer", id);
	uint64_t deadline = time_mono_ms() + 5000;

	if (access(fdir, F_OK) == 0)
		v1_freeze(cfg, id, true, NULL);
	for (;;) {
		int listed = 0;
		for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
			_cleanup_free_ char *procs =
			        v1_file(cfg, rt_cgroup_v1_controllers[i], id, "cgroup.procs");
			listed += kill_listed(procs);
		}
		if (access(fdir, F_OK) == 0)
			v1_freeze(cfg, id, false, NULL);
		if (listed == 0)
			return 0;
		if (time_mono_ms() >= deadline)
			return hutch_error_set(err, -EBUSY,
			                       "processes of sandbox %s survive SIGKILL", id);
		usleep(1000);
	}
}

static int v1_remove(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	int ret = 0;

	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], id);
		int tries = 0;
		while (rmdir(dir) < 0 && errno != ENOENT) {
			if (errno != EBUSY || ++tries > 500) {
				ret = hutch_error_errno(err, "removing cgroup %s", dir);
				break;
			}
			usleep(2000);
		}
	}
	return ret;
}

static bool v1_exists(const struct rt_config *cfg, const char *id)
{
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], id);
		if (access(dir, F_OK) == 0)
			return true;
	}
	return false;
}

static int v1_memory_usage(const struct rt_config *cfg, const char *id, uint64_t *ret)
{
	_cleanup_free_ char *path = v1_file(cfg, "memory", id, "memory.usage_in_bytes");
	char buf[64];
	int r = rt_read_small(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	*ret = strtoull(buf, NULL, 10);
	return 0;
}

static int v1_oom_kills(const struct rt_config *cfg, const char *id, uint64_t *ret)
{
	_cleanup_free_ char *path = v1_file(cfg, "memory", id, "memory.oom_control");

	return rt_cgroup_read_key(path, "oom_kill", ret);
}

static char *v1_oom_file(const struct rt_config *cfg, const char *id)
{
	return v1_file(cfg, "memory", id, "memory.oom_control");
}

static int v1_list_one(const char *dir, int (*cb)(const char *id, void *data), void *data)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !rt_id_valid(de->d_name))
			continue;
		int r = cb(de->d_name, data);
		if (r)
			return r;
	}
	return 0;
}

/* Every controller is listed so a half-made sandbox shows up; the caller de-duplicates. */
static int v1_list(const struct rt_config *cfg, int (*cb)(const char *id, void *data), void *data)
{
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		_cleanup_free_ char *dir = v1_dir(cfg, rt_cgroup_v1_controllers[i], NULL);
		int r = v1_list_one(dir, cb, data);
		if (r)
			return r;
	}
	return 0;
}

const struct rt_cgroup_ops rt_cgroup_v1_ops = {
        .name = "v1",
        .setup = v1_setup,
        .teardown = v1_teardown,
        .create = v1_create,
        .open_for_clone = v1_open_for_clone,
        .attach = v1_attach,
        .self_attach_files = v1_self_attach_files,
        .freeze = v1_freeze,
        .kill_all = v1_kill_all,
        .remove = v1_remove,
        .exists = v1_exists,
        .memory_usage = v1_memory_usage,
        .oom_kills = v1_oom_kills,
        .oom_file = v1_oom_file,
        .list = v1_list,
};
