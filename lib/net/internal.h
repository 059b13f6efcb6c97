/* lib/net's internal interfaces: configuration defaults and names, the policy model and its
 * compiler, the rule IR with its two back ends (libnftnl expressions and nft listing text),
 * nftables batches, rtnetlink, state files, the DNS codec and the resolvers. */
#ifndef HUTCH_NET_INTERNAL_H
#define HUTCH_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "net/net.h"

/* ---- configuration (config.c) ---- */

#define NET_KEY_LEN       12 /* characters of the id used in names */
#define NET_MAX_ID        64
#define NET_MAX_UPSTREAMS 4
#define NET_RETIRED_GROUP 0x68757463u /* link group of veths waiting for net_reap */

struct net_pool {
	uint32_t net; /* network address, host byte order */
	int prefix;
	uint32_t gw;    /* net + 1: the bridge, gateway and resolver */
	uint32_t first; /* first sandbox address (net + 2) */
	uint32_t last;  /* last sandbox address (broadcast - 1) */
};

/* Every name derived from one sandbox id. */
struct net_names {
	char key[NET_KEY_LEN + 1];
	char veth[16];
	char out[32];       /* chain for packets from the sandbox (prerouting) */
	char in[32];        /* chain for packets forwarded to the sandbox */
	char allow[32];     /* interval set: allow_out addresses and CIDRs */
	char deny[32];      /* interval set: deny_out addresses and CIDRs */
	char allow_dns[32]; /* timeout set: addresses of allow_out host names */
	char deny_dns[32];  /* timeout set: addresses of deny_out host names */
	char gen[32];       /* the current policy generation, the learning guard */
};

struct net_upstream {
	uint32_t addr; /* host byte order */
	uint16_t port;
};

const char *net_cfg_bridge(const struct net_config *cfg);
const char *net_cfg_prefix(const struct net_config *cfg);
const char *net_cfg_table(const struct net_config *cfg);
unsigned net_cfg_mtu(const struct net_config *cfg);
unsigned net_cfg_dns_timeout(const struct net_config *cfg);
/* TTL of a learned address clamped to the configured bounds. */
uint32_t net_cfg_ttl_clamp(const struct net_config *cfg, uint32_t ttl);
int net_cfg_pool(const struct net_config *cfg, struct net_pool *ret, struct hutch_error *err);
/* Parses "A.B.C.D/N" (N in 8..28, host bits zero). */
int net_pool_parse(const char *s, struct net_pool *ret);
/* Checks the id ([a-z0-9], 1..64) and fills ret with the names derived from it. */
int net_names_make(const struct net_config *cfg, const char *id, struct net_names *ret,
                   struct hutch_error *err);
/* Names for a key found on the host (orphan cleanup). */
void net_names_from_key(const struct net_config *cfg, const char *key, struct net_names *ret);
void net_ip_format(uint32_t ip, char out[16]);
int net_ip_parse(const char *s, uint32_t *ret);
/* The upstream resolvers: cfg->dns_upstreams, else the nameservers of resolv.conf. */
int net_upstreams_load(const struct net_config *cfg, struct net_upstream *ret, size_t *ret_n,
                       struct hutch_error *err);

/* ---- policy model and compiler (policy.c) ---- */

struct net_range {
	uint32_t lo, hi; /* inclusive, host byte order */
};

struct net_host {
	char name[254];
	unsigned index; /* position in its list, for messages */
};

struct net_policy {
	bool internet;                  /* allow_internet_access */
	bool allow_listed;              /* allow_out is non-empty: default deny */
	struct net_range *allow, *deny; /* sorted, merged, disjoint */
	size_t n_allow, n_deny;
	struct net_host *allow_hosts, *deny_hosts;
	size_t n_allow_hosts, n_deny_hosts;
};

/* An address learned for a host name, with the lifetime it gets in the kernel set. */
struct net_learned {
	uint32_t addr;
	uint32_t timeout_s;
};

struct net_resolved {
	struct net_learned *allow, *deny;
	size_t n_allow, n_deny;
};

enum net_mode {
	NET_MODE_ALL,  /* everything not denied */
	NET_MODE_LIST, /* only the allow sets */
	NET_MODE_NONE, /* nothing */
};

/* Parses policy JSON (NULL, "" or "null" = unrestricted) into ret; entries go through
 * netpol_entry_parse. Errors carry status 400 and name the entry. */
