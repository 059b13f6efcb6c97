/* Child side, after clone: builds the sandbox's mount tree inside the overlay root (proc with
 * Docker's masks, a minimal /dev, read-only /sys, /run with the agent and /run/hutch, the
 * generated /etc files) and pivots into it. Targets are resolved with openat2(RESOLVE_IN_ROOT)
 * and mounted through /proc/self/fd, so symlinks in an image can never point a mount outside
 * the root. Only system calls: this runs in a fork of a possibly multi-threaded parent. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/child.h"
#include "runtime/internal.h"

/* "/proc/self/fd/<fd>" without snprintf. */
static const char *fdpath(char buf[32], int fd)
{
	char digits[12];
	int n = 0;

	memcpy(buf, "/proc/self/fd/", 14);
	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd > 0);
	for (int i = 0; i < n; i++)
		buf[14 + i] = digits[n - 1 - i];
	buf[14 + n] = '\0';
	return buf;
}

static int open_in(int rootfd, const char *path, int flags)
{
	return rt_open_in_root(rootfd, path, flags);
}

static int open_parent(int rootfd, const char *path, const char **leaf)
{
	return rt_open_parent_in_root(rootfd, path, leaf);
}

static int mkdir_in(int rootfd, const char *path, mode_t mode)
{
	const char *leaf;
	int pfd = open_parent(rootfd, path, &leaf);

	if (pfd < 0)
		return pfd;
	int r = mkdirat(pfd, leaf, mode) < 0 && errno != EEXIST ? -errno : 0;
	close(pfd);
	return r;
}

/* Makes sure path exists (following symlinks inside the root); creates an empty file. */
static int mkfile_in(int rootfd, const char *path)
{
	const char *leaf;
	int fd = open_in(rootfd, path, O_PATH);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd != -ENOENT)
		return fd;
	int pfd = open_parent(rootfd, path, &leaf);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	close(pfd);
	return r;
}

static int mount_in(int rootfd, const char *target, const char *src, const char *type,
                    unsigned long flags, const char *data)
{
	char p[32];
	int fd = open_in(rootfd, target, O_PATH);

	if (fd < 0)
		return fd;
	int r = mount(src, fdpath(p, fd), type, flags, data) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Mount flags that a bind remount inside a user namespace must keep (they are locked). */
static unsigned long locked_flags(int fd)
{
	struct statfs sf;
	unsigned long f = 0;

	if (fstatfs(fd, &sf) < 0)
		return 0;
	if (sf.f_flags & ST_NOSUID)
		f |= MS_NOSUID;
	if (sf.f_flags & ST_NODEV)
		f |= MS_NODEV;
	if (sf.f_flags & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sf.f_flags & ST_NOATIME)
		f |= MS_NOATIME;
	if (sf.f_flags & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sf.f_flags & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int remount_ro_in(int rootfd, const char *target)
{
	char p[32];
	int fd = open_in(rootfd, target, O_PATH);

	if (fd < 0)
		return fd;
	unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(fd);
	int r = mount(NULL, fdpath(p, fd), NULL, fl, NULL) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* Binds src (a path in the child's current mount namespace) onto target inside the root. */
static int bind_in(int rootfd, const char *target, const char *src, bool ro, bool rec)
{
	int r = mount_in(rootfd, target, src, NULL, MS_BIND | (rec ? MS_REC : 0), NULL);

	if (r == 0 && ro)
		r = remount_ro_in(rootfd, target);
	return r;
}

static int bind_fd_in(int rootfd, const char *target, int srcfd, bool ro)
{
	char p[32];

	return bind_in(rootfd, target, fdpath(p, srcfd), ro, false);
}

#define TRY(rep, step, what, expr)                                 \
	do {                                                       \
		int _r = (expr);                                   \
		if (_r < 0)                                        \
			return rt_child_fail(rep, _r, step, what); \
	} while (0)

static int mount_dev(int rootfd, struct rt_child_report *rep)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
	        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"},
	        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	        {"pts/ptmx", "ptmx"},
	};
	char target[32], src[32];

	TRY(rep, "child-mounts", "mkdir /dev", mkdir_in(rootfd, "dev", 0755));
	TRY(rep, "child-mounts", "mount /dev",
	    mount_in(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME,
	             "mode=755,size=65536k"));
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		memcpy(target, "dev/", 4);
		memcpy(src, "/dev/", 5);
		strcpy_safe(target + 4, nodes[i], sizeof(target) - 4);
		strcpy_safe(src + 5, nodes[i], sizeof(src) - 5);
		TRY(rep, "child-mounts", "creating a /dev node", mkfile_in(rootfd, target));
		TRY(rep, "child-mounts", "binding a /dev node",
		    bind_in(rootfd, target, src, false, false));
	}
	TRY(rep, "child-mounts", "mkdir /dev/pts", mkdir_in(rootfd, "dev/pts", 0755));
	TRY(rep, "child-mounts", "mount /dev/pts",
	    mount_in(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
	             "newinstance,ptmxmode=0666,mode=0620,gid=5"));
	TRY(rep, "child-mounts", "mkdir /dev/shm", mkdir_in(rootfd, "dev/shm", 01777));
	TRY(rep, "child-mounts", "mount /dev/shm",
	    mount_in(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	             "mode=1777,size=65536k"));
	int devfd = open_in(rootfd, "dev", O_PATH | O_DIRECTORY);
	if (devfd < 0)
		return rt_child_fail(rep, devfd, "child-mounts", "opening /dev");
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0 && errno != EEXIST) {
			close(devfd);
			return rt_child_fail(rep, -errno, "child-mounts", "symlink in /dev");
		}
	}
	close(devfd);
	return 0;
}

