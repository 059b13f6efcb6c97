/* Unit tests for lib/ws: frame headers, building and masking, message assembly with fragments
 * and control frames, limits, close payloads, UTF-8, the handshake keys, and ws_conn in both
 * roles over a socketpair. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "ws/ws.h"
#include "ws/ws_conn.h"
#include "t.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

static void test_rfc_examples(void)
{
	/* RFC 6455 5.7: unmasked and masked "Hello" */
	struct buf b = BUF_INIT;
	ws_frame_build(&b, WS_OP_TEXT, true, "Hello", 5, NULL);
	CHECK(b.len == 7 && memcmp(b.data, "\x81\x05Hello", 7) == 0);
	buf_reset(&b);
	ws_frame_build(&b, WS_OP_TEXT, true, "Hello", 5, MASK);
	CHECK(b.len == 11 &&
	      memcmp(b.data, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) == 0);
	struct ws_frame_header h;
	CHECK(ws_frame_header_parse((uint8_t *)b.data, b.len, &h) == 1);
	CHECK(h.fin && h.opcode == WS_OP_TEXT && h.masked && h.payload_len == 5 &&
	      h.header_len == 6);
	ws_mask_apply((uint8_t *)b.data + 6, 5, h.mask, 0);
	CHECK(memcmp(b.data + 6, "Hello", 5) == 0);
	/* fragmented unmasked text "Hel" + "lo" */
	struct ws_parser p;
	ws_parser_init(&p, WS_ROLE_CLIENT, 1024);
	buf_reset(&b);
	buf_add(&b, "\x01\x03Hel\x80\x02lo", 9);
	struct ws_event ev;
	unsigned code;
	CHECK(ws_parser_next(&p, &b, &ev, &code) == 1);
	CHECK(ev.opcode == WS_OP_TEXT && ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
	CHECK(b.len == 0);
	ws_parser_release(&p);
	buf_release(&b);
}

static void test_lengths(void)
{
	size_t sizes[] = {0, 125, 126, 65535, 65536, 100000};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		char *payload = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			payload[k] = (char)(k * 7);
		struct buf b = BUF_INIT;
		ws_frame_build(&b, WS_OP_BINARY, true, payload, n, MASK);
		size_t want_hdr = (n < 126 ? 2 : n <= 65535 ? 4 : 10) + 4;
		CHECK(b.len == want_hdr + n);
		struct ws_parser p;
		ws_parser_init(&p, WS_ROLE_SERVER, 200000);
		struct ws_event ev;
		unsigned code;
		/* fed one byte short: needs more */
		struct buf part = BUF_INIT;
		buf_add(&part, b.data, b.len - 1);
		CHECK(ws_parser_next(&p, &part, &ev, &code) == 0);
		buf_add(&part, b.data + b.len - 1, 1);
		CHECK(ws_parser_next(&p, &part, &ev, &code) == 1);
		CHECK(ev.opcode == WS_OP_BINARY && ev.len == n);
		CHECK(n == 0 || memcmp(ev.data, payload, n) == 0);
		ws_parser_release(&p);
		buf_release(&part);
		buf_release(&b);
		free(payload);
	}
}

static int parse_one(enum ws_role role, size_t max, const void *data, size_t len, unsigned *code)
{
	struct ws_parser p;
	struct buf b = BUF_INIT;
	struct ws_event ev;
	ws_parser_init(&p, role, max);
	buf_add(&b, data, len);
	int r;
	do
		r = ws_parser_next(&p, &b, &ev, code);
	while (r == 1);
	ws_parser_release(&p);
	buf_release(&b);
	return r;
}

static void test_protocol_errors(void)
{
	unsigned code = 0;
	/* RSV bit set */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\xc1\x00", 2, &code) == -EPROTO);
	CHECK(code == WS_CLOSE_PROTOCOL);
	/* unknown opcode 3 and 0xb */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x83\x00", 2, &code) == -EPROTO);
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x8b\x00", 2, &code) == -EPROTO);
	/* fragmented ping, ping > 125 */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x09\x00", 2, &code) == -EPROTO);
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x89\x7e\x00\x7e", 4, &code) == -EPROTO);
	/* non-minimal 16-bit length */
	CHECK(parse_one(WS_ROLE_CLIENT, 1000, "\x82\x7e\x00\x05", 4, &code) == -EPROTO);
	/* 64-bit length with the top bit set */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 10,
	                &code) == -EPROTO);
	/* server requires masked frames; client requires unmasked ones */
	CHECK(parse_one(WS_ROLE_SERVER, 100, "\x82\x00", 2, &code) == -EPROTO);
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x82\x80\x01\x02\x03\x04", 6, &code) == -EPROTO);
	/* continuation without a start, new message inside a fragmented one */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x80\x01x", 3, &code) == -EPROTO);
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x02\x01x\x82\x01y", 6, &code) == -EPROTO);
	/* too big: single frame, and fragments adding up */
	CHECK(parse_one(WS_ROLE_CLIENT, 4, "\x82\x05hello", 7, &code) == -EMSGSIZE);
	CHECK(code == WS_CLOSE_TOO_BIG);
	CHECK(parse_one(WS_ROLE_CLIENT, 4, "\x02\x03hel\x80\x02lo", 9, &code) == -EMSGSIZE);
	/* a huge declared length is refused from the header alone */
	CHECK(parse_one(WS_ROLE_CLIENT, 65536, "\x82\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10,
	                &code) == -EMSGSIZE);
	/* invalid UTF-8 text */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x81\x02\xc3\x28", 4, &code) == -EILSEQ);
	CHECK(code == WS_CLOSE_INVALID_DATA);
	/* valid UTF-8 split across fragments is fine */
	CHECK(parse_one(WS_ROLE_CLIENT, 100, "\x01\x01\xc3\x80\x01\xa9", 6, &code) == 0);
}

