/* bench/exec helper (built and run by bench/exec/run.sh).
 *
 *   exec-bench latency PROXY SID KEY AGENT_SOCK BUSYBOX N WARMUP
 *     N rounds, each timing one of every probe back to back (so every probe sees the same
 *     background load): `run` of `echo hi` through the proxy (TCP PROXY = host:port, Host
 *     SID.local, Bearer KEY, one keep-alive connection), the same `run` straight on the agent's
 *     unix socket, GET /api/v1/health through both, and on the host fork + exec + read of the
 *     output through a pipe + wait of /bin/echo and of the sandbox's busybox echo. JSON out.
 *
 *   exec-bench streams http TARGET SID KEY STREAMS MB AGENT_PID PROXY_PID
 *     STREAMS connections at once (TARGET host:port, or a unix socket path for the agent; SID and
 *     KEY "-" for none) each `run` a shell command writing MB MiB of 100-byte lines; counts the
 *     line events and their payload bytes, checks every stream ends with exit_code 0. Samples
 *     the agent's VmRSS every 10 ms (its VmHWM is reset first) and the CPU time of the agent
 *     and of the proxy process.
 *   exec-bench streams pipe SHELL_CMD - - STREAMS MB 0 0
 *     the baseline: the same producer run STREAMS times on the host with /bin/sh -c, its
 *     stdout read through a pipe and split into lines by the same code. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "exec-bench: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

/* ---- HTTP response decoder (head, chunked or sized body) feeding an SSE line splitter ---- */

enum { S_HEAD, S_SIZE, S_DATA, S_DATA_CRLF, S_TRAILER, S_LEN, S_EOF, S_DONE };

struct resp {
	int state, status, close;
	char head[8192];
	size_t head_len;
	uint64_t remaining;
	char size[40];
	size_t size_len, trailer_len;
	int raw;    /* body is plain output lines (pipe), not SSE */
	char *line; /* partial line carried between reads */
	size_t line_len, line_cap;
	uint64_t lines, bytes; /* output lines seen and their payload bytes */
	int saw_exit, exit_code, hi;
};

static void resp_reset(struct resp *r)
{
	char *l = r->line;
	size_t cap = r->line_cap;
	int raw = r->raw;
	memset(r, 0, sizeof(*r));
	r->line = l;
	r->line_cap = cap;
	r->raw = raw;
	r->exit_code = -1000;
}

static void on_line(struct resp *r, const char *p, size_t n)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (r->raw) {
		r->lines++;
		r->bytes += n;
		return;
	}
	if (n < 6 || memcmp(p, "data: ", 6) != 0)
		return;
	const char *k = memmem(p, n, "\"line\":\"", 8);
	if (k) {
		const char *s = k + 8, *e = p + n, *q = s;
		while (q < e && *q != '"')
			q += (*q == '\\') ? 2 : 1;
		r->lines++;
		r->bytes += (uint64_t)(q - s);
		if (q - s == 2 && memcmp(s, "hi", 2) == 0)
			r->hi = 1;
		return;
	}
	k = memmem(p, n, "\"exit_code\":", 12);
	if (k) {
		r->saw_exit = 1;
		r->exit_code = atoi(k + 12);
	} else if (memmem(p, n, "\"signal\":", 9)) {
		r->saw_exit = 1;
		r->exit_code = -1;
	}
}

static void body(struct resp *r, const char *p, size_t n)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (nl && r->line_len == 0) {
			on_line(r, p, take);
		} else {
			if (r->line_len + take > r->line_cap) {
				r->line_cap = (r->line_len + take) * 2 + 256;
				r->line = realloc(r->line, r->line_cap);
				if (!r->line)
					die("realloc");
			}
			memcpy(r->line + r->line_len, p, take);
			r->line_len += take;
			if (nl) {
				on_line(r, r->line, r->line_len);
				r->line_len = 0;
			}
		}
		if (!nl)
			return;
		p += take + 1;
		n -= take + 1;
	}
}

