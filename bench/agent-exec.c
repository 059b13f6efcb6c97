/* Measures hutch-agent's `run` latency: POST /api/v1/processes/run of `echo hi` over the unix
 * socket on one keep-alive connection, N times; prints p50/p90/p99/max in microseconds.
 * Built and run by bench/agent-exec.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Reads until the end of a chunked response ("\r\n0\r\n\r\n"). */
static int read_response(int fd)
{
	static char buf[65536];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0)
			return strstr(buf, "\"exit_code\":0") ? 0 : -1;
		if (len == sizeof(buf) - 1)
			return -1;
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: agent-exec SOCKET N [COMMAND]\n");
		return 2;
	}
	int n = atoi(argv[2]);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	const char *cmd = argc > 3 ? argv[3] : "echo";
	char body[256], req[512];
	int bl = snprintf(body, sizeof(body), "{\"command\":\"%s\",\"args\":[\"hi\"]}", cmd);
	int rl = snprintf(req, sizeof(req),
	                  "POST /api/v1/processes/run HTTP/1.1\r\nHost: agent\r\n"
	                  "Accept: text/event-stream\r\nContent-Type: application/json\r\n"
	                  "Content-Length: %d\r\n\r\n%s",
	                  bl, body);
	double *t = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n + 20; i++) {
		double t0 = now_us();
		if (write(fd, req, (size_t)rl) != rl || read_response(fd) < 0) {
			fprintf(stderr, "request %d failed\n", i);
			return 1;
		}
		if (i >= 20) /* warm-up */
			t[i - 20] = now_us() - t0;
	}
	qsort(t, (size_t)n, sizeof(double), cmp);
	printf("run(%s hi) over %s, %d requests: p50 %.0f us  p90 %.0f us  p99 %.0f us  max %.0f us\n",
	       cmd, argv[1], n, t[n / 2], t[n * 9 / 10], t[n * 99 / 100], t[n - 1]);
	free(t);
	return 0;
}
