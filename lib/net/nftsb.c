/* One sandbox's nftables objects: what attach and a policy swap put in a batch, what detach
 * takes out, and the guarded additions of learned addresses. */
#include "net/internal.h"

static void sets_ensure(struct nft_batch *nb, const struct net_names *n)
{
	nft_batch_set_add(nb, n->allow, NFT_SETK_INTERVAL);
	nft_batch_set_add(nb, n->deny, NFT_SETK_INTERVAL);
	nft_batch_set_add(nb, n->allow_dns, NFT_SETK_TIMEOUT);
	nft_batch_set_add(nb, n->deny_dns, NFT_SETK_TIMEOUT);
	nft_batch_set_add(nb, n->gen, NFT_SETK_MARK);
}

void net_sb_apply(struct nft_batch *nb, const struct net_policy *p, const struct net_resolved *res,
                  const struct net_sb *sb, enum net_apply mode)
{
	const struct net_names *n = sb->names;
	struct nr_rule rules[NET_MAX_RULES];
	size_t nr;

	if (mode != NET_APPLY_SWAP) {
		sets_ensure(nb, n);
		nft_batch_chain_add(nb, NULL, n->out, mode == NET_APPLY_NEW);
		nft_batch_chain_add(nb, NULL, n->in, mode == NET_APPLY_NEW);
	}
	if (mode != NET_APPLY_NEW) {
		/* the swap: old contents out, new contents in, in the same transaction */
		nft_batch_chain_flush(nb, n->out);
		nft_batch_chain_flush(nb, n->in);
		nft_batch_set_flush(nb, n->allow);
		nft_batch_set_flush(nb, n->deny);
		nft_batch_set_flush(nb, n->allow_dns);
		nft_batch_set_flush(nb, n->deny_dns);
		nft_batch_set_flush(nb, n->gen);
	}
	nft_batch_mark_elem(nb, n->gen, sb->gen, false);
	nft_batch_ranges_add(nb, n->allow, p->allow, p->n_allow);
	nft_batch_ranges_add(nb, n->deny, p->deny, p->n_deny);
	if (res) {
		nft_batch_learned_add(nb, n->allow_dns, res->allow, res->n_allow);
		nft_batch_learned_add(nb, n->deny_dns, res->deny, res->n_deny);
	}
	nr = net_rules_out(p, sb, rules);
	for (size_t i = 0; i < nr; i++)
		nft_batch_rule_add(nb, n->out, &rules[i]);
	nr = net_rules_in(p, sb, rules);
	for (size_t i = 0; i < nr; i++)
		nft_batch_rule_add(nb, n->in, &rules[i]);
	nft_batch_vmap_elem(nb, net_map_out, n->veth, n->out, false);
	nft_batch_vmap_elem(nb, net_map_in, n->veth, n->in, false);
}

void net_sb_remove(struct nft_batch *nb, const struct net_names *n, bool ensure)
{
	if (ensure) {
		/* deleting something missing fails the batch, so first make sure all of it exists
		 * (adding what exists is a no-op), then delete all of it */
		nft_batch_table_add(nb);
		nft_batch_set_add(nb, net_map_out, NFT_SETK_VMAP);
		nft_batch_set_add(nb, net_map_in, NFT_SETK_VMAP);
		sets_ensure(nb, n);
		nft_batch_chain_add(nb, NULL, n->out, false);
		nft_batch_chain_add(nb, NULL, n->in, false);
		nft_batch_vmap_elem(nb, net_map_out, n->veth, n->out, false);
		nft_batch_vmap_elem(nb, net_map_in, n->veth, n->in, false);
	}
	nft_batch_vmap_elem(nb, net_map_out, n->veth, NULL, true);
	nft_batch_vmap_elem(nb, net_map_in, n->veth, NULL, true);
	nft_batch_chain_del(nb, n->out);
	nft_batch_chain_del(nb, n->in);
	nft_batch_set_del(nb, n->allow);
	nft_batch_set_del(nb, n->deny);
	nft_batch_set_del(nb, n->allow_dns);
	nft_batch_set_del(nb, n->deny_dns);
	nft_batch_set_del(nb, n->gen);
}

