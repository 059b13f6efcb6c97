/* JSON shapes of sandboxes and create responses, as the official SDKs parse them: exactly one of
 * id / sandbox_id, lowercase status, integer memory_mb, ephemeral_disk_mb and disk_mb both,
 * network and network_policy both, timestamps in milliseconds, file_systems never null. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base/xalloc.h"

/* Splits cfg->proxy_url ("http://host:port") into scheme and ":port" suffix (empty when the
 * port is the scheme's default). */
static void proxy_origin(struct api *api, char *scheme, size_t ssz, char *hostport, size_t hsz,
                         char *portsuffix, size_t psz)
{
	const char *url = api->cfg->proxy_url;
	const char *sep = strstr(url, "://");
	snprintf(scheme, ssz, "%.*s", sep ? (int)(sep - url) : 4, sep ? url : "http");
	const char *hp = sep ? sep + 3 : url;
	snprintf(hostport, hsz, "%s", hp);
	const char *colon = strrchr(hp, ':');
	const char *bracket = strrchr(hp, ']');
	portsuffix[0] = '\0';
	if (colon && (!bracket || colon > bracket)) {
		bool dflt = (strcmp(scheme, "http") == 0 && strcmp(colon, ":80") == 0) ||
		            (strcmp(scheme, "https") == 0 && strcmp(colon, ":443") == 0);
		if (!dflt)
			snprintf(portsuffix, psz, "%s", colon);
	}
}

char *api_sandbox_url(struct api *api, const struct sandbox_rec *r)
{
	char scheme[16], hostport[256], port[16];
	proxy_origin(api, scheme, sizeof(scheme), hostport, sizeof(hostport), port, sizeof(port));
	if (api->cfg->proxy_domain[0])
		return xasprintf("%s://%s.%s%s", scheme, r->id, api->cfg->proxy_domain, port);
	/* no domain: the SDKs address local proxies with Host: {id}.local */
	return xasprintf("%s://%s", scheme, hostport);
}

static json_t *ingress_endpoint(struct api *api)
{
	char scheme[16], hostport[256], port[16];
	proxy_origin(api, scheme, sizeof(scheme), hostport, sizeof(hostport), port, sizeof(port));
	if (api->cfg->proxy_domain[0]) {
		char *s = xasprintf("%s://%s%s", scheme, api->cfg->proxy_domain, port);
		json_t *j = json_string(s);
		free(s);
		return j;
	}
	char *s = xasprintf("%s://%s", scheme, hostport);
	json_t *j = json_string(s);
	free(s);
	return j;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* JSON text stored in a column, or null (or dflt when given) if absent or unparsable. */
static json_t *json_col(const char *text, json_t *dflt)
{
	if (text) {
		json_t *v = json_loads(text, 0, NULL);
		if (v) {
			json_decref(dflt);
			return v;
		}
	}
	return dflt ? dflt : json_null();
}

static bool is_live(const struct sandbox_rec *r)
{
	return strcmp(r->status, "terminated") != 0;
}

json_t *api_sandbox_json(struct api *api, const struct sandbox_rec *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "namespace", json_string(r->ns));
	json_object_set_new(o, "name", str_or_null(r->name));
	json_object_set_new(o, "image", json_string(r->image ? r->image : "ubuntu-minimal"));
	json_object_set_new(o, "status", json_string(r->status));
	json_object_set_new(o, "pending_reason", str_or_null(r->pending_reason));
	json_object_set_new(o, "outcome", str_or_null(r->outcome));
	json_object_set_new(o, "termination_reason", str_or_null(r->termination_reason));
	json_object_set_new(o, "error_details", json_col(r->error_details, NULL));
	json_object_set_new(o, "created_at", json_integer(r->created_at));
	json_object_set_new(o, "terminated_at",
	                    r->terminated_at ? json_integer(r->terminated_at) : json_null());
	json_t *res = json_object();
	json_object_set_new(res, "cpus", json_real(r->cpus));
	json_object_set_new(res, "memory_mb", json_integer(r->memory_mb));
	json_object_set_new(res, "ephemeral_disk_mb", json_integer(r->disk_mb));
	json_object_set_new(res, "disk_mb", json_integer(r->disk_mb));
	json_object_set_new(o, "resources", res);
	json_object_set_new(o, "timeout_secs", json_integer(r->timeout_secs));
	json_object_set_new(o, "entrypoint", json_col(r->entrypoint, NULL));
	json_object_set_new(o, "allow_unauthenticated_access", json_boolean(r->allow_unauth));
	json_object_set_new(o, "exposed_ports", json_col(r->exposed_ports, json_array()));
	json_object_set_new(o, "network", json_col(r->network, NULL));
	json_object_set_new(o, "network_policy", json_col(r->network, NULL));
	if (is_live(r)) {
		char *url = api_sandbox_url(api, r);
		json_object_set_new(o, "sandbox_url", json_string(url));
		free(url);
		json_object_set_new(o, "ingress_endpoint", ingress_endpoint(api));
	} else {
		json_object_set_new(o, "sandbox_url", json_null());
		json_object_set_new(o, "ingress_endpoint", json_null());
	}
	json_object_set_new(o, "routing_hint", json_null());
	json_object_set_new(o, "container_id", is_live(r) ? json_string(r->id) : json_null());
	json_object_set_new(o, "executor_id", str_or_null(r->executor_id));
	json_object_set_new(o, "pool_id", str_or_null(r->pool_id));
	json_object_set_new(o, "template_id", str_or_null(r->template_id));
	json_object_set_new(o, "snapshot_id", str_or_null(r->snapshot_id));
	json_object_set_new(o, "file_systems", json_array());
	if (r->archived_at)
		json_object_set_new(o, "archived_at", json_integer(r->archived_at));
	return o;
}

json_t *api_create_response_json(struct api *api, const struct sandbox_rec *r,
                                 const char *status_override)
{
	json_t *o = json_object();
	json_object_set_new(o, "sandbox_id", json_string(r->id));
	json_object_set_new(o, "status",
	                    json_string(status_override ? status_override : r->status));
	if (r->pending_reason && strcmp(r->status, "pending") == 0)
		json_object_set_new(o, "pending_reason", json_string(r->pending_reason));
	if (r->name)
		json_object_set_new(o, "name", json_string(r->name));
	if (is_live(r)) {
		char *url = api_sandbox_url(api, r);
		json_object_set_new(o, "sandbox_url", json_string(url));
		free(url);
		json_object_set_new(o, "ingress_endpoint", ingress_endpoint(api));
	}
	if (r->termination_reason)
		json_object_set_new(o, "termination_reason", json_string(r->termination_reason));
	if (r->error_details)
		json_object_set_new(o, "error_details", json_col(r->error_details, NULL));
	if (r->outcome && !is_live(r))
		json_object_set_new(o, "reason", json_string(r->outcome));
	return o;
}
