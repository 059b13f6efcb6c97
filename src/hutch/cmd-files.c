/* hutch cp: copies one file into or out of a sandbox (ID:/path on one side), streaming both
 * ways so large files never sit in memory; a download replaces a local file only once it is
 * complete. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "cli.h"

static const char cp_usage[] = "hutch cp SRC DST   (one of them ID:/path; a local path may be -)";

/* Splits "ID:/path" into id and path; false for a local path. */
static bool remote_spec(const char *s, char **ret_id, const char **ret_path)
{
	const char *colon = strchr(s, ':');
	if (!colon || colon == s || memchr(s, '/', (size_t)(colon - s)))
		return false;
	*ret_id = xstrndup(s, (size_t)(colon - s));
	*ret_path = colon + 1;
	return true;
}

static char *files_url(struct cli_target *t, const char *path)
{
	char *e = curl_easy_escape(NULL, path, 0);
	char *url = xasprintf("%s/api/v1/files?path=%s", t->base, e);
	curl_free(e);
	return url;
}

static struct curl_slist *headers_for(struct cli_target *t)
{
	struct curl_slist *h = NULL;
	const char *key = cli_key_for(t->base);
	if (key && key[0]) {
		char *a = xasprintf("Authorization: Bearer %s", key);
		h = curl_slist_append(h, a);
		free(a);
	}
	h = curl_slist_append(h, t->id_header);
	if (t->host_header)
		h = curl_slist_append(h, t->host_header);
	return curl_slist_append(h, "Expect:");
}

struct sink {
	FILE *f;
	long status;
	int werr; /* errno of a failed write to f */
	struct buf err;
	CURL *c;
};

static size_t sink_write(char *d, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	if (!s->status)
		curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status >= 300) {
		buf_add(&s->err, d, size * n);
		return size * n;
	}
	size_t w = fwrite(d, size, n, s->f);
	if (w < n && !s->werr)
		s->werr = errno ? errno : EIO;
	return w * size;
}

/* Where a download goes. A regular file (new, or existing, through symlinks) is written to a
 * temporary file in its directory and renamed over it only once the whole transfer succeeded,
 * so a failure never leaves it truncated or half written. stdout, devices and FIFOs are written
 * in place. */
struct dest {
	const char *name; /* as given, for messages */
	char *final;      /* the file the temporary file replaces; NULL: written in place */
	char *tmp;        /* the temporary file while it exists */
	FILE *f;
};

/* Gives the temporary file the mode and owner of the file it replaces, or 0666 less the umask
 * for a new file, as open(O_CREAT) would. Best effort: a file that is not ours to give away
 * stays ours, like any file we create. */
