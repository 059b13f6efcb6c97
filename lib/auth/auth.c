/* API key generation and verification over the store. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "base/sv.h"
#include "base/util.h"

void auth_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		abort();
	hex_encode(md, 32, out);
}

static void random_alnum(char *out, size_t n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r;
	for (size_t i = 0; i < n;) {
		random_bytes(&r, 1);
		if (r < 252)
			out[i++] = alphabet[r % 36];
	}
	out[n] = '\0';
}

int auth_key_create(struct store *s, const char *ns, const char *name, bool admin,
                    struct buf *ret_key, struct key_rec *ret_rec, struct hutch_error *err)
{
	char id[AUTH_KEY_ID_LEN + 1], secret[AUTH_SECRET_LEN + 1], hash[65];
	random_alnum(id, AUTH_KEY_ID_LEN);
	random_alnum(secret, AUTH_SECRET_LEN);
	auth_sha256_hex(secret, AUTH_SECRET_LEN, hash);
	struct key_rec k = {.id = id,
	                    .ns = (char *)ns,
	                    .name = (char *)name,
	                    .hash = hash,
	                    .created_at = time_now_ms(),
	                    .admin = admin};
	int r = store_key_insert(s, &k, err);
	if (r < 0)
		return r;
	buf_printf(ret_key, "hk_%s_%s", id, secret);
	if (ret_rec)
		store_key_get(s, id, ret_rec, NULL);
	return 0;
}

static int unauthorized(struct hutch_error *err, const char *why)
{
	return hutch_error_api(err, 401, "UNAUTHENTICATED", "%s", why);
}

static int is_alnum_lower(struct sv s)
{
	for (size_t i = 0; i < s.len; i++)
		if (!((s.p[i] >= 'a' && s.p[i] <= 'z') || (s.p[i] >= '0' && s.p[i] <= '9')))
			return 0;
	return 1;
}

int auth_verify(struct store *s, const char *header, size_t len, char *ret_ns, bool *ret_admin,
                struct hutch_error *err)
{
	struct sv h = sv_trim(sv_make(header, len)), scheme, key, id, secret;
	if (!header || h.len == 0)
		return unauthorized(err, "missing API key (Authorization: Bearer <key>)");
	if (sv_split(h, ' ', &scheme, &key)) {
		if (!sv_case_eq(scheme, SV("Bearer")))
			return unauthorized(err, "unsupported authorization scheme");
		key = sv_trim(key);
	} else {
		key = h;
	}
	if (!sv_starts_with(key, SV("hk_")) || key.len != 3 + AUTH_KEY_ID_LEN + 1 + AUTH_SECRET_LEN)
		return unauthorized(err, "invalid API key");
	id = sv_make(key.p + 3, AUTH_KEY_ID_LEN);
	secret = sv_make(key.p + 4 + AUTH_KEY_ID_LEN, AUTH_SECRET_LEN);
	if (key.p[3 + AUTH_KEY_ID_LEN] != '_' || !is_alnum_lower(id) || !is_alnum_lower(secret))
		return unauthorized(err, "invalid API key");
	char idz[AUTH_KEY_ID_LEN + 1], hash[65];
	memcpy(idz, id.p, id.len);
	idz[id.len] = '\0';
	struct key_rec k = {0};
	int r = store_key_get(s, idz, &k, NULL);
	if (r == -ENOENT)
		return unauthorized(err, "invalid API key");
	if (r < 0)
		return hutch_error_set(err, r, "looking up the API key failed");
	auth_sha256_hex(secret.p, secret.len, hash);
	bool ok = k.hash && strlen(k.hash) == 64 && ct_equal(hash, k.hash, 64) && !k.revoked_at;
	if (ok) {
		snprintf(ret_ns, 64, "%s", k.ns);
		if (ret_admin)
			*ret_admin = k.admin;
	}
	key_rec_release(&k);
	return ok ? 0 : unauthorized(err, "invalid API key");
}

int auth_ns_valid(const char *ns, size_t len)
{
	if (len == 0 || len > 63)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = ns[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
		if (!ok)
			return 0;
	}
	return 1;
}
