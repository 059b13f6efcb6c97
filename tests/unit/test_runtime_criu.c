/* Checkpoint/restore tests against the real kernel and CRIU (root only): a busybox sandbox
 * running tests/fixtures/runtime/criu-agent.c (a counter in PID 1's memory, a TCP listener on
 * 127.0.0.1:7070 in a child process holding its own counter) is suspended to disk, checked to be
 * gone with its memory freed, resumed with both counters continuing; then a memory snapshot of
 * it seeds three independent copies. Finally the checkpoint and restore of 256 MiB of live
 * memory are timed. SKIP (with the reason) when CRIU 4.1+ is not installed
 * (scripts/install-criu.sh). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/checkpoint.h"
#include "runtime/runtime.h"
#include "rt_env.h"
#include "t.h"

static bool sh_ok(const char *id, const char *cmd)
{
	char *out = sb_sh(id, cmd);
	free(out);
	return out != NULL;
}

/* The agent's answer to req as a number (-1 when there is none). */
static long req_num(const char *id, const char *req)
{
	char *out = agent_req(id, req, 10000);
	long v = out && *out >= '0' && *out <= '9' ? atol(out) : -1;
	if (v < 0)
		fprintf(stderr, "%s: %s -> %s\n", id, req, out ? out : "(no answer)");
	free(out);
	return v;
}

static bool cgroup_empty(const char *id)
{
	char path[256], v[64];
	snprintf(path, sizeof(path), "/sys/fs/cgroup/pids/%s/%s/cgroup.procs", cgroup_name, id);
	return read_str(path, v, sizeof(v)) == 0;
}

static char ckpt_dir[256], snap_dir[256];

/* Suspend to disk (processes gone, memory freed), resume (counters continue). */
static void test_suspend_resume(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("c-main", 256, 256);
	struct rt_sandbox *sb = NULL;
	char *dir = NULL;

	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == 0);
	if (!sb) {
		fprintf(stderr, "create: %s\n", err.msg);
		return;
	}
	CHECK(req_num("c-main", "incr") == 1 && req_num("c-main", "incr") == 2);
	CHECK(req_num("c-main", "incr") == 3);
	CHECK(req_num("c-main", "tcp") == 1);
	char *out = agent_req("c-main", "alloc 32", 10000);
	CHECK(out && strncmp(out, "ok 32", 5) == 0);
	free(out);
	CHECK(cg_value("memory", "c-main", "memory.usage_in_bytes") > 32ll << 20);
	pid_t pid = sb->init_pid;
	snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/ckpt-main", base_dir);
	int r = rt_sandbox_checkpoint(&cfg, "c-main", ckpt_dir, false, &err);
	if (r < 0)
		fprintf(stderr, "checkpoint: %s\n", err.msg);
	CHECK(r == 0);
	rt_sandbox_free(sb);
	sb = NULL;
	CHECK(kill(pid, 0) < 0 && errno == ESRCH);
	CHECK(cgroup_empty("c-main"));
	long long mem = cg_value("memory", "c-main", "memory.usage_in_bytes");
	printf("memory of c-main after suspend: %lld KiB\n", mem >> 10);
	CHECK(mem >= 0 && mem < 8ll << 20);
	CHECK(agent_req("c-main", "get", 500) == NULL);
	CHECK(rt_sandbox_checkpointed(&cfg, "c-main", &dir) && dir);
	free(dir);
	CHECK(rt_sandbox_adopt(&cfg, "c-main", &sb, NULL) == -ESRCH);
	r = rt_sandbox_restore(&cfg, "c-main", ckpt_dir, &sb, &err);
	if (r < 0)
		fprintf(stderr, "restore: %s\n", err.msg);
	CHECK(r == 0);
	if (r < 0)
		return;
	CHECK(sb->pidfd >= 0 && sb->is_child && rt_sandbox_reap(sb, NULL) == 0);
	CHECK(!rt_sandbox_checkpointed(&cfg, "c-main", NULL));
	CHECK(req_num("c-main", "incr") == 4); /* not reset */
	CHECK(req_num("c-main", "tcp") == 2);  /* the listener and its memory are back */
	out = agent_req("c-main", "verify", 10000);
	CHECK(out && strncmp(out, "ok 32", 5) == 0);
	free(out);
	CHECK(rt_sandbox_restore(&cfg, "c-main", ckpt_dir, &(struct rt_sandbox *){NULL}, NULL) ==
	      -EEXIST);
	out = sb_sh("c-main", "hostname; cat /proc/1/status | grep -c '^Seccomp:.2'");
	CHECK(out && strcmp(out, "c-main\n1") == 0);
	free(out);
	rt_sandbox_free(sb);
}

