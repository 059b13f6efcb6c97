/* Unit tests for lib/net's DNS message code: query building, answer parsing (compression,
 * CNAME chains, limits, malformed input) and SERVFAIL answers. */
#include <errno.h>
#include <string.h>

#include "net/internal.h"
#include "t.h"

static void put16(struct buf *b, unsigned v)
{
	buf_addch(b, (char)(v >> 8));
	buf_addch(b, (char)v);
}

static void put32(struct buf *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b, v & 0xffff);
}

static void name(struct buf *b, const char *n)
{
	while (*n) {
		const char *dot = strchr(n, '.');
		size_t l = dot ? (size_t)(dot - n) : strlen(n);
		buf_addch(b, (char)l);
		buf_add(b, n, l);
		n += l + (dot ? 1 : 0);
	}
	buf_addch(b, 0);
}

static void header(struct buf *b, unsigned flags, unsigned qd, unsigned an)
{
	put16(b, 0x1234);
	put16(b, flags);
	put16(b, qd);
	put16(b, an);
	put32(b, 0);
}

static void rr_a(struct buf *b, const char *owner, uint32_t ttl, uint32_t addr)
{
	if (owner)
		name(b, owner);
	else
		put16(b, 0xc00c); /* pointer to the question's name */
	put16(b, DNS_TYPE_A);
	put16(b, DNS_CLASS_IN);
	put32(b, ttl);
	put16(b, 4);
	put32(b, addr);
}

static struct dns_msg m; /* large: keep it off the stack */

static int parse(const struct buf *b)
{
	return dns_msg_parse((const uint8_t *)b->data, b->len, &m);
}

static void test_query(void)
{
	struct buf b = BUF_INIT;
	static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0, 0, 1, 3,
	                               'w',  'e',  'b',  4,    't', 'e', 's', 't', 0, 0, 1, 0, 1};

	CHECK(dns_query_build(&b, 0x1234, "web.test", DNS_TYPE_A) == 0);
	CHECK(b.len == sizeof(want) + 11 && memcmp(b.data, want, sizeof(want)) == 0);
	CHECK((uint8_t)b.data[sizeof(want) + 2] == 41); /* the EDNS0 OPT record */
	CHECK(parse(&b) == 0);
	CHECK_STR(m.qname, "web.test");
	CHECK(m.qtype == DNS_TYPE_A && m.qclass == DNS_CLASS_IN && !dns_is_response(&m));
	buf_reset(&b);
	CHECK(dns_query_build(&b, 1, "", DNS_TYPE_A) == -EINVAL && b.len == 0);
	CHECK(dns_query_build(&b, 1, "a..b", DNS_TYPE_A) == -EINVAL && b.len == 0);
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(dns_query_build(&b, 1, big, DNS_TYPE_A) == -EINVAL);
	big[64] = '\0'; /* one 64-byte label */
	CHECK(dns_query_build(&b, 1, big, DNS_TYPE_A) == -EINVAL);
	buf_release(&b);
}

/* web.test CNAME cdn.example (compressed), cdn.example A x2, plus noise */
static void test_answer(void)
{
	struct buf b = BUF_INIT;
	uint32_t addrs[8], ttl;
	const char *chain[4];
	size_t nc, cdn_off;

	header(&b, 0x8180, 1, 4);
	name(&b, "WEB.test");
	put16(&b, DNS_TYPE_A);
	put16(&b, DNS_CLASS_IN);
	put16(&b, 0xc00c);
	put16(&b, DNS_TYPE_CNAME);
	put16(&b, DNS_CLASS_IN);
	put32(&b, 600);
	put16(&b, 13);
	cdn_off = b.len;
	name(&b, "cdn.example");
	for (int i = 0; i < 2; i++) {
		put16(&b, 0xc000 | (unsigned)cdn_off);
		put16(&b, DNS_TYPE_A);
		put16(&b, DNS_CLASS_IN);
		put32(&b, i ? 100 : 300);
		put16(&b, 4);
		put32(&b, 0x01020300 + (uint32_t)i);
	}
	rr_a(&b, "other.example", 5, 0x09090909);
	CHECK(parse(&b) == 0);
	CHECK(dns_is_response(&m) && dns_rcode(&m) == 0 && m.n_an == 4);
	CHECK_STR(m.qname, "web.test"); /* lower-cased */
	CHECK_STR(m.an[0].target, "cdn.example");
	CHECK(dns_answer_addrs(&m, "web.test", addrs, 8, &ttl, chain, 4, &nc) == 2);
	CHECK(addrs[0] == 0x01020300 && addrs[1] == 0x01020301 && ttl == 100);
	CHECK(nc == 2 && strcmp(chain[0], "web.test") == 0 && strcmp(chain[1], "cdn.example") == 0);
	CHECK(dns_answer_addrs(&m, "web.test", addrs, 1, &ttl, NULL, 0, NULL) == 1);
	CHECK(dns_answer_addrs(&m, "cdn.example", addrs, 8, &ttl, NULL, 0, NULL) == 2);
	CHECK(dns_answer_addrs(&m, "nothing.example", addrs, 8, &ttl, NULL, 0, NULL) == 0 &&
	      ttl == 0);
	buf_release(&b);
}