static int parse_head(struct resp *r)
{
	r->head[r->head_len] = '\0';
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	r->state = S_EOF;
	for (char *l = strstr(r->head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		char *h = l + 2;
		if (strncasecmp(h, "transfer-encoding:", 18) == 0 && strcasestr(h, "chunked") &&
		    strcasestr(h, "chunked") < strstr(h, "\r\n"))
			r->state = S_SIZE;
		else if (strncasecmp(h, "content-length:", 15) == 0 && r->state != S_SIZE) {
			r->remaining = strtoull(h + 15, NULL, 10);
			r->state = r->remaining ? S_LEN : S_DONE;
		} else if (strncasecmp(h, "connection:", 11) == 0 && strcasestr(h, "close") &&
		           strcasestr(h, "close") < strstr(h, "\r\n"))
			r->close = 1;
	}
	if (r->state == S_EOF)
		r->close = 1;
	return 0;
}

/* Feeds bytes read from the connection; -1 on a malformed response. Done when state is S_DONE;
 * bytes past the end are ignored (no pipelining). */
static int resp_feed(struct resp *r, const char *p, size_t n)
{
	while (n && r->state != S_DONE) {
		switch (r->state) {
		case S_HEAD:
			if (r->head_len >= sizeof(r->head) - 1)
				return -1;
			r->head[r->head_len++] = *p++;
			n--;
			if (r->head_len >= 4 &&
			    memcmp(r->head + r->head_len - 4, "\r\n\r\n", 4) == 0 &&
			    parse_head(r) < 0)
				return -1;
			break;
		case S_SIZE:
			if (*p == '\n') {
				r->size[r->size_len] = '\0';
				r->remaining = strtoull(r->size, NULL, 16);
				r->size_len = 0;
				r->state = r->remaining ? S_DATA : S_TRAILER;
				r->trailer_len = 0;
			} else if (r->size_len < sizeof(r->size) - 1) {
				r->size[r->size_len++] = *p;
			}
			p++;
			n--;
			break;
		case S_DATA:
		case S_LEN: {
			size_t k = n < r->remaining ? n : (size_t)r->remaining;
			body(r, p, k);
			p += k;
			n -= k;
			r->remaining -= k;
			if (!r->remaining)
				r->state = r->state == S_DATA ? S_DATA_CRLF : S_DONE;
			break;
		}
		case S_DATA_CRLF:
			if (*p == '\n')
				r->state = S_SIZE;
			p++;
			n--;
			break;
		case S_TRAILER:
			if (*p == '\n') {
				if (r->trailer_len == 0)
					r->state = S_DONE;
				r->trailer_len = 0;
			} else if (*p != '\r') {
				r->trailer_len++;
			}
			p++;
			n--;
			break;
		case S_EOF:
			body(r, p, n);
			n = 0;
			break;
		}
	}
	return 0;
}

/* ---- connections and requests ---- */

static int connect_to(const char *target)
{
	int fd;
	if (target[0] == '/') {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", target);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die(target);
		return fd;
	}
	char host[64];
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof(host))
		die("target is not host:port");
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("bad address");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(target);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int build_request(char *out, size_t cap, const char *method, const char *path,
                         const char *sid, const char *key, const char *json)
{
	char host[128], auth[512] = "";
	snprintf(host, sizeof(host), "%s%s", strcmp(sid, "-") ? sid : "agent",
	         strcmp(sid, "-") ? ".local" : "");
	if (strcmp(key, "-"))
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", key);
	int n;
	if (json)
		n = snprintf(out, cap,
		             "%s %s HTTP/1.1\r\nHost: %s\r\n%sAccept: text/event-stream\r\n"
		             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		             method, path, host, auth, strlen(json), json);
	else
		n = snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, path, host,
		             auth);
	if (n < 0 || (size_t)n >= cap)
		die("request too long");
	return n;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

/* One request on a keep-alive connection (reconnected when the server closes it); returns the
 * time in microseconds and leaves the decoded response in r. */
struct client {
	const char *target;
	int fd, reconnects;
};

static double timed_request(struct client *c, const char *req, int len, struct resp *r)
{
	static char buf[65536];
	if (c->fd < 0)
		c->fd = connect_to(c->target);
	resp_reset(r);
	double t0 = now_us();
	write_all(c->fd, req, (size_t)len);
	while (r->state != S_DONE) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (r->state == S_EOF)
				break;
			die("connection closed mid-response");
		}
		if (resp_feed(r, buf, (size_t)n) < 0)
			die("malformed response");
	}
	double t = now_us() - t0;
	if (r->close) {
		close(c->fd);
		c->fd = -1;
		c->reconnects++;
	}
	return t;
}

