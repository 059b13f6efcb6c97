/* A small string-keyed hash map (open addressing, linear probing, tombstones) for the proxy's
 * per-target and per-sandbox tables. Keys are copied; values are the caller's. */
#ifndef HUTCH_PROXY_MAP_H
#define HUTCH_PROXY_MAP_H

#include <stddef.h>

struct proxy_map_slot {
	char *key; /* NULL = empty; map_tombstone = deleted */
	void *value;
};

struct proxy_map {
	struct proxy_map_slot *slots;
	size_t cap;  /* 0 or a power of two */
	size_t n;    /* live entries */
	size_t used; /* live entries plus tombstones */
};

#define PROXY_MAP_INIT        \
	{                     \
		NULL, 0, 0, 0 \
	}

/* The value stored under key, or NULL. */
void *proxy_map_get(const struct proxy_map *m, const char *key);
/* Stores value under key (replacing an existing value). */
void proxy_map_put(struct proxy_map *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *proxy_map_remove(struct proxy_map *m, const char *key);
/* Iteration: *pos starts at 0; returns the next live slot or NULL at the end. The map must not
 * grow during iteration; removing the returned entry is allowed. */
struct proxy_map_slot *proxy_map_next(const struct proxy_map *m, size_t *pos);
/* Frees the table and its keys; free_value (may be NULL) is called for each value. */
void proxy_map_release(struct proxy_map *m, void (*free_value)(void *value));

#endif
