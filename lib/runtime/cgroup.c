/* cgroup backend selection: v2 when /sys/fs/cgroup is a cgroup2 mount with the memory, cpu and
 * pids controllers, else v1 with memory, cpu, pids and freezer hierarchies. Detected once. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/cgroup.h"
#include "runtime/internal.h"

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static const struct rt_cgroup_ops *detected;
static char detect_msg[256];

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n) {
		bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
		bool end = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';
		if (start && end)
			return true;
	}
	return false;
}

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && sf.f_type == magic;
}

static void detect(void)
{
	char ctl[512];

	if (is_fs(RT_CGROUP_ROOT, CGROUP2_SUPER_MAGIC)) {
		if (rt_read_small(RT_CGROUP_ROOT "/cgroup.controllers", ctl, sizeof(ctl)) >= 0 &&
		    has_word(ctl, "memory") && has_word(ctl, "cpu") && has_word(ctl, "pids")) {
			detected = &rt_cgroup_v2_ops;
			return;
		}
		snprintf(detect_msg, sizeof(detect_msg),
		         "cgroup2 at " RT_CGROUP_ROOT " lacks the memory, cpu or pids controller");
		return;
	}
	for (size_t i = 0; rt_cgroup_v1_controllers[i]; i++) {
		char path[128];
		snprintf(path, sizeof(path), RT_CGROUP_ROOT "/%s", rt_cgroup_v1_controllers[i]);
		if (!is_fs(path, CGROUP_SUPER_MAGIC)) {
			snprintf(detect_msg, sizeof(detect_msg),
			         "no cgroup2 with controllers and no cgroup v1 %s hierarchy at %s",
			         rt_cgroup_v1_controllers[i], path);
			return;
		}
	}
	detected = &rt_cgroup_v1_ops;
}

const struct rt_cgroup_ops *rt_cgroup(struct hutch_error *err)
{
	pthread_once(&detect_once, detect);
	if (!detected)
		hutch_error_set(err, -ENOTSUP, "%s", detect_msg);
	return detected;
}

int rt_limits_save(const struct rt_config *cfg, const char *id, const struct rt_limits *lim)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, id, "limits");
	char s[96];
	int n = snprintf(s, sizeof(s), "%.17g %llu %llu\n", lim->cpus,
	                 (unsigned long long)lim->memory_bytes, (unsigned long long)lim->pids_max);
	return rt_write_replace(path, s, (size_t)n, 0600);
}

int rt_limits_load(const struct rt_config *cfg, const char *id, struct rt_limits *ret)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, id, "limits");
	char s[96];
	unsigned long long mem, pids;
	double cpus;
	int r = rt_read_small(path, s, sizeof(s));
	if (r < 0)
		return r;
	if (sscanf(s, "%lf %llu %llu", &cpus, &mem, &pids) != 3 || !(cpus >= 0) || pids == 0)
		return -EBADMSG;
	ret->cpus = cpus;
	ret->memory_bytes = mem;
	ret->pids_max = pids;
	return 0;
}

int rt_cgroup_read_key(const char *path, const char *key, uint64_t *ret)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(key);
	int r = read_file(path, 65536, &b);

	if (r < 0) {
		buf_release(&b);
		return r;
	}
	r = -ENOENT;
	for (const char *p = buf_cstr(&b); p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long long v;
		if (strncmp(p, key, n) == 0 && p[n] == ' ' && sscanf(p + n + 1, "%llu", &v) == 1) {
			*ret = v;
			r = 0;
			break;
		}
	}
	buf_release(&b);
	return r;
}

int rt_cgroup_wait_value(const char *path, const char *key, const char *want, unsigned ms)
{
	uint64_t deadline = time_mono_ms() + ms;
	char buf[256];

	for (;;) {
		int r = rt_read_small(path, buf, sizeof(buf));
		if (r < 0)
			return r;
		if (key) {
			uint64_t v;
			if (rt_cgroup_read_key(path, key, &v) == 0 &&
			    v == (uint64_t)strtoull(want, NULL, 10))
				return 0;
		} else if (strcmp(buf, want) == 0) {
			return 0;
		}
		if (time_mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(1000);
	}
}
