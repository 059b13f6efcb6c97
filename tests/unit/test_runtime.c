/* Runtime tests against the real kernel (root only): a busybox sandbox with the fixture agent
 * (tests/fixtures/runtime/fake-agent.c), its isolation and limits, freeze, adopt, destroy,
 * create/destroy cycles and a fault at every create step, each followed by a check that
 * nothing is left behind. `test_runtime --bench N` prints create/destroy timings instead. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/runtime.h"
#include "rt_env.h"
#include "t.h"

#define MB (1ull << 20)

/* Requests and shell commands go to the socket the runtime reported for the sandbox. */
static char *sb_req(const struct rt_sandbox *sb, const char *req, int timeout_ms)
{
	return agent_req_at(sb->agent_socket, req, timeout_ms);
}

static char *sb_shell(const struct rt_sandbox *sb, const char *cmd)
{
	return agent_sh_at(sb->agent_socket, sb->id, cmd, 10000);
}

static long sb_errno(const struct rt_sandbox *sb, const char *probe)
{
	char req[128];
	snprintf(req, sizeof(req), "errno %s", probe);
	char *out = sb_req(sb, req, 5000);
	long v = out ? strtol(out, NULL, 10) : -1;
	free(out);
	return v;
}

static bool loop_uses(const char *needle)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	bool found = false;

	while (d && !found && (de = readdir(d))) {
		char path[300], v[4096];
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		found = read_str(path, v, sizeof(v)) >= 0 && strstr(v, needle);
	}
	if (d)
		closedir(d);
	return found;
}

/* True when a process other than us has us as its parent (a leftover sandbox process). */
static bool have_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	bool found = false;

	while (d && !found && (de = readdir(d))) {
		char path[300], v[1024];
		int ppid = 0;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (read_str(path, v, sizeof(v)) < 0)
			continue;
		char *p = strrchr(v, ')');
		found = p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid();
	}
	if (d)
		closedir(d);
	return found;
}

/* What leftover() does not look for: a loop device on the sandbox's disk, a process. */
static const char *runtime_leftover(const char *id)
{
	char needle[96];

	snprintf(needle, sizeof(needle), "/%s/", id);
	if (loop_uses(needle))
		return "a loop device";
	if (have_children())
		return "a process";
	return NULL;
}

/* 64 MiB, half a CPU. */
static struct rt_spec small_spec(const char *id, uint64_t disk_mb)
{
	struct rt_spec s = spec_of(id, 64, disk_mb);
	s.cpus = 0.5;
	return s;
}

static void check_isolation(const struct rt_sandbox *sb, const char *id)
{
	char path[64], status[4096];
	char *out;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)sb->init_pid);
	CHECK(read_str(path, status, sizeof(status)) >= 0);
	CHECK(strstr(status, "\nUid:\t100000\t100000\t100000\t100000") != NULL);
	CHECK(strstr(status, "\nGid:\t100000\t100000\t100000\t100000") != NULL);
	CHECK(strstr(status, "\nNoNewPrivs:\t1") != NULL);
	CHECK(strstr(status, "\nSeccomp:\t2") != NULL);
	/* Docker's default set: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31. */
	CHECK(strstr(status, "\nCapBnd:\t00000000a80425fb") != NULL);
	CHECK(strstr(status, "\nCapEff:\t00000000a80425fb") != NULL);
	CHECK(strstr(status, "\nCapAmb:\t0000000000000000") != NULL);
	CHECK_STR(out = sb_shell(sb, "hostname"), id);
	free(out);
	CHECK_STR(out = sb_shell(sb, "id -u"), "0");
	free(out);
	CHECK_STR(out = sb_shell(sb, "readlink /proc/1/exe"), "/run/hutch-agent");
	free(out);
	/* Only the agent, the shell and its children: no host process is visible. */
	out = sb_shell(sb, "ls /proc | grep -c '^[0-9]'");
	CHECK(out && atoi(out) <= 4);
	free(out);
	CHECK(sb_errno(sb, "getpid") == 0);
	CHECK(sb_errno(sb, "mount") == EPERM);
	CHECK(sb_errno(sb, "init_module") == EPERM);
	CHECK(sb_errno(sb, "unshare_user") == EPERM);
	CHECK(sb_errno(sb, "keyctl") == EPERM);
	CHECK(sb_errno(sb, "personality") == EPERM);
	out = sb_shell(sb, "grep -c '127.0.1.1.*t-basic' /etc/hosts && cat /run/hutch/oom");
	CHECK(out && strstr(out, "oom_kill"));
	free(out);
	out = sb_shell(sb, "ip link show lo 2>/dev/null || cat /sys/class/net/lo/operstate");
	CHECK(out && (strstr(out, "UP") || strstr(out, "unknown")));
	free(out);
	CHECK((out = sb_shell(sb, "touch /tmp/x && echo hi > /root/y && cat /root/y")) != NULL);
	free(out);
	out = sb_req(sb, "sh echo x > /proc/sys/kernel/hostname", 5000);
	CHECK(out && strstr(out, "Read-only file system"));
	free(out);
	out = sb_shell(sb, "cat /proc/sys/kernel/hostname");
	CHECK_STR(out, id);
	free(out);
}

