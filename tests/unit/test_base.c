/* Unit tests for lib/base: buffers, string views, ids, encodings, the JSON string escaper,
 * errors, files. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/jsonesc.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "t.h"

static void test_buf(void)
{
	struct buf b = BUF_INIT;
	CHECK_STR(buf_cstr(&b), "");
	buf_adds(&b, "hello");
	buf_printf(&b, " %d", 42);
	CHECK_STR(buf_cstr(&b), "hello 42");
	buf_consume(&b, 6);
	CHECK_STR(buf_cstr(&b), "42");
	for (int i = 0; i < 1000; i++)
		buf_addch(&b, 'x');
	CHECK(b.len == 1002);
	buf_truncate(&b, 1);
	CHECK_STR(buf_cstr(&b), "4");
	size_t len;
	char *s = buf_detach(&b, &len);
	CHECK(len == 1 && strcmp(s, "4") == 0 && b.len == 0);
	free(s);
	buf_release(&b);
}

static void test_sv(void)
{
	struct sv h, t;
	CHECK(sv_split(SV("a=b=c"), '=', &h, &t) && sv_eq_cstr(h, "a") && sv_eq_cstr(t, "b=c"));
	CHECK(sv_rsplit(SV("a=b=c"), '=', &h, &t) && sv_eq_cstr(h, "a=b") && sv_eq_cstr(t, "c"));
	CHECK(!sv_split(SV("abc"), '=', &h, &t) && sv_eq_cstr(h, "abc") && t.len == 0);
	CHECK(sv_case_eq(SV("Content-Length"), SV("content-length")));
	CHECK(sv_eq_cstr(sv_trim(SV("  x y \r\n")), "x y"));
	uint64_t v;
	CHECK(sv_to_u64(SV("65535"), 65535, &v) == 0 && v == 65535);
	CHECK(sv_to_u64(SV("65536"), 65535, &v) == -ERANGE);
	CHECK(sv_to_u64(SV("-1"), 100, &v) == -EINVAL);
	CHECK(sv_to_u64(SV(""), 100, &v) == -EINVAL);
	CHECK(sv_to_u64(SV("99999999999999999999999"), UINT64_MAX, &v) < 0);
	CHECK(sv_starts_with(SV("/v1/x"), SV("/v1/")) && sv_ends_with(SV("a.local"), SV(".local")));
}

static void test_ids(void)
{
	char a[22], b[22];
	id_generate(a);
	id_generate(b);
	CHECK(id_is_valid(a, strlen(a)));
	CHECK(strcmp(a, b) != 0);
	CHECK(!id_is_valid("ABCDEFGHIJKLMNOPQRSTU", 21));
	CHECK(!id_is_valid("abc", 3));
	char hex[9];
	hex_encode("\x01\xab\xff\x00", 4, hex);
	CHECK_STR(hex, "01abff00");
	CHECK(ct_equal("abc", "abc", 3) && !ct_equal("abc", "abd", 3));
}

static void test_encodings(void)
{
	struct buf b = BUF_INIT;
	CHECK(url_decode("a%20b%2Fc+", 10, &b) == 0);
	CHECK_STR(buf_cstr(&b), "a b/c+");
	buf_reset(&b);
	CHECK(url_decode("%zz", 3, &b) == -EINVAL);
	buf_reset(&b);
	CHECK(url_decode("%2", 2, &b) == -EINVAL);
	buf_reset(&b);
	CHECK(url_decode("a%00", 4, &b) == -EINVAL);
	buf_reset(&b);
	url_encode("a b/~", 5, &b);
	CHECK_STR(buf_cstr(&b), "a%20b%2F~");
	for (size_t n = 0; n < 10; n++) {
		struct buf e = BUF_INIT, d = BUF_INIT;
		const char *src = "\x00\xff\x10hello world";
		base64url_encode(src, n, &e);
		CHECK(base64url_decode(e.data, e.len, &d) == 0);
		CHECK(d.len == n && memcmp(d.data, src, n) == 0);
		buf_release(&e);
		buf_release(&d);
	}
	buf_reset(&b);
	CHECK(base64url_decode("a+b=", 4, &b) == -EINVAL);
	buf_release(&b);
}

/* s[0..len) through json_escape_append() with flags; the literal, valid until the next call. */
static const char *jesc(const char *s, size_t len, unsigned flags, bool *ret_clean)
{
	static struct buf b;
	buf_reset(&b);
	bool clean = json_escape_append(&b, s, len, flags);
	if (ret_clean)
		*ret_clean = clean;
	return buf_cstr(&b);
}

/* json_escape_append the slow way: one byte at a time, no word-at-a-time shortcut. */
static void jesc_reference(struct buf *b, const unsigned char *s, size_t len)
{
	buf_addch(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\r')
			buf_adds(b, "\\r");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c < 0x20)
			buf_printf(b, "\\u%04x", c);
		else
			buf_addch(b, (char)c);
	}
	buf_addch(b, '"');
}

