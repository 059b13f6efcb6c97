/* hutchd configuration: one declarative table of options, each settable by a command-line flag
 * (--name value), an environment variable (HUTCH_NAME) or a config file line (name = value);
 * flags win over the environment, which wins over the file. */
#ifndef HUTCHD_CONFIG_H
#define HUTCHD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

struct hutchd_config {
	char *data_dir;        /* --data-dir, default /var/lib/hutch */
	char *run_dir;         /* --run-dir, default /run/hutch */
	char *listen;          /* --listen, api address, default 127.0.0.1:8900 */
	char *proxy_listen;    /* --proxy-listen, default 127.0.0.1:9443 */
	char *proxy_domain;    /* --proxy-domain: sandbox_url = http://{id}.{domain}[:port] */
	char *proxy_url;       /* --proxy-url: public proxy origin when no domain is set */
	char *proxy_advertise; /* --proxy-advertise: IPV4:PORT of this host's proxy for other
	                        * hosts' proxies, "" = none (the executor reports "local") */
	char *roles;           /* --roles, default "api,proxy,executor" */
	int64_t proxy_workers; /* --proxy-workers, 0 = one per core */
	int64_t proxy_connect_timeout_ms;    /* --proxy-connect-timeout-ms, 5000 */
	int64_t proxy_first_byte_timeout_ms; /* --proxy-first-byte-timeout-ms, 300000 */
	int64_t proxy_wake_timeout_ms;       /* --proxy-wake-timeout-ms, 30000 */
	char *api_url;      /* --api-url: how the proxy and executor reach the api */
	char *node_id;      /* --node-id: this executor's id, default the host name */
	char *agent_path;   /* --agent-path: the hutch-agent binary */
	char *store;        /* --store: "sqlite" (default, DATA_DIR/hutch.db) or a path */
	char *auth;         /* --auth: "key" (default) or "none" (namespace default, dev only) */
	char *log_level;    /* --log-level: debug, info, warn, error */
	char *cgroup_name;  /* --cgroup-name: top cgroup directory, default hutch */
	char *network_cidr; /* --network-cidr: sandbox address pool, default 10.88.0.0/16 */
	/* two servers on one machine need their own of each (tests do that) */
	char *network_bridge;         /* --network-bridge, default hutch0 */
	char *network_table;          /* --network-table, default hutch */
	char *network_veth_prefix;    /* --network-veth-prefix, default hv */
	char *dns_upstreams;          /* --dns-upstreams: "A.B.C.D[:PORT],...", "" = resolv.conf */
	int64_t default_timeout_secs; /* --default-timeout-secs, 600 */
	int64_t max_timeout_secs;     /* --max-timeout-secs, 86400 */
	int64_t archive_after_secs;   /* --archive-after-secs, 3600 */
	int64_t create_wait_ms;       /* --create-wait-ms: blocking create bound without header */
	int64_t max_sandboxes_per_ns; /* --max-sandboxes: live sandboxes per namespace, 1000 */
	int64_t max_body_bytes;       /* --max-body-bytes: api request bodies, 1 MiB */
	int64_t id_base;              /* --id-base: first host uid of sandboxes, 100000 */
	int64_t executor_capacity;    /* --executor-capacity: sandboxes per node, 0 = no limit */
	int64_t suspend_to_disk_secs; /* --suspend-to-disk-secs: frozen this long -> CRIU, -1 never
	                               */
	/* derived */
	char *store_path;  /* resolved SQLite path */
	char *node_token;  /* read from DATA_DIR/node.token (created by the api role) */
	char *config_file; /* --config */
	char **dns_list;   /* dns_upstreams split, NULL-terminated; NULL when not given */
};

/* Fills cfg from defaults, the config file named by --config or HUTCH_CONFIG, the
 * environment and argv (in increasing priority). --help prints usage and exits. */
int hutchd_config_load(struct hutchd_config *cfg, int argc, char **argv, struct hutch_error *err);
void hutchd_config_release(struct hutchd_config *cfg);
bool hutchd_config_has_role(const struct hutchd_config *cfg, const char *role);
/* True for a --proxy-advertise value: an IPv4 address other than 0.0.0.0, ':', a port 1-65535
 * (the proxy connects to it without name resolution). */
bool hutchd_advertise_valid(const char *addr);
void hutchd_config_usage(FILE *out);
/* Reads (or, create=true, creates with mode 0600) DATA_DIR/node.token into cfg->node_token. */
int hutchd_node_token_load(struct hutchd_config *cfg, bool create, struct hutch_error *err);

/* Role entry points: each runs its own event loop until SIGTERM/SIGINT and returns an exit
 * status. They run in separate processes forked by main(). */
int api_main(struct hutchd_config *cfg);
int proxy_main(struct hutchd_config *cfg);
int executor_main(struct hutchd_config *cfg);

/* Destroys every sandbox and pooled disk of the data directory (hutchd --cleanup). */
int hutchd_cleanup(struct hutchd_config *cfg);

struct rt_config;
/* The runtime configuration the executor uses; *ret_state_dir is malloc'd and referenced by
 * rt. */
void hutchd_rt_config(struct hutchd_config *cfg, struct rt_config *rt, char **ret_state_dir);

#endif
