/* Unit tests for lib/net's pure parts: configuration and names, the policy model (parse,
 * ranges, modes, the DNS rule of §7) and the compiler's output (sets and chains as nft lists
 * them; the integration tests compare the same text with what the kernel holds). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "net/internal.h"
#include "t.h"

static const struct net_config cfg0 = {.state_dir = "/nonexistent"};

static void test_pool(void)
{
	struct net_pool p;

	CHECK(net_pool_parse("10.88.0.0/16", &p) == 0);
	CHECK(p.net == 0x0a580000 && p.prefix == 16 && p.gw == 0x0a580001);
	CHECK(p.first == 0x0a580002 && p.last == 0x0a58fffe);
	CHECK(net_pool_parse("192.168.7.0/28", &p) == 0 && p.last == 0xc0a8070e);
	CHECK(net_pool_parse("10.88.0.1/16", &p) == -EINVAL); /* host bits */
	CHECK(net_pool_parse("10.0.0.0/7", &p) == -EINVAL);
	CHECK(net_pool_parse("10.0.0.0/29", &p) == -EINVAL);
	CHECK(net_pool_parse("10.0.0.0", &p) == -EINVAL);
	CHECK(net_pool_parse("10.0.0/8", &p) == -EINVAL);
	CHECK(net_pool_parse("10.0.0.0/x", &p) == -EINVAL);
	CHECK(net_pool_parse(NULL, &p) == -EINVAL);
}

static void test_names(void)
{
	struct net_names n;
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct net_config c = cfg0;

	CHECK(net_names_make(&cfg0, "abcdefghijklmnopqrstu", &n, &err) == 0);
	CHECK_STR(n.key, "abcdefghijkl");
	CHECK_STR(n.veth, "hvabcdefghijkl");
	CHECK(strlen(n.veth) < 16);
	CHECK_STR(n.out, "sb_abcdefghijkl_out");
	CHECK_STR(n.allow_dns, "sb_abcdefghijkl_allow_dns");
	CHECK_STR(n.gen, "sb_abcdefghijkl_gen");
	CHECK(net_names_make(&cfg0, "sb1", &n, &err) == 0);
	CHECK_STR(n.veth, "hvsb1");
	CHECK(net_names_make(&cfg0, "Upper", &n, &err) == -EINVAL);
	CHECK(net_names_make(&cfg0, "a-b", &n, &err) == -EINVAL);
	CHECK(net_names_make(&cfg0, "", &n, &err) == -EINVAL);
	CHECK(net_names_make(&cfg0, NULL, &n, &err) == -EINVAL);
	c.ifname_prefix = "toolong";
	CHECK(net_names_make(&c, "abc", &n, &err) == -EINVAL);
	c.ifname_prefix = "vx";
	CHECK(net_names_make(&c, "abc", &n, &err) == 0);
	CHECK_STR(n.veth, "vxabc");
}

