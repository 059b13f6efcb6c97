#!/bin/bash
# A WebSocket upgrade the proxy cannot forward (here: the sandbox is terminated) is accepted and
# closed at once with 1011 and the reason, so that the SDK's tunnel relay ends the local
# connection instead of throwing (compat finding F5); a plain request still gets the JSON 503.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq; need_cmd python3
hutchd_start
T="X-Tensorlake-Request-Timeout-Ms: 30000"
id=$(curl -s -H "$AUTH" -H "$T" -X POST "$API/sandboxes" -d '{"image":"busybox"}' | jq_get .sandbox_id)
api DELETE "/sandboxes/$id"
expect_eq "a plain request to a terminated sandbox is 503" \
	"$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" -H "Host: $id.local" "$PROXY/api/v1/health")" 503
out=$(python3 - "${PROXY#http://}" "$id" "$KEY" <<'PY'
import base64, os, socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), 5)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/v1/tunnels/tcp?port=8080 HTTP/1.1\r\nHost: {sys.argv[2]}.local\r\n"
           f"Authorization: Bearer {sys.argv[3]}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
head, _, rest = data.partition(b"\r\n\r\n")
status = head.split(b"\r\n")[0].decode()
code, reason = None, ""
if len(rest) >= 4 and rest[0] == 0x88:
    n = rest[1] & 0x7F
    code = struct.unpack(">H", rest[2:4])[0]
    reason = rest[4:2 + n].decode(errors="replace")
print(status)
print(code)
print(reason)
PY
)
expect_match "the upgrade is accepted" "$(sed -n 1p <<<"$out")" '^HTTP/1.1 101'
expect_eq "then closed with 1011" "$(sed -n 2p <<<"$out")" 1011
expect_match "naming the reason" "$(sed -n 3p <<<"$out")" 'not running'
t_done
