/* The egress policy model (reference §7) and its compiler: policy JSON to address ranges, host
 * names and a mode, then to the rules of a sandbox's two chains. Pure functions, unit-tested and
 * fuzzed; nftsb.c turns the result into one nftables batch. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "apimodel/apimodel.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "net/internal.h"

const char *const net_map_out = "veth_out";
const char *const net_map_in = "veth_in";
const char *const net_chain_deny = "deny";

static int range_cmp(const void *a, const void *b)
{
	const struct net_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

size_t net_ranges_normalise(struct net_range *r, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), range_cmp);
	for (size_t i = 1; i < n; i++) {
		/* overlapping or adjacent: merge (hi + 1 cannot wrap unless hi is the last address)
		 */
		if (r[out].hi == UINT32_MAX || r[i].lo <= r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

bool net_ranges_contain(const struct net_range *r, size_t n, uint32_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= r[i].lo && addr <= r[i].hi)
			return true;
	return false;
}

void net_policy_release(struct net_policy *p)
{
	free(p->allow);
	free(p->deny);
	free(p->allow_hosts);
	free(p->deny_hosts);
	memset(p, 0, sizeof(*p));
}

void net_resolved_release(struct net_resolved *r)
{
	free(r->allow);
	free(r->deny);
	memset(r, 0, sizeof(*r));
}

/* Splits one list of entries into ranges and host names. */
static int list_parse(json_t *arr, const char *key, struct net_range **ret_r, size_t *ret_nr,
                      struct net_host **ret_h, size_t *ret_nh, struct hutch_error *err)
{
	size_t n = json_array_size(arr), nr = 0, nh = 0, i;
	struct net_range *r = xcalloc(n ? n : 1, sizeof(*r));
	struct net_host *h = xcalloc(n ? n : 1, sizeof(*h));
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		struct netpol_entry e;
		if (netpol_entry_parse(json_string_value(v), json_string_length(v), &e, err) < 0) {
			free(r);
			free(h);
			return hutch_error_wrap(err, "network.%s[%zu]", key, i);
		}
		if (e.kind == NETPOL_HOST) {
			memcpy(h[nh].name, e.host, sizeof(h[nh].name));
			h[nh++].index = (unsigned)i;
		} else {
			uint32_t mask = e.prefix ? ~0u << (32 - e.prefix) : 0;
			r[nr].lo = e.addr & mask;
			r[nr++].hi = (e.addr & mask) | ~mask;
		}
	}
	*ret_nr = net_ranges_normalise(r, nr);
	*ret_r = r;
	*ret_nh = nh;
	*ret_h = h;
	return 0;
}

static int policy_from_json(json_t *net, struct net_policy *p, struct hutch_error *err)
{
	struct buf norm = BUF_INIT;
	json_t *allow, *deny;
	int r;

	/* full validation (types, unknown keys, limits) is apimodel's: one set of rules */
	r = netpol_normalise(net, "network", &norm, err);
	buf_release(&norm);
	if (r < 0)
		return r;
	json_t *aia = json_object_get(net, "allow_internet_access");
	p->internet = !aia || json_is_null(aia) || json_is_true(aia);
	allow = json_object_get(net, "allow_out");
	deny = json_object_get(net, "deny_out");
	p->allow_listed = json_array_size(allow) > 0;
	r = list_parse(allow, "allow_out", &p->allow, &p->n_allow, &p->allow_hosts,
	               &p->n_allow_hosts, err);
	if (r == 0)
		r = list_parse(deny, "deny_out", &p->deny, &p->n_deny, &p->deny_hosts,
		               &p->n_deny_hosts, err);
	return r;
}

int net_policy_parse(const char *json, struct net_policy *ret, struct hutch_error *err)
{
	struct net_policy p = {.internet = true};
	json_error_t jerr;
	json_t *net;
	int r;

	if (!json || !*json || strcmp(json, "null") == 0) {
		*ret = p;
		return 0;
	}
	net = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (!net)
		return hutch_error_api(err, 400, "INVALID_ARGUMENT", "network policy: %s",
		                       jerr.text);
	r = json_is_null(net) ? 0 : policy_from_json(net, &p, err);
	json_decref(net);
	if (r < 0) {
		net_policy_release(&p);
		return r;
	}
	*ret = p;
	return 0;
}

