/* The one JSON string escaper, shared by the HTTP error bodies (lib/http) and hutch-agent's JSON
 * writer. Pure code, unit-tested in tests/unit/test_base.c. */
#ifndef HUTCH_JSONESC_H
#define HUTCH_JSONESC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

/* Flags of json_escape_append(); 0 is the plain escaper. */
enum {
	/* Each maximal invalid UTF-8 subsequence becomes U+FFFD (the WHATWG/Unicode "maximal
	 * subpart" rule). Without it, bytes >= 0x80 are copied as they are, valid or not. */
	JSON_ESC_UTF8_REPAIR = 1 << 0,
	/* \b and \f as two-character escapes. Without it they are \u0008 and \u000c. */
	JSON_ESC_SHORT_BF = 1 << 1,
};

/* Appends s[0..len) to out as a JSON string literal, quotes included: '"' and '\\' escaped,
 * \n \r \t as short escapes, every other byte below 0x20 (NUL included) as \u00XX; flags as
 * above. Returns false when JSON_ESC_UTF8_REPAIR replaced something, else true. Any thread. */
bool json_escape_append(struct buf *out, const char *s, size_t len, unsigned flags);

#endif
