/* Small helpers every program needs: clocks, randomness and ids, constant-time comparison, and
 * careful file I/O (close-on-exec, short writes, atomic replace with fsync). */
#ifndef HUTCH_UTIL_H
#define HUTCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

#define HUTCH_ID_LEN 21

/* Wall clock in milliseconds since the epoch. */
int64_t time_now_ms(void);
/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t time_mono_ms(void);
uint64_t time_mono_ns(void);

/* Fills buf with cryptographically random bytes; aborts if the kernel cannot provide them. */
void random_bytes(void *buf, size_t len);
/* Writes a fresh 21-character lowercase alphanumeric id and a NUL into out[22]. */
void id_generate(char out[HUTCH_ID_LEN + 1]);
/* True when s is exactly 21 lowercase alphanumerics (the id shape). */
bool id_is_valid(const char *s, size_t len);
/* Writes 2*len lowercase hex digits and a NUL into out. */
void hex_encode(const void *data, size_t len, char *out);
/* v in decimal into out (no NUL; 20 bytes are always enough); returns the length. For hot paths
 * where printf costs more than the rest of the work. */
size_t fmt_u64(char out[20], uint64_t v);
/* Compares len bytes in time independent of where they differ. */
bool ct_equal(const void *a, const void *b, size_t len);

/* Writes all of data, retrying on EINTR and short writes. Returns 0 or -errno. */
int write_all(int fd, const void *data, size_t len);
/* Reads the whole file into ret (appending); -EFBIG if it is larger than max. */
int read_file(const char *path, size_t max, struct buf *ret);
/* Replaces path with data: writes a temporary file in the same directory, fsyncs it, renames it
 * over path and fsyncs the directory. Returns 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Writes a short string to an existing file (sysfs/cgroupfs/procfs style). Returns 0 or -errno. */
int write_file_str(const char *path, const char *s);
/* mkdir -p. Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Removes path and everything below it without following symlinks or crossing into other
 * filesystems. A missing path is not an error. Returns 0 or -errno. */
int rm_rf(const char *path);
/* Sets O_NONBLOCK. Returns 0 or -errno. */
int fd_set_nonblock(int fd, bool on);
/* Percent-decodes s into ret; '+' stays '+'. Returns -EINVAL on a bad escape or a NUL byte. */
int url_decode(const char *s, size_t len, struct buf *ret);
/* Percent-encodes everything but unreserved characters. */
void url_encode(const char *s, size_t len, struct buf *ret);
/* base64url without padding, for opaque cursors. */
void base64url_encode(const void *data, size_t len, struct buf *ret);
int base64url_decode(const char *s, size_t len, struct buf *ret);

#endif
