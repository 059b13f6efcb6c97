/* The rule IR's two back ends: libnftnl expressions (what the kernel gets, encoded the way nft
 * 1.0 encodes the same rule so `nft list` shows it as written) and `nft list` text (what tests
 * and docs show). Both read the same struct nr_rule, so they cannot drift apart. */
#include <arpa/inet.h>
#include <stdio.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>

#include "net/internal.h"

/* ---- text ---- */

static const char *proto_name(uint32_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static void render_addr(struct buf *out, uint32_t addr, int prefix)
{
	char ip[16];

	net_ip_format(addr, ip);
	if (prefix == 32)
		buf_adds(out, ip);
	else
		buf_printf(out, "%s/%d", ip, prefix);
}

static void render_ct_state(struct buf *out, uint32_t bits)
{
	static const char *const names[] = {"invalid", "established", "related"};
	const char *sep = "";

	buf_adds(out, "ct state ");
	for (size_t i = 0; i < 3; i++) {
		if (bits & (1u << i)) {
			buf_printf(out, "%s%s", sep, names[i]);
			sep = ",";
		}
	}
}

static void render_match(const struct nr_match *m, struct buf *out)
{
	const char *ne = m->neg ? "!= " : "";
	const char *dir = m->dst ? "daddr" : "saddr";

	switch (m->kind) {
	case NRM_NFPROTO_IPV4:
		buf_printf(out, "meta nfproto %sipv4", ne);
		break;
	case NRM_ADDR:
		buf_printf(out, "ip %s %s", dir, ne);
		render_addr(out, m->addr, m->prefix);
		break;
	case NRM_ADDR_SET:
		buf_printf(out, "ip %s %s@%s", dir, ne, m->str);
		break;
	case NRM_CT_STATE:
		render_ct_state(out, m->value);
		break;
	case NRM_CT_DIR:
		buf_printf(out, "ct direction %s", m->value == CT_DIR_REPLY ? "reply" : "original");
		break;
	case NRM_CT_MARK:
		buf_printf(out, "ct mark 0x%08x", m->value);
		break;
	case NRM_DPORT:
		buf_printf(out, "%s dport %u", proto_name(m->proto), m->value);
		break;
	case NRM_FIB_UNICAST:
		buf_printf(out, "fib daddr type %sunicast", ne);
		break;
	case NRM_IFNAME:
		buf_printf(out, "%s \"%s*\"", m->dst ? "oifname" : "iifname", m->str);
		break;
	case NRM_L4PROTO:
		buf_printf(out, "meta l4proto %s", proto_name(m->value));
		break;
	}
}

void nr_render(const struct nr_rule *r, struct buf *out)
{
	for (int i = 0; i < r->n; i++) {
		render_match(&r->m[i], out);
		buf_addch(out, ' ');
	}
	if (r->set_mark)
		buf_printf(out, "ct mark set 0x%08x ", r->mark);
	switch (r->verdict) {
	case NRV_ACCEPT:
		buf_adds(out, "accept");
		break;
	case NRV_DROP:
		buf_adds(out, "drop");
		break;
	case NRV_GOTO:
		buf_printf(out, "goto %s", r->target);
		break;
	case NRV_VMAP:
		buf_printf(out, "%s vmap @%s", r->dst ? "oifname" : "iifname", r->target);
		break;
	case NRV_MASQ:
		buf_adds(out, "masquerade");
		break;
	case NRV_REJECT_TCP:
		buf_adds(out, "reject with tcp reset");
		break;
	case NRV_REJECT_ICMPX:
		buf_adds(out, "reject with icmpx admin-prohibited");
		break;
	}
	buf_addch(out, '\n');
}

/* ---- libnftnl ---- */

static void e_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	nftnl_rule_add_expr(r, e);
}

static void e_meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	e_add(r, e);
}

static void e_cmp(struct nftnl_rule *r, bool neg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, neg ? NFT_CMP_NEQ : NFT_CMP_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	e_add(r, e);
}

static void e_cmp_u8(struct nftnl_rule *r, bool neg, uint8_t v)
{
	e_cmp(r, neg, &v, 1);
}

static void e_cmp_u32(struct nftnl_rule *r, bool neg, uint32_t v)
{
	e_cmp(r, neg, &v, 4);
}

static void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	e_add(r, e);
}

static void e_bitwise(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	uint8_t zero[16] = {0};

	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	e_add(r, e);
}

static void e_ct(struct nftnl_rule *r, uint32_t key, bool set)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, set ? NFTNL_EXPR_CT_SREG : NFTNL_EXPR_CT_DREG, NFT_REG_1);
	e_add(r, e);
}

static void e_lookup(struct nft_batch *nb, struct nftnl_rule *r, const char *set, bool neg,
                     bool vmap)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	uint32_t id = nft_batch_set_id(nb, set);

	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	if (id)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
	if (vmap)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	if (neg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	e_add(r, e);
}

