/* hutch tunnel: a local TCP listener whose every accepted connection rides its own WebSocket to
 * /api/v1/tunnels/tcp?port=N on the sandbox agent. Also holds the small blocking WebSocket client
 * (libcurl CONNECT_ONLY for TCP/TLS, lib/ws for frames) that `hutch pty` shares. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

#define WS_HANDSHAKE_MAX 16384
#define WS_CONNECT_MS    10000
#define WS_MAX_MESSAGE   (1024 * 1024)
#define TUNNEL_CHUNK     (32 * 1024)
#define TUNNEL_PING_MS   15000

/* ---- the WebSocket client ---- */

/* Waits until the socket is readable (or writable); 0 ready, -ETIMEDOUT, -errno. */
static int ws_wait(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int n;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Writes all of data through curl (TCP or TLS), waiting while the socket is full. */
static int ws_write_all(struct cli_ws *ws, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(ws->curl, p, len, &n);
		if (rc == CURLE_AGAIN) {
			int w = ws_wait(ws->fd, POLLOUT, 30000);
			if (w < 0)
				return w;
			continue;
		}
		if (rc != CURLE_OK)
			return -EPIPE;
		p += n;
		len -= n;
	}
	return 0;
}

int cli_ws_fill(struct cli_ws *ws)
{
	char tmp[65536];
	int total = 0;
	for (;;) {
		size_t n = 0;
		CURLcode rc = curl_easy_recv(ws->curl, tmp, sizeof(tmp), &n);
		if (rc == CURLE_AGAIN)
			return total;
		if (rc != CURLE_OK)
			return -EIO;
		if (n == 0)
			return total ? total : -EPIPE;
		buf_add(&ws->in, tmp, n);
		total += (int)n;
	}
}

/* Splits "scheme://authority/path" into the authority and the path ("" when none). */
static void url_parts(const char *url, char **ret_authority, const char **ret_path)
{
	const char *a = strstr(url, "://");
	a = a ? a + 3 : url;
	const char *slash = strchr(a, '/');
	*ret_authority = slash ? xstrndup(a, (size_t)(slash - a)) : xstrdup(a);
	*ret_path = slash ? slash : "";
}

static void ws_request_build(struct cli_target *t, const char *path, const char *const *headers,
                             const char *key, struct buf *out)
{
	char *authority;
	const char *prefix;
	url_parts(t->base, &authority, &prefix);
	buf_printf(out, "GET %s%s HTTP/1.1\r\n", prefix, path);
	if (t->host_header)
		buf_printf(out, "%s\r\n", t->host_header);
	else
		buf_printf(out, "Host: %s\r\n%s\r\n", authority, t->id_header);
	const char *api_key = cli_key_for(t->base);
	if (api_key && api_key[0])
		buf_printf(out, "Authorization: Bearer %s\r\n", api_key);
	buf_printf(out,
	           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
	           "Sec-WebSocket-Key: %s\r\nUser-Agent: hutch/%s\r\n",
	           key, HUTCH_VERSION);
	for (size_t i = 0; headers && headers[i]; i++)
		buf_printf(out, "%s\r\n", headers[i]);
	buf_adds(out, "\r\n");
	free(authority);
}

/* Finds header name (case-insensitive) in a response head; returns its trimmed value. */
static struct sv head_header(struct sv head, const char *name)
{
	struct sv line, rest = head;
	while (sv_split(rest, '\n', &line, &rest)) {
		struct sv k, v;
		if (sv_split(line, ':', &k, &v) && sv_case_eq(sv_trim(k), sv_from(name)))
			return sv_trim(v);
	}
	return sv_make(NULL, 0);
}

/* Reads the handshake answer; bytes after the head stay in ws->in. */
static int ws_handshake_read(struct cli_ws *ws, const char *key, const char *what)
{
	uint64_t deadline = time_mono_ms() + WS_CONNECT_MS;
	char *end;
	while (!(end = memmem(ws->in.data ? ws->in.data : "", ws->in.len, "\r\n\r\n", 4))) {
		if (ws->in.len > WS_HANDSHAKE_MAX || time_mono_ms() > deadline)
			return cli_error("%s: no WebSocket handshake answer", what), -EPROTO;
		int w = ws_wait(ws->fd, POLLIN, 1000);
		if (w < 0 && w != -ETIMEDOUT)
			return w;
		int n = cli_ws_fill(ws);
		if (n < 0)
			return cli_error("%s: the connection closed during the handshake", what), n;
	}
	size_t head_len = (size_t)(end - ws->in.data) + 4;
	struct sv head = sv_make(ws->in.data, head_len);
	int status = 0;
	sscanf(ws->in.data, "HTTP/1.%*d %d", &status);
	if (status != 101) {
		struct sv body = sv_make(ws->in.data + head_len, ws->in.len - head_len);
		cli_error("%s: HTTP %d %.*s", what, status, SV_FMT(sv_trim(body)));
		cli_auth_hint(status);
		return status == 404 ? -ENOENT : status == 401 || status == 403 ? -EACCES : -EPROTO;
	}
	char want[WS_ACCEPT_LEN + 1];
	ws_accept_key(sv_from(key), want);
	if (!sv_eq_cstr(head_header(head, "Sec-WebSocket-Accept"), want))
		return cli_error("%s: bad Sec-WebSocket-Accept", what), -EPROTO;
	buf_consume(&ws->in, head_len);
	return 0;
}

