/* rt_sandbox_create: the setup steps in order (rt_create_steps), each one named so a test can
 * inject a fault there, and on any failure a full teardown through rt_sandbox_destroy. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/child.h"
#include "runtime/image.h"
#include "runtime/internal.h"
#include "runtime/spec.h"

struct create {
	const struct rt_config *cfg;
	const struct rt_spec *spec;
	struct hutch_error *err;
	const struct rt_cgroup_ops *cg;
	const char *hostname;
	char lower[PATH_MAX];
	struct image_info image;
	char *dir, *rootfs, *run, *oom_file;
	char **cgroup_files;
	char **envp;
	int log_fd, cgroup_fd;
	int sync[2], errp[2], ready[2];
	int pidfd;
	pid_t pid;
	uint64_t deadline_ms;
};

static int step_dirs(struct create *c)
{
	_cleanup_free_ char *parent = rt_path_sandboxes(c->cfg);

	if (mkdir_p(parent, 0711) < 0)
		return hutch_error_errno(c->err, "creating %s", parent);
	if (mkdir(c->dir, 0711) < 0) {
		if (errno == EEXIST)
			return hutch_error_set(c->err, -EEXIST, "sandbox %s already exists",
			                       c->spec->id);
		return hutch_error_errno(c->err, "creating %s", c->dir);
	}
	return 0;
}

static int step_image(struct create *c)
{
	_cleanup_free_ char *path = rt_path_sandbox(c->cfg, c->spec->id, "image");
	int r = image_resolve(c->cfg, c->spec->image, c->lower, &c->image, c->err);

	if (r < 0)
		return r;
	/* Recorded before the overlay exists, so image_remove never deletes a layer in use. */
	r = rt_write_replace(path, c->image.digest, strlen(c->image.digest), 0600);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(c->err, "writing %s", path);
	}
	return 0;
}

/* The writable layer, filled from a snapshot when the spec names one (snapshot.c). */
static int step_disk(struct create *c)
{
	int r = rt_disk_create(c->cfg, c->spec->id, c->spec->disk_mb, c->err);

	return r < 0 ? r : rt_snapshot_layer_apply(c->cfg, c->spec, c->image.digest, c->err);
}

static int step_overlay(struct create *c)
{
	_cleanup_free_ char *disk = rt_path_sandbox(c->cfg, c->spec->id, "disk");
	_cleanup_free_ char *opts =
	        xasprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", c->lower, disk, disk);

	if (strlen(opts) >= 4000)
		return hutch_error_set(c->err, -ENAMETOOLONG, "overlay options too long");
	if (mkdir(c->rootfs, 0755) < 0 && errno != EEXIST)
		return hutch_error_errno(c->err, "creating %s", c->rootfs);
	if (mount("overlay", c->rootfs, "overlay", MS_NODEV, opts) < 0)
		return hutch_error_errno(c->err, "mounting the overlay on %s", c->rootfs);
	return 0;
}

static int step_cgroup(struct create *c)
{
	struct rt_limits lim = {
	        .cpus = c->spec->cpus,
	        .memory_bytes = c->spec->memory_mb << 20,
	        .pids_max = c->spec->pids_max ? c->spec->pids_max : rt_cfg_pids_max(c->cfg),
	};
	int r = c->cg->create(c->cfg, c->spec->id, &lim, c->err);

	if (r < 0)
		return r;
	if ((r = rt_limits_save(c->cfg, c->spec->id, &lim)) < 0) {
		errno = -r;
		return hutch_error_errno(c->err, "saving the limits of %s", c->spec->id);
	}
	c->oom_file = c->cg->oom_file(c->cfg, c->spec->id);
	c->cgroup_files = c->cg->self_attach_files(c->cfg, c->spec->id);
	c->cgroup_fd = c->cg->open_for_clone(c->cfg, c->spec->id);
	return 0;
}

