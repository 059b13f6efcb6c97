/* The default seccomp filter (libseccomp), modelled on Docker's default profile: the default
 * action is allow, and the system calls that reach kernel-wide state or could undo the
 * sandbox fail with EPERM. Built once per process into a BPF program that the child installs
 * with a raw prctl (no allocation after clone). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "runtime/internal.h"

/* EPERM unconditionally. Names libseccomp does not know on this architecture are skipped. */
static const char *const denied[] = {
        /* kernel modules, kexec, reboot, swap */
        "init_module",
        "finit_module",
        "delete_module",
        "create_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        /* mounts and the root (CAP_SYS_ADMIN is dropped too; this is the second wall) */
        "mount",
        "umount",
        "umount2",
        "fsopen",
        "fsmount",
        "fsconfig",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "pivot_root",
        /* other processes' memory */
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
        /* the kernel keyring is not namespaced */
        "keyctl",
        "add_key",
        "request_key",
        /* kernel introspection and tracing */
        "bpf",
        "perf_event_open",
        "lookup_dcookie",
        "syslog",
        "userfaultfd",
        /* the clock is global */
        "clock_settime",
        "clock_adjtime",
        "settimeofday",
        "adjtimex",
        "stime",
        /* accounting, quotas, file handles (open_by_handle_at escapes bind mounts) */
        "acct",
        "quotactl",
        "quotactl_fd",
        "open_by_handle_at",
        "name_to_handle_at",
        /* raw I/O ports */
        "iopl",
        "ioperm",
        /* namespaces: entering others' (setns) is denied; new user namespaces below */
        "setns",
        /* obsolete or dangerous */
        "vhangup",
        "nfsservctl",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "get_kernel_syms",
        "query_module",
        "vm86",
        "vm86old",
        "move_pages",
        "fanotify_init",
        /* io_uring bypasses this filter for the operations it performs */
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
};

static int add_denied(scmp_filter_ctx ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0)
			return r;
	}
#ifdef __x86_64__
	/* open_tree_attr (Linux 6.15) is newer than libseccomp's tables. */
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), 467, 0);
#else
	return 0;
#endif
}

/* New user namespaces would give back every capability (inside them): mask the flag in clone
 * and unshare; clone3 hides its flags in memory, so it reports ENOSYS and libc falls back to
 * clone (what Docker does). */
static int add_userns_rules(scmp_filter_ctx ctx)
{
	int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
	                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
	if (r < 0)
		return r;
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
	                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
	if (r < 0)
		return r;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
}

/* personality(2): only PER_LINUX (0), PER_LINUX32 (8) and UNAME26 (0x20000) and their
 * combination pass; a persona with any other bit set (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC,
 * the query value 0xffffffff, ...) fails. One rule per forbidden bit, because libseccomp
 * cannot compare one argument twice in a rule. */
static int add_personality_rules(scmp_filter_ctx ctx)
{
	for (unsigned bit = 0; bit < 32; bit++) {
		uint64_t m = 1ull << bit;
		if (m == 0x8 || m == 0x20000)
			continue;
		int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
		                         SCMP_A0(SCMP_CMP_MASKED_EQ, m, m));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Exports ctx's BPF through a memfd into a heap sock_fprog. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog **ret)
{
	_cleanup_close_ int fd = memfd_create("hutch-seccomp", MFD_CLOEXEC);
	struct sock_fprog *prog;
	off_t size;

	if (fd < 0)
		return -errno;
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) != 0)
		return -EINVAL;
	prog = xcalloc(1, sizeof(*prog));
	prog->len = (unsigned short)(size / sizeof(struct sock_filter));
	prog->filter = xmalloc((size_t)size);
	if (pread(fd, prog->filter, (size_t)size, 0) != size) {
		free(prog->filter);
		free(prog);
		return -EIO;
	}
	*ret = prog;
	return 0;
}

static int build(struct sock_fprog **ret)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return -ENOMEM;
	/* Our own no_new_privs is set by the child before loading. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r == 0)
		r = add_denied(ctx);
	if (r == 0)
		r = add_userns_rules(ctx);
	if (r == 0)
		r = add_personality_rules(ctx);
	if (r == 0)
		r = export_bpf(ctx, ret);
	seccomp_release(ctx);
	return r;
}

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog *prog;

int rt_seccomp_program(const struct sock_fprog **ret, struct hutch_error *err)
{
	int r = 0;

	pthread_mutex_lock(&prog_lock);
	if (!prog)
		r = build(&prog);
	pthread_mutex_unlock(&prog_lock);
	if (r < 0)
		return hutch_error_set(err, r, "building the seccomp filter: %s", strerror(-r));
	*ret = prog;
	return 0;
}
