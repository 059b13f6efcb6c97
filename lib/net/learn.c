/* Learning host-name rules from DNS answers: the addresses an answer gives for a host name of a
 * sandbox's policy (directly or at the end of its CNAME chain) go into that sandbox's allow or
 * deny set for the answer's TTL, under the generation guard so a concurrent policy swap wins. */
#include <errno.h>
#include <string.h>

#include "net/internal.h"

#define LEARN_MAX 32
#define CHAIN_MAX 17

static bool hosts_match(const struct net_host *h, size_t nh, const char **chain, size_t nc)
{
	for (size_t i = 0; i < nh; i++)
		for (size_t j = 0; j < nc; j++)
			if (strcmp(h[i].name, chain[j]) == 0)
				return true;
	return false;
}

/* One attempt against the sandbox's current state; -ENOENT from the guard means "again". */
static int learn_once(const struct net_config *cfg, const char *key, const struct net_learned *l,
                      size_t n, const char **chain, size_t nc, struct hutch_error *err)
{
	struct net_state st = {0};
	struct net_policy p = {0};
	struct net_names names;
	struct nft_batch nb;
	bool allow, deny;
	int r;

	if (net_state_read(cfg, key, &st, NULL) < 0)
		return 0; /* detached meanwhile */
	r = net_policy_parse(st.policy, &p, err);
	allow = r == 0 && hosts_match(p.allow_hosts, p.n_allow_hosts, chain, nc);
	deny = r == 0 && hosts_match(p.deny_hosts, p.n_deny_hosts, chain, nc);
	if (allow || deny) {
		net_names_from_key(cfg, key, &names);
		nft_batch_begin(&nb, net_cfg_table(cfg));
		net_sb_learn(&nb, &names, st.gen, l, allow ? n : 0, l, deny ? n : 0);
		r = nft_batch_commit(&nb, err);
		nft_batch_release(&nb);
		if (r == 0)
			r = (int)n * ((allow ? 1 : 0) + (deny ? 1 : 0));
	}
	net_policy_release(&p);
	net_state_release(&st);
	return r;
}

int net_learn_for_key(const struct net_config *cfg, const char *key, const uint8_t *msg, size_t len,
                      struct hutch_error *err)
{
	static _Thread_local struct dns_msg m;
	uint32_t addrs[LEARN_MAX], ttl;
	struct net_learned l[LEARN_MAX];
	const char *chain[CHAIN_MAX];
	size_t n, nc;
	int r = -ENOENT;

	if (dns_msg_parse(msg, len, &m) < 0 || !dns_is_response(&m) || dns_rcode(&m) != 0 ||
	    !m.qname[0] || m.qtype != DNS_TYPE_A)
		return 0;
	n = dns_answer_addrs(&m, m.qname, addrs, LEARN_MAX, &ttl, chain, CHAIN_MAX, &nc);
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		l[i] = (struct net_learned){addrs[i], net_cfg_ttl_clamp(cfg, ttl)};
	for (int attempt = 0; attempt < 2 && r == -ENOENT; attempt++)
		r = learn_once(cfg, key, l, n, chain, nc, err);
	return r;
}

int net_learn_answer(const struct net_config *cfg, uint32_t src, const uint8_t *msg, size_t len,
                     struct hutch_error *err)
{
	char key[NET_KEY_LEN + 1];

	if (net_addr_owner(cfg, src, key) < 0)
		return 0; /* not a sandbox's address */
	return net_learn_for_key(cfg, key, msg, len, err);
}
