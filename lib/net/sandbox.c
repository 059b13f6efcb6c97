/* Attaching, re-policing and detaching one sandbox: the order of the steps is what keeps a veth
 * from ever carrying traffic without its rules (rules first on attach, veth first on detach). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "net/internal.h"

/* Everything one operation on a sandbox needs. */
struct op {
	const struct net_config *cfg;
	struct net_names names;
	struct net_pool pool;
	struct net_policy policy;
	struct net_resolved res;
	struct net_state st;
	struct hutch_error *err;
};

static void op_release(struct op *o)
{
	net_policy_release(&o->policy);
	net_resolved_release(&o->res);
	net_state_release(&o->st);
}

static int op_prepare(struct op *o, const struct net_config *cfg, const char *id,
                      const char *policy_json, struct hutch_error *err)
{
	int r;

	memset(o, 0, sizeof(*o));
	o->cfg = cfg;
	o->err = err;
	if ((r = net_names_make(cfg, id, &o->names, err)) < 0 ||
	    (r = net_cfg_pool(cfg, &o->pool, err)) < 0 || (r = net_state_dirs(cfg, err)) < 0)
		return r;
	if ((r = net_policy_parse(policy_json, &o->policy, err)) < 0)
		return r;
	/* resolve before anything changes: an unresolvable name leaves everything as it was */
	return net_policy_resolve(cfg, &o->policy, &o->res, err);
}

/* Takes the sandbox's veth out of service and removes its nft objects; the state and address
 * stay with the caller. Deleting a link makes the kernel wait for an RCU grace period (10-20
 * ms), so the veth is only retired here (down, renamed, grouped) and deleted by net_reap. */
static int teardown(const struct net_config *cfg, const struct net_names *n,
                    struct hutch_error *err)
{
	struct nft_batch nb;
	struct rtnl *hr;
	int r;

	if ((r = rtnl_open(&hr, err)) < 0)
		return r;
	r = rtnl_link_retire(hr, n->veth, NET_RETIRED_GROUP);
	rtnl_close(hr);
	if (r < 0 && r != -ENODEV) {
		errno = -r;
		return hutch_error_errno(err, "retiring veth %s", n->veth);
	}
	for (int ensure = 0; ensure < 2; ensure++) { /* the cheap batch, then the safe one */
		hutch_error_clear(err);
		nft_batch_begin(&nb, net_cfg_table(cfg));
		net_sb_remove(&nb, n, ensure);
		r = nft_batch_commit(&nb, err);
		nft_batch_release(&nb);
		if (r == 0)
			return 0;
	}
	return hutch_error_wrap(err, "removing the network rules of %s", n->key);
}

static int apply_batch(struct op *o, enum net_apply mode)
{
	struct nft_batch nb;
	struct net_sb sb = {&o->names, &o->pool, o->st.ip, o->st.gen};
	int r;

	nft_batch_begin(&nb, net_cfg_table(o->cfg));
	net_sb_apply(&nb, &o->policy, &o->res, &sb, mode);
	r = nft_batch_commit(&nb, o->err);
	nft_batch_release(&nb);
	return r;
}

/* The cheap batch for the expected case first; whatever it cannot assume (leftovers of a
 * crash, objects removed behind our back) falls back to the batch that assumes nothing. */
static int op_commit_policy(struct op *o, enum net_apply mode)
{
	int r = apply_batch(o, mode);

	if (r < 0 && mode != NET_APPLY_REPLACE) {
		hutch_error_clear(o->err);
		r = apply_batch(o, NET_APPLY_REPLACE);
	}
	return r < 0 ? hutch_error_wrap(o->err, "installing the network policy") : 0;
}

static uint32_t gen_next(uint32_t gen)
{
	return gen + 1 ? gen + 1 : 1;
}

/* Deterministic MACs (locally administered) so a re-attach can redo the neighbour entries. */
static void mac_for(uint32_t ip, bool host, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = host ? 0x68 : 0x73;
	mac[2] = (uint8_t)(ip >> 24);
	mac[3] = (uint8_t)(ip >> 16);
	mac[4] = (uint8_t)(ip >> 8);
	mac[5] = (uint8_t)ip;
}

/* eth0 inside: address towards the gateway, the gateway's MAC, the default route. */
static int link_sandbox_side(struct op *o, struct rtnl *sr)
{
	uint8_t hmac[6];
	int idx, r;

	mac_for(o->st.ip, true, hmac);
	if ((r = rtnl_link_index(sr, "eth0", &idx)) < 0) {
		errno = -r;
		return hutch_error_errno(o->err, "finding eth0 in the sandbox");
	}
	if ((r = rtnl_link_up(sr, idx, o->err)) < 0 ||
	    (r = rtnl_addr_add(sr, idx, o->st.ip, 32, o->pool.gw, o->err)) < 0 ||
	    (r = rtnl_neigh_add(sr, idx, o->pool.gw, hmac, o->err)) < 0 ||
	    (r = rtnl_route_add(sr, 0, 0, o->pool.gw, idx, 0, o->err)) < 0)
		return r;
	return 0;
}