static void test_malformed(void)
{
	struct buf b = BUF_INIT;

	header(&b, 0x8180, 1, 0);
	CHECK(parse(&b) == -EBADMSG); /* question missing */
	buf_reset(&b);
	header(&b, 0x8180, 1, 0);
	put16(&b, 0xc00c); /* points at itself */
	put32(&b, 0x00010001);
	CHECK(parse(&b) == -EBADMSG);
	buf_reset(&b);
	header(&b, 0x8180, 1, 0);
	put16(&b, 0xc010); /* points forward */
	put32(&b, 0x00010001);
	CHECK(parse(&b) == -EBADMSG);
	buf_reset(&b);
	header(&b, 0x8180, 1, 0);
	buf_addch(&b, 0x40); /* reserved label type */
	CHECK(parse(&b) == -EBADMSG);
	buf_reset(&b);
	header(&b, 0x8180, 1, 0);
	buf_addch(&b, 10);
	buf_add(&b, "abc", 3); /* label runs past the end */
	CHECK(parse(&b) == -EBADMSG);
	buf_reset(&b);
	header(&b, 0x8180, 1, 0);
	for (int i = 0; i < 5; i++) { /* 5 x 63 bytes > 253 */
		buf_addch(&b, 63);
		for (int j = 0; j < 63; j++)
			buf_addch(&b, 'a');
	}
	buf_addch(&b, 0);
	put32(&b, 0x00010001);
	CHECK(parse(&b) == -EBADMSG);
	buf_reset(&b);
	header(&b, 0x8180, 1, 1);
	name(&b, "x.test");
	put32(&b, 0x00010001);
	put16(&b, 0xc00c);
	put16(&b, DNS_TYPE_A);
	put16(&b, DNS_CLASS_IN);
	put32(&b, 1);
	put16(&b, 40); /* rdata runs past the end */
	put32(&b, 1);
	CHECK(parse(&b) == -EBADMSG);
	CHECK(dns_msg_parse((const uint8_t *)"\x12", 1, &m) == -EBADMSG);
	buf_release(&b);
}

static void test_limits(void)
{
	struct buf b = BUF_INIT;
	uint32_t addrs[128], ttl;

	header(&b, 0x8180, 1, 70);
	name(&b, "many.test");
	put32(&b, 0x00010001);
	for (uint32_t i = 0; i < 70; i++)
		rr_a(&b, NULL, 0x80000000u + i, i); /* TTLs with the top bit set count as 0 */
	CHECK(parse(&b) == 0 && m.n_an == DNS_MAX_RR);
	CHECK(dns_answer_addrs(&m, "many.test", addrs, 128, &ttl, NULL, 0, NULL) == DNS_MAX_RR);
	CHECK(ttl == 0);
	buf_reset(&b);
	/* a.test CNAME b.test, b.test CNAME a.test: the walk stops */
	header(&b, 0x8180, 1, 2);
	name(&b, "a.test");
	put32(&b, 0x00010001);
	for (int i = 0; i < 2; i++) {
		name(&b, i ? "b.test" : "a.test");
		put16(&b, DNS_TYPE_CNAME);
		put16(&b, DNS_CLASS_IN);
		put32(&b, 60);
		put16(&b, 8);
		name(&b, i ? "a.test" : "b.test");
	}
	CHECK(parse(&b) == 0);
	CHECK(dns_answer_addrs(&m, "a.test", addrs, 8, &ttl, NULL, 0, NULL) == 0);
	buf_reset(&b);
	/* odd bytes never match a host name; wrong-size A data is ignored */
	header(&b, 0x8180, 1, 2);
	buf_add(&b, "\x05we.b\x00\x04test\x00", 12);
	put32(&b, 0x00010001);
	rr_a(&b, NULL, 60, 0x01010101);
	name(&b, "web.test");
	put16(&b, DNS_TYPE_A);
	put16(&b, DNS_CLASS_IN);
	put32(&b, 60);
	put16(&b, 5);
	put32(&b, 0x02020202);
	buf_addch(&b, 0);
	CHECK(parse(&b) == 0);
	CHECK_STR(m.qname, "we?b?.test");
	CHECK(dns_answer_addrs(&m, "web.test", addrs, 8, &ttl, NULL, 0, NULL) == 0);
	buf_release(&b);
}

static void test_servfail(void)
{
	struct buf b = BUF_INIT;
	uint8_t hdr[12] = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};

	CHECK(dns_query_build(&b, 0xabcd, "web.test", DNS_TYPE_A) == 0);
	size_t n = dns_servfail((uint8_t *)b.data, b.len);
	CHECK(n == 12 + 10 + 4);
	CHECK(parse(&b) == 0 && dns_is_response(&m) && dns_rcode(&m) == 2 && m.id == 0xabcd);
	CHECK(((uint8_t)b.data[2] & 0x01) && m.ancount == 0 && m.qdcount == 1);
	CHECK(dns_servfail(hdr, sizeof(hdr)) == 12 && hdr[5] == 0 && (hdr[3] & 0xf) == 2);
	CHECK(dns_servfail(hdr, 5) == 0);
	buf_release(&b);
}

int main(void)
{
	test_query();
	test_answer();
	test_malformed();
	test_limits();
	test_servfail();
	T_DONE();
}