static void test_cfg(void)
{
	struct net_config c = cfg0;
	struct net_upstream u[NET_MAX_UPSTREAMS];
	struct hutch_error err = HUTCH_ERROR_INIT;
	const char *ups[] = {"100.64.53.53", "127.0.0.1:5353", NULL};
	const char *bad[] = {"nope", NULL};
	char path[] = "/tmp/hutch-test-net-XXXXXX";
	const char *rc = "# x\nsearch example\nnameserver 127.0.0.53\nnameserver ::1\n"
	                 "nameserver 10.255.255.53\n";
	size_t n = 0;
	struct buf b = BUF_INIT;
	char ip[16];
	int fd;

	CHECK_STR(net_cfg_bridge(&c), "hutch0");
	CHECK_STR(net_cfg_table(&c), "hutch");
	CHECK(net_cfg_mtu(&c) == 1500);
	CHECK(net_cfg_ttl_clamp(&c, 5) == 60 && net_cfg_ttl_clamp(&c, 300) == 300);
	CHECK(net_cfg_ttl_clamp(&c, 99999) == 3600);
	c.dns_upstreams = ups;
	CHECK(net_upstreams_load(&c, u, &n, &err) == 0 && n == 2);
	CHECK(u[0].addr == 0x64403535 && u[0].port == 53 && u[1].port == 5353);
	c.dns_upstreams = bad;
	CHECK(net_upstreams_load(&c, u, &n, &err) == -EINVAL);
	fd = mkstemp(path);
	CHECK(fd >= 0 && write_all(fd, rc, strlen(rc)) == 0);
	close(fd);
	c.dns_upstreams = NULL;
	c.resolv_conf = path;
	CHECK(net_upstreams_load(&c, u, &n, &err) == 0 && n == 2); /* ::1 skipped: IPv4 only */
	CHECK(u[0].addr == 0x7f000035 && u[1].addr == 0x0affff35);
	unlink(path);
	CHECK(net_upstreams_load(&c, u, &n, &err) == -ENOENT);
	CHECK(net_resolver_addr(&c, ip) == 0);
	CHECK_STR(ip, "10.88.0.1");
	CHECK(net_resolv_conf(&c, &b) == 0 && strstr(buf_cstr(&b), "nameserver 10.88.0.1\n"));
	c.pool = "192.168.50.0/24";
	CHECK(net_resolver_addr(&c, ip) == 0);
	CHECK_STR(ip, "192.168.50.1");
	/* another pool: names of its own, stable, never the default prefixes */
	const char *br = net_cfg_bridge(&c), *tb = net_cfg_table(&c), *px = net_cfg_prefix(&c);
	CHECK(strlen(br) == 13 && strncmp(br, "hutch", 5) == 0 && strcmp(br, "hutch0") != 0);
	CHECK(strlen(tb) == 14 && strncmp(tb, "hutch_", 6) == 0);
	CHECK(strlen(px) == 3 && px[0] == 'h' && px[1] != 'v' && px[1] != 'z');
	CHECK(net_cfg_bridge(&c) == br && net_cfg_table(&c) == tb); /* same pointers: kept */
	c.pool = "192.168.51.0/24";
	CHECK(strcmp(net_cfg_table(&c), tb) != 0);
	c.table = "mine";
	CHECK_STR(net_cfg_table(&c), "mine");
	c.pool = "10.88.0.0/16";
	c.table = NULL;
	CHECK_STR(net_cfg_table(&c), "hutch");
	CHECK_STR(net_cfg_prefix(&c), "hv");
	buf_release(&b);
}

static void test_ranges(void)
{
	struct net_range r[] = {{10, 20}, {21, 30}, {5, 6}, {12, 15}, {40, 50}, {45, 60}};
	struct net_range all[] = {{0, UINT32_MAX}, {5, 6}};
	struct net_range top[] = {{UINT32_MAX - 1, UINT32_MAX}, {UINT32_MAX, UINT32_MAX}};
	size_t n = net_ranges_normalise(r, 6);

	CHECK(n == 3);
	CHECK(r[0].lo == 5 && r[0].hi == 6);
	CHECK(r[1].lo == 10 && r[1].hi == 30); /* adjacent and contained ranges merge */
	CHECK(r[2].lo == 40 && r[2].hi == 60);
	CHECK(net_ranges_contain(r, n, 25) && !net_ranges_contain(r, n, 31));
	CHECK(net_ranges_normalise(all, 2) == 1 && all[0].hi == UINT32_MAX);
	CHECK(net_ranges_normalise(top, 2) == 1 && top[0].lo == UINT32_MAX - 1);
	CHECK(net_ranges_normalise(NULL, 0) == 0);
}

static int parse(const char *json, struct net_policy *p)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	int r = net_policy_parse(json, p, &err);

	if (r < 0)
		fprintf(stderr, "  (parse: %d %s)\n", hutch_error_http_status(&err), err.msg);
	return r;
}

