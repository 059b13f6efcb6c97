/* /api/v1/files: streamed download (Content-Length, back-pressure), streamed upload into a
 * temporary file next to the target that is fsync'd and renamed over it, delete (files only),
 * and directory listings. Paths are used as given (absolute, or relative to the agent's working
 * directory); any ".." component is refused. Disk I/O is synchronous on the loop: the sandbox's
 * own disk is local and chunks are 64 KiB. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "agent.h"
#include "fspath.h"

#define CHUNK (64 * 1024)

/* Reads and checks ?path=; answers the error itself and returns NULL when unusable. */
static char *path_param(struct http_request *req)
{
	struct buf b = BUF_INIT;
	if (!http_request_query(req, "path", &b)) {
		buf_release(&b);
		agent_error(req, 400, "BAD_REQUEST", "the \"path\" query parameter is required");
		return NULL;
	}
	char *path = buf_detach(&b, NULL);
	int r = fspath_check(path ? path : "");
	if (r == -EACCES)
		agent_error(req, 403, "PATH_TRAVERSAL", "\"..\" is not allowed in paths");
	else if (r < 0)
		agent_error(req, 400, "BAD_REQUEST", "the path is empty");
	if (r < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static void fs_error(struct http_request *req, int err, const char *path)
{
	switch (err) {
	case ENOENT:
		agent_error(req, 404, "NOT_FOUND", "%s: no such file or directory", path);
		break;
	case ENOTDIR:
		agent_error(req, 400, "NOT_A_DIRECTORY", "%s: a path component is not a directory",
		            path);
		break;
	case EISDIR:
		agent_error(req, 400, "IS_DIRECTORY", "%s is a directory", path);
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		agent_error(req, 403, "PERMISSION_DENIED", "%s: %s", path, strerror(err));
		break;
	case ENOSPC:
	case EDQUOT:
		agent_error(req, 507, "NO_SPACE", "%s: %s", path, strerror(err));
		break;
	default:
		agent_error(req, 500, "INTERNAL_ERROR", "%s: %s", path, strerror(err));
	}
}

/* ---- GET ---- */

struct download {
	int fd;
	int64_t left; /* -1: read to EOF (files whose size is unknown, like /proc) */
};

static void download_free(struct http_request *req)
{
	struct download *d = req->data;
	if (!d)
		return;
	close(d->fd);
	free(d);
	req->data = NULL;
}

/* Drops the connection mid-response (the client sees a truncated body, not a wrong one). */
static void conn_drop(struct http_request *req)
{
	struct buf left = BUF_INIT;
	uv_stream_t *s = http_conn_takeover(req, &left);
	buf_release(&left);
	if (s)
		uv_close((uv_handle_t *)s, http_stream_free);
}

static void download_pump(struct http_request *req)
{
	struct download *d = req->data;
	char chunk[CHUNK];
	for (;;) {
		size_t want = d->left >= 0 && d->left < CHUNK ? (size_t)d->left : CHUNK;
		ssize_t n = want ? read(d->fd, chunk, want) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bool short_file = d->left > 0 || n < 0;
			download_free(req);
			if (short_file)
				conn_drop(req); /* cannot send what was promised */
			else
				http_response_end(req);
			return;
		}
		if (d->left > 0)
			d->left -= n;
		int r = http_response_write(req, chunk, (size_t)n);
		if (r != 0)
			return; /* 1: wait for on_drain; <0: on_abort cleans up */
	}
}

void api_files_get(struct http_request *req, struct agent *a)
{
	_cleanup_free_ char *path = path_param(req);
	if (!path)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fs_error(req, errno, path);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
		close(fd);
		fs_error(req, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, path);
		return;
	}
	fcntl(fd, F_SETFL, 0);
	struct download *d = xcalloc(1, sizeof(*d));
	d->fd = fd;
	d->left = st.st_size > 0 ? st.st_size : -1;
	req->data = d;
	req->on_drain = download_pump;
	req->on_abort = download_free;
	http_response_header(req, "Content-Type", "application/octet-stream");
	http_response_start(req, 200, d->left >= 0 ? d->left : -1);
	download_pump(req);
}

/* ---- PUT ---- */

struct upload {
	int fd;
	char *tmp; /* temporary file next to the target */
	char *path;
	mode_t mode;
	int err; /* first write error */
};

static void upload_free(struct upload *u, bool unlink_tmp)
{
	if (u->fd >= 0)
		close(u->fd);
	if (unlink_tmp && u->tmp)
		unlink(u->tmp);
	free(u->tmp);
	free(u->path);
	free(u);
}