/* Random strings (mostly printable, with every kind of special byte at every offset of the
 * 8-byte words) escape exactly as the byte-at-a-time reference does. */
static void test_json_escape_words(void)
{
	static const unsigned char special[] = {'"',  '\\', 0,    0x1f, 0x20,
	                                        0x7e, 0x7f, '\n', 0x80, 0xff};
	struct buf ref = BUF_INIT, got = BUF_INIT;
	unsigned seed = 12345;
	unsigned char s[64];
	int bad = 0;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(round % 64);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = seed >> 16;
			s[i] = r % 8 == 0 ? special[(r >> 3) % sizeof(special)]
			                  : (unsigned char)(0x21 + (r >> 3) % 0x5e);
		}
		buf_reset(&ref);
		buf_reset(&got);
		jesc_reference(&ref, s, len);
		json_escape_append(&got, (const char *)s, len, 0);
		if (ref.len != got.len || memcmp(ref.data, got.data, ref.len) != 0)
			bad++;
	}
	CHECK(bad == 0);
	buf_release(&ref);
	buf_release(&got);
}

static void test_json_escape(void)
{
	const unsigned both = JSON_ESC_UTF8_REPAIR | JSON_ESC_SHORT_BF;
	bool clean;

	CHECK_STR(jesc("", 0, 0, &clean), "\"\"");
	CHECK(clean);
	CHECK_STR(jesc("plain text", 10, both, NULL), "\"plain text\"");
	/* quotes, backslash, the short escapes; NUL and other control characters as \u00XX */
	CHECK_STR(jesc("q\"b\\n\nr\rt\t", 10, 0, NULL), "\"q\\\"b\\\\n\\nr\\rt\\t\"");
	CHECK_STR(jesc("x\0y\x01\x1f\x7f", 6, 0, NULL), "\"x\\u0000y\\u0001\\u001f\x7f\"");
	CHECK_STR(jesc("\b\f", 2, 0, NULL), "\"\\u0008\\u000c\"");
	CHECK_STR(jesc("\b\f", 2, JSON_ESC_SHORT_BF, NULL), "\"\\b\\f\"");
	/* valid UTF-8 passes unchanged in both modes */
	const char utf8[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	CHECK_STR(jesc(utf8, 9, 0, NULL), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	CHECK_STR(jesc(utf8, 9, both, &clean), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	CHECK(clean);
	/* invalid UTF-8: copied as is, or one U+FFFD per maximal invalid subpart */
	CHECK_STR(jesc("a\xff\xe2\x82", 4, 0, &clean), "\"a\xff\xe2\x82\"");
	CHECK(clean);
	CHECK_STR(jesc("a\xff\xe2\x82", 4, both, &clean), "\"a\xef\xbf\xbd\xef\xbf\xbd\"");
	CHECK(!clean);
	CHECK_STR(jesc("\xed\xa0\x80", 3, JSON_ESC_UTF8_REPAIR, NULL),
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
}

static void test_error(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	CHECK(hutch_error_set(&err, -ENOENT, "sandbox %s", "x") == -ENOENT);
	CHECK(hutch_error_http_status(&err) == 404);
	CHECK_STR(hutch_error_kind(&err), "NOT_FOUND");
	hutch_error_wrap(&err, "get");
	CHECK_STR(err.msg, "get: sandbox x");
	hutch_error_api(&err, 409, "SANDBOX_CONFLICT", "state %s", "pending");
	CHECK(hutch_error_http_status(&err) == 409);
	CHECK_STR(hutch_error_kind(&err), "SANDBOX_CONFLICT");
	errno = EACCES;
	CHECK(hutch_error_errno(&err, "open %s", "/x") == -EACCES);
	CHECK(strstr(err.msg, "Permission denied") != NULL);
}

static void test_files(void)
{
	char dir[] = "/tmp/hutch-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *deep = xasprintf("%s/a/b/c", dir);
	CHECK(mkdir_p(deep, 0755) == 0);
	char *f = xasprintf("%s/file", deep);
	CHECK(write_file_atomic(f, "data", 4, 0600) == 0);
	struct buf b = BUF_INIT;
	CHECK(read_file(f, 100, &b) == 0);
	CHECK_STR(buf_cstr(&b), "data");
	buf_reset(&b);
	CHECK(read_file(f, 2, &b) == -EFBIG);
	struct stat st;
	CHECK(stat(f, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(rm_rf(dir) == 0);
	CHECK(access(dir, F_OK) < 0 && errno == ENOENT);
	CHECK(rm_rf(dir) == 0);
	buf_release(&b);
	free(deep);
	free(f);
}

int main(void)
{
	test_buf();
	test_sv();
	test_ids();
	test_encodings();
	test_json_escape();
	test_json_escape_words();
	test_error();
	test_files();
	T_DONE();
}