/* Kills the sandbox's sleep processes from the host (the sandbox cannot fork any more). */
static void kill_sleeps(const char *id)
{
	char path[256], comm[64];
	struct buf b = BUF_INIT;

	snprintf(path, sizeof(path), "/sys/fs/cgroup/pids/%s/%s/cgroup.procs", cgroup_name, id);
	if (read_file(path, 1 << 20, &b) == 0) {
		for (char *p = b.data; p && *p;) {
			long pid = strtol(p, &p, 10);
			snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
			if (pid > 0 && read_str(path, comm, sizeof(comm)) >= 0 &&
			    strcmp(comm, "sleep") == 0)
				kill((pid_t)pid, SIGKILL);
			while (*p == '\n')
				p++;
		}
	}
	buf_release(&b);
	for (int i = 0; i < 1000 && cg_value("pids", id, "pids.current") > 1; i++)
		usleep(2000);
}

static void check_limits(const struct rt_sandbox *sb, const char *id)
{
	char *out = sb_req(sb, "fill /big", 60000);
	long e = -1, bytes = 0;

	CHECK(out && sscanf(out, "%ld %ld", &e, &bytes) == 2);
	CHECK(e == ENOSPC);
	CHECK(bytes > 16 * (long)MB && bytes <= 64 * (long)MB);
	free(out);
	CHECK(cg_value("memory", id, "memory.limit_in_bytes") == (long long)(64 * MB));
	CHECK(cg_value("memory", id, "memory.memsw.limit_in_bytes") == (long long)(64 * MB));
	CHECK(cg_value("memory", id, "memory.swappiness") == 0);
	CHECK(cg_value("pids", id, "pids.max") == 100);
	CHECK(cg_value("cpu", id, "cpu.cfs_quota_us") == 50000);
	CHECK(cg_value("cpu", id, "cpu.cfs_period_us") == 100000);
	uint64_t mem = 0;
	CHECK(rt_sandbox_memory_usage(&cfg, id, &mem, NULL) == 0 && mem > 0);
	/* pids.max: 120 sleeps cannot all start. */
	out = sb_req(sb,
	             "sh i=0; while [ $i -lt 120 ]; do sleep 30 >/dev/null 2>&1 & "
	             "i=$((i+1)); done; echo spawned",
	             20000);
	CHECK(out && strstr(out, "can't fork"));
	free(out);
	long long cur = cg_value("pids", id, "pids.current");
	CHECK(cur >= 90 && cur <= 100);
	kill_sleeps(id);
	CHECK((out = sb_shell(sb, "echo ok")) != NULL);
	free(out);
}

static void check_freeze(const struct rt_sandbox *sb, const char *id)
{
	char path[256], state[32];
	char *out;

	CHECK(rt_sandbox_freeze(&cfg, id, true, NULL) == 0);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/freezer/%s/%s/freezer.state", cgroup_name, id);
	CHECK(read_str(path, state, sizeof(state)) >= 0 && strcmp(state, "FROZEN") == 0);
	out = sb_req(sb, "sh echo alive", 300);
	CHECK(out == NULL);
	free(out);
	CHECK(rt_sandbox_freeze(&cfg, id, false, NULL) == 0);
	CHECK(read_str(path, state, sizeof(state)) >= 0 && strcmp(state, "THAWED") == 0);
	CHECK_STR(out = sb_shell(sb, "echo alive"), "alive");
	free(out);
}

static int count_id(const char *id, void *data)
{
	if (strcmp(id, "t-basic") == 0)
		(*(int *)data)++;
	return 0;
}