int net_policy_parse(const char *json, struct net_policy *ret, struct hutch_error *err);
void net_policy_release(struct net_policy *p);
/* Sorts and merges ranges in place; returns the new count. */
size_t net_ranges_normalise(struct net_range *r, size_t n);
bool net_ranges_contain(const struct net_range *r, size_t n, uint32_t addr);
enum net_mode net_policy_mode(const struct net_policy *p);
/* Whether DNS to the resolver is allowed before deny rules are applied (section 7: with
 * allow_out empty, allow_internet_access; else true if allow_internet_access, or the resolver
 * is listed in allow_out). */
bool net_policy_dns(const struct net_policy *p, uint32_t resolver);
void net_resolved_release(struct net_resolved *r);

/* ---- rule IR (rules.c): what the compiler emits; built into libnftnl rules and rendered as
 * nft listing text from the same description ---- */

enum nr_match_kind {
	NRM_NFPROTO_IPV4, /* meta nfproto ipv4 (neg: != ipv4) */
	NRM_ADDR,         /* ip saddr|daddr ADDR[/PREFIX] */
	NRM_ADDR_SET,     /* ip saddr|daddr @SET */
	NRM_CT_STATE,     /* ct state BITS (any of) */
	NRM_CT_DIR,       /* ct direction original|reply */
	NRM_CT_MARK,      /* ct mark VALUE */
	NRM_DPORT,        /* udp|tcp dport VALUE */
	NRM_FIB_UNICAST,  /* fib daddr type unicast (neg: !=) */
	NRM_IFNAME,       /* iifname|oifname "STR*" (prefix) */
	NRM_L4PROTO,      /* meta l4proto VALUE */
};

struct nr_match {
	enum nr_match_kind kind;
	bool neg;
	bool dst;        /* daddr/oifname rather than saddr/iifname */
	uint32_t addr;   /* NRM_ADDR */
	int prefix;      /* NRM_ADDR, 32 = one address */
	const char *str; /* set name, ifname prefix */
	uint32_t value;  /* ct state bits, ct direction, ct mark, port */
	uint8_t proto;   /* NRM_DPORT: IPPROTO_UDP or IPPROTO_TCP */
};

enum nr_verdict {
	NRV_ACCEPT,
	NRV_DROP,
	NRV_GOTO, /* target = chain */
	NRV_VMAP, /* iifname|oifname vmap @target (dst picks oifname) */
	NRV_MASQ,
	NRV_REJECT_TCP,   /* reject with tcp reset */
	NRV_REJECT_ICMPX, /* reject with icmpx admin-prohibited */
};

#define NR_MAX_MATCH 4

struct nr_rule {
	struct nr_match m[NR_MAX_MATCH];
	int n;
	bool set_mark;
	uint32_t mark;
	enum nr_verdict verdict;
	bool dst; /* NRV_VMAP: oifname */
	const char *target;
};

#define CT_BIT_INVALID     1u
#define CT_BIT_ESTABLISHED 2u
#define CT_BIT_RELATED     4u
#define CT_DIR_ORIGINAL    0u
#define CT_DIR_REPLY       1u

/* Appends the rule as `nft list` prints it, without indentation, plus a newline. */
void nr_render(const struct nr_rule *r, struct buf *out);

/* ---- the compiled ruleset (policy.c) ---- */

struct net_sb {
	const struct net_names *names;
	const struct net_pool *pool;
	uint32_t ip;
	uint32_t gen;
};

#define NET_MAX_RULES 24

/* The rules of the sandbox's out chain (packets from it) and in chain (packets forwarded to
 * it); return the count written to rules (at most NET_MAX_RULES). */
size_t net_rules_out(const struct net_policy *p, const struct net_sb *sb, struct nr_rule *rules);
size_t net_rules_in(const struct net_policy *p, const struct net_sb *sb, struct nr_rule *rules);

/* The base chains: what they are and their rules. */
struct net_base_chain {
	const char *name;
	const char *type; /* "filter" or "nat" */
	const char *hook; /* "prerouting", "forward", "postrouting"; NULL = regular chain */
	int priority;
	struct nr_rule rules[3];
	size_t n;
};

#define NET_BASE_CHAINS 4
extern const char *const net_map_out; /* iifname -> goto sb_<key>_out */
extern const char *const net_map_in;  /* oifname -> goto sb_<key>_in */
extern const char *const net_chain_deny;

void net_base_chains(const struct net_config *cfg, const struct net_pool *pool,
                     struct net_base_chain ret[NET_BASE_CHAINS]);

