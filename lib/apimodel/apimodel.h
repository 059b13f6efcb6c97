/* The control plane's request model: parsing and validating create and update bodies, the
 * naming and port rules, and network policy entries. Pure functions over jansson values with no
 * I/O, so the request parsers can be fuzzed. Every rejection names the field. */
#ifndef HUTCH_APIMODEL_H
#define HUTCH_APIMODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

struct apimodel_limits {
	int64_t default_timeout_secs;
	int64_t max_timeout_secs;
	double max_cpus;
	int64_t max_memory_mb;
	int64_t max_disk_mb;
};

void apimodel_limits_defaults(struct apimodel_limits *l);

/* A validated create request. Strings and JSON texts are malloc'd (NULL when absent). */
struct create_req {
	char *image;
	double cpus;
	int64_t memory_mb;
	int64_t disk_mb;
	int64_t timeout_secs;
	char *entrypoint; /* JSON array text */
	char *network;    /* normalised JSON object text, NULL = unrestricted */
	char *name;
	bool allow_unauth;
	char *exposed_ports; /* sorted, de-duplicated JSON array text, NULL = none */
	char *snapshot_id;
	char *template_id;
	char *secret_names;
};

/* Parses a create body (NULL or empty = {}). On failure err carries status 400 and a message
 * naming the field. */
int create_req_parse(const char *body, size_t len, const struct apimodel_limits *lim,
                     struct create_req *ret, struct hutch_error *err);
void create_req_release(struct create_req *r);

/* A validated PATCH body. has_* says whether the key was present. */
struct update_req {
	bool has_name;
	char *name;
	bool has_allow_unauth;
	bool allow_unauth;
	bool has_exposed_ports;
	char *exposed_ports; /* "[]" clears */
	bool has_network;
	char *network; /* NULL with has_network = clear (unrestricted) */
};

int update_req_parse(const char *body, size_t len, struct update_req *ret, struct hutch_error *err);
void update_req_release(struct update_req *r);

/* Sandbox name rules: starts with a lowercase letter, [a-z0-9-], no trailing '-', at most 63
 * characters, and not exactly 21 lowercase alphanumerics (that is an id). */
bool apimodel_name_valid(const char *s, size_t len, const char **ret_why);
/* Image names: [a-z0-9][a-z0-9._/:-]*, at most 128 characters. */
bool apimodel_image_valid(const char *s, size_t len);

/* One network policy entry: an IPv4 address, an IPv4 CIDR or a DNS host name, with an optional
 * ":port" (accepted and ignored: rules are not port-specific). */
struct netpol_entry {
	enum { NETPOL_ADDR, NETPOL_CIDR, NETPOL_HOST } kind;
	uint32_t addr; /* host byte order, for ADDR and CIDR */
	int prefix;    /* 32 for ADDR */
	char host[254];
	int port; /* 0 = none */
};

int netpol_entry_parse(const char *s, size_t len, struct netpol_entry *ret,
                       struct hutch_error *err);
/* Validates and normalises a network object ({allow_internet_access, allow_out, deny_out}) into
 * ret (JSON text with all three keys). field is the name used in messages. */
int netpol_normalise(json_t *net, const char *field, struct buf *ret, struct hutch_error *err);

#endif
