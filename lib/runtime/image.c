/* The image store: names, content-addressed blobs, resolution with aliases, listing, removal
 * and atomic publishing (see image.h for the layout). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/image-store.h"
#include "runtime/internal.h"

static const char *const default_aliases[] = {"default", "ubuntu-minimal",
                                              "tensorlake/ubuntu-minimal", "debian-minimal", ""};

bool image_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[n - 1] == '/')
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '/' || c == '-'))
			return false;
	}
	return !strstr(name, "..") && !strstr(name, "//") && !strstr(name, "/.");
}

char *image_path(const struct rt_config *cfg, const char *leaf)
{
	return xasprintf("%s/images/%s", cfg->state_dir, leaf);
}

/* names/<name with '/' as '+'> ('+' is not a name character). */
static char *name_file(const struct rt_config *cfg, const char *name)
{
	char *enc = xstrdup(name);

	for (char *p = enc; *p; p++)
		if (*p == '/')
			*p = '+';
	char *path = xasprintf("%s/images/names/%s", cfg->state_dir, enc);
	free(enc);
	return path;
}

static bool digest_valid(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static char *blob_dir(const struct rt_config *cfg, const char *digest)
{
	return xasprintf("%s/images/blobs/%s", cfg->state_dir, digest + 7);
}

static const char *canonical_name(const char *name)
{
	if (!name)
		return "default";
	for (size_t i = 0; i < ARRAY_SIZE(default_aliases); i++)
		if (strcmp(name, default_aliases[i]) == 0)
			return "default";
	return name;
}

static int read_meta(const struct rt_config *cfg, const char *digest, const char *name,
                     struct image_info *ret)
{
	_cleanup_free_ char *dir = blob_dir(cfg, digest);
	_cleanup_free_ char *meta = xasprintf("%s/meta.json", dir);
	json_t *o = json_load_file(meta, 0, NULL);
	struct image_info info;

	if (!o)
		return -ENOENT;
	memset(&info, 0, sizeof(info));
	snprintf(info.name, sizeof(info.name), "%s", name ? name : "");
	snprintf(info.digest, sizeof(info.digest), "%s", digest);
	info.size_bytes = (uint64_t)json_integer_value(json_object_get(o, "size_bytes"));
	info.created_at_ms = json_integer_value(json_object_get(o, "created_at_ms"));
	json_decref(o);
	*ret = info;
	return 0;
}

static int name_digest(const struct rt_config *cfg, const char *name, char digest[72])
{
	_cleanup_free_ char *path = name_file(cfg, name);
	int r = rt_read_small(path, digest, 72);

	if (r < 0)
		return r;
	return digest_valid(digest) ? 0 : -EINVAL;
}

int image_resolve(const struct rt_config *cfg, const char *name, char *ret_path,
                  struct image_info *ret_info, struct hutch_error *err)
{
	const char *canon = canonical_name(name);
	char digest[72];
	struct image_info info;

	if (strncmp(canon, "sha256:", 7) == 0) {
		if (!digest_valid(canon))
			return hutch_error_set(err, -EINVAL, "invalid image digest");
		snprintf(digest, sizeof(digest), "%s", canon);
	} else if (!image_name_valid(canon)) {
		return hutch_error_set(err, -EINVAL, "invalid image name");
	} else if (name_digest(cfg, canon, digest) < 0) {
		return hutch_error_set(
		        err, -ENOENT, "image %s not found: build it (image_build_%s) or import it",
		        canon, strcmp(canon, "busybox") == 0 ? "busybox" : "default");
	}
	_cleanup_free_ char *dir = blob_dir(cfg, digest);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
	if (strlen(rootfs) >= PATH_MAX || read_meta(cfg, digest, canon, &info) < 0 ||
	    access(rootfs, F_OK) < 0)
		return hutch_error_set(err, -ENOENT, "image %s (%s) is missing from the store",
		                       canon, digest);
	memcpy(ret_path, rootfs, strlen(rootfs) + 1);
	if (ret_info)
		*ret_info = info;
	return 0;
}

int image_list(const struct rt_config *cfg, int (*cb)(const struct image_info *info, void *data),
               void *data, struct hutch_error *err)
{
	_cleanup_free_ char *dir = image_path(cfg, "names");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return errno == ENOENT ? 0 : hutch_error_errno(err, "listing %s", dir);
	while ((de = readdir(d))) {
		char name[136], digest[72];
		struct image_info info;
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%s", de->d_name);
		for (char *p = name; *p; p++)
			if (*p == '+')
				*p = '/';
		if (!image_name_valid(name) || name_digest(cfg, name, digest) < 0 ||
		    read_meta(cfg, digest, name, &info) < 0)
			continue;
		int r = cb(&info, data);
		if (r)
			return r;
	}
	return 0;
}

/* True when a name other than skip, or a sandbox, still uses digest. */
static bool digest_in_use(const struct rt_config *cfg, const char *digest)
{
	_cleanup_free_ char *names = image_path(cfg, "names");
	_cleanup_free_ char *sandboxes = rt_path_sandboxes(cfg);
	DIR *d;
	struct dirent *de;
	bool used = false;

	for (int pass = 0; pass < 2 && !used; pass++) {
		const char *dir = pass == 0 ? names : sandboxes;
		if (!(d = opendir(dir)))
			continue;
		while (!used && (de = readdir(d))) {
			char path[PATH_MAX], got[72];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), pass == 0 ? "%s/%s" : "%s/%s/image", dir,
			         de->d_name);
			used = rt_read_small(path, got, sizeof(got)) > 0 &&
			       strcmp(got, digest) == 0;
		}
		closedir(d);
	}
	return used;
}

