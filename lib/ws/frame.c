/* WebSocket frame codec: header parsing and building, masking, close payloads, UTF-8 checks and
 * the message assembler (fragmentation, interleaved control frames, size limits). */
#include <errno.h>
#include <string.h>

#include "ws/ws.h"

static bool opcode_known(uint8_t op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

int ws_frame_header_parse(const uint8_t *data, size_t len, struct ws_frame_header *ret)
{
	struct ws_frame_header h = {0};
	size_t need = 2;

	if (len < 2)
		return 0;
	h.fin = (data[0] & 0x80) != 0;
	h.opcode = data[0] & 0x0f;
	h.masked = (data[1] & 0x80) != 0;
	uint8_t l7 = data[1] & 0x7f;
	if ((data[0] & 0x70) || !opcode_known(h.opcode))
		return -EPROTO; /* no extension was negotiated, so RSV bits must be clear */
	if (h.opcode >= WS_OP_CLOSE && (!h.fin || l7 > WS_MAX_CONTROL_PAYLOAD))
		return -EPROTO;
	need += l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
	need += h.masked ? 4 : 0;
	if (len < need)
		return 0;
	size_t off = 2;
	if (l7 == 126) {
		h.payload_len = (uint64_t)data[2] << 8 | data[3];
		if (h.payload_len < 126)
			return -EPROTO;
		off = 4;
	} else if (l7 == 127) {
		for (int i = 0; i < 8; i++)
			h.payload_len = h.payload_len << 8 | data[2 + i];
		if (h.payload_len >> 63 || h.payload_len <= 0xffff)
			return -EPROTO;
		off = 10;
	} else {
		h.payload_len = l7;
	}
	if (h.masked)
		memcpy(h.mask, data + off, 4);
	h.header_len = need;
	*ret = h;
	return 1;
}

void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], size_t offset)
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[(offset + i) & 3];
}

