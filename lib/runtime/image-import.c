/* image_import: `docker save` archives and OCI image layouts. The work runs in a forked child
 * that unpacks the outer archive, reads the manifest, opens the layers and then chroots into
 * the new rootfs before applying them (whiteouts first, then entries through libarchive's
 * secure extraction), so no entry can land outside it even if a check were wrong. The digest
 * is the sha256 of the image config blob (Docker's image ID), computed here, not trusted. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/image-store.h"
#include "runtime/internal.h"

struct import_result {
	int code;
	char msg[256];
	char digest[72];
};

struct import_job {
	uid_t base;
	uint32_t count;
	uint64_t bytes, entries;
	struct import_result *res;
	int layers[IMAGE_IMPORT_MAX_LAYERS];
	size_t nlayers;
	char *config_path;
};

__attribute__((format(printf, 3, 4))) static int fail(struct import_job *j, int code,
                                                      const char *fmt, ...)
{
	va_list ap;

	j->res->code = code < 0 ? code : -EINVAL;
	va_start(ap, fmt);
	vsnprintf(j->res->msg, sizeof(j->res->msg), fmt, ap);
	va_end(ap);
	return j->res->code;
}

/* Strips "./" and "/" prefixes; rejects ".." components. 0 = use, 1 = skip (the root). */
static int clean_path(const char *in, char *out, size_t size)
{
	while (in[0] == '/' || (in[0] == '.' && in[1] == '/'))
		in += in[0] == '/' ? 1 : 2;
	size_t n = strlen(in);
	while (n && in[n - 1] == '/')
		n--;
	if (n == 0 || (n == 1 && in[0] == '.'))
		return 1;
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(out, in, n);
	out[n] = '\0';
	for (char *p = out; p;) {
		char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		p = slash ? slash + 1 : NULL;
	}
	return 0;
}

static struct archive *reader_open(int fd)
{
	struct archive *a = archive_read_new();

	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static struct archive *writer_new(bool owner)
{
	struct archive *w = archive_write_disk_new();
	int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	            ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

	archive_write_disk_set_options(w, flags | (owner ? ARCHIVE_EXTRACT_OWNER : 0));
	return w;
}

static int copy_data(struct import_job *j, struct archive *a, struct archive *w)
{
	const void *buf;
	size_t len;
	int64_t off;

	for (;;) {
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return fail(j, -EIO, "reading: %s", archive_error_string(a));
		j->bytes += len;
		if (j->bytes > IMAGE_IMPORT_MAX_BYTES)
			return fail(j, -EFBIG, "archive larger than the import limit");
		if (archive_write_data_block(w, buf, len, off) < ARCHIVE_WARN)
			return fail(j, -EIO, "writing: %s", archive_error_string(w));
	}
}

/* Writes one entry (already renamed) and its data. */
static int write_entry(struct import_job *j, struct archive *a, struct archive *w,
                       struct archive_entry *e)
{
	if (++j->entries > IMAGE_IMPORT_MAX_ENTRIES)
		return fail(j, -EFBIG, "too many entries");
	int r = archive_write_header(w, e);
	if (r < ARCHIVE_WARN)
		return fail(j, -EPERM, "%s: %s", archive_entry_pathname(e),
		            archive_error_string(w));
	if (archive_entry_size(e) > 0 && (r = copy_data(j, a, w)) < 0)
		return r;
	if (archive_write_finish_entry(w) < ARCHIVE_WARN)
		return fail(j, -EIO, "%s: %s", archive_entry_pathname(e), archive_error_string(w));
	return 0;
}

/* The outer archive into raw/: files, directories and symlinks only, private modes. */
static int extract_outer(struct import_job *j, int fd)
{
	struct archive *a = reader_open(fd), *w = writer_new(false);
	struct archive_entry *e;
	char clean[PATH_MAX], dst[PATH_MAX + 8];
	int r = 0;

	if (!a)
		r = fail(j, -EINVAL, "not a tar archive");
	while (r == 0 && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			r = fail(j, -EINVAL, "bad archive: %s", archive_error_string(a));
			break;
		}
		mode_t type = archive_entry_filetype(e);
		int c = clean_path(archive_entry_pathname(e), clean, sizeof(clean));
		r = 0;
		if (c < 0) {
			r = fail(j, c, "unsafe path in archive: %.100s", archive_entry_pathname(e));
			break;
		}
		if (c == 1 || (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) ||
		    archive_entry_hardlink(e))
			continue;
		snprintf(dst, sizeof(dst), "raw/%s", clean);
		archive_entry_set_pathname(e, dst);
		archive_entry_set_perm(e, type == AE_IFDIR ? 0700 : 0600);
		r = write_entry(j, a, w, e);
	}
	if (a)
		archive_read_free(a);
	if (archive_write_close(w) < ARCHIVE_WARN && r == 0)
		r = fail(j, -EIO, "finishing the archive: %s", archive_error_string(w));
	archive_write_free(w);
	return r;
}

