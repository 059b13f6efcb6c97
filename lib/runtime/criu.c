/* Checkpoint/restore of a sandbox's process tree with CRIU (4.1+, found at run time): detection,
 * running criu with the externals of our mount layout, the checkpoint metadata, durable
 * suspend/resume of the same sandbox and restore into a new one (rt_spec.memory_snapshot_dir).
 * The recipe and why each option is there: docs/design/checkpoint.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"
#include "runtime/checkpoint.h"
#include "runtime/image.h"
#include "runtime/internal.h"
#include "runtime/spec.h"

#define CRIU_DEFAULT_PATH "/opt/hutch/criu/bin/criu"
#define CKPT_VERSION      1
#define CKPT_META         "checkpoint.json"
#define CKPT_MARKER       "checkpoint" /* sandboxes/<id>/checkpoint: dir of a suspend */
#define MAX_LOG_KEYS      4
#define INHERIT_FD_BASE   3

/* Host device nodes bound into /dev (mounts.c), each an external mount for CRIU. */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty", NULL};

/* ---- finding and running criu ---- */

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

static int criu_find(const struct rt_config *cfg, char out[256])
{
	const char *env = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(env && *env ? env : "/usr/sbin:/usr/bin:/sbin:/bin");

	if (cfg->criu_path && *cfg->criu_path) {
		snprintf(out, 256, "%s", cfg->criu_path);
		return executable(out) ? 0 : -ENOENT;
	}
	if (executable(CRIU_DEFAULT_PATH)) {
		snprintf(out, 256, "%s", CRIU_DEFAULT_PATH);
		return 0;
	}
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, 256, "%s/criu", d);
		if (*d == '/' && executable(out))
			return 0;
	}
	return -ENOENT;
}

struct criu_run {
	char **argv;
	const int *inherit;  /* fds given to criu as 3, 4, ... (-1 terminated), or NULL */
	char **cgroup_files; /* criu writes "0" to each before exec (joins the cgroups), or NULL */
	const char *out;     /* criu's stdout/stderr */
};