/* fork, exec PATH with argv {ARGV0, "hi"}, read its stdout from a pipe to EOF, wait. */
static double fork_exec(const char *path, const char *argv0)
{
	char buf[256];
	int p[2];
	double t0 = now_us();
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		char *a[] = {(char *)argv0, "hi", NULL};
		execv(path, a);
		_exit(127);
	}
	close(p[1]);
	ssize_t n, got = 0;
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		got += n;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	if (got != 3 || !WIFEXITED(st) || WEXITSTATUS(st))
		die(path);
	return now_us() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* nearest-rank percentile over a sorted array, in ms */
static double pct(const double *s, int n, double p)
{
	int i = (int)(p / 100.0 * n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return s[i] / 1000.0;
}

enum { P_PROXY_RUN, P_AGENT_RUN, P_PROXY_HEALTH, P_AGENT_HEALTH, P_FE_ECHO, P_FE_BUSYBOX, P_N };
static const char *probe_names[P_N] = {"proxy_run",           "agent_run",
                                       "proxy_health",        "agent_health",
                                       "host_fork_exec_echo", "host_fork_exec_busybox_echo"};

static int latency(int argc, char **argv)
{
	if (argc < 9)
		return 2;
	const char *proxy = argv[2], *sid = argv[3], *key = argv[4], *sock = argv[5],
	           *busybox = argv[6];
	int n = atoi(argv[7]), warm = atoi(argv[8]);
	const char *echo = "{\"command\":\"echo\",\"args\":[\"hi\"]}";
	char preq[1024], areq[1024], phreq[1024], ahreq[1024];
	int pl = build_request(preq, sizeof(preq), "POST", "/api/v1/processes/run", sid, key, echo);
	int al = build_request(areq, sizeof(areq), "POST", "/api/v1/processes/run", "-", "-", echo);
	int phl = build_request(phreq, sizeof(phreq), "GET", "/api/v1/health", sid, key, NULL);
	int ahl = build_request(ahreq, sizeof(ahreq), "GET", "/api/v1/health", "-", "-", NULL);
	struct client pc = {proxy, -1, 0}, ac = {sock, -1, 0};
	struct resp r = {0};
	double *t[P_N];
	for (int k = 0; k < P_N; k++)
		t[k] = calloc((size_t)n, sizeof(double));
	double t_all = now_us();
	for (int i = -warm; i < n; i++) {
		double d[P_N];
		d[P_PROXY_RUN] = timed_request(&pc, preq, pl, &r);
		if (r.status != 200 || !r.hi || r.exit_code != 0)
			die("run through the proxy did not print hi and exit 0");
		d[P_AGENT_RUN] = timed_request(&ac, areq, al, &r);
		if (r.status != 200 || !r.hi || r.exit_code != 0)
			die("run on the agent socket did not print hi and exit 0");
		d[P_PROXY_HEALTH] = timed_request(&pc, phreq, phl, &r);
		if (r.status != 200)
			die("health through the proxy");
		d[P_AGENT_HEALTH] = timed_request(&ac, ahreq, ahl, &r);
		if (r.status != 200)
			die("health on the agent socket");
		d[P_FE_ECHO] = fork_exec("/bin/echo", "echo");
		d[P_FE_BUSYBOX] = fork_exec(busybox, "echo");
		if (i >= 0)
			for (int k = 0; k < P_N; k++)
				t[k][i] = d[k];
	}
	printf("{\"n\":%d,\"warmup\":%d,\"seconds\":%.1f,\"proxy_reconnects\":%d,"
	       "\"agent_reconnects\":%d",
	       n, warm, (now_us() - t_all) / 1e6, pc.reconnects, ac.reconnects);
	for (int k = 0; k < P_N; k++) {
		double sum = 0;
		for (int i = 0; i < n; i++)
			sum += t[k][i];
		qsort(t[k], (size_t)n, sizeof(double), cmp);
		printf(",\"%s\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"mean\":%.3f,\"min\":%.3f}",
		       probe_names[k], pct(t[k], n, 50), pct(t[k], n, 95), pct(t[k], n, 99),
		       sum / n / 1000.0, t[k][0] / 1000.0);
	}
	printf("}\n");
	return 0;
}

/* ---- concurrent streams ---- */

static volatile int sampling = 1;
static long rss_max_kb;
static int sample_pid;

static long status_kb(int pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = atol(line + fl + 1);
			break;
		}
	fclose(f);
	return v;
}

