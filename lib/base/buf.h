/* One growable byte buffer type (git's strbuf idea). data is always NUL-terminated once
 * anything was added, so buf_cstr() can hand it to C string APIs. */
#ifndef HUTCH_BUF_H
#define HUTCH_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT           \
	{                  \
		NULL, 0, 0 \
	}

void buf_init(struct buf *b);
/* Frees the contents; the struct may be reused after buf_init() or as is. */
void buf_release(struct buf *b);
/* Makes room for at least extra more bytes (plus the terminating NUL). */
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Empties the buffer but keeps its allocation. */
void buf_reset(struct buf *b);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Shortens to len bytes (len <= b->len). */
void buf_truncate(struct buf *b, size_t len);
/* Returns the contents as a malloc'd string owned by the caller; the buffer is left empty. */
char *buf_detach(struct buf *b, size_t *ret_len);
/* Returns a NUL-terminated view of the contents ("" when empty); valid until the next change. */
const char *buf_cstr(const struct buf *b);

static inline void buf_releasep(struct buf *b)
{
	buf_release(b);
}
#define _cleanup_buf_ __attribute__((cleanup(buf_releasep)))

#endif