static void dest_tmp_mode(int fd, const struct stat *old)
{
	if (old) {
		bool same_owner = old->st_uid == geteuid() && old->st_gid == getegid();
		if (!same_owner && fchown(fd, old->st_uid, old->st_gid) < 0 && errno != EPERM)
			cli_error("cp: warning: cannot keep the owner of the file: %s",
			          strerror(errno));
		fchmod(fd, old->st_mode & 07777);
		return;
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
}

/* Opens dst for writing as described above. Returns 0 or 1 after printing why. */
static int dest_open(const char *dst, struct dest *d)
{
	memset(d, 0, sizeof(*d));
	d->name = dst;
	if (strcmp(dst, "-") == 0) {
		d->f = stdout;
		return 0;
	}
	struct stat st, lst;
	bool exists = stat(dst, &st) == 0;
	if (!exists && errno != ENOENT)
		return cli_error("cp: cannot write %s: %s", dst, strerror(errno));
	if (!exists && lstat(dst, &lst) == 0)
		return cli_error("cp: not writing through the dangling symlink %s", dst);
	if (exists && S_ISDIR(st.st_mode))
		return cli_error("cp: %s is a directory", dst);
	if (exists && !S_ISREG(st.st_mode)) {
		d->f = fopen(dst, "we");
		return d->f ? 0 : cli_error("cp: cannot write %s: %s", dst, strerror(errno));
	}
	d->final = exists ? realpath(dst, NULL) : xstrdup(dst);
	if (!d->final)
		return cli_error("cp: cannot write %s: %s", dst, strerror(errno));
	const char *slash = strrchr(d->final, '/');
	int dlen = slash ? (int)(slash - d->final) + 1 : 0;
	d->tmp = xasprintf("%.*s.hutch-cp-XXXXXX", dlen, d->final);
	int fd = mkostemp(d->tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		free(d->tmp);
		d->tmp = NULL;
		return cli_error("cp: cannot write %s: %s", dst, strerror(e));
	}
	dest_tmp_mode(fd, exists ? &st : NULL);
	d->f = fdopen(fd, "w");
	if (!d->f) {
		close(fd);
		return cli_error("cp: cannot write %s: %s", dst, strerror(errno));
	}
	return 0;
}

/* Finishes a successful transfer: flushes, and renames the temporary file into place. Returns 0
 * or 1 after printing why (the destination is then left as it was). */
static int dest_commit(struct dest *d)
{
	if (d->f == stdout)
		return fflush(stdout) == 0 ? 0
		                           : cli_error("cp: writing stdout: %s", strerror(errno));
	int rc = fflush(d->f) == 0 && (!d->tmp || fsync(fileno(d->f)) == 0) ? 0 : -errno;
	if (fclose(d->f) != 0 && rc == 0)
		rc = -errno;
	d->f = NULL;
	if (rc == 0 && d->tmp && rename(d->tmp, d->final) < 0)
		rc = -errno;
	if (rc < 0)
		return cli_error("cp: writing %s: %s", d->name, strerror(-rc));
	free(d->tmp);
	d->tmp = NULL;
	return 0;
}

/* Releases d; a temporary file still there (a failed transfer) is removed. */
static void dest_release(struct dest *d)
{
	if (d->f && d->f != stdout)
		fclose(d->f);
	if (d->tmp)
		unlink(d->tmp);
	free(d->tmp);
	free(d->final);
	memset(d, 0, sizeof(*d));
}

static int download(struct cli_target *t, const char *path, const char *dst)
{
	struct dest d;
	if (dest_open(dst, &d)) {
		dest_release(&d);
		return 1;
	}
	struct sink s = {.f = d.f};
	CURL *c = curl_easy_init();
	s.c = c;
	char *url = files_url(t, path);
	struct curl_slist *h = headers_for(t);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s.status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(url);
	int ret = 0;
	if (s.werr) {
		ret = cli_error("cp: writing %s: %s", dst, strerror(s.werr));
	} else if (rc != CURLE_OK) {
		ret = cli_error("cp: %s", curl_easy_strerror(rc));
	} else if (s.status >= 300) {
		struct cli_response r = {.status = s.status, .body = s.err};
		if (!r.body.data)
			buf_add(&r.body, "", 0);
		ret = cli_fail(&r, path);
		s.err = r.body;
	}
	buf_release(&s.err);
	if (ret == 0)
		ret = dest_commit(&d);
	dest_release(&d);
	return ret;
}

static int upload(const char *src, struct cli_target *t, const char *path)
{
	FILE *f = strcmp(src, "-") == 0 ? stdin : fopen(src, "rbe");
	if (!f)
		return cli_error("cp: cannot read %s: %s", src, strerror(errno));
	struct stat st;
	bool sized = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
	struct buf resp = BUF_INIT;
	CURL *c = curl_easy_init();
	char *url = files_url(t, path);
	struct curl_slist *h = headers_for(t);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	if (sized)
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, (curl_write_callback)NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	FILE *mem = fmemopen(NULL, 65536, "w+");
	if (mem)
		curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	int ret = 0;
	if (rc != CURLE_OK) {
		ret = cli_error("cp: %s", curl_easy_strerror(rc));
	} else if (status >= 300) {
		char tmp[4096] = "";
		if (mem) {
			rewind(mem);
			size_t n = fread(tmp, 1, sizeof(tmp) - 1, mem);
			tmp[n] = '\0';
		}
		buf_adds(&resp, tmp);
		struct cli_response r = {.status = status, .body = resp};
		ret = cli_fail(&r, path);
		resp = r.body;
	}
	if (mem)
		fclose(mem);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(url);
	buf_release(&resp);
	if (f != stdin)
		fclose(f);
	return ret;
}

int cmd_cp(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage(cp_usage);
	char *sid = NULL, *did = NULL;
	const char *spath, *dpath;
	bool src_remote = remote_spec(argv[1], &sid, &spath);
	bool dst_remote = remote_spec(argv[2], &did, &dpath);
	int rc;
	if (src_remote == dst_remote) {
		rc = cli_usage(cp_usage);
	} else {
		struct cli_target t;
		if (cli_target_for(src_remote ? sid : did, &t) < 0) {
			rc = 1;
		} else {
			rc = src_remote ? download(&t, spath, argv[2]) : upload(argv[1], &t, dpath);
			cli_target_release(&t);
		}
	}
	free(sid);
	free(did);
	return rc;
}