static int link_up(struct op *o, int netns_fd, bool *ret_created)
{
	struct rtnl *hr = NULL, *sr = NULL;
	uint8_t hmac[6], pmac[6];
	int idx, r;

	mac_for(o->st.ip, true, hmac);
	mac_for(o->st.ip, false, pmac);
	*ret_created = false;
	if ((r = rtnl_open(&hr, o->err)) < 0)
		return r;
	if ((r = rtnl_open_in(netns_fd, true, &sr, o->err)) < 0)
		goto out;
	if (rtnl_link_index(hr, o->names.veth, &idx) < 0) {
		r = rtnl_veth_create(hr, o->names.veth, hmac, "eth0", pmac, netns_fd,
		                     net_cfg_mtu(o->cfg), o->err);
		if (r == -EEXIST) {
			/* the namespace still holds the eth0 of a retired veth: reap, then retry */
			hutch_error_clear(o->err);
			if ((r = net_reap(o->cfg, o->err)) == 0)
				r = rtnl_veth_create(hr, o->names.veth, hmac, "eth0", pmac,
				                     netns_fd, net_cfg_mtu(o->cfg), o->err);
		}
		if (r < 0)
			goto out;
		*ret_created = true;
		if ((r = rtnl_link_index(hr, o->names.veth, &idx)) < 0) {
			r = hutch_error_set(o->err, r, "veth %s vanished", o->names.veth);
			goto out;
		}
	}
	if ((r = rtnl_route_add(hr, o->st.ip, 32, 0, idx, o->pool.gw, o->err)) < 0 ||
	    (r = rtnl_neigh_add(hr, idx, o->st.ip, pmac, o->err)) < 0)
		goto out;
	r = link_sandbox_side(o, sr);
out:
	rtnl_close(sr);
	rtnl_close(hr);
	return r;
}

struct stale_addrs {
	const struct net_config *cfg;
	const char *key;
	uint32_t keep;
};

static int stale_cb(uint32_t ip, const char *key, void *data)
{
	struct stale_addrs *s = data;

	if (ip != s->keep && strcmp(key, s->key) == 0)
		net_addr_free(s->cfg, ip, key);
	return 0;
}

/* No state but a veth of that name: a crash between the steps of an earlier attach. Its address
 * is not trusted: retire the veth, free every other address of the key and start over. */
static int leftovers_clear(struct op *o)
{
	struct stale_addrs s = {o->cfg, o->names.key, o->st.ip};
	struct rtnl *hr;
	int idx, r;

	if ((r = rtnl_open(&hr, o->err)) < 0)
		return r;
	r = rtnl_link_index(hr, o->names.veth, &idx);
	rtnl_close(hr);
	if (r == 0 && (r = teardown(o->cfg, &o->names, o->err)) < 0)
		return r;
	net_addr_list(o->cfg, stale_cb, &s);
	return 0;
}

static int state_load(struct op *o, const char *id, bool *ret_fresh)
{
	int r = net_state_read(o->cfg, o->names.key, &o->st, o->err);

	*ret_fresh = r == -ENOENT;
	if (r == -ENOENT) {
		snprintf(o->st.id, sizeof(o->st.id), "%s", id);
		random_bytes(&o->st.gen, sizeof(o->st.gen));
		o->st.gen = gen_next(o->st.gen);
		return net_addr_alloc(o->cfg, &o->pool, o->names.key, &o->st.ip, o->err);
	}
	if (r < 0)
		return r;
	if (strcmp(o->st.id, id) != 0)
		return hutch_error_set(o->err, -EEXIST,
		                       "sandbox %s shares the network key %s with sandbox %s", id,
		                       o->names.key, o->st.id);
	o->st.gen = gen_next(o->st.gen);
	return 0;
}

static void policy_keep(struct op *o, const char *policy_json)
{
	free(o->st.policy);
	o->st.policy = policy_json && *policy_json && strcmp(policy_json, "null")
	                       ? strdup(policy_json)
	                       : NULL;
}

int net_sandbox_attach(const struct net_config *cfg, const char *id, const char *netns_path,
                       const char *policy_json, char ret_ip[16], struct hutch_error *err)
{
	struct op o;
	_cleanup_close_ int nsfd = -1;
	bool fresh = false, created = false;
	int r;

	if ((r = op_prepare(&o, cfg, id, policy_json, err)) < 0)
		goto out;
	nsfd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		r = hutch_error_errno(err, "opening network namespace %s", netns_path);
		goto out;
	}
	if ((r = state_load(&o, id, &fresh)) < 0)
		goto out;
	if (fresh && (r = leftovers_clear(&o)) < 0)
		goto fail;
	policy_keep(&o, policy_json);
	/* rules first: the veth must never exist without them */
	r = op_commit_policy(&o, fresh ? NET_APPLY_NEW : NET_APPLY_REPLACE);
	if (r < 0 || (r = net_state_write(cfg, o.names.key, &o.st, err)) < 0)
		goto fail;
	if ((r = link_up(&o, nsfd, &created)) < 0)
		goto fail;
	net_ip_format(o.st.ip, ret_ip);
	goto out;
