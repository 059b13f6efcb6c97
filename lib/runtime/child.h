/* The sandbox's first process between clone3 and exec (child.c, mounts.c): the plan the parent
 * prepares, the descriptors the child opens, and the error report it sends back. Everything
 * here runs in a fork of a possibly multi-threaded parent: system calls only, no allocation,
 * no locks, no stdio. */
#ifndef HUTCH_RUNTIME_CHILD_H
#define HUTCH_RUNTIME_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/filter.h>

/* Everything the child needs, prepared by the parent before clone. */
struct rt_child_plan {
	const char *rootfs;        /* host path of the overlay mount */
	const char *agent_path;    /* host path of the agent binary */
	const char *run_host;      /* <run_dir>/<id> */
	const char *oom_file;      /* cgroup file bound at /run/hutch/oom, or NULL */
	char *const *cgroup_files; /* the child writes "0" to each to join its cgroups, or NULL */
	const char *hostname;
	char *const *envp;
	char *const *argv;
	const struct sock_fprog *seccomp;
	uint64_t caps_mask;
	int caps_last;
	const char *fault; /* cfg->fault_step */
	int sync_fd;       /* read end: the parent's go byte (EOF = abort) */
	int sync_wfd;      /* the parent's write end, closed first thing in the child */
	int err_fd;        /* write end: error report, closed by a successful exec */
	int ready_fd;      /* write end: given to the agent as HUTCH_READY_FD */
	int log_fd;        /* the agent's stdout and stderr */
};

/* Host objects the child opens (as host root, before becoming the namespace's root). */
struct rt_child_fds {
	int root;  /* the overlay root */
	int agent; /* the agent binary */
	int run;   /* <run_dir>/<id> */
	int oom;   /* the cgroup's OOM file, or -1 */
};

/* The child's error report: a negative errno, the step and a fixed message. */
struct rt_child_report {
	int code;
	char step[24];
	char msg[96];
};

#define RT_CHILD_READY_FD 3

/* Runs in the child after clone3; never returns. */
__attribute__((noreturn)) void rt_child_main(const struct rt_child_plan *plan);
/* All the mounts inside the root, then pivot_root. 0 or -errno with rep filled. */
int rt_child_mounts(const struct rt_child_plan *plan, const struct rt_child_fds *fds,
                    struct rt_child_report *rep);
/* Fills rep (no formatting) and returns code. */
int rt_child_fail(struct rt_child_report *rep, int code, const char *step, const char *what);

static inline bool rt_child_fault(const struct rt_child_plan *plan, const char *step)
{
	return plan->fault && strcmp(plan->fault, step) == 0;
}

/* Bounded copy that always terminates dst (no libc strcpy: see banned functions). */
static inline void strcpy_safe(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

#endif
