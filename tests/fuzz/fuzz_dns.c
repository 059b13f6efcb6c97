/* libFuzzer target for lib/net's DNS message code (what sandboxes and upstreams send the
 * forwarder): parsing, CNAME-chain walks, SERVFAIL rewriting, and query building from arbitrary
 * names. Checks invariants, not just crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_msg m;

static void walk(const char *name)
{
	uint32_t addrs[16], ttl;
	const char *chain[8];
	size_t nc;
	size_t n = dns_answer_addrs(&m, name, addrs, 16, &ttl, chain, 8, &nc);

	if (n > 16 || nc > 8 || nc < 1 || (n == 0 && ttl != 0) || ttl > INT32_MAX)
		__builtin_trap();
	for (size_t i = 0; i < nc; i++)
		if (strlen(chain[i]) > DNS_NAME_MAX)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	char name[DNS_NAME_MAX + 2];
	struct buf q = BUF_INIT;

	if (dns_msg_parse(data, size, &m) == 0) {
		if (m.n_an > DNS_MAX_RR || strlen(m.qname) > DNS_NAME_MAX)
			__builtin_trap();
		walk(m.qname);
		for (size_t i = 0; i < m.n_an; i++)
			if (m.an[i].rdoff + m.an[i].rdlen > size)
				__builtin_trap();
		if (m.n_an)
			walk(m.an[0].name);
	}
	memcpy(copy, data, size);
	if (dns_servfail(copy, size) > size)
		__builtin_trap();
	/* a name from the input: a query either fails cleanly or parses back to the same name */
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, n);
	name[n] = '\0';
	if (dns_query_build(&q, 7, name, DNS_TYPE_A) == 0) {
		if (dns_msg_parse((uint8_t *)q.data, q.len, &m) != 0 || m.qdcount != 1)
			__builtin_trap();
	}
	buf_release(&q);
	free(copy);
	return 0;
}