static void test_control_interleaved(void)
{
	struct ws_parser p;
	struct buf b = BUF_INIT;
	struct ws_event ev;
	unsigned code;
	ws_parser_init(&p, WS_ROLE_SERVER, 1000);
	ws_frame_build(&b, WS_OP_BINARY, false, "ab", 2, MASK);
	ws_frame_build(&b, WS_OP_PING, true, "hi", 2, MASK);
	ws_frame_build(&b, WS_OP_CONT, false, "cd", 2, MASK);
	ws_frame_build(&b, WS_OP_PONG, true, NULL, 0, MASK);
	ws_frame_build(&b, WS_OP_CONT, true, "ef", 2, MASK);
	CHECK(ws_parser_next(&p, &b, &ev, &code) == 1);
	CHECK(ev.opcode == WS_OP_PING && ev.len == 2 && memcmp(ev.data, "hi", 2) == 0);
	CHECK(ws_parser_next(&p, &b, &ev, &code) == 1);
	CHECK(ev.opcode == WS_OP_PONG && ev.len == 0);
	CHECK(ws_parser_next(&p, &b, &ev, &code) == 1);
	CHECK(ev.opcode == WS_OP_BINARY && ev.len == 6 && memcmp(ev.data, "abcdef", 6) == 0);
	CHECK(ws_parser_next(&p, &b, &ev, &code) == 0);
	ws_parser_release(&p);
	buf_release(&b);
}

static void test_close_payload(void)
{
	struct buf b = BUF_INIT;
	unsigned code;
	struct sv reason;
	ws_close_payload_build(&b, 1000, "exit:7");
	CHECK(b.len == 8 && memcmp(b.data,
	                           "\x03\xe8"
	                           "exit:7",
	                           8) == 0);
	CHECK(ws_close_payload_parse((uint8_t *)b.data, b.len, &code, &reason) == 0);
	CHECK(code == 1000 && sv_eq_cstr(reason, "exit:7"));
	CHECK(ws_close_payload_parse(NULL, 0, &code, &reason) == 0 && code == WS_CLOSE_NO_STATUS);
	CHECK(ws_close_payload_parse((const uint8_t *)"\x03", 1, &code, &reason) == -EPROTO);
	CHECK(ws_close_payload_parse((const uint8_t *)"\x03\xed", 2, &code, &reason) == -EPROTO);
	CHECK(ws_close_payload_parse((const uint8_t *)"\x03\xe8\xff", 3, &code, &reason) ==
	      -EPROTO);
	CHECK(ws_close_code_valid(1000) && ws_close_code_valid(1011) && ws_close_code_valid(4000));
	CHECK(!ws_close_code_valid(1005) && !ws_close_code_valid(1006) &&
	      !ws_close_code_valid(999));
	CHECK(!ws_close_code_valid(1015) && !ws_close_code_valid(5000));
	/* long reasons are cut to fit, never inside a UTF-8 sequence */
	char longr[300];
	for (int i = 0; i < 149; i++)
		memcpy(longr + 2 * i, "\xc3\xa9", 2);
	longr[298] = '\0';
	ws_close_payload_build(&b, 1000, longr);
	CHECK(b.len <= 125 && ws_utf8_valid((uint8_t *)b.data + 2, b.len - 2));
	buf_release(&b);
}