/* The forked child: only system calls (the parent may be multi-threaded). */
__attribute__((noreturn)) static void criu_child(const struct criu_run *run, int out_fd,
                                                 char *const envp[])
{
	int n = 0;

	for (size_t i = 0; run->cgroup_files && run->cgroup_files[i]; i++) {
		int fd = open(run->cgroup_files[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(126);
		close(fd);
	}
	while (run->inherit && run->inherit[n] >= 0)
		n++;
	/* Move the inherited fds above the target range first, then into place. */
	int moved[MAX_LOG_KEYS + 1];
	for (int i = 0; i < n; i++)
		if ((moved[i] = fcntl(run->inherit[i], F_DUPFD, 64)) < 0)
			_exit(126);
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(126);
	for (int i = 0; i < n; i++)
		if (dup2(moved[i], INHERIT_FD_BASE + i) < 0)
			_exit(126);
	syscall(SYS_close_range, INHERIT_FD_BASE + n, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(run->argv[0], run->argv, envp);
	_exit(127);
}

/* The first "Error (...)" line of a CRIU log, for messages (the harmless rlimit one skipped). */
static void log_last_error(const char *log, char *out, size_t size)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	const char *last = NULL;

	snprintf(out, size, "see %s", log);
	if (read_file(log, 1 << 24, &b) < 0 || !b.data)
		return;
	for (char *p = strstr(b.data, "Error ("); p; p = strstr(p + 1, "Error (")) {
		char *nl = strchr(p, '\n');
		char *rl = strstr(p, "rlimit:");
		if (!rl || (nl && rl > nl)) {
			last = p; /* the first real error is the cause; later ones are fallout */
			break;
		}
	}
	if (last) {
		const char *nl = strchr(last, '\n');
		int n = nl ? (int)(nl - last) : (int)strlen(last);
		snprintf(out, size, "%.*s (%s)", n > 300 ? 300 : n, last, log);
	}
}

static int criu_exec(const struct criu_run *run, const char *log, struct hutch_error *err)
{
	static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
	_cleanup_close_ int out = open(run->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int status;
	char why[512];

	if (out < 0)
		return hutch_error_errno(err, "creating %s", run->out);
	pid_t pid = fork();
	if (pid < 0)
		return hutch_error_errno(err, "fork");
	if (pid == 0)
		criu_child(run, out, envp);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return hutch_error_errno(err, "waiting for criu");
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
		return hutch_error_set(err, -EIO, "could not start %s (exit %d)", run->argv[0],
		                       WEXITSTATUS(status));
	log_last_error(log, why, sizeof(why));
	return hutch_error_set(err, -EIO, "criu %s failed: %s", run->argv[1], why);
}

static int parse_version(const char *text, struct rt_criu_version *v)
{
	const char *p = strstr(text, "Version:");

	if (!p)
		return -EINVAL;
	p += 8;
	while (*p == ' ')
		p++;
	v->patch = 0;
	if (sscanf(p, "%d.%d.%d", &v->major, &v->minor, &v->patch) < 2)
		return -EINVAL;
	snprintf(v->text, sizeof(v->text), "%d.%d.%d", v->major, v->minor, v->patch);
	return 0;
}

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2 &&
	       (a > major || (a == major && b >= minor));
}

static int unavailable(struct hutch_error *err, const char *fmt, const char *a, const char *b)
{
	int r = hutch_error_set(err, -ENOTSUP, fmt, a, b);

	if (err)
		snprintf(err->kind, sizeof(err->kind), "%s", RT_CRIU_UNAVAILABLE_KIND);
	return r;
}

int rt_criu_detect(const struct rt_config *cfg, struct rt_criu_version *ret_version,
                   struct hutch_error *err)
{
	struct rt_criu_version v = {0};
	char tmpl[] = "/tmp/hutch-criu-version-XXXXXX";
	_cleanup_buf_ struct buf b = BUF_INIT;

	if (criu_find(cfg, v.path) < 0)
		return unavailable(err,
		                   "CRIU not found%s%s (install it with scripts/install-criu.sh)",
		                   "", "");
	int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return hutch_error_errno(err, "mkostemp");
	close(fd);
	char *argv[] = {v.path, "--version", NULL};
	struct criu_run run = {.argv = argv, .out = tmpl};
	int r = criu_exec(&run, tmpl, NULL);
	if (r == 0)
		r = read_file(tmpl, 4096, &b);
	unlink(tmpl);
	if (r < 0 || parse_version(buf_cstr(&b), &v) < 0)
		return unavailable(err,
		                   "%s --version does not work%s (reinstall with "
		                   "scripts/install-criu.sh)",
		                   v.path, "");
	if (v.major < 4 || (v.major == 4 && v.minor < 1))
		return unavailable(err,
		                   "CRIU %s at %s is older than 4.1 (run scripts/install-criu.sh)",
		                   v.text, v.path);
	if (kernel_at_least(6, 16) && v.major == 4 && v.minor < 2)
		return unavailable(err,
		                   "CRIU %s at %s cannot checkpoint sockets on Linux 6.16+; 4.2 "
		                   "or newer is needed (run scripts/install-criu.sh)",
		                   v.text, v.path);
	if (ret_version)
		*ret_version = v;
	return 0;
}

/* ---- argv building ---- */

struct argv {
	char **v;
	size_t n, cap;
};

static void argv_add(struct argv *a, char *s) /* takes s */
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xreallocarray(a->v, a->cap, sizeof(char *));
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_addv(struct argv *a, const char *s)
{
	argv_add(a, xstrdup(s));
}

static void argv_free(struct argv *a)
{
	rt_strv_free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

/* ---- the sandbox's processes and files ---- */

static bool pid_running(pid_t pid, uint64_t start)
{
	return rt_pid_running(pid, start);
}

static char *procs_file(const struct rt_config *cfg, const struct rt_cgroup_ops *cg, const char *id)
{
	if (strcmp(cg->name, "v1") == 0)
		return xasprintf(RT_CGROUP_ROOT "/freezer/%s/%s/cgroup.procs", rt_cfg_cgroup(cfg),
		                 id);
	return xasprintf(RT_CGROUP_ROOT "/%s/%s/cgroup.procs", rt_cfg_cgroup(cfg), id);
}

static char *freezer_dir(const struct rt_config *cfg, const struct rt_cgroup_ops *cg,
                         const char *id)
{
	if (strcmp(cg->name, "v1") == 0)
		return xasprintf(RT_CGROUP_ROOT "/freezer/%s/%s", rt_cfg_cgroup(cfg), id);
	return xasprintf(RT_CGROUP_ROOT "/%s/%s", rt_cfg_cgroup(cfg), id);
}

/* Adds key to keys[] (n entries) unless present; the new count or -EBUSY when full. */
static int key_add(char keys[MAX_LOG_KEYS][48], int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return n;
	if (n == MAX_LOG_KEYS)
		return -EBUSY;
	snprintf(keys[n], sizeof(keys[n]), "%s", key);
	return n + 1;
}

/* The keys of pid's descriptors that refer to the file ls describes. */
static int keys_of_pid(long pid, const struct stat *ls, char keys[MAX_LOG_KEYS][48], int n)
{
	char dir[64];
	struct dirent *de;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	_cleanup_closedir_ DIR *d = opendir(dir);
	while (n >= 0 && d && (de = readdir(d))) {
		char path[320], info[256], key[48];
		struct stat st;
		unsigned mnt = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || st.st_dev != ls->st_dev || st.st_ino != ls->st_ino)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, de->d_name);
		char *m = rt_read_small(path, info, sizeof(info)) > 0 ? strstr(info, "mnt_id:")
		                                                      : NULL;
		if (!m || sscanf(m + 7, "%u", &mnt) != 1)
			continue;
		snprintf(key, sizeof(key), "file[%x:%llx]", mnt, (unsigned long long)st.st_ino);
		n = key_add(keys, n, key);
	}
	return n;
}

/* The CRIU keys ("file[mnt_id:ino]") under which processes of the sandbox hold the host's
 * agent.log (opened by the runtime before the pivot, so outside the sandbox's mounts). */
static int log_keys(const char *procs, const char *log, char keys[MAX_LOG_KEYS][48],
                    struct hutch_error *err)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct stat ls;
	int n = 0;

	if (stat(log, &ls) < 0)
		return 0;
	if (read_file(procs, 1 << 22, &b) < 0)
		return hutch_error_errno(err, "reading %s", procs);
	for (char *p = b.data; p && *p && n >= 0;) {
		long pid = strtol(p, &p, 10);
		n = keys_of_pid(pid, &ls, keys, n);
		while (*p == '\n')
			p++;
	}
	if (n < 0)
		return hutch_error_set(err, -EBUSY, "agent.log is open through too many mounts");
	return n;
}

