/* hutch cp: copies one file into or out of a sandbox (ID:/path on one side), streaming both
 * ways so large files never sit in memory. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
	return fwrite(d, size, n, s->f) * size;
}

static int download(struct cli_target *t, const char *path, const char *dst)
{
	FILE *f = strcmp(dst, "-") == 0 ? stdout : fopen(dst, "wbe");
	if (!f)
		return cli_error("cp: cannot write %s: %s", dst, strerror(errno));
	struct sink s = {.f = f};
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
	if (rc != CURLE_OK) {
		ret = cli_error("cp: %s", curl_easy_strerror(rc));
	} else if (s.status >= 300) {
		struct cli_response r = {.status = s.status, .body = s.err};
		if (!r.body.data)
			buf_add(&r.body, "", 0);
		ret = cli_fail(&r, path);
		s.err = r.body;
	}
	buf_release(&s.err);
	if (f != stdout && fclose(f) != 0 && ret == 0)
		ret = cli_error("cp: writing %s: %s", dst, strerror(errno));
	if (ret && f != stdout)
		remove(dst);
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