static int step_clone(struct create *c, const struct sock_fprog *prog)
{
	char *argv[] = {"/run/hutch-agent", NULL};
	struct rt_child_plan plan = {
	        .rootfs = c->rootfs,
	        .agent_path = c->cfg->agent_path,
	        .run_host = c->run,
	        .oom_file = c->oom_file,
	        .cgroup_files = c->cgroup_files,
	        .hostname = c->hostname,
	        .envp = c->envp,
	        .argv = argv,
	        .seccomp = prog,
	        .caps_mask = rt_caps_default_mask(),
	        .caps_last = rt_caps_last(),
	        .fault = c->cfg->fault_step,
	        .log_fd = c->log_fd,
	};
	struct clone_args ca = {
	        .flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
	                 CLONE_NEWIPC | CLONE_PIDFD,
	        .pidfd = (uint64_t)(uintptr_t)&c->pidfd,
	        .exit_signal = SIGCHLD,
	};

	if (pipe2(c->sync, O_CLOEXEC) < 0 || pipe2(c->errp, O_CLOEXEC) < 0 ||
	    pipe2(c->ready, O_CLOEXEC) < 0)
		return hutch_error_errno(c->err, "pipe2");
	plan.sync_fd = c->sync[0], plan.sync_wfd = c->sync[1];
	plan.err_fd = c->errp[1], plan.ready_fd = c->ready[1];
	if (c->cgroup_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)c->cgroup_fd;
	}
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid < 0)
		return hutch_error_errno(c->err, "clone3");
	if (pid == 0)
		rt_child_main(&plan);
	c->pid = (pid_t)pid;
	close(c->sync[0]);
	close(c->errp[1]);
	close(c->ready[1]);
	c->sync[0] = c->errp[1] = c->ready[1] = -1;
	return 0;
}

static int step_maps(struct create *c)
{
	char map[64], path[64];
	const char *files[] = {"uid_map", "gid_map"};

	snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)rt_cfg_id_base(c->cfg),
	         (unsigned)rt_cfg_id_count(c->cfg));
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)c->pid, files[i]);
		int r = write_file_str(path, map);
		if (r < 0) {
			errno = -r;
			return hutch_error_errno(c->err, "writing %s", path);
		}
	}
	return 0;
}

static int step_netns(struct create *c)
{
	_cleanup_free_ char *path = rt_path_sandbox(c->cfg, c->spec->id, "netns");
	char src[64];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return hutch_error_errno(c->err, "creating %s", path);
	close(fd);
	snprintf(src, sizeof(src), "/proc/%d/ns/net", (int)c->pid);
	if (mount(src, path, NULL, MS_BIND, NULL) < 0)
		return hutch_error_errno(c->err, "binding %s", src);
	return 0;
}

static int step_network(struct create *c)
{
	if (!c->spec->on_netns)
		return 0;
	_cleanup_free_ char *path = rt_path_sandbox(c->cfg, c->spec->id, "netns");
	return c->spec->on_netns(path, c->spec->on_netns_arg, c->err);
}

static int step_state(struct create *c)
{
	struct rt_state st = {.init_pid = c->pid, .created_at_ms = time_now_ms()};

	st.init_start = rt_pid_start_time(c->pid);
	if (st.init_start == 0)
		return hutch_error_set(c->err, -ESRCH, "the sandbox's first process died early");
	snprintf(st.id, sizeof(st.id), "%s", c->spec->id);
	snprintf(st.cgroup, sizeof(st.cgroup), "%s", c->cg->name);
	snprintf(st.image, sizeof(st.image), "%s", c->image.digest);
	return rt_state_write(c->cfg, &st, c->err);
}

/* The host's resolvers minus loopback ones (unreachable from the sandbox's netns). */
static void resolv_conf(struct buf *out)
{
	_cleanup_buf_ struct buf host = BUF_INIT;

	buf_adds(out, "# generated by hutch\n");
	if (read_file("/etc/resolv.conf", 1 << 16, &host) < 0)
		return;
	for (char *line = host.data; line && *line;) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		struct sv l = sv_make(line, n);
		bool loop = sv_starts_with(l, SV("nameserver 127.")) ||
		            sv_starts_with(l, SV("nameserver ::1"));
		if (!loop &&
		    (sv_starts_with(l, SV("nameserver ")) || sv_starts_with(l, SV("search ")) ||
		     sv_starts_with(l, SV("options ")))) {
			buf_add(out, line, n);
			buf_addch(out, '\n');
		}
		line = nl ? nl + 1 : NULL;
	}
}

static int write_run_file(struct create *c, const char *name, const char *data, mode_t mode,
                          bool sandbox_owned)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", c->run, name);
	_cleanup_close_ int fd =
	        open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	uid_t id = rt_cfg_id_base(c->cfg);

	if (fd < 0)
		return hutch_error_errno(c->err, "creating %s", path);
	int r = write_all(fd, data, strlen(data));
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(c->err, "writing %s", path);
	}
	if (sandbox_owned && fchown(fd, id, id) < 0)
		return hutch_error_errno(c->err, "chown %s", path);
	return 0;
}

