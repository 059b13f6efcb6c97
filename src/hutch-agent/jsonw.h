/* A small streaming JSON writer into a struct buf, for the agent's responses and SSE events.
 * Strings from processes are raw bytes: they are written as valid UTF-8 JSON, with each invalid
 * sequence replaced by U+FFFD (see docs/design/agent.md). Pure code, unit-tested. */
#ifndef HUTCH_AGENT_JSONW_H
#define HUTCH_AGENT_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define JW_MAX_DEPTH 16

struct jw {
	struct buf *b;
	int depth;
	bool comma[JW_MAX_DEPTH]; /* a value was written at this depth */
	bool after_key;
};

void jw_init(struct jw *w, struct buf *b);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
/* String values: a C string, or len raw bytes (sanitised to UTF-8). */
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const char *p, size_t len);
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* key + value shorthands */
void jw_kstr(struct jw *w, const char *key, const char *s);
void jw_kint(struct jw *w, const char *key, int64_t v);
void jw_kbool(struct jw *w, const char *key, bool v);
void jw_knull(struct jw *w, const char *key);

/* Appends p[0..len) as a JSON string literal (quotes included). Bytes that are not valid UTF-8
 * become U+FFFD, one per maximal invalid subsequence (the WHATWG/Unicode "maximal subpart"
 * rule). Returns true when the input was valid UTF-8 (nothing was replaced). */
bool json_escape_bytes(struct buf *b, const char *p, size_t len);

#endif