static void test_basic(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = small_spec("t-basic", 64);
	struct rt_sandbox *sb = NULL;
	int seen = 0;

	int r = rt_sandbox_create(&cfg, &spec, &sb, &err);
	if (r < 0)
		fprintf(stderr, "create: %s\n", err.msg);
	CHECK(r == 0);
	if (r < 0)
		return;
	CHECK(rt_sandbox_create(&cfg, &spec, &(struct rt_sandbox *){NULL}, NULL) == -EEXIST);
	check_isolation(sb, "t-basic");
	check_limits(sb, "t-basic");
	check_freeze(sb, "t-basic");
	CHECK(rt_sandbox_list(&cfg, count_id, &seen, NULL) == 0 && seen == 1);
	pid_t pid = sb->init_pid;
	rt_sandbox_free(sb);
	sb = NULL;
	CHECK(rt_sandbox_adopt(&cfg, "t-basic", &sb, &err) == 0);
	CHECK(sb && sb->init_pid == pid && sb->pidfd >= 0);
	char *out = sb ? sb_shell(sb, "echo adopted") : NULL;
	CHECK_STR(out, "adopted");
	free(out);
	rt_sandbox_free(sb);
	CHECK(rt_sandbox_destroy(&cfg, "t-basic", &err) == 0);
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	CHECK_CLEAN("t-basic");
	CHECK(rt_sandbox_adopt(&cfg, "t-basic", &sb, NULL) < 0);
	CHECK(rt_sandbox_destroy(&cfg, "t-basic", NULL) == 0);
}

/* The agent exits on its own: the pidfd turns readable, the reason is AGENT_DIED. */
static void test_agent_exit(void)
{
	struct rt_spec spec = small_spec("t-exit", 64);
	struct rt_sandbox *sb = NULL;
	int status = 0;

	CHECK(rt_sandbox_create(&cfg, &spec, &sb, NULL) == 0);
	if (!sb)
		return;
	free(sb_req(sb, "exit 3", 500));
	struct pollfd p = {.fd = sb->pidfd, .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(rt_sandbox_reap(sb, &status) == 1);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	CHECK(rt_sandbox_exit_reason(&cfg, "t-exit") == RT_EXIT_AGENT_DIED);
	CHECK(rt_sandbox_adopt(&cfg, "t-exit", &(struct rt_sandbox *){NULL}, NULL) == -ESRCH);
	rt_sandbox_free(sb);
	CHECK(rt_sandbox_destroy(&cfg, "t-exit", NULL) == 0);
	CHECK_CLEAN("t-exit");
}

/* The entrypoint is OOM-killed, then the agent ends the sandbox: the reason is OOM. */
static void test_oom(void)
{
	struct rt_spec spec = small_spec("t-oom", 64);
	struct rt_sandbox *sb = NULL;

	spec.memory_mb = 32;
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, NULL) == 0);
	if (!sb)
		return;
	char *out = sb_req(sb, "sh dd if=/dev/zero of=/dev/null bs=64M count=1", 10000);
	CHECK(out && strstr(out, "@rc=137"));
	free(out);
	free(sb_req(sb, "exit 0", 500));
	struct pollfd p = {.fd = sb->pidfd, .events = POLLIN};
	CHECK(poll(&p, 1, 5000) == 1);
	CHECK(rt_sandbox_reap(sb, NULL) == 1);
	CHECK(rt_sandbox_exit_reason(&cfg, "t-oom") == RT_EXIT_OOM);
	rt_sandbox_free(sb);
	CHECK(rt_sandbox_destroy(&cfg, "t-oom", NULL) == 0);
	CHECK_CLEAN("t-oom");
}

static void test_cycles(void)
{
	char id[32];
	int ok = 0;

	for (int i = 0; i < 20; i++) {
		struct hutch_error err = HUTCH_ERROR_INIT;
		struct rt_sandbox *sb = NULL;
		snprintf(id, sizeof(id), "t-cycle-%d", i);
		/* Alternate the pooled default size and a cold size. */
		struct rt_spec spec = small_spec(id, i % 2 ? 10240 : 128);
		if (i % 4 == 1)
			rt_disk_pool_refill(&cfg, NULL);
		int r = rt_sandbox_create(&cfg, &spec, &sb, &err);
		if (r < 0)
			fprintf(stderr, "cycle %d: %s\n", i, err.msg);
		rt_sandbox_free(sb);
		if (r == 0 && rt_sandbox_destroy(&cfg, id, &err) == 0 && !leftover(id))
			ok++;
	}
	CHECK(ok == 20);
}

