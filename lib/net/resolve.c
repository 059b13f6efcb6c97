/* Resolving a policy's host names when it is applied (attach, PATCH): every name queried at once
 * over one UDP socket, each upstream in turn for the names still open, TCP for a truncated
 * answer. Blocking and bounded (timeout per upstream); runs on the caller's thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "net/internal.h"

#define MAX_ADDRS 32

struct query {
	const struct net_host *host;
	bool deny;
	uint16_t id;
	bool done;
	int rcode; /* of the last answer, -1 none */
	uint32_t addrs[MAX_ADDRS];
	size_t n;
	uint32_t ttl;
};

static struct sockaddr_in upstream_sa(const struct net_upstream *u)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(u->port)};

	sa.sin_addr.s_addr = htonl(u->addr);
	return sa;
}

/* Takes an answer for q: done when it is final (addresses, NXDOMAIN or no A record). */
static void query_answer(struct query *q, const uint8_t *msg, size_t len)
{
	static _Thread_local struct dns_msg m;

	if (dns_msg_parse(msg, len, &m) < 0 || !dns_is_response(&m) ||
	    strcmp(m.qname, q->host->name) != 0)
		return;
	q->rcode = dns_rcode(&m);
	if (q->rcode == 0) {
		q->n = dns_answer_addrs(&m, q->host->name, q->addrs, MAX_ADDRS, &q->ttl, NULL, 0,
		                        NULL);
		q->done = true;
	} else if (q->rcode == DNS_RCODE_NXDOMAIN) {
		q->done = true;
	}
}

static size_t rd_len(const uint8_t l[2])
{
	return (size_t)l[0] << 8 | l[1];
}

static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The same query over TCP, for a truncated UDP answer. */
static void query_tcp(struct query *q, const struct net_upstream *u, unsigned timeout_ms)
{
	struct sockaddr_in sa = upstream_sa(u);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	_cleanup_buf_ struct buf b = BUF_INIT;
	uint8_t len[2], *msg;

	buf_add(&b, "\0\0", 2);
	if (fd < 0 || dns_query_build(&b, q->id, q->host->name, DNS_TYPE_A) < 0)
		return;
	b.data[0] = (char)((b.len - 2) >> 8);
	b.data[1] = (char)(b.len - 2);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write_all(fd, b.data, b.len) < 0 || read_full(fd, len, 2) < 0)
		return;
	msg = xmalloc((size_t)rd_len(len));
	if (read_full(fd, msg, rd_len(len)) > 0)
		query_answer(q, msg, rd_len(len));
	free(msg);
}

static void queries_send(int fd, struct query *qs, size_t n, const struct net_upstream *u)
{
	struct sockaddr_in sa = upstream_sa(u);
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		if (qs[i].done)
			continue;
		random_bytes(&qs[i].id, sizeof(qs[i].id));
		buf_reset(&b);
		if (dns_query_build(&b, qs[i].id, qs[i].host->name, DNS_TYPE_A) == 0)
			sendto(fd, b.data, b.len, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	buf_release(&b);
}

static bool all_done(const struct query *qs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!qs[i].done)
			return false;
	return true;
}

/* Reads answers from upstream u until every query is done or the timeout passes. */
static void answers_read(int fd, struct query *qs, size_t n, const struct net_upstream *u,
                         unsigned timeout_ms)
{
	uint64_t deadline = time_mono_ms() + timeout_ms;
	static _Thread_local uint8_t msg[65536];

	while (!all_done(qs, n)) {
		uint64_t now = time_mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
			return;
		ssize_t len =
		        recvfrom(fd, msg, sizeof(msg), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (len < 12 || from.sin_addr.s_addr != htonl(u->addr) ||
		    from.sin_port != htons(u->port))
			continue;
		uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
		for (size_t i = 0; i < n; i++) {
			if (qs[i].done || qs[i].id != id)
				continue;
			if (msg[2] & 0x02) /* TC: ask again over TCP */
				query_tcp(&qs[i], u, timeout_ms);
			else
				query_answer(&qs[i], msg, (size_t)len);
			break;
		}
	}
}

static int query_error(const struct query *q, struct hutch_error *err)
{
	const char *why = !q->done        ? "no DNS server answered"
	                  : q->rcode == 3 ? "no such domain"
	                                  : "no IPv4 address";

	return hutch_error_api(err, 400, "INVALID_ARGUMENT",
	                       "network.%s[%u]: host name '%s' does not resolve (%s)",
	                       q->deny ? "deny_out" : "allow_out", q->host->index, q->host->name,
	                       why);
}

/* Adds the addresses of q to a learned list, one entry per address with the longest life. */
static void learned_add(const struct net_config *cfg, struct net_learned **v, size_t *n,
                        const struct query *q)
{
	uint32_t t = net_cfg_ttl_clamp(cfg, q->ttl);

	for (size_t i = 0; i < q->n; i++) {
		size_t j;
		for (j = 0; j < *n && (*v)[j].addr != q->addrs[i]; j++)
			;
		if (j < *n) {
			if ((*v)[j].timeout_s < t)
				(*v)[j].timeout_s = t;
			continue;
		}
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		(*v)[(*n)++] = (struct net_learned){q->addrs[i], t};
	}
}

int net_policy_resolve(const struct net_config *cfg, const struct net_policy *p,
                       struct net_resolved *ret, struct hutch_error *err)
{
	size_t n = p->n_allow_hosts + p->n_deny_hosts, nu = 0;
	struct net_upstream ups[NET_MAX_UPSTREAMS];
	_cleanup_free_ struct query *qs = NULL;
	_cleanup_close_ int fd = -1;
	struct net_resolved res = {0};
	int r;

	memset(ret, 0, sizeof(*ret));
	if (n == 0)
		return 0;
	if ((r = net_upstreams_load(cfg, ups, &nu, err)) < 0)
		return r;
	qs = xcalloc(n, sizeof(*qs));
	for (size_t i = 0; i < n; i++) {
		bool deny = i >= p->n_allow_hosts;
		qs[i].host = deny ? &p->deny_hosts[i - p->n_allow_hosts] : &p->allow_hosts[i];
		qs[i].deny = deny;
		qs[i].rcode = -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hutch_error_errno(err, "opening a DNS socket");
	for (size_t u = 0; u < nu && !all_done(qs, n); u++) {
		queries_send(fd, qs, n, &ups[u]);
		answers_read(fd, qs, n, &ups[u], net_cfg_dns_timeout(cfg));
	}
	for (size_t i = 0; i < n; i++)
		if (!qs[i].done || qs[i].n == 0)
			return query_error(&qs[i], err);
	for (size_t i = 0; i < n; i++) {
		if (qs[i].deny)
			learned_add(cfg, &res.deny, &res.n_deny, &qs[i]);
		else
			learned_add(cfg, &res.allow, &res.n_allow, &qs[i]);
	}
	*ret = res;
	return 0;
}
