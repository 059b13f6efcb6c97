/* API key management (a hutch extension: /api-keys) and the first-start admin key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth/auth.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

int api_keys_bootstrap(struct api *api, struct hutch_error *err)
{
	/* one transaction (it holds the store's write lock): servers starting together on one
	 * empty shared store make one admin key between them */
	int r = store_begin(api->store, err);
	if (r < 0)
		return r;
	int64_t n = 0;
	r = store_key_count(api->store, &n, err);
	if (r < 0 || n > 0) {
		if (r < 0)
			store_rollback(api->store);
		return r < 0 ? r : store_commit(api->store, err);
	}
	struct buf key = BUF_INIT;
	r = auth_key_create(api->store, "default", "admin", true, &key, NULL, err);
	if (r == 0)
		r = store_commit(api->store, err);
	if (r < 0)
		store_rollback(api->store); /* harmless after a commit that ended it */
	if (r == 0) {
		_cleanup_free_ char *path = xasprintf("%s/admin.key", api->cfg->data_dir);
		buf_addch(&key, '\n');
		r = write_file_atomic(path, key.data, key.len, 0600);
		if (r < 0)
			hutch_error_set(err, r, "writing %s: %s", path, strerror(-r));
		else
			log_info("created the admin key for namespace default in %s", path);
	}
	buf_release(&key);
	return r;
}

static json_t *key_json(const struct key_rec *k)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "namespace", json_string(k->ns));
	json_object_set_new(o, "name", k->name ? json_string(k->name) : json_null());
	json_object_set_new(o, "admin", json_boolean(k->admin));
	json_object_set_new(o, "created_at", json_integer(k->created_at));
	json_object_set_new(o, "revoked_at",
	                    k->revoked_at ? json_integer(k->revoked_at) : json_null());
	return o;
}

struct key_body {
	struct api_ctx ctx;
};

static void key_create_done(struct http_request *req)
{
	struct key_body *kb = req->data;
	req->data = NULL;
	req->on_abort = NULL;
	struct api_ctx *ctx = &kb->ctx;
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *o =
	        req->body.len ? json_loadb(req->body.data, req->body.len, 0, NULL) : json_object();
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *ns = json_string_value(json_object_get(o, "namespace"));
	int rc = 0;
	if (!json_is_object(o))
		rc = hutch_error_api(&err, 400, "INVALID_JSON", "the body must be a JSON object");
	else if (name && (strlen(name) > 128 || strlen(name) == 0))
		rc = hutch_error_api(&err, 400, "INVALID_ARGUMENT", "name: 1 to 128 characters");
	else if (ns && !auth_ns_valid(ns, strlen(ns)))
		rc = hutch_error_api(&err, 400, "INVALID_ARGUMENT",
		                     "namespace: lowercase letters, digits and '-', at most 63");
	else if (ns && strcmp(ns, ctx->ns) != 0 && !ctx->admin)
		rc = hutch_error_api(&err, 403, "FORBIDDEN",
		                     "only an admin key can create keys for another namespace");
	struct buf key = BUF_INIT;
	struct key_rec k = {0};
	if (rc == 0)
		rc = auth_key_create(ctx->api->store, ns ? ns : ctx->ns, name, false, &key, &k,
		                     &err);
	if (rc < 0) {
		api_respond_err(req, &err);
	} else {
		json_t *out = key_json(&k);
		json_object_set_new(out, "key", json_string(buf_cstr(&key)));
		api_respond_json(req, 201, out);
	}
	key_rec_release(&k);
	buf_release(&key);
	json_decref(o);
	free(kb);
}

static void key_body_abort(struct http_request *req)
{
	free(req->data);
}

void api_key_create(struct http_request *req, struct api_ctx *ctx)
{
	struct key_body *kb = xcalloc(1, sizeof(*kb));
	kb->ctx = *ctx;
	req->data = kb;
	req->on_abort = key_body_abort;
	http_request_read_body(req, 64 * 1024, key_create_done);
}

static int add_key(const struct key_rec *k, void *data)
{
	json_array_append_new(data, key_json(k));
	return 0;
}

void api_key_list(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *arr = json_array();
	if (store_key_list(ctx->api->store, ctx->ns, add_key, arr, &err) < 0) {
		json_decref(arr);
		api_respond_err(req, &err);
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "keys", arr);
	api_respond_json(req, 200, o);
}

void api_key_revoke(struct http_request *req, struct api_ctx *ctx)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	if (store_key_revoke(ctx->api->store, ctx->ns, http_request_param(req, "key_id"),
	                     time_now_ms(), ctx->admin, &err) < 0) {
		if (err.code == -ENOENT)
			hutch_error_api(&err, 404, "KEY_NOT_FOUND", "no active key %s",
			                http_request_param(req, "key_id"));
		api_respond_err(req, &err);
		return;
	}
	http_respond(req, 204, NULL, NULL, 0);
}

void api_key_introspect(struct http_request *req, struct api_ctx *ctx)
{
	json_t *o = json_object();
	json_object_set_new(o, "organizationId", json_string("hutch"));
	json_object_set_new(o, "projectId", json_string(ctx->ns));
	api_respond_json(req, 200, o);
}