static void upload_abort(struct http_request *req)
{
	upload_free(req->data, true);
	req->data = NULL;
}

static void upload_body(struct http_request *req, const char *data, size_t len)
{
	struct upload *u = req->data;
	if (u->err == 0 && write_all(u->fd, data, len) < 0)
		u->err = errno ? errno : EIO;
}

static int fsync_dir_of(const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void upload_end(struct http_request *req)
{
	struct upload *u = req->data;
	req->data = NULL;
	req->on_abort = NULL;
	int err = u->err;
	if (!err && (fchmod(u->fd, u->mode) < 0 || fsync(u->fd) < 0))
		err = errno;
	if (!err && close(u->fd) < 0)
		err = errno;
	u->fd = -1;
	if (!err && rename(u->tmp, u->path) < 0)
		err = errno;
	if (err) {
		fs_error(req, err, u->path);
		upload_free(u, true);
		return;
	}
	fsync_dir_of(u->path);
	upload_free(u, false);
	http_respond(req, 204, NULL, NULL, 0);
}

/* Creates the parent directories and the temporary file. Returns 0 or an errno. */
static int upload_open(struct upload *u)
{
	struct stat st;
	_cleanup_free_ char *copy = xstrdup(u->path);
	char *dir = dirname(copy);
	u->mode = 0644;
	if (stat(u->path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return EISDIR;
		u->mode = st.st_mode & 07777;
	} else if (errno == ENOTDIR) {
		return ENOTDIR;
	}
	int r = mkdir_p(dir, 0755);
	if (r < 0)
		return r == -EEXIST ? ENOTDIR : -r;
	_cleanup_free_ char *base_copy = xstrdup(u->path);
	u->tmp = xasprintf("%s/.%s.hutch-XXXXXX", dir, basename(base_copy));
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0) {
		free(u->tmp);
		u->tmp = NULL;
		return errno;
	}
	return 0;
}

void api_files_put(struct http_request *req, struct agent *a)
{
	char *path = path_param(req);
	if (!path)
		return;
	struct upload *u = xcalloc(1, sizeof(*u));
	u->fd = -1;
	u->path = path;
	int err = upload_open(u);
	if (err) {
		fs_error(req, err, path);
		upload_free(u, false);
		return;
	}
	req->data = u;
	req->on_body = upload_body;
	req->on_body_end = upload_end;
	req->on_abort = upload_abort;
}

/* ---- DELETE ---- */

void api_files_delete(struct http_request *req, struct agent *a)
{
	_cleanup_free_ char *path = path_param(req);
	struct stat st;
	if (!path)
		return;
	if (lstat(path, &st) < 0) {
		fs_error(req, errno, path);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		fs_error(req, EISDIR, path);
		return;
	}
	if (unlink(path) < 0) {
		fs_error(req, errno, path);
		return;
	}
	http_respond(req, 204, NULL, NULL, 0);
}

/* ---- list ---- */

struct dent {
	char *name;
	bool is_dir;
	int64_t size;
	int64_t mtime_ms;
};

static int dent_cmp(const void *x, const void *y)
{
	const struct dent *a = x, *b = y;
	if (a->is_dir != b->is_dir)
		return a->is_dir ? -1 : 1;
	return strcmp(a->name, b->name);
}

static void list_json(struct http_request *req, const char *path, struct dent *v, size_t n)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kstr(&w, "path", path);
	jw_key(&w, "entries");
	jw_arr_begin(&w);
	for (size_t i = 0; i < n; i++) {
		jw_obj_begin(&w);
		jw_kstr(&w, "name", v[i].name);
		jw_kbool(&w, "is_dir", v[i].is_dir);
		if (v[i].is_dir)
			jw_knull(&w, "size");
		else
			jw_kint(&w, "size", v[i].size);
		jw_kint(&w, "modified_at", v[i].mtime_ms);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

void api_files_list(struct http_request *req, struct agent *a)
{
	_cleanup_free_ char *path = path_param(req);
	if (!path)
		return;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		fs_error(req, errno, path);
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (n == cap)
			v = xreallocarray(v, cap = cap ? cap * 2 : 32, sizeof(*v));
		v[n++] = (struct dent){xstrdup(de->d_name), S_ISDIR(st.st_mode), st.st_size,
		                       (int64_t)st.st_mtim.tv_sec * 1000 +
		                               st.st_mtim.tv_nsec / 1000000};
	}
	qsort(v, n, sizeof(*v), dent_cmp);
	list_json(req, path, v, n);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}
