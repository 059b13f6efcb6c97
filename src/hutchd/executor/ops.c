/* Runtime operations of the executor, run on libuv's thread pool (one per sandbox at a time):
 * create (fresh, from a filesystem snapshot, from a memory snapshot), freeze, thaw, destroy,
 * snapshots, durable suspend (checkpoint) and resume from it (restore). The *_run functions run
 * on a pool thread and touch only their work item; work_after runs on the loop thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "executor.h"
#include "runtime/checkpoint.h"

static const char *const op_names[] = {"create",   "freeze",     "thaw",    "destroy",
                                       "snapshot", "checkpoint", "restore", "network"};
static const char *const state_names[] = {"none",   "adopted",      "running",
                                          "frozen", "checkpointed", "dead"};

const char *ex_outcome_for(enum rt_exit_reason reason)
{
	switch (reason) {
	case RT_EXIT_OOM:
		return "Failure(OutOfMemory)";
	case RT_EXIT_AGENT_DIED:
		return "Failure(ContainerTerminated(ProcessCrash))";
	case RT_EXIT_KILLED:
		return "Failure(ContainerTerminated(Unknown))";
	default:
		return "Failure(Unknown)";
	}
}

static char **json_argv(json_t *arr)
{
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return NULL;
	char **argv = xcalloc(json_array_size(arr) + 1, sizeof(char *));
	for (size_t i = 0; i < json_array_size(arr); i++)
		argv[i] = xstrdup(json_string_value(json_array_get(arr, i)) ?: "");
	return argv;
}

/* Bytes used by a directory tree (for snapshot sizes). */
static int64_t tree_bytes(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return 0;
	/* a walk would be exact; the checkpoint images dominate and sit in dir/criu */
	_cleanup_free_ char *pages = xasprintf("%s/criu", dir);
	int64_t total = 0;
	DIR *d = opendir(pages);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		_cleanup_free_ char *p = xasprintf("%s/%s", pages, e->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			total += st.st_size;
	}
	if (d)
		closedir(d);
	return total;
}

/* ---- the pool side ---- */

/* Asks the agent to close every client connection before its sandbox is frozen or
 * checkpointed (CRIU cannot dump sockets whose peer is outside the sandbox, and a frozen agent
 * would leave clients hanging) and waits, bounded, for its acknowledgement file. */
static void drop_clients(struct ex_work *wk, const struct rt_config *cfg)
{
	struct rt_sandbox *rt = wk->sb->rt;
	if (!rt || rt->init_pid <= 0)
		return;
	_cleanup_free_ char *marker = xasprintf("%s/%s/clients-dropped", cfg->run_dir, wk->sb->id);
	unlink(marker);
	if (kill(rt->init_pid, SIGUSR2) < 0)
		return;
	struct stat st;
	for (uint64_t end = time_mono_ms() + 2000; time_mono_ms() < end;) {
		if (lstat(marker, &st) == 0)
			return;
		usleep(1000);
	}
}

/* Writes the sandbox's resolv.conf in place (it is bind-mounted over /etc/resolv.conf, so the
 * inode must stay; the run directory is sandbox-writable, hence O_NOFOLLOW). */
static void write_resolv_conf(struct ex *ex, const char *id)
{
	struct buf b = BUF_INIT;
	if (net_resolv_conf(&ex->net, &b) < 0) {
		buf_release(&b);
		return;
	}
	_cleanup_free_ char *path = xasprintf("%s/%s/resolv.conf", ex->rt.run_dir, id);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0)
		write_all(fd, b.data, b.len);
	buf_release(&b);
}

/* Connects a sandbox whose namespace was just made (create or restore). */
static int net_attach(struct ex_work *wk, const char *netns_path)
{
	struct ex *ex = wk->sb->ex;
	if (!ex->net_ok)
		return 0;
	int rc = net_sandbox_attach(&ex->net, wk->sb->id, netns_path, wk->policy, wk->ip, &wk->err);
	if (rc == 0)
		write_resolv_conf(ex, wk->sb->id);
	return rc;
}

/* Disconnects a sandbox. Before a checkpoint the veth must be gone from its namespace too
 * (CRIU cannot dump one), so the retired link is deleted now rather than by the forwarder's
 * periodic reap. */
static int net_detach(struct ex_work *wk, bool for_checkpoint)
{
	struct ex *ex = wk->sb->ex;
	if (!ex->net_ok)
		return 0;
	int rc = net_sandbox_detach(&ex->net, wk->sb->id, &wk->err);
	if (rc == 0 && for_checkpoint)
		rc = net_reap(&ex->net, &wk->err);
	return rc;
}

