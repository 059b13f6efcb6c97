/* Host-wide setup and cleanup: net_init (feature checks, bridge, forwarding, the base table) and
 * net_cleanup_orphans (whatever belongs to no live sandbox after a crash or restart). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/xalloc.h"
#include "net/internal.h"

/* Every expression the sandbox chains use, checked once by installing a throwaway sandbox's
 * objects and removing them in the same transaction: the kernel validates them on the way. */
static void probe_add(struct nft_batch *nb, const struct net_config *cfg,
                      const struct net_pool *pool)
{
	static const struct net_range r = {0x0a000000, 0x0a0000ff};
	struct net_names n;
	struct net_policy p = {.internet = true, .allow_listed = true};
	struct net_learned l = {0x0a000001, 60};
	struct net_resolved res = {&l, &l, 1, 1};
	struct net_sb sb = {&n, pool, pool->first, 1};

	p.allow = p.deny = (struct net_range *)&r;
	p.n_allow = p.n_deny = 1;
	net_names_from_key(cfg, "PROBE", &n); /* upper case: never a sandbox's key */
	net_sb_apply(nb, &p, &res, &sb, NET_APPLY_REPLACE);
	net_sb_remove(nb, &n, true);
}

static int table_init(const struct net_config *cfg, const struct net_pool *pool,
                      struct hutch_error *err)
{
	struct net_base_chain base[NET_BASE_CHAINS];
	struct nft_batch nb;
	int r;

	net_base_chains(cfg, pool, base);
	nft_batch_begin(&nb, net_cfg_table(cfg));
	nft_batch_table_add(&nb);
	nft_batch_set_add(&nb, net_map_out, NFT_SETK_VMAP);
	nft_batch_set_add(&nb, net_map_in, NFT_SETK_VMAP);
	for (size_t i = 0; i < NET_BASE_CHAINS; i++) {
		nft_batch_chain_add(&nb, &base[i], NULL, false);
		nft_batch_chain_flush(&nb, base[i].name);
		for (size_t j = 0; j < base[i].n; j++)
			nft_batch_rule_add(&nb, base[i].name, &base[i].rules[j]);
	}
	probe_add(&nb, cfg, pool);
	r = nft_batch_commit(&nb, err);
	nft_batch_release(&nb);
	if (r < 0)
		return hutch_error_wrap(err,
		                        "setting up nftables table %s (the kernel needs "
		                        "nf_tables with inet tables, conntrack, fib, reject, "
		                        "masquerade and NAT)",
		                        net_cfg_table(cfg));
	return 0;
}

/* A veth pair made and removed, so a kernel without veth says so at start, not at the first
 * sandbox. */
static int veth_probe(struct rtnl *hr, struct hutch_error *err)
{
	static const uint8_t a[6] = {2, 0x68, 0, 0, 0, 1}, b[6] = {2, 0x68, 0, 0, 0, 2};
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int r;

	if (self < 0)
		return hutch_error_errno(err, "opening this thread's network namespace");
	rtnl_link_del(hr, "hutchprobe0");
	r = rtnl_veth_create(hr, "hutchprobe0", a, "hutchprobe1", b, self, 1500, err);
	if (r < 0)
		return hutch_error_wrap(err, "the kernel cannot make veth pairs (CONFIG_VETH)");
	rtnl_link_del(hr, "hutchprobe0");
	return 0;
}

/* Refuses a pool whose gateway address another device already holds: another executor's
 * network (same pool, other bridge) or anything else. Two executors must not share one. */
static int pool_free_check(const struct net_config *cfg, struct rtnl *hr,
                           const struct net_pool *pool, struct hutch_error *err)
{
	char name[IF_NAMESIZE] = "?", gw[16];
	int idx, r;

	if ((r = rtnl_addr_owner(hr, pool->gw, &idx, err)) < 0 || idx == 0)
		return r;
	if (if_indextoname((unsigned)idx, name) && strcmp(name, net_cfg_bridge(cfg)) == 0)
		return 0;
	net_ip_format(pool->gw, gw);
	return hutch_error_api(err, 409, "NETWORK_POOL_IN_USE",
	                       "the network pool's gateway address %s is already on %s (another "
	                       "executor's network?): give this one its own pool (network-cidr)",
	                       gw, name);
}

int net_init(const struct net_config *cfg, struct hutch_error *err)
{
	struct net_pool pool;
	struct rtnl *hr;
	int r;

	if ((r = net_state_dirs(cfg, err)) < 0 || (r = net_cfg_pool(cfg, &pool, err)) < 0)
		return r;
	if ((r = rtnl_open(&hr, err)) < 0)
		return r;
	r = pool_free_check(cfg, hr, &pool, err);
	if (r == 0)
		r = rtnl_bridge_ensure(hr, net_cfg_bridge(cfg), net_cfg_mtu(cfg), pool.gw,
		                       pool.prefix, err);
	if (r == 0)
		r = veth_probe(hr, err);
	rtnl_close(hr);
	if (r < 0)
		return r;
	r = net_sysctl_write("/proc/sys/net/ipv4/ip_forward", "1");
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "enabling IPv4 forwarding");
	}
	return table_init(cfg, &pool, err);
}

