/* String views. */
#include <errno.h>

#include "base/sv.h"
#include "base/xalloc.h"

bool sv_eq(struct sv a, struct sv b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool sv_eq_cstr(struct sv a, const char *b)
{
	return sv_eq(a, sv_from(b));
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool sv_case_eq(struct sv a, struct sv b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (lower(a.p[i]) != lower(b.p[i]))
			return false;
	return true;
}

bool sv_starts_with(struct sv s, struct sv prefix)
{
	return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

bool sv_ends_with(struct sv s, struct sv suffix)
{
	return s.len >= suffix.len &&
	       (suffix.len == 0 || memcmp(s.p + s.len - suffix.len, suffix.p, suffix.len) == 0);
}

long sv_index(struct sv s, char c)
{
	const char *q = s.len ? memchr(s.p, c, s.len) : NULL;
	return q ? (long)(q - s.p) : -1;
}

bool sv_split(struct sv s, char sep, struct sv *ret_head, struct sv *ret_tail)
{
	long i = sv_index(s, sep);
	if (i < 0) {
		*ret_head = s;
		*ret_tail = sv_make(s.p + s.len, 0);
		return false;
	}
	*ret_head = sv_make(s.p, (size_t)i);
	*ret_tail = sv_make(s.p + i + 1, s.len - (size_t)i - 1);
	return true;
}

bool sv_rsplit(struct sv s, char sep, struct sv *ret_head, struct sv *ret_tail)
{
	for (size_t i = s.len; i > 0; i--) {
		if (s.p[i - 1] == sep) {
			*ret_head = sv_make(s.p, i - 1);
			*ret_tail = sv_make(s.p + i, s.len - i);
			return true;
		}
	}
	*ret_head = s;
	*ret_tail = sv_make(s.p + s.len, 0);
	return false;
}

struct sv sv_trim(struct sv s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\r' || s.p[0] == '\n')) {
		s.p++;
		s.len--;
	}
	while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t' ||
	                 s.p[s.len - 1] == '\r' || s.p[s.len - 1] == '\n'))
		s.len--;
	return s;
}

int sv_to_u64(struct sv s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > 20)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(s.p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

char *sv_dup(struct sv s)
{
	return xstrndup(s.len ? s.p : "", s.len);
}
