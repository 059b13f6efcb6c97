/* The sandbox runtime: a library that turns a sandbox spec into an isolated Linux environment
 * (namespaces, cgroups, overlay root on a size-limited disk, seccomp, capabilities) whose PID 1
 * is hutch-agent, and takes it apart again without leaving anything behind. The executor is its
 * only caller; it never logs and reports failures through struct hutch_error.
 *
 * Host layout (all under cfg->state_dir unless noted):
 *   (state_dir itself)          made a private bind mount of itself by rt_init, so nothing
 *                               mounted below it propagates to or from other namespaces
 *   sandboxes/<id>/state.json   what re-adoption needs (init pid, start time, cgroup, image)
 *   sandboxes/<id>/disk.img     sparse ext4 image backing the writable layer (disk_mb)
 *   sandboxes/<id>/disk/        its mount point: upper/ and work/ for overlayfs
 *   sandboxes/<id>/rootfs/      the overlay mount the sandbox pivots into
 *   sandboxes/<id>/netns        a bind mount of the sandbox's network namespace
 *   sandboxes/<id>/agent.log    the agent's stdout and stderr (host only)
 *   sandboxes/<id>/killed       marker written by rt_sandbox_destroy before it kills
 *   disks/                      disk templates (template-<mb>.img) and the warm pool (pool/)
 *   <run_dir>/<id>/             bind-mounted at /run/hutch in the sandbox (owned by id_base):
 *                               agent.sock, hosts, resolv.conf, hostname, entrypoint.json, oom,
 *                               exit-reason. The sandbox can write here: the host never opens
 *                               a path in it without O_NOFOLLOW.
 *   images/                     the image store (see image.h)
 *
 * Thread safety: functions may be called from any thread, but calls for the same sandbox id
 * must not overlap. */
#ifndef HUTCH_RUNTIME_H
#define HUTCH_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

struct rt_config {
	const char *state_dir;     /* e.g. /var/lib/hutch/runtime */
	const char *run_dir;       /* e.g. /run/hutch */
	const char *agent_path;    /* host path of the static hutch-agent binary */
	uid_t id_base;             /* first host uid/gid of the sandbox id range (default 100000) */
	uint32_t id_count;         /* size of the range (default 65536) */
	const char *cgroup_name;   /* top cgroup directory name (default "hutch") */
	uint64_t default_pids_max; /* pids limit when the spec gives none (default 4096) */
	unsigned ready_timeout_ms; /* how long create waits for the agent (default 10000) */
	unsigned disk_pool_size;   /* warm pre-mounted disks kept by rt_disk_pool_refill
	                            * (default 4; disk_pool_disabled turns the pool off) */
	bool disk_pool_disabled;
	uint64_t disk_pool_mb;  /* size of pooled disks (default 10240) */
	const char *fault_step; /* tests only: rt_sandbox_create fails with -EIO at the step
	                         * of this name (see rt_create_steps); NULL in production */
	const char *criu_path;  /* CRIU binary (4.1+); NULL = /opt/hutch/criu/bin/criu, then
	                         * "criu" on PATH (see checkpoint.h) */
};

/* The names of rt_sandbox_create's steps in order, NULL-terminated (for cfg->fault_step). */
extern const char *const rt_create_steps[];

struct rt_spec {
	const char *id;           /* 21-char sandbox id */
	const char *hostname;     /* sandbox name, or the id */
	const char *image;        /* image name or digest; NULL = default image */
	double cpus;              /* CPU quota in cores, > 0 */
	uint64_t memory_mb;       /* hard memory limit, no swap */
	uint64_t disk_mb;         /* size of the writable layer */
	uint64_t pids_max;        /* 0 = cfg->default_pids_max */
	char *const *entrypoint;  /* NULL-terminated argv started by the agent at boot, or NULL */
	char *const *env;         /* NULL-terminated "K=V" list passed to the agent, or NULL */
	const char *snapshot_dir; /* if set: a filesystem snapshot's directory to restore the
	                           * writable layer from (see snapshot functions) */
	const char *memory_snapshot_dir; /* if set: a checkpoint made with leave_running=true
	                                  * (checkpoint.h); the sandbox resumes its process tree
	                                  * and writable layer instead of starting an agent */
	/* If set: called once the sandbox's network namespace exists (bind-mounted at
	 * netns_path) and before its first process is let go, so that the network is there when
	 * the agent and the entrypoint start. A negative return fails the create; undoing what
	 * the callback did is the caller's business (also when a later step fails). Not called
	 * for a memory_snapshot_dir restore. */
	int (*on_netns)(const char *netns_path, void *arg, struct hutch_error *err);
	void *on_netns_arg;
};

