/* Sandbox networking: a routed veth per sandbox, an address from a pool, NAT, and the egress
 * policy of reference §7 enforced by nftables rules in the host's netns; plus the per-sandbox DNS
 * forwarder that resolves and tracks host-name rules. Never logs; never spawns a program.
 *
 * Host side (see docs/design/network.md):
 *   cfg->bridge (hutch0)   a port-less bridge holding the gateway/resolver address (pool + 1)
 *   <prefix><key> (hv...)  the host end of each sandbox's veth, with a /32 route to its address
 *   table inet <table>     the base chains, one verdict map per direction, and per sandbox two
 *                          chains and five sets (sb_<key>_*), changed only in atomic batches
 *   <state_dir>/sandboxes/<key>.json, <state_dir>/addrs/<a.b.c.d>   what survives a restart
 * <key> is the first 12 characters of the sandbox id.
 *
 * How the executor calls it:
 *   start:    net_init(); net_dns_start(loop) on the executor's libuv loop; after re-adopting
 *             the running sandboxes, net_sandbox_attach() each again (idempotent, no traffic is
 *             interrupted) and net_cleanup_orphans(live ids).
 *   create:   rt_sandbox_create() (which makes the netns), then net_sandbox_attach(id,
 *             sb->netns_path, network_json); on failure rt_sandbox_destroy(). The sandbox's
 *             resolv.conf must name net_resolver_addr() (net_resolv_conf() renders it).
 *   PATCH:    net_sandbox_policy_set(id, network_json); an error with status 400 means the new
 *             policy was rejected (a host name does not resolve) and the old one stays.
 *   delete:   net_sandbox_detach(id), before or after rt_sandbox_destroy(). The veth it retires
 *             is deleted by net_reap(), which the forwarder runs every few seconds.
 *   proxy:    net_sandbox_info(id) gives the address to reach a user port on.
 *   stop:     net_dns_stop(). cfg must stay valid while the forwarder runs.
 * Thread safety: every function but the net_dns_* ones may be called from any thread; calls for
 * the same sandbox id must not overlap. net_dns_* belong to the loop's thread. */
#ifndef HUTCH_NET_H
#define HUTCH_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

struct uv_loop_s;

/* Zero or NULL fields take the default named in the comment. */
struct net_config {
	const char *state_dir; /* lib/net's own state directory (required), e.g.
	                        * /var/lib/hutch/net */
	const char *pool;      /* sandbox addresses, an IPv4 CIDR /8../28 ("10.88.0.0/16"); the
	                        * first address is the gateway and DNS resolver */
	/* The next three default to "hutch0", "hv" and "hutch" for the default pool, and to names
	 * derived from the pool otherwise ("hutch1a2b3c4d", "hXY", "hutch_1a2b3c4d"), so that
	 * executors with different pools share nothing on one host. */
	const char *bridge;               /* host device holding the gateway address */
	const char *ifname_prefix;        /* host veth name prefix, 1-3 characters */
	const char *table;                /* nftables table name, inet family */
	unsigned mtu;                     /* MTU of the bridge and every veth (1500) */
	const char *const *dns_upstreams; /* NULL-terminated "A.B.C.D" or "A.B.C.D:PORT" the
	                                   * forwarder and the resolver ask; NULL = the
	                                   * nameservers of resolv_conf */
	const char *resolv_conf; /* where to find the host's resolvers ("/etc/resolv.conf") */
	unsigned dns_timeout_ms; /* per upstream attempt (1500) */
	uint32_t dns_ttl_min;    /* learned addresses live max(min, min(TTL, max)) s (60) */
	uint32_t dns_ttl_max;    /* (3600) */
};

/* Checks kernel support (veth, bridge, nf_tables expressions used) and prepares the host: the
 * bridge with the gateway address, IPv4 forwarding, the nft table with its base chains and NAT.
 * Idempotent: a second call (or one after a restart) changes nothing that is already right.
 * Errors name the missing feature. */
int net_init(const struct net_config *cfg, struct hutch_error *err);

/* Undoes net_init: detaches every sandbox with state, deletes the nftables table and the
 * bridge, and reaps. IPv4 forwarding stays on (other things may rely on it). For uninstalling,
 * and for tests that give each server its own network. */
int net_host_remove(const struct net_config *cfg, struct hutch_error *err);

