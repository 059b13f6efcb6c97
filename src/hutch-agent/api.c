/* The agent's HTTP front: the route table, CORS, JSON error bodies, health and info, and the
 * WebSocket upgrade shared by the PTY and tunnel endpoints. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/util.h"
#include "http/router.h"
#include "agent.h"
#include "ws/ws.h"

void agent_respond_json(struct http_request *req, int status, const struct buf *b)
{
	http_respond(req, status, "application/json", b->data, b->len);
}

void agent_error(struct http_request *req, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_respond_error(req, status, code, "%s", msg);
}

void agent_error_from(struct http_request *req, const struct hutch_error *err)
{
	int status = hutch_error_http_status(err);
	if (status >= 500)
		log_warn("%.*s: %s", SV_FMT(req->path), err->msg);
	http_respond_error(req, status, hutch_error_kind(err), "%s", err->msg);
}

static void api_health(struct http_request *req, struct agent *a)
{
	const char body[] = "{\"healthy\":true}";
	http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void api_info(struct http_request *req, struct agent *a)
{
	struct buf b = BUF_INIT;
	struct jw w;
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_kstr(&w, "version", HUTCH_VERSION);
	jw_kint(&w, "uptime_secs", (int64_t)((time_mono_ms() - a->started_mono_ms) / 1000));
	jw_kint(&w, "running_processes", (int64_t)a->nrunning);
	jw_kint(&w, "total_processes", (int64_t)a->nprocs);
	jw_obj_end(&w);
	agent_respond_json(req, 200, &b);
	buf_release(&b);
}

static void api_ssh_status(struct http_request *req, struct agent *a)
{
	const char body[] = "{\"enabled\":false,\"pid\":null,\"host_key_fingerprint\":null}";
	http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void api_not_implemented(struct http_request *req, struct agent *a)
{
	agent_error(req, 501, "NOT_IMPLEMENTED", "%.*s is not supported by hutch-agent",
	            SV_FMT(req->path));
}

typedef void (*agent_handler_fn)(struct http_request *req, struct agent *a);

#define ROUTE(m, pat)                  \
	{                              \
		m, "/api/v1" pat, NULL \
	}
static const struct http_route routes[] = {
        ROUTE(HTTP_GET, "/health"),
        ROUTE(HTTP_GET, "/info"),
        ROUTE(HTTP_POST, "/processes"),
        ROUTE(HTTP_GET, "/processes"),
        ROUTE(HTTP_POST, "/processes/run"),
        ROUTE(HTTP_GET, "/processes/{p}"),
        ROUTE(HTTP_DELETE, "/processes/{p}"),
        ROUTE(HTTP_POST, "/processes/{p}/signal"),
        ROUTE(HTTP_POST, "/processes/{p}/restart"),
        ROUTE(HTTP_POST, "/processes/{p}/stdin"),
        ROUTE(HTTP_POST, "/processes/{p}/stdin/close"),
        ROUTE(HTTP_GET, "/processes/{p}/stdout"),
        ROUTE(HTTP_GET, "/processes/{p}/stderr"),
        ROUTE(HTTP_GET, "/processes/{p}/output"),
        ROUTE(HTTP_GET, "/processes/{p}/stdout/follow"),
        ROUTE(HTTP_GET, "/processes/{p}/stderr/follow"),
        ROUTE(HTTP_GET, "/processes/{p}/output/follow"),
        ROUTE(HTTP_GET, "/files"),
        ROUTE(HTTP_PUT, "/files"),
        ROUTE(HTTP_DELETE, "/files"),
        ROUTE(HTTP_GET, "/files/list"),
        ROUTE(HTTP_POST, "/pty"),
        ROUTE(HTTP_GET, "/pty"),
        ROUTE(HTTP_GET, "/pty/{id}"),
        ROUTE(HTTP_DELETE, "/pty/{id}"),
        ROUTE(HTTP_POST, "/pty/{id}/resize"),
        ROUTE(HTTP_GET, "/pty/{id}/ws"),
        ROUTE(HTTP_GET, "/tunnels/tcp"),
        ROUTE(HTTP_GET, "/ssh/status"),
        ROUTE(HTTP_POST, "/ssh/enable"),
        ROUTE(HTTP_POST, "/ssh/disable"),
        ROUTE(HTTP_POST, "/blob/sign"),
};
static const agent_handler_fn handlers[] = {
        api_health,
        api_info,
        api_process_start,
        api_process_list,
        api_process_run,
        api_process_get,
        api_process_delete,
        api_process_signal,
        api_process_restart,
        api_process_stdin,
        api_process_stdin_close,
        api_process_output,
        api_process_output,
        api_process_output,
        api_process_follow,
        api_process_follow,
        api_process_follow,
        api_files_get,
        api_files_put,
        api_files_delete,
        api_files_list,
        api_pty_create,
        api_pty_list,
        api_pty_get,
        api_pty_delete,
        api_pty_resize,
        api_pty_ws,
        api_tunnel_tcp,
        api_ssh_status,
        api_not_implemented,
        api_not_implemented,
        api_not_implemented,
};
_Static_assert(ARRAY_SIZE(routes) == ARRAY_SIZE(handlers), "one handler per route");

/* CORS preflight: any origin may call the agent (the proxy in front does the auth). */
static void cors_preflight(struct http_request *req)
{
	struct sv want = http_request_header(req, "access-control-request-headers");
	http_response_header(req, "Access-Control-Allow-Methods",
	                     "GET, POST, PUT, DELETE, OPTIONS");
	http_response_header(req, "Access-Control-Allow-Headers", "%.*s",
	                     want.p ? (int)want.len : 1, want.p ? want.p : "*");
	http_response_header(req, "Access-Control-Max-Age", "86400");
	http_respond(req, 204, NULL, NULL, 0);
}

void agent_dispatch(struct http_request *req, void *data)
{
	struct agent *a = data;
	int status;
	http_response_header(req, "Access-Control-Allow-Origin", "*");
	if (req->method == HTTP_OPTIONS) {
		cors_preflight(req);
		return;
	}
	const struct http_route *r =
	        http_router_match(routes, ARRAY_SIZE(routes), req, req->path, &status);
	if (!r) {
		if (status == 405)
			agent_error(req, 405, "METHOD_NOT_ALLOWED", "method not allowed");
		else if (status == 400)
			agent_error(req, 400, "BAD_REQUEST", "badly encoded path");
		else
			agent_error(req, 404, "NOT_FOUND", "no such endpoint");
		return;
	}
	handlers[r - routes](req, a);
}

uv_stream_t *agent_ws_accept(struct http_request *req, struct buf *leftover)
{
	struct sv key = http_request_header(req, "sec-websocket-key");
	int r = ws_handshake_check(http_request_header(req, "upgrade"),
	                           http_request_header(req, "connection"),
	                           http_request_header(req, "sec-websocket-version"), key);
	if (r == -EPROTONOSUPPORT) {
		http_response_header(req, "Sec-WebSocket-Version", "13");
		agent_error(req, 426, "UPGRADE_REQUIRED", "WebSocket version 13 is required");
		return NULL;
	}
	if (r < 0) {
		agent_error(req, 400, "BAD_REQUEST", "a WebSocket upgrade is required here");
		return NULL;
	}
	char accept[WS_ACCEPT_LEN + 1];
	ws_accept_key(sv_trim(key), accept);
	struct buf head = BUF_INIT;
	buf_printf(&head,
	           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	           accept);
	http_response_write_raw(req, head.data, head.len);
	buf_release(&head);
	return http_conn_takeover(req, leftover);
}
