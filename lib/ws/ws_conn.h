/* A WebSocket connection on a libuv stream (typically one handed out by http_conn_takeover, or a
 * client socket after the handshake): reads and reassembles messages, answers pings and the
 * close handshake, pings the peer on an interval and drops it when it stops answering, and
 * reports write back-pressure. Belongs to the loop of its stream; call only from that thread. */
#ifndef HUTCH_WS_CONN_H
#define HUTCH_WS_CONN_H

#include <uv.h>

#include "ws/ws.h"

struct ws_conn;

struct ws_conn_config {
	enum ws_role role;
	size_t max_message;        /* default 64 KiB */
	uint64_t ping_interval_ms; /* 0: never ping */
	size_t write_high_water;   /* queued bytes before sends report pressure (256 KiB) */
	uint64_t close_timeout_ms; /* wait for the peer's close reply (default 2 s) */
};

struct ws_conn_ops {
	/* A whole TEXT or BINARY message. data is valid during the call only. */
	void (*on_message)(struct ws_conn *c, uint8_t opcode, const uint8_t *data, size_t len,
	                   void *arg);
	/* Queued bytes fell below half the high-water mark after a send reported pressure. */
	void (*on_drain)(struct ws_conn *c, void *arg);
	/* The connection is finished (closed by either side, failed or timed out). code/reason
	 * are the peer's close frame, or what we sent, or 1006 when the transport just ended.
	 * Called exactly once; the conn is freed right after, so drop every pointer to it. */
	void (*on_close)(struct ws_conn *c, unsigned code, struct sv reason, void *arg);
};

void ws_conn_config_defaults(struct ws_conn_config *cfg);
/* Wraps stream (a malloc'd handle: ownership passes to the conn, which uses its data pointer and
 * frees it with free() once closed). leftover holds bytes already read after the handshake; any
 * complete messages in it are delivered before this returns. Reading starts at once. */
struct ws_conn *ws_conn_new(uv_stream_t *stream, const struct ws_conn_config *cfg,
                            const struct ws_conn_ops *ops, void *arg, const void *leftover,
                            size_t leftover_len);
/* Sends one message (payload = prefix + data; either may be empty). Returns 0, 1 when queued bytes
 * are above the high-water mark (wait for on_drain), or -EPIPE once closing. */
int ws_conn_send(struct ws_conn *c, uint8_t opcode, const void *prefix, size_t plen,
                 const void *data, size_t len);
/* Starts the close handshake with code and reason; the stream is closed when the peer answers or
 * after the close timeout. on_close runs later (never from inside this call). */
void ws_conn_close(struct ws_conn *c, unsigned code, const char *reason);
/* Stops / restarts reading (flow control towards the peer). */
void ws_conn_pause(struct ws_conn *c);
void ws_conn_resume(struct ws_conn *c);
size_t ws_conn_queued(const struct ws_conn *c);

#endif
