/* The JSON string escaper (see jsonesc.h): copies runs of bytes that need nothing and escapes
 * the rest, optionally repairing invalid UTF-8. */
#include "base/jsonesc.h"

#include <stdint.h>
#include <string.h>

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

/* The two-character escape of c, or NULL when c is written as \u00XX. */
static const char *short_escape(unsigned char c, unsigned flags)
{
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '\b':
		return flags & JSON_ESC_SHORT_BF ? "\\b" : NULL;
	case '\f':
		return flags & JSON_ESC_SHORT_BF ? "\\f" : NULL;
	default:
		return NULL;
	}
}

/* Whether the 8 bytes at p are all printable ASCII other than '"' and '\\' (copied as they
 * are). Word-at-a-time: (v - 0x01..) & ~v & 0x80.. is non-zero exactly when some byte of v is 0,
 * and with n in place of 0x01 when some byte is below n (n <= 0x80). */
static bool plain8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t x, q, b;
	memcpy(&x, p, 8);
	q = x ^ (ones * '"');
	b = x ^ (ones * '\\');
	return !((x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs);
}

bool json_escape_append(struct buf *out, const char *s, size_t len, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	bool repair = flags & JSON_ESC_UTF8_REPAIR, clean = true;
	size_t i = 0, run = 0; /* run: bytes from i - run that need no escaping */

	buf_grow(out, len + 2);
	buf_addch(out, '"');
	while (i < len) {
		while (i + 8 <= len && plain8(p + i))
			i += 8, run += 8;
		if (i == len)
			break;
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !repair)) {
			i++, run++;
			continue;
		}
		if (c >= 0x80) {
			size_t bad, n = utf8_seq(p + i, len - i, &bad);
			if (n) {
				i += n, run += n;
				continue;
			}
			buf_add(out, p + i - run, run), run = 0;
			buf_adds(out, "\xef\xbf\xbd");
			clean = false;
			i += bad;
			continue;
		}
		buf_add(out, p + i - run, run), run = 0;
		const char *e = short_escape(c, flags);
		if (e)
			buf_adds(out, e);
		else
			buf_printf(out, "\\u%04x", c);
		i++;
	}
	buf_add(out, p + i - run, run);
	buf_addch(out, '"');
	return clean;
}
