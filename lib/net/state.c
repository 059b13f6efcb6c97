/* What lib/net keeps on disk: one state file per sandbox (id, address, policy generation and
 * policy) and one file per allocated address, created with O_EXCL so that two processes never
 * hand out the same address. Not fsynced: both only matter while the sandboxes they describe
 * exist, and a machine crash takes the sandboxes (netns, veths, rules) with it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "net/internal.h"

static char *state_path(const struct net_config *cfg, const char *key, const char *suffix)
{
	return xasprintf("%s/sandboxes/%s%s", cfg->state_dir, key, suffix);
}

static char *addr_path(const struct net_config *cfg, uint32_t ip)
{
	char s[16];

	net_ip_format(ip, s);
	return xasprintf("%s/addrs/%s", cfg->state_dir, s);
}

int net_state_dirs(const struct net_config *cfg, struct hutch_error *err)
{
	_cleanup_free_ char *sb = NULL, *ad = NULL;

	if (!cfg->state_dir || !*cfg->state_dir)
		return hutch_error_set(err, -EINVAL, "net: no state directory configured");
	sb = xasprintf("%s/sandboxes", cfg->state_dir);
	ad = xasprintf("%s/addrs", cfg->state_dir);
	if (mkdir_p(sb, 0700) < 0 || mkdir_p(ad, 0700) < 0)
		return hutch_error_errno(err, "creating %s", cfg->state_dir);
	return 0;
}

void net_state_release(struct net_state *st)
{
	free(st->policy);
	st->policy = NULL;
}

static int state_from_json(json_t *j, struct net_state *st)
{
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *ip = json_string_value(json_object_get(j, "ip"));
	json_t *gen = json_object_get(j, "gen"), *pol = json_object_get(j, "policy");

	if (!id || strlen(id) > NET_MAX_ID || !ip || net_ip_parse(ip, &st->ip) < 0 ||
	    !json_is_integer(gen))
		return -EBADMSG;
	snprintf(st->id, sizeof(st->id), "%s", id);
	st->gen = (uint32_t)json_integer_value(gen);
	st->policy = pol && !json_is_null(pol) ? json_dumps(pol, JSON_COMPACT) : NULL;
	return 0;
}

int net_state_read(const struct net_config *cfg, const char *key, struct net_state *ret,
                   struct hutch_error *err)
{
	_cleanup_free_ char *path = state_path(cfg, key, ".json");
	_cleanup_buf_ struct buf b = BUF_INIT;
	struct net_state st = {0};
	json_t *j;
	int r = read_file(path, 1 << 20, &b);

	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "reading %s", path);
	}
	j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
	r = j ? state_from_json(j, &st) : -EBADMSG;
	json_decref(j);
	if (r < 0)
		return hutch_error_set(err, r, "%s is corrupt", path);
	*ret = st;
	return 0;
}

int net_state_write(const struct net_config *cfg, const char *key, const struct net_state *st,
                    struct hutch_error *err)
{
	_cleanup_free_ char *path = state_path(cfg, key, ".json");
	_cleanup_free_ char *tmp = state_path(cfg, key, ".json.tmp");
	_cleanup_free_ char *text = NULL;
	json_t *pol = st->policy ? json_loads(st->policy, 0, NULL) : json_null();
	char ip[16];
	int fd, r;

	json_t *j;

	net_ip_format(st->ip, ip);
	j = json_pack("{s:s, s:s, s:I, s:o}", "id", st->id, "ip", ip, "gen", (json_int_t)st->gen,
	              "policy", pol ? pol : json_null());
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return hutch_error_errno(err, "creating %s", tmp);
	r = write_all(fd, text, strlen(text));
	close(fd);
	if (r < 0 || rename(tmp, path) < 0) {
		if (r < 0)
			errno = -r;
		r = hutch_error_errno(err, "writing %s", path);
		unlink(tmp);
		return r;
	}
	return 0;
}

void net_state_remove(const struct net_config *cfg, const char *key)
{
	_cleanup_free_ char *path = state_path(cfg, key, ".json");

	unlink(path);
}

int net_state_list(const struct net_config *cfg, int (*cb)(const char *key, void *data), void *data)
{
	_cleanup_free_ char *dir = xasprintf("%s/sandboxes", cfg->state_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (r == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char key[NET_KEY_LEN + 1];
		if (len <= 5 || len - 5 > NET_KEY_LEN || strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(len - 5), de->d_name);
		r = cb(key, data);
	}
	return r;
}

static _Atomic uint32_t alloc_cursor;

int net_addr_alloc(const struct net_config *cfg, const struct net_pool *pool, const char *key,
                   uint32_t *ret, struct hutch_error *err)
{
	uint32_t count = pool->last - pool->first + 1, start = atomic_load(&alloc_cursor);

	if (start == 0) /* first use: start anywhere, so a restart does not reuse fresh addresses */
		random_bytes(&start, sizeof(start));
	for (uint32_t i = 0; i < count; i++) {
		uint32_t ip = pool->first + (start + i) % count;
		_cleanup_free_ char *path = addr_path(cfg, ip);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == EEXIST)
			continue;
		if (fd < 0)
			return hutch_error_errno(err, "allocating an address (%s)", path);
		int r = write_all(fd, key, strlen(key));
		close(fd);
		if (r < 0) {
			unlink(path);
			errno = -r;
			return hutch_error_errno(err, "writing %s", path);
		}
		atomic_store(&alloc_cursor, (start + i + 1) % count ? (start + i + 1) % count : 1);
		*ret = ip;
		return 0;
	}
	return hutch_error_api(err, 503, "NETWORK_POOL_EXHAUSTED",
	                       "no free address left in the sandbox network pool");
}

int net_addr_owner(const struct net_config *cfg, uint32_t ip, char *key)
{
	_cleanup_free_ char *path = addr_path(cfg, ip);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, key, NET_KEY_LEN);
	if (n <= 0)
		return n < 0 ? -errno : -EBADMSG;
	key[n] = '\0';
	return 0;
}

void net_addr_free(const struct net_config *cfg, uint32_t ip, const char *key)
{
	_cleanup_free_ char *path = addr_path(cfg, ip);
	char owner[NET_KEY_LEN + 1];

	if (net_addr_owner(cfg, ip, owner) == 0 && strcmp(owner, key) == 0)
		unlink(path);
}

int net_addr_list(const struct net_config *cfg, int (*cb)(uint32_t ip, const char *key, void *data),
                  void *data)
{
	_cleanup_free_ char *dir = xasprintf("%s/addrs", cfg->state_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (r == 0 && (de = readdir(d))) {
		char key[NET_KEY_LEN + 1];
		uint32_t ip;
		if (net_ip_parse(de->d_name, &ip) < 0)
			continue;
		if (net_addr_owner(cfg, ip, key) < 0)
			key[0] = '\0';
		r = cb(ip, key, data);
	}
	return r;
}