/* A memory snapshot of the running c-main seeds three copies that run independently. */
static void test_copies(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	const char *ids[] = {"c-copy-0", "c-copy-1", "c-copy-2"};
	char image[72] = "";

	snprintf(snap_dir, sizeof(snap_dir), "%s/snap-main", base_dir);
	CHECK(sh_ok("c-main", "echo original > /root/mark"));
	int r = rt_sandbox_checkpoint(&cfg, "c-main", snap_dir, true, &err);
	if (r < 0)
		fprintf(stderr, "snapshot: %s\n", err.msg);
	CHECK(r == 0);
	CHECK(req_num("c-main", "incr") == 5); /* the source keeps running */
	char path[300];
	snprintf(path, sizeof(path), "%s/sandboxes/c-main/image", state_dir);
	read_str(path, image, sizeof(image));
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		struct rt_spec spec = spec_of(ids[i], 256, 256);
		struct rt_sandbox *sb = NULL;
		spec.image = image;
		spec.memory_snapshot_dir = snap_dir;
		r = rt_sandbox_create(&cfg, &spec, &sb, &err);
		if (r < 0)
			fprintf(stderr, "copy %s: %s\n", ids[i], err.msg);
		CHECK(r == 0 && sb && sb->pidfd >= 0);
		rt_sandbox_free(sb);
	}
	/* Each continues from the snapshot's 4 on its own. */
	CHECK(req_num("c-copy-0", "incr") == 5 && req_num("c-copy-0", "incr") == 6);
	CHECK(req_num("c-copy-1", "incr") == 5);
	CHECK(req_num("c-copy-2", "get") == 4);
	CHECK(req_num("c-main", "incr") == 6);
	CHECK(req_num("c-copy-1", "tcp") == 3 && req_num("c-copy-2", "tcp") == 3);
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		char *out = sb_sh(ids[i], "hostname; cat /root/mark");
		char want[64];
		snprintf(want, sizeof(want), "%s\noriginal", ids[i]);
		CHECK_STR(out, want);
		free(out);
	}
	CHECK(sh_ok("c-copy-0", "echo changed > /root/mark"));
	char *out = sb_sh("c-copy-1", "cat /root/mark");
	CHECK_STR(out, "original");
	free(out);
	out = agent_req("c-copy-2", "verify", 10000);
	CHECK(out && strncmp(out, "ok 32", 5) == 0);
	free(out);
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		CHECK(rt_sandbox_destroy(&cfg, ids[i], NULL) == 0);
		CHECK_CLEAN(ids[i]);
	}
	CHECK(rt_sandbox_destroy(&cfg, "c-main", NULL) == 0);
	CHECK_CLEAN("c-main");
}

/* Checkpoint and restore of a sandbox holding 256 MiB of live memory, timed. */
static void test_bench_256(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("c-big", 1024, 256);
	struct rt_sandbox *sb = NULL;
	char dir[256];

	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == 0);
	if (!sb)
		return;
	rt_sandbox_free(sb);
	sb = NULL;
	char *out = agent_req("c-big", "alloc 256", 60000);
	CHECK(out && strncmp(out, "ok 256", 6) == 0);
	free(out);
	snprintf(dir, sizeof(dir), "%s/ckpt-big", base_dir);
	uint64_t t0 = time_mono_ns();
	int r = rt_sandbox_checkpoint(&cfg, "c-big", dir, false, &err);
	uint64_t t1 = time_mono_ns();
	if (r < 0)
		fprintf(stderr, "checkpoint: %s\n", err.msg);
	CHECK(r == 0);
	r = rt_sandbox_restore(&cfg, "c-big", dir, &sb, &err);
	uint64_t t2 = time_mono_ns();
	if (r < 0)
		fprintf(stderr, "restore: %s\n", err.msg);
	CHECK(r == 0);
	out = agent_req("c-big", "verify", 60000);
	CHECK(out && strncmp(out, "ok 256", 6) == 0);
	free(out);
	printf("256 MiB live memory: checkpoint (suspend) %.0f ms, restore %.0f ms\n",
	       (t1 - t0) / 1e6, (t2 - t1) / 1e6);
	rt_sandbox_free(sb);
	CHECK(rt_sandbox_destroy(&cfg, "c-big", NULL) == 0);
	CHECK_CLEAN("c-big");
}

int main(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_criu_version v;

	if (geteuid() != 0) {
		printf("SKIP: test_runtime_criu needs root (namespaces, cgroups, CRIU)\n");
		T_DONE();
	}
	if (rt_criu_detect(&cfg, &v, &err) < 0) {
		printf("SKIP: %s\n", err.msg);
		T_DONE();
	}
	printf("CRIU %s at %s\n", v.text, v.path);
	if (setup("criu-agent.c", 0, NULL) < 0) {
		CHECK(0);
		T_DONE();
	}
	test_suspend_resume();
	test_copies();
	test_bench_256();
	teardown();
	T_DONE();
}
