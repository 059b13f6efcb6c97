/* Test and benchmark driver for lib/net: stands in for the executor. `serve` runs net_init and
 * the DNS forwarder on a libuv loop and takes one-line commands on a unix socket (what the
 * integration tests use); `ctl` sends one; the other subcommands run one call and exit; `bench`
 * times attach + detach. Configuration comes from flags so tests never touch the defaults. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/util.h"
#include "net/internal.h"
#include "net/net.h"

static struct net_config cfg;
static const char *upstreams[8];
static size_t n_upstreams;
static struct net_dns *dns;
static uv_pipe_t ctl_server;

static int usage(void)
{
	fprintf(stderr,
	        "usage: hutch-netdrv [--state DIR] [--pool CIDR] [--bridge NAME] [--prefix P]\n"
	        "         [--table T] [--upstream A:P]... [--ttl-min S] [--ttl-max S]\n"
	        "         [--dns-timeout MS] [--mtu N] COMMAND ...\n"
	        "commands: serve SOCK | ctl SOCK LINE... | init | attach ID NETNS [POLICY]\n"
	        "          policy ID [POLICY] | detach ID | orphans [LIVE_ID...] | info ID\n"
	        "          uninstall | check [POLICY] | reap | render ID | resolver | bench [--policy JSON] NETNS...\n");
	return 2;
}

static int parse_opts(int argc, char **argv)
{
	static const struct option opts[] = {{"state", 1, 0, 's'},
	                                     {"pool", 1, 0, 'p'},
	                                     {"bridge", 1, 0, 'b'},
	                                     {"prefix", 1, 0, 'x'},
	                                     {"table", 1, 0, 't'},
	                                     {"upstream", 1, 0, 'u'},
	                                     {"ttl-min", 1, 0, 'm'},
	                                     {"ttl-max", 1, 0, 'M'},
	                                     {"dns-timeout", 1, 0, 'd'},
	                                     {"mtu", 1, 0, 'T'},
	                                     {0, 0, 0, 0}};
	int c;

	cfg.state_dir = "/tmp/hutch-netdrv";
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.state_dir = optarg;
			break;
		case 'p':
			cfg.pool = optarg;
			break;
		case 'b':
			cfg.bridge = optarg;
			break;
		case 'x':
			cfg.ifname_prefix = optarg;
			break;
		case 't':
			cfg.table = optarg;
			break;
		case 'u':
			if (n_upstreams + 1 >= sizeof(upstreams) / sizeof(upstreams[0]))
				return -1;
			upstreams[n_upstreams++] = optarg;
			cfg.dns_upstreams = upstreams;
			break;
		case 'm':
			cfg.dns_ttl_min = (uint32_t)atoi(optarg);
			break;
		case 'M':
			cfg.dns_ttl_max = (uint32_t)atoi(optarg);
			break;
		case 'd':
			cfg.dns_timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'T':
			cfg.mtu = (unsigned)atoi(optarg);
			break;
		default:
			return -1;
		}
	}
	return optind;
}

/* The rules lib/net's compiler makes for the sandbox's current state, as nft lists them, one
 * "out: RULE" or "in: RULE" line each: tests compare them with what the kernel holds. */
static int render(const char *id, struct buf *out, struct hutch_error *err)
{
	struct net_names n;
	struct net_pool pool;
	struct net_state st = {0};
	struct net_policy p = {0};
	struct nr_rule rules[NET_MAX_RULES];
	struct buf text = BUF_INIT;
	int r;

	if ((r = net_names_make(&cfg, id, &n, err)) < 0 ||
	    (r = net_cfg_pool(&cfg, &pool, err)) < 0 ||
	    (r = net_state_read(&cfg, n.key, &st, err)) < 0 ||
	    (r = net_policy_parse(st.policy, &p, err)) < 0)
		goto out;
	struct net_sb sb = {&n, &pool, st.ip, st.gen};
	buf_adds(out, "ok\n");
	for (int dir = 0; dir < 2; dir++) {
		size_t nr = dir ? net_rules_in(&p, &sb, rules) : net_rules_out(&p, &sb, rules);
		for (size_t i = 0; i < nr; i++) {
			buf_reset(&text);
			nr_render(&rules[i], &text);
			buf_printf(out, "%s: %s", dir ? "in" : "out", buf_cstr(&text));
		}
	}
out:
	buf_release(&text);
	net_policy_release(&p);
	net_state_release(&st);
	return r;
}