static void test_parse(void)
{
	struct net_policy p;
	struct hutch_error err = HUTCH_ERROR_INIT;

	CHECK(parse(NULL, &p) == 0 && p.internet && !p.allow_listed && !p.n_deny);
	net_policy_release(&p);
	CHECK(parse("null", &p) == 0 && p.internet);
	net_policy_release(&p);
	CHECK(parse("{}", &p) == 0 && p.internet && !p.allow_listed);
	net_policy_release(&p);
	CHECK(parse("{\"allow_internet_access\": false}", &p) == 0 && !p.internet);
	net_policy_release(&p);
	CHECK(parse("{\"allow_out\": [\"1.2.3.4\", \"web.Test\", \"10.0.0.0/8:443\"],"
	            " \"deny_out\": [\"bad.test:80\", \"10.1.0.0/16\"]}",
	            &p) == 0);
	CHECK(p.internet && p.allow_listed);
	CHECK(p.n_allow == 2 && p.allow[0].lo == 0x01020304 && p.allow[1].lo == 0x0a000000 &&
	      p.allow[1].hi == 0x0affffff);
	CHECK(p.n_allow_hosts == 1 && strcmp(p.allow_hosts[0].name, "web.test") == 0 &&
	      p.allow_hosts[0].index == 1);
	CHECK(p.n_deny == 1 && p.deny[0].lo == 0x0a010000 && p.deny[0].hi == 0x0a01ffff);
	CHECK(p.n_deny_hosts == 1 && strcmp(p.deny_hosts[0].name, "bad.test") == 0);
	net_policy_release(&p);
	/* only host names listed: still an allow list (default deny) */
	CHECK(parse("{\"allow_out\": [\"web.test\"]}", &p) == 0 && p.allow_listed && !p.n_allow);
	net_policy_release(&p);

	CHECK(net_policy_parse("{\"allow_out\": [\"1.2.3\"]}", &p, &err) < 0);
	CHECK(hutch_error_http_status(&err) == 400 && strstr(err.msg, "allow_out[0]"));
	hutch_error_clear(&err);
	CHECK(net_policy_parse("{\"deny_out\": [\"ok.test\", \"::1\"]}", &p, &err) < 0);
	CHECK(hutch_error_http_status(&err) == 400 && strstr(err.msg, "deny_out[1]"));
	hutch_error_clear(&err);
	CHECK(net_policy_parse("{\"allow\": []}", &p, &err) < 0 &&
	      hutch_error_http_status(&err) == 400);
	hutch_error_clear(&err);
	CHECK(net_policy_parse("[1]", &p, &err) < 0 && hutch_error_http_status(&err) == 400);
	hutch_error_clear(&err);
	CHECK(net_policy_parse("{\"allow_out\": \"x\"}", &p, &err) < 0);
	hutch_error_clear(&err);
	CHECK(net_policy_parse("{bad json", &p, &err) < 0 && hutch_error_http_status(&err) == 400);
	hutch_error_clear(&err);
	/* without host names, net_policy_check needs no DNS at all */
	CHECK(net_policy_check(&cfg0, "{\"allow_out\": [\"1.2.3.4\"]}", &err) == 0);
	CHECK(net_policy_check(&cfg0, NULL, &err) == 0);
	CHECK(net_policy_check(&cfg0, "{\"deny_out\": [\"1.2.3.4/40\"]}", &err) < 0 &&
	      hutch_error_http_status(&err) == 400);
}

/* Every row of §7: mode and whether DNS to the resolver is allowed (before deny rules). */
static void test_semantics(void)
{
	static const struct {
		const char *json;
		enum net_mode mode;
		bool dns;
	} rows[] = {
	        {NULL, NET_MODE_ALL, true},
	        {"{\"deny_out\": [\"1.2.3.4\"]}", NET_MODE_ALL, true},
	        {"{\"allow_internet_access\": false}", NET_MODE_NONE, false},
	        {"{\"allow_internet_access\": false, \"deny_out\": [\"1.2.3.4\"]}", NET_MODE_NONE,
	         false},
	        {"{\"allow_out\": [\"1.2.3.4\"]}", NET_MODE_LIST, true},
	        {"{\"allow_internet_access\": false, \"allow_out\": [\"1.2.3.4\"]}", NET_MODE_LIST,
	         false},
	        {"{\"allow_internet_access\": false, \"allow_out\": [\"10.88.0.1\"]}",
	         NET_MODE_LIST, true},
	        {"{\"allow_internet_access\": false, \"allow_out\": [\"10.88.0.0/30:53\"]}",
	         NET_MODE_LIST, true},
	        {"{\"allow_internet_access\": false, \"allow_out\": [\"resolver.test\"]}",
	         NET_MODE_LIST, false},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct net_policy p;
		CHECK(parse(rows[i].json, &p) == 0);
		CHECK(net_policy_mode(&p) == rows[i].mode);
		CHECK(net_policy_dns(&p, 0x0a580001) == rows[i].dns);
		net_policy_release(&p);
	}
}