/* Opens a path named by the archive's own manifest, never leaving raw/. */
static int open_raw(int rawfd, const char *path)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	char clean[PATH_MAX];

	if (clean_path(path, clean, sizeof(clean)) != 0)
		return -EPERM;
	int fd = (int)syscall(SYS_openat2, rawfd, clean, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

static json_t *load_raw_json(struct import_job *j, int rawfd, const char *path)
{
	_cleanup_close_ int fd = open_raw(rawfd, path);
	json_error_t je;
	json_t *o;

	if (fd < 0) {
		fail(j, fd, "cannot open %.100s in the archive", path);
		return NULL;
	}
	o = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		fail(j, -EINVAL, "%.100s: %s", path, je.text);
	return o;
}

static int config_digest(struct import_job *j, int rawfd, const char *path)
{
	_cleanup_close_ int fd = open_raw(rawfd, path);
	_cleanup_buf_ struct buf b = BUF_INIT;
	char proc[64];

	if (fd < 0)
		return fail(j, fd, "cannot open the image config %.100s", path);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (read_file(proc, IMAGE_JSON_MAX, &b) < 0 || b.len == 0)
		return fail(j, -EINVAL, "cannot read the image config %.100s", path);
	rt_sha256(b.data, b.len, j->res->digest);
	return 0;
}

static int add_layer(struct import_job *j, int rawfd, const char *path)
{
	if (!path)
		return fail(j, -EINVAL, "a layer without a path");
	if (j->nlayers >= IMAGE_IMPORT_MAX_LAYERS)
		return fail(j, -EFBIG, "too many layers");
	int fd = open_raw(rawfd, path);
	if (fd < 0)
		return fail(j, fd, "cannot open layer %.100s", path);
	j->layers[j->nlayers++] = fd;
	return 0;
}

/* docker save: manifest.json = [{"Config": path, "Layers": [path, ...]}]. */
static int parse_docker(struct import_job *j, int rawfd, json_t *m)
{
	json_t *img = json_array_get(m, 0), *layer;
	const char *config = json_string_value(json_object_get(img, "Config"));
	size_t i;
	int r;

	if (!config || json_array_size(m) != 1)
		return fail(j, -EINVAL, "manifest.json must describe exactly one image");
	if ((r = config_digest(j, rawfd, config)) < 0)
		return r;
	json_array_foreach(json_object_get(img, "Layers"), i,
	                   layer) if ((r = add_layer(j, rawfd, json_string_value(layer))) <
	                              0) return r;
	return 0;
}

static char *blob_path(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71 ||
	    strspn(digest + 7, "0123456789abcdef") != 64)
		return NULL;
	return xasprintf("blobs/sha256/%s", digest + 7);
}

/* OCI layout: index.json -> (nested index ->) manifest -> config and layers. */
static int parse_oci(struct import_job *j, int rawfd, json_t *index, int depth)
{
	json_t *desc = json_array_get(json_object_get(index, "manifests"), 0), *l;
	_cleanup_free_ char *mpath = blob_path(json_string_value(json_object_get(desc, "digest")));
	size_t i;
	int r;

	if (!mpath || depth > 2)
		return fail(j, -EINVAL, "index.json names no usable manifest");
	json_t *m = load_raw_json(j, rawfd, mpath);
	if (!m)
		return j->res->code;
	if (json_object_get(m, "manifests")) {
		r = parse_oci(j, rawfd, m, depth + 1);
		json_decref(m);
		return r;
	}
	_cleanup_free_ char *cpath = blob_path(
	        json_string_value(json_object_get(json_object_get(m, "config"), "digest")));
	r = cpath ? config_digest(j, rawfd, cpath) : fail(j, -EINVAL, "manifest without config");
	json_array_foreach(json_object_get(m, "layers"), i, l)
	{
		if (r < 0)
			break;
		_cleanup_free_ char *lpath =
		        blob_path(json_string_value(json_object_get(l, "digest")));
		r = add_layer(j, rawfd, lpath);
	}
	json_decref(m);
	return r;
}