/* Runs one command (argv form); writes "ok ..." or "err STATUS message" to out. */
static int run(int argc, char **argv, struct buf *out)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	const char *cmd = argc ? argv[0] : "";
	char ip[16];
	int r = -EINVAL;

	if (strcmp(cmd, "init") == 0 && argc == 1) {
		r = net_init(&cfg, &err);
	} else if (strcmp(cmd, "attach") == 0 && (argc == 3 || argc == 4)) {
		r = net_sandbox_attach(&cfg, argv[1], argv[2], argc == 4 ? argv[3] : NULL, ip,
		                       &err);
		if (r == 0)
			buf_printf(out, "ok %s\n", ip);
	} else if (strcmp(cmd, "policy") == 0 && (argc == 2 || argc == 3)) {
		r = net_sandbox_policy_set(&cfg, argv[1], argc == 3 ? argv[2] : NULL, &err);
	} else if (strcmp(cmd, "detach") == 0 && argc == 2) {
		r = net_sandbox_detach(&cfg, argv[1], &err);
	} else if (strcmp(cmd, "orphans") == 0) {
		r = net_cleanup_orphans(&cfg, (const char *const *)argv + 1, (size_t)argc - 1,
		                        &err);
		if (r >= 0)
			buf_printf(out, "ok %d\n", r);
	} else if (strcmp(cmd, "info") == 0 && argc == 2) {
		struct net_sandbox_info info;
		r = net_sandbox_info(&cfg, argv[1], &info, &err);
		if (r == 0)
			buf_printf(out, "ok %s %s %u\n", info.ip, info.veth, info.gen);
	} else if (strcmp(cmd, "uninstall") == 0 && argc == 1) {
		r = net_host_remove(&cfg, &err);
	} else if (strcmp(cmd, "check") == 0 && (argc == 1 || argc == 2)) {
		r = net_policy_check(&cfg, argc == 2 ? argv[1] : NULL, &err);
	} else if (strcmp(cmd, "reap") == 0 && argc == 1) {
		r = net_reap(&cfg, &err);
	} else if (strcmp(cmd, "render") == 0 && argc == 2) {
		r = render(argv[1], out, &err);
	} else if (strcmp(cmd, "resolver") == 0 && argc == 1) {
		r = net_resolver_addr(&cfg, ip);
		if (r == 0)
			buf_printf(out, "ok %s\n", ip);
	} else if (strcmp(cmd, "stats") == 0 && argc == 1 && dns) {
		struct net_dns_stats s;
		net_dns_stats_get(dns, &s);
		buf_printf(out,
		           "ok queries=%lu answered=%lu failed=%lu dropped=%lu learned=%lu "
		           "refreshes=%lu\n",
		           (unsigned long)s.queries, (unsigned long)s.answered,
		           (unsigned long)s.failed, (unsigned long)s.dropped,
		           (unsigned long)s.learned, (unsigned long)s.refreshes);
		r = 0;
	} else {
		hutch_error_set(&err, -EINVAL, "bad command '%s'", cmd);
	}
	if (r < 0)
		buf_printf(out, "err %d %s\n", hutch_error_http_status(&err), err.msg);
	else if (out->len == 0)
		buf_adds(out, "ok\n");
	return r < 0 ? 1 : 0;
}

/* ---- serve: one command per connection, "CMD ARG ARG [JSON...]" (the JSON may have spaces,
 * so the words after the fixed ones are joined back) ---- */

struct conn {
	uv_pipe_t h;
	struct buf in;
	uv_write_t wr;
	struct buf out;
};

static void conn_closed(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;

	buf_release(&c->in);
	buf_release(&c->out);
	free(c);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	uv_close((uv_handle_t *)w->handle, conn_closed);
}