enum net_mode net_policy_mode(const struct net_policy *p)
{
	if (p->allow_listed)
		return NET_MODE_LIST;
	return p->internet ? NET_MODE_ALL : NET_MODE_NONE;
}

bool net_policy_dns(const struct net_policy *p, uint32_t resolver)
{
	if (!p->allow_listed)
		return p->internet;
	return p->internet || net_ranges_contain(p->allow, p->n_allow, resolver);
}

/* ---- rule construction helpers ---- */

static struct nr_match m_addr(bool dst, bool neg, uint32_t addr, int prefix)
{
	return (struct nr_match){
	        .kind = NRM_ADDR, .dst = dst, .neg = neg, .addr = addr, .prefix = prefix};
}

static struct nr_match m_set(bool dst, const char *set)
{
	return (struct nr_match){.kind = NRM_ADDR_SET, .dst = dst, .str = set};
}

static struct nr_match m_kind(enum nr_match_kind kind, uint32_t value)
{
	return (struct nr_match){.kind = kind, .value = value};
}

static struct nr_rule *rule_new(struct nr_rule *rules, size_t *n, enum nr_verdict v)
{
	struct nr_rule *r = &rules[(*n)++];

	BUG_ON(*n > NET_MAX_RULES);
	memset(r, 0, sizeof(*r));
	r->verdict = v;
	if (v == NRV_GOTO)
		r->target = net_chain_deny;
	return r;
}

static void rule_add(struct nr_rule *r, struct nr_match m)
{
	r->m[r->n++] = m;
}

static void rule_mark(struct nr_rule *r, uint32_t gen)
{
	r->set_mark = true;
	r->mark = gen;
}

/* The tail shared by both chains: what the mode lets through, judged on the remote address
 * (daddr going out, saddr coming in). */
static void rules_mode(const struct net_policy *p, const struct net_sb *sb, bool out,
                       struct nr_rule *rules, size_t *n)
{
	enum nr_verdict no = out ? NRV_GOTO : NRV_DROP;
	struct nr_rule *r;

	switch (net_policy_mode(p)) {
	case NET_MODE_ALL:
		rule_mark(rule_new(rules, n, NRV_ACCEPT), sb->gen);
		break;
	case NET_MODE_LIST:
		r = rule_new(rules, n, NRV_ACCEPT);
		rule_add(r, m_set(out, sb->names->allow));
		rule_mark(r, sb->gen);
		r = rule_new(rules, n, NRV_ACCEPT);
		rule_add(r, m_set(out, sb->names->allow_dns));
		rule_mark(r, sb->gen);
		rule_new(rules, n, no);
		break;
	case NET_MODE_NONE:
		rule_new(rules, n, no);
		break;
	}
}

static void rules_dns(const struct net_sb *sb, struct nr_rule *rules, size_t *n)
{
	static const uint8_t protos[] = {IPPROTO_UDP, IPPROTO_TCP};

	for (size_t i = 0; i < 2; i++) {
		struct nr_rule *r = rule_new(rules, n, NRV_ACCEPT);
		rule_add(r, m_addr(true, false, sb->pool->gw, 32));
		rule_add(r, (struct nr_match){.kind = NRM_DPORT, .proto = protos[i], .value = 53});
		rule_mark(r, sb->gen);
	}
}

