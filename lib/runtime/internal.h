/* Private declarations shared by the runtime's files: configuration defaults, host paths,
 * the cgroup backend table, the disk, the child's setup plan and the state file. */
#ifndef HUTCH_RUNTIME_INTERNAL_H
#define HUTCH_RUNTIME_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/filter.h>
#include <sys/types.h>

#include "base/error.h"
#include "runtime/runtime.h"

/* ---- configuration defaults (paths.c) ---- */

#define RT_DEFAULT_ID_BASE          100000u
#define RT_DEFAULT_ID_COUNT         65536u
#define RT_DEFAULT_CGROUP           "hutch"
#define RT_DEFAULT_PIDS_MAX         4096u
#define RT_DEFAULT_READY_TIMEOUT_MS 10000u
#define RT_DEFAULT_POOL_SIZE        4u
#define RT_DEFAULT_POOL_MB          10240u
#define RT_DEFAULT_PATH             "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Limits on user-controlled spec fields. */
#define RT_DISK_MB_MIN    16u
#define RT_DISK_MB_MAX    (4u << 20) /* 4 TiB */
#define RT_MEMORY_MB_MIN  8u
#define RT_MEMORY_MB_MAX  (1u << 20) /* 1 TiB */
#define RT_CPUS_MAX       1024.0
#define RT_PIDS_MAX       4194304u
#define RT_ARGV_MAX       1024u /* entries in entrypoint or env */
#define RT_ARGV_BYTES_MAX (256u << 10)
/* state_dir and run_dir lengths, so every derived path fits struct rt_sandbox's fields. */
#define RT_PATH_PREFIX_MAX 160u

uid_t rt_cfg_id_base(const struct rt_config *cfg);
uint32_t rt_cfg_id_count(const struct rt_config *cfg);
const char *rt_cfg_cgroup(const struct rt_config *cfg);
uint64_t rt_cfg_pids_max(const struct rt_config *cfg);
unsigned rt_cfg_ready_timeout_ms(const struct rt_config *cfg);
unsigned rt_cfg_pool_size(const struct rt_config *cfg);
uint64_t rt_cfg_pool_mb(const struct rt_config *cfg);

/* True when cfg->fault_step names step (fault injection for tests). */
bool rt_fault(const struct rt_config *cfg, const char *step);
/* Returns -EIO with a message when cfg->fault_step names step, else 0. */
int rt_fault_check(const struct rt_config *cfg, const char *step, struct hutch_error *err);

/* Host paths of a sandbox; the results are malloc'd and owned by the caller. */
char *rt_path_sandboxes(const struct rt_config *cfg);
char *rt_path_sandbox(const struct rt_config *cfg, const char *id, const char *leaf);
char *rt_path_run(const struct rt_config *cfg, const char *id, const char *leaf);
char *rt_path_disks(const struct rt_config *cfg, const char *leaf);

/* True for a valid sandbox id (the runtime accepts 1-64 of [a-z0-9-], so tests can use
 * readable ids; production ids are 21 characters). */
bool rt_id_valid(const char *id);

/* ---- small helpers (util.c) ---- */

/* Reads a small file (cgroupfs/procfs) into out, NUL-terminated, trailing newline dropped. */
int rt_read_small(const char *path, char *out, size_t size);
/* Same relative to a directory fd, never following a final symlink. */
int rt_read_small_at(int dirfd, const char *name, char *out, size_t size);
/* Writes s to the file dir/name (cgroupfs style). */
int rt_write_at(const char *dir, const char *name, const char *s);
/* True when path is a mount point (statx STATX_ATTR_MOUNT_ROOT). */
bool rt_is_mountpoint(const char *path);
/* Unmounts path (lazily if busy) until it is no longer a mount point. Missing path: 0. */
int rt_umount_all(const char *path);
/* openat2 relative to rootfd with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (and O_CLOEXEC):
 * symlinks and ".." can never leave rootfd. Returns the fd or -errno. Only a system call, so
 * the sandbox child may use it. */