void net_sb_learn(struct nft_batch *nb, const struct net_names *names, uint32_t gen,
                  const struct net_learned *allow, size_t n_allow, const struct net_learned *deny,
                  size_t n_deny)
{
	/* the guard: deleting an element that a policy swap has replaced fails the whole batch,
	 * so addresses learned under an old policy never reach the new one's sets */
	nft_batch_mark_elem(nb, names->gen, gen, true);
	nft_batch_mark_elem(nb, names->gen, gen, false);
	nft_batch_learned_add(nb, names->allow_dns, allow, n_allow);
	nft_batch_learned_add(nb, names->deny_dns, deny, n_deny);
}

/* ---- text ---- */

static void range_render(const struct net_range *r, struct buf *out)
{
	uint32_t size = r->hi - r->lo; /* one less than the count: no overflow at /0 */
	char lo[16], hi[16];
	int prefix = 32;

	net_ip_format(r->lo, lo);
	while (prefix > 0 && (size >> (32 - prefix)) != 0)
		prefix--;
	if (((uint64_t)size + 1) == ((uint64_t)1 << (32 - prefix)) &&
	    (r->lo & (uint32_t)(((uint64_t)1 << (32 - prefix)) - 1)) == 0) {
		if (prefix == 32)
			buf_adds(out, lo);
		else
			buf_printf(out, "%s/%d", lo, prefix);
		return;
	}
	net_ip_format(r->hi, hi);
	buf_printf(out, "%s-%s", lo, hi);
}

static void set_render(struct buf *out, const char *name, const char *flags,
                       const struct net_range *r, size_t nr, const struct net_learned *l, size_t nl)
{
	buf_printf(out, "set %s {\n\ttype ipv4_addr\n\tflags %s\n", name, flags);
	if (nr + nl) {
		buf_adds(out, "\telements = { ");
		for (size_t i = 0; i < nr; i++) {
			buf_adds(out, i ? ", " : "");
			range_render(&r[i], out);
		}
		for (size_t i = 0; i < nl; i++) {
			char ip[16];
			net_ip_format(l[i].addr, ip);
			buf_printf(out, "%s%s timeout %us", i ? ", " : "", ip, l[i].timeout_s);
		}
		buf_adds(out, " }\n");
	}
	buf_adds(out, "}\n");
}

static void chain_render(struct buf *out, const char *name, const struct nr_rule *rules, size_t n)
{
	buf_printf(out, "chain %s {\n", name);
	for (size_t i = 0; i < n; i++) {
		buf_addch(out, '\t');
		nr_render(&rules[i], out);
	}
	buf_adds(out, "}\n");
}

void net_sb_render(const struct net_policy *p, const struct net_resolved *res,
                   const struct net_sb *sb, struct buf *out)
{
	const struct net_names *n = sb->names;
	struct nr_rule rules[NET_MAX_RULES];
	static const struct net_resolved none;

	if (!res)
		res = &none;
	set_render(out, n->allow, "interval", p->allow, p->n_allow, NULL, 0);
	set_render(out, n->deny, "interval", p->deny, p->n_deny, NULL, 0);
	set_render(out, n->allow_dns, "timeout", NULL, 0, res->allow, res->n_allow);
	set_render(out, n->deny_dns, "timeout", NULL, 0, res->deny, res->n_deny);
	buf_printf(out, "set %s {\n\ttype mark\n\telements = { 0x%08x }\n}\n", n->gen, sb->gen);
	chain_render(out, n->out, rules, net_rules_out(p, sb, rules));
	chain_render(out, n->in, rules, net_rules_in(p, sb, rules));
}
