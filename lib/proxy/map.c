/* The proxy's string-keyed hash map (see map.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "proxy/map.h"

static char tombstone_key;
#define TOMBSTONE (&tombstone_key)

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct proxy_map_slot *find(const struct proxy_map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct proxy_map_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != TOMBSTONE && strcmp(s->key, key) == 0)
			return s;
	}
}

static void insert(struct proxy_map *m, char *key, void *value)
{
	for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct proxy_map_slot *s = &m->slots[i];
		if (!s->key || s->key == TOMBSTONE) {
			if (!s->key)
				m->used++;
			s->key = key;
			s->value = value;
			m->n++;
			return;
		}
	}
}

static void grow(struct proxy_map *m)
{
	struct proxy_map old = *m;
	size_t cap = m->cap ? m->cap : 16;
	while (m->n * 2 + 2 > cap)
		cap *= 2;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->n = 0;
	m->used = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key && old.slots[i].key != TOMBSTONE)
			insert(m, old.slots[i].key, old.slots[i].value);
	free(old.slots);
}

void *proxy_map_get(const struct proxy_map *m, const char *key)
{
	struct proxy_map_slot *s = find(m, key);
	return s ? s->value : NULL;
}

void proxy_map_put(struct proxy_map *m, const char *key, void *value)
{
	struct proxy_map_slot *s = find(m, key);
	if (s) {
		s->value = value;
		return;
	}
	if ((m->used + 1) * 4 > m->cap * 3)
		grow(m);
	insert(m, xstrdup(key), value);
}

void *proxy_map_remove(struct proxy_map *m, const char *key)
{
	struct proxy_map_slot *s = find(m, key);
	if (!s)
		return NULL;
	void *v = s->value;
	free(s->key);
	s->key = TOMBSTONE;
	s->value = NULL;
	m->n--;
	return v;
}

struct proxy_map_slot *proxy_map_next(const struct proxy_map *m, size_t *pos)
{
	for (; *pos < m->cap; (*pos)++) {
		struct proxy_map_slot *s = &m->slots[*pos];
		if (s->key && s->key != TOMBSTONE) {
			(*pos)++;
			return s;
		}
	}
	return NULL;
}

void proxy_map_release(struct proxy_map *m, void (*free_value)(void *value))
{
	for (size_t i = 0; i < m->cap; i++) {
		struct proxy_map_slot *s = &m->slots[i];
		if (!s->key || s->key == TOMBSTONE)
			continue;
		if (free_value)
			free_value(s->value);
		free(s->key);
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