/* -EBUSY unless PID 1's network namespace holds only lo (see checkpoint.md: network). */
static int check_netns(pid_t pid, struct hutch_error *err)
{
	char path[64];
	_cleanup_buf_ struct buf b = BUF_INIT;
	int line = 0;

	snprintf(path, sizeof(path), "/proc/%d/net/dev", (int)pid);
	if (read_file(path, 1 << 20, &b) < 0)
		return hutch_error_errno(err, "reading %s", path);
	for (char *p = b.data; p && *p; line++) {
		char *nl = strchr(p, '\n');
		if (line >= 2) {
			while (*p == ' ')
				p++;
			if (strncmp(p, "lo:", 3) != 0) {
				char *colon = strchr(p, ':');
				int n = colon ? (int)(colon - p) : 16;
				return hutch_error_set(
				        err, -EBUSY,
				        "the sandbox's network is attached (%.*s): detach "
				        "it before a checkpoint",
				        n > 16 ? 16 : n, p);
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* ---- checkpoint metadata ---- */

struct ckpt_meta {
	char kind[16]; /* "suspend" | "snapshot" */
	char id[72];
	char hostname[72];
	char image[72];
	char keys[MAX_LOG_KEYS][48];
	int nkeys;
	int64_t created_at_ms;
	bool has_limits; /* the cgroups' limits (a restore after a reboot makes them again) */
	struct rt_limits limits;
};

static int meta_write(const char *dir, const struct ckpt_meta *m, const char *criu_version,
                      struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" CKPT_META, dir);
	json_t *keys = json_array();

	for (int i = 0; i < m->nkeys; i++)
		json_array_append_new(keys, json_string(m->keys[i]));
	json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:s}", "version",
	                      CKPT_VERSION, "kind", m->kind, "id", m->id, "hostname", m->hostname,
	                      "image", m->image, "log_keys", keys, "created_at_ms",
	                      (json_int_t)m->created_at_ms, "checkpointed_at_ms",
	                      (json_int_t)time_now_ms(), "criu_version", criu_version);
	if (o && m->has_limits)
		json_object_set_new(o, "limits",
		                    json_pack("{s:f, s:I, s:I}", "cpus", m->limits.cpus,
		                              "memory_bytes", (json_int_t)m->limits.memory_bytes,
		                              "pids_max", (json_int_t)m->limits.pids_max));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return hutch_error_set(err, -ENOMEM, "building %s", path);
	int r = write_file_atomic(path, s, strlen(s), 0600);
	free(s);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s", path);
	}
	return 0;
}

static int meta_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (!v || strlen(v) >= size)
		return -EINVAL;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int meta_read(const char *dir, struct ckpt_meta *m, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" CKPT_META, dir);
	_cleanup_buf_ struct buf b = BUF_INIT;
	json_error_t je;

	if (read_file(path, 1 << 16, &b) < 0)
		return hutch_error_set(err, -ENOENT, "%s is not a checkpoint (no " CKPT_META ")",
		                       dir);
	json_t *o = json_loadb(b.data, b.len, 0, &je);
	json_t *keys = json_object_get(o, "log_keys");
	memset(m, 0, sizeof(*m));
	int r = meta_str(o, "kind", m->kind, sizeof(m->kind));
	if (r == 0)
		r = meta_str(o, "id", m->id, sizeof(m->id));
	if (r == 0)
		r = meta_str(o, "hostname", m->hostname, sizeof(m->hostname));
	if (r == 0)
		r = meta_str(o, "image", m->image, sizeof(m->image));
	for (size_t i = 0; r == 0 && i < json_array_size(keys) && i < MAX_LOG_KEYS; i++) {
		const char *k = json_string_value(json_array_get(keys, i));
		if (!k || strlen(k) >= sizeof(m->keys[0]) || strncmp(k, "file[", 5) != 0)
			r = -EINVAL;
		else
			memcpy(m->keys[m->nkeys++], k, strlen(k) + 1);
	}
	m->created_at_ms = json_integer_value(json_object_get(o, "created_at_ms"));
	json_t *lim = json_object_get(o, "limits"); /* absent in checkpoints of older versions */
	if (r == 0 && lim) {
		json_t *c = json_object_get(lim, "cpus");
		json_t *mb = json_object_get(lim, "memory_bytes");
		json_t *pm = json_object_get(lim, "pids_max");
		if (!json_is_number(c) || json_number_value(c) < 0 || !json_is_integer(mb) ||
		    json_integer_value(mb) < 0 || !json_is_integer(pm) ||
		    json_integer_value(pm) <= 0)
			r = -EINVAL;
		m->has_limits = r == 0;
		m->limits.cpus = json_number_value(c);
		m->limits.memory_bytes = (uint64_t)json_integer_value(mb);
		m->limits.pids_max = (uint64_t)json_integer_value(pm);
	}
	json_decref(o);
	if (r < 0)
		return hutch_error_set(err, -EBADMSG, "%s: malformed", path);
	return 0;
}

/* Copies the sandbox's generated run files into dir/run (restore puts them back if the run
 * directory is gone, e.g. after a reboot: /run is a tmpfs). */
static int save_run_files(const struct rt_config *cfg, const char *id, const char *dir,
                          struct hutch_error *err)
{
	static const char *const files[] = {"hosts", "hostname", "resolv.conf", "entrypoint.json"};
	_cleanup_free_ char *run = rt_path_run(cfg, id, NULL);
	_cleanup_free_ char *out = xasprintf("%s/run", dir);
	_cleanup_close_ int dfd = open(run, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0 || mkdir(out, 0700) < 0)
		return hutch_error_errno(err, "saving %s", run);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char data[4096];
		int n = rt_read_small_at(dfd, files[i], data, sizeof(data));
		if (n < 0)
			continue; /* entrypoint.json is optional */
		_cleanup_free_ char *path = xasprintf("%s/%s", out, files[i]);
		_cleanup_free_ char *s = xasprintf("%s\n", data);
		if (rt_write_replace(path, s, strlen(s), 0644) < 0)
			return hutch_error_errno(err, "writing %s", path);
	}
	return 0;
}

