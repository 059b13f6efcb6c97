/* rtnetlink with libmnl: links (bridge, veth), addresses, routes, neighbours, and sockets opened
 * inside a sandbox's network namespace. The calling thread enters a namespace only for the few
 * system calls that must run there and always comes back. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "net/internal.h"

struct rtnl {
	struct mnl_socket *nl;
	uint32_t seq;
	char buf[16384];
};

static int rtnl_wrap(struct mnl_socket *nl, struct rtnl **ret)
{
	struct rtnl *r;

	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = -errno;
		mnl_socket_close(nl);
		return e;
	}
	r = xcalloc(1, sizeof(*r));
	r->nl = nl;
	r->seq = (uint32_t)time_mono_ns();
	*ret = r;
	return 0;
}

int rtnl_open(struct rtnl **ret, struct hutch_error *err)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	int r;

	if (!nl)
		return hutch_error_errno(err, "opening an rtnetlink socket");
	if ((r = rtnl_wrap(nl, ret)) < 0) {
		errno = -r;
		return hutch_error_errno(err, "binding an rtnetlink socket");
	}
	return 0;
}

void rtnl_close(struct rtnl *r)
{
	if (!r)
		return;
	mnl_socket_close(r->nl);
	free(r);
}

int net_sysctl_write(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return write_all(fd, value, strlen(value));
}

/* Runs in the target namespace: the sysctl and the socket (a socket keeps the namespace it was
 * made in). Nothing here may fail to come back. */
int rtnl_open_in(int netns_fd, bool disable_ipv6, struct rtnl **ret, struct hutch_error *err)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct mnl_socket *nl;
	int r = 0, e;

	if (self < 0)
		return hutch_error_errno(err, "opening this thread's network namespace");
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return hutch_error_errno(err, "entering the sandbox's network namespace");
	if (disable_ipv6) {
		/* devices made from now on (eth0) start with IPv6 off; lo keeps ::1 */
		e = net_sysctl_write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
		if (e < 0 && e != -ENOENT)
			r = e;
	}
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	e = errno;
	if (setns(self, CLONE_NEWNET) < 0)
		fatal("cannot return to the host network namespace: %s", strerror(errno));
	if (!nl)
		r = -e;
	else if (r == 0)
		r = rtnl_wrap(nl, ret);
	else
		mnl_socket_close(nl);
	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "preparing the sandbox's network namespace");
	}
	return 0;
}

static struct nlmsghdr *msg_new(struct rtnl *r, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++r->seq;
	return nlh;
}

static int ack_cb(const struct nlmsghdr *nlh, void *data)
{
	int *ret_index = data;

	if (nlh->nlmsg_type == RTM_NEWLINK && ret_index) {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
		*ret_index = ifi->ifi_index;
	}
	return MNL_CB_OK;
}

/* Sends one request and waits for its answer: 0 or -errno from the kernel. */
static int talk(struct rtnl *r, struct nlmsghdr *nlh, int *ret_index)
{
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(r->nl, r->buf, sizeof(r->buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(r->buf, (size_t)n, seq, mnl_socket_get_portid(r->nl), ack_cb,
		                 ret_index);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

int rtnl_link_index(struct rtnl *r, const char *name, int *ret)
{
	struct nlmsghdr *nlh = msg_new(r, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	int idx = 0, e;

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	e = talk(r, nlh, &idx);
	if (e < 0)
		return e;
	if (idx <= 0)
		return -ENODEV;
	*ret = idx;
	return 0;
}

static struct ifinfomsg *link_msg(struct rtnl *r, uint16_t type, uint16_t flags,
                                  struct nlmsghdr **ret)
{
	struct nlmsghdr *nlh = msg_new(r, type, flags);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	*ret = nlh;
	return ifi;
}

int rtnl_bridge_ensure(struct rtnl *r, const char *name, unsigned mtu, uint32_t addr, int prefix,
                       struct hutch_error *err)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi = link_msg(r, RTM_NEWLINK, NLM_F_CREATE, &nlh);
	struct nlattr *li;
	int e, idx;

	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
	if ((e = talk(r, nlh, NULL)) < 0) {
		errno = -e;
		return hutch_error_errno(err,
		                         "creating bridge %s (kernel without bridge support, or "
		                         "a link of another kind with that name?)",
		                         name);
	}
	if ((e = rtnl_link_index(r, name, &idx)) < 0) {
		errno = -e;
		return hutch_error_errno(err, "finding bridge %s", name);
	}
	return rtnl_addr_add(r, idx, addr, prefix, 0, err);
}

static void peer_put(struct nlmsghdr *nlh, const char *peer_name, const uint8_t mac[6],
                     int netns_fd, unsigned mtu)
{
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO), *data, *peer;
	struct ifinfomsg *pi;

	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pi));
	pi->ifi_family = AF_UNSPEC; /* not up yet: veth refuses that before the pair is linked */
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
}

