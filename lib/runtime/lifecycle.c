/* Everything after create: rt_init, destroy (the one teardown path, also used when create
 * fails), adopt, list, freeze, memory, exit reason, reap. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/internal.h"

static int check_host(struct hutch_error *err)
{
	char buf[4096];

	if (geteuid() != 0)
		return hutch_error_set(err, -EPERM, "the sandbox runtime must run as root");
	if (rt_read_small("/proc/sys/user/max_user_namespaces", buf, sizeof(buf)) <= 0 ||
	    atoi(buf) <= 0)
		return hutch_error_set(err, -ENOTSUP, "user namespaces are disabled");
	if (rt_read_small("/proc/filesystems", buf, sizeof(buf)) <= 0 || !strstr(buf, "overlay"))
		return hutch_error_set(err, -ENOTSUP,
		                       "overlayfs is not available (modprobe overlay)");
	if (access("/dev/loop-control", R_OK | W_OK) < 0)
		return hutch_error_errno(err, "loop devices are not available (/dev/loop-control)");
	return 0;
}

/* Makes state_dir a private mount so nothing mounted below it propagates anywhere. */
static int make_private(const char *dir, struct hutch_error *err)
{
	if (!rt_is_mountpoint(dir) && mount(dir, dir, NULL, MS_BIND | MS_REC, NULL) < 0)
		return hutch_error_errno(err, "bind-mounting %s on itself", dir);
	if (mount(NULL, dir, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		return hutch_error_errno(err, "making %s a private mount", dir);
	return 0;
}

int rt_init(const struct rt_config *cfg, struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg;
	uint64_t end = (uint64_t)rt_cfg_id_base(cfg) + rt_cfg_id_count(cfg);
	int r;

	if (!cfg->state_dir || cfg->state_dir[0] != '/' || !cfg->run_dir || cfg->run_dir[0] != '/')
		return hutch_error_set(err, -EINVAL, "state_dir and run_dir must be absolute");
	if (strlen(cfg->state_dir) > RT_PATH_PREFIX_MAX ||
	    strlen(cfg->run_dir) > RT_PATH_PREFIX_MAX)
		return hutch_error_set(err, -ENAMETOOLONG, "state_dir or run_dir too long");
	if (rt_cfg_id_base(cfg) == 0 || end > UINT32_MAX || rt_cfg_id_count(cfg) < 65536)
		return hutch_error_set(err, -EINVAL, "bad sandbox id range");
	if ((r = check_host(err)) < 0)
		return r;
	if (!(cg = rt_cgroup(err)))
		return -ENOTSUP;
	if ((r = cg->setup(cfg, err)) < 0)
		return r;
	if (mkdir_p(cfg->state_dir, 0711) < 0 || mkdir_p(cfg->run_dir, 0711) < 0)
		return hutch_error_errno(err, "creating %s and %s", cfg->state_dir, cfg->run_dir);
	if ((r = make_private(cfg->state_dir, err)) < 0)
		return r;
	_cleanup_free_ char *sandboxes = rt_path_sandboxes(cfg);
	_cleanup_free_ char *pool = rt_path_disks(cfg, "pool");
	_cleanup_free_ char *images = xasprintf("%s/images", cfg->state_dir);
	if (mkdir_p(sandboxes, 0711) < 0 || mkdir_p(pool, 0700) < 0 || mkdir_p(images, 0700) < 0)
		return hutch_error_errno(err, "creating directories in %s", cfg->state_dir);
	rt_disk_pool_clean_stale(cfg);
	return 0;
}

int rt_host_release(const struct rt_config *cfg, struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(NULL);
	if (cg && cg->teardown(cfg, err) < 0)
		return -1;
	if (!rt_is_mountpoint(cfg->state_dir))
		return 0;
	if (umount2(cfg->state_dir, MNT_DETACH) < 0)
		return hutch_error_errno(err, "unmounting %s", cfg->state_dir);
	return 0;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	int ppid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (rt_read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* Reaps pid if it is our unreaped child (bounded), so its cgroup and pid are released. */
static void reap_if_child(pid_t pid)
{
	uint64_t deadline = time_mono_ms() + 5000;

	if (pid <= 0 || parent_of(pid) != getpid())
		return;
	while (time_mono_ms() < deadline) {
		pid_t r = waitpid(pid, NULL, WNOHANG | __WALL);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		usleep(1000);
	}
}

/* Kills PID 1 when the state names a live process and reaps it if it is our child: the
 * kernel only lets PID 1 finish exiting after every other process of its pid namespace is gone,
 * and an unreaped PID 1 stays listed in some v1 controllers, so reaping comes before the sweep
 * of the cgroups for anything left. */
static int kill_sandbox(const struct rt_config *cfg, const struct rt_cgroup_ops *cg, const char *id,
                        struct hutch_error *err)
{
	struct rt_state st;

	if (rt_state_read(cfg, id, &st, NULL) == 0 &&
	    rt_pid_start_time(st.init_pid) == st.init_start) {
		kill(st.init_pid, SIGKILL);
		/* a frozen (suspended) sandbox cannot die before it thaws */
		if (cg->exists(cfg, id))
			cg->freeze(cfg, id, false, NULL);
		reap_if_child(st.init_pid);
	}
	return cg->kill_all(cfg, id, err);
}

static void keep_first(int *ret, int r)
{
	if (r < 0 && *ret == 0)
		*ret = r;
}

static int remove_mounts(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	_cleanup_free_ char *netns = rt_path_sandbox(cfg, id, "netns");
	_cleanup_free_ char *rootfs = rt_path_sandbox(cfg, id, "rootfs");
	int ret = 0, r;

	if ((r = rt_umount_all(netns)) < 0) {
		errno = -r;
		keep_first(&ret, hutch_error_errno(err, "unmounting %s", netns));
	}
	if ((r = rt_umount_all(rootfs)) < 0) {
		errno = -r;
		keep_first(&ret, hutch_error_errno(err, "unmounting %s", rootfs));
	}
	keep_first(&ret, rt_disk_destroy(cfg, id, ret ? NULL : err));
	return ret;
}

int rt_sandbox_destroy(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg;
	_cleanup_free_ char *dir = NULL, *marker = NULL, *run = NULL;
	int ret = 0, r;

	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	if (!(cg = rt_cgroup(err)))
		return -ENOTSUP;
	dir = rt_path_sandbox(cfg, id, NULL);
	marker = rt_path_sandbox(cfg, id, "killed");
	run = rt_path_run(cfg, id, NULL);
	r = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (r >= 0)
		close(r);
	keep_first(&ret, kill_sandbox(cfg, cg, id, err));
	keep_first(&ret, cg->remove(cfg, id, ret ? NULL : err));
	keep_first(&ret, remove_mounts(cfg, id, ret ? NULL : err));
	if ((r = rm_rf(dir)) < 0) {
		errno = -r;
		keep_first(&ret, hutch_error_errno(ret ? NULL : err, "removing %s", dir));
	}
	if ((r = rm_rf(run)) < 0) {
		errno = -r;
		keep_first(&ret, hutch_error_errno(ret ? NULL : err, "removing %s", run));
	}
	return ret;
}

bool rt_pid_running(pid_t pid, uint64_t start)
{
	char path[64], buf[512];

	if (rt_pid_start_time(pid) != start)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (rt_read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

int rt_sandbox_adopt(const struct rt_config *cfg, const char *id, struct rt_sandbox **ret,
                     struct hutch_error *err)
{
	struct rt_state st;
	int r;

	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	r = rt_state_read(cfg, id, &st, err);
	if (r < 0)
		return r;
	/* a zombie PID 1 (a checkpoint killed it, and its parent is gone) is not running */
	if (!rt_pid_running(st.init_pid, st.init_start))
		return hutch_error_set(err, -ESRCH, "sandbox %s: its PID 1 is gone", id);
	int pidfd = (int)syscall(SYS_pidfd_open, st.init_pid, 0);
	if (pidfd < 0)
		return errno == ESRCH
		               ? hutch_error_set(err, -ESRCH, "sandbox %s: PID 1 is gone", id)
		               : hutch_error_errno(err, "pidfd_open");
	/* Checked again after pidfd_open: the fd now pins the process we verified. */
	if (rt_pid_start_time(st.init_pid) != st.init_start) {
		close(pidfd);
		return hutch_error_set(err, -ESRCH, "sandbox %s: its PID 1 is gone", id);
	}
	struct rt_sandbox *sb = xcalloc(1, sizeof(*sb));
	_cleanup_free_ char *sock = rt_path_run(cfg, id, "agent.sock");
	_cleanup_free_ char *netns = rt_path_sandbox(cfg, id, "netns");
	_cleanup_free_ char *log = rt_path_sandbox(cfg, id, "agent.log");
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	sb->init_pid = st.init_pid;
	sb->init_start = st.init_start;
	sb->pidfd = pidfd;
	snprintf(sb->agent_socket, sizeof(sb->agent_socket), "%s", sock);
	snprintf(sb->netns_path, sizeof(sb->netns_path), "%s", netns);
	snprintf(sb->agent_log, sizeof(sb->agent_log), "%s", log);
	sb->is_child = parent_of(st.init_pid) == getpid();
	*ret = sb;
	return 0;
}

struct idset {
	char **ids;
	size_t n, cap;
};

static int idset_add(const char *id, void *data)
{
	struct idset *s = data;

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->ids = xreallocarray(s->ids, s->cap, sizeof(char *));
	}
	s->ids[s->n++] = xstrdup(id);
	return 0;
}

/* Directories of dir named like sandbox ids; with owner != -1 only those owned by it (run_dir
 * may be shared with other programs: only our per-sandbox directories belong to id_base). */
static void idset_scan_dir(const char *dir, uid_t owner, struct idset *s)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	struct stat st;

	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !rt_id_valid(de->d_name))
			continue;
		if (owner != (uid_t)-1 &&
		    (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     st.st_uid != owner))
			continue;
		idset_add(de->d_name, s);
	}
}

int rt_sandbox_list(const struct rt_config *cfg, int (*cb)(const char *id, void *data), void *data,
                    struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);
	_cleanup_free_ char *sandboxes = rt_path_sandboxes(cfg);
	struct idset s = {0};
	int r = 0;

	if (!cg)
		return -ENOTSUP;
	idset_scan_dir(sandboxes, (uid_t)-1, &s);
	idset_scan_dir(cfg->run_dir, rt_cfg_id_base(cfg), &s);
	cg->list(cfg, idset_add, &s);
	for (size_t i = 0; i < s.n; i++) {
		if (r == 0)
			r = cb(s.ids[i], data);
		free(s.ids[i]);
	}
	free(s.ids);
	return r;
}

int rt_sandbox_freeze(const struct rt_config *cfg, const char *id, bool frozen,
                      struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);

	if (!cg)
		return -ENOTSUP;
	if (!rt_id_valid(id) || !cg->exists(cfg, id))
		return hutch_error_set(err, -ENOENT, "no sandbox %s", id ? id : "");
	return cg->freeze(cfg, id, frozen, err);
}