/* ---- checkpoint ---- */

static void add_external_mounts_dump(struct argv *a, bool oom)
{
	for (size_t i = 0; dev_nodes[i]; i++) {
		argv_addv(a, "--external");
		argv_add(a, xasprintf("mnt[/dev/%s]:dev-%s", dev_nodes[i], dev_nodes[i]));
	}
	argv_addv(a, "--external");
	argv_addv(a, "mnt[/run/hutch]:run");
	argv_addv(a, "--external");
	argv_addv(a, "mnt[/run/hutch-agent]:agent");
	if (oom) {
		argv_addv(a, "--external");
		argv_addv(a, "mnt[/run/hutch/oom]:oom");
	}
}

static int dump_run(const struct rt_config *cfg, const struct rt_cgroup_ops *cg, const char *criu,
                    const char *id, pid_t pid, const char *dir, const struct ckpt_meta *m,
                    bool leave_running, struct hutch_error *err)
{
	_cleanup_free_ char *imgs = xasprintf("%s/criu", dir);
	_cleanup_free_ char *log = xasprintf("%s/criu/dump.log", dir);
	_cleanup_free_ char *out = xasprintf("%s/criu/criu.out", dir);
	_cleanup_free_ char *oom = cg->oom_file(cfg, id);
	struct argv a = {0};
	char pidstr[16];
	int r;

	if (mkdir(imgs, 0711) < 0)
		return hutch_error_errno(err, "creating %s", imgs);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	const char *base[] = {criu,
	                      "dump",
	                      "-t",
	                      pidstr,
	                      "-D",
	                      imgs,
	                      "-o",
	                      "dump.log",
	                      "--manage-cgroups",
	                      "--network-lock",
	                      "nftables",
	                      "--tcp-established",
	                      "--freeze-cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(base); i++)
		argv_addv(&a, base[i]);
	argv_add(&a, freezer_dir(cfg, cg, id));
	if (leave_running)
		argv_addv(&a, "--leave-running");
	add_external_mounts_dump(&a, oom != NULL);
	for (int i = 0; i < m->nkeys; i++) {
		argv_addv(&a, "--external");
		argv_addv(&a, m->keys[i]);
	}
	struct criu_run run = {.argv = a.v, .out = out};
	r = criu_exec(&run, log, err);
	argv_free(&a);
	return r;
}

/* Reaps pid if it is an exited child of ours (CRIU killed it), so it leaves no zombie. */
static void reap_child(pid_t pid)
{
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, NULL, WNOHANG | __WALL);
		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		usleep(1000);
	}
}

