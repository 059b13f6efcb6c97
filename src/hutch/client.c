/* HTTP for the CLI (libcurl, blocking): control-plane calls, agent calls through the proxy, and
 * SSE streams. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

void cli_response_release(struct cli_response *r)
{
	buf_release(&r->body);
	buf_release(&r->headers);
	r->status = 0;
}

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "hutch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_usage(const char *usage)
{
	fprintf(stderr, "usage: %s\n", usage);
	return 2;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	buf_add(arg, data, size * n);
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	buf_add(arg, data, size * n);
	return size * n;
}

/* The first URL the local admin key was withheld from (for cli_auth_hint). */
static char *withheld_url;

const char *cli_key_for(const char *url)
{
	if (cli.key_source != CLI_KEY_ADMIN_FILE || cli_url_is_loopback(url))
		return cli.api_key;
	if (!withheld_url)
		withheld_url = xstrdup(url);
	return NULL;
}

void cli_auth_hint(long status)
{
	static bool done;
	if (status != 401 || done || cli.key_source == CLI_KEY_GIVEN)
		return;
	done = true;
	if (cli.key_source == CLI_KEY_ADMIN_FILE && withheld_url)
		cli_error("the local admin key is only sent to loopback URLs, not to %s: set "
		          "HUTCH_API_KEY or pass --api-key",
		          withheld_url);
	else if (cli.key_source == CLI_KEY_ADMIN_FILE)
		cli_error(
		        "the local admin key (%s/admin.key) was refused: set HUTCH_API_KEY or pass "
		        "--api-key",
		        cli.data_dir);
	else if (!cli_url_is_loopback(cli.api_url))
		cli_error(
		        "no API key: %s is not a loopback URL, so the local admin key is not used; "
		        "set HUTCH_API_KEY or pass --api-key",
		        cli.api_url);
	else
		cli_error("no API key (%s/admin.key is not readable): set HUTCH_API_KEY or pass "
		          "--api-key",
		          cli.data_dir);
}

static struct curl_slist *base_headers(const char *url, const char *const *extra, bool json_body)
{
	struct curl_slist *h = NULL;
	const char *key = cli_key_for(url);
	if (key && key[0]) {
		char *a = xasprintf("Authorization: Bearer %s", key);
		h = curl_slist_append(h, a);
		free(a);
	}
	if (json_body)
		h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	for (size_t i = 0; extra && extra[i]; i++)
		h = curl_slist_append(h, extra[i]);
	return h;
}

/* One blocking request; url is absolute. */
static int perform(const char *method, const char *url, struct curl_slist *headers,
                   const void *body, size_t len, bool has_body, struct cli_response *r)
{
	CURL *c = curl_easy_init();
	if (!c)
		return cli_error("cannot initialise libcurl"), -1;
	buf_init(&r->body);
	buf_init(&r->headers);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	if (has_body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	}
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		cli_error("%s %s: %s", method, url, curl_easy_strerror(rc));
		return -1;
	}
	if (!r->body.data)
		buf_add(&r->body, "", 0);
	return 0;
}

int cli_api_h(const char *method, const char *path, json_t *body, const char *const *headers,
              struct cli_response *r)
{
	char *url = xasprintf("%s%s", cli.api_url, path);
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	bool has_body = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	                strcmp(method, "PATCH") == 0;
	struct curl_slist *h = base_headers(url, headers, body != NULL);
	int rc = perform(method, url, h, s, s ? strlen(s) : 0, has_body, r);
	curl_slist_free_all(h);
	free(s);
	free(url);
	return rc;
}

int cli_api(const char *method, const char *path, json_t *body, struct cli_response *r)
{
	return cli_api_h(method, path, body, NULL, r);
}

json_t *cli_json(const struct cli_response *r)
{
	json_error_t je;
	json_t *v = json_loadb(r->body.data, r->body.len, 0, &je);
	if (!v)
		cli_error("unexpected answer (HTTP %ld): %.200s", r->status, buf_cstr(&r->body));
	return v;
}

int cli_fail(const struct cli_response *r, const char *what)
{
	json_t *v = json_loadb(r->body.data, r->body.len, 0, NULL);
	const char *msg = json_string_value(json_object_get(v, "error"));
	const char *code = json_string_value(json_object_get(v, "code"));
	if (msg)
		cli_error("%s: %s%s%s (HTTP %ld)", what, code ? code : "", code ? ": " : "", msg,
		          r->status);
	else
		cli_error("%s: HTTP %ld %.300s", what, r->status, buf_cstr(&r->body));
	json_decref(v);
	cli_auth_hint(r->status);
	return 1;
}

void cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	free(s);
}

char *cli_escape(const char *s)
{
	struct buf b = BUF_INIT;
	url_encode(s, strlen(s), &b);
	return buf_detach(&b, NULL);
}

json_t *cli_sandbox_get(const char *id_or_name)
{
	struct cli_response r;
	char *e = cli_escape(id_or_name);
	char *path = xasprintf("/sandboxes/%s", e);
	free(e);
	int rc = cli_api("GET", path, NULL, &r);
	free(path);
	json_t *v = NULL;
	if (rc == 0 && r.status == 200)
		v = cli_json(&r);
	else if (rc == 0)
		cli_fail(&r, id_or_name);
	cli_response_release(&r);
	return v;
}

/* ---- the agent through the proxy ---- */

