/* nftables transactions built with libnftnl and sent over one netlink socket with libmnl. No
 * ruleset cache is fetched (libnftables does that on every command, which costs O(ruleset) per
 * call: a second per attach at 1000 sandboxes), so every batch costs the same at any scale. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "net/internal.h"

#define MSG_RESERVE 8192

static _Atomic uint32_t seq_counter;

static uint32_t seq_next(void)
{
	uint32_t s = atomic_fetch_add(&seq_counter, 1);

	if (s == 0) { /* first use: start somewhere unlikely to match a stale answer */
		uint32_t t = (uint32_t)time(NULL) << 8;
		atomic_compare_exchange_strong(&seq_counter, &(uint32_t){1}, t);
		s = atomic_fetch_add(&seq_counter, 1);
	}
	return s;
}

void nft_batch_begin(struct nft_batch *nb, const char *table)
{
	memset(nb, 0, sizeof(*nb));
	nb->table = table;
	buf_grow(&nb->b, MSG_RESERVE);
	nb->seq_first = nb->seq = seq_next();
	nftnl_batch_begin(nb->b.data, nb->seq);
	nb->b.len += ((struct nlmsghdr *)nb->b.data)->nlmsg_len;
}

void nft_batch_release(struct nft_batch *nb)
{
	buf_release(&nb->b);
	free(nb->ops);
	free(nb->sets);
	memset(nb, 0, sizeof(*nb));
}

uint32_t nft_batch_set_id(const struct nft_batch *nb, const char *name)
{
	for (size_t i = 0; i < nb->n_sets; i++)
		if (strcmp(nb->sets[i].name, name) == 0)
			return nb->sets[i].id;
	return 0;
}

/* Starts a message with room for reserve bytes of payload; records what it does. */
static struct nlmsghdr *msg_start(struct nft_batch *nb, uint16_t type, uint16_t flags,
                                  size_t reserve, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static struct nlmsghdr *msg_start(struct nft_batch *nb, uint16_t type, uint16_t flags,
                                  size_t reserve, const char *fmt, ...)
{
	struct nft_op *op;
	va_list ap;

	buf_grow(&nb->b, reserve + MSG_RESERVE);
	nb->seq = seq_next();
	if (nb->n_ops == nb->cap_ops) {
		nb->cap_ops = nb->cap_ops ? nb->cap_ops * 2 : 32;
		nb->ops = xreallocarray(nb->ops, nb->cap_ops, sizeof(*nb->ops));
	}
	op = &nb->ops[nb->n_ops++];
	op->seq = nb->seq;
	va_start(ap, fmt);
	vsnprintf(op->what, sizeof(op->what), fmt, ap);
	va_end(ap);
	return nftnl_nlmsg_build_hdr(nb->b.data + nb->b.len, type, NFPROTO_INET, flags | NLM_F_ACK,
	                             nb->seq);
}

static void msg_end(struct nft_batch *nb, struct nlmsghdr *nlh)
{
	nb->b.len += nlh->nlmsg_len;
}

void nft_batch_table_add(struct nft_batch *nb)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh =
	        msg_start(nb, NFT_MSG_NEWTABLE, NLM_F_CREATE, 256, "add table %s", nb->table);

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, nb->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	msg_end(nb, nlh);
}

void nft_batch_table_del(struct nft_batch *nb)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh =
	        msg_start(nb, NFT_MSG_DELTABLE, 0, 256, "delete table %s", nb->table);

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, nb->table);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	msg_end(nb, nlh);
}

static struct nftnl_set *set_new(const struct nft_batch *nb, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t id = nft_batch_set_id(nb, name);

	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, nb->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	if (id)
		nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	return s;
}

/* Key type numbers are nft's datatype ids, so that `nft list` prints the set as declared. */
static void set_declare(struct nftnl_set *s, enum nft_set_kind kind)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
	bool ip = kind == NFT_SETK_INTERVAL || kind == NFT_SETK_TIMEOUT;

	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ip ? 7 : kind == NFT_SETK_MARK ? 19 : 41);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, kind == NFT_SETK_VMAP ? IFNAMSIZ : 4);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS,
	                  kind == NFT_SETK_INTERVAL  ? NFT_SET_INTERVAL
	                  : kind == NFT_SETK_TIMEOUT ? NFT_SET_TIMEOUT
	                  : kind == NFT_SETK_VMAP    ? NFT_SET_MAP
	                                             : 0);
	nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, ip ? 2 : 1);
	if (kind == NFT_SETK_VMAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 16);
		nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER, 0);
	}
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
	                   nftnl_udata_buf_len(ud));
	nftnl_udata_buf_free(ud);
}