static int ckpt_prepare(const struct rt_config *cfg, const char *id, const char *dir,
                        struct rt_state *st, struct ckpt_meta *m, struct hutch_error *err)
{
	_cleanup_free_ char *hn = rt_path_run(cfg, id, "hostname");
	int r;

	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	if ((r = rt_state_read(cfg, id, st, NULL)) < 0 ||
	    !pid_running(st->init_pid, st->init_start))
		return hutch_error_set(err, -ENOENT, "sandbox %s is not running", id);
	if ((r = check_netns(st->init_pid, err)) < 0)
		return r;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating %s", dir);
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->image, sizeof(m->image), "%s", st->image);
	if (rt_read_small(hn, m->hostname, sizeof(m->hostname)) <= 0)
		snprintf(m->hostname, sizeof(m->hostname), "%s", id);
	m->created_at_ms = st->created_at_ms;
	m->has_limits = rt_limits_load(cfg, id, &m->limits) == 0;
	return 0;
}

int rt_sandbox_checkpoint(const struct rt_config *cfg, const char *id, const char *dir,
                          bool leave_running, struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);
	struct rt_criu_version v;
	struct rt_state st;
	struct ckpt_meta m;
	int r;

	if (!cg)
		return -ENOTSUP;
	if ((r = rt_criu_detect(cfg, &v, err)) < 0 ||
	    (r = ckpt_prepare(cfg, id, dir, &st, &m, err)) < 0)
		return r;
	_cleanup_free_ char *procs = procs_file(cfg, cg, id);
	_cleanup_free_ char *log = rt_path_sandbox(cfg, id, "agent.log");
	_cleanup_free_ char *upper = rt_path_sandbox(cfg, id, "disk/upper");
	_cleanup_free_ char *fsdir = xasprintf("%s/fs", dir);
	snprintf(m.kind, sizeof(m.kind), "%s", leave_running ? "snapshot" : "suspend");
	if ((r = save_run_files(cfg, id, dir, err)) < 0)
		return r;
	/* Frozen from here: the writable layer and the tree are captured at the same instant. */
	if ((r = rt_sandbox_freeze(cfg, id, true, err)) < 0)
		return r;
	if ((r = log_keys(procs, log, m.keys, err)) >= 0) {
		m.nkeys = r;
		r = 0;
	}
	if (r == 0 && leave_running) {
		struct rt_fs_snapshot_info fi;
		if (mkdir(fsdir, 0700) < 0)
			r = hutch_error_errno(err, "creating %s", fsdir);
		else
			r = rt_fs_snapshot_write(upper, fsdir, st.image, id, &fi, err);
	}
	if (r == 0)
		r = dump_run(cfg, cg, v.path, id, st.init_pid, dir, &m, leave_running, err);
	if (r == 0)
		r = meta_write(dir, &m, v.text, err);
	rt_sandbox_freeze(cfg, id, false, NULL);
	if (r < 0)
		return r;
	if (!leave_running) {
		_cleanup_free_ char *marker = rt_path_sandbox(cfg, id, CKPT_MARKER);
		char real[PATH_MAX];
		const char *d = realpath(dir, real) ? real : dir;
		reap_child(st.init_pid);
		if (rt_write_replace(marker, d, strlen(d), 0600) < 0)
			return hutch_error_errno(err, "writing %s", marker);
	}
	return 0;
}

bool rt_sandbox_checkpointed(const struct rt_config *cfg, const char *id, char **ret_dir)
{
	char buf[PATH_MAX];

	if (!rt_id_valid(id))
		return false;
	_cleanup_free_ char *marker = rt_path_sandbox(cfg, id, CKPT_MARKER);
	if (rt_read_small(marker, buf, sizeof(buf)) <= 0)
		return false;
	if (ret_dir)
		*ret_dir = xstrdup(buf);
	return true;
}

/* ---- restore ---- */

/* Mounts the disk and the overlay and refills the run directory when they are gone (the host
 * rebooted or the executor cleaned up); a no-op for a sandbox suspended on this boot. */
static int rebuild_mounts(const struct rt_config *cfg, const char *id, const char *image,
                          struct hutch_error *err)
{
	_cleanup_free_ char *disk = rt_path_sandbox(cfg, id, "disk");
	_cleanup_free_ char *rootfs = rt_path_sandbox(cfg, id, "rootfs");
	char real[PATH_MAX], lower[PATH_MAX];
	struct image_info info;
	int r;