static void render(const char *json, const struct net_resolved *res, struct buf *out)
{
	struct net_names n;
	struct net_pool pool;
	struct net_policy p;
	struct net_sb sb = {&n, &pool, 0x0a580005, 0x1234};

	net_names_from_key(&cfg0, "abc", &n);
	net_pool_parse("10.88.0.0/16", &pool);
	CHECK(parse(json, &p) == 0);
	buf_reset(out);
	net_sb_render(&p, res, &sb, out);
	net_policy_release(&p);
}

static const char chain_head[] = "chain sb_abc_out {\n"
                                 "\tmeta nfproto != ipv4 drop\n"
                                 "\tip saddr != 10.88.0.5 drop\n"
                                 "\tct state invalid drop\n"
                                 "\tct direction reply accept\n"
                                 "\tct state established,related ct mark 0x00001234 accept\n"
                                 "\tip daddr @sb_abc_deny goto deny\n"
                                 "\tip daddr @sb_abc_deny_dns goto deny\n";
static const char dns_rules[] = "\tip daddr 10.88.0.1 udp dport 53 ct mark set 0x00001234 accept\n"
                                "\tip daddr 10.88.0.1 tcp dport 53 ct mark set 0x00001234 accept\n";
static const char never[] = "\tfib daddr type != unicast goto deny\n"
                            "\tip daddr 169.254.0.0/16 goto deny\n"
                            "\tip daddr 10.88.0.0/16 goto deny\n";
static const char in_head[] = "chain sb_abc_in {\n"
                              "\tct state invalid drop\n"
                              "\tct direction original drop\n"
                              "\tct mark 0x00001234 accept\n"
                              "\tip saddr @sb_abc_deny drop\n"
                              "\tip saddr @sb_abc_deny_dns drop\n";

static void expect_render(const struct buf *out, const char *sets, const char *out_tail,
                          const char *in_tail, bool dns)
{
	struct buf want = BUF_INIT;

	buf_adds(&want, sets);
	buf_adds(&want, chain_head);
	if (dns)
		buf_adds(&want, dns_rules);
	buf_adds(&want, never);
	buf_adds(&want, out_tail);
	buf_adds(&want, in_head);
	buf_adds(&want, in_tail);
	CHECK_STR(buf_cstr(out), buf_cstr(&want));
	buf_release(&want);
}

static const char empty_sets[] = "set sb_abc_allow {\n\ttype ipv4_addr\n\tflags interval\n}\n"
                                 "set sb_abc_deny {\n\ttype ipv4_addr\n\tflags interval\n}\n"
                                 "set sb_abc_allow_dns {\n\ttype ipv4_addr\n\tflags timeout\n}\n"
                                 "set sb_abc_deny_dns {\n\ttype ipv4_addr\n\tflags timeout\n}\n"
                                 "set sb_abc_gen {\n\ttype mark\n\telements = { 0x00001234 }\n}\n";