static int net_attach_hook(const char *netns_path, void *arg, struct hutch_error *err)
{
	struct ex_work *wk = arg;
	uint64_t t0 = time_mono_ns();
	int rc = net_attach(wk, netns_path);
	wk->net_ns = time_mono_ns() - t0;
	if (rc < 0) {
		if (err != &wk->err)
			*err = wk->err;
		hutch_error_wrap(err, "connecting the sandbox's network");
	}
	return rc;
}

static void run_create(struct ex_work *wk, const struct rt_config *cfg)
{
	struct rt_fs_snapshot_info info;
	if (wk->dir && strcmp(wk->snap_type, "filesystem") == 0) {
		/* the layer belongs on the image it was taken from: use its digest */
		if ((wk->rc = rt_fs_snapshot_verify(wk->dir, &info, &wk->err)) < 0)
			return;
		free(wk->image);
		wk->image = xstrdup(info.image);
		wk->spec.image = wk->image;
		wk->spec.snapshot_dir = wk->dir;
	} else if (wk->dir) {
		wk->spec.memory_snapshot_dir = wk->dir;
	}
	if (!wk->spec.memory_snapshot_dir) {
		/* connected before its first process runs: the entrypoint starts with a network */
		wk->spec.on_netns = net_attach_hook;
		wk->spec.on_netns_arg = wk;
	}
	wk->rc = rt_sandbox_create(cfg, &wk->spec, &wk->result, &wk->err);
	if (wk->rc < 0) {
		net_detach(wk, false); /* whatever the hook did before a later step failed */
		return;
	}
	if (wk->spec.memory_snapshot_dir) {
		uint64_t t0 = time_mono_ns();
		if ((wk->rc = net_attach(wk, wk->result->netns_path)) < 0) {
			hutch_error_wrap(&wk->err, "connecting the sandbox's network");
			net_detach(wk, false);
			rt_sandbox_destroy(cfg, wk->sb->id, NULL);
			rt_sandbox_free(wk->result);
			wk->result = NULL;
		}
		wk->net_ns = time_mono_ns() - t0;
	}
}

static void run_snapshot(struct ex_work *wk, const struct rt_config *cfg)
{
	json_t *res = json_object();
	json_object_set_new(res, "id", json_string(wk->snap_id));
	if (strcmp(wk->snap_type, "filesystem") == 0) {
		struct rt_fs_snapshot_info info;
		wk->rc = rt_sandbox_fs_snapshot(cfg, wk->sb->id, NULL, &info, &wk->err);
		if (wk->rc == 0) {
			wk->dir = xstrdup(info.dir);
			json_object_set_new(res, "digest", json_string(info.digest));
			json_object_set_new(res, "size_bytes",
			                    json_integer((json_int_t)info.size_bytes));
		}
	} else {
		drop_clients(wk, cfg);
		wk->rc = net_detach(wk, true);
		if (wk->rc == 0)
			wk->rc = rt_sandbox_checkpoint(cfg, wk->sb->id, wk->dir, true, &wk->err);
		/* the sandbox keeps running: connect it again whatever happened (its own error,
		 * if any, must not hide the snapshot's) */
		struct hutch_error snap_err = wk->err;
		if (wk->sb->rt && net_attach(wk, wk->sb->rt->netns_path) < 0)
			wk->net_status = -1;
		wk->err = snap_err;
		if (wk->rc == 0)
			json_object_set_new(res, "size_bytes", json_integer(tree_bytes(wk->dir)));
		else
			rm_rf(wk->dir);
	}
	json_object_set_new(res, "status", json_string(wk->rc == 0 ? "completed" : "failed"));
	if (wk->rc < 0)
		json_object_set_new(res, "error", json_string(wk->err.msg));
	wk->snap_result = res;
}

/* Attaches a sandbox that has no network yet (re-adopted, or restored), or swaps its policy. */
static void run_network(struct ex_work *wk)
{
	struct ex *ex = wk->sb->ex;
	if (!wk->sb->net_applied) {
		wk->rc = wk->sb->rt ? net_attach(wk, wk->sb->rt->netns_path) : -ENOENT;
	} else {
		wk->rc = net_sandbox_policy_set(&ex->net, wk->sb->id, wk->policy, &wk->err);
		struct net_sandbox_info info;
		if (net_sandbox_info(&ex->net, wk->sb->id, &info, NULL) == 0)
			snprintf(wk->ip, sizeof(wk->ip), "%s", info.ip);
	}
	wk->net_status = wk->rc < 0 ? hutch_error_http_status(&wk->err) : 0;
}