static int parse_manifest(struct import_job *j)
{
	_cleanup_close_ int rawfd = open("raw", O_PATH | O_DIRECTORY | O_CLOEXEC);
	json_t *m;
	int r;

	if (rawfd < 0)
		return fail(j, -EINVAL, "empty archive");
	if (faccessat(rawfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!(m = load_raw_json(j, rawfd, "manifest.json")))
			return j->res->code;
		r = parse_docker(j, rawfd, m);
	} else {
		if (!(m = load_raw_json(j, rawfd, "index.json")))
			return fail(j, -EINVAL,
			            "neither manifest.json (docker save) nor index.json "
			            "(OCI layout) in the archive");
		r = parse_oci(j, rawfd, m, 0);
	}
	json_decref(m);
	return r;
}

/* Empties dir (an opaque whiteout): the lower layers' content goes, dir stays. */
static int clear_dir(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir[0] ? dir : ".");
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		_cleanup_free_ char *p =
		        dir[0] ? xasprintf("%s/%s", dir, de->d_name) : xstrdup(de->d_name);
		int r = rm_rf(p);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

/* Pass 1 of a layer: its whiteouts remove what the lower layers made. */
static int apply_whiteouts(struct import_job *j, int fd)
{
	struct archive *a = reader_open(fd);
	struct archive_entry *e;
	char clean[PATH_MAX];
	int r = 0;

	if (!a)
		return fail(j, -EINVAL, "a layer is not a tar archive");
	while ((r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			r = fail(j, -EINVAL, "bad layer: %s", archive_error_string(a));
			break;
		}
		int c = clean_path(archive_entry_pathname(e), clean, sizeof(clean));
		r = 0;
		if (c < 0) {
			r = fail(j, c, "unsafe path in layer: %.100s", archive_entry_pathname(e));
			break;
		}
		char *slash = strrchr(clean, '/');
		char *leaf = slash ? slash + 1 : clean;
		if (c == 1 || strncmp(leaf, ".wh.", 4) != 0)
			continue;
		if (slash)
			*slash = '\0';
		const char *dir = slash ? clean : "";
		if (strcmp(leaf, ".wh..wh..opq") == 0) {
			r = clear_dir(dir);
		} else {
			_cleanup_free_ char *victim =
			        slash ? xasprintf("%s/%s", dir, leaf + 4) : xstrdup(leaf + 4);
			r = rm_rf(victim);
		}
		if (r < 0) {
			r = fail(j, r, "applying a whiteout in %.100s", dir);
			break;
		}
	}
	archive_read_free(a);
	return r;
}

/* Shifts an entry's owner into the sandbox range; -ERANGE when it does not fit. */
static int shift_owner(struct import_job *j, struct archive_entry *e)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

	if (uid < 0 || gid < 0 || uid >= j->count || gid >= j->count)
		return fail(j, -ERANGE, "%.100s: owner %lld:%lld outside the id range",
		            archive_entry_pathname(e), (long long)uid, (long long)gid);
	archive_entry_set_uid(e, uid + j->base);
	archive_entry_set_gid(e, gid + j->base);
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	return 0;
}

/* Renames e to its clean path (and its hard link target); 1 = skip this entry. */
static int prepare_entry(struct import_job *j, struct archive_entry *e)
{
	char clean[PATH_MAX];
	mode_t type = archive_entry_filetype(e);
	int c = clean_path(archive_entry_pathname(e), clean, sizeof(clean));

	if (c < 0)
		return fail(j, c, "unsafe path in layer: %.100s", archive_entry_pathname(e));
	const char *slash = strrchr(clean, '/');
	if (c == 1 || strncmp(slash ? slash + 1 : clean, ".wh.", 4) == 0)
		return 1;
	if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)
		return 1; /* the sandbox gets its own /dev */
	archive_entry_set_pathname(e, clean);
	if (archive_entry_hardlink(e)) {
		c = clean_path(archive_entry_hardlink(e), clean, sizeof(clean));
		if (c != 0)
			return fail(j, -EPERM, "unsafe hard link in layer: %.100s",
			            archive_entry_hardlink(e));
		archive_entry_set_hardlink(e, clean);
	}
	archive_entry_xattr_clear(e);
	archive_entry_acl_clear(e);
	return shift_owner(j, e);
}

