/* The JSON writer; strings go through lib/base's escaper with UTF-8 repair. */
#include <string.h>

#include "base/jsonesc.h"
#include "base/util.h"
#include "jsonw.h"

void jw_init(struct jw *w, struct buf *b)
{
	w->b = b;
	w->depth = 0;
	w->comma[0] = false;
	w->after_key = false;
}

/* Separator before a value or key at the current depth. */
static void jw_sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->comma[w->depth])
		buf_addch(w->b, ',');
	w->comma[w->depth] = true;
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	buf_addch(w->b, c);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->comma[w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
	buf_addch(w->b, c);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj_begin(struct jw *w)
{
	jw_open(w, '{');
}

void jw_obj_end(struct jw *w)
{
	jw_close(w, '}');
}

void jw_arr_begin(struct jw *w)
{
	jw_open(w, '[');
}

void jw_arr_end(struct jw *w)
{
	jw_close(w, ']');
}

void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	json_escape_bytes(w->b, key, strlen(key));
	buf_addch(w->b, ':');
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
	jw_strn(w, s, strlen(s));
}

void jw_strn(struct jw *w, const char *p, size_t len)
{
	jw_sep(w);
	json_escape_bytes(w->b, p, len);
}

void jw_int(struct jw *w, int64_t v)
{
	char num[21];
	size_t n = 0;
	jw_sep(w);
	if (v < 0)
		num[n++] = '-';
	/* the magnitude as unsigned: INT64_MIN has no positive counterpart */
	n += fmt_u64(num + n, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
	buf_add(w->b, num, n);
}

void jw_bool(struct jw *w, bool v)
{
	jw_sep(w);
	buf_adds(w->b, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	jw_sep(w);
	buf_adds(w->b, "null");
}

void jw_kstr(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kint(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_kbool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}

void jw_knull(struct jw *w, const char *key)
{
	jw_key(w, key);
	jw_null(w);
}

bool json_escape_bytes(struct buf *b, const char *s, size_t len)
{
	return json_escape_append(b, s, len, JSON_ESC_UTF8_REPAIR | JSON_ESC_SHORT_BF);
}
