/* The WebSocket opening handshake: SHA-1 (FIPS 180-4, needed only for Sec-WebSocket-Accept),
 * base64, key generation and the checks on a client's upgrade headers. */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "ws/ws.h"

static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t st[5], const uint8_t *blk)
{
	uint32_t w[80], a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
		       (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	st[0] += a, st[1] += b, st[2] += c, st[3] += d, st[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t st[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
	const uint8_t *p = data;
	uint8_t tail[128] = {0};
	size_t full = len & ~(size_t)63, rest = len - full;

	for (size_t i = 0; i < full; i += 64)
		sha1_block(st, p + i);
	memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	size_t tlen = rest + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < tlen; i += 64)
		sha1_block(st, tail + i);
	for (int i = 0; i < 20; i++)
		out[i] = (uint8_t)(st[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64_std(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

void ws_accept_key(struct sv client_key, char ret[WS_ACCEPT_LEN + 1])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct buf b = BUF_INIT;
	uint8_t digest[20];

	buf_add(&b, client_key.p, client_key.len);
	buf_adds(&b, guid);
	ws_sha1(b.data, b.len, digest);
	buf_release(&b);
	base64_std(digest, sizeof(digest), ret);
}

void ws_client_key(char ret[WS_KEY_LEN + 1])
{
	uint8_t nonce[16];
	random_bytes(nonce, sizeof(nonce));
	base64_std(nonce, sizeof(nonce), ret);
}

bool ws_header_has_token(struct sv value, const char *token)
{
	struct sv rest = value, item;
	while (rest.len) {
		sv_split(rest, ',', &item, &rest);
		if (sv_case_eq(sv_trim(item), sv_from(token)))
			return true;
	}
	return false;
}

static bool key_well_formed(struct sv key)
{
	if (key.len != WS_KEY_LEN || key.p[22] != '=' || key.p[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		char c = key.p[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		          (c >= '0' && c <= '9') || c == '+' || c == '/';
		if (!ok)
			return false;
	}
	return true;
}

int ws_handshake_check(struct sv upgrade, struct sv connection, struct sv version, struct sv key)
{
	if (!upgrade.p || !ws_header_has_token(upgrade, "websocket"))
		return -EINVAL;
	if (!connection.p || !ws_header_has_token(connection, "upgrade"))
		return -EINVAL;
	if (!version.p || !sv_eq_cstr(sv_trim(version), "13"))
		return -EPROTONOSUPPORT;
	if (!key.p || !key_well_formed(sv_trim(key)))
		return -EINVAL;
	return 0;
}
