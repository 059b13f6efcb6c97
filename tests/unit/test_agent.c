/* Unit tests for hutch-agent's pure logic: the JSON writer and its UTF-8 sanitising escaper, the
 * line splitter and the bounded output log, user resolution from passwd/group files, and the
 * files API path check. The agent's sources are compiled in directly (they live in a program,
 * not a library). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/hutch-agent/fspath.c"
#include "../../src/hutch-agent/jsonw.c"
#include "../../src/hutch-agent/outlog.c"
#include "../../src/hutch-agent/user.c"
#include "t.h"

static const char *esc(const char *s, size_t len, bool *ret_clean)
{
	static struct buf b;
	buf_reset(&b);
	bool clean = json_escape_bytes(&b, s, len);
	if (ret_clean)
		*ret_clean = clean;
	return buf_cstr(&b);
}

static void test_escape(void)
{
	bool clean;
	CHECK_STR(esc("plain", 5, &clean), "\"plain\"");
	CHECK(clean);
	CHECK_STR(esc("q\"b\\n\nt\tc\x01", 10, NULL), "\"q\\\"b\\\\n\\nt\\tc\\u0001\"");
	CHECK_STR(esc("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, &clean),
	          "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	CHECK(clean);
	/* one U+FFFD per maximal invalid subpart */
	CHECK_STR(esc("a\xff"
	              "b",
	              3, &clean),
	          "\"a\xef\xbf\xbd"
	          "b\"");
	CHECK(!clean);
	CHECK_STR(esc("\xe2\x82"
	              "c",
	              3, NULL),
	          "\"\xef\xbf\xbd"
	          "c\"");                                                    /* truncated */
	CHECK_STR(esc("\xc0\xaf", 2, NULL), "\"\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
	CHECK_STR(esc("\xed\xa0\x80", 3, NULL),
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
	CHECK_STR(esc("\xf4\x90\x80\x80", 4, NULL),
	          "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
	CHECK_STR(esc("\xf0\x9f\x98", 3, NULL), "\"\xef\xbf\xbd\"");
	CHECK_STR(esc("x\0y", 3, NULL), "\"x\\u0000y\"");
}

static void test_writer(void)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kint(&w, "pid", 42);
	jw_kstr(&w, "s", "x");
	jw_key(&w, "a");
	jw_arr_begin(&w);
	jw_int(&w, -1);
	jw_bool(&w, true);
	jw_null(&w);
	jw_obj_begin(&w);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_knull(&w, "n");
	jw_kbool(&w, "f", false);
	jw_obj_end(&w);
	CHECK_STR(buf_cstr(&b),
	          "{\"pid\":42,\"s\":\"x\",\"a\":[-1,true,null,{}],\"n\":null,\"f\":false}");
	/* integers at the edges */
	buf_reset(&b);
	jw_init(&w, &b);
	jw_arr_begin(&w);
	jw_int(&w, 0);
	jw_int(&w, 1764000000123);
	jw_int(&w, INT64_MAX);
	jw_int(&w, INT64_MIN);
	jw_arr_end(&w);
	CHECK_STR(buf_cstr(&b), "[0,1764000000123,9223372036854775807,-9223372036854775808]");
	buf_release(&b);
}

static struct buf lines;
static int nlines;

static void collect(const char *line, size_t len, void *arg)
{
	buf_add(&lines, line, len);
	buf_addch(&lines, '|');
	nlines++;
}

static void test_linesplit(void)
{
	struct linesplit s;
	linesplit_init(&s, 8);
	buf_reset(&lines);
	nlines = 0;
	linesplit_feed(&s, "ab\ncd", 5, collect, NULL);
	linesplit_feed(&s, "ef\n\nlast", 8, collect, NULL);
	CHECK_STR(buf_cstr(&lines), "ab|cdef||");
	linesplit_flush(&s, collect, NULL);
	CHECK_STR(buf_cstr(&lines), "ab|cdef||last|");
	linesplit_flush(&s, collect, NULL);
	CHECK(nlines == 4);
	/* long lines are cut at max_line, never inside a UTF-8 sequence */
	buf_reset(&lines);
	linesplit_feed(&s, "0123456789abcdefXY\n", 19, collect, NULL);
	CHECK_STR(buf_cstr(&lines), "01234567|89abcdef|XY|");
	buf_reset(&lines);
	linesplit_feed(&s,
	               "abcdef\xe2\x82\xac"
	               "gh\n",
	               12, collect, NULL);
	CHECK_STR(buf_cstr(&lines), "abcdef|\xe2\x82\xac"
	                            "gh|");
	buf_reset(&lines);
	linesplit_feed(&s, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\n", 10, collect, NULL);
	CHECK_STR(buf_cstr(&lines), "\xff\xff\xff\xff\xff\xff\xff\xff|\xff|");
	linesplit_release(&s);
	buf_release(&lines);
}

static void test_outlog(void)
{
	struct outlog l;
	char line[16];
	const size_t c0 = OUTLOG_LINE_COST(0); /* a line's cost beyond its bytes */
	outlog_init(&l, 20 + 3 * c0, 3);
	for (int i = 0; i < 5; i++) {
		int n = snprintf(line, sizeof(line), "line%d", i);
		outlog_append(&l, (uint64_t)i, 1000 + i, line, (size_t)n);
	}
	/* 3 lines kept (the line cap), the first two evicted */
	CHECK(l.first == 2 && l.count == 3 && outlog_end(&l) == 5);
	CHECK(outlog_get(&l, 1) == NULL && outlog_get(&l, 5) == NULL);
	CHECK(outlog_get(&l, 2) && strcmp(outlog_get(&l, 2)->data, "line2") == 0);
	CHECK(outlog_get(&l, 4)->seq == 4 && outlog_get(&l, 4)->ts == 1004);
	/* the byte cap (inclusive) counts each line's cost: a 15-byte line leaves room for one
	 * 5-byte line and an empty one */
	outlog_append(&l, 5, 0, "fifteen bytes!!", 15);
	CHECK(l.count == 2 && l.first == 4 && l.bytes == 20 + 2 * c0);
	outlog_append(&l, 6, 0, "", 0);
	CHECK(l.count == 3 && l.bytes == 20 + 3 * c0);
	outlog_append(&l, 7, 0, "z", 1);
	CHECK(l.count == 3 && l.first == 5 && l.bytes == 16 + 3 * c0);
	/* a line beyond the cap on its own is kept alone */
	char huge[256];
	memset(huge, 'h', sizeof(huge));
	outlog_append(&l, 8, 0, huge, sizeof(huge));
	CHECK(l.count == 1 && l.first == 8 && l.bytes == OUTLOG_LINE_COST(sizeof(huge)));
	/* grows past its initial ring size and wraps */
	struct outlog big;
	outlog_init(&big, 1 << 20, 100);
	for (int i = 0; i < 1000; i++)
		outlog_append(&big, (uint64_t)i, 0, "x", 1);
	CHECK(big.first == 900 && big.count == 100 && outlog_get(&big, 999)->seq == 999);
	outlog_release(&big);
	outlog_release(&l);
}

static char dir[64];

static void write_db(const char *name, const char *content)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	fputs(content, f);
	fclose(f);
}

static int resolve(const char *spec, struct agent_user *u)
{
	char pw[128], gr[128];
	snprintf(pw, sizeof(pw), "%s/passwd", dir);
	snprintf(gr, sizeof(gr), "%s/group", dir);
	return user_resolve(spec, pw, gr, u, NULL);
}

static void test_user(void)
{
	struct agent_user u;
	snprintf(dir, sizeof(dir), "/tmp/test_agent.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	write_db("passwd", "root:x:0:0:root:/root:/bin/bash\n"
	                   "tl-user:x:1000:1000:TL:/home/tl-user:/bin/sh\n"
	                   "broken line\n"
	                   "svc:x:999:50::/srv:/usr/sbin/nologin");
	write_db("group", "root:x:0:\nusers:x:100:tl-user,other\ntl-user:x:1000:\n"
	                  "docker:x:998: tl-user \nstaff:x:50:\n");
	CHECK(resolve("tl-user", &u) == 0);
	CHECK(u.uid == 1000 && u.gid == 1000 && strcmp(u.home, "/home/tl-user") == 0);
	CHECK(u.ngroups == 3 && u.groups[0] == 1000 && u.groups[1] == 100 && u.groups[2] == 998);
	CHECK(resolve("root", &u) == 0 && u.uid == 0 && u.gid == 0 && u.ngroups == 1);
	CHECK(resolve("svc", &u) == 0 && u.uid == 999 && u.gid == 50 &&
	      strcmp(u.home, "/srv") == 0);
	CHECK(resolve("1000", &u) == 0 && u.uid == 1000 && u.gid == 1000 &&
	      strcmp(u.name, "tl-user") == 0);
	CHECK(resolve("4242", &u) == 0 && u.uid == 4242 && u.gid == 0 && u.home[0] == '\0');
	CHECK(resolve("4242:77", &u) == 0 && u.uid == 4242 && u.gid == 77 && u.ngroups == 1);
	CHECK(resolve("tl-user:staff", &u) == 0 && u.uid == 1000 && u.gid == 50);
	CHECK(resolve("nobody-here", &u) == -ENOENT);
	CHECK(resolve("tl-user:nogroup", &u) == -ENOENT);
	CHECK(resolve("", &u) == -EINVAL && resolve(":1", &u) == -EINVAL &&
	      resolve("1:", &u) == -EINVAL);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	/* missing databases: numeric ids still work */
	snprintf(dir, sizeof(dir), "/nonexistent");
	CHECK(resolve("12:34", &u) == 0 && u.uid == 12 && u.gid == 34);
	CHECK(resolve("name", &u) == -ENOENT);
}

static void test_fspath(void)
{
	CHECK(fspath_check("/tmp/a.txt") == 0);
	CHECK(fspath_check("rel/a") == 0);
	CHECK(fspath_check("/a/...") == 0 && fspath_check("/a/..b") == 0 &&
	      fspath_check("/a/b..") == 0);
	CHECK(fspath_check("/a/./b") == 0);
	CHECK(fspath_check("") == -EINVAL);
	CHECK(fspath_check("..") == -EACCES);
	CHECK(fspath_check("../x") == -EACCES);
	CHECK(fspath_check("/a/../b") == -EACCES);
	CHECK(fspath_check("/a/..") == -EACCES);
	CHECK(fspath_check("/a/../") == -EACCES);
	CHECK(fspath_check("a//..//b") == -EACCES);
}

int main(void)
{
	test_escape();
	test_writer();
	test_linesplit();
	test_outlog();
	test_user();
	test_fspath();
	T_DONE();
}
