/* The bounded line log and the line splitter. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "outlog.h"

void outlog_init(struct outlog *l, size_t max_bytes, size_t max_lines)
{
	memset(l, 0, sizeof(*l));
	l->max_bytes = max_bytes;
	l->max_lines = max_lines ? max_lines : 1;
}

void outlog_release(struct outlog *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->ring[(l->start + i) % l->cap]);
	free(l->ring);
	l->ring = NULL;
	l->count = l->cap = l->start = 0;
	l->bytes = 0;
}

static void outlog_evict(struct outlog *l)
{
	struct out_line *old = l->ring[l->start];
	l->bytes -= OUTLOG_LINE_COST(old->len);
	free(old);
	l->start = (l->start + 1) % l->cap;
	l->count--;
	l->first++;
}

static void outlog_grow(struct outlog *l)
{
	size_t ncap = l->cap ? l->cap * 2 : 16;
	struct out_line **nr = xcalloc(ncap, sizeof(*nr));
	for (size_t i = 0; i < l->count; i++)
		nr[i] = l->ring[(l->start + i) % l->cap];
	free(l->ring);
	l->ring = nr;
	l->cap = ncap;
	l->start = 0;
}

void outlog_append(struct outlog *l, uint64_t seq, int64_t ts, const char *p, size_t len)
{
	size_t cost = OUTLOG_LINE_COST(len);
	while (l->count && (l->count + 1 > l->max_lines || l->bytes + cost > l->max_bytes))
		outlog_evict(l);
	if (l->count == l->cap)
		outlog_grow(l);
	struct out_line *ln = xmalloc(sizeof(*ln) + len + 1);
	ln->seq = seq;
	ln->ts = ts;
	ln->len = (uint32_t)len;
	memcpy(ln->data, p, len);
	ln->data[len] = '\0';
	l->ring[(l->start + l->count) % l->cap] = ln;
	l->count++;
	l->bytes += cost;
}

const struct out_line *outlog_get(const struct outlog *l, uint64_t idx)
{
	if (idx < l->first || idx >= outlog_end(l))
		return NULL;
	return l->ring[(l->start + (size_t)(idx - l->first)) % l->cap];
}

void linesplit_init(struct linesplit *s, size_t max_line)
{
	buf_init(&s->partial);
	s->max_line = max_line ? max_line : 1;
}

void linesplit_release(struct linesplit *s)
{
	buf_release(&s->partial);
}

/* Where to cut a too-long piece of n bytes so no UTF-8 sequence is split. */
static size_t utf8_cut(const char *p, size_t n)
{
	size_t cut = n;
	/* step back over at most 3 continuation bytes to the start of the last sequence */
	for (size_t k = 0; k < 3 && cut > 0 && ((unsigned char)p[cut] & 0xc0) == 0x80; k++)
		cut--;
	return cut ? cut : n;
}

/* Emits full max_line pieces from the partial buffer. */
static void split_long(struct linesplit *s, linesplit_fn fn, void *arg)
{
	while (s->partial.len > s->max_line) {
		size_t cut = utf8_cut(s->partial.data, s->max_line);
		fn(s->partial.data, cut, arg);
		buf_consume(&s->partial, cut);
	}
}

void linesplit_feed(struct linesplit *s, const char *data, size_t len, linesplit_fn fn, void *arg)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (s->partial.len == 0 && nl && take <= s->max_line) {
			fn(data, take, arg); /* the common case: no copy */
		} else {
			buf_add(&s->partial, data, take);
			split_long(s, fn, arg);
			if (nl) {
				fn(s->partial.data ? s->partial.data : "", s->partial.len, arg);
				buf_reset(&s->partial);
			}
		}
		if (!nl)
			break;
		data += take + 1;
		len -= take + 1;
	}
}

void linesplit_flush(struct linesplit *s, linesplit_fn fn, void *arg)
{
	if (s->partial.len) {
		fn(s->partial.data, s->partial.len, arg);
		buf_reset(&s->partial);
	}
}