size_t net_rules_out(const struct net_policy *p, const struct net_sb *sb, struct nr_rule *rules)
{
	size_t n = 0;
	struct nr_rule *r;

	/* not IPv4, or not its own address: spoofed or IPv6, never forwarded */
	r = rule_new(rules, &n, NRV_DROP);
	rule_add(r, (struct nr_match){.kind = NRM_NFPROTO_IPV4, .neg = true});
	rule_add(rule_new(rules, &n, NRV_DROP), m_addr(false, true, sb->ip, 32));
	rule_add(rule_new(rules, &n, NRV_DROP), m_kind(NRM_CT_STATE, CT_BIT_INVALID));
	/* replies on connections the host opened (the proxy reaching a user port) */
	rule_add(rule_new(rules, &n, NRV_ACCEPT), m_kind(NRM_CT_DIR, CT_DIR_REPLY));
	/* connections this policy generation admitted; older ones are judged again below */
	r = rule_new(rules, &n, NRV_ACCEPT);
	rule_add(r, m_kind(NRM_CT_STATE, CT_BIT_ESTABLISHED | CT_BIT_RELATED));
	rule_add(r, m_kind(NRM_CT_MARK, sb->gen));
	/* deny wins, over the resolver too */
	rule_add(rule_new(rules, &n, NRV_GOTO), m_set(true, sb->names->deny));
	rule_add(rule_new(rules, &n, NRV_GOTO), m_set(true, sb->names->deny_dns));
	if (net_policy_dns(p, sb->pool->gw))
		rules_dns(sb, rules, &n);
	/* the host itself (any local, broadcast or multicast address), link-local, other
	 * sandboxes: never, whatever the policy says */
	r = rule_new(rules, &n, NRV_GOTO);
	rule_add(r, (struct nr_match){.kind = NRM_FIB_UNICAST, .neg = true});
	rule_add(rule_new(rules, &n, NRV_GOTO), m_addr(true, false, 0xa9fe0000, 16));
	rule_add(rule_new(rules, &n, NRV_GOTO),
	         m_addr(true, false, sb->pool->net, sb->pool->prefix));
	rules_mode(p, sb, true, rules, &n);
	return n;
}

size_t net_rules_in(const struct net_policy *p, const struct net_sb *sb, struct nr_rule *rules)
{
	size_t n = 0;

	rule_add(rule_new(rules, &n, NRV_DROP), m_kind(NRM_CT_STATE, CT_BIT_INVALID));
	/* nobody but the host opens connections to a sandbox */
	rule_add(rule_new(rules, &n, NRV_DROP), m_kind(NRM_CT_DIR, CT_DIR_ORIGINAL));
	rule_add(rule_new(rules, &n, NRV_ACCEPT), m_kind(NRM_CT_MARK, sb->gen));
	rule_add(rule_new(rules, &n, NRV_DROP), m_set(false, sb->names->deny));
	rule_add(rule_new(rules, &n, NRV_DROP), m_set(false, sb->names->deny_dns));
	rules_mode(p, sb, false, rules, &n);
	return n;
}

void net_base_chains(const struct net_config *cfg, const struct net_pool *pool,
                     struct net_base_chain ret[NET_BASE_CHAINS])
{
	const char *prefix = net_cfg_prefix(cfg);

	memset(ret, 0, sizeof(struct net_base_chain) * NET_BASE_CHAINS);
	ret[0] = (struct net_base_chain){.name = net_chain_deny, .n = 2};
	ret[0].rules[0].verdict = NRV_REJECT_TCP;
	ret[0].rules[0].m[0] = (struct nr_match){.kind = NRM_L4PROTO, .value = IPPROTO_TCP};
	ret[0].rules[0].n = 1;
	ret[0].rules[1].verdict = NRV_REJECT_ICMPX;
	/* every packet from a sandbox veth goes to its chain; a veth without one is dropped */
	ret[1] = (struct net_base_chain){.name = "from_sandbox",
	                                 .type = "filter",
	                                 .hook = "prerouting",
	                                 .priority = -150,
	                                 .n = 2};
	ret[1].rules[0] = (struct nr_rule){.verdict = NRV_VMAP, .target = net_map_out};
	ret[1].rules[1] = (struct nr_rule){.verdict = NRV_DROP, .n = 1};
	ret[1].rules[1].m[0] = (struct nr_match){.kind = NRM_IFNAME, .str = prefix};
	ret[2] = (struct net_base_chain){
	        .name = "to_sandbox", .type = "filter", .hook = "forward", .priority = 0, .n = 2};
	ret[2].rules[0] = (struct nr_rule){.verdict = NRV_VMAP, .dst = true, .target = net_map_in};
	ret[2].rules[1] = (struct nr_rule){.verdict = NRV_DROP, .n = 1};
	ret[2].rules[1].m[0] = (struct nr_match){.kind = NRM_IFNAME, .dst = true, .str = prefix};
	ret[3] = (struct net_base_chain){
	        .name = "nat_out", .type = "nat", .hook = "postrouting", .priority = 100, .n = 1};
	ret[3].rules[0] = (struct nr_rule){.verdict = NRV_MASQ, .n = 2};
	ret[3].rules[0].m[0] = m_addr(false, false, pool->net, pool->prefix);
	ret[3].rules[0].m[1] = m_addr(true, true, pool->net, pool->prefix);
}
