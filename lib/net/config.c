/* lib/net configuration: defaults for unset fields, the address pool, the names derived from a
 * sandbox id, and the upstream resolvers. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/cleanup.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "net/internal.h"

#define DEFAULT_POOL "10.88.0.0/16"

/* Names for a pool other than the default: derived from it, so that executors with different
 * pools on one host never share a bridge, a table or a veth prefix (each table's fail-closed
 * rule drops every veth with its prefix). Kept for the life of the process: callers hold the
 * pointers. */
struct derived {
	struct derived *next;
	char pool[32];
	char bridge[16], table[32], prefix[4];
};

static pthread_mutex_t derived_mu = PTHREAD_MUTEX_INITIALIZER;
static struct derived *derived_list;

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static const struct derived *derived_names(const char *pool)
{
	static const char second[] = "abcdefgijklmnopqrstuwxy"; /* not h (hh..), v (hv), z (hz) */
	static const char third[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	struct derived *d;
	uint32_t h = fnv1a(pool);

	pthread_mutex_lock(&derived_mu);
	for (d = derived_list; d && strcmp(d->pool, pool) != 0; d = d->next)
		;
	if (!d) {
		d = xcalloc(1, sizeof(*d));
		snprintf(d->pool, sizeof(d->pool), "%s", pool);
		snprintf(d->bridge, sizeof(d->bridge), "hutch%08x", h);
		snprintf(d->table, sizeof(d->table), "hutch_%08x", h);
		snprintf(d->prefix, sizeof(d->prefix), "h%c%c", second[h % (sizeof(second) - 1)],
		         third[(h >> 8) % (sizeof(third) - 1)]);
		d->next = derived_list;
		derived_list = d;
	}
	pthread_mutex_unlock(&derived_mu);
	return d;
}

static const struct derived *cfg_derived(const struct net_config *cfg)
{
	if (!cfg->pool || !*cfg->pool || strcmp(cfg->pool, DEFAULT_POOL) == 0)
		return NULL;
	return derived_names(cfg->pool);
}

const char *net_cfg_bridge(const struct net_config *cfg)
{
	const struct derived *d;

	if (cfg->bridge && *cfg->bridge)
		return cfg->bridge;
	return (d = cfg_derived(cfg)) ? d->bridge : "hutch0";
}

const char *net_cfg_prefix(const struct net_config *cfg)
{
	const struct derived *d;

	if (cfg->ifname_prefix && *cfg->ifname_prefix)
		return cfg->ifname_prefix;
	return (d = cfg_derived(cfg)) ? d->prefix : "hv";
}

const char *net_cfg_table(const struct net_config *cfg)
{
	const struct derived *d;

	if (cfg->table && *cfg->table)
		return cfg->table;
	return (d = cfg_derived(cfg)) ? d->table : "hutch";
}

unsigned net_cfg_mtu(const struct net_config *cfg)
{
	return cfg->mtu ? cfg->mtu : 1500;
}

unsigned net_cfg_dns_timeout(const struct net_config *cfg)
{
	return cfg->dns_timeout_ms ? cfg->dns_timeout_ms : 1500;
}

uint32_t net_cfg_ttl_clamp(const struct net_config *cfg, uint32_t ttl)
{
	uint32_t lo = cfg->dns_ttl_min ? cfg->dns_ttl_min : 60;
	uint32_t hi = cfg->dns_ttl_max ? cfg->dns_ttl_max : 3600;

	if (hi < lo)
		hi = lo;
	return ttl < lo ? lo : ttl > hi ? hi : ttl;
}

int net_ip_parse(const char *s, uint32_t *ret)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

void net_ip_format(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

int net_pool_parse(const char *s, struct net_pool *ret)
{
	struct sv addr, len;
	uint64_t prefix;
	char a[16];
	uint32_t net, mask;

	if (!s || !sv_split(sv_from(s), '/', &addr, &len) || addr.len >= sizeof(a) ||
	    sv_to_u64(len, 32, &prefix) < 0 || prefix < 8 || prefix > 28)
		return -EINVAL;
	memcpy(a, addr.p, addr.len);
	a[addr.len] = '\0';
	if (net_ip_parse(a, &net) < 0)
		return -EINVAL;
	mask = ~0u << (32 - prefix);
	if (net & ~mask)
		return -EINVAL;
	ret->net = net;
	ret->prefix = (int)prefix;
	ret->gw = net + 1;
	ret->first = net + 2;
	ret->last = (net | ~mask) - 1;
	return 0;
}

int net_cfg_pool(const struct net_config *cfg, struct net_pool *ret, struct hutch_error *err)
{
	const char *s = cfg->pool && *cfg->pool ? cfg->pool : DEFAULT_POOL;

	if (net_pool_parse(s, ret) < 0)
		return hutch_error_set(err, -EINVAL,
		                       "network pool '%s' is not an IPv4 CIDR between /8 and /28",
		                       s);
	return 0;
}

static void names_fill(const struct net_config *cfg, const char *key, struct net_names *n)
{
	snprintf(n->key, sizeof(n->key), "%s", key);
	snprintf(n->veth, sizeof(n->veth), "%s%s", net_cfg_prefix(cfg), n->key);
	snprintf(n->out, sizeof(n->out), "sb_%s_out", n->key);
	snprintf(n->in, sizeof(n->in), "sb_%s_in", n->key);
	snprintf(n->allow, sizeof(n->allow), "sb_%s_allow", n->key);
	snprintf(n->deny, sizeof(n->deny), "sb_%s_deny", n->key);
	snprintf(n->allow_dns, sizeof(n->allow_dns), "sb_%s_allow_dns", n->key);
	snprintf(n->deny_dns, sizeof(n->deny_dns), "sb_%s_deny_dns", n->key);
	snprintf(n->gen, sizeof(n->gen), "sb_%s_gen", n->key);
}

void net_names_from_key(const struct net_config *cfg, const char *key, struct net_names *ret)
{
	names_fill(cfg, key, ret);
}

int net_names_make(const struct net_config *cfg, const char *id, struct net_names *ret,
                   struct hutch_error *err)
{
	size_t len = id ? strlen(id) : 0;
	char key[NET_KEY_LEN + 1];

	if (len == 0 || len > NET_MAX_ID ||
	    strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789") != len)
		return hutch_error_set(err, -EINVAL, "'%s' is not a sandbox id ([a-z0-9], 1-%d)",
		                       id ? id : "", NET_MAX_ID);
	if (strlen(net_cfg_prefix(cfg)) > 3)
		return hutch_error_set(err, -EINVAL, "ifname prefix '%s' is longer than 3",
		                       net_cfg_prefix(cfg));
	snprintf(key, sizeof(key), "%.*s", NET_KEY_LEN, id);
	names_fill(cfg, key, ret);
	return 0;
}

static int upstream_parse(const char *s, struct net_upstream *ret)
{
	struct sv host, port;
	char a[16];
	uint64_t p = 53;

	if (sv_split(sv_from(s), ':', &host, &port) && sv_to_u64(port, 65535, &p) < 0)
		return -EINVAL;
	if (host.len >= sizeof(a) || p == 0)
		return -EINVAL;
	memcpy(a, host.p, host.len);
	a[host.len] = '\0';
	if (net_ip_parse(a, &ret->addr) < 0)
		return -EINVAL;
	ret->port = (uint16_t)p;
	return 0;
}

/* nameserver lines of resolv.conf (IPv4 only: the forwarder speaks IPv4). */
static size_t resolv_conf_upstreams(const char *path, struct net_upstream *ret)
{
	_cleanup_buf_ struct buf b = BUF_INIT;
	size_t n = 0;
	struct sv rest, line;

	if (read_file(path, 1 << 16, &b) < 0)
		return 0;
	rest = sv_make(b.data, b.len);
	while (rest.len && n < NET_MAX_UPSTREAMS) {
		sv_split(rest, '\n', &line, &rest);
		line = sv_trim(line);
		if (!sv_starts_with(line, SV("nameserver")))
			continue;
		line = sv_trim(sv_make(line.p + 10, line.len - 10));
		char a[16];
		if (line.len == 0 || line.len >= sizeof(a))
			continue;
		memcpy(a, line.p, line.len);
		a[line.len] = '\0';
		if (net_ip_parse(a, &ret[n].addr) == 0) {
			ret[n].port = 53;
			n++;
		}
	}
	return n;
}

int net_upstreams_load(const struct net_config *cfg, struct net_upstream *ret, size_t *ret_n,
                       struct hutch_error *err)
{
	size_t n = 0;

	if (cfg->dns_upstreams) {
		for (; cfg->dns_upstreams[n]; n++) {
			if (n == NET_MAX_UPSTREAMS)
				return hutch_error_set(err, -EINVAL, "more than %d DNS upstreams",
				                       NET_MAX_UPSTREAMS);
			if (upstream_parse(cfg->dns_upstreams[n], &ret[n]) < 0)
				return hutch_error_set(err, -EINVAL,
				                       "DNS upstream '%s' is not ADDR or ADDR:PORT",
				                       cfg->dns_upstreams[n]);
		}
	} else {
		const char *path = cfg->resolv_conf ? cfg->resolv_conf : "/etc/resolv.conf";
		n = resolv_conf_upstreams(path, ret);
		if (n == 0)
			return hutch_error_set(err, -ENOENT, "no IPv4 nameserver in %s", path);
	}
	if (n == 0)
		return hutch_error_set(err, -EINVAL, "no DNS upstream configured");
	*ret_n = n;
	return 0;
}

int net_resolver_addr(const struct net_config *cfg, char ret[16])
{
	struct net_pool pool;
	int r = net_cfg_pool(cfg, &pool, NULL);

	if (r < 0)
		return r;
	net_ip_format(pool.gw, ret);
	return 0;
}

int net_resolv_conf(const struct net_config *cfg, struct buf *out)
{
	char ip[16];
	int r = net_resolver_addr(cfg, ip);

	if (r < 0)
		return r;
	buf_printf(out, "# generated by hutch: the sandbox's DNS forwarder\nnameserver %s\n", ip);
	return 0;
}