static void e_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	e_add(r, e);
}

static void e_set_mark(struct nftnl_rule *r, uint32_t mark)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &mark, sizeof(mark));
	e_add(r, e);
	e_ct(r, NFT_CT_MARK, true);
}

static void e_simple(struct nftnl_rule *r, const char *name, uint32_t type, uint32_t code)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (strcmp(name, "reject") == 0) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
		nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, (uint8_t)code);
	}
	e_add(r, e);
}

/* ip saddr|daddr ADDR/PREFIX, encoded as nft does: a shorter load when the prefix is whole
 * bytes, a mask otherwise. */
static void build_addr(struct nftnl_rule *r, const struct nr_match *m)
{
	uint32_t mask = m->prefix ? ~0u << (32 - m->prefix) : 0;
	uint32_t be = htonl(m->addr & mask), bmask = htonl(mask);
	uint32_t len = m->prefix % 8 == 0 ? (uint32_t)m->prefix / 8 : 4;

	e_meta(r, NFT_META_NFPROTO);
	e_cmp_u8(r, false, NFPROTO_IPV4);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, m->dst ? 16 : 12, len);
	if (m->prefix % 8)
		e_bitwise(r, &bmask, 4);
	e_cmp(r, m->neg, &be, len);
}

static void build_match(struct nft_batch *nb, struct nftnl_rule *r, const struct nr_match *m)
{
	uint32_t v;

	switch (m->kind) {
	case NRM_NFPROTO_IPV4:
		e_meta(r, NFT_META_NFPROTO);
		e_cmp_u8(r, m->neg, NFPROTO_IPV4);
		break;
	case NRM_ADDR:
		build_addr(r, m);
		break;
	case NRM_ADDR_SET:
		e_meta(r, NFT_META_NFPROTO);
		e_cmp_u8(r, false, NFPROTO_IPV4);
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, m->dst ? 16 : 12, 4);
		e_lookup(nb, r, m->str, m->neg, false);
		break;
	case NRM_CT_STATE:
		e_ct(r, NFT_CT_STATE, false);
		e_bitwise(r, &m->value, 4);
		e_cmp_u32(r, true, 0);
		break;
	case NRM_CT_DIR:
		e_ct(r, NFT_CT_DIRECTION, false);
		e_cmp_u8(r, false, (uint8_t)m->value);
		break;
	case NRM_CT_MARK:
		e_ct(r, NFT_CT_MARK, false);
		e_cmp_u32(r, false, m->value);
		break;
	case NRM_DPORT:
		e_meta(r, NFT_META_L4PROTO);
		e_cmp_u8(r, false, m->proto);
		e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
		v = htons((uint16_t)m->value);
		e_cmp(r, false, &v, 2);
		break;
	case NRM_FIB_UNICAST: {
		struct nftnl_expr *e = nftnl_expr_alloc("fib");
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		e_add(r, e);
		e_cmp_u32(r, m->neg, RTN_UNICAST);
		break;
	}
	case NRM_IFNAME:
		e_meta(r, m->dst ? NFT_META_OIFNAME : NFT_META_IIFNAME);
		e_cmp(r, m->neg, m->str, (uint32_t)strlen(m->str));
		break;
	case NRM_L4PROTO:
		e_meta(r, NFT_META_L4PROTO);
		e_cmp_u8(r, false, (uint8_t)m->value);
		break;
	}
}

static void build_verdict(struct nft_batch *nb, struct nftnl_rule *r, const struct nr_rule *nr)
{
	switch (nr->verdict) {
	case NRV_ACCEPT:
		e_verdict(r, NF_ACCEPT, NULL);
		break;
	case NRV_DROP:
		e_verdict(r, NF_DROP, NULL);
		break;
	case NRV_GOTO:
		e_verdict(r, NFT_GOTO, nr->target);
		break;
	case NRV_VMAP:
		e_meta(r, nr->dst ? NFT_META_OIFNAME : NFT_META_IIFNAME);
		e_lookup(nb, r, nr->target, false, true);
		break;
	case NRV_MASQ:
		e_simple(r, "masq", 0, 0);
		break;
	case NRV_REJECT_TCP:
		e_simple(r, "reject", NFT_REJECT_TCP_RST, 0);
		break;
	case NRV_REJECT_ICMPX:
		e_simple(r, "reject", NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
		break;
	}
}

struct nftnl_rule *nr_build(struct nft_batch *nb, const char *chain, const struct nr_rule *nr)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, nb->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	for (int i = 0; i < nr->n; i++)
		build_match(nb, r, &nr->m[i]);
	if (nr->set_mark)
		e_set_mark(r, nr->mark);
	build_verdict(nb, r, nr);
	return r;
}