static int write_entrypoint(struct create *c)
{
	json_t *a = json_array();
	char *s;
	int r;

	for (size_t i = 0; c->spec->entrypoint[i]; i++)
		json_array_append_new(a, json_string(c->spec->entrypoint[i]));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (!s)
		return hutch_error_set(c->err, -EINVAL, "entrypoint is not valid UTF-8");
	r = write_run_file(c, "entrypoint.json", s, 0644, true);
	free(s);
	return r;
}

static int step_rundir(struct create *c)
{
	_cleanup_free_ char *log = rt_path_sandbox(c->cfg, c->spec->id, "agent.log");
	_cleanup_buf_ struct buf hosts = BUF_INIT, resolv = BUF_INIT, hn = BUF_INIT;
	uid_t id = rt_cfg_id_base(c->cfg);
	int r;

	if (mkdir_p(c->cfg->run_dir, 0711) < 0)
		return hutch_error_errno(c->err, "creating %s", c->cfg->run_dir);
	rm_rf(c->run); /* a stale directory of a sandbox that never got state */
	if (mkdir(c->run, 0755) < 0 || chown(c->run, id, id) < 0)
		return hutch_error_errno(c->err, "creating %s", c->run);
	buf_printf(&hosts,
	           "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	           "127.0.1.1\t%s\n",
	           c->hostname);
	buf_printf(&hn, "%s\n", c->hostname);
	resolv_conf(&resolv);
	if ((r = write_run_file(c, "hosts", buf_cstr(&hosts), 0644, true)) < 0 ||
	    (r = write_run_file(c, "hostname", buf_cstr(&hn), 0644, true)) < 0 ||
	    (r = write_run_file(c, "resolv.conf", buf_cstr(&resolv), 0644, true)) < 0 ||
	    (r = write_run_file(c, "oom", "", 0444, false)) < 0)
		return r;
	if (c->spec->entrypoint && (r = write_entrypoint(c)) < 0)
		return r;
	c->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->log_fd < 0)
		return hutch_error_errno(c->err, "opening %s", log);
	return 0;
}

static int remaining_ms(const struct create *c)
{
	uint64_t now = time_mono_ms();

	return now >= c->deadline_ms ? 0 : (int)(c->deadline_ms - now);
}

/* Reads n bytes from fd within the deadline: n, fewer at EOF, -ETIMEDOUT, -errno. */
static ssize_t read_deadline(const struct create *c, int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, remaining_ms(c));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* Lets the child go and waits until it exec'd the agent (its error pipe closes). */
static int step_release(struct create *c)
{
	struct rt_child_report rep;
	ssize_t n;

	if (write(c->sync[1], "g", 1) != 1)
		return hutch_error_errno(c->err, "releasing the sandbox's first process");
	close(c->sync[1]);
	c->sync[1] = -1;
	n = read_deadline(c, c->errp[0], &rep, sizeof(rep));
	if (n == -ETIMEDOUT)
		return hutch_error_set(c->err, -ETIMEDOUT, "sandbox setup timed out");
	if (n < 0)
		return hutch_error_set(c->err, (int)n, "reading the setup report");
	if (n == 0)
		return 0;
	if (n != sizeof(rep))
		return hutch_error_set(c->err, -EIO, "sandbox setup died");
	rep.step[sizeof(rep.step) - 1] = rep.msg[sizeof(rep.msg) - 1] = '\0';
	return hutch_error_set(c->err, rep.code, "sandbox setup failed at %s: %s: %s", rep.step,
	                       rep.msg, strerror(-rep.code));
}

static int step_agent_ready(struct create *c)
{
	char b;
	ssize_t n;

	if (rt_fault_check(c->cfg, "agent-ready", c->err) < 0)
		return -EIO;
	n = read_deadline(c, c->ready[0], &b, 1);
	if (n == 1)
		return 0;
	if (n == -ETIMEDOUT)
		return hutch_error_set(c->err, -ETIMEDOUT,
		                       "the agent did not report ready within %u ms",
		                       rt_cfg_ready_timeout_ms(c->cfg));
	return hutch_error_set(c->err, -ECHILD, "the agent exited before it was ready (see %s)",
	                       "agent.log");
}

#define STEP(c, name, expr)                                            \
	do {                                                           \
		int _r = (expr);                                       \
		if (_r == 0)                                           \
			_r = rt_fault_check((c)->cfg, name, (c)->err); \
		if (_r < 0)                                            \
			return _r;                                     \
	} while (0)

/* Every step after "dirs"; a fault named for a step fires after that step's work is done, so
 * the teardown must undo it. */
