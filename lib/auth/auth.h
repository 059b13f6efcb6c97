/* API keys: generation, parsing and verification. A key is "hk_<id>_<secret>": the id (12
 * lowercase alphanumerics) finds the stored row, the secret (32 lowercase alphanumerics) is
 * never stored, only its SHA-256, which is compared in constant time. */
#ifndef HUTCH_AUTH_H
#define HUTCH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/error.h"
#include "store/store.h"

#define AUTH_KEY_ID_LEN 12
#define AUTH_SECRET_LEN 32

/* SHA-256 of data as 64 lowercase hex digits into out[65]. */
void auth_sha256_hex(const void *data, size_t len, char out[65]);

/* Creates a key for ns in the store; ret_key receives the full key text (shown once). */
int auth_key_create(struct store *s, const char *ns, const char *name, bool admin,
                    struct buf *ret_key, struct key_rec *ret_rec, struct hutch_error *err);

/* Checks an Authorization header value ("Bearer <key>") or a bare key. On success writes the
 * key's namespace into ret_ns (size 64). Returns -EACCES (401) for a missing, malformed,
 * unknown or revoked key. */
int auth_verify(struct store *s, const char *header, size_t len, char *ret_ns, bool *ret_admin,
                struct hutch_error *err);

/* True when ns is a valid namespace name: [a-z0-9][a-z0-9-]{0,62}. */
int auth_ns_valid(const char *ns, size_t len);

#endif
