/* The hutch command-line client: shared state, the HTTP helpers every command uses, and the
 * command table. One file per command family (cmd-*.c). */
#ifndef HUTCH_CLI_H
#define HUTCH_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "ws/ws.h"

/* Where cli.api_key came from; says what to suggest when the server answers 401. */
enum cli_key_source {
	CLI_KEY_NONE,       /* no key: none given, and admin.key unreadable or not used */
	CLI_KEY_GIVEN,      /* HUTCH_API_KEY, TENSORLAKE_API_KEY or --api-key */
	CLI_KEY_ADMIN_FILE, /* DATA_DIR/admin.key, read because the API URL is a loopback URL */
};

struct cli {
	char *api_url; /* HUTCH_API_URL, TENSORLAKE_API_URL, default http://127.0.0.1:8900 */
	char *api_key; /* HUTCH_API_KEY, TENSORLAKE_API_KEY, --api-key, else DATA_DIR/admin.key
	                * when api_url is a loopback URL */
	enum cli_key_source key_source;
	char *data_dir; /* HUTCH_DATA_DIR, default /var/lib/hutch (local commands) */
	bool json;      /* --json: machine-readable output */
	bool quiet;
};

extern struct cli cli;

/* Whether url's host is this machine: 127.0.0.0/8 as a dotted quad, [::1] or localhost, with an
 * optional http(s) scheme and port and no user info. Anything else, including other spellings
 * of a loopback address, is false: the local admin key is only sent when this is true. */
bool cli_url_is_loopback(const char *url);

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary; /* NULL for aliases (not listed) */
	const char *help;    /* usage and details for `hutch CMD --help` */
	bool raw_args;       /* the arguments after the sandbox end in a remote command: only the
	                      * first argument is checked for --help/--json */
};

/* A finished HTTP exchange. body is NUL-terminated. */
struct cli_response {
	long status;
	struct buf body;
	struct buf headers;
};

void cli_response_release(struct cli_response *r);

/* Calls the control plane: method, path (e.g. "/sandboxes"), optional JSON body. Returns 0 when
 * the exchange happened (check r->status), -1 on a transport error (already printed). */
int cli_api(const char *method, const char *path, json_t *body, struct cli_response *r);
/* Like cli_api with extra request headers ("Name: value"), NULL-terminated. */
int cli_api_h(const char *method, const char *path, json_t *body, const char *const *headers,
              struct cli_response *r);
/* Parses r->body as JSON (NULL and an error message if it is not). */
json_t *cli_json(const struct cli_response *r);
/* Prints an API error ("hutch: 404 SANDBOX_NOT_FOUND: sandbox x not found") and returns 1.
 * A 401 also says how to give an API key (cli_auth_hint). */
int cli_fail(const struct cli_response *r, const char *what);
/* The API key to send to url (NULL: none): a given key always, the local admin key only to a
 * loopback URL. */
const char *cli_key_for(const char *url);
/* After an HTTP 401: explains, once per process, how to give an API key when the CLI sent none
 * or only the local admin key. */
void cli_auth_hint(long status);
/* Prints a message to stderr and returns 1 (or 2 for usage errors via cli_usage). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const char *usage);
/* Prints a JSON value (pretty) to stdout. */
void cli_print_json(json_t *v);
/* Percent-encodes a path segment into a static-lifetime-free malloc'd string. */
char *cli_escape(const char *s);
/* Resolves a sandbox (id or name) to its object; prints the error and returns NULL if absent. */
json_t *cli_sandbox_get(const char *id_or_name);

/* The agent (through the proxy) of a sandbox object: base URL and Host header to use. */
struct cli_target {
	char *base;        /* e.g. http://127.0.0.1:9443 */
	char *host_header; /* "Host: {id}.local" in local mode, else NULL */
	char *id_header;   /* "X-Tensorlake-Sandbox-Id: {id}" */
	char *id;
};

