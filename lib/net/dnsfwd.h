/* The DNS forwarder's internals, shared by the server side (dnsfwd.c) and the upstream
 * exchanges (dnsup.c). Everything here runs on the forwarder's loop thread. */
#ifndef HUTCH_NET_DNSFWD_H
#define HUTCH_NET_DNSFWD_H

#include <uv.h>

#include "net/internal.h"

#define DNS_MAX_INFLIGHT   256 /* UDP queries waiting for an upstream, all sandboxes */
#define DNS_MAX_PER_SOURCE 32  /* ... per sandbox address */
#define DNS_MAX_TCP        64  /* TCP connections from sandboxes */
#define DNS_TCP_IDLE_MS    10000

struct uq;
struct tconn;
struct rkey;

struct net_dns {
	const struct net_config *cfg;
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_tcp_t tcp;
	uv_timer_t refresh;
	struct net_upstream ups[NET_MAX_UPSTREAMS];
	size_t n_ups;
	struct net_pool pool;
	struct net_dns_stats stats;
	struct uq *queries; /* UDP queries in flight */
	size_t inflight;
	struct tconn *conns;
	size_t n_conns;
	struct rkey *rkeys; /* refresher: when each sandbox's host names are due */
	size_t n_rkeys;
	uv_work_t reap; /* net_reap in the thread pool, now and then */
	bool reaping;
	int refs; /* owner, open handles, exchanges, connections, the reap */
	bool stopping;
};

typedef void (*upx_cb)(struct net_dns *d, void *data, const uint8_t *ans, size_t len);

/* Sends query (its id is replaced) to the upstreams; cb gets the answer, or NULL when every
 * upstream failed. cb is always called, possibly before upx_start returns. */
void upx_start(struct net_dns *d, const uint8_t *query, size_t len, bool tcp, upx_cb cb,
               void *data);

void net_dns_ref(struct net_dns *d);
void net_dns_unref(struct net_dns *d);

#endif
