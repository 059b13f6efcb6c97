/* libFuzzer target for network policies as lib/net reads them: the input as policy JSON through
 * net_policy_parse (and so netpol_entry_parse) and the compiler, and as a single entry. Checks
 * that ranges come out sorted and disjoint and that every policy compiles. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apimodel/apimodel.h"
#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ranges_check(const struct net_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].lo > r[i].hi)
			__builtin_trap();
		if (i && (r[i - 1].hi == UINT32_MAX || r[i].lo <= r[i - 1].hi + 1))
			__builtin_trap(); /* overlapping or adjacent: not merged */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct net_config cfg = {.state_dir = "/nonexistent"};
	struct hutch_error err = HUTCH_ERROR_INIT;
	char *json = malloc(size + 1);
	struct net_policy p;
	struct netpol_entry e;

	memcpy(json, data, size);
	json[size] = '\0';
	netpol_entry_parse((const char *)data, size, &e, &err);
	hutch_error_clear(&err);
	if (net_policy_parse(json, &p, &err) == 0) {
		struct net_names n;
		struct net_pool pool;
		struct net_sb sb = {&n, &pool, 0x0a580002, 1};
		struct buf out = BUF_INIT;
		ranges_check(p.allow, p.n_allow);
		ranges_check(p.deny, p.n_deny);
		if (p.allow_listed != (p.n_allow + p.n_allow_hosts > 0))
			__builtin_trap();
		net_names_from_key(&cfg, "fuzz", &n);
		net_pool_parse("10.88.0.0/16", &pool);
		net_sb_render(&p, NULL, &sb, &out);
		if (!strstr(buf_cstr(&out), "chain sb_fuzz_out"))
			__builtin_trap();
		buf_release(&out);
		net_policy_release(&p);
	} else if (hutch_error_http_status(&err) != 400) {
		__builtin_trap(); /* every rejection is the client's fault */
	}
	free(json);
	return 0;
}
