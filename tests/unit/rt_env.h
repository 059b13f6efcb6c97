/* The environment shared by the runtime tests that boot real sandboxes (test_runtime,
 * test_runtime_criu, test_runtime_snapshot; root only): a temporary base directory with state/
 * and a tmpfs run/, a test cgroup, an agent built from a fixture in tests/fixtures/runtime/ with
 * cc -static, and helpers to talk to that agent and to find what a sandbox left behind.
 * Included by one test file each: everything is static, marked unused where a test may not
 * need it. Not a test itself (tests/unit/module.mk builds only test_*.c). */
#ifndef HUTCH_TESTS_RT_ENV_H
#define HUTCH_TESTS_RT_ENV_H

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/image.h"
#include "runtime/runtime.h"
#include "t.h"

#define RT_ENV_UNUSED __attribute__((unused))

static char base_dir[64], state_dir[128], run_dir[128], agent_path[128], cgroup_name[64];
static struct rt_config cfg;
static const char *const controllers[] = {"memory", "cpu", "pids", "freezer"};
/* More leftovers a test looks for after the common ones (setup's argument; may be NULL). */
static const char *(*leftover_more)(const char *id);

/* Compiles the fixture agent (a file name in $HUTCH_FIXTURE_DIR, default
 * tests/fixtures/runtime) to agent_path with cc -static. */
static int build_agent(const char *fixture)
{
	char src[512], cmd[1200];
	const char *dir = getenv("HUTCH_FIXTURE_DIR");

	snprintf(src, sizeof(src), "%s/%s", dir ? dir : "tests/fixtures/runtime", fixture);
	if (access(src, R_OK) < 0) {
		fprintf(stderr, "fixture %s not found (run from the repository root)\n", src);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "cc -static -O2 -o %s %s", agent_path, src);
	return system(cmd) == 0 ? 0 : -1;
}

/* Makes the base directory and cfg, with the agent built from fixture, a warm disk pool of
 * disk_pool_size disks (0: no pool) and more_leftovers called by leftover() after its own
 * checks (NULL: none). Call teardown() afterwards, also when this fails. */
static int make_env(const char *fixture, unsigned disk_pool_size,
                    const char *(*more_leftovers)(const char *id))
{
	snprintf(base_dir, sizeof(base_dir), "/tmp/hutch-rt-XXXXXX");
	if (!mkdtemp(base_dir) || chmod(base_dir, 0755) < 0)
		return -1;
	snprintf(state_dir, sizeof(state_dir), "%s/state", base_dir);
	snprintf(run_dir, sizeof(run_dir), "%s/run", base_dir);
	snprintf(agent_path, sizeof(agent_path), "%s/agent", base_dir);
	snprintf(cgroup_name, sizeof(cgroup_name), "hutch-test-%d", (int)getpid());
	cfg.state_dir = state_dir;
	cfg.run_dir = run_dir;
	cfg.agent_path = agent_path;
	cfg.cgroup_name = cgroup_name;
	if (disk_pool_size)
		cfg.disk_pool_size = disk_pool_size;
	else
		cfg.disk_pool_disabled = true;
	leftover_more = more_leftovers;
	/* Like /run on a real host: the run directory is a tmpfs. */
	if (mkdir(run_dir, 0755) < 0 || mount("tmpfs", run_dir, "tmpfs", 0, "mode=755") < 0)
		return -1;
	return build_agent(fixture);
}

static void teardown(void)
{
	char path[256];

	rt_disk_pool_drain(&cfg, NULL);
	umount2(state_dir, MNT_DETACH);
	umount2(run_dir, MNT_DETACH);
	rm_rf(base_dir);
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", controllers[i], cgroup_name);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", cgroup_name);
	rmdir(path);
}

/* make_env(), rt_init() and the busybox image: 0, or -1 after saying why on stderr and
 * tearing down (the caller records the failure and ends). teardown() when done. */
static int setup(const char *fixture, unsigned disk_pool_size,
                 const char *(*more_leftovers)(const char *id))
{
	struct hutch_error err = HUTCH_ERROR_INIT;

	if (make_env(fixture, disk_pool_size, more_leftovers) < 0) {
		fprintf(stderr, "setup failed (is a C compiler with static glibc installed?)\n");
		teardown();
		return -1;
	}
	int r = rt_init(&cfg, &err);
	if (r == 0)
		r = image_build_busybox(&cfg, NULL, &err);
	if (r < 0) {
		fprintf(stderr, "init: %s\n", err.msg);
		teardown();
		return -1;
	}
	return 0;
}

/* Sends one request line to the agent listening on the unix socket sock; its whole answer
 * (malloc'd) when it closes the connection, NULL when it cannot be reached or stays silent for
 * timeout_ms. */
