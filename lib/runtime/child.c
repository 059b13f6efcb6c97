/* The sandbox's first process from clone3 to exec: waits for the parent (uid/gid maps and
 * cgroups), opens the host objects it needs, becomes root of its user namespace, enters a new
 * cgroup namespace, builds its mounts and pivots (mounts.c), sets the hostname, brings lo up,
 * then no_new_privs, capabilities, seccomp and exec of the agent as PID 1. System calls only. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>

#include "runtime/child.h"
#include "runtime/internal.h"

int rt_child_fail(struct rt_child_report *rep, int code, const char *step, const char *what)
{
	rep->code = code < 0 ? code : -EIO;
	strcpy_safe(rep->step, step, sizeof(rep->step));
	strcpy_safe(rep->msg, what, sizeof(rep->msg));
	return rep->code;
}

static int wait_for_parent(const struct rt_child_plan *plan, struct rt_child_report *rep)
{
	char c;
	ssize_t n;

	close(plan->sync_wfd);
	do {
		n = read(plan->sync_fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	close(plan->sync_fd);
	if (n != 1)
		return rt_child_fail(rep, -ECANCELED, "maps", "parent gave up");
	return 0;
}

/* Moves this (single-threaded) process into the sandbox's cgroups. */
static int join_cgroups(const struct rt_child_plan *plan, struct rt_child_report *rep)
{
	for (size_t i = 0; plan->cgroup_files && plan->cgroup_files[i]; i++) {
		int fd = open(plan->cgroup_files[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return rt_child_fail(rep, -errno, "attach", "opening a cgroup tasks file");
		ssize_t n = write(fd, "0", 1);
		int e = errno;
		close(fd);
		if (n != 1)
			return rt_child_fail(rep, n < 0 ? -e : -EIO, "attach", "joining a cgroup");
	}
	return 0;
}

static int open_host(const struct rt_child_plan *plan, struct rt_child_fds *fds,
                     struct rt_child_report *rep)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "making / a slave");
	/* The overlay was mounted by the host, so here it is a locked mount that pivot_root
	 * refuses: bind it onto itself from inside the new namespaces and use that. */
	if (mount(plan->rootfs, plan->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "binding the root onto itself");
	fds->root = open(plan->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds->root < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "opening the root");
	fds->agent = open(plan->agent_path, O_PATH | O_CLOEXEC);
	if (fds->agent < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "opening the agent binary");
	fds->run = open(plan->run_host, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds->run < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "opening the run directory");
	fds->oom = -1;
	if (plan->oom_file) {
		fds->oom = open(plan->oom_file, O_PATH | O_CLOEXEC);
		if (fds->oom < 0)
			return rt_child_fail(rep, -errno, "child-mounts", "opening the OOM file");
	}
	return 0;
}

/* Host root is not mapped in the new user namespace: switch to its uid/gid 0 (id_base). */
static int become_root(struct rt_child_report *rep)
{
	if (setresgid(0, 0, 0) < 0)
		return rt_child_fail(rep, -errno, "maps", "setresgid(0)");
	if (setgroups(0, NULL) < 0)
		return rt_child_fail(rep, -errno, "maps", "setgroups");
	if (setresuid(0, 0, 0) < 0)
		return rt_child_fail(rep, -errno, "maps", "setresuid(0)");
	return 0;
}

static int loopback_up(struct rt_child_report *rep)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (s < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "socket for lo");
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		r = rt_child_fail(rep, -errno, "child-mounts", "reading lo flags");
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = rt_child_fail(rep, -errno, "child-mounts", "bringing lo up");
	}
	close(s);
	return r;
}

/* stdin /dev/null, stdout/stderr the log, the ready pipe at fd 3; everything else is closed
 * by exec. */
static int setup_stdio(const struct rt_child_plan *plan, int *err_fd, struct rt_child_report *rep)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	int log = fcntl(plan->log_fd, F_DUPFD_CLOEXEC, 10);
	int ready = fcntl(plan->ready_fd, F_DUPFD_CLOEXEC, 10);
	int errfd = fcntl(*err_fd, F_DUPFD_CLOEXEC, 10);

	if (nul < 0 || log < 0 || ready < 0 || errfd < 0)
		return rt_child_fail(rep, -errno, "child-exec", "duplicating descriptors");
	*err_fd = errfd;
	if (dup2(nul, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0 ||
	    dup2(ready, RT_CHILD_READY_FD) < 0)
		return rt_child_fail(rep, -errno, "child-exec", "dup2");
	if (syscall(SYS_close_range, RT_CHILD_READY_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return rt_child_fail(rep, -errno, "child-exec", "close_range");
	return 0;
}

static int lock_down(const struct rt_child_plan *plan, struct rt_child_report *rep)
{
	int r;

	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		return rt_child_fail(rep, -errno, "child-exec", "clearing the death signal");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return rt_child_fail(rep, -errno, "child-exec", "no_new_privs");
	if ((r = rt_caps_apply(plan->caps_mask, plan->caps_last)) < 0)
		return rt_child_fail(rep, r, "child-exec", "dropping capabilities");
	if (rt_child_fault(plan, "child-exec"))
		return rt_child_fail(rep, -EIO, "child-exec", "injected fault");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan->seccomp, 0, 0) < 0)
		return rt_child_fail(rep, -errno, "child-exec", "loading the seccomp filter");
	return 0;
}

static int child_run(const struct rt_child_plan *plan, int *err_fd, struct rt_child_report *rep)
{
	struct rt_child_fds fds;
	int r;

	/* Until exec, die with the parent instead of lingering half-made. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if ((r = wait_for_parent(plan, rep)) < 0)
		return r;
	if ((r = join_cgroups(plan, rep)) < 0)
		return r;
	if ((r = open_host(plan, &fds, rep)) < 0)
		return r;
	if ((r = become_root(rep)) < 0)
		return r;
	if (unshare(CLONE_NEWCGROUP) < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "unshare(CLONE_NEWCGROUP)");
	umask(022);
	if ((r = rt_child_mounts(plan, &fds, rep)) < 0)
		return r;
	if (sethostname(plan->hostname, strlen(plan->hostname)) < 0)
		return rt_child_fail(rep, -errno, "child-mounts", "sethostname");
	if ((r = loopback_up(rep)) < 0)
		return r;
	if ((r = setup_stdio(plan, err_fd, rep)) < 0)
		return r;
	/* The agent leads its own session and process group inside the pid namespace: nothing
	 * of it points at a host session, which CRIU cannot checkpoint (checkpoint.md). */
	if (setsid() < 0)
		return rt_child_fail(rep, -errno, "child-exec", "setsid");
	if ((r = lock_down(plan, rep)) < 0)
		return r;
	execve("/run/hutch-agent", plan->argv, plan->envp);
	return rt_child_fail(rep, -errno, "child-exec", "execve /run/hutch-agent");
}

void rt_child_main(const struct rt_child_plan *plan)
{
	struct rt_child_report rep;
	int err_fd = plan->err_fd;

	memset(&rep, 0, sizeof(rep));
	child_run(plan, &err_fd, &rep);
	if (rep.code != -ECANCELED) {
		ssize_t n = write(err_fd, &rep, sizeof(rep));
		(void)n;
	}
	_exit(127);
}