int rt_open_in_root(int rootfd, const char *path, int flags);
/* Opens path's parent directory that way (O_PATH); *ret_leaf points at the last component. */
int rt_open_parent_in_root(int rootfd, const char *path, const char **ret_leaf);
/* Start time of pid (field 22 of /proc/PID/stat) or 0 when there is no such process. */
uint64_t rt_pid_start_time(pid_t pid);
/* True when pid is the process that started at start and has not exited (a zombie has). */
bool rt_pid_running(pid_t pid, uint64_t start);
/* Runs argv (absolute path in argv[0]) with stdin from /dev/null and stdout/stderr to out_fd
 * (-1: /dev/null) and waits. Returns 0, -errno or -EIO when it exits non-zero (message in
 * err). */
int rt_run(char *const argv[], int out_fd, struct hutch_error *err);
/* Replaces path atomically (temporary file + rename) without fsync: for state that cannot
 * outlive a reboot anyway (the sandbox's processes do not), so durability buys nothing and an
 * fsync costs a millisecond on the create path. */
int rt_write_replace(const char *path, const void *data, size_t len, mode_t mode);
/* sha256 of data as "sha256:<64 hex>" into out[72]. */
void rt_sha256(const void *data, size_t len, char out[72]);

/* ---- cgroups (cgroup.c, cgroup-v1.c, cgroup-v2.c) ---- */

struct rt_limits {
	double cpus;
	uint64_t memory_bytes;
	uint64_t pids_max;
};

/* The limits a sandbox's cgroups were made with, kept in sandboxes/<id>/limits so that a
 * checkpoint can carry them (its cgroups do not survive a reboot). -errno when unreadable. */
int rt_limits_save(const struct rt_config *cfg, const char *id, const struct rt_limits *lim);
int rt_limits_load(const struct rt_config *cfg, const char *id, struct rt_limits *ret);

struct rt_cgroup_ops {
	const char *name; /* "v1" or "v2" */
	int (*setup)(const struct rt_config *cfg, struct hutch_error *err);
	/* Removes the top cgroup setup made (it must be empty of sandboxes by then). */
	int (*teardown)(const struct rt_config *cfg, struct hutch_error *err);
	int (*create)(const struct rt_config *cfg, const char *id, const struct rt_limits *lim,
	              struct hutch_error *err);
	/* v2: an fd for CLONE_INTO_CGROUP; v1: -1 (the pid is attached with attach). */
	int (*open_for_clone)(const struct rt_config *cfg, const char *id);
	int (*attach)(const struct rt_config *cfg, const char *id, pid_t pid,
	              struct hutch_error *err);
	/* Files the child writes "0" to, to move itself (NULL-terminated, malloc'd; free with
	 * rt_strv_free), or NULL. On v1 a thread moving itself through "tasks" skips the global
	 * threadgroup lock (and its RCU grace period) that a write of another pid to
	 * cgroup.procs takes: ~0.1 ms instead of ~3 ms per controller. */
	char **(*self_attach_files)(const struct rt_config *cfg, const char *id);
	int (*freeze)(const struct rt_config *cfg, const char *id, bool frozen,
	              struct hutch_error *err);
	int (*kill_all)(const struct rt_config *cfg, const char *id, struct hutch_error *err);
	int (*remove)(const struct rt_config *cfg, const char *id, struct hutch_error *err);
	bool (*exists)(const struct rt_config *cfg, const char *id);
	int (*memory_usage)(const struct rt_config *cfg, const char *id, uint64_t *ret);
	int (*oom_kills)(const struct rt_config *cfg, const char *id, uint64_t *ret);
	/* Host path of the file bind-mounted at /run/hutch/oom (malloc'd). */
	char *(*oom_file)(const struct rt_config *cfg, const char *id);
	/* Calls cb for each sandbox cgroup directory name. */
	int (*list)(const struct rt_config *cfg, int (*cb)(const char *id, void *data), void *data);
};

extern const struct rt_cgroup_ops rt_cgroup_v1_ops;
extern const struct rt_cgroup_ops rt_cgroup_v2_ops;

/* The backend for this host (detected once). NULL with err filled when neither works. */
const struct rt_cgroup_ops *rt_cgroup(struct hutch_error *err);

/* ---- disks (disk.c, pool.c) ---- */

/* Makes sandboxes/<id>/disk.img of disk_mb (from the warm pool when the size matches),
 * attaches it to a loop device and mounts it on sandboxes/<id>/disk with upper/ and work/. */