int image_remove(const struct rt_config *cfg, const char *name, struct hutch_error *err)
{
	const char *canon = canonical_name(name);
	_cleanup_free_ char *file = NULL;
	char digest[72];

	if (!image_name_valid(canon))
		return hutch_error_set(err, -EINVAL, "invalid image name");
	if (name_digest(cfg, canon, digest) < 0)
		return hutch_error_set(err, -ENOENT, "image %s not found", canon);
	file = name_file(cfg, canon);
	if (unlink(file) < 0)
		return hutch_error_errno(err, "removing %s", file);
	if (digest_in_use(cfg, digest))
		return 0;
	_cleanup_free_ char *blob = blob_dir(cfg, digest);
	int r = rm_rf(blob);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "removing %s", blob);
	}
	return 0;
}

int image_tmp_new(const struct rt_config *cfg, char **ret_dir, struct hutch_error *err)
{
	char rnd[HUTCH_ID_LEN + 1];
	_cleanup_free_ char *tmp = image_path(cfg, "tmp");

	id_generate(rnd);
	_cleanup_free_ char *dir = xasprintf("%s/%s", tmp, rnd);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
	if (mkdir_p(tmp, 0700) < 0 || mkdir(dir, 0700) < 0 || mkdir(rootfs, 0755) < 0)
		return hutch_error_errno(err, "creating %s", rootfs);
	*ret_dir = TAKE_PTR(dir);
	return 0;
}

static __thread uid_t walk_base;
static __thread bool walk_shift;
static __thread uint64_t walk_size;
static __thread int walk_err;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (S_ISREG(st->st_mode))
		walk_size += (uint64_t)st->st_size;
	if (!walk_shift || st->st_uid >= walk_base)
		return 0;
	if (lchown(path, st->st_uid + walk_base, st->st_gid + walk_base) < 0) {
		walk_err = -errno;
		return 1;
	}
	/* chown clears set-id bits: put them back (never on symlinks). */
	if (!S_ISLNK(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) &&
	    chmod(path, st->st_mode & 07777) < 0) {
		walk_err = -errno;
		return 1;
	}
	return 0;
}

