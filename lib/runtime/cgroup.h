/* Helpers shared by the two cgroup backends (cgroup-v1.c, cgroup-v2.c). */
#ifndef HUTCH_RUNTIME_CGROUP_H
#define HUTCH_RUNTIME_CGROUP_H

#include <stdint.h>

#define RT_CGROUP_ROOT "/sys/fs/cgroup"

/* The v1 hierarchies a sandbox is put in, NULL-terminated. */
extern const char *const rt_cgroup_v1_controllers[];

/* Finds "key N" in a flat-keyed file (memory.events, memory.oom_control). -ENOENT if absent. */
int rt_cgroup_read_key(const char *path, const char *key, uint64_t *ret);
/* Polls path (once a millisecond, at most ms) until its content equals want, or when key is
 * set, until its "key N" value equals want. -ETIMEDOUT otherwise. */
int rt_cgroup_wait_value(const char *path, const char *key, const char *want, unsigned ms);

#endif
