/* hutchd's option table and its three sources (file, environment, flags). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "config.h"

enum opt_type { OPT_STR, OPT_INT };

struct opt {
	const char *name; /* flag is --name, env is HUTCH_NAME (dashes become underscores) */
	enum opt_type type;
	size_t offset;
	const char *def;
	const char *help;
};

#define S(field) OPT_STR, offsetof(struct hutchd_config, field)
#define I(field) OPT_INT, offsetof(struct hutchd_config, field)

static const struct opt opts[] = {
        {"data-dir", S(data_dir), "/var/lib/hutch", "state directory (store, images, sandboxes)"},
        {"run-dir", S(run_dir), "/run/hutch", "runtime directory (agent sockets)"},
        {"listen", S(listen), "127.0.0.1:8900", "api address (ADDR:PORT)"},
        {"proxy-listen", S(proxy_listen), "127.0.0.1:9443", "proxy address (ADDR:PORT)"},
        {"proxy-domain", S(proxy_domain), "", "domain for sandbox_url ({id}.DOMAIN)"},
        {"proxy-url", S(proxy_url), "", "public proxy origin when no domain is set"},
        {"proxy-advertise", S(proxy_advertise), "",
         "IPV4:PORT where proxies on other hosts reach this host's proxy, to forward requests "
         "for its sandboxes (default: none, this host's sandboxes are served by its own proxy "
         "only)"},
        {"proxy-workers", I(proxy_workers), "0",
         "proxy worker threads (0 = one per core, at most 16)"},
        {"proxy-connect-timeout-ms", I(proxy_connect_timeout_ms), "5000",
         "proxy: connecting to a sandbox"},
        {"proxy-first-byte-timeout-ms", I(proxy_first_byte_timeout_ms), "300000",
         "proxy: a sandbox's first response byte"},
        {"proxy-wake-timeout-ms", I(proxy_wake_timeout_ms), "30000",
         "proxy: waiting for a suspended sandbox to resume"},
        {"roles", S(roles), "api,proxy,executor", "roles to run in this process tree"},
        {"api-url", S(api_url), "", "how proxy and executor reach the api (default: --listen)"},
        {"node-id", S(node_id), "", "executor id (default: host name)"},
        {"agent-path", S(agent_path), "", "hutch-agent binary (default: next to hutchd)"},
        {"store", S(store), "sqlite",
         "\"sqlite\" (DATA_DIR/hutch.db), a SQLite file path, or a postgresql:// URL (one "
         "store shared by several api/proxy nodes)"},
        {"auth", S(auth), "key", "\"key\" (API keys) or \"none\" (development only)"},
        {"log-level", S(log_level), "info", "debug, info, warn or error"},
        {"cgroup-name", S(cgroup_name), "hutch",
         "top cgroup of the sandboxes (unique per hutchd on a machine)"},
        {"network-cidr", S(network_cidr), "10.88.0.0/16", "sandbox address pool"},
        {"network-bridge", S(network_bridge), "hutch0", "host device holding the gateway"},
        {"network-table", S(network_table), "hutch", "nftables table (inet family)"},
        {"dns-upstreams", S(dns_upstreams), "",
         "DNS servers for sandboxes' names, A.B.C.D[:PORT],... (default: the host's "
         "resolv.conf)"},
        {"network-veth-prefix", S(network_veth_prefix), "hv",
         "host veth name prefix (1-3 characters, unique per hutchd on a machine)"},
        {"default-timeout-secs", I(default_timeout_secs), "600", "timeout_secs when not given"},
        {"max-timeout-secs", I(max_timeout_secs), "86400", "largest timeout_secs accepted"},
        {"archive-after-secs", I(archive_after_secs), "3600",
         "move terminated sandboxes to /archived-sandboxes after this long"},
        {"create-wait-ms", I(create_wait_ms), "60000",
         "how long a create blocks for running without X-Tensorlake-Request-Timeout-Ms"},
        {"max-sandboxes", I(max_sandboxes_per_ns), "1000", "live sandboxes per namespace"},
        {"max-body-bytes", I(max_body_bytes), "1048576", "largest api request body"},
        {"id-base", I(id_base), "100000", "first host uid/gid of the sandbox id range"},
        {"executor-capacity", I(executor_capacity), "0", "sandboxes on this node (0 = no limit)"},
        {"suspend-to-disk-secs", I(suspend_to_disk_secs), "300",
         "checkpoint a suspended sandbox to disk after this long (needs CRIU; -1 never)"},
        {"config", S(config_file), "", "config file (name = value lines)"},
};