int rtnl_veth_create(struct rtnl *r, const char *name, const uint8_t mac[6], const char *peer_name,
                     const uint8_t peer_mac[6], int peer_netns_fd, unsigned mtu,
                     struct hutch_error *err)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi = link_msg(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &nlh);
	int e;

	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	peer_put(nlh, peer_name, peer_mac, peer_netns_fd, mtu);
	if ((e = talk(r, nlh, NULL)) < 0) {
		errno = -e;
		return hutch_error_errno(err, "creating veth pair %s/%s", name, peer_name);
	}
	return 0;
}

int rtnl_link_up(struct rtnl *r, int ifindex, struct hutch_error *err)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi = link_msg(r, RTM_NEWLINK, 0, &nlh);
	int e;

	ifi->ifi_index = ifindex;
	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	if ((e = talk(r, nlh, NULL)) < 0) {
		errno = -e;
		return hutch_error_errno(err, "bringing link %d up", ifindex);
	}
	return 0;
}

int rtnl_link_retire(struct rtnl *r, const char *name, uint32_t group)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	char newname[16];
	int idx, e;

	if ((e = rtnl_link_index(r, name, &idx)) < 0)
		return e;
	for (int tries = 0; tries < 4; tries++) {
		uint32_t rnd;
		random_bytes(&rnd, sizeof(rnd));
		snprintf(newname, sizeof(newname), "hz%08x", rnd);
		ifi = link_msg(r, RTM_NEWLINK, 0, &nlh);
		ifi->ifi_index = idx;
		ifi->ifi_change = IFF_UP; /* down: its routes go at once */
		mnl_attr_put_strz(nlh, IFLA_IFNAME, newname);
		mnl_attr_put_u32(nlh, IFLA_GROUP, group);
		if ((e = talk(r, nlh, NULL)) != -EEXIST)
			return e;
	}
	return e;
}

int rtnl_group_del(struct rtnl *r, uint32_t group)
{
	struct nlmsghdr *nlh;

	link_msg(r, RTM_DELLINK, 0, &nlh);
	mnl_attr_put_u32(nlh, IFLA_GROUP, group);
	return talk(r, nlh, NULL);
}

int rtnl_link_del(struct rtnl *r, const char *name)
{
	struct nlmsghdr *nlh;

	link_msg(r, RTM_DELLINK, 0, &nlh);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return talk(r, nlh, NULL);
}

int rtnl_route_add(struct rtnl *r, uint32_t dst, int prefix, uint32_t gw, int ifindex, uint32_t src,
                   struct hutch_error *err)
{
	struct nlmsghdr *nlh = msg_new(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
	struct rtmsg *rt = mnl_nlmsg_put_extra_header(nlh, sizeof(*rt));
	int e;

	rt->rtm_family = AF_INET;
	rt->rtm_dst_len = (unsigned char)prefix;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	if (prefix)
		mnl_attr_put_u32(nlh, RTA_DST, htonl(dst));
	if (gw)
		mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gw));
	if (src)
		mnl_attr_put_u32(nlh, RTA_PREFSRC, htonl(src));
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	if ((e = talk(r, nlh, NULL)) < 0) {
		char ip[16];
		net_ip_format(dst, ip);
		errno = -e;
		return hutch_error_errno(err, "adding a route to %s/%d", ip, prefix);
	}
	return 0;
}