static int fixed_words(const char *cmd)
{
	return strcmp(cmd, "attach") == 0   ? 3
	       : strcmp(cmd, "policy") == 0 ? 2
	       : strcmp(cmd, "check") == 0  ? 1
	                                    : 1 << 20;
}

static void line_run(struct conn *c, char *line)
{
	char *argv[256], *save = NULL, *w;
	int argc = 0;
	uv_buf_t b;

	for (w = strtok_r(line, " ", &save); w && argc < 255; w = strtok_r(NULL, " ", &save)) {
		argv[argc++] = w;
		if (argc == fixed_words(argv[0]) && save && *save) {
			argv[argc++] = save; /* the rest of the line: the policy JSON */
			break;
		}
	}
	argv[argc] = NULL;
	if (argc == 1 && strcmp(argv[0], "quit") == 0) {
		buf_adds(&c->out, "ok\n");
		net_dns_stop(dns);
		dns = NULL;
		uv_close((uv_handle_t *)&ctl_server, NULL);
	} else {
		run(argc, argv, &c->out);
	}
	b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	uv_write(&c->wr, (uv_stream_t *)&c->h, &b, 1, on_written);
}

static void conn_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct conn *c = (struct conn *)h;

	(void)s;
	buf_grow(&c->in, 4096);
	*b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = (struct conn *)s;
	char *nl;

	(void)b;
	if (n < 0) {
		uv_close((uv_handle_t *)s, conn_closed);
		return;
	}
	c->in.len += (size_t)n;
	c->in.data[c->in.len] = '\0';
	if ((nl = strchr(c->in.data, '\n'))) {
		*nl = '\0';
		uv_read_stop(s);
		line_run(c, c->in.data);
	}
}

static void on_conn(uv_stream_t *server, int status)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (status < 0 || !c)
		return;
	uv_pipe_init(server->loop, &c->h, 0);
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
		uv_close((uv_handle_t *)&c->h, conn_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->h, conn_alloc, on_read);
}

static int serve(const char *sock)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	uv_loop_t *loop = uv_default_loop();
	int r;

	if (net_init(&cfg, &err) < 0 || net_dns_start(&cfg, loop, &dns, &err) < 0) {
		fprintf(stderr, "hutch-netdrv: %s\n", err.msg);
		return 1;
	}
	unlink(sock);
	uv_pipe_init(loop, &ctl_server, 0);
	if ((r = uv_pipe_bind(&ctl_server, sock)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&ctl_server, 16, on_conn)) < 0) {
		fprintf(stderr, "hutch-netdrv: %s: %s\n", sock, uv_strerror(r));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}

static int ctl(const char *sock, int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct buf line = BUF_INIT;
	char resp[8192];
	ssize_t n, got = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("hutch-netdrv: connect");
		return 1;
	}
	for (int i = 0; i < argc; i++)
		buf_printf(&line, "%s%s", i ? " " : "", argv[i]);
	buf_addch(&line, '\n');
	write_all(fd, line.data, line.len);
	while ((n = read(fd, resp + got, sizeof(resp) - 1 - (size_t)got)) > 0)
		got += n;
	resp[got] = '\0';
	close(fd);
	buf_release(&line);
	fputs(resp, strncmp(resp, "ok", 2) == 0 ? stdout : stderr);
	return strncmp(resp, "ok", 2) == 0 ? 0 : 1;
}

int bench_main(const struct net_config *c, int argc, char **argv);

int main(int argc, char **argv)
{
	int i = parse_opts(argc, argv);
	struct buf out = BUF_INIT;
	int r;

	if (i < 0 || i >= argc)
		return usage();
	if (strcmp(argv[i], "serve") == 0 && i + 1 < argc)
		return serve(argv[i + 1]);
	if (strcmp(argv[i], "ctl") == 0 && i + 2 < argc)
		return ctl(argv[i + 1], argc - i - 2, argv + i + 2);
	if (strcmp(argv[i], "bench") == 0)
		return bench_main(&cfg, argc - i - 1, argv + i + 1);
	r = run(argc - i, argv + i, &out);
	fputs(buf_cstr(&out), r == 0 ? stdout : stderr);
	buf_release(&out);
	return r;
}