static int opt_set(struct hutchd_config *cfg, const struct opt *o, const char *value,
                   struct hutch_error *err)
{
	void *field = (char *)cfg + o->offset;
	if (o->type == OPT_STR) {
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	}
	uint64_t v;
	bool neg = value[0] == '-';
	if (sv_to_u64(sv_from(value + neg), INT64_MAX, &v) < 0 || (neg && v != 1))
		return hutch_error_set(err, -EINVAL, "option %s: '%s' is not an integer >= -1",
		                       o->name, value);
	*(int64_t *)field = neg ? -1 : (int64_t)v;
	return 0;
}

static const struct opt *opt_find(struct sv name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (sv_eq_cstr(name, opts[i].name))
			return &opts[i];
	return NULL;
}

static int load_file(struct hutchd_config *cfg, const char *path, struct hutch_error *err)
{
	struct buf b = BUF_INIT;
	int r = read_file(path, 1 << 20, &b);
	if (r < 0) {
		buf_release(&b);
		return hutch_error_set(err, r, "reading config file %s: %s", path, strerror(-r));
	}
	struct sv rest = sv_make(buf_cstr(&b), b.len), line, key, val;
	int lineno = 0;
	while (r == 0 && rest.len) {
		sv_split(rest, '\n', &line, &rest);
		lineno++;
		line = sv_trim(line);
		if (line.len == 0 || line.p[0] == '#')
			continue;
		if (!sv_split(line, '=', &key, &val)) {
			r = hutch_error_set(err, -EINVAL, "%s:%d: expected name = value", path,
			                    lineno);
			break;
		}
		const struct opt *o = opt_find(sv_trim(key));
		if (!o) {
			r = hutch_error_set(err, -EINVAL, "%s:%d: unknown option '%.*s'", path,
			                    lineno, SV_FMT(sv_trim(key)));
			break;
		}
		_cleanup_free_ char *v = sv_dup(sv_trim(val));
		r = opt_set(cfg, o, v, err);
	}
	buf_release(&b);
	return r;
}

static void env_name(const char *opt, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "HUTCHD_%s", opt);
	for (size_t i = 7; i < n && i < size; i++)
		out[i] = out[i] == '-'
		                 ? '_'
		                 : (char)(out[i] >= 'a' && out[i] <= 'z' ? out[i] - 32 : out[i]);
}

void hutchd_config_usage(FILE *out)
{
	fprintf(out, "usage: hutchd [--name value]...\n       hutchd --cleanup [--data-dir DIR]"
	             "   destroy every sandbox of DIR\n\nOptions (also HUTCHD_NAME in the "
	             "environment, or name = value in --config FILE):\n");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		fprintf(out, "  --%-22s %s%s%s%s\n", opts[i].name, opts[i].help,
		        opts[i].def[0] ? " [" : "", opts[i].def, opts[i].def[0] ? "]" : "");
}

static const char *find_config_file(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--config") == 0)
			return argv[i + 1];
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	const char *env = getenv("HUTCHD_CONFIG");
	return env && env[0] ? env : NULL;
}

