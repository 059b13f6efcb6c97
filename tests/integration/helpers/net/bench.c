/* `hutch-netdrv bench [--policy JSON] [--swap JSON] [--preload K] NETNS...`: attaches the
 * first K namespaces and leaves them attached (a host that already runs sandboxes), then for
 * each remaining namespace attaches a sandbox, optionally swaps its policy, and detaches it,
 * timing each call; prints percentiles as key=value pairs (bench/net/run.sh reads them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "net/net.h"

int bench_main(const struct net_config *c, int argc, char **argv);

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[i] / 1e6;
}

static double mean(const uint64_t *v, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += (double)v[i];
	return s / (double)n / 1e6;
}

int bench_main(const struct net_config *c, int argc, char **argv)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	const char *policy = NULL, *swap = NULL;
	uint64_t *att, *det, *tot, *swp;
	size_t n = 0;
	int preload = 0;
	char ip[16], id[32];

	while (argc >= 2 && strncmp(argv[0], "--", 2) == 0) {
		if (strcmp(argv[0], "--policy") == 0)
			policy = argv[1];
		else if (strcmp(argv[0], "--swap") == 0)
			swap = argv[1];
		else if (strcmp(argv[0], "--preload") == 0)
			preload = atoi(argv[1]);
		argc -= 2;
		argv += 2;
	}
	if (argc <= preload || net_init(c, &err) < 0) {
		fprintf(stderr, "bench: %s\n", argc <= preload ? "not enough namespaces" : err.msg);
		return 1;
	}
	for (int i = 0; i < preload; i++) {
		snprintf(id, sizeof(id), "pre%05d", i);
		if (net_sandbox_attach(c, id, argv[i], policy, ip, &err) < 0) {
			fprintf(stderr, "bench: preload: %s\n", err.msg);
			return 1;
		}
	}
	argc -= preload;
	argv += preload;
	att = calloc((size_t)argc, sizeof(*att));
	det = calloc((size_t)argc, sizeof(*det));
	tot = calloc((size_t)argc, sizeof(*tot));
	swp = calloc((size_t)argc, sizeof(*swp));
	for (int i = 0; i < argc; i++, n++) {
		snprintf(id, sizeof(id), "bench%05d", i);
		uint64_t t0 = time_mono_ns();
		if (net_sandbox_attach(c, id, argv[i], policy, ip, &err) < 0)
			break;
		uint64_t t1 = time_mono_ns();
		if (swap && net_sandbox_policy_set(c, id, swap, &err) < 0)
			break;
		uint64_t ts = time_mono_ns();
		if (net_sandbox_detach(c, id, &err) < 0)
			break;
		uint64_t t2 = time_mono_ns();
		att[i] = t1 - t0;
		swp[i] = ts - t1;
		det[i] = t2 - ts;
		tot[i] = att[i] + det[i];
	}
	if (n < (size_t)argc) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	printf("n=%zu attach_p50_ms=%.3f attach_p90_ms=%.3f detach_p50_ms=%.3f "
	       "detach_p90_ms=%.3f total_p50_ms=%.3f total_p90_ms=%.3f total_mean_ms=%.3f",
	       n, pct(att, n, 0.5), pct(att, n, 0.9), pct(det, n, 0.5), pct(det, n, 0.9),
	       pct(tot, n, 0.5), pct(tot, n, 0.9), mean(tot, n));
	if (swap)
		printf(" swap_p50_ms=%.3f swap_p90_ms=%.3f", pct(swp, n, 0.5), pct(swp, n, 0.9));
	printf("\n");
	for (int i = 0; i < preload; i++) {
		snprintf(id, sizeof(id), "pre%05d", i);
		net_sandbox_detach(c, id, &err);
	}
	free(swp);
	free(att);
	free(det);
	free(tot);
	return 0;
}