/* Renders what net_sb_apply installs for one sandbox (sets with their elements, then both
 * chains) in nft listing syntax: the unit tests' view of the compiler. */
void net_sb_render(const struct net_policy *p, const struct net_resolved *res,
                   const struct net_sb *sb, struct buf *out);

/* ---- nftables batches (nft.c) ---- */

enum nft_set_kind {
	NFT_SETK_INTERVAL, /* ipv4_addr, flags interval */
	NFT_SETK_TIMEOUT,  /* ipv4_addr, flags timeout */
	NFT_SETK_MARK,     /* mark */
	NFT_SETK_VMAP,     /* ifname : verdict */
};

struct nft_op {
	uint32_t seq;
	char what[96];
};

struct nft_batch_set {
	char name[32];
	uint32_t id;
};

struct nft_batch {
	struct buf b;
	const char *table;
	uint32_t seq, seq_first;
	uint32_t set_id;
	struct nft_op *ops;
	size_t n_ops, cap_ops;
	struct nft_batch_set *sets; /* sets added in this batch, for lookups by id */
	size_t n_sets, cap_sets;
};

struct nftnl_rule;
/* The libnftnl rule for nr in chain; the caller owns it. */
struct nftnl_rule *nr_build(struct nft_batch *nb, const char *chain, const struct nr_rule *nr);
/* The batch-local id of a set added earlier in this batch, 0 if none. */
uint32_t nft_batch_set_id(const struct nft_batch *nb, const char *name);

void nft_batch_begin(struct nft_batch *nb, const char *table);
void nft_batch_release(struct nft_batch *nb);
void nft_batch_table_add(struct nft_batch *nb);
/* Deletes the table and everything in it. */
void nft_batch_table_del(struct nft_batch *nb);
void nft_batch_set_add(struct nft_batch *nb, const char *name, enum nft_set_kind kind);
void nft_batch_set_flush(struct nft_batch *nb, const char *name);
void nft_batch_set_del(struct nft_batch *nb, const char *name);
/* Adds a chain (a base chain when base is set); with excl, failing if it exists. */
void nft_batch_chain_add(struct nft_batch *nb, const struct net_base_chain *base, const char *name,
                         bool excl);
void nft_batch_chain_flush(struct nft_batch *nb, const char *name);
void nft_batch_chain_del(struct nft_batch *nb, const char *name);
void nft_batch_rule_add(struct nft_batch *nb, const char *chain, const struct nr_rule *r);
void nft_batch_ranges_add(struct nft_batch *nb, const char *set, const struct net_range *r,
                          size_t n);
void nft_batch_learned_add(struct nft_batch *nb, const char *set, const struct net_learned *l,
                           size_t n);
void nft_batch_mark_elem(struct nft_batch *nb, const char *set, uint32_t mark, bool del);
void nft_batch_vmap_elem(struct nft_batch *nb, const char *map, const char *ifname,
                         const char *chain, bool del);
/* Sends the batch as one transaction: all of it or nothing. On failure the message names the
 * first operation the kernel refused. */
int nft_batch_commit(struct nft_batch *nb, struct hutch_error *err);

/* Dumps: names of the table's chains / sets, keys of a verdict map. -ENOENT: no such table. */
int nft_list_chains(const char *table, int (*cb)(const char *name, void *data), void *data,
                    struct hutch_error *err);
int nft_list_sets(const char *table, int (*cb)(const char *name, void *data), void *data,
                  struct hutch_error *err);
int nft_list_vmap_keys(const char *table, const char *map, int (*cb)(const char *key, void *data),
                       void *data, struct hutch_error *err);

/* ---- per-sandbox nft objects (nftsb.c) ---- */

/* How much of a sandbox's nft objects a batch may assume. Each name lookup of a set costs the
 * kernel a walk over every set of the table, so batches skip what they can: */
enum net_apply {
	NET_APPLY_NEW,     /* fresh attach: creates everything, fails (-EEXIST) if a chain exists */
	NET_APPLY_REPLACE, /* creates what is missing, empties what exists, fills it again */
	NET_APPLY_SWAP,    /* everything exists (-ENOENT if not): empties and refills it */
};

/* Adds to nb the sandbox's sets and chains, their contents, and the verdict map entries that
 * send its veth's packets there (the entries too are re-added, so all three modes leave the
 * sandbox fully installed). */