fail:
	if (fresh) {
		struct hutch_error ignore = HUTCH_ERROR_INIT;
		if (teardown(cfg, &o.names, &ignore) == 0) {
			net_addr_free(cfg, o.st.ip, o.names.key);
			net_state_remove(cfg, o.names.key);
		}
	}
	hutch_error_wrap(err, "attaching the network of %s", id);
out:
	op_release(&o);
	return r;
}

int net_sandbox_policy_set(const struct net_config *cfg, const char *id, const char *policy_json,
                           struct hutch_error *err)
{
	struct op o;
	int r;

	if ((r = op_prepare(&o, cfg, id, policy_json, err)) < 0)
		goto out;
	r = net_state_read(cfg, o.names.key, &o.st, err);
	if (r == -ENOENT || (r == 0 && strcmp(o.st.id, id) != 0)) {
		r = hutch_error_api(err, 404, "SANDBOX_NOT_FOUND",
		                    "sandbox %s has no network attached", id);
		goto out;
	}
	if (r < 0)
		goto out;
	o.st.gen = gen_next(o.st.gen);
	policy_keep(&o, policy_json);
	if ((r = op_commit_policy(&o, NET_APPLY_SWAP)) == 0)
		r = net_state_write(cfg, o.names.key, &o.st, err);
out:
	op_release(&o);
	return r;
}

struct owner_scan {
	const char *key;
	uint32_t ip;
};

static int owner_cb(uint32_t ip, const char *key, void *data)
{
	struct owner_scan *s = data;

	if (strcmp(key, s->key) == 0) {
		s->ip = ip;
		return 1;
	}
	return 0;
}

/* Tears down everything of key, whether or not its state survived. */
int net_sandbox_detach_key(const struct net_config *cfg, const char *key, struct hutch_error *err)
{
	struct net_names n;
	struct net_state st = {0};
	struct owner_scan scan = {key, 0};
	int r;

	net_names_from_key(cfg, key, &n);
	if ((r = teardown(cfg, &n, err)) < 0)
		return r;
	if (net_state_read(cfg, key, &st, NULL) == 0)
		scan.ip = st.ip;
	else
		net_addr_list(cfg, owner_cb, &scan);
	net_state_release(&st);
	if (scan.ip)
		net_addr_free(cfg, scan.ip, key);
	net_state_remove(cfg, key);
	return 0;
}

int net_sandbox_detach(const struct net_config *cfg, const char *id, struct hutch_error *err)
{
	struct net_names n;
	struct net_state st = {0};
	int r;

	if ((r = net_names_make(cfg, id, &n, err)) < 0)
		return r;
	if (net_state_read(cfg, n.key, &st, NULL) == 0 && strcmp(st.id, id) != 0) {
		/* the key belongs to another sandbox: this one was never attached */
		net_state_release(&st);
		return 0;
	}
	net_state_release(&st);
	r = net_sandbox_detach_key(cfg, n.key, err);
	return r < 0 ? hutch_error_wrap(err, "detaching the network of %s", id) : 0;
}

int net_sandbox_info(const struct net_config *cfg, const char *id, struct net_sandbox_info *ret,
                     struct hutch_error *err)
{
	struct net_names n;
	struct net_state st = {0};
	int r;

	if ((r = net_names_make(cfg, id, &n, err)) < 0)
		return r;
	r = net_state_read(cfg, n.key, &st, err);
	if (r == 0 && strcmp(st.id, id) != 0)
		r = -ENOENT;
	if (r == -ENOENT)
		r = hutch_error_api(err, 404, "SANDBOX_NOT_FOUND", "sandbox %s has no network", id);
	if (r == 0) {
		net_ip_format(st.ip, ret->ip);
		snprintf(ret->veth, sizeof(ret->veth), "%s", n.veth);
		ret->gen = st.gen;
	}
	net_state_release(&st);
	return r;
}

int net_reap(const struct net_config *cfg, struct hutch_error *err)
{
	struct rtnl *hr;
	int r;

	(void)cfg;
	if ((r = rtnl_open(&hr, err)) < 0)
		return r;
	r = rtnl_group_del(hr, NET_RETIRED_GROUP);
	rtnl_close(hr);
	if (r < 0 && r != -ENODEV) {
		errno = -r;
		return hutch_error_errno(err, "deleting retired veths");
	}
	return 0;
}

int net_policy_check(const struct net_config *cfg, const char *policy_json, struct hutch_error *err)
{
	struct net_policy p = {0};
	struct net_resolved res = {0};
	int r = net_policy_parse(policy_json, &p, err);

	if (r == 0)
		r = net_policy_resolve(cfg, &p, &res, err);
	net_resolved_release(&res);
	net_policy_release(&p);
	return r;
}