/* A live sandbox as the runtime sees it. */
struct rt_sandbox {
	char id[32];
	pid_t init_pid;         /* host pid of the sandbox's PID 1 (hutch-agent) */
	uint64_t init_start;    /* its start time (field 22 of /proc/PID/stat), against pid reuse */
	int pidfd;              /* pollable; readable when PID 1 has exited; -1 if unavailable */
	char agent_socket[256]; /* host path of the agent's unix socket */
	char netns_path[256];   /* host path of a bind mount of the sandbox's network namespace */
	char agent_log[256];    /* host path of the agent's stdout/stderr log */
	bool is_child;          /* init_pid is a child of this process (created, not adopted) */
};

/* Why a sandbox ended, as far as the host can tell. */
enum rt_exit_reason {
	RT_EXIT_UNKNOWN,
	RT_EXIT_KILLED,     /* rt_sandbox_destroy() or another deliberate kill */
	RT_EXIT_OOM,        /* the kernel's OOM killer killed PID 1 or the entrypoint */
	RT_EXIT_AGENT_DIED, /* PID 1 exited on its own or crashed */
};

/* Checks that this host can run sandboxes (root, user namespaces, overlayfs, loop devices,
 * cgroup controllers) and prepares host directories and the cgroup parents; makes state_dir a
 * private mount and removes pool entries a crash left half-made. Idempotent. Call it once at
 * start, before any other rt_ function.
 * Fills err with a message naming the missing feature. */
int rt_init(const struct rt_config *cfg, struct hutch_error *err);

/* Undoes rt_init's host setup (the top cgroup, the private bind mount of state_dir) once no
 * sandbox and no pooled disk is left, e.g. when uninstalling or at the end of a test.
 * Idempotent. */
int rt_host_release(const struct rt_config *cfg, struct hutch_error *err);

/* Creates and starts a sandbox. On success *ret is a new handle (free with rt_sandbox_free) and
 * the agent is listening on ret->agent_socket. On failure everything made so far is removed;
 * -EEXIST (and nothing touched) if the id already has state. -EINVAL for a spec outside the
 * limits. The sandbox's PID 1 is a child of the calling process: reap it with
 * rt_sandbox_reap() (or waitid on the pidfd) once the pidfd is readable. */
int rt_sandbox_create(const struct rt_config *cfg, const struct rt_spec *spec,
                      struct rt_sandbox **ret, struct hutch_error *err);

/* Re-opens a sandbox created by an earlier executor process from its state file. Returns
 * -ENOENT if there is no state, -ESRCH if its PID 1 is gone (then call rt_sandbox_destroy). */
int rt_sandbox_adopt(const struct rt_config *cfg, const char *id, struct rt_sandbox **ret,
                     struct hutch_error *err);

/* Lists the ids that have runtime state on this host (for re-adoption and cleanup). The
 * callback's return value stops the walk when non-zero. */
int rt_sandbox_list(const struct rt_config *cfg, int (*cb)(const char *id, void *data), void *data,
                    struct hutch_error *err);

/* Kills every process of the sandbox and removes its cgroups, mounts, loop device, disk image,
 * network namespace and state. Idempotent: a sandbox that is partly or wholly gone is fine.
 * If PID 1 is an unreaped child of the caller it is reaped here (its status is lost). */
int rt_sandbox_destroy(const struct rt_config *cfg, const char *id, struct hutch_error *err);

/* After PID 1 exited (pidfd readable, or adopt said -ESRCH): why it ended. */
enum rt_exit_reason rt_sandbox_exit_reason(const struct rt_config *cfg, const char *id);

/* Freezes (true) or thaws (false) every process of the sandbox via the freezer cgroup. */
int rt_sandbox_freeze(const struct rt_config *cfg, const char *id, bool frozen,
                      struct hutch_error *err);

/* Memory in use by the sandbox's cgroup, in bytes. */
int rt_sandbox_memory_usage(const struct rt_config *cfg, const char *id, uint64_t *ret,
                            struct hutch_error *err);

/* Reaps PID 1 if it has exited (non-blocking): 1 and *ret_status (a wait status) when reaped,
 * 0 when it still runs, -ECHILD when it is not our child or was reaped already. */
int rt_sandbox_reap(struct rt_sandbox *sb, int *ret_status);

/* Closes the handle (pidfd) and frees it; the sandbox keeps running. Accepts NULL. */
void rt_sandbox_free(struct rt_sandbox *sb);

/* Tops the warm pool of pre-formatted, pre-mounted disks of cfg->disk_pool_mb up to
 * cfg->disk_pool_size. Slow (tens of ms per disk): call it from a background thread, never
 * concurrently with itself. Returns the number of disks added or -errno. */
int rt_disk_pool_refill(const struct rt_config *cfg, struct hutch_error *err);

/* Unmounts and deletes every pooled disk (at shutdown, or in tests). */
int rt_disk_pool_drain(const struct rt_config *cfg, struct hutch_error *err);

#endif
