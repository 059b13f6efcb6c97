/* A non-owning string view: pointer and length, not necessarily NUL-terminated. All parsing of
 * outside input goes through these helpers instead of ad-hoc pointer arithmetic. */
#ifndef HUTCH_SV_H
#define HUTCH_SV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sv {
	const char *p;
	size_t len;
};

#define SV(lit) ((struct sv){(lit), sizeof(lit) - 1})
#define SV_NULL ((struct sv){NULL, 0})
/* printf helper: printf("%.*s", SV_FMT(s)) */
#define SV_FMT(s) (int)(s).len, (s).p

static inline struct sv sv_from(const char *s)
{
	return (struct sv){s, s ? strlen(s) : 0};
}

static inline struct sv sv_make(const char *p, size_t len)
{
	return (struct sv){p, len};
}

bool sv_eq(struct sv a, struct sv b);
bool sv_eq_cstr(struct sv a, const char *b);
/* ASCII case-insensitive equality (HTTP header names). */
bool sv_case_eq(struct sv a, struct sv b);
bool sv_starts_with(struct sv s, struct sv prefix);
bool sv_ends_with(struct sv s, struct sv suffix);
/* Splits s at the first sep: head before it, tail after it. Returns false (and head = s, tail
 * empty) when sep does not occur. */
bool sv_split(struct sv s, char sep, struct sv *ret_head, struct sv *ret_tail);
/* Same, at the last occurrence of sep. */
bool sv_rsplit(struct sv s, char sep, struct sv *ret_head, struct sv *ret_tail);
struct sv sv_trim(struct sv s);
/* Parses a decimal unsigned integer with no sign, no spaces, no leading '+', at most max.
 * Returns 0 or -EINVAL / -ERANGE. */
int sv_to_u64(struct sv s, uint64_t max, uint64_t *ret);
/* malloc'd NUL-terminated copy. */
char *sv_dup(struct sv s);
/* Index of c in s, or -1. */
long sv_index(struct sv s, char c);

#endif
