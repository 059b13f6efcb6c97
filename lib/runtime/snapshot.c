/* Filesystem snapshots: the overlay upper dir of a sandbox archived with libarchive (pax, zstd,
 * xattrs, whiteouts as the 0/0 character devices overlayfs stores, numeric owners) into a
 * content-addressed directory, verified by sha256 before a new sandbox's writable layer is
 * extracted from it. See checkpoint.h for the layout. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/checkpoint.h"
#include "runtime/internal.h"

#define LAYER_FILE     "layer.tar.zst"
#define META_FILE      "meta.json"
#define META_VERSION   1
#define LAYER_MAX_PATH 4096

/* Where the archive goes: the file, and a running sha256 of every byte written. */
struct hash_sink {
	int fd;
	EVP_MD_CTX *md;
	uint64_t bytes;
};

static la_ssize_t sink_write(struct archive *a, void *data, const void *buf, size_t n)
{
	struct hash_sink *s = data;
	int r = write_all(s->fd, buf, n);

	if (r < 0) {
		archive_set_error(a, -r, "writing the archive: %s", strerror(-r));
		return -1;
	}
	EVP_DigestUpdate(s->md, buf, n);
	s->bytes += n;
	return (la_ssize_t)n;
}

static void digest_final(EVP_MD_CTX *md, char out[72])
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(md, h, &n);
	memcpy(out, "sha256:", 7);
	hex_encode(h, 32, out + 7);
}

/* The entry's path relative to upper ("." for upper itself), or NULL when it is outside. */
static const char *rel_path(const char *path, const char *upper)
{
	size_t n = strlen(upper);

	if (strncmp(path, upper, n) != 0)
		return NULL;
	if (path[n] == '\0')
		return ".";
	return path[n] == '/' ? path + n + 1 : NULL;
}

static int copy_disk_data(struct archive *disk, struct archive *out, struct hutch_error *err)
{
	char buf[1 << 16];
	la_ssize_t n;

	while ((n = archive_read_data(disk, buf, sizeof(buf))) > 0) {
		if (archive_write_data(out, buf, (size_t)n) != n)
			return hutch_error_set(err, -EIO, "archive: %s", archive_error_string(out));
	}
	if (n < 0)
		return hutch_error_set(err, -EIO, "reading the layer: %s",
		                       archive_error_string(disk));
	return 0;
}

/* Walks upper (not crossing mounts, not following symlinks) into the archive out. */
static int archive_tree(const char *upper, struct archive *out, struct hutch_error *err)
{
	struct archive *disk = archive_read_disk_new();
	struct archive_entry *e = archive_entry_new();
	int r = 0, ar;

	archive_read_disk_set_symlink_physical(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS |
	                                             ARCHIVE_READDISK_NO_FFLAGS);
	if (archive_read_disk_open(disk, upper) != ARCHIVE_OK) {
		r = hutch_error_set(err, -EIO, "opening %s: %s", upper, archive_error_string(disk));
		goto out;
	}
	while ((ar = archive_read_next_header2(disk, e)) == ARCHIVE_OK) {
		const char *rel = rel_path(archive_entry_pathname(e), upper);
		archive_read_disk_descend(disk);
		if (!rel)
			continue;
		archive_entry_set_pathname(e, rel);
		archive_entry_set_uname(e, NULL);
		archive_entry_set_gname(e, NULL);
		if (archive_write_header(out, e) < ARCHIVE_WARN) {
			r = hutch_error_set(err, -EIO, "archive %s: %s", rel,
			                    archive_error_string(out));
			goto out;
		}
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 &&
		    (r = copy_disk_data(disk, out, err)) < 0)
			goto out;
	}
	if (ar != ARCHIVE_EOF)
		r = hutch_error_set(err, -EIO, "walking %s: %s", upper, archive_error_string(disk));
out:
	archive_entry_free(e);
	archive_read_free(disk);
	return r;
}

/* Writes the archive of upper to path; its sha256 and size. */
static int layer_archive(const char *upper, const char *path, char ret_digest[72],
                         uint64_t *ret_size, struct hutch_error *err)
{
	struct hash_sink s = {.md = EVP_MD_CTX_new()};
	struct archive *a = archive_write_new();
	int r = 0;

	s.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s.fd < 0 || !s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) {
		r = hutch_error_errno(err, "creating %s", path);
		goto out;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, &s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
		r = hutch_error_set(err, -ENOTSUP, "libarchive (zstd?): %s",
		                    archive_error_string(a));
		goto out;
	}
	if ((r = archive_tree(upper, a, err)) < 0)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		r = hutch_error_set(err, -EIO, "finishing %s: %s", path, archive_error_string(a));
		goto out;
	}
	if (fsync(s.fd) < 0) {
		r = hutch_error_errno(err, "fsync %s", path);
		goto out;
	}
	digest_final(s.md, ret_digest);
	*ret_size = s.bytes;
out:
	archive_write_free(a);
	EVP_MD_CTX_free(s.md);
	if (s.fd >= 0)
		close(s.fd);
	if (r < 0)
		unlink(path);
	return r;
}

