/* A small WebSocket (RFC 6455) codec: frame headers, masking, whole-message assembly with
 * fragmentation and control frames, close payloads, and the opening-handshake keys. Pure code
 * with no I/O; ws_conn.h runs it on a libuv stream. Used by the agent (server side) and the CLI
 * (client side). */
#ifndef HUTCH_WS_H
#define HUTCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/sv.h"

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,
	WS_CLOSE_ABNORMAL = 1006,
	WS_CLOSE_INVALID_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

enum ws_role {
	WS_ROLE_SERVER, /* expects masked frames, sends unmasked ones */
	WS_ROLE_CLIENT, /* expects unmasked frames, sends masked ones */
};

#define WS_MAX_HEADER          14
#define WS_MAX_CONTROL_PAYLOAD 125

struct ws_frame_header {
	bool fin;
	uint8_t opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t payload_len;
	size_t header_len;
};

/* Parses the frame header at the start of data. Returns 1 and fills ret when the whole header is
 * there, 0 when more bytes are needed, -EPROTO for a header no endpoint may send (reserved bits,
 * unknown opcode, fragmented or oversized control frame, non-minimal or 64-bit-overflowing
 * length). */
int ws_frame_header_parse(const uint8_t *data, size_t len, struct ws_frame_header *ret);

/* XORs data with mask; offset is the position of data[0] within the frame's payload. */
void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset);

/* Appends one frame to out. mask is NULL for an unmasked (server) frame, else the 4-byte key the
 * payload is masked with (client frames). */
void ws_frame_build(struct buf *out, uint8_t opcode, bool fin, const void *payload, size_t len,
                    const uint8_t *mask);

/* Appends a frame whose payload is prefix (plen bytes) followed by payload: the one-byte opcode
 * protocols of the agent build their frames without an extra copy. */
void ws_frame_build2(struct buf *out, uint8_t opcode, const void *prefix, size_t plen,
                     const void *payload, size_t len, const uint8_t *mask);

/* True for close codes an endpoint may put on the wire (1000-1003, 1007-1011, 3000-4999). */
bool ws_close_code_valid(unsigned code);
/* Builds a close payload (code, then reason cut to fit 125 bytes) into out (reset first). */
void ws_close_payload_build(struct buf *out, unsigned code, const char *reason);
/* Parses a received close payload. An empty payload gives WS_CLOSE_NO_STATUS. Returns 0 or
 * -EPROTO (one byte, invalid code, reason not UTF-8). */
int ws_close_payload_parse(const uint8_t *p, size_t len, unsigned *ret_code, struct sv *ret_reason);

/* Strict UTF-8 check (no overlongs, surrogates or code points past U+10FFFF). */
bool ws_utf8_valid(const uint8_t *p, size_t len);

/* Reassembles messages from a byte stream. */
struct ws_parser {
	enum ws_role role;
	size_t max_message; /* payload bytes of one (reassembled) message */
	bool in_message;
	uint8_t msg_opcode;
	struct buf msg; /* data message being assembled / last one returned */
	struct buf ctl; /* last control payload returned */
};

struct ws_event {
	uint8_t opcode; /* WS_OP_TEXT / BINARY (a whole message), CLOSE, PING or PONG */
	const uint8_t *data;
	size_t len;
};

void ws_parser_init(struct ws_parser *p, enum ws_role role, size_t max_message);
void ws_parser_release(struct ws_parser *p);
/* Takes the next event out of the bytes in `in` (consuming them). Returns 1 with ret_ev filled
 * (its data stays valid until the next call), 0 when more input is needed, or a negative code
 * with *ret_close the close code to fail the connection with: -EPROTO (1002), -EMSGSIZE (1009),
 * -EILSEQ (1007, text that is not UTF-8). */
int ws_parser_next(struct ws_parser *p, struct buf *in, struct ws_event *ret_ev,
                   unsigned *ret_close);

/* Opening handshake. */
#define WS_KEY_LEN    24 /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
/* Writes the Sec-WebSocket-Accept value for a client key into ret (NUL-terminated). */
void ws_accept_key(struct sv client_key, char ret[WS_ACCEPT_LEN + 1]);
/* Writes a fresh random client key into ret (NUL-terminated). */
void ws_client_key(char ret[WS_KEY_LEN + 1]);
/* Checks a client's upgrade headers (values as sent; NULL/absent = p NULL). Returns 0 when they
 * ask for a version-13 WebSocket with a well-formed key, -EINVAL when not a valid upgrade,
 * -EPROTONOSUPPORT when the version is not 13 (answer 426 with Sec-WebSocket-Version: 13). */
int ws_handshake_check(struct sv upgrade, struct sv connection, struct sv version, struct sv key);
/* True when header value list (comma-separated tokens) contains token, case-insensitively. */
bool ws_header_has_token(struct sv value, const char *token);

/* 20-byte SHA-1 (used only for the handshake). */
void ws_sha1(const void *data, size_t len, uint8_t out[20]);

#endif