int cli_target_for(const char *id_or_name, struct cli_target *ret)
{
	json_t *sb = cli_sandbox_get(id_or_name);
	if (!sb)
		return -1;
	const char *url = json_string_value(json_object_get(sb, "sandbox_url"));
	const char *id = json_string_value(json_object_get(sb, "id"));
	const char *status = json_string_value(json_object_get(sb, "status"));
	if (!url || !id) {
		cli_error("sandbox %s is %s and has no sandbox_url", id_or_name,
		          status ? status : "unknown");
		json_decref(sb);
		return -1;
	}
	memset(ret, 0, sizeof(*ret));
	ret->id = xstrdup(id);
	ret->base = xstrdup(url);
	size_t n = strlen(ret->base);
	if (n && ret->base[n - 1] == '/')
		ret->base[n - 1] = '\0';
	/* a proxy on a bare address is addressed like the SDKs do: Host: {id}.local */
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	if (strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 ||
	    strncmp(host, "[::1]", 5) == 0)
		ret->host_header = xasprintf("Host: %s.local", id);
	ret->id_header = xasprintf("X-Tensorlake-Sandbox-Id: %s", id);
	json_decref(sb);
	return 0;
}

void cli_target_release(struct cli_target *t)
{
	free(t->base);
	free(t->host_header);
	free(t->id_header);
	free(t->id);
	memset(t, 0, sizeof(*t));
}

static struct curl_slist *agent_headers(struct cli_target *t, const char *content_type)
{
	const char *extra[4] = {t->id_header, t->host_header, NULL, NULL};
	char *ct = content_type ? xasprintf("Content-Type: %s", content_type) : NULL;
	size_t n = t->host_header ? 2 : 1;
	extra[n] = ct;
	struct curl_slist *h = base_headers(t->base, extra, false);
	free(ct);
	return h;
}

int cli_agent(struct cli_target *t, const char *method, const char *path, const void *body,
              size_t len, const char *content_type, struct cli_response *r)
{
	char *url = xasprintf("%s%s", t->base, path);
	struct curl_slist *h = agent_headers(t, content_type);
	bool has_body = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	int rc = perform(method, url, h, body, len, has_body, r);
	curl_slist_free_all(h);
	free(url);
	return rc;
}

/* ---- SSE ---- */

volatile sig_atomic_t cli_interrupted;

/* Called by libcurl at least once a second: a non-zero answer aborts the transfer. */
static int sse_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
	return cli_interrupted != 0;
}

struct sse {
	struct buf pending;
	struct buf data;
	char event[64];
	int (*on_event)(const char *event, const char *data, size_t len, void *arg);
	void *arg;
	bool stop;
	struct buf errbody;
	long status;
};

static void sse_line(struct sse *s, struct sv line)
{
	if (line.len && line.p[line.len - 1] == '\r')
		line.len--;
	if (line.len == 0) {
		if (s->data.len || s->event[0]) {
			if (s->on_event(s->event[0] ? s->event : NULL, buf_cstr(&s->data),
			                s->data.len, s->arg))
				s->stop = true;
		}
		buf_reset(&s->data);
		s->event[0] = '\0';
		return;
	}
	if (line.p[0] == ':')
		return;
	struct sv field, value;
	sv_split(line, ':', &field, &value);
	if (value.len && value.p[0] == ' ')
		value = sv_make(value.p + 1, value.len - 1);
	if (sv_eq_cstr(field, "data")) {
		if (s->data.len)
			buf_addch(&s->data, '\n');
		buf_add(&s->data, value.p, value.len);
	} else if (sv_eq_cstr(field, "event")) {
		snprintf(s->event, sizeof(s->event), "%.*s", SV_FMT(value));
	}
}

static size_t sse_write(char *data, size_t size, size_t n, void *arg)
{
	struct sse *s = arg;
	if (s->status >= 300) {
		buf_add(&s->errbody, data, size * n);
		return size * n;
	}
	buf_add(&s->pending, data, size * n);
	for (;;) {
		long i = sv_index(sv_make(s->pending.data, s->pending.len), '\n');
		if (i < 0)
			break;
		sse_line(s, sv_make(s->pending.data, (size_t)i));
		buf_consume(&s->pending, (size_t)i + 1);
		if (s->stop)
			return 0; /* aborts the transfer */
	}
	return size * n;
}

static size_t sse_header(char *data, size_t size, size_t n, void *arg)
{
	struct sse *s = arg;
	long code;
	if (sscanf(data, "HTTP/%*s %ld", &code) == 1)
		s->status = code;
	return size * n;
}

long cli_agent_sse(struct cli_target *t, const char *method, const char *path, json_t *body,
                   int (*on_event)(const char *event, const char *data, size_t len, void *arg),
                   void *arg)
{
	struct sse s = {.on_event = on_event, .arg = arg};
	char *url = xasprintf("%s%s", t->base, path);
	char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct curl_slist *h = agent_headers(t, body ? "application/json" : NULL);
	h = curl_slist_append(h, "Accept: text/event-stream");
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sse_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (b) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, b);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
	}
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(url);
	free(b);
	long status = s.status;
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		status = -1; /* interrupted: the caller says so */
	} else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && s.stop)) {
		cli_error("%s %s: %s", method, path, curl_easy_strerror(rc));
		status = -1;
	} else if (status >= 300) {
		struct cli_response r = {.status = status, .body = s.errbody};
		if (!r.body.data)
			buf_add(&r.body, "", 0);
		cli_fail(&r, path);
		s.errbody = r.body;
	}
	buf_release(&s.pending);
	buf_release(&s.data);
	buf_release(&s.errbody);
	return status;
}