static int run_steps(struct create *c)
{
	const struct sock_fprog *prog = NULL;

	STEP(c, "dirs", 0);
	STEP(c, "image", step_image(c));
	STEP(c, "disk", step_disk(c));
	STEP(c, "overlay", step_overlay(c));
	STEP(c, "rundir", step_rundir(c));
	STEP(c, "cgroup", step_cgroup(c));
	if (c->spec->memory_snapshot_dir) { /* resume a checkpoint's tree instead (criu.c) */
		STEP(c, "clone",
		     rt_criu_create_restore(c->cfg, c->spec, c->image.digest, c->log_fd, &c->pid,
		                            &c->pidfd, c->err));
		return 0;
	}
	STEP(c, "seccomp", rt_seccomp_program(&prog, c->err));
	STEP(c, "clone", step_clone(c, prog));
	STEP(c, "maps", step_maps(c));
	/* v1: the child joins its cgroups itself right after release (see self_attach_files) */
	STEP(c, "attach", c->cgroup_files ? 0 : c->cg->attach(c->cfg, c->spec->id, c->pid, c->err));
	STEP(c, "netns", step_netns(c));
	STEP(c, "network", step_network(c));
	STEP(c, "state", step_state(c));
	STEP(c, "release", step_release(c));
	return step_agent_ready(c);
}

static void abort_child(struct create *c)
{
	siginfo_t si;

	if (c->pid <= 0)
		return;
	if (c->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
		while (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) < 0 && errno == EINTR)
			;
	} else {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->pid = 0;
}

static void create_release(struct create *c)
{
	int *fds[] = {&c->log_fd,  &c->cgroup_fd, &c->sync[0],  &c->sync[1], &c->errp[0],
	              &c->errp[1], &c->ready[0],  &c->ready[1], &c->pidfd};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	free(c->dir);
	free(c->rootfs);
	free(c->run);
	free(c->oom_file);
	rt_strv_free(c->cgroup_files);
	rt_strv_free(c->envp);
}

static struct rt_sandbox *handle_new(struct create *c)
{
	struct rt_sandbox *sb = xcalloc(1, sizeof(*sb));
	_cleanup_free_ char *sock = rt_path_run(c->cfg, c->spec->id, "agent.sock");
	_cleanup_free_ char *netns = rt_path_sandbox(c->cfg, c->spec->id, "netns");
	_cleanup_free_ char *log = rt_path_sandbox(c->cfg, c->spec->id, "agent.log");

	snprintf(sb->id, sizeof(sb->id), "%s", c->spec->id);
	sb->init_pid = c->pid;
	sb->init_start = rt_pid_start_time(c->pid);
	sb->pidfd = TAKE_FD(c->pidfd);
	snprintf(sb->agent_socket, sizeof(sb->agent_socket), "%s", sock);
	snprintf(sb->netns_path, sizeof(sb->netns_path), "%s", netns);
	snprintf(sb->agent_log, sizeof(sb->agent_log), "%s", log);
	sb->is_child = true;
	return sb;
}

int rt_sandbox_create(const struct rt_config *cfg, const struct rt_spec *spec,
                      struct rt_sandbox **ret, struct hutch_error *err)
{
	struct create c = {
	        .cfg = cfg,
	        .spec = spec,
	        .err = err,
	        .log_fd = -1,
	        .cgroup_fd = -1,
	        .sync = {-1, -1},
	        .errp = {-1, -1},
	        .ready = {-1, -1},
	        .pidfd = -1,
	};
	int r = rt_spec_validate(cfg, spec, err);

	if (r < 0)
		return r;
	if (strlen(cfg->state_dir) > RT_PATH_PREFIX_MAX ||
	    strlen(cfg->run_dir) > RT_PATH_PREFIX_MAX)
		return hutch_error_set(err, -ENAMETOOLONG, "state_dir or run_dir too long");
	c.cg = rt_cgroup(err);
	if (!c.cg)
		return -ENOTSUP;
	c.hostname = spec->hostname ? spec->hostname : spec->id;
	c.deadline_ms = time_mono_ms() + rt_cfg_ready_timeout_ms(cfg);
	c.dir = rt_path_sandbox(cfg, spec->id, NULL);
	c.rootfs = rt_path_sandbox(cfg, spec->id, "rootfs");
	c.run = rt_path_run(cfg, spec->id, NULL);
	c.envp = rt_spec_envp(spec);
	r = step_dirs(&c);
	if (r == 0) {
		r = run_steps(&c);
		if (r < 0) {
			abort_child(&c);
			rt_sandbox_destroy(cfg, spec->id, NULL);
		} else {
			*ret = handle_new(&c);
		}
	}
	create_release(&c);
	return r;
}