int rt_sandbox_memory_usage(const struct rt_config *cfg, const char *id, uint64_t *ret,
                            struct hutch_error *err)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(err);
	uint64_t v;

	if (!cg)
		return -ENOTSUP;
	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	int r = cg->memory_usage(cfg, id, &v);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "reading the memory usage of %s", id);
	}
	*ret = v;
	return 0;
}

/* The agent's own verdict in <run_dir>/<id>/exit-reason (sandbox-writable: no symlinks). */
static bool agent_says_oom(const struct rt_config *cfg, const char *id)
{
	_cleanup_free_ char *run = rt_path_run(cfg, id, NULL);
	_cleanup_close_ int dfd = open(run, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char buf[64];

	if (dfd < 0 || rt_read_small_at(dfd, "exit-reason", buf, sizeof(buf)) < 0)
		return false;
	return strcmp(buf, "oom") == 0;
}

enum rt_exit_reason rt_sandbox_exit_reason(const struct rt_config *cfg, const char *id)
{
	const struct rt_cgroup_ops *cg = rt_cgroup(NULL);
	_cleanup_free_ char *marker = NULL;
	struct rt_state st;
	uint64_t kills = 0;

	if (!cg || !rt_id_valid(id))
		return RT_EXIT_UNKNOWN;
	if (agent_says_oom(cfg, id))
		return RT_EXIT_OOM;
	marker = rt_path_sandbox(cfg, id, "killed");
	if (access(marker, F_OK) == 0)
		return RT_EXIT_KILLED;
	if (cg->oom_kills(cfg, id, &kills) == 0 && kills > 0)
		return RT_EXIT_OOM;
	if (rt_state_read(cfg, id, &st, NULL) == 0 &&
	    rt_pid_start_time(st.init_pid) != st.init_start)
		return RT_EXIT_AGENT_DIED;
	return RT_EXIT_UNKNOWN;
}

int rt_sandbox_reap(struct rt_sandbox *sb, int *ret_status)
{
	siginfo_t si;

	if (!sb->is_child || sb->pidfd < 0)
		return -ECHILD;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | WNOHANG) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid == 0)
		return 0;
	sb->is_child = false;
	if (ret_status)
		*ret_status = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0)
		                                       : si.si_status & 0x7f;
	return 1;
}

void rt_sandbox_free(struct rt_sandbox *sb)
{
	if (!sb)
		return;
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	free(sb);
}