/* Connects a sandbox: allocates an address, installs the policy, creates the veth pair with its
 * peer inside the network namespace at netns_path as eth0 (address, default route via the
 * gateway, IPv6 off), in that order so the veth never exists without its rules. policy_json is
 * the normalised network object ({allow_internet_access, allow_out, deny_out}) or NULL/"null"
 * for unrestricted egress. Host names in it are resolved first: one that does not resolve fails
 * the call with status 400 naming the entry, before anything is changed. Idempotent for the same
 * id (after an executor restart): keeps the address and the veth, re-applies the policy without
 * cutting connections it allows. Writes the sandbox's address ("10.88.0.2") to ret_ip. */
int net_sandbox_attach(const struct net_config *cfg, const char *id, const char *netns_path,
                       const char *policy_json, char ret_ip[16], struct hutch_error *err);

/* Replaces the sandbox's policy in one atomic nftables transaction: every packet is judged by
 * either the old or the new policy, never neither. Connections the new policy forbids stop at
 * their next packet (in either direction); allowed ones continue. A host name that does not
 * resolve fails with status 400 and leaves the old policy in place. -ENOENT (404) if the sandbox
 * is not attached. */
int net_sandbox_policy_set(const struct net_config *cfg, const char *id, const char *policy_json,
                           struct hutch_error *err);

/* Checks a policy as attach and policy_set would (its syntax, and that every host name in it
 * resolves) and changes nothing: lets the api answer 400 before it places a sandbox. Blocks for
 * the DNS answers (at most dns_timeout_ms per upstream); returns at once without host names. */
int net_policy_check(const struct net_config *cfg, const char *policy_json,
                     struct hutch_error *err);

/* Disconnects a sandbox: afterwards its chains, sets and map entries, its route, its address and
 * its state are gone, and its veth is down, renamed ("hz...") and waiting for net_reap (deleting
 * a link costs an RCU grace period, 10-20 ms, which detach does not wait for). Idempotent:
 * anything already missing is fine. */
int net_sandbox_detach(const struct net_config *cfg, const char *id, struct hutch_error *err);

/* Deletes every veth that detach retired, in one kernel call (one grace period for all of
 * them). Slow (10-20 ms) but never urgent: the DNS forwarder runs it in the libuv thread pool
 * every few seconds; call it yourself when not running the forwarder. A sandbox's network
 * namespace going away deletes its veth too. */
int net_reap(const struct net_config *cfg, struct hutch_error *err);

/* After a crash or restart: detaches every sandbox that has network state, a veth, nft objects
 * or an address but whose id is not among the n live_ids. Returns how many were removed. */
int net_cleanup_orphans(const struct net_config *cfg, const char *const *live_ids, size_t n,
                        struct hutch_error *err);

/* What lib/net knows about an attached sandbox. */
struct net_sandbox_info {
	char ip[16];   /* its address */
	char veth[16]; /* host end of its veth pair */
	uint32_t gen;  /* policy generation (the conntrack mark of connections it admitted) */
};

/* Fills ret from the sandbox's state; -ENOENT if it is not attached. */
int net_sandbox_info(const struct net_config *cfg, const char *id, struct net_sandbox_info *ret,
                     struct hutch_error *err);

/* The resolver address the sandboxes must use ("10.88.0.1"), written to ret; -EINVAL if the
 * pool is malformed. */
int net_resolver_addr(const struct net_config *cfg, char ret[16]);

/* Appends the sandbox's resolv.conf ("nameserver 10.88.0.1\n") to out. */
int net_resolv_conf(const struct net_config *cfg, struct buf *out);

/* The DNS forwarder: listens on the resolver address, port 53, UDP and TCP; forwards queries
 * from sandboxes to the upstreams; learns the addresses in answers for host names of a
 * sandbox's policy into its sets (before the answer reaches the sandbox); and re-resolves those
 * host names before their addresses expire. Runs on the caller's libuv loop; net_init() must
 * have succeeded. */
struct net_dns;

int net_dns_start(const struct net_config *cfg, struct uv_loop_s *loop, struct net_dns **ret,
                  struct hutch_error *err);

/* Stops serving and frees the forwarder once its handles are closed (run the loop to let them
 * close). Accepts NULL. */
void net_dns_stop(struct net_dns *dns);

/* Counters, for tests and metrics. */
struct net_dns_stats {
	uint64_t queries;   /* queries received (UDP and TCP) */
	uint64_t answered;  /* answers relayed */
	uint64_t failed;    /* SERVFAIL sent after every upstream failed */
	uint64_t dropped;   /* queries refused (malformed, over limits, not from the pool) */
	uint64_t learned;   /* addresses added to a sandbox's sets */
	uint64_t refreshes; /* host names re-resolved by the refresher */
};

void net_dns_stats_get(const struct net_dns *dns, struct net_dns_stats *ret);

#endif