int cli_ws_connect(struct cli_target *t, const char *path, const char *const *headers,
                   struct cli_ws *ret)
{
	struct cli_ws ws = {.fd = -1};
	ws.curl = curl_easy_init();
	if (!ws.curl)
		return cli_error("cannot initialise libcurl"), -ENOMEM;
	curl_easy_setopt(ws.curl, CURLOPT_URL, t->base);
	curl_easy_setopt(ws.curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(ws.curl, CURLOPT_CONNECTTIMEOUT_MS, (long)WS_CONNECT_MS);
	curl_easy_setopt(ws.curl, CURLOPT_NOSIGNAL, 1L);
	CURLcode cc = curl_easy_perform(ws.curl);
	curl_socket_t s = CURL_SOCKET_BAD;
	if (cc == CURLE_OK)
		curl_easy_getinfo(ws.curl, CURLINFO_ACTIVESOCKET, &s);
	if (cc != CURLE_OK || s == CURL_SOCKET_BAD) {
		cli_error("connecting to %s: %s", t->base, curl_easy_strerror(cc));
		curl_easy_cleanup(ws.curl);
		return -ECONNREFUSED;
	}
	ws.fd = (int)s;
	ws_parser_init(&ws.parser, WS_ROLE_CLIENT, WS_MAX_MESSAGE);
	char key[WS_KEY_LEN + 1];
	ws_client_key(key);
	_cleanup_buf_ struct buf req = BUF_INIT;
	ws_request_build(t, path, headers, key, &req);
	int rc = ws_write_all(&ws, req.data, req.len);
	if (rc == 0)
		rc = ws_handshake_read(&ws, key, path);
	if (rc < 0) {
		cli_ws_release(&ws);
		return rc;
	}
	*ret = ws;
	return 0;
}

int cli_ws_send(struct cli_ws *ws, uint8_t opcode, const void *prefix, size_t plen,
                const void *data, size_t len)
{
	uint8_t mask[4];
	_cleanup_buf_ struct buf frame = BUF_INIT;
	if (ws->close_sent)
		return -EPIPE;
	random_bytes(mask, sizeof(mask));
	ws_frame_build2(&frame, opcode, prefix, plen, data, len, mask);
	if (opcode == WS_OP_CLOSE)
		ws->close_sent = true;
	return ws_write_all(ws, frame.data, frame.len);
}

void cli_ws_close(struct cli_ws *ws, unsigned code, const char *reason)
{
	_cleanup_buf_ struct buf p = BUF_INIT;
	if (ws->close_sent)
		return;
	ws_close_payload_build(&p, code, reason);
	cli_ws_send(ws, WS_OP_CLOSE, NULL, 0, p.data, p.len);
}

int cli_ws_next(struct cli_ws *ws, struct ws_event *ret)
{
	for (;;) {
		unsigned close_code;
		int rc = ws_parser_next(&ws->parser, &ws->in, ret, &close_code);
		if (rc < 0) {
			cli_ws_close(ws, close_code, "protocol error");
			return rc;
		}
		if (rc == 0)
			return 0;
		if (ret->opcode == WS_OP_PING) {
			cli_ws_send(ws, WS_OP_PONG, NULL, 0, ret->data, ret->len);
			continue;
		}
		if (ret->opcode == WS_OP_PONG)
			continue;
		if (ret->opcode == WS_OP_CLOSE) {
			struct sv reason = sv_make("", 0);
			ws->close_code = WS_CLOSE_NO_STATUS;
			ws_close_payload_parse(ret->data, ret->len, &ws->close_code, &reason);
			snprintf(ws->close_reason, sizeof(ws->close_reason), "%.*s",
			         SV_FMT(reason));
			ws->close_received = true;
			cli_ws_close(ws,
			             ws->close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL
			                                                  : ws->close_code,
			             "");
		}
		return 1;
	}
}

void cli_ws_release(struct cli_ws *ws)
{
	if (ws->curl)
		curl_easy_cleanup(ws->curl);
	ws_parser_release(&ws->parser);
	buf_release(&ws->in);
	memset(ws, 0, sizeof(*ws));
	ws->fd = -1;
}

/* ---- tunnel ---- */

const char cli_tunnel_help[] =
        "hutch tunnel ID|NAME PORT [--listen-port N] [--listen-host ADDR]\n"
        "  Listens on ADDR:N (default 127.0.0.1:PORT; N 0 picks a free port) and forwards every\n"
        "  accepted TCP connection to 127.0.0.1:PORT inside the sandbox over its own WebSocket\n"
        "  (/api/v1/tunnels/tcp). Prints the local address once listening; runs until interrupted.";

/* Local bytes to the sandbox: one binary message per read. 0 = go on, 1 = local EOF. */
static int relay_up(int tcp, struct cli_ws *ws)
{
	char chunk[TUNNEL_CHUNK];
	ssize_t n;
	do
		n = read(tcp, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 1;
	return cli_ws_send(ws, WS_OP_BINARY, NULL, 0, chunk, (size_t)n) < 0 ? -EPIPE : 0;
}

/* Sandbox bytes to the local socket. 0 = go on, 1 = the WebSocket closed, <0 error. */
static int relay_down(int tcp, struct cli_ws *ws)
{
	int n = cli_ws_fill(ws);
	struct ws_event ev;
	int rc;
	while ((rc = cli_ws_next(ws, &ev)) == 1) {
		if (ev.opcode == WS_OP_CLOSE)
			return 1;
		if (ev.opcode == WS_OP_TEXT) /* like the SDK: a text frame is fatal */
			return -EPROTO;
		if (write_all(tcp, ev.data, ev.len) < 0)
			return -EPIPE;
	}
	if (rc < 0)
		return rc;
	return n == -EPIPE ? 1 : n < 0 ? n : 0;
}

/* Relays one accepted connection until either side ends. Runs in its own process. */
static int tunnel_relay(int tcp, struct cli_target *t, int port)
{
	char path[64];
	struct cli_ws ws;
	snprintf(path, sizeof(path), "/api/v1/tunnels/tcp?port=%d", port);
	if (cli_ws_connect(t, path, NULL, &ws) < 0)
		return 1;
	bool local_open = true;
	int rc = 0;
	while (rc == 0) {
		struct pollfd p[2] = {{.fd = ws.fd, .events = POLLIN},
		                      {.fd = tcp, .events = POLLIN}};
		int n = poll(p, local_open ? 2 : 1, local_open ? TUNNEL_PING_MS : 2000);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && !local_open)
			break; /* the server never answered our close */
		if (n == 0)
			rc = cli_ws_send(&ws, WS_OP_PING, NULL, 0, "", 0) < 0;
		if (n > 0 && p[0].revents)
			rc = relay_down(tcp, &ws);
		if (rc == 0 && n > 0 && local_open && p[1].revents && relay_up(tcp, &ws) == 1) {
			local_open = false; /* like the SDK: local EOF closes the WebSocket */
			cli_ws_close(&ws, WS_CLOSE_NORMAL, "");
		}
	}
	shutdown(tcp, SHUT_RDWR);
	cli_ws_release(&ws);
	return rc < 0 ? 1 : 0;
}

static int tunnel_listen(const char *host, int port, int *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return cli_error("tunnel: --listen-host must be an IPv4 address"), -EINVAL;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
		return cli_error("tunnel: cannot listen on %s:%d: %s", host, port, strerror(errno)),
		       -errno;
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*ret_port = ntohs(a.sin_port);
	return TAKE_FD(fd);
}

/* Parses ID PORT [--listen-port N] [--listen-host ADDR]; *ret_lport stays -1 when not given. */
static int tunnel_parse(int argc, char **argv, const char **ret_id, int *ret_port, int *ret_lport,
                        const char **ret_lhost)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen-port") == 0 && i + 1 < argc)
			*ret_lport = atoi(argv[++i]);
		else if (strcmp(argv[i], "--listen-host") == 0 && i + 1 < argc)
			*ret_lhost = argv[++i];
		else if (argv[i][0] != '-' && !*ret_id)
			*ret_id = argv[i];
		else if (argv[i][0] != '-' && *ret_port < 0)
			*ret_port = atoi(argv[i]);
		else
			return cli_usage(cli_tunnel_help);
	}
	if (!*ret_id || *ret_port < 1 || *ret_port > 65535 || *ret_lport < -1 || *ret_lport > 65535)
		return cli_usage(cli_tunnel_help);
	return 0;
}