static void test_faults(void)
{
	char id[48];

	rt_disk_pool_refill(&cfg, NULL);
	for (size_t i = 0; rt_create_steps[i]; i++) {
		struct hutch_error err = HUTCH_ERROR_INIT;
		struct rt_sandbox *sb = NULL;
		snprintf(id, sizeof(id), "t-fault-%zu", i);
		struct rt_spec spec = small_spec(id, i % 2 ? 10240 : 64);
		cfg.fault_step = rt_create_steps[i];
		int r = rt_sandbox_create(&cfg, &spec, &sb, &err);
		cfg.fault_step = NULL;
		if (r != -EIO || !strstr(err.msg, "injected fault"))
			fprintf(stderr, "fault %s: r=%d %s\n", rt_create_steps[i], r, err.msg);
		CHECK(r == -EIO && strstr(err.msg, "injected fault"));
		CHECK(sb == NULL);
		CHECK_CLEAN(id);
	}
}

/* The agent binary is missing: create fails cleanly with the child's report. */
static void test_bad_agent(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = small_spec("t-noagent", 64);
	struct rt_sandbox *sb = NULL;
	const char *saved = cfg.agent_path;

	cfg.agent_path = "/nonexistent/agent";
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == -ENOENT);
	CHECK(strstr(err.msg, "agent") != NULL);
	cfg.agent_path = "/bin/false"; /* dynamic: cannot run in busybox; dies before ready */
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) < 0);
	cfg.agent_path = saved;
	CHECK_CLEAN("t-noagent");
	spec.memory_mb = 1;
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == -EINVAL);
	spec.memory_mb = 64;
	spec.id = "../x";
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == -EINVAL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void bench_one(int n, bool warm)
{
	uint64_t *create = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *destroy = calloc((size_t)n, sizeof(uint64_t));
	char id[32];

	for (int i = 0; i < n; i++) {
		struct rt_sandbox *sb = NULL;
		struct hutch_error err = HUTCH_ERROR_INIT;
		snprintf(id, sizeof(id), "bench-%d", i);
		struct rt_spec spec = small_spec(id, warm ? 10240 : 10240);
		if (warm)
			rt_disk_pool_refill(&cfg, NULL);
		uint64_t t0 = time_mono_ns();
		if (rt_sandbox_create(&cfg, &spec, &sb, &err) < 0) {
			fprintf(stderr, "bench: %s\n", err.msg);
			break;
		}
		uint64_t t1 = time_mono_ns();
		rt_sandbox_free(sb);
		rt_sandbox_destroy(&cfg, id, NULL);
		create[i] = t1 - t0;
		destroy[i] = time_mono_ns() - t1;
	}
	qsort(create, (size_t)n, sizeof(uint64_t), cmp_u64);
	qsort(destroy, (size_t)n, sizeof(uint64_t), cmp_u64);
	printf("%s disk: create->ready p50 %.2f ms p90 %.2f ms; destroy p50 %.2f ms p90 %.2f ms\n",
	       warm ? "warm" : "cold", create[n / 2] / 1e6, create[n * 9 / 10] / 1e6,
	       destroy[n / 2] / 1e6, destroy[n * 9 / 10] / 1e6);
	free(create);
	free(destroy);
}

int main(int argc, char **argv)
{
	if (geteuid() != 0) {
		printf("SKIP: test_runtime needs root (namespaces, cgroups, loop devices)\n");
		T_DONE();
	}
	if (setup("fake-agent.c", 2, runtime_leftover) < 0) {
		CHECK(0);
		T_DONE();
	}
	if (argc == 3 && strcmp(argv[1], "--bench") == 0) {
		int n = atoi(argv[2]);
		cfg.disk_pool_size = 1;
		bench_one(n, true);
		cfg.disk_pool_disabled = true;
		bench_one(n, false);
		teardown();
		return 0;
	}
	CHECK(rt_init(&cfg, NULL) == 0); /* idempotent */
	test_basic();
	test_agent_exit();
	test_oom();
	test_bad_agent();
	test_cycles();
	test_faults();
	teardown();
	T_DONE();
}