/* Creates a directory in the (untrusted) rootfs if missing, owned by the sandbox's root. */
static int finish_dir(int rootfd, const char *path, mode_t mode, uid_t id)
{
	const char *leaf;
	_cleanup_close_ int pfd = rt_open_parent_in_root(rootfd, path, &leaf);

	if (pfd < 0)
		return pfd;
	if (mkdirat(pfd, leaf, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (fchownat(pfd, leaf, id, id, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(pfd, leaf, mode, 0) < 0)
		return -errno;
	return 0;
}

static int finish_file(int rootfd, const char *path, uid_t id)
{
	const char *leaf;
	int fd = rt_open_in_root(rootfd, path, O_PATH);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	_cleanup_close_ int pfd = rt_open_parent_in_root(rootfd, path, &leaf);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno; /* a dangling symlink: left alone */
	int r = fchown(fd, id, id) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int image_rootfs_finish(const struct rt_config *cfg, const char *rootfs, bool shift,
                        uint64_t *ret_size, struct hutch_error *err)
{
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {{"proc", 0555}, {"sys", 0555}, {"dev", 0755},  {"run", 0755},
	            {"tmp", 01777}, {"etc", 0755}, {"root", 0700}, {"home", 0755}};
	static const char *const files[] = {"etc/hosts", "etc/resolv.conf", "etc/hostname"};
	uid_t id = rt_cfg_id_base(cfg);
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (rootfd < 0)
		return hutch_error_errno(err, "opening %s", rootfs);
	walk_base = id, walk_shift = shift, walk_size = 0, walk_err = 0;
	if (nftw(rootfs, walk_one, 64, FTW_PHYS | FTW_MOUNT) != 0)
		return hutch_error_set(err, walk_err ? walk_err : -EIO, "shifting ownership in %s",
		                       rootfs);
	for (size_t i = 0; i < ARRAY_SIZE(dirs) && r == 0; i++)
		r = finish_dir(rootfd, dirs[i].path, dirs[i].mode, id);
	for (size_t i = 0; i < ARRAY_SIZE(files) && r == 0; i++)
		r = finish_file(rootfd, files[i], id);
	if (r < 0)
		return hutch_error_set(err, r, "preparing %s: %s", rootfs, strerror(-r));
	if (!shift && lchown(rootfs, id, id) < 0)
		return hutch_error_errno(err, "chown %s", rootfs);
	*ret_size = walk_size;
	return 0;
}

static int write_meta(const char *tmpdir, const char *digest, const char *source, uint64_t size,
                      int64_t now, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/meta.json", tmpdir);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "digest", digest, "source", source,
	                      "size_bytes", (json_int_t)size, "created_at_ms", (json_int_t)now);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int r;

	json_decref(o);
	if (!s)
		return hutch_error_set(err, -ENOMEM, "serializing %s", path);
	r = write_file_atomic(path, s, strlen(s), 0644);
	free(s);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s", path);
	}
	return 0;
}

int image_publish(const struct rt_config *cfg, const char *tmpdir, const char *digest,
                  const char *name, const char *source, uint64_t size, struct image_info *ret,
                  struct hutch_error *err)
{
	_cleanup_free_ char *blobs = image_path(cfg, "blobs");
	_cleanup_free_ char *names = image_path(cfg, "names");
	_cleanup_free_ char *blob = blob_dir(cfg, digest);
	_cleanup_free_ char *file = name_file(cfg, name);
	int64_t now = time_now_ms();
	int r = write_meta(tmpdir, digest, source, size, now, err);

	if (r == 0 && (mkdir_p(blobs, 0700) < 0 || mkdir_p(names, 0700) < 0))
		r = hutch_error_errno(err, "creating %s", blobs);
	if (r == 0 && rename(tmpdir, blob) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		r = hutch_error_errno(err, "publishing %s", blob);
	rm_rf(tmpdir); /* a no-op after a successful rename; else an identical blob exists */
	if (r < 0)
		return r;
	r = write_file_atomic(file, digest, strlen(digest), 0600);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s", file);
	}
	if (ret && read_meta(cfg, digest, name, ret) < 0)
		return hutch_error_set(err, -EIO, "image %s vanished while publishing", name);
	return 0;
}