static void header_build(struct buf *out, uint8_t opcode, bool fin, size_t len, const uint8_t *mask)
{
	uint8_t h[WS_MAX_HEADER];
	size_t n = 2;

	h[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	h[1] = mask ? 0x80 : 0;
	if (len < 126) {
		h[1] |= (uint8_t)len;
	} else if (len <= 0xffff) {
		h[1] |= 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		n = 4;
	} else {
		h[1] |= 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(h + n, mask, 4);
		n += 4;
	}
	buf_add(out, h, n);
}

void ws_frame_build2(struct buf *out, uint8_t opcode, const void *prefix, size_t plen,
                     const void *payload, size_t len, const uint8_t *mask)
{
	header_build(out, opcode, true, plen + len, mask);
	size_t start = out->len;
	if (plen)
		buf_add(out, prefix, plen);
	if (len)
		buf_add(out, payload, len);
	if (mask)
		ws_mask_apply((uint8_t *)out->data + start, plen + len, mask, 0);
}

void ws_frame_build(struct buf *out, uint8_t opcode, bool fin, const void *payload, size_t len,
                    const uint8_t *mask)
{
	header_build(out, opcode, fin, len, mask);
	size_t start = out->len;
	if (len)
		buf_add(out, payload, len);
	if (mask)
		ws_mask_apply((uint8_t *)out->data + start, len, mask, 0);
}

bool ws_close_code_valid(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}

void ws_close_payload_build(struct buf *out, unsigned code, const char *reason)
{
	size_t rlen = reason ? strlen(reason) : 0;
	buf_reset(out);
	buf_addch(out, (char)(code >> 8));
	buf_addch(out, (char)(code & 0xff));
	if (rlen > WS_MAX_CONTROL_PAYLOAD - 2)
		rlen = WS_MAX_CONTROL_PAYLOAD - 2;
	/* never cut a UTF-8 sequence in half */
	while (rlen && !ws_utf8_valid((const uint8_t *)reason, rlen))
		rlen--;
	if (rlen)
		buf_add(out, reason, rlen);
}

int ws_close_payload_parse(const uint8_t *p, size_t len, unsigned *ret_code, struct sv *ret_reason)
{
	if (len == 0) {
		*ret_code = WS_CLOSE_NO_STATUS;
		*ret_reason = SV("");
		return 0;
	}
	if (len == 1)
		return -EPROTO;
	unsigned code = (unsigned)p[0] << 8 | p[1];
	if (!ws_close_code_valid(code) || !ws_utf8_valid(p + 2, len - 2))
		return -EPROTO;
	*ret_code = code;
	*ret_reason = sv_make((const char *)p + 2, len - 2);
	return 0;
}

bool ws_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

/* ---- message assembly ---- */

void ws_parser_init(struct ws_parser *p, enum ws_role role, size_t max_message)
{
	memset(p, 0, sizeof(*p));
	p->role = role;
	p->max_message = max_message;
}

void ws_parser_release(struct ws_parser *p)
{
	buf_release(&p->msg);
	buf_release(&p->ctl);
}

static int fail(unsigned *ret_close, unsigned code, int err)
{
	*ret_close = code;
	return err;
}

/* Checks a data frame against the fragmentation state and the size limit. */
static int check_data_frame(struct ws_parser *p, const struct ws_frame_header *h, unsigned *rc)
{
	if (h->opcode == WS_OP_CONT && !p->in_message)
		return fail(rc, WS_CLOSE_PROTOCOL, -EPROTO);
	if (h->opcode != WS_OP_CONT && p->in_message)
		return fail(rc, WS_CLOSE_PROTOCOL, -EPROTO);
	size_t have = p->in_message ? p->msg.len : 0;
	if (h->payload_len > p->max_message || have + h->payload_len > p->max_message)
		return fail(rc, WS_CLOSE_TOO_BIG, -EMSGSIZE);
	return 0;
}

int ws_parser_next(struct ws_parser *p, struct buf *in, struct ws_event *ret_ev, unsigned *rc)
{
	for (;;) {
		struct ws_frame_header h;
		int r = ws_frame_header_parse((const uint8_t *)in->data, in->len, &h);
		if (r < 0)
			return fail(rc, WS_CLOSE_PROTOCOL, r);
		if (r == 0)
			return 0;
		if (h.masked != (p->role == WS_ROLE_SERVER))
			return fail(rc, WS_CLOSE_PROTOCOL, -EPROTO);
		bool control = h.opcode >= WS_OP_CLOSE;
		if (!control && (r = check_data_frame(p, &h, rc)) < 0)
			return r;
		if (in->len - h.header_len < h.payload_len)
			return 0;
		uint8_t *pl = (uint8_t *)in->data + h.header_len;
		size_t plen = (size_t)h.payload_len;
		if (h.masked)
			ws_mask_apply(pl, plen, h.mask, 0);
		if (control) {
			buf_reset(&p->ctl);
			buf_add(&p->ctl, pl, plen);
			buf_consume(in, h.header_len + plen);
			*ret_ev = (struct ws_event){h.opcode, (const uint8_t *)buf_cstr(&p->ctl),
			                            plen};
			return 1;
		}
		if (!p->in_message) {
			buf_reset(&p->msg);
			p->msg_opcode = h.opcode;
			p->in_message = true;
		}
		buf_add(&p->msg, pl, plen);
		buf_consume(in, h.header_len + plen);
		if (!h.fin)
			continue;
		p->in_message = false;
		const uint8_t *d = (const uint8_t *)buf_cstr(&p->msg);
		if (p->msg_opcode == WS_OP_TEXT && !ws_utf8_valid(d, p->msg.len))
			return fail(rc, WS_CLOSE_INVALID_DATA, -EILSEQ);
		*ret_ev = (struct ws_event){p->msg_opcode, d, p->msg.len};
		return 1;
	}
}