/* Docker's masked and read-only paths of /proc and /sys. Missing ones are skipped. */
static int mask_paths(int rootfd, struct rt_child_report *rep)
{
	static const char *const nulled[] = {"proc/kcore",         "proc/keys",
	                                     "proc/timer_list",    "proc/sched_debug",
	                                     "proc/latency_stats", "proc/timer_stats"};
	static const char *const emptied[] = {"proc/acpi", "proc/scsi", "proc/asound",
	                                      "sys/firmware", "sys/devices/virtual/powercap"};
	static const char *const readonly[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq",
	                                       "proc/bus", "proc/fs"};
	int r;

	for (size_t i = 0; i < sizeof(nulled) / sizeof(nulled[0]); i++) {
		r = bind_in(rootfd, nulled[i], "/dev/null", false, false);
		if (r < 0 && r != -ENOENT)
			return rt_child_fail(rep, r, "child-mounts", "masking a /proc file");
	}
	for (size_t i = 0; i < sizeof(emptied) / sizeof(emptied[0]); i++) {
		r = mount_in(rootfd, emptied[i], "tmpfs", "tmpfs",
		             MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k,mode=555");
		if (r < 0 && r != -ENOENT)
			return rt_child_fail(rep, r, "child-mounts", "masking a directory");
	}
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		char p[32];
		int fd = open_in(rootfd, readonly[i], O_PATH);
		if (fd == -ENOENT)
			continue;
		r = fd < 0 ? fd : bind_in(rootfd, readonly[i], fdpath(p, fd), true, true);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return rt_child_fail(rep, r, "child-mounts",
			                     "making /proc paths read-only");
	}
	return 0;
}

static int mount_run(int rootfd, const struct rt_child_fds *fds, struct rt_child_report *rep)
{
	TRY(rep, "child-mounts", "mkdir /run", mkdir_in(rootfd, "run", 0755));
	TRY(rep, "child-mounts", "mount /run",
	    mount_in(rootfd, "run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
	             "mode=755,size=65536k"));
	TRY(rep, "child-mounts", "mkdir /run/hutch", mkdir_in(rootfd, "run/hutch", 0755));
	TRY(rep, "child-mounts", "bind /run/hutch",
	    bind_fd_in(rootfd, "run/hutch", fds->run, false));
	TRY(rep, "child-mounts", "create /run/hutch-agent", mkfile_in(rootfd, "run/hutch-agent"));
	TRY(rep, "child-mounts", "bind the agent",
	    bind_fd_in(rootfd, "run/hutch-agent", fds->agent, true));
	if (fds->oom >= 0)
		TRY(rep, "child-mounts", "bind /run/hutch/oom",
		    bind_fd_in(rootfd, "run/hutch/oom", fds->oom, true));
	return 0;
}

static int mount_etc(int rootfd, const struct rt_child_fds *fds, struct rt_child_report *rep)
{
	static const char *const files[] = {"hosts", "resolv.conf", "hostname"};
	char target[32];

	TRY(rep, "child-mounts", "mkdir /etc", mkdir_in(rootfd, "etc", 0755));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int src = openat(fds->run, files[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (src < 0)
			return rt_child_fail(rep, -errno, "child-mounts",
			                     "opening a generated /etc file");
		memcpy(target, "etc/", 4);
		strcpy_safe(target + 4, files[i], sizeof(target) - 4);
		int r = mkfile_in(rootfd, target);
		if (r == 0)
			r = bind_fd_in(rootfd, target, src, false);
		close(src);
		if (r < 0)
			return rt_child_fail(rep, r, "child-mounts", "binding an /etc file");
	}
	return 0;
}

static int pivot(int rootfd, struct rt_child_report *rep)
{
	if (fchdir(rootfd) < 0)
		return rt_child_fail(rep, -errno, "child-pivot", "chdir to the root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return rt_child_fail(rep, -errno, "child-pivot", "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return rt_child_fail(rep, -errno, "child-pivot", "detaching the old root");
	if (chdir("/") < 0)
		return rt_child_fail(rep, -errno, "child-pivot", "chdir /");
	return 0;
}

int rt_child_mounts(const struct rt_child_plan *plan, const struct rt_child_fds *fds,
                    struct rt_child_report *rep)
{
	int rootfd = fds->root;
	int r;

	if (rt_child_fault(plan, "child-mounts"))
		return rt_child_fail(rep, -EIO, "child-mounts", "injected fault");
	TRY(rep, "child-mounts", "mkdir /proc", mkdir_in(rootfd, "proc", 0555));
	TRY(rep, "child-mounts", "mount /proc",
	    mount_in(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	if ((r = mount_dev(rootfd, rep)) < 0)
		return r;
	TRY(rep, "child-mounts", "mkdir /sys", mkdir_in(rootfd, "sys", 0555));
	TRY(rep, "child-mounts", "mount /sys",
	    mount_in(rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
	             NULL));
	if ((r = mask_paths(rootfd, rep)) < 0)
		return r;
	if ((r = mount_run(rootfd, fds, rep)) < 0)
		return r;
	if ((r = mount_etc(rootfd, fds, rep)) < 0)
		return r;
	if (rt_child_fault(plan, "child-pivot"))
		return rt_child_fail(rep, -EIO, "child-pivot", "injected fault");
	return pivot(rootfd, rep);
}