	if (!rt_is_mountpoint(disk)) {
		_cleanup_free_ char *img = realpath(cfg->state_dir, real)
		                                   ? xasprintf("%s/sandboxes/%s/disk.img", real, id)
		                                   : rt_path_sandbox(cfg, id, "disk.img");
		if ((r = rt_disk_attach_mount(cfg, img, disk, err)) < 0)
			return r;
	}
	if (rt_is_mountpoint(rootfs))
		return 0;
	if ((r = image_resolve(cfg, image, lower, &info, err)) < 0)
		return r;
	_cleanup_free_ char *opts =
	        xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, disk, disk);
	if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
		return hutch_error_errno(err, "mounting the overlay on %s", rootfs);
	return 0;
}

static int rebuild_run(const struct rt_config *cfg, const char *id, const char *dir,
                       struct hutch_error *err)
{
	static const char *const files[] = {"hosts", "hostname", "resolv.conf", "entrypoint.json",
	                                    "oom"};
	_cleanup_free_ char *run = rt_path_run(cfg, id, NULL);
	uid_t uid = rt_cfg_id_base(cfg);

	if (access(run, F_OK) == 0)
		return 0;
	if (mkdir_p(cfg->run_dir, 0711) < 0 || mkdir(run, 0755) < 0 || chown(run, uid, uid) < 0)
		return hutch_error_errno(err, "creating %s", run);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *src = xasprintf("%s/run/%s", dir, files[i]);
		_cleanup_free_ char *dst = xasprintf("%s/%s", run, files[i]);
		_cleanup_buf_ struct buf b = BUF_INIT;
		bool oom = strcmp(files[i], "oom") == 0;
		if (!oom && read_file(src, 1 << 20, &b) < 0)
			continue;
		_cleanup_close_ int fd =
		        open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		             oom ? 0444 : 0644);
		if (fd < 0 || write_all(fd, b.data ? b.data : "", b.len) < 0 ||
		    (!oom && fchown(fd, uid, uid) < 0))
			return hutch_error_errno(err, "restoring %s", dst);
	}
	return 0;
}

/* Makes again what a reboot took (cgroups with their limits, mounts, the run directory). */
static int rt_criu_rebuild(const struct rt_config *cfg, const char *id, const char *dir,
                           const struct ckpt_meta *m, struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);
	int r;

	if (!cg)
		return -ENOTSUP;
	if (!cg->exists(cfg, id)) {
		if (!m->has_limits)
			return hutch_error_set(
			        err, -ENOENT,
			        "sandbox %s has no cgroups any more (host restarted?) "
			        "and its checkpoint does not say its limits",
			        id);
		if ((r = cg->create(cfg, id, &m->limits, err)) < 0)
			return hutch_error_wrap(err, "making the cgroups of %s again", id);
	}
	if ((r = rebuild_mounts(cfg, id, m->image, err)) < 0)
		return r;
	return rebuild_run(cfg, id, dir, err);
}

struct restore_target {
	const char *id;
	const char *dir;      /* the checkpoint */
	const char *hostname; /* set in the restored UTS namespace when it differs, or NULL */
	const char *image;
	int log_fd;
	bool same; /* the checkpoint's own sandbox: keep TCP connections */
	int64_t created_at_ms;
};

static void add_external_mounts_restore(struct argv *a, const struct rt_config *cfg, const char *id,
                                        const char *oom)
{
	for (size_t i = 0; dev_nodes[i]; i++) {
		argv_addv(a, "--external");
		argv_add(a, xasprintf("mnt[dev-%s]:/dev/%s", dev_nodes[i], dev_nodes[i]));
	}
	argv_addv(a, "--external");
	argv_add(a, xasprintf("mnt[run]:%s/%s", cfg->run_dir, id));
	argv_addv(a, "--external");
	argv_add(a, xasprintf("mnt[agent]:%s", cfg->agent_path));
	if (oom) {
		argv_addv(a, "--external");
		argv_add(a, xasprintf("mnt[oom]:%s", oom));
	}
}

/* The files criu writes "0" to so that it, and so the restored tree, starts in the sandbox's
 * cgroups (CRIU's own cgroup handling is off: it would restore the source's paths). */
static char **cgroup_join_files(const struct rt_config *cfg, const struct rt_cgroup_ops *cg,
                                const char *id)
{
	char **files = cg->self_attach_files(cfg, id);

	if (files)
		return files;
	files = xcalloc(2, sizeof(char *));
	files[0] = procs_file(cfg, cg, id);
	return files;
}

static int read_pidfile(const char *path, pid_t *ret, struct hutch_error *err)
{
	char buf[32];

	if (rt_read_small(path, buf, sizeof(buf)) <= 0 || atoi(buf) <= 0)
		return hutch_error_set(err, -EIO, "criu restore wrote no pid to %s", path);
	*ret = (pid_t)atoi(buf);
	return 0;
}