void net_sb_apply(struct nft_batch *nb, const struct net_policy *p, const struct net_resolved *res,
                  const struct net_sb *sb, enum net_apply mode);
/* Adds to nb the removal of every nft object of the sandbox. With ensure, valid whether they
 * exist or not (missing ones are created first); without, the batch fails (-ENOENT) unless all
 * of them exist, which costs the kernel half as many lookups. */
void net_sb_remove(struct nft_batch *nb, const struct net_names *names, bool ensure);
/* Adds learned addresses under the generation guard: the batch fails with -ENOENT when the
 * sandbox's generation is no longer gen. */
void net_sb_learn(struct nft_batch *nb, const struct net_names *names, uint32_t gen,
                  const struct net_learned *allow, size_t n_allow, const struct net_learned *deny,
                  size_t n_deny);

/* ---- sandboxes (sandbox.c) ---- */

/* Removes the veth, nft objects, address and state of key, whatever of them exists. */
int net_sandbox_detach_key(const struct net_config *cfg, const char *key, struct hutch_error *err);

/* ---- rtnetlink and namespaces (rtnl.c) ---- */

struct rtnl;

int rtnl_open(struct rtnl **ret, struct hutch_error *err);
/* Opens a socket inside the network namespace netns_fd (the calling thread enters it briefly);
 * with disable_ipv6 set, also sets net.ipv6.conf.default.disable_ipv6 there first. */
int rtnl_open_in(int netns_fd, bool disable_ipv6, struct rtnl **ret, struct hutch_error *err);
void rtnl_close(struct rtnl *r);
int rtnl_link_index(struct rtnl *r, const char *name, int *ret);
/* Creates (or finds) the bridge, sets its MTU, adds addr/prefix and brings it up. */
int rtnl_bridge_ensure(struct rtnl *r, const char *name, unsigned mtu, uint32_t addr, int prefix,
                       struct hutch_error *err);
/* Creates a veth pair: host end `name` here (up), peer `peer_name` in peer_netns_fd (down). */
int rtnl_veth_create(struct rtnl *r, const char *name, const uint8_t mac[6], const char *peer_name,
                     const uint8_t peer_mac[6], int peer_netns_fd, unsigned mtu,
                     struct hutch_error *err);
int rtnl_link_up(struct rtnl *r, int ifindex, struct hutch_error *err);
/* Takes a link out of service at once and cheaply: down (its routes go), renamed "hz..." (its
 * name is free again) and moved to group, for rtnl_group_del to delete later in one go.
 * -ENODEV if there is no such link. */
int rtnl_link_retire(struct rtnl *r, const char *name, uint32_t group);
/* Deletes every link of group with one kernel call: one RCU barrier, however many links. */
int rtnl_group_del(struct rtnl *r, uint32_t group);
/* Deletes a link by name; -ENODEV if there is none. */
int rtnl_link_del(struct rtnl *r, const char *name);
/* Adds (or replaces) a route to dst/prefix via gw (0 = on-link) out of ifindex, src 0 = any. */
int rtnl_route_add(struct rtnl *r, uint32_t dst, int prefix, uint32_t gw, int ifindex, uint32_t src,
                   struct hutch_error *err);
/* Adds addr as a point-to-point address towards peer on ifindex (EEXIST is fine). */
int rtnl_addr_add(struct rtnl *r, int ifindex, uint32_t addr, int prefix, uint32_t peer,
                  struct hutch_error *err);
int rtnl_neigh_add(struct rtnl *r, int ifindex, uint32_t addr, const uint8_t mac[6],
                   struct hutch_error *err);
/* The index of the link holding the IPv4 address addr, 0 if none. */
int rtnl_addr_owner(struct rtnl *r, uint32_t addr, int *ret_index, struct hutch_error *err);
/* Calls cb for every link whose name starts with prefix. */
int rtnl_links_with_prefix(struct rtnl *r, const char *prefix,
                           int (*cb)(const char *name, void *data), void *data,
                           struct hutch_error *err);
/* Writes value to a /proc/sys path in the current netns. */
int net_sysctl_write(const char *path, const char *value);

/* ---- state files and address allocation (state.c) ---- */

struct net_state {
	char id[NET_MAX_ID + 1];
	uint32_t ip;
	uint32_t gen;
	char *policy; /* normalised JSON text, NULL = unrestricted */
};

int net_state_read(const struct net_config *cfg, const char *key, struct net_state *ret,
                   struct hutch_error *err);