void nft_batch_set_add(struct nft_batch *nb, const char *name, enum nft_set_kind kind)
{
	struct nlmsghdr *nlh = msg_start(nb, NFT_MSG_NEWSET, NLM_F_CREATE, 512, "add set %s", name);
	struct nftnl_set *s;

	if (!nft_batch_set_id(nb, name)) {
		if (nb->n_sets == nb->cap_sets) {
			nb->cap_sets = nb->cap_sets ? nb->cap_sets * 2 : 8;
			nb->sets = xreallocarray(nb->sets, nb->cap_sets, sizeof(*nb->sets));
		}
		snprintf(nb->sets[nb->n_sets].name, sizeof(nb->sets[0].name), "%s", name);
		nb->sets[nb->n_sets++].id = ++nb->set_id;
	}
	s = set_new(nb, name);
	set_declare(s, kind);
	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	msg_end(nb, nlh);
}

void nft_batch_set_flush(struct nft_batch *nb, const char *name)
{
	struct nlmsghdr *nlh = msg_start(nb, NFT_MSG_DELSETELEM, 0, 256, "flush set %s", name);
	struct nftnl_set *s = set_new(nb, name);

	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	msg_end(nb, nlh);
}

void nft_batch_set_del(struct nft_batch *nb, const char *name)
{
	struct nlmsghdr *nlh = msg_start(nb, NFT_MSG_DELSET, 0, 256, "delete set %s", name);
	struct nftnl_set *s = set_new(nb, name);

	nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	msg_end(nb, nlh);
}

static uint32_t hook_num(const char *hook)
{
	return strcmp(hook, "prerouting") == 0 ? NF_INET_PRE_ROUTING
	       : strcmp(hook, "forward") == 0  ? NF_INET_FORWARD
	                                       : NF_INET_POST_ROUTING;
}

static struct nftnl_chain *chain_new(const struct nft_batch *nb, const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, nb->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	return c;
}

void nft_batch_chain_add(struct nft_batch *nb, const struct net_base_chain *base, const char *name,
                         bool excl)
{
	const char *n = base ? base->name : name;
	struct nlmsghdr *nlh =
	        msg_start(nb, NFT_MSG_NEWCHAIN, NLM_F_CREATE | (excl ? NLM_F_EXCL : 0), 256,
	                  "add chain %s", n);
	struct nftnl_chain *c = chain_new(nb, n);

	if (base && base->hook) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook_num(base->hook));
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, base->priority);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, base->type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	msg_end(nb, nlh);
}

void nft_batch_chain_flush(struct nft_batch *nb, const char *name)
{
	struct nlmsghdr *nlh = msg_start(nb, NFT_MSG_DELRULE, 0, 256, "flush chain %s", name);
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, nb->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, name);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	msg_end(nb, nlh);
}

void nft_batch_chain_del(struct nft_batch *nb, const char *name)
{
	struct nlmsghdr *nlh = msg_start(nb, NFT_MSG_DELCHAIN, 0, 256, "delete chain %s", name);
	struct nftnl_chain *c = chain_new(nb, name);

	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	msg_end(nb, nlh);
}

void nft_batch_rule_add(struct nft_batch *nb, const char *chain, const struct nr_rule *r)
{
	struct buf text = BUF_INIT;
	struct nlmsghdr *nlh;
	struct nftnl_rule *nr;

	nr_render(r, &text);
	buf_truncate(&text, text.len - 1);
	nlh = msg_start(nb, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, 2048, "%s: %s", chain,
	                buf_cstr(&text));
	buf_release(&text);
	nr = nr_build(nb, chain, r);
	nftnl_rule_nlmsg_build_payload(nlh, nr);
	nftnl_rule_free(nr);
	msg_end(nb, nlh);
}

static void elem_key(struct nftnl_set *s, const void *key, uint32_t len, uint32_t flags,
                     uint64_t timeout_ms)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, len);
	if (flags)
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, flags);
	if (timeout_ms)
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
	nftnl_set_elem_add(s, e);
}

static void elems_send(struct nft_batch *nb, struct nftnl_set *s, bool del, size_t n,
                       const char *set)
{
	struct nlmsghdr *nlh =
	        msg_start(nb, del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM, del ? 0 : NLM_F_CREATE,
	                  256 + n * 96, "%s %zu element(s) %s %s", del ? "delete" : "add", n,
	                  del ? "from" : "to", set);

	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	msg_end(nb, nlh);
}

/* Interval sets take ranges as nft 1.0 sends them: an interval-end element at 0 when the first
 * range does not start there, then a start and an end (hi + 1) element per range. */
