#!/bin/bash
# hutch CLI: exec (exit codes follow the remote command, stdout/stderr kept apart, options),
# exec --detach, ps (--json), logs (and --follow while the process runs), kill, run (and that it
# never leaves the sandbox it created behind).
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
H=$HUTCH_BIN/hutch
id=$($H create --image busybox execbox)

expect_eq "exec output" "$($H exec execbox -- echo hello world)" "hello world"
$H exec execbox -- sh -c 'exit 7'; expect_eq "exit code 7 follows" $? 7
$H exec execbox -- true; expect_eq "exit code 0" $? 0
$H exec execbox -- sh -c 'kill -9 $$' 2>/dev/null; expect_eq "killed by signal 9 is 137" $? 137
$H exec execbox -- /no/such/cmd >/dev/null 2>&1; rc=$?
[ $rc != 0 ] && pass "a missing command fails ($rc)" || fail "a missing command exited 0"
out=$($H exec execbox -- sh -c 'echo to-out; echo to-err >&2' 2>/tmp/cli-err.$$)
expect_eq "stdout only on stdout" "$out" to-out
expect_eq "stderr only on stderr" "$(cat /tmp/cli-err.$$)" to-err
rm -f /tmp/cli-err.$$
expect_eq "--env and --workdir" "$($H exec execbox --env A=1 --env B='x y' -w /tmp -- sh -c 'echo $A $B $(pwd)')" "1 x y /tmp"
expect_eq "options before the sandbox" "$($H exec -e Z=9 execbox -- sh -c 'echo $Z')" 9
expect_eq "--user" "$($H exec execbox --user nobody -- id -u)" 65534
t0=$(date +%s)
$H exec execbox --timeout 1 -- sleep 30 2>/dev/null; rc=$?
[ $rc != 0 ] && [ $(( $(date +%s) - t0 )) -lt 10 ] && pass "--timeout stops the command ($rc)" || fail "--timeout (rc $rc)"
expect_eq "no -- needed" "$($H exec execbox echo a b)" "a b"
expect_eq "exec with --json before the command is not swallowed" "$($H exec execbox -- echo --json)" "--json"

