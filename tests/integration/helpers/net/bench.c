/* `hutch-netdrv bench [--policy JSON] NETNS...`: attach then detach one sandbox per network
 * namespace given, timing each call, and print percentiles as key=value pairs (bench/net/run.sh
 * reads them). */
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
	const char *policy = NULL;
	uint64_t *att, *det, *tot;
	size_t n = 0;
	char ip[16], id[32];

	if (argc >= 2 && strcmp(argv[0], "--policy") == 0) {
		policy = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc < 1 || net_init(c, &err) < 0) {
		fprintf(stderr, "bench: %s\n", argc < 1 ? "no network namespaces given" : err.msg);
		return 1;
	}
	att = calloc((size_t)argc, sizeof(*att));
	det = calloc((size_t)argc, sizeof(*det));
	tot = calloc((size_t)argc, sizeof(*tot));
	for (int i = 0; i < argc; i++, n++) {
		snprintf(id, sizeof(id), "bench%05d", i);
		uint64_t t0 = time_mono_ns();
		if (net_sandbox_attach(c, id, argv[i], policy, ip, &err) < 0)
			break;
		uint64_t t1 = time_mono_ns();
		if (net_sandbox_detach(c, id, &err) < 0)
			break;
		uint64_t t2 = time_mono_ns();
		att[i] = t1 - t0;
		det[i] = t2 - t1;
		tot[i] = t2 - t0;
	}
	if (n < (size_t)argc) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return 1;
	}
	printf("n=%zu attach_p50_ms=%.3f attach_p90_ms=%.3f detach_p50_ms=%.3f "
	       "detach_p90_ms=%.3f total_p50_ms=%.3f total_p90_ms=%.3f total_mean_ms=%.3f\n",
	       n, pct(att, n, 0.5), pct(att, n, 0.9), pct(det, n, 0.5), pct(det, n, 0.9),
	       pct(tot, n, 0.5), pct(tot, n, 0.9), mean(tot, n));
	free(att);
	free(det);
	free(tot);
	return 0;
}