static void test_utf8(void)
{
	CHECK(ws_utf8_valid((const uint8_t *)"plain", 5));
	CHECK(ws_utf8_valid((const uint8_t *)"\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80", 9));
	CHECK(!ws_utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xe2\x82", 2));         /* truncated */
	CHECK(!ws_utf8_valid((const uint8_t *)"\xff", 1));
}

static void test_handshake(void)
{
	char acc[WS_ACCEPT_LEN + 1];
	ws_accept_key(SV("dGhlIHNhbXBsZSBub25jZQ=="), acc);
	CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	uint8_t d[20];
	char hex[41];
	ws_sha1("abc", 3, d);
	hex_encode(d, 20, hex);
	CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	const char *m56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	ws_sha1(m56, strlen(m56), d);
	hex_encode(d, 20, hex);
	CHECK_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	ws_sha1("", 0, d);
	hex_encode(d, 20, hex);
	CHECK_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	char key[WS_KEY_LEN + 1];
	ws_client_key(key);
	CHECK(strlen(key) == 24 && key[22] == '=' && key[23] == '=');
	CHECK(ws_handshake_check(SV("websocket"), SV("keep-alive, Upgrade"), SV("13"),
	                         sv_from(key)) == 0);
	CHECK(ws_handshake_check(SV("WebSocket"), SV("upgrade"), SV("13"), sv_from(key)) == 0);
	CHECK(ws_handshake_check(SV("h2c"), SV("upgrade"), SV("13"), sv_from(key)) == -EINVAL);
	CHECK(ws_handshake_check(SV("websocket"), SV("close"), SV("13"), sv_from(key)) == -EINVAL);
	CHECK(ws_handshake_check(SV("websocket"), SV("upgrade"), SV("8"), sv_from(key)) ==
	      -EPROTONOSUPPORT);
	CHECK(ws_handshake_check(SV("websocket"), SV("upgrade"), SV("13"), SV("short")) == -EINVAL);
	CHECK(ws_handshake_check(SV_NULL, SV("upgrade"), SV("13"), sv_from(key)) == -EINVAL);
}

/* ---- ws_conn over a socketpair: a client conn and a server conn talk to each other ---- */

struct side {
	struct ws_conn *c;
	struct buf got;
	int messages;
	unsigned close_code;
	char close_reason[128];
	bool closed;
};

static void on_msg(struct ws_conn *c, uint8_t op, const uint8_t *d, size_t len, void *arg)
{
	struct side *s = arg;
	s->messages++;
	buf_add(&s->got, d, len);
	if (len == 4 && memcmp(d, "quit", 4) == 0)
		ws_conn_close(c, 1000, "exit:3");
}

static void on_close(struct ws_conn *c, unsigned code, struct sv reason, void *arg)
{
	struct side *s = arg;
	s->closed = true;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%.*s", SV_FMT(reason));
	s->c = NULL;
}

static const struct ws_conn_ops ops = {.on_message = on_msg, .on_close = on_close};

static uv_stream_t *pipe_of(uv_loop_t *loop, int fd)
{
	uv_pipe_t *p = calloc(1, sizeof(*p));
	uv_pipe_init(loop, p, 0);
	uv_pipe_open(p, fd);
	return (uv_stream_t *)p;
}

static void test_conn(void)
{
	uv_loop_t loop;
	int sv[2];
	uv_loop_init(&loop);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct side srv = {0}, cli = {0};
	struct ws_conn_config scfg, ccfg;
	ws_conn_config_defaults(&scfg);
	ws_conn_config_defaults(&ccfg);
	ccfg.role = WS_ROLE_CLIENT;
	scfg.max_message = 300000;
	ccfg.max_message = 300000;
	/* a leftover frame (masked, as a client sends) is delivered at once */
	struct buf left = BUF_INIT;
	ws_frame_build(&left, WS_OP_BINARY, true, "early", 5, MASK);
	srv.c = ws_conn_new(pipe_of(&loop, sv[0]), &scfg, &ops, &srv, left.data, left.len);
	cli.c = ws_conn_new(pipe_of(&loop, sv[1]), &ccfg, &ops, &cli, NULL, 0);
	CHECK(srv.messages == 1);
	/* a big message from client to server, one from server to client, a ping in between */
	char *big = malloc(250000);
	memset(big, 'x', 250000);
	CHECK(ws_conn_send(cli.c, WS_OP_BINARY, "\x00", 1, big, 250000) >= 0);
	CHECK(ws_conn_send(srv.c, WS_OP_BINARY, NULL, 0, "hello", 5) == 0);
	CHECK(ws_conn_send(cli.c, WS_OP_BINARY, NULL, 0, "quit", 4) >= 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(srv.messages == 3 && srv.got.len == 5 + 250001 + 4);
	CHECK(cli.messages == 1 && cli.got.len == 5);
	CHECK(srv.closed && cli.closed);
	CHECK(cli.close_code == 1000);
	CHECK_STR(cli.close_reason, "exit:3");
	CHECK(srv.close_code == 1000);
	free(big);
	buf_release(&left);
	buf_release(&srv.got);
	buf_release(&cli.got);
	CHECK(uv_loop_close(&loop) == 0);
}

/* A client that sends an unmasked frame gets failed with 1002. */
static void test_conn_protocol_error(void)
{
	uv_loop_t loop;
	int sv[2];
	uv_loop_init(&loop);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	struct side srv = {0};
	srv.c = ws_conn_new(pipe_of(&loop, sv[0]), NULL, &ops, &srv, NULL, 0);
	CHECK(write(sv[1], "\x82\x01x", 3) == 3);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(srv.closed && srv.close_code == WS_CLOSE_PROTOCOL);
	char reply[64];
	ssize_t n = read(sv[1], reply, sizeof(reply));
	CHECK(n >= 4 && (uint8_t)reply[0] == 0x88 && reply[2] == 0x03 && reply[3] == (char)0xea);
	close(sv[1]);
	CHECK(uv_loop_close(&loop) == 0);
}

int main(void)
{
	test_rfc_examples();
	test_lengths();
	test_protocol_errors();
	test_control_interleaved();
	test_close_payload();
	test_utf8();
	test_handshake();
	test_conn();
	test_conn_protocol_error();
	T_DONE();
}