int cli_target_for(const char *id_or_name, struct cli_target *ret);
void cli_target_release(struct cli_target *t);
/* Calls the sandbox agent: method, path ("/api/v1/..."), body bytes (may be NULL). */
int cli_agent(struct cli_target *t, const char *method, const char *path, const void *body,
              size_t len, const char *content_type, struct cli_response *r);
/* The signal that asked the current command to stop (0: none), set by the handlers a command
 * installs (hutch run). */
extern volatile sig_atomic_t cli_interrupted;

/* Streams an SSE response from the agent: on_event(data, len, arg) for each event's data; a
 * non-zero return stops. Returns the HTTP status, or -1 (after printing why, unless the stream
 * ended because cli_interrupted was set). */
long cli_agent_sse(struct cli_target *t, const char *method, const char *path, json_t *body,
                   int (*on_event)(const char *event, const char *data, size_t len, void *arg),
                   void *arg);

/* A blocking WebSocket client connection to the agent through the proxy (cmd-tunnel.c): libcurl
 * makes the TCP or TLS connection (CONNECT_ONLY), lib/ws frames the messages. One thread. */
struct cli_ws {
	void *curl; /* CURL * */
	int fd;     /* the socket, for poll(); reads go through cli_ws_fill */
	struct ws_parser parser;
	struct buf in; /* received bytes not parsed yet */
	bool close_sent, close_received;
	unsigned close_code;
	char close_reason[126];
};

/* Connects to t's proxy and upgrades path (e.g. "/api/v1/tunnels/tcp?port=80"), with the API key,
 * the sandbox addressing headers and extra headers ("Name: value", NULL-terminated). Prints what
 * went wrong and returns a negative errno (-EACCES for 401/403, -ENOENT for 404). */
int cli_ws_connect(struct cli_target *t, const char *path, const char *const *headers,
                   struct cli_ws *ret);
/* Sends one masked message whose payload is prefix + data. Blocks while the socket is full.
 * Returns 0 or -EPIPE. */
int cli_ws_send(struct cli_ws *ws, uint8_t opcode, const void *prefix, size_t plen,
                const void *data, size_t len);
/* Reads whatever the socket has now (call when poll() says ws->fd is readable). Returns the
 * bytes read (0: nothing yet), -EPIPE at end of stream, -EIO on errors. */
int cli_ws_fill(struct cli_ws *ws);
/* Takes the next TEXT/BINARY/CLOSE message out of what was read (pings are answered, a close
 * is recorded in close_code/close_reason and echoed). 1 with ret filled (valid until the next
 * call), 0 when more bytes are needed, <0 on a protocol error (the connection is failed). */
int cli_ws_next(struct cli_ws *ws, struct ws_event *ret);
/* Starts the close handshake (once). */
void cli_ws_close(struct cli_ws *ws, unsigned code, const char *reason);
void cli_ws_release(struct cli_ws *ws);

/* Prints a progress line on stderr when it is a terminal (and not --quiet); the next call
 * overwrites it, a NULL format ends it (cmd-snapshot.c). */
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Polls GET /snapshots/{id} until it is ready (local_ready or completed, or only completed when
 * want_completed) or failed, for up to timeout_s. Prints progress. Returns 0 with the snapshot
 * object in *ret, or 1 after printing why. */
int cli_snapshot_wait(const char *snapshot_id, bool want_completed, int timeout_s, json_t **ret);

/* Help texts of the commands that have their own files (shown by `hutch CMD --help`). */
extern const char cli_pty_help[];
extern const char cli_tunnel_help[];
extern const char cli_port_help[];
extern const char cli_snapshot_help[];
extern const char cli_copy_help[];
extern const char cli_clone_help[];
extern const char cli_pool_help[];

/* command families */
int cmd_create(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_describe(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_terminate(int argc, char **argv);
int cmd_suspend(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_pty(int argc, char **argv);
int cmd_tunnel(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_pool(int argc, char **argv);

#endif