int net_state_write(const struct net_config *cfg, const char *key, const struct net_state *st,
                    struct hutch_error *err);
void net_state_remove(const struct net_config *cfg, const char *key);
void net_state_release(struct net_state *st);
int net_state_list(const struct net_config *cfg, int (*cb)(const char *key, void *data),
                   void *data);
/* Allocates a free pool address for key (an O_EXCL file per address). -ENOSPC when full. */
int net_addr_alloc(const struct net_config *cfg, const struct net_pool *pool, const char *key,
                   uint32_t *ret, struct hutch_error *err);
/* The key owning ip, into key[NET_KEY_LEN + 1]; -ENOENT if free. */
int net_addr_owner(const struct net_config *cfg, uint32_t ip, char *key);
/* Frees ip if key owns it. */
void net_addr_free(const struct net_config *cfg, uint32_t ip, const char *key);
int net_addr_list(const struct net_config *cfg, int (*cb)(uint32_t ip, const char *key, void *data),
                  void *data);
int net_state_dirs(const struct net_config *cfg, struct hutch_error *err);

/* ---- DNS messages (dns.c) ---- */

#define DNS_NAME_MAX       253
#define DNS_MAX_RR         64
#define DNS_TYPE_A         1
#define DNS_TYPE_CNAME     5
#define DNS_CLASS_IN       1
#define DNS_RCODE_NXDOMAIN 3

struct dns_rr {
	char name[DNS_NAME_MAX + 1]; /* lower case, no trailing dot; "" = root */
	uint16_t type, class;
	uint32_t ttl;
	uint16_t rdlen;
	size_t rdoff;                  /* offset of the rdata in the message */
	char target[DNS_NAME_MAX + 1]; /* CNAME target */
	uint32_t a;                    /* A address, host byte order */
};

struct dns_msg {
	uint16_t id, flags;
	uint16_t qdcount, ancount;
	char qname[DNS_NAME_MAX + 1];
	uint16_t qtype, qclass;
	struct dns_rr an[DNS_MAX_RR]; /* the answer section's first DNS_MAX_RR records */
	size_t n_an;
};

static inline int dns_rcode(const struct dns_msg *m)
{
	return m->flags & 0xf;
}

static inline bool dns_is_response(const struct dns_msg *m)
{
	return m->flags & 0x8000;
}

/* Parses header, first question and answer records. Names are decompressed with loop and
 * length limits; a name with bytes outside [A-Za-z0-9_-] fails the parse (such names never
 * match a policy host name). Returns 0 or -EBADMSG. */
int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_msg *ret);
/* Collects the A records that answer name: those owned by name or by the end of its CNAME chain.
 * Returns the count (at most max) and the smallest TTL along the way in ret_ttl. The names of
 * the chain (name first) go to chain/ret_n_chain when chain is not NULL. */
size_t dns_answer_addrs(const struct dns_msg *m, const char *name, uint32_t *addrs, size_t max,
                        uint32_t *ret_ttl, const char **chain, size_t max_chain,
                        size_t *ret_n_chain);
/* Appends a recursive query for name/qtype with the given id. -EINVAL for a bad name. */
int dns_query_build(struct buf *out, uint16_t id, const char *name, uint16_t qtype);
/* Rewrites a query (at least 12 bytes) into a SERVFAIL answer in place of the header; returns
 * the length to send (header and question only). */
size_t dns_servfail(uint8_t *msg, size_t len);

/* ---- host-name resolution at apply time (resolve.c) ---- */

/* Resolves every host name of the policy to its A records through the upstreams, all names in
 * parallel, each answer's TTL clamped. A name without addresses fails with status 400 naming the
 * entry. */
int net_policy_resolve(const struct net_config *cfg, const struct net_policy *p,
                       struct net_resolved *ret, struct hutch_error *err);

/* ---- learning (learn.c): shared by the forwarder and the refresher ---- */

/* Given the answer msg to a query of the sandbox at address src, adds the addresses of the
 * sandbox's policy host names it contains to the sandbox's sets (under the generation guard,
 * re-reading the state once if the policy changed). Returns the number of addresses added. */
int net_learn_answer(const struct net_config *cfg, uint32_t src, const uint8_t *msg, size_t len,
                     struct hutch_error *err);
/* Same for an answer obtained by the refresher for the sandbox with key. */
int net_learn_for_key(const struct net_config *cfg, const char *key, const uint8_t *msg, size_t len,
                      struct hutch_error *err);

#endif