int rt_disk_create(const struct rt_config *cfg, const char *id, uint64_t disk_mb,
                   struct hutch_error *err);
/* Unmounts sandboxes/<id>/disk and detaches any loop device still backed by its image. */
int rt_disk_destroy(const struct rt_config *cfg, const char *id, struct hutch_error *err);
/* Formats path (an existing sparse file) as ext4. */
int rt_disk_mkfs(const char *path, struct hutch_error *err);
/* Creates a sparse image of mb at path: a sparse copy of the cached template for that size. */
int rt_disk_image_make(const struct rt_config *cfg, const char *path, uint64_t mb,
                       struct hutch_error *err);
/* Attaches image to a free loop device (autoclear) and mounts it at dir; makes upper/work. */
int rt_disk_attach_mount(const struct rt_config *cfg, const char *image, const char *dir,
                         struct hutch_error *err);
/* Detaches every loop device whose backing file is path (or path + " (deleted)"). */
int rt_loop_detach_backing(const char *path);
/* True when a loop device is backed by a file whose path contains needle. */
bool rt_loop_backed_by(const char *needle);
/* Takes a pre-mounted disk of mb from the pool into sandboxes/<id>/: 0, or -ENOENT when the
 * pool has none of that size. */
int rt_disk_pool_take(const struct rt_config *cfg, const char *id, uint64_t mb);
/* Removes pool entries a crash left half-built or half-taken (rt_init, before any create). */
int rt_disk_pool_clean_stale(const struct rt_config *cfg);

/* ---- seccomp and capabilities (seccomp.c, caps.c) ---- */

/* The default filter as a BPF program built once per process; never freed. */
int rt_seccomp_program(const struct sock_fprog **ret, struct hutch_error *err);

/* Capabilities in Docker's default set, as a 64-bit mask. */
uint64_t rt_caps_default_mask(void);
/* Highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap). */
int rt_caps_last(void);
/* Child side: drops the bounding set to mask, clears ambient, sets the effective, permitted and
 * inheritable sets to mask. Only raw syscalls: safe after clone in a threaded parent. */
int rt_caps_apply(uint64_t mask, int last_cap);

/* ---- state file (state.c) ---- */

struct rt_state {
	char id[72];
	pid_t init_pid;
	uint64_t init_start;
	char cgroup[8];
	char image[72];
	int64_t created_at_ms;
};

int rt_state_write(const struct rt_config *cfg, const struct rt_state *st, struct hutch_error *err);
int rt_state_read(const struct rt_config *cfg, const char *id, struct rt_state *ret,
                  struct hutch_error *err);

/* ---- snapshots and checkpoints (snapshot.c, criu*.c; public API in checkpoint.h) ---- */

struct rt_fs_snapshot_info;

/* Digest of the image sandbox id uses (sandboxes/<id>/image) into out[72]. */
int rt_sandbox_image_digest(const struct rt_config *cfg, const char *id, char out[72],
                            struct hutch_error *err);
/* Archives upper into dir/layer.tar.zst and writes dir/meta.json (dir exists, empty). */
int rt_fs_snapshot_write(const char *upper, const char *dir, const char *image, const char *source,
                         struct rt_fs_snapshot_info *ret, struct hutch_error *err);
/* Extracts dir's archive (verified by the caller) into upper. */
int rt_fs_snapshot_extract(const char *dir, const char *upper, struct hutch_error *err);
/* Create hook after the disk step: fills sandboxes/<id>/disk/upper from spec->snapshot_dir or
 * spec->memory_snapshot_dir/fs (digest verified, image_digest must match); 0 if neither. */
int rt_snapshot_layer_apply(const struct rt_config *cfg, const struct rt_spec *spec,
                            const char *image_digest, struct hutch_error *err);
/* Create hook replacing clone..agent-ready for spec->memory_snapshot_dir: restores the
 * checkpoint's process tree into the prepared sandbox and writes its state; PID 1's pid and
 * a pidfd for it on success. */
int rt_criu_create_restore(const struct rt_config *cfg, const struct rt_spec *spec,
                           const char *image_digest, int log_fd, pid_t *ret_pid, int *ret_pidfd,
                           struct hutch_error *err);

#endif