/* Pass 2 of a layer: its entries, through libarchive's secure extraction. */
static int apply_entries(struct import_job *j, int fd)
{
	struct archive *a = reader_open(fd), *w = writer_new(true);
	struct archive_entry *e;
	int r = 0;

	if (!a)
		r = fail(j, -EINVAL, "a layer is not a tar archive");
	while (r == 0 && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			r = fail(j, -EINVAL, "bad layer: %s", archive_error_string(a));
			break;
		}
		r = prepare_entry(j, e);
		if (r == 1) {
			r = 0;
			continue;
		}
		if (r == 0)
			r = write_entry(j, a, w, e);
	}
	if (a)
		archive_read_free(a);
	if (archive_write_close(w) < ARCHIVE_WARN && r == 0)
		r = fail(j, -EIO, "finishing a layer: %s", archive_error_string(w));
	archive_write_free(w);
	return r;
}

static int import_child(struct import_job *j, const char *tmpdir, int fd)
{
	int r;

	if (chdir(tmpdir) < 0 || mkdir("raw", 0700) < 0)
		return fail(j, -errno, "entering %s", tmpdir);
	if ((r = extract_outer(j, fd)) < 0 || (r = parse_manifest(j)) < 0)
		return r;
	if (chroot("rootfs") < 0 || chdir("/") < 0)
		return fail(j, -errno, "chroot into the new rootfs");
	umask(0);
	for (size_t i = 0; i < j->nlayers; i++) {
		if (lseek(j->layers[i], 0, SEEK_SET) < 0 ||
		    (r = apply_whiteouts(j, j->layers[i])) < 0)
			return r < 0 ? r : fail(j, -errno, "seeking a layer");
		if (lseek(j->layers[i], 0, SEEK_SET) < 0 ||
		    (r = apply_entries(j, j->layers[i])) < 0)
			return r < 0 ? r : fail(j, -errno, "seeking a layer");
	}
	return 0;
}

/* Forks the import child and collects its result. */
static int import_run(const struct rt_config *cfg, const char *tmpdir, int fd,
                      struct import_result *res, struct hutch_error *err)
{
	int p[2], status;

	if (pipe2(p, O_CLOEXEC) < 0)
		return hutch_error_errno(err, "pipe2");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return hutch_error_errno(err, "fork");
	}
	if (pid == 0) {
		struct import_job j = {
		        .base = rt_cfg_id_base(cfg), .count = rt_cfg_id_count(cfg), .res = res};
		close(p[0]);
		import_child(&j, tmpdir, fd);
		_exit(write(p[1], res, sizeof(*res)) == sizeof(*res) ? 0 : 1);
	}
	close(p[1]);
	ssize_t n = read(p[0], res, sizeof(*res));
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(*res))
		return hutch_error_set(err, -EIO, "the import process died");
	res->msg[sizeof(res->msg) - 1] = res->digest[sizeof(res->digest) - 1] = '\0';
	if (res->code < 0)
		return hutch_error_set(err, res->code, "importing image: %s", res->msg);
	return 0;
}

int image_import(const struct rt_config *cfg, const char *name, int fd, struct image_info *ret,
                 struct hutch_error *err)
{
	_cleanup_free_ char *tmp = NULL, *rootfs = NULL, *raw = NULL;
	struct import_result res;
	uint64_t size = 0;
	int r;

	if (!name || !image_name_valid(name))
		return hutch_error_set(err, -EINVAL, "invalid image name");
	if ((r = image_tmp_new(cfg, &tmp, err)) < 0)
		return r;
	memset(&res, 0, sizeof(res));
	rootfs = xasprintf("%s/rootfs", tmp);
	raw = xasprintf("%s/raw", tmp);
	r = import_run(cfg, tmp, fd, &res, err);
	rm_rf(raw);
	if (r == 0)
		r = image_rootfs_finish(cfg, rootfs, false, &size, err);
	if (r < 0) {
		rm_rf(tmp);
		return r;
	}
	return image_publish(cfg, tmp, res.digest, name, "import", size, ret, err);
}