static double cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (p &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
		return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static void *sampler(void *arg)
{
	(void)arg;
	while (sampling) {
		long v = status_kb(sample_pid, "VmRSS");
		if (v > rss_max_kb)
			rss_max_kb = v;
		usleep(10000);
	}
	return NULL;
}

struct stream {
	int fd;
	pid_t pid; /* pipe mode */
	struct resp r;
	double end_us;
	int done, ok;
};

static int streams(int argc, char **argv)
{
	if (argc < 10)
		return 2;
	int pipe_mode = strcmp(argv[2], "pipe") == 0;
	const char *target = argv[3], *sid = argv[4], *key = argv[5];
	int ns = atoi(argv[6]), mb = atoi(argv[7]);
	int agent_pid = atoi(argv[8]), proxy_pid = atoi(argv[9]);
	uint64_t want = (uint64_t)mb << 20;
	char cmd[512], json[1024], req[2048];
	snprintf(cmd, sizeof(cmd), "head -c %llu /dev/zero | tr '\\\\0' 'a' | fold -w 100",
	         (unsigned long long)want);
	snprintf(json, sizeof(json), "{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"%s\"]}", cmd);
	int rl = pipe_mode ? 0
	                   : build_request(req, sizeof(req), "POST", "/api/v1/processes/run", sid,
	                                   key, json);
	struct stream *s = calloc((size_t)ns, sizeof(*s));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	long rss_before = 0, hwm_after = 0;
	double agent_cpu0 = 0, proxy_cpu0 = 0;
	pthread_t th;
	if (agent_pid > 0) {
		FILE *f;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/clear_refs", agent_pid);
		if ((f = fopen(path, "w"))) { /* "5": reset VmHWM to the current RSS */
			fputs("5", f);
			fclose(f);
		}
		rss_before = status_kb(agent_pid, "VmRSS");
		rss_max_kb = rss_before;
		sample_pid = agent_pid;
		agent_cpu0 = cpu_s(agent_pid);
		pthread_create(&th, NULL, sampler, NULL);
	}
	if (proxy_pid > 0)
		proxy_cpu0 = cpu_s(proxy_pid);
	double t0 = now_us();
	for (int i = 0; i < ns; i++) {
		s[i].r.raw = pipe_mode;
		resp_reset(&s[i].r);
		if (pipe_mode) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0)
				die("pipe");
			pid_t pid = fork();
			if (pid == 0) {
				dup2(p[1], 1);
				execl("/bin/sh", "sh", "-c", target, (char *)NULL);
				_exit(127);
			}
			close(p[1]);
			s[i].fd = p[0];
			s[i].pid = pid;
			s[i].r.state = S_EOF;
		} else {
			s[i].fd = connect_to(target);
			write_all(s[i].fd, req, (size_t)rl);
		}
		fcntl(s[i].fd, F_SETFL, fcntl(s[i].fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, s[i].fd, &ev);
	}
	static char buf[262144];
	int left = ns;
	while (left) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, 120000);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die("streams stalled for 120 s");
		for (int e = 0; e < k; e++) {
			struct stream *x = &s[evs[e].data.u32];
			for (;;) {
				ssize_t n = read(x->fd, buf, sizeof(buf));
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0 && errno == EAGAIN)
					break;
				if (n > 0 && resp_feed(&x->r, buf, (size_t)n) < 0)
					die("malformed response");
				if (n <= 0 || x->r.state == S_DONE) {
					x->done = 1;
					x->end_us = now_us() - t0;
					epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
					close(x->fd);
					if (x->r.line_len) { /* unterminated last line */
						on_line(&x->r, x->r.line, x->r.line_len);
						x->r.line_len = 0;
					}
					if (pipe_mode) {
						int st;
						waitpid(x->pid, &st, 0);
						x->r.saw_exit = WIFEXITED(st);
						x->r.exit_code =
						        WIFEXITED(st) ? WEXITSTATUS(st) : -1;
						x->r.status = 200;
					}
					left--;
					break;
				}
			}
		}
	}
	double wall = now_us() - t0;
	if (agent_pid > 0) {
		sampling = 0;
		pthread_join(th, NULL);
		hwm_after = status_kb(agent_pid, "VmHWM");
	}
	uint64_t lines = 0, bytes = 0;
	int ok = 0;
	double *ends = calloc((size_t)ns, sizeof(double));
	for (int i = 0; i < ns; i++) {
		lines += s[i].r.lines;
		bytes += s[i].r.bytes;
		ends[i] = s[i].end_us;
		if (s[i].r.status == 200 && s[i].r.saw_exit && s[i].r.exit_code == 0 &&
		    s[i].r.bytes == want)
			ok++;
		else
			fprintf(stderr,
			        "stream %d: status %d exit %d (seen %d) bytes %llu of %llu\n", i,
			        s[i].r.status, s[i].r.exit_code, s[i].r.saw_exit,
			        (unsigned long long)s[i].r.bytes, (unsigned long long)want);
	}
	qsort(ends, (size_t)ns, sizeof(double), cmp);
	printf("{\"streams\":%d,\"mb_each\":%d,\"ok\":%d,\"wall_ms\":%.1f,\"lines\":%llu,"
	       "\"payload_mib\":%.1f,\"mib_per_s\":%.1f,\"stream_end_ms\":{\"first\":%.1f,"
	       "\"p50\":%.1f,\"last\":%.1f}",
	       ns, mb, ok, wall / 1000, (unsigned long long)lines, bytes / 1048576.0,
	       bytes / 1048576.0 / (wall / 1e6), ends[0] / 1000, pct(ends, ns, 50),
	       ends[ns - 1] / 1000);
	if (agent_pid > 0)
		printf(",\"agent_rss_before_kb\":%ld,\"agent_rss_max_sampled_kb\":%ld,"
		       "\"agent_hwm_kb\":%ld,\"agent_cpu_s\":%.2f",
		       rss_before, rss_max_kb, hwm_after, cpu_s(agent_pid) - agent_cpu0);
	if (proxy_pid > 0)
		printf(",\"proxy_cpu_s\":%.2f", cpu_s(proxy_pid) - proxy_cpu0);
	printf("}\n");
	return ok == ns ? 0 : 1;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (argc > 1 && strcmp(argv[1], "latency") == 0)
		rc = latency(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "streams") == 0)
		rc = streams(argc, argv);
	if (rc == 2)
		fprintf(stderr,
		        "usage: exec-bench latency PROXY SID KEY AGENT_SOCK BUSYBOX N WARMUP\n"
		        "       exec-bench streams http|pipe TARGET SID KEY STREAMS MB "
		        "AGENT_PID PROXY_PID\n");
	return rc;
}