void nft_batch_ranges_add(struct nft_batch *nb, const char *set, const struct net_range *r,
                          size_t n)
{
	struct nftnl_set *s;
	uint32_t k;

	if (n == 0)
		return;
	s = set_new(nb, set);
	if (r[0].lo != 0) {
		k = 0;
		elem_key(s, &k, 4, NFT_SET_ELEM_INTERVAL_END, 0);
	}
	for (size_t i = 0; i < n; i++) {
		k = htonl(r[i].lo);
		elem_key(s, &k, 4, 0, 0);
		if (r[i].hi != UINT32_MAX) {
			k = htonl(r[i].hi + 1);
			elem_key(s, &k, 4, NFT_SET_ELEM_INTERVAL_END, 0);
		}
	}
	elems_send(nb, s, false, n * 2 + 1, set);
}

void nft_batch_learned_add(struct nft_batch *nb, const char *set, const struct net_learned *l,
                           size_t n)
{
	struct nftnl_set *s;

	if (n == 0)
		return;
	s = set_new(nb, set);
	for (size_t i = 0; i < n; i++) {
		uint32_t k = htonl(l[i].addr);
		elem_key(s, &k, 4, 0, (uint64_t)l[i].timeout_s * 1000);
	}
	elems_send(nb, s, false, n, set);
}

void nft_batch_mark_elem(struct nft_batch *nb, const char *set, uint32_t mark, bool del)
{
	struct nftnl_set *s = set_new(nb, set);

	elem_key(s, &mark, 4, 0, 0);
	elems_send(nb, s, del, 1, set);
}

void nft_batch_vmap_elem(struct nft_batch *nb, const char *map, const char *ifname,
                         const char *chain, bool del)
{
	struct nftnl_set *s = set_new(nb, map);
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	char key[IFNAMSIZ] = {0};

	snprintf(key, sizeof(key), "%s", ifname);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
	if (!del) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain);
	}
	nftnl_set_elem_add(s, e);
	elems_send(nb, s, del, 1, map);
}

/* ---- sending ---- */

/* One netfilter socket for the process, kept open: closing one waits for the kernel to finish
 * destroying what earlier transactions removed (an RCU grace period, 10-20 ms), which would
 * otherwise be paid by every detach and policy swap. The mutex also keeps batches whole. */
static pthread_mutex_t sock_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mnl_socket *sock_nl;

static int sock_get(struct mnl_socket **ret, struct hutch_error *err)
{
	int size = 4 << 20;

	pthread_mutex_lock(&sock_mu);
	if (!sock_nl) {
		sock_nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
		if (!sock_nl || mnl_socket_bind(sock_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
			int r = hutch_error_errno(err, "opening a netfilter netlink socket");
			if (sock_nl)
				mnl_socket_close(sock_nl);
			sock_nl = NULL;
			pthread_mutex_unlock(&sock_mu);
			return r;
		}
		/* big batches and one ack per message: the defaults are too small */
		setsockopt(mnl_socket_get_fd(sock_nl), SOL_SOCKET, SO_SNDBUFFORCE, &size,
		           sizeof(size));
		setsockopt(mnl_socket_get_fd(sock_nl), SOL_SOCKET, SO_RCVBUFFORCE, &size,
		           sizeof(size));
	}
	*ret = sock_nl;
	return 0;
}

/* Gives the socket back; one that saw a transport error is replaced next time. */
static void sock_put(bool broken)
{
	if (broken) {
		mnl_socket_close(sock_nl);
		sock_nl = NULL;
	}
	pthread_mutex_unlock(&sock_mu);
}

/* Drops whatever an earlier, interrupted exchange left queued on the shared socket. */
static void sock_drain(struct mnl_socket *nl)
{
	static char junk[8192];

	while (recv(mnl_socket_get_fd(nl), junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static const char *op_what(const struct nft_batch *nb, uint32_t seq)
{
	for (size_t i = 0; i < nb->n_ops; i++)
		if (nb->ops[i].seq == seq)
			return nb->ops[i].what;
	return "the batch";
}

/* Reads the acks the kernel queued while processing the batch (synchronously, inside sendto);
 * returns the first error with the operation it belongs to. */
static int acks_read(struct mnl_socket *nl, const struct nft_batch *nb, struct hutch_error *err)
{
	static _Thread_local char rbuf[1 << 16];
	int first = 0;
	uint32_t bad_seq = 0;

	for (;;) {
		ssize_t n = recv(mnl_socket_get_fd(nl), rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return hutch_error_errno(err, "reading nftables acks");
		for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, (int)n);
		     h = mnl_nlmsg_next(h, (int *)&n)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			if (e->error && !first) {
				first = e->error;
				bad_seq = h->nlmsg_seq;
			}
		}
	}
	if (first) {
		errno = -first;
		return hutch_error_errno(err, "nftables refused '%s'", op_what(nb, bad_seq));
	}
	return 0;
}

int nft_batch_commit(struct nft_batch *nb, struct hutch_error *err)
{
	struct mnl_socket *nl;
	struct nlmsghdr *end;
	int r;

	buf_grow(&nb->b, MSG_RESERVE);
	end = nftnl_batch_end(nb->b.data + nb->b.len, seq_next());
	nb->b.len += end->nlmsg_len;
	if ((r = sock_get(&nl, err)) < 0)
		return r;
	sock_drain(nl);
	if (mnl_socket_sendto(nl, nb->b.data, nb->b.len) < 0) {
		r = hutch_error_errno(err, "sending an nftables batch");
		sock_put(true);
		return r;
	}
	r = acks_read(nl, nb, err);
	sock_put(false);
	return r;
}

/* ---- dumps ---- */

struct dump {
	int (*cb)(const char *name, void *data);
	void *data;
	const char *table; /* chain and set dumps cover every table of the family */
	int kind;          /* 0 chain, 1 set, 2 element keys */
	int stop;
};

static int elem_cb(struct nftnl_set_elem *e, void *data)
{
	struct dump *d = data;
	uint32_t len;
	const char *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	char name[IFNAMSIZ + 1] = {0};

	if (!key || d->stop)
		return 0;
	memcpy(name, key, len < IFNAMSIZ ? len : IFNAMSIZ);
	d->stop = d->cb(name, d->data);
	return 0;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;

	if (d->stop)
		return MNL_CB_OK;
	if (d->kind == 0) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		if (nftnl_chain_nlmsg_parse(nlh, c) == 0 &&
		    strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), d->table) == 0)
			d->stop = d->cb(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), d->data);
		nftnl_chain_free(c);
	} else {
		struct nftnl_set *s = nftnl_set_alloc();
		int r = d->kind == 1 ? nftnl_set_nlmsg_parse(nlh, s)
		                     : nftnl_set_elems_nlmsg_parse(nlh, s);
		if (r == 0 && d->kind == 1 &&
		    strcmp(nftnl_set_get_str(s, NFTNL_SET_TABLE), d->table) == 0)
			d->stop = d->cb(nftnl_set_get_str(s, NFTNL_SET_NAME), d->data);
		else if (r == 0)
			nftnl_set_elem_foreach(s, elem_cb, d);
		nftnl_set_free(s);
	}
	return MNL_CB_OK;
}