static void work_run(uv_work_t *w)
{
	struct ex_work *wk = w->data;
	const struct rt_config *cfg = &wk->sb->ex->rt;
	wk->started_ns = time_mono_ns();
	switch (wk->op) {
	case OP_CREATE:
		run_create(wk, cfg);
		break;
	case OP_FREEZE:
		drop_clients(wk, cfg);
		wk->rc = rt_sandbox_freeze(cfg, wk->sb->id, true, &wk->err);
		break;
	case OP_THAW:
		wk->rc = rt_sandbox_freeze(cfg, wk->sb->id, false, &wk->err);
		break;
	case OP_DESTROY:
		wk->reason = rt_sandbox_exit_reason(cfg, wk->sb->id);
		wk->net_ns = time_mono_ns();
		net_detach(wk, false);
		wk->net_ns = time_mono_ns() - wk->net_ns;
		wk->rc = rt_sandbox_destroy(cfg, wk->sb->id, &wk->err);
		if (wk->dir)
			rm_rf(wk->dir); /* a durable suspend's checkpoint */
		break;
	case OP_SNAPSHOT:
		run_snapshot(wk, cfg);
		break;
	case OP_CHECKPOINT:
		wk->rc = net_detach(wk, true);
		if (wk->rc == 0)
			wk->rc = rt_sandbox_checkpoint(cfg, wk->sb->id, wk->dir, false, &wk->err);
		break;
	case OP_RESTORE:
		wk->rc = rt_sandbox_restore(cfg, wk->sb->id, wk->dir, &wk->result, &wk->err);
		if (wk->rc == 0)
			rm_rf(wk->dir);
		if (wk->rc == 0 && net_attach(wk, wk->result->netns_path) < 0)
			hutch_error_wrap(&wk->err,
			                 "reconnecting the network (the sandbox runs without)");
		break;
	case OP_NETWORK:
		run_network(wk);
		break;
	}
	wk->done_ns = time_mono_ns();
}

static void work_free(struct ex_work *wk)
{
	if (wk->argv)
		for (char **a = wk->argv; *a; a++)
			free(*a);
	free(wk->argv);
	free(wk->image);
	free(wk->hostname);
	free(wk->dir);
	free(wk->policy);
	json_decref(wk->snap_result);
	free(wk);
}

/* ---- the loop side ---- */

static void done_create(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	if (wk->rc < 0) {
		log_warn("sandbox %s: create failed: %s", sb->id, wk->err.msg);
		sb->state = S_NONE;
		ex_report(sb, "terminated", "Failure(ContainerStartupFailed)", wk->err.msg, false);
		return;
	}
	sb->rt = wk->result;
	sb->state = S_RUNNING;
	if (sb->ex->net_ok) {
		free(sb->net_applied);
		sb->net_applied = xstrdup(wk->policy);
		snprintf(sb->ip, sizeof(sb->ip), "%s", wk->ip);
	}
	ex_watch(sb);
	log_info("sandbox %s running (agent %s): queued %.2f ms, runtime and agent %.2f ms "
	         "(network %.2f ms)%s",
	         sb->id, sb->rt->agent_socket, (double)(wk->started_ns - wk->queued_ns) / 1e6,
	         (double)(wk->done_ns - wk->started_ns) / 1e6, (double)wk->net_ns / 1e6,
	         wk->dir ? " (from a snapshot)" : "");
	ex_report(sb, "running", NULL, NULL, false);
	ex_refill_pool(sb->ex);
}

static void done_snapshot(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	if (strcmp(wk->snap_type, "memory") == 0 && sb->ex->net_ok) {
		/* the network was reconnected afterwards, maybe with another address */
		snprintf(sb->ip, sizeof(sb->ip), "%s", wk->ip);
		if (wk->net_status < 0) {
			log_warn("sandbox %s: could not reconnect its network after the snapshot",
			         sb->id);
			free(sb->net_applied);
			sb->net_applied = NULL;
		}
	}
	snprintf(sb->snap_done, sizeof(sb->snap_done), "%s", wk->snap_id);
	if (wk->rc == 0 && wk->dir && ex_snapref_set(sb->ex, wk->snap_id, wk->dir) < 0)
		log_warn("snapshot %s: cannot record where its data is", wk->snap_id);
	if (wk->rc < 0)
		log_warn("sandbox %s: %s snapshot %s failed: %s", sb->id, wk->snap_type,
		         wk->snap_id, wk->err.msg);
	else
		log_info("sandbox %s: %s snapshot %s taken in %.1f ms", sb->id, wk->snap_type,
		         wk->snap_id, (double)(wk->done_ns - wk->started_ns) / 1e6);
	ex_report_snapshot(sb, json_incref(wk->snap_result));
}