static int meta_write(const char *dir, const struct rt_fs_snapshot_info *info, const char *source,
                      struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" META_FILE, dir);
	json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:I}", "version", META_VERSION, "digest",
	                      info->digest, "image", info->image, "size_bytes",
	                      (json_int_t)info->size_bytes, "source", source, "created_at_ms",
	                      (json_int_t)time_now_ms());
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int r;

	json_decref(o);
	if (!s)
		return hutch_error_set(err, -ENOMEM, "building %s", path);
	r = write_file_atomic(path, s, strlen(s), 0600);
	free(s);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "writing %s", path);
	}
	return 0;
}

int rt_fs_snapshot_write(const char *upper, const char *dir, const char *image, const char *source,
                         struct rt_fs_snapshot_info *ret, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" LAYER_FILE, dir);
	struct rt_fs_snapshot_info info;
	int r;

	memset(&info, 0, sizeof(info));
	snprintf(info.image, sizeof(info.image), "%s", image);
	snprintf(info.dir, sizeof(info.dir), "%s", dir);
	if ((r = layer_archive(upper, path, info.digest, &info.size_bytes, err)) < 0)
		return r;
	if ((r = meta_write(dir, &info, source, err)) < 0)
		return r;
	*ret = info;
	return 0;
}

/* sha256 of a whole file. */
static int file_digest(const char *path, char out[72], uint64_t *ret_size, struct hutch_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	static char buf[1 << 16];
	uint64_t total = 0;
	ssize_t n;

	if (fd < 0 || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return hutch_error_errno(err, "opening %s", path);
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		total += (uint64_t)n;
	}
	if (n < 0) {
		EVP_MD_CTX_free(md);
		return hutch_error_errno(err, "reading %s", path);
	}
	digest_final(md, out);
	EVP_MD_CTX_free(md);
	*ret_size = total;
	return 0;
}

static int meta_read(const char *dir, struct rt_fs_snapshot_info *info, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" META_FILE, dir);
	_cleanup_buf_ struct buf b = BUF_INIT;
	json_error_t je;
	int r = read_file(path, 1 << 16, &b);

	if (r < 0)
		return hutch_error_set(err, r == -ENOENT ? -ENOENT : r,
		                       "%s is not a filesystem snapshot (no " META_FILE ")", dir);
	json_t *o = json_loadb(b.data, b.len, 0, &je);
	const char *d = json_string_value(json_object_get(o, "digest"));
	const char *im = json_string_value(json_object_get(o, "image"));
	if (!d || !im || strlen(d) != 71 || strncmp(d, "sha256:", 7) != 0 ||
	    strlen(im) >= sizeof(info->image)) {
		json_decref(o);
		return hutch_error_set(err, -EBADMSG, "%s: malformed", path);
	}
	memset(info, 0, sizeof(*info));
	snprintf(info->digest, sizeof(info->digest), "%s", d);
	snprintf(info->image, sizeof(info->image), "%s", im);
	snprintf(info->dir, sizeof(info->dir), "%s", dir);
	json_decref(o);
	return 0;
}

int rt_fs_snapshot_verify(const char *dir, struct rt_fs_snapshot_info *ret_info,
                          struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" LAYER_FILE, dir);
	struct rt_fs_snapshot_info info;
	char actual[72];
	int r = meta_read(dir, &info, err);

	if (r < 0)
		return r;
	if ((r = file_digest(path, actual, &info.size_bytes, err)) < 0)
		return r;
	if (strcmp(actual, info.digest) != 0)
		return hutch_error_set(err, -EBADMSG,
		                       "snapshot %s is corrupted: its archive hashes to %.19s..., "
		                       "expected %.19s...",
		                       dir, actual, info.digest);
	*ret_info = info;
	return 0;
}

/* A relative path without "..", empty or absolute components. */
static bool entry_path_ok(const char *p)
{
	if (!p || !*p || p[0] == '/' || strlen(p) >= LAYER_MAX_PATH)
		return false;
	for (const char *s = p; *s;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return false;
		s += n + (slash ? 1 : 0);
	}
	return true;
}

static int extract_entry(struct archive *in, struct archive *out, struct archive_entry *e,
                         const char *upper, struct hutch_error *err)
{
	const char *p = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);
	const void *blk;
	size_t n;
	la_int64_t off;
	int ar;

	if (!entry_path_ok(p) || (link && !entry_path_ok(link)))
		return hutch_error_set(err, -EBADMSG, "snapshot entry with a bad path: %.100s",
		                       p ? p : "");
	_cleanup_free_ char *full = strcmp(p, ".") ? xasprintf("%s/%s", upper, p) : xstrdup(upper);
	archive_entry_set_pathname(e, full);
	if (link) {
		_cleanup_free_ char *lfull = xasprintf("%s/%s", upper, link);
		archive_entry_set_hardlink(e, lfull);
	}
	if (archive_write_header(out, e) < ARCHIVE_WARN)
		return hutch_error_set(err, -EIO, "extracting %s: %s", p,
		                       archive_error_string(out));
	while ((ar = archive_read_data_block(in, &blk, &n, &off)) == ARCHIVE_OK) {
		if (archive_write_data_block(out, blk, n, off) < ARCHIVE_WARN)
			return hutch_error_set(err, -EIO, "writing %s: %s", p,
			                       archive_error_string(out));
	}
	if (ar != ARCHIVE_EOF)
		return hutch_error_set(err, -EBADMSG, "reading %s: %s", p,
		                       archive_error_string(in));
	if (archive_write_finish_entry(out) < ARCHIVE_WARN)
		return hutch_error_set(err, -EIO, "finishing %s: %s", p, archive_error_string(out));
	return 0;
}