static struct nlmsghdr *dump_request(char *b, uint16_t type, const char *table, const char *set,
                                     uint32_t seq)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(b, type, NFPROTO_INET, NLM_F_DUMP, seq);

	if (type == NFT_MSG_GETCHAIN) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nftnl_chain_free(c);
		return nlh;
	}
	struct nftnl_set *s = nftnl_set_alloc();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	if (set) {
		nftnl_set_set_str(s, NFTNL_SET_NAME, set);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
	} else {
		nftnl_set_nlmsg_build_payload(nlh, s);
	}
	nftnl_set_free(s);
	return nlh;
}

/* Reads the dump to its end (so the shared socket is clean), feeding every message to d. */
static int dump_read(struct mnl_socket *nl, char *b, size_t size, uint32_t seq, struct dump *d,
                     struct hutch_error *err)
{
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, b, size);
		int r;
		if (n < 0)
			return errno == ENOENT ? -ENOENT
			                       : hutch_error_errno(err, "reading an nftables dump");
		r = mnl_cb_run(b, (size_t)n, seq, mnl_socket_get_portid(nl), dump_cb, d);
		if (r < 0)
			return errno == ENOENT ? -ENOENT : hutch_error_errno(err, "nftables dump");
		if (r == 0)
			return 0;
	}
}

static int dump_run(uint16_t type, const char *table, const char *set, struct dump *d,
                    struct hutch_error *err)
{
	static _Thread_local char b[1 << 16];
	struct mnl_socket *nl;
	uint32_t seq = seq_next();
	struct nlmsghdr *nlh = dump_request(b, type, table, set, seq);
	int r;

	if ((r = sock_get(&nl, err)) < 0)
		return r;
	sock_drain(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		r = hutch_error_errno(err, "sending an nftables dump request");
	else
		r = dump_read(nl, b, sizeof(b), seq, d, err);
	sock_put(r < 0 && r != -ENOENT);
	return r;
}

int nft_list_chains(const char *table, int (*cb)(const char *name, void *data), void *data,
                    struct hutch_error *err)
{
	struct dump d = {cb, data, table, 0, 0};

	return dump_run(NFT_MSG_GETCHAIN, table, NULL, &d, err);
}

int nft_list_sets(const char *table, int (*cb)(const char *name, void *data), void *data,
                  struct hutch_error *err)
{
	struct dump d = {cb, data, table, 1, 0};

	return dump_run(NFT_MSG_GETSET, table, NULL, &d, err);
}

int nft_list_vmap_keys(const char *table, const char *map, int (*cb)(const char *key, void *data),
                       void *data, struct hutch_error *err)
{
	struct dump d = {cb, data, table, 2, 0};

	return dump_run(NFT_MSG_GETSETELEM, table, map, &d, err);
}