static int load_argv(struct hutchd_config *cfg, int argc, char **argv, struct hutch_error *err)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			hutchd_config_usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--version") == 0) {
			printf("hutchd %s\n", HUTCH_VERSION);
			exit(0);
		}
		if (strncmp(a, "--", 2) != 0)
			return hutch_error_set(err, -EINVAL,
			                       "unexpected argument '%s' (see --help)", a);
		struct sv name = sv_from(a + 2), value;
		const char *v;
		if (sv_split(name, '=', &name, &value)) {
			v = value.p;
		} else {
			if (i + 1 >= argc)
				return hutch_error_set(err, -EINVAL, "option %s needs a value", a);
			v = argv[++i];
		}
		const struct opt *o = opt_find(name);
		if (!o)
			return hutch_error_set(err, -EINVAL, "unknown option '%s' (see --help)", a);
		int r = opt_set(cfg, o, v, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Names that end up in paths, device and table names: [A-Za-z0-9._-], not starting with '.'. */
static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

bool hutchd_advertise_valid(const char *addr)
{
	struct sv host, port;
	uint64_t p;
	char hostz[INET_ADDRSTRLEN];
	struct in_addr a;
	if (!sv_rsplit(sv_from(addr), ':', &host, &port) || host.len == 0 ||
	    host.len >= sizeof(hostz) || sv_to_u64(port, 65535, &p) < 0 || p == 0)
		return false;
	memcpy(hostz, host.p, host.len);
	hostz[host.len] = '\0';
	return inet_pton(AF_INET, hostz, &a) == 1 && a.s_addr != htonl(INADDR_ANY);
}

static int check(struct hutchd_config *cfg, struct hutch_error *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];
		if (o->type == OPT_INT && *(int64_t *)((char *)cfg + o->offset) < 0 &&
		    strcmp(o->name, "suspend-to-disk-secs") != 0)
			return hutch_error_set(err, -EINVAL, "option --%s must not be negative",
			                       o->name);
	}
	if (cfg->node_id[0] && !name_ok(cfg->node_id, 64))
		return hutch_error_set(err, -EINVAL,
		                       "--node-id: 1-64 of letters, digits, '.', '_' and '-'");
	if (cfg->proxy_advertise[0] && !hutchd_advertise_valid(cfg->proxy_advertise))
		return hutch_error_set(
		        err, -EINVAL,
		        "--proxy-advertise '%s': an IPv4 address and a port (1-65535), "
		        "e.g. 192.0.2.10:9443",
		        cfg->proxy_advertise);
	if (!name_ok(cfg->cgroup_name, 32))
		return hutch_error_set(err, -EINVAL,
		                       "--cgroup-name: 1-32 of letters, digits, '.', '_' and '-'");
	if (!name_ok(cfg->network_bridge, 15) || strchr(cfg->network_bridge, '.'))
		return hutch_error_set(err, -EINVAL,
		                       "--network-bridge: a device name of 1-15 letters, digits, "
		                       "'_' and '-'");
	if (!name_ok(cfg->network_table, 32) || strchr(cfg->network_table, '.'))
		return hutch_error_set(err, -EINVAL,
		                       "--network-table: 1-32 of letters, digits, '_' and '-'");
	size_t pl = strlen(cfg->network_veth_prefix);
	if (pl < 1 || pl > 3 || !name_ok(cfg->network_veth_prefix, 3) ||
	    strchr(cfg->network_veth_prefix, '.'))
		return hutch_error_set(err, -EINVAL,
		                       "--network-veth-prefix: 1-3 letters, digits, '_' or '-'");
	return 0;
}

