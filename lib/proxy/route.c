/* The request-to-sandbox route parser and the exposed-ports check (see route.h). Everything
 * here works on string views of outside input and never allocates. */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "proxy/route.h"

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool all_digits(struct sv s)
{
	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_digit(s.p[i]))
			return false;
	return true;
}

/* A port in canonical decimal form: 1..65535, no sign, no leading zero. */
static int port_parse(struct sv s, uint16_t *ret)
{
	uint64_t v;
	if (s.len == 0 || s.len > 5 || s.p[0] == '0' || sv_to_u64(s, 65535, &v) < 0 || v == 0)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

/* Ids are 21 lowercase alphanumerics, names [a-z][a-z0-9-]* not ending in '-'; accept the union
 * (an alphanumeric first character) and let the store decide whether it exists. */
static bool target_valid(struct sv t)
{
	if (t.len == 0 || t.len > PROXY_TARGET_MAX || t.p[0] == '-' || t.p[t.len - 1] == '-')
		return false;
	for (size_t i = 0; i < t.len; i++) {
		char c = t.p[i];
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
			return false;
	}
	return true;
}

static int target_set(struct proxy_route *r, struct sv t, struct hutch_error *err)
{
	char tmp[PROXY_TARGET_MAX + 1];
	if (t.len > PROXY_TARGET_MAX)
		return hutch_error_api(err, 400, "INVALID_SANDBOX_ID",
		                       "sandbox id or name too long");
	for (size_t i = 0; i < t.len; i++)
		tmp[i] = lower(t.p[i]);
	if (!target_valid(sv_make(tmp, t.len)))
		return hutch_error_api(err, 400, "INVALID_SANDBOX_ID",
		                       "'%.*s' is not a sandbox id or name", SV_FMT(t));
	memcpy(r->target, tmp, t.len);
	r->target[t.len] = '\0';
	return 0;
}

/* A host label is {id_or_name} or {port}-{id_or_name}; names start with a letter, so a leading
 * run of digits followed by '-' is always a port. */
static int label_parse(struct sv label, struct proxy_route *r, struct hutch_error *err)
{
	struct sv head, tail;
	r->port = PROXY_AGENT_PORT;
	if (sv_split(label, '-', &head, &tail) && all_digits(head)) {
		if (port_parse(head, &r->port) < 0)
			return hutch_error_api(err, 400, "INVALID_PORT",
			                       "'%.*s' is not a port number (1-65535)",
			                       SV_FMT(head));
		label = tail;
	}
	return target_set(r, label, err);
}

/* Lowercases host into out (without a port and a trailing dot). Returns false when host is not a
 * plain DNS name (empty, too long, an IP literal in brackets, a bad port). */
static bool host_normalize(struct sv host, char out[PROXY_HOST_MAX + 1], struct sv *ret)
{
	struct sv name = host, port;
	host = sv_trim(host);
	if (host.len == 0 || host.p[0] == '[')
		return false;
	if (sv_rsplit(host, ':', &name, &port) && !all_digits(port))
		return false;
	if (name.len && name.p[name.len - 1] == '.')
		name.len--;
	if (name.len == 0 || name.len > PROXY_HOST_MAX)
		return false;
	for (size_t i = 0; i < name.len; i++)
		out[i] = lower(name.p[i]);
	out[name.len] = '\0';
	*ret = sv_make(out, name.len);
	return true;
}

/* Matches "{label}.{suffix}" with a non-empty label; ret_label may still contain dots. */
static bool host_under(struct sv host, struct sv suffix, struct sv *ret_label)
{
	if (suffix.len == 0 || host.len <= suffix.len + 1 || !sv_ends_with(host, suffix))
		return false;
	if (host.p[host.len - suffix.len - 1] != '.')
		return false;
	*ret_label = sv_make(host.p, host.len - suffix.len - 1);
	return true;
}

/* The configured domain, lowercased, without leading/trailing dots or a port. */
static struct sv domain_normalize(const char *domain, char out[PROXY_HOST_MAX + 1])
{
	struct sv d = sv_trim(sv_from(domain)), port;
	sv_rsplit(d, ':', &d, &port);
	while (d.len && d.p[0] == '.')
		d = sv_make(d.p + 1, d.len - 1);
	while (d.len && d.p[d.len - 1] == '.')
		d.len--;
	if (d.len > PROXY_HOST_MAX)
		return SV_NULL;
	for (size_t i = 0; i < d.len; i++)
		out[i] = lower(d.p[i]);
	return sv_make(out, d.len);
}

static int route_from_host(struct sv host, const char *domain, struct proxy_route *r,
                           struct hutch_error *err)
{
	char hbuf[PROXY_HOST_MAX + 1], dbuf[PROXY_HOST_MAX + 1];
	struct sv name, label, dom = domain ? domain_normalize(domain, dbuf) : SV_NULL;

	if (!host.p || !host_normalize(host, hbuf, &name))
		return -ENOENT;
	if (host_under(name, SV("local"), &label))
		r->via = PROXY_VIA_LOCAL_HOST;
	else if (dom.len && host_under(name, dom, &label))
		r->via = PROXY_VIA_DOMAIN_HOST;
	else
		return -ENOENT;
	if (sv_index(label, '.') >= 0)
		return hutch_error_api(
		        err, 400, "INVALID_SANDBOX_ID",
		        "host '%.*s' has more than one label before the proxy domain",
		        SV_FMT(name));
	return label_parse(label, r, err);
}

int proxy_route_parse(struct sv host, struct sv id_header, struct sv port_header,
                      const char *domain, struct proxy_route *ret, struct hutch_error *err)
{
	struct proxy_route r = {.port = PROXY_AGENT_PORT};
	int rc;

	id_header = id_header.p ? sv_trim(id_header) : SV_NULL;
	port_header = port_header.p ? sv_trim(port_header) : SV_NULL;
	if (id_header.len) {
		r.via = PROXY_VIA_HEADER;
		rc = target_set(&r, id_header, err);
	} else {
		rc = route_from_host(host, domain, &r, err);
		if (rc == -ENOENT)
			return hutch_error_api(
			        err, 400, "MISSING_SANDBOX_ID",
			        "no sandbox named: use the X-Tensorlake-Sandbox-Id "
			        "header or a {sandbox}.local / {sandbox}.<domain> host");
	}
	if (rc < 0)
		return rc;
	if (port_header.len && port_parse(port_header, &r.port) < 0)
		return hutch_error_api(
		        err, 400, "INVALID_PORT",
		        "X-Tensorlake-Sandbox-Port '%.*s' is not a port number (1-65535)",
		        SV_FMT(port_header));
	*ret = r;
	return 0;
}

bool proxy_target_is_id(const char *target)
{
	return id_is_valid(target, strlen(target));
}

static struct sv skip_ws(struct sv s)
{
	while (s.len && (s.p[0] == ' ' || s.p[0] == '\t' || s.p[0] == '\n' || s.p[0] == '\r'))
		s = sv_make(s.p + 1, s.len - 1);
	return s;
}

bool proxy_ports_contains(const char *exposed_ports, uint16_t port)
{
	struct sv s = skip_ws(sv_from(exposed_ports));
	if (!exposed_ports || s.len == 0 || s.p[0] != '[')
		return false;
	s = skip_ws(sv_make(s.p + 1, s.len - 1));
	if (s.len && s.p[0] == ']')
		return false;
	while (s.len) {
		size_t n = 0;
		while (n < s.len && is_digit(s.p[n]))
			n++;
		uint64_t v;
		if (n == 0 || sv_to_u64(sv_make(s.p, n), UINT64_MAX, &v) < 0)
			return false;
		if (v == port)
			return true;
		s = skip_ws(sv_make(s.p + n, s.len - n));
		if (s.len == 0 || (s.p[0] != ',' && s.p[0] != ']'))
			return false;
		if (s.p[0] == ']')
			return false;
		s = skip_ws(sv_make(s.p + 1, s.len - 1));
	}
	return false;
}
