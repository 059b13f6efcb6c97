/* Suspend, resume, memory snapshots, copies and filesystem snapshots of sandboxes: CRIU
 * checkpoint/restore of a sandbox's whole process tree (criu*.c) and archives of its writable
 * layer (snapshot.c). See docs/design/checkpoint.md for the CRIU recipe and the layouts.
 *
 * A checkpoint directory (written by rt_sandbox_checkpoint, any path the caller chooses):
 *   checkpoint.json   what restore needs: source id, hostname, image digest, limits, the
 *                     external-file keys, kind ("suspend" or "snapshot"), sizes, time
 *   criu/             CRIU's image files and dump.log
 *   run/              copies of the sandbox's generated /run/hutch files (hosts, hostname, ...)
 *   fs/               only for leave_running=true: a filesystem snapshot (layer.tar.zst and
 *                     meta.json) of the writable layer taken while the tree was frozen
 *
 * A filesystem snapshot directory (rt_sandbox_fs_snapshot): <dest>/<sha256 hex>/ with
 * layer.tar.zst (the overlay upper dir: whiteouts as 0/0 character devices, trusted.overlay.*
 * xattrs, numeric owners, zstd) and meta.json ({digest, image, size_bytes, source, created}).
 * The directory name is the archive's sha256, so identical layers share one directory.
 *
 * All functions need root, never log, and follow runtime.h's threading rule (calls for the
 * same sandbox id must not overlap). */
#ifndef HUTCH_RUNTIME_CHECKPOINT_H
#define HUTCH_RUNTIME_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "runtime/runtime.h"

/* The error kind set when CRIU is missing or too old (for API answers). */
#define RT_CRIU_UNAVAILABLE_KIND "MEMORY_SNAPSHOT_UNAVAILABLE"

struct rt_criu_version {
	int major, minor, patch;
	char path[256]; /* the binary that was run */
	char text[32];  /* "4.2.1" */
};

/* Finds CRIU (cfg->criu_path, else /opt/hutch/criu/bin/criu, else "criu" on PATH), runs
 * `criu --version` and checks it: 4.1 or newer, and 4.2 or newer on kernels from 6.16 (older
 * ones cannot dump TCP sockets there). -ENOTSUP with err->kind RT_CRIU_UNAVAILABLE_KIND and a
 * message naming the fix (scripts/install-criu.sh) when it is missing or too old. Cheap
 * enough to call per operation (one fork+exec, ~5 ms); callers may cache the result. */
int rt_criu_detect(const struct rt_config *cfg, struct rt_criu_version *ret_version,
                   struct hutch_error *err);

/* Checkpoints the whole process tree of sandbox id (PID 1 = the agent, its children, memory,
 * open files, pipes, unix and TCP sockets, its network namespace's own state) into dir, which
 * must not exist or be empty. The tree is frozen (freezer cgroup) for the duration.
 *   leave_running=false: durable suspend. The processes are gone afterwards and their memory
 *     is freed; the disk, overlay, run directory and cgroups stay, so rt_sandbox_restore(id)
 *     brings the same sandbox back (also after an executor restart or a host reboot, when it
 *     rebuilds the mounts and cgroups first). rt_sandbox_checkpointed() tells such a sandbox
 *     from a dead one; rt_sandbox_destroy() removes it as usual (dir is the caller's).
 *   leave_running=true: memory snapshot. The sandbox keeps running (paused for the dump);
 *     dir also gets a filesystem snapshot of the writable layer taken while frozen, and can
 *     seed any number of new sandboxes (rt_spec.memory_snapshot_dir) on this host.
 * The sandbox's network must be detached first (net_sandbox_detach): its namespace may hold
 * only lo, or -EBUSY. An open connection to the agent's socket from outside makes CRIU fail
 * (-EIO, CRIU's error line in the message). Other errors: -ENOENT (no such sandbox or it is
 * not running), -ENOTSUP (CRIU unavailable, see rt_criu_detect). On failure a
 * leave_running=false sandbox is left running when CRIU did not get to kill it. */
int rt_sandbox_checkpoint(const struct rt_config *cfg, const char *id, const char *dir,
                          bool leave_running, struct hutch_error *err);

/* Restores sandbox id from the checkpoint in dir (made by rt_sandbox_checkpoint(id, dir,
 * false), or a snapshot of the same id) on this host as the same sandbox: same disk, rootfs,
 * cgroups and id; a new network namespace (CRIU recreates it; the old one is released) bound
 * at the same netns path, so the caller attaches the network again (net_sandbox_attach). On
 * success *ret is a handle like rt_sandbox_create's (pidfd, PID 1 a child of the caller, the
 * agent listening on ret->agent_socket again). -EEXIST if the sandbox is running, -ENOENT if
 * it has no state, -ENOTSUP without CRIU. On failure the sandbox stays suspended (its
 * checkpoint can be retried) and no process of it is left. */
int rt_sandbox_restore(const struct rt_config *cfg, const char *id, const char *dir,
                       struct rt_sandbox **ret, struct hutch_error *err);

/* True when sandbox id was suspended by rt_sandbox_checkpoint(leave_running=false) and not
 * restored since; *ret_dir (malloc'd, may be NULL) gets the checkpoint directory. An executor
 * that finds a sandbox whose PID 1 is gone (adopt says -ESRCH) checks this before destroying. */
bool rt_sandbox_checkpointed(const struct rt_config *cfg, const char *id, char **ret_dir);

struct rt_fs_snapshot_info {
	char digest[72];     /* "sha256:<hex>" of layer.tar.zst */
	char image[72];      /* digest of the image the layer belongs on */
	char dir[4096];      /* the snapshot directory: pass it as rt_spec.snapshot_dir */
	uint64_t size_bytes; /* of layer.tar.zst */
};

/* Archives sandbox id's writable layer (overlay upper dir, whiteouts and xattrs included) with
 * zstd into <dest_dir>/<hex digest>/ (dest_dir NULL = <state_dir>/snapshots), consistently:
 * the sandbox is frozen while the archive is written and thawed after. An existing directory
 * of the same digest is reused. New sandboxes boot cold from it with rt_spec.snapshot_dir (and
 * rt_spec.image = info.image); their create verifies the digest first and fails with
 * -EBADMSG on a corrupted archive. */
int rt_sandbox_fs_snapshot(const struct rt_config *cfg, const char *id, const char *dest_dir,
                           struct rt_fs_snapshot_info *ret_info, struct hutch_error *err);

/* Reads a filesystem snapshot's meta.json and verifies its archive's sha256 (the whole file).
 * -EBADMSG when the archive does not match, -ENOENT when dir is not a snapshot. */
int rt_fs_snapshot_verify(const char *dir, struct rt_fs_snapshot_info *ret_info,
                          struct hutch_error *err);

#endif
