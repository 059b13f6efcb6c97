/* DNS messages (RFC 1035): just enough to build a query, read an answer's A and CNAME records
 * and answer SERVFAIL. Every byte comes from outside (sandboxes, upstreams), so every read is
 * bounds-checked, compression pointers may only point backwards, and names are length-limited.
 * Fuzzed by tests/fuzz/fuzz_dns.c. */
#include <errno.h>
#include <string.h>

#include "net/internal.h"

#define DNS_HDR       12
#define DNS_MAX_HOPS  32
#define CNAME_MAX_HOP 16

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static char name_char(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c + 32);
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
		return (char)c;
	return '?'; /* never in a policy host name, so such a name never matches one */
}

/* Reads the (possibly compressed) name at *off; *off moves past it in the original position. */
static int name_read(const uint8_t *msg, size_t len, size_t *off, char out[DNS_NAME_MAX + 1])
{
	size_t pos = *off, n = 0;
	bool jumped = false;
	int hops = 0;

	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++hops > DNS_MAX_HOPS)
				return -EBADMSG;
			size_t ptr = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
			if (ptr >= pos) /* only backwards: no loops */
				return -EBADMSG;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = ptr;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG;
		if (l == 0)
			break;
		if (pos + 1 + l > len || n + l + (n ? 1 : 0) > DNS_NAME_MAX)
			return -EBADMSG;
		if (n)
			out[n++] = '.';
		for (size_t i = 0; i < l; i++)
			out[n++] = name_char(msg[pos + 1 + i]);
		pos += 1 + (size_t)l;
	}
	if (!jumped)
		*off = pos + 1;
	out[n] = '\0';
	return 0;
}

static int rr_read(const uint8_t *msg, size_t len, size_t *off, struct dns_rr *rr)
{
	size_t end;

	if (name_read(msg, len, off, rr->name) < 0 || *off + 10 > len)
		return -EBADMSG;
	rr->type = rd16(msg + *off);
	rr->class = rd16(msg + *off + 2);
	rr->ttl = rd32(msg + *off + 4);
	if (rr->ttl > INT32_MAX) /* RFC 2181 8: treat as zero */
		rr->ttl = 0;
	rr->rdlen = rd16(msg + *off + 8);
	rr->rdoff = *off + 10;
	end = rr->rdoff + rr->rdlen;
	if (end > len)
		return -EBADMSG;
	rr->target[0] = '\0';
	rr->a = 0;
	if (rr->type == DNS_TYPE_A && rr->rdlen == 4)
		rr->a = rd32(msg + rr->rdoff);
	if (rr->type == DNS_TYPE_CNAME) {
		size_t t = rr->rdoff;
		if (name_read(msg, end, &t, rr->target) < 0 || t != end)
			return -EBADMSG;
	}
	*off = end;
	return 0;
}

int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_msg *ret)
{
	size_t off = DNS_HDR;
	char skip[DNS_NAME_MAX + 1];

	ret->qname[0] = '\0';
	ret->qtype = ret->qclass = 0;
	ret->n_an = 0;
	if (len < DNS_HDR)
		return -EBADMSG;
	ret->id = rd16(msg);
	ret->flags = rd16(msg + 2);
	ret->qdcount = rd16(msg + 4);
	ret->ancount = rd16(msg + 6);
	for (unsigned i = 0; i < ret->qdcount; i++) {
		if (name_read(msg, len, &off, i ? skip : ret->qname) < 0 || off + 4 > len)
			return -EBADMSG;
		if (i == 0) {
			ret->qtype = rd16(msg + off);
			ret->qclass = rd16(msg + off + 2);
		}
		off += 4;
	}
	for (unsigned i = 0; i < ret->ancount; i++) {
		struct dns_rr tmp, *rr = ret->n_an < DNS_MAX_RR ? &ret->an[ret->n_an] : &tmp;
		if (rr_read(msg, len, &off, rr) < 0)
			return -EBADMSG;
		if (rr != &tmp)
			ret->n_an++;
	}
	return 0;
}

static const struct dns_rr *cname_of(const struct dns_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n_an; i++)
		if (m->an[i].type == DNS_TYPE_CNAME && m->an[i].class == DNS_CLASS_IN &&
		    strcmp(m->an[i].name, name) == 0)
			return &m->an[i];
	return NULL;
}

size_t dns_answer_addrs(const struct dns_msg *m, const char *name, uint32_t *addrs, size_t max,
                        uint32_t *ret_ttl, const char **chain, size_t max_chain,
                        size_t *ret_n_chain)
{
	const char *cur = name;
	uint32_t ttl = UINT32_MAX;
	size_t n = 0, nc = 0;
	const struct dns_rr *c;

	if (chain && nc < max_chain)
		chain[nc++] = cur;
	for (int hop = 0; hop < CNAME_MAX_HOP && (c = cname_of(m, cur)); hop++) {
		cur = c->target;
		ttl = c->ttl < ttl ? c->ttl : ttl;
		if (chain && nc < max_chain)
			chain[nc++] = cur;
	}
	for (size_t i = 0; i < m->n_an && n < max; i++) {
		const struct dns_rr *rr = &m->an[i];
		if (rr->type != DNS_TYPE_A || rr->class != DNS_CLASS_IN || rr->rdlen != 4 ||
		    strcmp(rr->name, cur) != 0)
			continue;
		addrs[n++] = rr->a;
		ttl = rr->ttl < ttl ? rr->ttl : ttl;
	}
	if (ret_ttl)
		*ret_ttl = n ? ttl : 0;
	if (ret_n_chain)
		*ret_n_chain = nc;
	return n;
}

int dns_query_build(struct buf *out, uint16_t id, const char *name, uint16_t qtype)
{
	/* EDNS0 OPT record: 1232-byte UDP answers, so A sets of big CDNs are not truncated */
	static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
	uint8_t hdr[DNS_HDR] = {(uint8_t)(id >> 8), (uint8_t)id, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1};
	size_t len = strlen(name), start = out->len;
	const char *p = name;

	if (len == 0 || len > DNS_NAME_MAX)
		return -EINVAL;
	buf_add(out, hdr, sizeof(hdr));
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63) {
			buf_truncate(out, start);
			return -EINVAL;
		}
		buf_addch(out, (char)l);
		buf_add(out, p, l);
		p += l + (dot ? 1 : 0);
	}
	uint8_t tail[5] = {0, (uint8_t)(qtype >> 8), (uint8_t)qtype, 0, DNS_CLASS_IN};
	buf_add(out, tail, sizeof(tail));
	buf_add(out, opt, sizeof(opt));
	return 0;
}

size_t dns_servfail(uint8_t *msg, size_t len)
{
	char name[DNS_NAME_MAX + 1];
	size_t off = DNS_HDR;
	bool question = false;

	if (len < DNS_HDR)
		return 0;
	if (rd16(msg + 4) >= 1 && name_read(msg, len, &off, name) == 0 && off + 4 <= len)
		question = true;
	msg[2] = (uint8_t)((msg[2] & 0x79) | 0x80); /* QR, keep opcode and RD, clear AA and TC */
	msg[3] = 0x82;                              /* RA, SERVFAIL */
	msg[4] = 0;
	msg[5] = question ? 1 : 0;
	memset(msg + 6, 0, 6);
	return question ? off + 4 : DNS_HDR;
}