static int derive(struct hutchd_config *cfg, struct hutch_error *err)
{
	int r = check(cfg, err);
	if (r < 0)
		return r;
	if (strcmp(cfg->auth, "key") != 0 && strcmp(cfg->auth, "none") != 0)
		return hutch_error_set(err, -EINVAL, "--auth must be \"key\" or \"none\"");
	if (!cfg->api_url[0]) {
		free(cfg->api_url);
		const char *l = cfg->listen;
		cfg->api_url = strncmp(l, "0.0.0.0:", 8) == 0 ? xasprintf("127.0.0.1:%s", l + 8)
		                                              : xstrdup(l);
	}
	if (!cfg->node_id[0]) {
		char host[256] = "node";
		gethostname(host, sizeof(host) - 1);
		free(cfg->node_id);
		cfg->node_id = xstrdup(host);
	}
	if (!cfg->proxy_url[0]) {
		free(cfg->proxy_url);
		const char *l = cfg->proxy_listen;
		cfg->proxy_url = strncmp(l, "0.0.0.0:", 8) == 0
		                         ? xasprintf("http://127.0.0.1:%s", l + 8)
		                         : xasprintf("http://%s", l);
	}
	size_t ul = strlen(cfg->proxy_url);
	if (ul && cfg->proxy_url[ul - 1] == '/')
		cfg->proxy_url[ul - 1] = '\0';
	if (!cfg->agent_path[0]) {
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		free(cfg->agent_path);
		if (n > 0) {
			self[n] = '\0';
			char *slash = strrchr(self, '/');
			if (slash)
				*slash = '\0';
			cfg->agent_path = xasprintf("%s/hutch-agent", self);
		} else {
			cfg->agent_path = xstrdup("/usr/local/lib/hutch/hutch-agent");
		}
	}
	if (cfg->dns_upstreams[0]) {
		size_t n = 1;
		for (const char *p = cfg->dns_upstreams; *p; p++)
			n += *p == ',';
		cfg->dns_list = xcalloc(n + 1, sizeof(char *));
		n = 0;
		struct sv rest = sv_from(cfg->dns_upstreams), one;
		while (rest.len) {
			sv_split(rest, ',', &one, &rest);
			if (sv_trim(one).len)
				cfg->dns_list[n++] = sv_dup(sv_trim(one));
		}
	}
	cfg->store_path = strcmp(cfg->store, "sqlite") == 0
	                          ? xasprintf("%s/hutch.db", cfg->data_dir)
	                          : xstrdup(cfg->store);
	if (log_level_parse(cfg->log_level) < 0)
		return hutch_error_set(err, -EINVAL, "unknown --log-level '%s'", cfg->log_level);
	return 0;
}

int hutchd_config_load(struct hutchd_config *cfg, int argc, char **argv, struct hutch_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		opt_set(cfg, &opts[i], opts[i].def, NULL);
	const char *file = find_config_file(argc, argv);
	int r = file ? load_file(cfg, file, err) : 0;
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(opts); i++) {
		char name[64];
		env_name(opts[i].name, name, sizeof(name));
		const char *v = getenv(name);
		if (v && strcmp(opts[i].name, "config") != 0)
			r = opt_set(cfg, &opts[i], v, err);
	}
	if (r == 0)
		r = load_argv(cfg, argc, argv, err);
	if (r == 0)
		r = derive(cfg, err);
	return r;
}

void hutchd_config_release(struct hutchd_config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opts[i].type == OPT_STR)
			free(*(char **)((char *)cfg + opts[i].offset));
	free(cfg->store_path);
	free(cfg->node_token);
	for (size_t i = 0; cfg->dns_list && cfg->dns_list[i]; i++)
		free(cfg->dns_list[i]);
	free(cfg->dns_list);
	memset(cfg, 0, sizeof(*cfg));
}

bool hutchd_config_has_role(const struct hutchd_config *cfg, const char *role)
{
	struct sv rest = sv_from(cfg->roles), item;
	while (rest.len) {
		sv_split(rest, ',', &item, &rest);
		if (sv_eq_cstr(sv_trim(item), role))
			return true;
	}
	return false;
}

int hutchd_node_token_load(struct hutchd_config *cfg, bool create, struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/node.token", cfg->data_dir);
	struct buf b = BUF_INIT;
	int r = read_file(path, 4096, &b);
	if (r == -ENOENT && create) {
		unsigned char raw[24];
		char hex[49];
		random_bytes(raw, sizeof(raw));
		hex_encode(raw, sizeof(raw), hex);
		r = write_file_atomic(path, hex, 48, 0600);
		if (r == 0)
			r = read_file(path, 4096, &b);
	}
	if (r < 0) {
		buf_release(&b);
		return hutch_error_set(err, r, "reading the node token %s: %s", path, strerror(-r));
	}
	free(cfg->node_token);
	struct sv t = sv_trim(sv_make(b.data, b.len));
	cfg->node_token = sv_dup(t);
	buf_release(&b);
	return 0;
}