pid=$($H exec --detach execbox -- sh -c 'i=0; while [ $i -lt 3 ]; do echo tick$i; i=$((i+1)); sleep 1; done; echo bye >&2')
expect_match "--detach prints the pid" "$pid" '^[0-9]+$'
ps_json=$($H ps execbox --json)
expect_eq "ps --json has it running" "$(jq -r ".[] | select(.pid==$pid) | .status" <<<"$ps_json")" running
expect_match "ps table" "$($H ps execbox)" "$pid +running"
t0=$(date +%s%N)
follow=$($H logs execbox "$pid" --follow 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "logs --follow streams until the process ends" "$follow" "$(printf 'tick0\ntick1\ntick2\nbye')"
[ $ms -gt 1000 ] && pass "logs --follow waited for live lines (${ms} ms)" || fail "logs --follow returned after ${ms} ms"
expect_eq "logs after the end" "$($H logs execbox "$pid" --stdout)" "$(printf 'tick0\ntick1\ntick2')"
expect_eq "logs --stderr" "$($H logs execbox "$pid" --stderr)" bye
expect_eq "ps shows the exit code" "$($H ps execbox --json | jq -r ".[] | select(.pid==$pid) | .exit_code")" 0

named=$($H exec --detach --name worker execbox -- sleep 1000)
expect_eq "a named detached process" "$($H ps execbox --json | jq -r '.[] | select(.pid=='"$named"') | .status')" running
$H kill execbox worker --signal 15; expect_eq "kill --signal" $? 0
wait_for sh -c "$H ps execbox --json | jq -e '.[] | select(.pid==$named) | .status!=\"running\"'"
expect_eq "signal 15 ended it" "$($H ps execbox --json | jq -r ".[] | select(.pid==$named) | .signal")" 15
p2=$($H exec -d execbox -- sleep 1000)
$H kill execbox "$p2"; expect_eq "kill" $? 0
wait_for sh -c "$H ps execbox --json | jq -e '.[] | select(.pid==$p2) | .signal==9'"
expect_eq "kill sends SIGKILL" "$($H ps execbox --json | jq -r ".[] | select(.pid==$p2) | .signal")" 9
$H kill execbox 99999 2>/dev/null; expect_eq "kill of an unknown pid fails" $? 1

before=$($H ls --quiet | wc -l)
expect_eq "run: output" "$($H run --image busybox -- sh -c 'echo one-shot')" one-shot
$H run --image busybox -- sh -c 'exit 4'; expect_eq "run: exit code follows" $? 4
expect_eq "run tears the sandbox down" "$($H ls --quiet | wc -l)" "$before"

# run never leaves a sandbox it created behind: a bad image (the sandbox ends before it runs),
# a signal while the command runs, a closed stdout; the API lists no new live sandbox after each
live() { apij GET '/sandboxes?limit=500' | jq -r '.sandboxes[] | select(.status!="terminated") | .id' | sort | tr '\n' ' '; }
all_ids() { apij GET '/sandboxes?limit=500' | jq -r '.sandboxes[].id' | sort; }
live0=$(live); ids0=$(all_ids)
expect_eq "run with a failing command left no live sandbox" "$live0" "$(printf '%s\n' "$id" | tr '\n' ' ')"
out=$($H run --image no-such-image -- true 2>&1); rc=$?
expect_eq "run with a bad image fails" $rc 1
expect_match "and says the sandbox did not start" "$out" 'sandbox [a-z0-9]+ did not start \(terminated'
expect_eq "run with a bad image leaves no live sandbox" "$(live)" "$live0"
new=$(comm -13 <(echo "$ids0") <(all_ids))
[ -n "$new" ] && [ "$(apij GET "/sandboxes/$new" | jq -r .status)" = terminated ] &&
	pass "the bad image's sandbox ($new) is terminated" || fail "bad image sandbox: '$new'"
$H run --image busybox -- sleep 300 >/dev/null 2>&1 &
rpid=$!
wait_for sh -c "[ \"\$($H ls --running --quiet | wc -l)\" -gt $before ]"
sid=$(comm -13 <(echo "$ids0") <(all_ids) | grep -vx "$new")
wait_for sh -c "$H ps $sid --json | jq -e 'map(select(.command==\"sleep\")) | length == 1'"
t0=$(date +%s)
kill -TERM $rpid; wait $rpid; rc=$?
expect_eq "run dies of the SIGTERM it got" $rc 143
[ $(( $(date +%s) - t0 )) -lt 10 ] && pass "promptly" || fail "SIGTERM took $(( $(date +%s) - t0 ))s"
expect_eq "a run killed with SIGTERM leaves no live sandbox" "$(live)" "$live0"
expect_eq "its sandbox is terminated" "$(apij GET "/sandboxes/$sid" | jq -r .status)" terminated
out=$(timeout 60 bash -c "$H run --image busybox -- sh -c 'while :; do echo y; done' | head -n 2")
expect_eq "run into a pipe that closes" "$out" "$(printf 'y\ny')"
expect_eq "a run whose stdout closed leaves no live sandbox" "$(live)" "$live0"

# against a fake API on 127.0.0.1: a create answered 504 (not started in time) or with a sandbox
# that is not running, and failures after the create (agent unreachable, DELETE failing for a
# while or for good)
FW=$(mktemp -d /tmp/hutch-cli-run-XXXXXX)
cat >"$FW/fake.py" <<'PY'
import http.server, json, sys
portfile, log, dead = sys.argv[1], sys.argv[2], int(sys.argv[3])
deletes = {}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def note(self, s):
        with open(log, 'a') as f: f.write(s + '\n')
    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get('Content-Length') or 0)) or b'{}')
        img = req.get('image', '')
        self.note('POST ' + img)
        if img == 'timeout':
            self.reply(504, {'sandbox_id': 'fakepending', 'status': 'timeout', 'pending_reason': 'no capacity'})
        elif img == 'suspended':
            self.reply(200, {'sandbox_id': 'fakesuspended', 'status': 'suspended'})
        elif img in ('unreachable', 'flaky', 'stuck'):
            self.reply(200, {'sandbox_id': 'fake' + img, 'status': 'running'})
        else:
            self.reply(400, {'code': 'INVALID_ARGUMENT', 'error': 'no such image'})
    def do_GET(self):
        sid = self.path.rsplit('/', 1)[-1]
        self.reply(200, {'id': sid, 'status': 'running', 'sandbox_url': 'http://127.0.0.1:%d' % dead})
    def do_DELETE(self):
        sid = self.path.rsplit('/', 1)[-1]
        self.note('DELETE ' + sid)
        deletes[sid] = deletes.get(sid, 0) + 1
        if sid == 'fakestuck' or (sid == 'fakeflaky' and deletes[sid] == 1):
            self.reply(503, {'code': 'UNAVAILABLE', 'error': 'try again'})
        else:
            self.reply(200, {})
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
with open(portfile, 'w') as f: f.write(str(srv.server_address[1]))
srv.serve_forever()
PY
python3 "$FW/fake.py" "$FW/port" "$FW/log" "$(free_port)" &
fpid=$!
wait_for test -s "$FW/port"
fake() { : >"$FW/log"; HUTCH_API_URL=http://127.0.0.1:$(cat "$FW/port") $H run --image "$1" -- true 2>"$FW/err"; }
fake timeout; expect_eq "run: a create answered 504 fails" $? 1
expect_match "it says the sandbox did not start in time" "$(cat "$FW/err")" 'fakepending did not start in time \(timeout: no capacity\)'
expect_eq "the sandbox of a 504 is deleted" "$(tr '\n' ' ' <"$FW/log")" "POST timeout DELETE fakepending "
fake suspended; expect_eq "run: a sandbox that is not running fails" $? 1
expect_eq "and is deleted" "$(tr '\n' ' ' <"$FW/log")" "POST suspended DELETE fakesuspended "
fake unreachable; expect_eq "run: an unreachable agent fails" $? 1
expect_eq "the sandbox is deleted after a failure past the create" "$(tr '\n' ' ' <"$FW/log")" "POST unreachable DELETE fakeunreachable "
fake flaky; expect_eq "run: a DELETE answered 503 once" $? 1
expect_eq "is retried" "$(tr '\n' ' ' <"$FW/log")" "POST flaky DELETE fakeflaky DELETE fakeflaky "
fake stuck
expect_match "a sandbox that cannot be deleted is named" "$(cat "$FW/err")" 'sandbox fakestuck was left behind: remove it with `hutch terminate fakestuck`'
expect_eq "after three tries" "$(grep -c DELETE "$FW/log")" 3
fake bad; expect_eq "run: a refused create fails" $? 1
expect_eq "and deletes nothing" "$(tr '\n' ' ' <"$FW/log")" "POST bad "
kill $fpid; rm -rf "$FW"

$H run --image busybox --keep -- true 2>/dev/null
expect_eq "run --keep keeps it" "$($H ls --quiet | wc -l)" $((before + 1))
t_done
