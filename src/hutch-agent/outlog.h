/* Captured process output: a line splitter (bytes to lines, long lines cut at a UTF-8 boundary,
 * the partial last line flushed at EOF) and a bounded log of lines per stream (oldest lines
 * evicted past a byte or line cap, with a count of what was dropped). Readers address lines by a
 * stream-local index that survives eviction, so a slow reader can tell what it missed. Pure code,
 * unit-tested. */
#ifndef HUTCH_AGENT_OUTLOG_H
#define HUTCH_AGENT_OUTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct out_line {
	uint64_t seq; /* order across the streams of one process */
	int64_t ts;   /* capture time, ms since the epoch */
	uint32_t len;
	char data[];
};

struct outlog {
	struct out_line **ring;
	size_t cap, start, count;
	uint64_t first; /* index of the oldest line kept (= lines dropped so far) */
	size_t bytes;   /* memory the kept lines take: OUTLOG_LINE_COST of each */
	size_t max_bytes, max_lines;
};

/* What a captured line of len bytes costs: its bytes, its header and NUL, the allocator's own
 * header and its ring slot. Caps count this, so that they bound memory, not only payload (short
 * lines would otherwise cost several times the cap). */
#define OUTLOG_LINE_COST(len) ((len) + sizeof(struct out_line) + 1 + 16 + sizeof(void *))

void outlog_init(struct outlog *l, size_t max_bytes, size_t max_lines);
void outlog_release(struct outlog *l);
/* Appends a copy of a line, evicting the oldest lines while the caps would be exceeded. */
void outlog_append(struct outlog *l, uint64_t seq, int64_t ts, const char *p, size_t len);
/* Index one past the newest line. */
static inline uint64_t outlog_end(const struct outlog *l)
{
	return l->first + l->count;
}
/* Line at index idx, or NULL when it was evicted (idx < first) or does not exist yet. */
const struct out_line *outlog_get(const struct outlog *l, uint64_t idx);

typedef void (*linesplit_fn)(const char *line, size_t len, void *arg);

struct linesplit {
	struct buf partial;
	size_t max_line;
};

void linesplit_init(struct linesplit *s, size_t max_line);
void linesplit_release(struct linesplit *s);
/* Splits data on '\n' (removed) and calls fn for each complete line. A line that grows past
 * max_line bytes is emitted in pieces, each cut so that no UTF-8 sequence is split. */
void linesplit_feed(struct linesplit *s, const char *data, size_t len, linesplit_fn fn, void *arg);
/* Emits the unterminated last line, if any (at EOF). */
void linesplit_flush(struct linesplit *s, linesplit_fn fn, void *arg);

#endif