static int restore_run(const struct rt_config *cfg, const struct rt_cgroup_ops *cg,
                       const char *criu, const struct restore_target *t, const struct ckpt_meta *m,
                       pid_t *ret_pid, struct hutch_error *err)
{
	_cleanup_free_ char *work = rt_path_sandbox(cfg, t->id, "criu-work");
	_cleanup_free_ char *imgs = xasprintf("%s/criu", t->dir);
	_cleanup_free_ char *pidfile = xasprintf("%s/pid", work);
	_cleanup_free_ char *log = xasprintf("%s/restore.log", work);
	_cleanup_free_ char *out = xasprintf("%s/criu.out", work);
	_cleanup_free_ char *rootfs = rt_path_sandbox(cfg, t->id, "rootfs");
	_cleanup_free_ char *oom = cg->oom_file(cfg, t->id);
	char **join = NULL;
	int inherit[MAX_LOG_KEYS + 1];
	struct argv a = {0};
	int r;

	rm_rf(work);
	if (mkdir(work, 0700) < 0)
		return hutch_error_errno(err, "creating %s", work);
	const char *base[] = {criu,
	                      "restore",
	                      "-D",
	                      imgs,
	                      "--work-dir",
	                      work,
	                      "-o",
	                      "restore.log",
	                      "--root",
	                      rootfs,
	                      "--manage-cgroups=ignore",
	                      "--network-lock",
	                      "nftables",
	                      "--restore-sibling",
	                      "--restore-detached",
	                      "--pidfile",
	                      pidfile,
	                      t->same ? "--tcp-established" : "--tcp-close"};
	for (size_t i = 0; i < ARRAY_SIZE(base); i++)
		argv_addv(&a, base[i]);
	add_external_mounts_restore(&a, cfg, t->id, oom);
	for (int i = 0; i < m->nkeys; i++) {
		/* CRIU matches an external file by its path, the key minus its first character. */
		argv_addv(&a, "--inherit-fd");
		argv_add(&a, xasprintf("fd[%d]:%s", INHERIT_FD_BASE + i, m->keys[i] + 1));
		inherit[i] = t->log_fd;
	}
	inherit[m->nkeys] = -1;
	join = cgroup_join_files(cfg, cg, t->id);
	struct criu_run run = {.argv = a.v, .inherit = inherit, .cgroup_files = join, .out = out};
	r = criu_exec(&run, log, err);
	if (r == 0)
		r = read_pidfile(pidfile, ret_pid, err);
	rt_strv_free(join);
	argv_free(&a);
	return r;
}

/* Points sandboxes/<id>/netns at the restored tree's network namespace (CRIU made a new one). */
static int netns_rebind(const struct rt_config *cfg, const char *id, pid_t pid,
                        struct hutch_error *err)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, id, "netns");
	char src[64];
	int r = rt_umount_all(path);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "unmounting %s", path);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return hutch_error_errno(err, "creating %s", path);
	close(fd);
	snprintf(src, sizeof(src), "/proc/%d/ns/net", (int)pid);
	if (mount(src, path, NULL, MS_BIND, NULL) < 0)
		return hutch_error_errno(err, "binding %s", src);
	return 0;
}