int rt_fs_snapshot_extract(const char *dir, const char *upper, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" LAYER_FILE, dir);
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	int r = 0, ar;

	archive_read_support_format_tar(in);
	archive_read_support_filter_zstd(in);
	archive_write_disk_set_options(
	        out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
	                     ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	                     ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK);
	if (archive_read_open_filename(in, path, 1 << 16) != ARCHIVE_OK) {
		r = hutch_error_set(err, -EIO, "opening %s: %s", path, archive_error_string(in));
		goto out;
	}
	while ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		if ((r = extract_entry(in, out, e, upper, err)) < 0)
			goto out;
	}
	if (ar != ARCHIVE_EOF)
		r = hutch_error_set(err, -EBADMSG, "reading %s: %s", path,
		                    archive_error_string(in));
	else if (archive_write_close(out) != ARCHIVE_OK)
		r = hutch_error_set(err, -EIO, "extracting %s: %s", path,
		                    archive_error_string(out));
out:
	archive_read_free(in);
	archive_write_free(out);
	return r;
}

int rt_snapshot_layer_apply(const struct rt_config *cfg, const struct rt_spec *spec,
                            const char *image_digest, struct hutch_error *err)
{
	_cleanup_free_ char *src = NULL;
	_cleanup_free_ char *upper = rt_path_sandbox(cfg, spec->id, "disk/upper");
	struct rt_fs_snapshot_info info;
	int r;

	if (spec->snapshot_dir)
		src = xstrdup(spec->snapshot_dir);
	else if (spec->memory_snapshot_dir)
		src = xasprintf("%s/fs", spec->memory_snapshot_dir);
	else
		return 0;
	if ((r = rt_fs_snapshot_verify(src, &info, err)) < 0)
		return r;
	if (strcmp(info.image, image_digest) != 0)
		return hutch_error_set(err, -EINVAL,
		                       "the snapshot belongs on image %.19s..., not %.19s...",
		                       info.image, image_digest);
	r = rt_fs_snapshot_extract(src, upper, err);
	if (r < 0)
		return hutch_error_wrap(err, "restoring the writable layer");
	return 0;
}

int rt_sandbox_fs_snapshot(const struct rt_config *cfg, const char *id, const char *dest_dir,
                           struct rt_fs_snapshot_info *ret_info, struct hutch_error *err)
{
	_cleanup_free_ char *upper = NULL, *dest = NULL, *tmp = NULL, *final = NULL;
	struct rt_fs_snapshot_info info;
	char image[72], rnd[HUTCH_ID_LEN + 1];
	int r;

	if (!rt_id_valid(id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	if ((r = rt_sandbox_image_digest(cfg, id, image, err)) < 0)
		return r;
	upper = rt_path_sandbox(cfg, id, "disk/upper");
	dest = dest_dir ? xstrdup(dest_dir) : xasprintf("%s/snapshots", cfg->state_dir);
	id_generate(rnd);
	tmp = xasprintf("%s/.tmp-%s", dest, rnd);
	if (mkdir_p(dest, 0700) < 0 || mkdir(tmp, 0700) < 0)
		return hutch_error_errno(err, "creating %s", tmp);
	bool frozen = rt_sandbox_freeze(cfg, id, true, NULL) == 0;
	r = rt_fs_snapshot_write(upper, tmp, image, id, &info, err);
	if (frozen)
		rt_sandbox_freeze(cfg, id, false, NULL);
	if (r < 0)
		goto fail;
	final = xasprintf("%s/%s", dest, info.digest + 7);
	if (rename(tmp, final) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			r = hutch_error_errno(err, "renaming %s", tmp);
			goto fail;
		}
		rm_rf(tmp); /* the same content is already there */
	}
	snprintf(info.dir, sizeof(info.dir), "%s", final);
	*ret_info = info;
	return 0;
fail:
	rm_rf(tmp);
	return r;
}

int rt_sandbox_image_digest(const struct rt_config *cfg, const char *id, char out[72],
                            struct hutch_error *err)
{
	_cleanup_free_ char *path = rt_path_sandbox(cfg, id, "image");
	int r = rt_read_small(path, out, 72);

	if (r == -ENOENT)
		return hutch_error_set(err, -ENOENT, "no sandbox %s", id);
	if (r < 0 || strncmp(out, "sha256:", 7) != 0) {
		errno = r < 0 ? -r : EINVAL;
		return hutch_error_errno(err, "reading %s", path);
	}
	return 0;
}
