/* Network policy entries and objects: syntax and normalisation (enforcement is the network
 * module's job). */
#include <errno.h>
#include <string.h>

#include "apimodel/apimodel.h"
#include "base/sv.h"

#define MAX_POLICY_ENTRIES 256

static int parse_ipv4(struct sv s, uint32_t *ret)
{
	uint32_t addr = 0;
	struct sv part;
	for (int i = 0; i < 4; i++) {
		bool more = sv_split(s, '.', &part, &s);
		uint64_t v;
		if ((i < 3) != more || part.len == 0 || part.len > 3 ||
		    (part.len > 1 && part.p[0] == '0') || sv_to_u64(part, 255, &v) < 0)
			return -EINVAL;
		addr = (addr << 8) | (uint32_t)v;
	}
	*ret = addr;
	return 0;
}

static bool host_valid(struct sv s)
{
	if (s.len == 0 || s.len > 253)
		return false;
	struct sv label, rest = s;
	bool all_digits = true;
	while (rest.len) {
		sv_split(rest, '.', &label, &rest);
		if (label.len == 0 || label.len > 63 || label.p[0] == '-' ||
		    label.p[label.len - 1] == '-')
			return false;
		for (size_t i = 0; i < label.len; i++) {
			char c = label.p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || (c == '_' && i == 0)))
				return false;
			if (!(c >= '0' && c <= '9'))
				all_digits = false;
		}
	}
	/* "1.2.3" or "300.1.1.1" are malformed addresses, not names */
	return !all_digits && s.p[s.len - 1] != '.';
}

int netpol_entry_parse(const char *str, size_t len, struct netpol_entry *ret,
                       struct hutch_error *err)
{
	struct sv s = sv_make(str, len), main, port;
	struct netpol_entry e = {0};
	if (len == 0 || len > 300 || memchr(str, '\0', len))
		return hutch_error_api(err, 400, "INVALID_ARGUMENT", "empty or oversized entry");
	if (sv_rsplit(s, ':', &main, &port)) {
		uint64_t p;
		if (sv_to_u64(port, 65535, &p) < 0 || p == 0)
			return hutch_error_api(err, 400, "INVALID_ARGUMENT",
			                       "'%.*s': the port after ':' must be 1..65535",
			                       SV_FMT(s));
		e.port = (int)p;
		s = main;
	}
	struct sv addr, prefix;
	if (sv_split(s, '/', &addr, &prefix)) {
		uint64_t p;
		if (parse_ipv4(addr, &e.addr) < 0 || sv_to_u64(prefix, 32, &p) < 0 ||
		    (prefix.len > 1 && prefix.p[0] == '0'))
			return hutch_error_api(err, 400, "INVALID_ARGUMENT",
			                       "'%.*s' is not an IPv4 CIDR", SV_FMT(s));
		e.kind = NETPOL_CIDR;
		e.prefix = (int)p;
		uint32_t mask = e.prefix ? ~0u << (32 - e.prefix) : 0;
		e.addr &= mask;
	} else if (parse_ipv4(s, &e.addr) == 0) {
		e.kind = NETPOL_ADDR;
		e.prefix = 32;
	} else if (host_valid(s)) {
		e.kind = NETPOL_HOST;
		for (size_t i = 0; i < s.len; i++)
			e.host[i] = (char)(s.p[i] >= 'A' && s.p[i] <= 'Z' ? s.p[i] + 32 : s.p[i]);
		e.host[s.len] = '\0';
	} else {
		return hutch_error_api(
		        err, 400, "INVALID_ARGUMENT",
		        "'%.*s' is not an IPv4 address, IPv4 CIDR or host name (IPv6 "
		        "is not supported)",
		        SV_FMT(s));
	}
	*ret = e;
	return 0;
}

static int list_field(json_t *net, const char *key, const char *field, json_t *out,
                      struct hutch_error *err)
{
	json_t *v = json_object_get(net, key);
	json_t *arr = json_array();
	json_object_set_new(out, key, arr);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                       "%s.%s must be an array of strings", field, key);
	if (json_array_size(v) > MAX_POLICY_ENTRIES)
		return hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                       "%s.%s has more than %d entries", field, key,
		                       MAX_POLICY_ENTRIES);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		struct netpol_entry pe;
		if (!json_is_string(e))
			return hutch_error_api(err, 400, "INVALID_ARGUMENT",
			                       "%s.%s[%zu] must be a string", field, key, i);
		if (netpol_entry_parse(json_string_value(e), json_string_length(e), &pe, err) < 0)
			return hutch_error_wrap(err, "%s.%s[%zu]", field, key, i);
		json_array_append(arr, e);
	}
	return 0;
}

int netpol_normalise(json_t *net, const char *field, struct buf *ret, struct hutch_error *err)
{
	if (!json_is_object(net))
		return hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                       "%s must be an object {allow_internet_access, allow_out, "
		                       "deny_out} or null",
		                       field);
	json_t *out = json_object();
	json_t *aia = json_object_get(net, "allow_internet_access");
	int rc = 0;
	if (aia && !json_is_null(aia) && !json_is_boolean(aia))
		rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
		                     "%s.allow_internet_access must be true or false", field);
	json_object_set_new(out, "allow_internet_access",
	                    json_boolean(!aia || json_is_null(aia) || json_is_true(aia)));
	if (rc == 0)
		rc = list_field(net, "allow_out", field, out, err);
	if (rc == 0)
		rc = list_field(net, "deny_out", field, out, err);
	const char *k;
	json_t *v;
	json_object_foreach(net, k, v)
	{
		if (rc == 0 && strcmp(k, "allow_internet_access") && strcmp(k, "allow_out") &&
		    strcmp(k, "deny_out"))
			rc = hutch_error_api(err, 400, "INVALID_ARGUMENT",
			                     "%s.%s is not a known field", field, k);
	}
	if (rc == 0) {
		char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
		buf_adds(ret, s);
		free(s);
	}
	json_decref(out);
	return rc;
}