int rtnl_addr_add(struct rtnl *r, int ifindex, uint32_t addr, int prefix, uint32_t peer,
                  struct hutch_error *err)
{
	struct nlmsghdr *nlh = msg_new(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	int e;

	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)ifindex;
	mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(addr));
	mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(peer ? peer : addr));
	if ((e = talk(r, nlh, NULL)) < 0 && e != -EEXIST) {
		char ip[16];
		net_ip_format(addr, ip);
		errno = -e;
		return hutch_error_errno(err, "adding address %s/%d", ip, prefix);
	}
	return 0;
}

int rtnl_neigh_add(struct rtnl *r, int ifindex, uint32_t addr, const uint8_t mac[6],
                   struct hutch_error *err)
{
	struct nlmsghdr *nlh = msg_new(r, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
	struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	int e;

	nd->ndm_family = AF_INET;
	nd->ndm_ifindex = ifindex;
	nd->ndm_state = NUD_PERMANENT;
	mnl_attr_put_u32(nlh, NDA_DST, htonl(addr));
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	if ((e = talk(r, nlh, NULL)) < 0) {
		errno = -e;
		return hutch_error_errno(err, "adding a neighbour entry");
	}
	return 0;
}

struct links_walk {
	const char *prefix;
	int (*cb)(const char *name, void *data);
	void *data;
	int stop;
};

static int link_attr_cb(const struct nlattr *a, void *data)
{
	const char **name = data;

	if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		*name = mnl_attr_get_str(a);
	return MNL_CB_OK;
}

static int links_cb(const struct nlmsghdr *nlh, void *data)
{
	struct links_walk *w = data;
	const char *name = NULL;

	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, &name);
	if (!w->stop && name && strncmp(name, w->prefix, strlen(w->prefix)) == 0)
		w->stop = w->cb(name, w->data);
	return MNL_CB_OK;
}

int rtnl_links_with_prefix(struct rtnl *r, const char *prefix,
                           int (*cb)(const char *name, void *data), void *data,
                           struct hutch_error *err)
{
	struct nlmsghdr *nlh;
	struct links_walk w = {prefix, cb, data, 0};
	uint32_t seq;
	ssize_t n;
	int ret;

	link_msg(r, RTM_GETLINK, NLM_F_DUMP, &nlh);
	nlh->nlmsg_flags &= ~NLM_F_ACK;
	seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return hutch_error_errno(err, "listing links");
	do {
		n = mnl_socket_recvfrom(r->nl, r->buf, sizeof(r->buf));
		if (n < 0)
			return hutch_error_errno(err, "listing links");
		ret = mnl_cb_run(r->buf, (size_t)n, seq, mnl_socket_get_portid(r->nl), links_cb,
		                 &w);
	} while (ret > 0);
	if (ret < 0)
		return hutch_error_errno(err, "listing links");
	return 0;
}

struct addr_walk {
	uint32_t addr; /* network byte order */
	int index;
};

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	uint32_t *local = data;

	if (mnl_attr_get_type(a) == IFA_LOCAL && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		*local = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int addrs_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_walk *w = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	uint32_t local = 0;

	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &local);
	if (ifa->ifa_family == AF_INET && local == w->addr && !w->index)
		w->index = (int)ifa->ifa_index;
	return MNL_CB_OK;
}

int rtnl_addr_owner(struct rtnl *r, uint32_t addr, int *ret_index, struct hutch_error *err)
{
	struct nlmsghdr *nlh = msg_new(r, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	struct addr_walk w = {htonl(addr), 0};
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	nlh->nlmsg_flags &= ~NLM_F_ACK;
	ifa->ifa_family = AF_INET;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return hutch_error_errno(err, "listing addresses");
	do {
		n = mnl_socket_recvfrom(r->nl, r->buf, sizeof(r->buf));
		if (n < 0)
			return hutch_error_errno(err, "listing addresses");
		ret = mnl_cb_run(r->buf, (size_t)n, seq, mnl_socket_get_portid(r->nl), addrs_cb,
		                 &w);
	} while (ret > 0);
	if (ret < 0)
		return hutch_error_errno(err, "listing addresses");
	*ret_index = w.index;
	return 0;
}