static char *agent_req_at(const char *sock, const char *req, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct buf out = BUF_INIT;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (len < 0 || (size_t)len >= sizeof(sa.sun_path) || s < 0 ||
	    connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write_all(s, req, strlen(req)) < 0 || write_all(s, "\n", 1) < 0) {
		if (s >= 0)
			close(s);
		return NULL;
	}
	for (;;) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		char b[4096];
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t n = read(s, b, sizeof(b));
		if (n <= 0) {
			close(s);
			return buf_detach(&out, NULL) ?: strdup("");
		}
		buf_add(&out, b, (size_t)n);
	}
	close(s);
	buf_release(&out);
	return NULL;
}

/* Runs a shell command through the agent on sock: its output (trimmed, malloc'd) when it exits
 * 0, else NULL after printing who (the sandbox id), the command and the answer. */
static char *agent_sh_at(const char *sock, const char *who, const char *cmd, int timeout_ms)
{
	char req[1024];
	snprintf(req, sizeof(req), "sh %s", cmd);
	char *out = agent_req_at(sock, req, timeout_ms);
	char *rc = out ? strstr(out, "\n@rc=") : NULL;
	if (!rc || atoi(rc + 5) != 0) {
		fprintf(stderr, "%s: command failed: %s -> %s\n", who, cmd, out ? out : "(none)");
		free(out);
		return NULL;
	}
	*rc = '\0';
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return out;
}

#define RT_ENV_SOCK_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* The agent socket of sandbox id under run_dir into ret; false when it does not fit. */
RT_ENV_UNUSED static bool agent_sock_of(const char *id, char ret[RT_ENV_SOCK_MAX])
{
	int len = snprintf(ret, RT_ENV_SOCK_MAX, "%.60s/%.40s/agent.sock", run_dir, id);
	return len >= 0 && (size_t)len < RT_ENV_SOCK_MAX;
}

/* agent_req_at() for sandbox id. */
RT_ENV_UNUSED static char *agent_req(const char *id, const char *req, int timeout_ms)
{
	char sock[RT_ENV_SOCK_MAX];
	return agent_sock_of(id, sock) ? agent_req_at(sock, req, timeout_ms) : NULL;
}

/* agent_sh_at() for sandbox id, waiting up to 30 s. */
RT_ENV_UNUSED static char *sb_sh(const char *id, const char *cmd)
{
	char sock[RT_ENV_SOCK_MAX];
	return agent_sock_of(id, sock) ? agent_sh_at(sock, id, cmd, 30000) : NULL;
}

/* Reads the small file path into out (NUL-terminated, trailing newlines cut): its length, or
 * -1 when it cannot be opened. */
RT_ENV_UNUSED static int read_str(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(out, 1, size - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	return (int)n;
}

/* A number from sandbox id's cgroup file under controller ctrl, -1 when unreadable. */
RT_ENV_UNUSED static long long cg_value(const char *ctrl, const char *id, const char *file)
{
	char path[256], v[64];
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/%s/%s", ctrl, cgroup_name, id, file);
	return read_str(path, v, sizeof(v)) >= 0 ? atoll(v) : -1;
}

/* What is left of sandbox id on the host (a mount, a cgroup, its state or run directory, then
 * whatever leftover_more finds): NULL when nothing. */
static const char *leftover(const char *id)
{
	static char what[400];
	char needle[96], path[300];
	struct buf b = BUF_INIT;

	snprintf(needle, sizeof(needle), "/%s/", id);
	const char *hit = read_file("/proc/self/mountinfo", 1 << 24, &b) == 0
	                          ? strstr(buf_cstr(&b), needle)
	                          : NULL;
	if (hit) {
		const char *start = hit, *end = strchr(hit, '\n');
		while (start > b.data && start[-1] != '\n')
			start--;
		snprintf(what, sizeof(what), "a mount: %.*s", (int)(end ? end - start : 200),
		         start);
		buf_release(&b);
		return what;
	}
	buf_release(&b);
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/%s", controllers[i], cgroup_name,
		         id);
		if (access(path, F_OK) == 0) {
			snprintf(what, sizeof(what), "cgroup %s", path);
			return what;
		}
	}
	snprintf(path, sizeof(path), "%s/sandboxes/%s", state_dir, id);
	if (access(path, F_OK) == 0)
		return "the state directory";
	snprintf(path, sizeof(path), "%s/%s", run_dir, id);
	if (access(path, F_OK) == 0)
		return "the run directory";
	return leftover_more ? leftover_more(id) : NULL;
}

#define CHECK_CLEAN(id)                                                   \
	do {                                                              \
		const char *_l = leftover(id);                            \
		if (_l)                                                   \
			fprintf(stderr, "%s: left behind: %s\n", id, _l); \
		CHECK(_l == NULL);                                        \
	} while (0)

/* A busybox sandbox of one CPU and 100 processes. */
static struct rt_spec spec_of(const char *id, uint64_t memory_mb, uint64_t disk_mb)
{
	struct rt_spec s = {.id = id,
	                    .image = "busybox",
	                    .cpus = 1,
	                    .memory_mb = memory_mb,
	                    .disk_mb = disk_mb,
	                    .pids_max = 100};
	return s;
}

#endif