/* ---- orphans ---- */

struct keys {
	char (*v)[NET_KEY_LEN + 1];
	size_t n, cap;
	const char *prefix; /* link name prefix */
};

static bool keys_has(const struct keys *k, const char *key)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i], key) == 0)
			return true;
	return false;
}

static void keys_add(struct keys *k, const char *key, size_t len)
{
	char tmp[NET_KEY_LEN + 1];

	if (len == 0 || len > NET_KEY_LEN)
		return;
	memcpy(tmp, key, len);
	tmp[len] = '\0';
	if (strspn(tmp, "abcdefghijklmnopqrstuvwxyz0123456789") != len || keys_has(k, tmp))
		return;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 16;
		k->v = xreallocarray(k->v, k->cap, sizeof(*k->v));
	}
	memcpy(k->v[k->n++], tmp, len + 1);
}

static int state_key_cb(const char *key, void *data)
{
	keys_add(data, key, strlen(key));
	return 0;
}

static int addr_key_cb(uint32_t ip, const char *key, void *data)
{
	keys_add(data, key, strlen(key));
	return 0;
}

static int link_key_cb(const char *name, void *data)
{
	struct keys *k = data;
	size_t pl = strlen(k->prefix);

	keys_add(k, name + pl, strlen(name) - pl);
	return 0;
}

/* "sb_<key>_..." names of chains and sets */
static int nft_key_cb(const char *name, void *data)
{
	const char *end;

	if (strncmp(name, "sb_", 3) == 0 && (end = strchr(name + 3, '_')))
		keys_add(data, name + 3, (size_t)(end - name - 3));
	return 0;
}

static int collect(const struct net_config *cfg, struct keys *all, struct hutch_error *err)
{
	const char *table = net_cfg_table(cfg);
	struct rtnl *hr;
	int r;

	net_state_list(cfg, state_key_cb, all);
	net_addr_list(cfg, addr_key_cb, all);
	if ((r = rtnl_open(&hr, err)) < 0)
		return r;
	all->prefix = net_cfg_prefix(cfg);
	r = rtnl_links_with_prefix(hr, all->prefix, link_key_cb, all, err);
	rtnl_close(hr);
	if (r < 0)
		return r;
	if ((r = nft_list_chains(table, nft_key_cb, all, err)) < 0 && r != -ENOENT)
		return r;
	if ((r = nft_list_sets(table, nft_key_cb, all, err)) < 0 && r != -ENOENT)
		return r;
	all->prefix = net_cfg_prefix(cfg);
	if ((r = nft_list_vmap_keys(table, net_map_out, link_key_cb, all, err)) < 0 && r != -ENOENT)
		return r;
	return 0;
}

int net_cleanup_orphans(const struct net_config *cfg, const char *const *live_ids, size_t n,
                        struct hutch_error *err)
{
	struct keys all = {0}, live = {0};
	int r, removed = 0;

	for (size_t i = 0; i < n; i++) {
		struct net_names nm;
		if (net_names_make(cfg, live_ids[i], &nm, NULL) == 0)
			keys_add(&live, nm.key, strlen(nm.key));
	}
	r = collect(cfg, &all, err);
	for (size_t i = 0; r >= 0 && i < all.n; i++) {
		if (keys_has(&live, all.v[i]))
			continue;
		r = net_sandbox_detach_key(cfg, all.v[i], err);
		removed++;
	}
	free(all.v);
	free(live.v);
	if (r >= 0)
		r = net_reap(cfg, err);
	return r < 0 ? r : removed;
}

int net_host_remove(const struct net_config *cfg, struct hutch_error *err)
{
	struct keys all = {0};
	struct nft_batch nb;
	struct rtnl *hr;
	int r = 0;

	net_state_list(cfg, state_key_cb, &all);
	for (size_t i = 0; r == 0 && i < all.n; i++)
		r = net_sandbox_detach_key(cfg, all.v[i], err);
	free(all.v);
	if (r < 0)
		return r;
	nft_batch_begin(&nb, net_cfg_table(cfg));
	nft_batch_table_add(&nb); /* so that deleting it cannot fail */
	nft_batch_table_del(&nb);
	r = nft_batch_commit(&nb, err);
	nft_batch_release(&nb);
	if (r < 0 || (r = rtnl_open(&hr, err)) < 0)
		return r;
	r = rtnl_link_del(hr, net_cfg_bridge(cfg));
	rtnl_close(hr);
	if (r < 0 && r != -ENODEV) {
		errno = -r;
		return hutch_error_errno(err, "deleting bridge %s", net_cfg_bridge(cfg));
	}
	return net_reap(cfg, err);
}