static void test_compile(void)
{
	struct buf out = BUF_INIT;
	struct net_learned la = {0x05060708, 60}, ld[] = {{0x0a0b0c0d, 300}, {0x0a0b0c0e, 300}};
	struct net_resolved res = {&la, ld, 1, 2};

	/* unrestricted */
	render(NULL, NULL, &out);
	expect_render(&out, empty_sets, "\tct mark set 0x00001234 accept\n}\n",
	              "\tct mark set 0x00001234 accept\n}\n", true);
	/* no internet */
	render("{\"allow_internet_access\": false}", NULL, &out);
	expect_render(&out, empty_sets, "\tgoto deny\n}\n", "\tdrop\n}\n", false);
	/* an allow list without internet: ranges merged, ports ignored, host names resolved; DNS
	 * allowed because 10.0.0.0/8 covers the resolver */
	render("{\"allow_internet_access\": false, \"allow_out\": [\"1.2.3.4\", \"10.0.0.0/8\", "
	       "\"10.1.0.0/16\", \"1.2.3.5:443\", \"web.test\", \"192.0.2.7\", \"192.0.2.9\", "
	       "\"192.0.2.8\"], \"deny_out\": [\"10.0.0.7\", \"bad.test\"]}",
	       &res, &out);
	expect_render(&out,
	              "set sb_abc_allow {\n\ttype ipv4_addr\n\tflags interval\n"
	              "\telements = { 1.2.3.4/31, 10.0.0.0/8, 192.0.2.7-192.0.2.9 }\n}\n"
	              "set sb_abc_deny {\n\ttype ipv4_addr\n\tflags interval\n"
	              "\telements = { 10.0.0.7 }\n}\n"
	              "set sb_abc_allow_dns {\n\ttype ipv4_addr\n\tflags timeout\n"
	              "\telements = { 5.6.7.8 timeout 60s }\n}\n"
	              "set sb_abc_deny_dns {\n\ttype ipv4_addr\n\tflags timeout\n"
	              "\telements = { 10.11.12.13 timeout 300s, 10.11.12.14 timeout 300s }\n}\n"
	              "set sb_abc_gen {\n\ttype mark\n\telements = { 0x00001234 }\n}\n",
	              "\tip daddr @sb_abc_allow ct mark set 0x00001234 accept\n"
	              "\tip daddr @sb_abc_allow_dns ct mark set 0x00001234 accept\n"
	              "\tgoto deny\n}\n",
	              "\tip saddr @sb_abc_allow ct mark set 0x00001234 accept\n"
	              "\tip saddr @sb_abc_allow_dns ct mark set 0x00001234 accept\n"
	              "\tdrop\n}\n",
	              true);
	/* an allow list with internet: the resolver is implicitly allowed */
	render("{\"allow_out\": [\"0.0.0.0/0\"]}", NULL, &out);
	CHECK(strstr(buf_cstr(&out), dns_rules) != NULL);
	CHECK(strstr(buf_cstr(&out), "elements = { 0.0.0.0/0 }") != NULL);
	buf_release(&out);
}

static void test_base(void)
{
	struct net_base_chain base[NET_BASE_CHAINS];
	struct net_pool pool;
	struct buf out = BUF_INIT;

	net_pool_parse("10.88.0.0/20", &pool);
	net_base_chains(&cfg0, &pool, base);
	for (size_t i = 0; i < NET_BASE_CHAINS; i++)
		for (size_t j = 0; j < base[i].n; j++)
			nr_render(&base[i].rules[j], &out);
	CHECK_STR(buf_cstr(&out), "meta l4proto tcp reject with tcp reset\n"
	                          "reject with icmpx admin-prohibited\n"
	                          "iifname vmap @veth_out\n"
	                          "iifname \"hv*\" drop\n"
	                          "oifname vmap @veth_in\n"
	                          "oifname \"hv*\" drop\n"
	                          "ip saddr 10.88.0.0/20 ip daddr != 10.88.0.0/20 masquerade\n");
	CHECK(strcmp(base[1].hook, "prerouting") == 0 && base[1].priority == -150);
	CHECK(base[0].hook == NULL);
	buf_release(&out);
}

int main(void)
{
	test_pool();
	test_names();
	test_cfg();
	test_ranges();
	test_parse();
	test_semantics();
	test_compile();
	test_base();
	T_DONE();
}