/* Sets the hostname inside the restored UTS namespace (a copy gets its own name). */
static int set_hostname(pid_t pid, const char *name, struct hutch_error *err)
{
	char path[64];
	int status;

	snprintf(path, sizeof(path), "/proc/%d/ns/uts", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return hutch_error_errno(err, "opening %s", path);
	pid_t c = fork();
	if (c < 0)
		return hutch_error_errno(err, "fork");
	if (c == 0)
		_exit(setns(fd, CLONE_NEWUTS) == 0 && sethostname(name, strlen(name)) == 0 ? 0 : 1);
	while (waitpid(c, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return hutch_error_set(err, -EIO, "setting the restored sandbox's hostname");
	return 0;
}

static int restore_finish(const struct rt_config *cfg, const struct rt_cgroup_ops *cg,
                          const struct restore_target *t, const struct ckpt_meta *m, pid_t pid,
                          int *ret_pidfd, struct hutch_error *err)
{
	struct rt_state st = {.init_pid = pid, .created_at_ms = t->created_at_ms};
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r;

	if (pidfd < 0)
		return hutch_error_errno(err, "pidfd_open of the restored PID 1");
	st.init_start = rt_pid_start_time(pid);
	snprintf(st.id, sizeof(st.id), "%s", t->id);
	snprintf(st.cgroup, sizeof(st.cgroup), "%s", cg->name);
	snprintf(st.image, sizeof(st.image), "%s", t->image);
	if ((r = netns_rebind(cfg, t->id, pid, err)) < 0 ||
	    (t->hostname && strcmp(t->hostname, m->hostname) != 0 &&
	     (r = set_hostname(pid, t->hostname, err)) < 0) ||
	    (r = rt_state_write(cfg, &st, err)) < 0) {
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		close(pidfd);
		return r;
	}
	*ret_pidfd = pidfd;
	return 0;
}

/* Kills a half-restored tree: everything in the sandbox's cgroups. */
static void restore_abort(const struct rt_config *cfg, const struct rt_cgroup_ops *cg,
                          const char *id, pid_t pid)
{
	if (pid > 0)
		kill(pid, SIGKILL);
	cg->kill_all(cfg, id, NULL);
	if (pid > 0)
		reap_child(pid);
}

static int restore_into(const struct rt_config *cfg, const struct restore_target *t,
                        const struct ckpt_meta *m, pid_t *ret_pid, int *ret_pidfd,
                        struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);
	struct rt_criu_version v;
	pid_t pid = 0;
	int r;

	if (!cg)
		return -ENOTSUP;
	if ((r = rt_criu_detect(cfg, &v, err)) < 0)
		return r;
	rt_sandbox_freeze(cfg, t->id, false, NULL);
	r = restore_run(cfg, cg, v.path, t, m, &pid, err);
	if (r == 0)
		r = restore_finish(cfg, cg, t, m, pid, ret_pidfd, err);
	if (r < 0) {
		restore_abort(cfg, cg, t->id, pid);
		return r;
	}
	*ret_pid = pid;
	return 0;
}

int rt_criu_create_restore(const struct rt_config *cfg, const struct rt_spec *spec,
                           const char *image_digest, int log_fd, pid_t *ret_pid, int *ret_pidfd,
                           struct hutch_error *err)
{
	struct ckpt_meta m;
	int r = meta_read(spec->memory_snapshot_dir, &m, err);

	if (r < 0)
		return r;
	if (strcmp(m.kind, "snapshot") != 0)
		return hutch_error_set(err, -EINVAL,
		                       "%s is a suspend checkpoint of %s, not a memory snapshot",
		                       spec->memory_snapshot_dir, m.id);
	struct restore_target t = {
	        .id = spec->id,
	        .dir = spec->memory_snapshot_dir,
	        .hostname = spec->hostname ? spec->hostname : spec->id,
	        .image = image_digest,
	        .log_fd = log_fd,
	        .same = strcmp(m.id, spec->id) == 0,
	        .created_at_ms = time_now_ms(),
	};
	return restore_into(cfg, &t, &m, ret_pid, ret_pidfd, err);
}

static struct rt_sandbox *handle_make(const struct rt_config *cfg, const char *id, pid_t pid,
                                      int pidfd)
{
	struct rt_sandbox *sb = xcalloc(1, sizeof(*sb));
	_cleanup_free_ char *sock = rt_path_run(cfg, id, "agent.sock");
	_cleanup_free_ char *netns = rt_path_sandbox(cfg, id, "netns");
	_cleanup_free_ char *log = rt_path_sandbox(cfg, id, "agent.log");

	snprintf(sb->id, sizeof(sb->id), "%s", id);
	sb->init_pid = pid;
	sb->init_start = rt_pid_start_time(pid);
	sb->pidfd = pidfd;
	snprintf(sb->agent_socket, sizeof(sb->agent_socket), "%s", sock);
	snprintf(sb->netns_path, sizeof(sb->netns_path), "%s", netns);
	snprintf(sb->agent_log, sizeof(sb->agent_log), "%s", log);
	sb->is_child = true; /* --restore-sibling: criu forked it as our child */
	return sb;
}

int rt_sandbox_restore(const struct rt_config *cfg, const char *id, const char *dir,
                       struct rt_sandbox **ret, struct hutch_error *err)
{
	struct ckpt_meta m;
	struct rt_state st;
	pid_t pid;
	int pidfd, r;

	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	if ((r = meta_read(dir, &m, err)) < 0)
		return r;
	if (strcmp(m.id, id) != 0)
		return hutch_error_set(
		        err, -EINVAL,
		        "%s is a checkpoint of %s; create a new sandbox from it with "
		        "rt_spec.memory_snapshot_dir",
		        dir, m.id);
	if (rt_state_read(cfg, id, &st, NULL) < 0)
		return hutch_error_set(err, -ENOENT, "no sandbox %s on this host", id);
	if (pid_running(st.init_pid, st.init_start))
		return hutch_error_set(err, -EEXIST, "sandbox %s is running", id);
	if ((r = rt_criu_rebuild(cfg, id, dir, &m, err)) < 0)
		return r;
	_cleanup_free_ char *logp = rt_path_sandbox(cfg, id, "agent.log");
	_cleanup_close_ int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log < 0)
		return hutch_error_errno(err, "opening %s", logp);
	struct restore_target t = {.id = id,
	                           .dir = dir,
	                           .image = m.image,
	                           .log_fd = log,
	                           .same = true,
	                           .created_at_ms = m.created_at_ms};
	if ((r = restore_into(cfg, &t, &m, &pid, &pidfd, err)) < 0)
		return r;
	_cleanup_free_ char *marker = rt_path_sandbox(cfg, id, CKPT_MARKER);
	unlink(marker);
	*ret = handle_make(cfg, id, pid, pidfd);
	return 0;
}