/* Accepts connections for ever; each one is relayed by its own child process. */
static int tunnel_serve(int lfd, struct cli_target *t, int port)
{
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return cli_error("tunnel: accept: %s", strerror(errno));
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			_exit(tunnel_relay(c, t, port));
		}
		if (pid < 0)
			cli_error("tunnel: fork: %s", strerror(errno));
		close(c);
	}
}

int cmd_tunnel(int argc, char **argv)
{
	const char *id = NULL, *lhost = "127.0.0.1";
	int port = -1, lport = -1;
	int rc = tunnel_parse(argc, argv, &id, &port, &lport, &lhost);
	if (rc)
		return rc;
	struct cli_target t;
	if (cli_target_for(id, &t) < 0)
		return 1;
	int bound = 0;
	_cleanup_close_ int lfd = tunnel_listen(lhost, lport < 0 ? port : lport, &bound);
	if (lfd < 0) {
		cli_target_release(&t);
		return 1;
	}
	signal(SIGCHLD, SIG_IGN); /* relays are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	printf("%s:%d\n", lhost, bound);
	fflush(stdout);
	if (!cli.quiet && isatty(STDERR_FILENO))
		fprintf(stderr, "forwarding %s:%d to port %d of %s (Ctrl-C to stop)\n", lhost,
		        bound, port, t.id);
	rc = tunnel_serve(lfd, &t, port);
	cli_target_release(&t);
	return rc;
}