static void done_network(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	if (wk->rc == 0 || sb->net_applied) {
		/* a rejected policy leaves the old one in force; a failed attach leaves none */
		if (wk->rc == 0) {
			free(sb->net_applied);
			sb->net_applied = xstrdup(wk->policy);
		}
		if (wk->ip[0])
			snprintf(sb->ip, sizeof(sb->ip), "%s", wk->ip);
	}
	if (wk->rc < 0)
		log_warn("sandbox %s: network: %s", sb->id, wk->err.msg);
	if (wk->policy_pending) {
		json_t *res = json_object();
		json_object_set_new(res, "ok", json_boolean(wk->rc == 0));
		if (wk->rc < 0)
			json_object_set_new(res, "error", json_string(wk->err.msg));
		ex_report_network(sb, res);
	} else if (wk->rc == 0 && sb->state == S_RUNNING) {
		ex_report(sb, "running", NULL, NULL, false); /* carries the address */
	}
}

static void done_lifecycle(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	const char *name = op_names[wk->op];
	if (sb->state == S_DEAD) {
		/* PID 1 exited meanwhile (reported): the sandbox only waits to be cleaned up */
		log_debug("sandbox %s: %s finished after PID 1 exited", sb->id, name);
		return;
	}
	if (wk->rc < 0) {
		log_warn("sandbox %s: %s failed: %s", sb->id, name, wk->err.msg);
		if (wk->op == OP_CHECKPOINT)
			ex_watch(sb); /* still frozen in memory: keep watching it */
		return;
	}
	switch (wk->op) {
	case OP_FREEZE:
		sb->state = S_FROZEN;
		sb->frozen_at_ms = time_mono_ms();
		ex_report(sb, "suspended", NULL, NULL, false);
		break;
	case OP_THAW:
		sb->state = S_RUNNING;
		ex_report(sb, "running", NULL, NULL, false);
		break;
	case OP_CHECKPOINT:
		sb->state = S_CHECKPOINTED;
		free(sb->net_applied);
		sb->net_applied = NULL;
		sb->ip[0] = '\0';
		log_info("sandbox %s suspended to disk in %.1f ms", sb->id,
		         (double)(wk->done_ns - wk->started_ns) / 1e6);
		break;
	case OP_RESTORE:
		rt_sandbox_free(sb->rt);
		sb->rt = wk->result;
		sb->state = S_RUNNING;
		free(sb->net_applied);
		sb->net_applied = wk->ip[0] ? xstrdup(wk->policy) : NULL;
		snprintf(sb->ip, sizeof(sb->ip), "%s", wk->ip);
		ex_watch(sb);
		log_info("sandbox %s restored from disk in %.1f ms", sb->id,
		         (double)(wk->done_ns - wk->started_ns) / 1e6);
		ex_report(sb, "running", NULL, NULL, false);
		break;
	default:
		break;
	}
}

/* A failed operation is not tried again at once: 1 s, 2 s, ... up to 30 s. Failures that are
 * answers (a create reported terminated, a snapshot reported failed, a rejected policy) and
 * destroys (state is gone either way) do not count. */
static void note_outcome(struct ex_work *wk)
{
	struct ex_sandbox *sb = wk->sb;
	bool counts = wk->op != OP_CREATE && wk->op != OP_DESTROY && wk->op != OP_SNAPSHOT &&
	              !(wk->op == OP_NETWORK && wk->net_status == 400);
	if (wk->rc == 0 || !counts) {
		sb->failures = 0;
		sb->retry_at_ms = 0;
		return;
	}
	sb->failures++;
	uint64_t delay = 1000ull << (sb->failures < 6 ? sb->failures - 1 : 5);
	sb->retry_at_ms = time_mono_ms() + (delay > 30000 ? 30000 : delay);
}

