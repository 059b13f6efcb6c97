/* A per-proxy cache of key verifications and sandbox lookups that never serves stale data:
 * every request first checks whether the store changed, and any change empties the cache. A
 * PATCH committed by the api is therefore seen by the very next request, while an unchanged
 * store costs no query at all instead of a key lookup, a SHA-256 and a 31-column sandbox read.
 *
 * "Changed" is decided by SQLite's PRAGMA data_version (moves whenever another connection
 * commits; costs a read transaction) and, in front of it, by the WAL-index header in the -shm
 * file (walformat.html, "The WAL-Index Header": its iChange counter moves with every commit),
 * read from a read-only mapping without a system call. The header is trusted only when its two
 * copies agree, and at least every CACHE_RECHECK_MS the pragma runs anyway. Backends without a
 * data version (PostgreSQL) are not cached. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "proxy/internal.h"

#define CACHE_MAX        4096
#define CACHE_RECHECK_MS 50
#define WAL_HDR          48 /* one copy of the WAL-index header */

struct cache_key {
	bool valid;
	char ns[64];
};

static int read_version(struct db_row *row, void *data)
{
	*(int64_t *)data = db_row_int(row, 0);
	return 0;
}

struct cache_sb {
	bool found;
	struct sandbox_rec rec;
};

static void cache_sb_free(void *v)
{
	struct cache_sb *e = v;
	sandbox_rec_release(&e->rec);
	free(e);
}

static void cache_clear(struct proxy_cache *c)
{
	proxy_map_release(&c->keys, free);
	proxy_map_release(&c->sandboxes, cache_sb_free);
}

void proxy_cache_init(struct proxy_cache *c, const char *db_path)
{
	memset(c, 0, sizeof(*c));
	c->version = -1;
	c->shm_path = db_path && db_path[0] ? xasprintf("%s-shm", db_path) : NULL;
}

void proxy_cache_release(struct proxy_cache *c)
{
	cache_clear(c);
	if (c->shm)
		munmap((void *)c->shm, WAL_HDR * 2);
	free(c->shm_path);
	c->shm = NULL;
	c->shm_path = NULL;
}

/* Maps the WAL-index header once SQLite has the -shm file open (it is then never truncated while
 * our connection lives). */
static void shm_map(struct proxy_cache *c)
{
	struct stat st;
	int fd = open(c->shm_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size >= WAL_HDR * 2) {
		void *p = mmap(NULL, WAL_HDR * 2, PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED)
			c->shm = p;
	}
	close(fd);
}

/* A consistent copy of the header (both copies equal and initialized), or false. */
static bool shm_read(const struct proxy_cache *c, unsigned char out[WAL_HDR])
{
	unsigned char second[WAL_HDR];
	if (!c->shm)
		return false;
	memcpy(out, (const void *)c->shm, WAL_HDR);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	memcpy(second, (const void *)(c->shm + WAL_HDR), WAL_HDR);
	return memcmp(out, second, WAL_HDR) == 0 && out[12] /* isInit */;
}

void proxy_cache_validate(struct proxy_cache *c, struct store *store, uint64_t now_ms)
{
	unsigned char hdr[WAL_HDR];
	int64_t v = -1;
	bool have_hdr = shm_read(c, hdr);

	if (have_hdr && c->hdr_valid && memcmp(hdr, c->hdr, WAL_HDR) == 0 &&
	    now_ms - c->checked_ms < CACHE_RECHECK_MS)
		return; /* nothing was committed since the last full check */
	if (strcmp(store->db->ops->name, "sqlite") != 0 ||
	    db_query(store->db, "PRAGMA data_version", NULL, 0, read_version, &v, NULL) < 0)
		v = -1;
	if (v != c->version || v < 0 || c->keys.n + c->sandboxes.n > CACHE_MAX)
		cache_clear(c);
	c->version = v;
	c->checked_ms = now_ms;
	/* the header read before the pragma: a commit in between moves it again */
	c->hdr_valid = have_hdr && v >= 0;
	if (c->hdr_valid)
		memcpy(c->hdr, hdr, WAL_HDR);
	if (!c->shm && c->shm_path && v >= 0)
		shm_map(c);
}

int proxy_cache_key_get(struct proxy_cache *c, struct sv header, char ns[64])
{
	char buf[256];
	if (c->version < 0 || header.len >= sizeof(buf))
		return -ENOENT;
	memcpy(buf, header.p, header.len);
	buf[header.len] = '\0';
	struct cache_key *k = proxy_map_get(&c->keys, buf);
	if (!k)
		return -ENOENT;
	if (!k->valid)
		return -EACCES;
	memcpy(ns, k->ns, 64);
	return 0;
}

void proxy_cache_key_put(struct proxy_cache *c, struct sv header, const char *ns)
{
	char buf[256];
	if (c->version < 0 || header.len >= sizeof(buf))
		return;
	memcpy(buf, header.p, header.len);
	buf[header.len] = '\0';
	struct cache_key *k = xcalloc(1, sizeof(*k));
	k->valid = ns != NULL;
	if (ns)
		snprintf(k->ns, sizeof(k->ns), "%s", ns);
	free(proxy_map_remove(&c->keys, buf));
	proxy_map_put(&c->keys, buf, k);
}

/* "ns/target", cut at size - 1 bytes like the snprintf it replaces (ns is at most 63 bytes and
 * target at most PROXY_TARGET_MAX, so it never is). */
static void sb_key(char *out, size_t size, const char *target, const char *ns)
{
	size_t n = 0;
	for (const char *parts[] = {ns, "/", target}, **p = parts; p < parts + 3; p++) {
		size_t len = strnlen(*p, size - 1 - n);
		memcpy(out + n, *p, len);
		n += len;
	}
	out[n] = '\0';
}

/* The fields the proxy uses. */
static void rec_copy(struct sandbox_rec *dst, const struct sandbox_rec *src)
{
	memset(dst, 0, sizeof(*dst));
	rec_set(&dst->id, src->id);
	rec_set(&dst->ns, src->ns);
	rec_set(&dst->name, src->name);
	rec_set(&dst->status, src->status);
	rec_set(&dst->exposed_ports, src->exposed_ports);
	rec_set(&dst->executor_id, src->executor_id);
	rec_set(&dst->agent_socket, src->agent_socket);
	rec_set(&dst->ip, src->ip);
	dst->allow_unauth = src->allow_unauth;
	dst->archived_at = src->archived_at;
}

int proxy_cache_sandbox_get(struct proxy_cache *c, const char *target, const char *ns,
                            const struct sandbox_rec **ret)
{
	char key[160];
	if (c->version < 0)
		return -ENOENT;
	sb_key(key, sizeof(key), target, ns);
	struct cache_sb *e = proxy_map_get(&c->sandboxes, key);
	if (!e)
		return -ENOENT;
	*ret = e->found ? &e->rec : NULL;
	return 0;
}

const struct sandbox_rec *proxy_cache_sandbox_put(struct proxy_cache *c, const char *target,
                                                  const char *ns, const struct sandbox_rec *rec)
{
	char key[160];
	if (c->version < 0)
		return NULL;
	sb_key(key, sizeof(key), target, ns);
	struct cache_sb *e = xcalloc(1, sizeof(*e));
	e->found = rec != NULL;
	if (rec)
		rec_copy(&e->rec, rec);
	struct cache_sb *old = proxy_map_remove(&c->sandboxes, key);
	if (old)
		cache_sb_free(old);
	proxy_map_put(&c->sandboxes, key, e);
	return e->found ? &e->rec : NULL;
}
