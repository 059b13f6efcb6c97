/* Where each snapshot's data lives on this host. A reference file
 * <state>/snapshot-refs/<snapshot id> holds the data directory: a memory checkpoint
 * (<state>/checkpoints/snap-<id>, owned by that snapshot alone) or a content-addressed
 * filesystem layer (<state>/snapshots/<sha256>, shared by every snapshot with that digest). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "executor.h"

char *ex_snap_memory_dir(struct ex *ex, const char *snap_id)
{
	return xasprintf("%s/checkpoints/snap-%s", ex->state_dir, snap_id);
}

char *ex_suspend_dir(struct ex *ex, const char *sandbox_id)
{
	return xasprintf("%s/checkpoints/%s", ex->state_dir, sandbox_id);
}

static bool safe_id(const char *id)
{
	return id_is_valid(id, strlen(id));
}

int ex_snapref_set(struct ex *ex, const char *snap_id, const char *dir)
{
	if (!safe_id(snap_id))
		return -EINVAL;
	_cleanup_free_ char *refs = xasprintf("%s/snapshot-refs", ex->state_dir);
	_cleanup_free_ char *path = xasprintf("%s/%s", refs, snap_id);
	int r = mkdir_p(refs, 0700);
	return r < 0 ? r : write_file_atomic(path, dir, strlen(dir), 0600);
}

char *ex_snapref_get(struct ex *ex, const char *snap_id)
{
	if (!safe_id(snap_id))
		return NULL;
	_cleanup_free_ char *path = xasprintf("%s/snapshot-refs/%s", ex->state_dir, snap_id);
	struct buf b = BUF_INIT;
	if (read_file(path, 4096, &b) < 0) {
		buf_release(&b);
		return NULL;
	}
	char *dir = sv_dup(sv_trim(sv_make(b.data, b.len)));
	buf_release(&b);
	return dir;
}

/* True when any other reference names dir. */
static bool dir_referenced(struct ex *ex, const char *dir, const char *except)
{
	_cleanup_free_ char *refs = xasprintf("%s/snapshot-refs", ex->state_dir);
	_cleanup_closedir_ DIR *d = opendir(refs);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, except) == 0)
			continue;
		_cleanup_free_ char *other = ex_snapref_get(ex, e->d_name);
		if (other && strcmp(other, dir) == 0)
			return true;
	}
	return false;
}

bool ex_snapref_delete(struct ex *ex, const char *snap_id)
{
	if (!safe_id(snap_id))
		return true;
	_cleanup_free_ char *dir = ex_snapref_get(ex, snap_id);
	for (struct ex_sandbox *sb = ex->sandboxes; dir && sb; sb = sb->next)
		if (sb->busy_dir && strcmp(sb->busy_dir, dir) == 0)
			return false; /* a restore is reading it */
	_cleanup_free_ char *path = xasprintf("%s/snapshot-refs/%s", ex->state_dir, snap_id);
	/* only directories this executor made under its state dir are ever removed */
	bool ours = dir && strncmp(dir, ex->state_dir, strlen(ex->state_dir)) == 0 &&
	            !strstr(dir, "/../");
	if (ours && !dir_referenced(ex, dir, snap_id)) {
		int r = rm_rf(dir);
		if (r < 0)
			log_warn("snapshot %s: removing %s: %s", snap_id, dir, strerror(-r));
	}
	unlink(path);
	log_info("snapshot %s deleted", snap_id);
	return true;
}
