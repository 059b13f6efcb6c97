/* The JSON writer and the UTF-8-sanitising string escaper. */
#include <inttypes.h>
#include <string.h>

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
	jw_sep(w);
	buf_printf(w->b, "%" PRId64, v);
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

/* Length of the valid UTF-8 sequence at p, or 0 with *ret_bad the length of the maximal invalid
 * subpart (at least 1). */
static size_t utf8_seq(const unsigned char *p, size_t len, size_t *ret_bad)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else {
		*ret_bad = 1;
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if (i >= len || p[i] < lo || p[i] > hi) {
			*ret_bad = i;
			return 0;
		}
		lo = 0x80, hi = 0xbf;
	}
	return n;
}

bool json_escape_bytes(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	bool clean = true;
	size_t i = 0, run = 0; /* run: bytes from i - run that need no escaping */

	buf_grow(b, len + 2);
	buf_addch(b, '"');
	while (i < len) {
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++, run++;
			continue;
		}
		if (c >= 0x80) {
			size_t bad, n = utf8_seq(p + i, len - i, &bad);
			if (n) {
				i += n, run += n;
				continue;
			}
			buf_add(b, p + i - run, run), run = 0;
			buf_adds(b, "\xef\xbf\xbd");
			clean = false;
			i += bad;
			continue;
		}
		buf_add(b, p + i - run, run), run = 0;
		switch (c) {
		case '"':
			buf_adds(b, "\\\"");
			break;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		case '\b':
			buf_adds(b, "\\b");
			break;
		case '\f':
			buf_adds(b, "\\f");
			break;
		default:
			buf_printf(b, "\\u%04x", c);
		}
		i++;
	}
	buf_add(b, p + i - run, run);
	buf_addch(b, '"');
	return clean;
}
