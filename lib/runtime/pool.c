/* The warm pool: pre-formatted disks already attached and mounted under disks/pool/, so that
 * creating a sandbox with the default disk size costs a rename and a mount move. Entries are
 * tmp-<rnd> while being built, ready-<mb>-<rnd> when usable, claimed-<id> while being taken. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/internal.h"

static char *pool_dir(const struct rt_config *cfg)
{
	return rt_path_disks(cfg, "pool");
}

/* Unmounts and deletes one pool entry (any state). */
static int entry_remove(const char *entry)
{
	_cleanup_free_ char *mnt = xasprintf("%s/mnt", entry);
	_cleanup_free_ char *img = xasprintf("%s/disk.img", entry);
	char real[PATH_MAX];
	int r = rt_umount_all(mnt);

	if (r < 0)
		return r;
	if (realpath(img, real))
		rt_loop_detach_backing(real);
	return rm_rf(entry);
}

static int entry_build(const struct rt_config *cfg, const char *pool, uint64_t mb,
                       struct hutch_error *err)
{
	char rnd[HUTCH_ID_LEN + 1];
	id_generate(rnd);
	_cleanup_free_ char *tmp = xasprintf("%s/tmp-%s", pool, rnd);
	_cleanup_free_ char *img = xasprintf("%s/disk.img", tmp);
	_cleanup_free_ char *mnt = xasprintf("%s/mnt", tmp);
	_cleanup_free_ char *ready =
	        xasprintf("%s/ready-%llu-%s", pool, (unsigned long long)mb, rnd);
	char real[PATH_MAX];
	int r;

	if (mkdir(tmp, 0700) < 0 || mkdir(mnt, 0700) < 0) {
		r = hutch_error_errno(err, "creating %s", tmp);
		goto fail;
	}
	if ((r = rt_disk_image_make(cfg, img, mb, err)) < 0)
		goto fail;
	if (!realpath(img, real)) {
		r = hutch_error_errno(err, "resolving %s", img);
		goto fail;
	}
	if ((r = rt_disk_attach_mount(cfg, real, mnt, err)) < 0)
		goto fail;
	if (rename(tmp, ready) < 0) {
		r = hutch_error_errno(err, "publishing %s", ready);
		goto fail;
	}
	return 0;
fail:
	entry_remove(tmp);
	return r;
}

static int count_ready(const char *pool, uint64_t mb)
{
	_cleanup_closedir_ DIR *d = opendir(pool);
	char prefix[64];
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	snprintf(prefix, sizeof(prefix), "ready-%llu-", (unsigned long long)mb);
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

int rt_disk_pool_refill(const struct rt_config *cfg, struct hutch_error *err)
{
	_cleanup_free_ char *pool = pool_dir(cfg);
	uint64_t mb = rt_cfg_pool_mb(cfg);
	unsigned want = rt_cfg_pool_size(cfg);
	int added = 0;

	if (mkdir_p(pool, 0700) < 0)
		return hutch_error_errno(err, "creating %s", pool);
	for (int have = count_ready(pool, mb); have < (int)want; have++) {
		int r = entry_build(cfg, pool, mb, err);
		if (r < 0)
			return r;
		added++;
	}
	return added;
}

/* Removes entries; with only_stale, just tmp-* and claimed-* left by a crash. */
static int pool_sweep(const struct rt_config *cfg, bool only_stale)
{
	_cleanup_free_ char *pool = pool_dir(cfg);
	_cleanup_closedir_ DIR *d = opendir(pool);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (only_stale && strncmp(de->d_name, "ready-", 6) == 0)
			continue;
		_cleanup_free_ char *entry = xasprintf("%s/%s", pool, de->d_name);
		int r = entry_remove(entry);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

int rt_disk_pool_drain(const struct rt_config *cfg, struct hutch_error *err)
{
	int r = pool_sweep(cfg, false);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "draining the disk pool");
	}
	return 0;
}

int rt_disk_pool_clean_stale(const struct rt_config *cfg)
{
	return pool_sweep(cfg, true);
}

/* Moves a claimed entry's image and mount into the sandbox directory. */
static int claim_move(const struct rt_config *cfg, const char *claimed, const char *id)
{
	_cleanup_free_ char *img = xasprintf("%s/disk.img", claimed);
	_cleanup_free_ char *mnt = xasprintf("%s/mnt", claimed);
	_cleanup_free_ char *dimg = rt_path_sandbox(cfg, id, "disk.img");
	_cleanup_free_ char *ddir = rt_path_sandbox(cfg, id, "disk");

	if (mkdir(ddir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (rename(img, dimg) < 0)
		return -errno;
	if (mount(mnt, ddir, NULL, MS_MOVE, NULL) < 0) {
		int e = -errno;
		rename(dimg, img);
		return e;
	}
	rmdir(mnt);
	rmdir(claimed);
	return 0;
}

int rt_disk_pool_take(const struct rt_config *cfg, const char *id, uint64_t mb)
{
	_cleanup_free_ char *pool = pool_dir(cfg);
	_cleanup_closedir_ DIR *d = opendir(pool);
	char prefix[64];
	struct dirent *de;

	if (!d)
		return -ENOENT;
	snprintf(prefix, sizeof(prefix), "ready-%llu-", (unsigned long long)mb);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		_cleanup_free_ char *entry = xasprintf("%s/%s", pool, de->d_name);
		_cleanup_free_ char *claimed = xasprintf("%s/claimed-%s", pool, id);
		if (rename(entry, claimed) < 0)
			continue; /* another thread took it */
		if (claim_move(cfg, claimed, id) == 0)
			return 0;
		entry_remove(claimed);
		return -EIO;
	}
	return -ENOENT;
}