static void work_after(uv_work_t *w, int status)
{
	struct ex_work *wk = w->data;
	struct ex_sandbox *sb = wk->sb;
	sb->busy = false;
	sb->busy_dir = NULL;
	note_outcome(wk);
	switch (wk->op) {
	case OP_CREATE:
		done_create(wk);
		break;
	case OP_SNAPSHOT:
		done_snapshot(wk);
		break;
	case OP_DESTROY:
		if (wk->rc < 0)
			log_warn("sandbox %s: destroy failed: %s", sb->id, wk->err.msg);
		rt_sandbox_free(sb->rt);
		sb->rt = NULL;
		sb->state = S_NONE;
		ex_report(sb, NULL, NULL, NULL, true);
		sb->reported_destroyed = true;
		log_info("sandbox %s destroyed in %.2f ms (network %.2f ms)", sb->id,
		         (double)(wk->done_ns - wk->started_ns) / 1e6, (double)wk->net_ns / 1e6);
		break;
	case OP_NETWORK:
		done_network(wk);
		break;
	default:
		done_lifecycle(wk);
		break;
	}
	work_free(wk);
	if (!sb->wanted && sb->state == S_NONE && !sb->busy) {
		ex_sb_remove(sb);
		return;
	}
	ex_kick(sb);
}

/* Fills a create from the assignment: a fresh sandbox or a restore from a snapshot. */
static int prepare_create(struct ex_sandbox *sb, struct ex_work *wk)
{
	json_t *w = sb->want;
	const char *name = ex_want_str(sb, "name");
	const char *snap = ex_want_str(sb, "snapshot_id");
	wk->image = ex_want_str(sb, "image") ? xstrdup(ex_want_str(sb, "image")) : NULL;
	wk->hostname = xstrdup(name ? name : sb->id);
	wk->argv = json_argv(json_object_get(w, "entrypoint"));
	wk->spec = (struct rt_spec){
	        .id = sb->id,
	        .hostname = wk->hostname,
	        .image = wk->image,
	        .cpus = json_number_value(json_object_get(w, "cpus")),
	        .memory_mb = (uint64_t)json_integer_value(json_object_get(w, "memory_mb")),
	        .disk_mb = (uint64_t)json_integer_value(json_object_get(w, "disk_mb")),
	        .entrypoint = wk->argv,
	};
	if (!snap)
		return 0;
	snprintf(wk->snap_type, sizeof(wk->snap_type), "%s",
	         ex_want_str(sb, "snapshot_type") ?: "filesystem");
	wk->dir = ex_snapref_get(sb->ex, snap);
	return wk->dir ? 0 : -ENOENT;
}

/* Fills a snapshot op from the assignment's snapshot_op. */
static void prepare_snapshot(struct ex_sandbox *sb, struct ex_work *wk)
{
	json_t *op = json_object_get(sb->want, "snapshot_op");
	snprintf(wk->snap_id, sizeof(wk->snap_id), "%s",
	         json_string_value(json_object_get(op, "id")) ?: "");
	snprintf(wk->snap_type, sizeof(wk->snap_type), "%s",
	         json_string_value(json_object_get(op, "type")) ?: "filesystem");
	if (strcmp(wk->snap_type, "memory") == 0)
		wk->dir = ex_snap_memory_dir(sb->ex, wk->snap_id);
}

void ex_start_op(struct ex_sandbox *sb, enum sb_op op)
{
	log_debug("sandbox %s: %s (state %s)", sb->id, op_names[op], state_names[sb->state]);
	struct ex_work *wk = xcalloc(1, sizeof(*wk));
	wk->sb = sb;
	wk->op = op;
	wk->w.data = wk;
	wk->queued_ns = time_mono_ns();
	if (op == OP_CREATE && prepare_create(sb, wk) < 0) {
		const char *msg = "the snapshot's data is not on this host";
		log_warn("sandbox %s: %s", sb->id, msg);
		ex_report(sb, "terminated", "Failure(ContainerStartupFailed)", msg, false);
		work_free(wk);
		return;
	}
	if (op == OP_SNAPSHOT)
		prepare_snapshot(sb, wk);
	if (op == OP_CREATE || op == OP_RESTORE || op == OP_NETWORK || op == OP_SNAPSHOT)
		wk->policy = ex_wanted_policy(sb, &wk->policy_pending);
	if (op != OP_NETWORK)
		wk->policy_pending = false;
	if (op == OP_CHECKPOINT || op == OP_RESTORE || op == OP_DESTROY) {
		char *dir = ex_suspend_dir(sb->ex, sb->id);
		if (op != OP_DESTROY || access(dir, F_OK) == 0)
			wk->dir = dir;
		else
			free(dir);
	}
	if (op == OP_DESTROY || op == OP_CHECKPOINT)
		ex_unwatch(sb); /* PID 1 goes away on purpose */
	sb->busy = true;
	sb->busy_dir = wk->dir;
	uv_queue_work(sb->ex->loop, &wk->w, work_run, work_after);
}
