/* cgroup v2 backend: one directory per sandbox, /sys/fs/cgroup/<cgroup_name>/<id>, entered at
 * clone time with CLONE_INTO_CGROUP. */
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

#define CPU_PERIOD_US 100000

static char *v2_dir(const struct rt_config *cfg, const char *id)
{
	if (!id)
		return xasprintf(RT_CGROUP_ROOT "/%s", rt_cfg_cgroup(cfg));
	return xasprintf(RT_CGROUP_ROOT "/%s/%s", rt_cfg_cgroup(cfg), id);
}

static char *v2_file(const struct rt_config *cfg, const char *id, const char *leaf)
{
	return xasprintf(RT_CGROUP_ROOT "/%s/%s/%s", rt_cfg_cgroup(cfg), id, leaf);
}

static int v2_write(const char *path, const char *value, struct hutch_error *err)
{
	int r = write_file_str(path, value);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s to %s", value, path);
	}
	return 0;
}

/* Enables the controllers a sandbox needs in dir's children, writing only the missing ones. */
static int v2_enable(const char *dir, struct hutch_error *err)
{
	static const char *const need[] = {"memory", "cpu", "pids"};
	_cleanup_free_ char *path = xasprintf("%s/cgroup.subtree_control", dir);
	char cur[512];
	int r = rt_read_small(path, cur, sizeof(cur));

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "reading %s", path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(need); i++) {
		char v[32];
		if (strstr(cur, need[i]))
			continue;
		snprintf(v, sizeof(v), "+%s", need[i]);
		if ((r = v2_write(path, v, err)) < 0)
			return r;
	}
	return 0;
}

static int v2_setup(const struct rt_config *cfg, struct hutch_error *err)
{
	_cleanup_free_ char *dir = v2_dir(cfg, NULL);
	int r = v2_enable(RT_CGROUP_ROOT, err);

	if (r < 0)
		return r;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating cgroup %s", dir);
	return v2_enable(dir, err);
}

static int v2_teardown(const struct rt_config *cfg, struct hutch_error *err)
{
	_cleanup_free_ char *dir = v2_dir(cfg, NULL);
	if (rmdir(dir) < 0 && errno != ENOENT && errno != EBUSY)
		return hutch_error_errno(err, "removing cgroup %s", dir);
	return 0;
}

static int v2_create(const struct rt_config *cfg, const char *id, const struct rt_limits *lim,
                     struct hutch_error *err)
{
	_cleanup_free_ char *dir = v2_dir(cfg, id);
	_cleanup_free_ char *mem = v2_file(cfg, id, "memory.max");
	_cleanup_free_ char *swap = v2_file(cfg, id, "memory.swap.max");
	_cleanup_free_ char *cpu = v2_file(cfg, id, "cpu.max");
	_cleanup_free_ char *pids = v2_file(cfg, id, "pids.max");
	char v[64];
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating cgroup %s", dir);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->memory_bytes);
	if ((r = v2_write(mem, v, err)) < 0)
		return r;
	if (access(swap, F_OK) == 0 && (r = v2_write(swap, "0", err)) < 0)
		return r;
	long long quota = (long long)(lim->cpus * CPU_PERIOD_US);
	snprintf(v, sizeof(v), "%lld %d", quota < 1000 ? 1000 : quota, CPU_PERIOD_US);
	if ((r = v2_write(cpu, v, err)) < 0)
		return r;
	snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->pids_max);
	return v2_write(pids, v, err);
}

static int v2_open_for_clone(const struct rt_config *cfg, const char *id)
{
	_cleanup_free_ char *dir = v2_dir(cfg, id);
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int v2_attach(const struct rt_config *cfg, const char *id, pid_t pid,
                     struct hutch_error *err)
{
	_cleanup_free_ char *procs = v2_file(cfg, id, "cgroup.procs");
	char v[32];

	/* Normally a no-op: clone3 already put the child here. */
	snprintf(v, sizeof(v), "%d", (int)pid);
	return v2_write(procs, v, err);
}

static char **v2_self_attach_files(const struct rt_config *cfg, const char *id)
{
	return NULL; /* clone3 with CLONE_INTO_CGROUP */
}

static int v2_freeze(const struct rt_config *cfg, const char *id, bool frozen,
                     struct hutch_error *err)
{
	_cleanup_free_ char *path = v2_file(cfg, id, "cgroup.freeze");
	_cleanup_free_ char *events = v2_file(cfg, id, "cgroup.events");
	int r = v2_write(path, frozen ? "1" : "0", err);

	if (r < 0)
		return r;
	r = rt_cgroup_wait_value(events, "frozen", frozen ? "1" : "0", 2000);
	if (r < 0)
		return hutch_error_set(err, r, "cgroup %s did not %s", path,
		                       frozen ? "freeze" : "thaw");
	return 0;
}

static int v2_kill_all(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	_cleanup_free_ char *kill_file = v2_file(cfg, id, "cgroup.kill");
	_cleanup_free_ char *events = v2_file(cfg, id, "cgroup.events");
	int r;

	if (access(events, F_OK) < 0)
		return 0;
	if ((r = v2_write(kill_file, "1", err)) < 0)
		return r;
	r = rt_cgroup_wait_value(events, "populated", "0", 5000);
	if (r < 0)
		return hutch_error_set(err, -EBUSY, "processes of sandbox %s survive cgroup.kill",
		                       id);
	return 0;
}

static int v2_remove(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	_cleanup_free_ char *dir = v2_dir(cfg, id);
	int tries = 0;

	while (rmdir(dir) < 0 && errno != ENOENT) {
		if (errno != EBUSY || ++tries > 500)
			return hutch_error_errno(err, "removing cgroup %s", dir);
		usleep(2000);
	}
	return 0;
}

static bool v2_exists(const struct rt_config *cfg, const char *id)
{
	_cleanup_free_ char *dir = v2_dir(cfg, id);

	return access(dir, F_OK) == 0;
}

static int v2_memory_usage(const struct rt_config *cfg, const char *id, uint64_t *ret)
{
	_cleanup_free_ char *path = v2_file(cfg, id, "memory.current");
	char buf[64];
	int r = rt_read_small(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	*ret = strtoull(buf, NULL, 10);
	return 0;
}

static int v2_oom_kills(const struct rt_config *cfg, const char *id, uint64_t *ret)
{
	_cleanup_free_ char *path = v2_file(cfg, id, "memory.events");

	return rt_cgroup_read_key(path, "oom_kill", ret);
}

static char *v2_oom_file(const struct rt_config *cfg, const char *id)
{
	return v2_file(cfg, id, "memory.events");
}

static int v2_list(const struct rt_config *cfg, int (*cb)(const char *id, void *data), void *data)
{
	_cleanup_free_ char *dir = v2_dir(cfg, NULL);
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

const struct rt_cgroup_ops rt_cgroup_v2_ops = {
        .name = "v2",
        .setup = v2_setup,
        .teardown = v2_teardown,
        .create = v2_create,
        .open_for_clone = v2_open_for_clone,
        .attach = v2_attach,
        .self_attach_files = v2_self_attach_files,
        .freeze = v2_freeze,
        .kill_all = v2_kill_all,
        .remove = v2_remove,
        .exists = v2_exists,
        .memory_usage = v2_memory_usage,
        .oom_kills = v2_oom_kills,
        .oom_file = v2_oom_file,
        .list = v2_list,
};
