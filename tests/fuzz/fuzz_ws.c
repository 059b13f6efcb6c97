/* libFuzzer target for the WebSocket frame parser and message assembler (lib/ws): arbitrary bytes
 * fed in arbitrary chunks, in both roles, plus close-payload parsing. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(enum ws_role role, size_t max, const uint8_t *data, size_t size, size_t step)
{
	struct ws_parser p;
	struct buf in = BUF_INIT;
	ws_parser_init(&p, role, max);
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		buf_add(&in, data + off, n);
		for (;;) {
			struct ws_event ev;
			unsigned code = 0;
			int r = ws_parser_next(&p, &in, &ev, &code);
			if (r < 0) {
				if (!ws_close_code_valid(code))
					__builtin_trap();
				goto out;
			}
			if (r == 0)
				break;
			if (ev.len > max && ev.opcode < WS_OP_CLOSE)
				__builtin_trap();
			if (ev.opcode == WS_OP_CLOSE) {
				unsigned cc;
				struct sv reason;
				ws_close_payload_parse(ev.data, ev.len, &cc, &reason);
			}
		}
	}
out:
	ws_parser_release(&p);
	buf_release(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 17) + 1;
	run(WS_ROLE_SERVER, 4096, data + 1, size - 1, step);
	run(WS_ROLE_CLIENT, 200, data + 1, size - 1, size);
	struct buf b = BUF_INIT;
	uint8_t mask[4] = {1, 2, 3, 4};
	ws_frame_build(&b, data[0] & 0x0f, true, data + 1, size - 1,
	               (data[0] & 0x10) ? mask : NULL);
	struct ws_frame_header h;
	if (ws_frame_header_parse((const uint8_t *)b.data, b.len, &h) == 1 &&
	    (h.payload_len != size - 1 || h.header_len + h.payload_len != b.len))
		__builtin_trap();
	buf_release(&b);
	return 0;
}
