#!/bin/bash
# hutch CLI: `hutch pty` driven through a real pseudo-terminal (python3's pty module): raw mode,
# the window size at start and after a resize (SIGWINCH), Ctrl-C reaching the remote side, the
# remote exit code as hutch's, the local terminal restored; plus non-interactive use.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd python3
hutchd_start
H=$HUTCH_BIN/hutch
id=$($H create --image busybox ptybox)

cat >/tmp/hutch-pty-drive.$$.py <<'PY'
import fcntl, os, pty, re, select, struct, sys, termios, time
hutch, target, script = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.execvp("sh", ["sh", "-c", script.replace("@HUTCH@", hutch).replace("@TARGET@", target)])
out = b""
def expect(pat, timeout=15):
    global out
    end = time.time() + timeout
    while time.time() < end:
        m = re.search(pat.encode(), out)
        if m:
            out = out[m.end():]
            return m
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    print("FAIL: expected %r, have %r" % (pat, out[-400:]))
    sys.exit(1)
def send(s):
    os.write(fd, s.encode())
mode = sys.argv[4]
if mode == "interactive":
    expect(r"[#$] ")
    send("stty size\r"); expect(r"30 100"); print("PASS: the remote terminal starts at the local size (30x100)")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 43, 132, 0, 0))
    time.sleep(0.3)
    send("stty size\r"); expect(r"43 132"); print("PASS: a local resize (SIGWINCH) reaches the remote terminal")
    send("echo $((6*7))\r"); expect(r"\r\n42\r\n"); print("PASS: input and output in raw mode")
    send("sleep 100\r"); time.sleep(0.5); send("\x03"); send("echo after-ctrl-c\r")
    expect(r"\r\nafter-ctrl-c"); print("PASS: Ctrl-C interrupts the remote command, not hutch")
    send("exit 5\r")
    m = expect(r"HUTCH_RC=(\d+)")
    print(("PASS" if m.group(1) == b"5" else "FAIL") + ": the remote exit code is hutch's (%s)" % m.group(1).decode())
else:
    m = expect(r"HUTCH_RC=(\d+)")
    print(("PASS" if m.group(1).decode() == mode else "FAIL") + ": exit code %s, want %s" % (m.group(1).decode(), mode))
os.waitpid(pid, 0)
PY
drive() { python3 /tmp/hutch-pty-drive.$$.py "$H" "$id" "$@"; }
out=$(drive '@HUTCH@ pty @TARGET@; rc=$?; stty -a; echo HUTCH_RC=$rc' interactive 2>&1)
echo "$out" | grep -E '^(PASS|FAIL): '
# the shell after hutch prints stty -a: canonical mode and echo are back
out2=$(python3 - "$H" "$id" <<'PY'
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp("sh", ["sh", "-c", sys.argv[1] + " pty " + sys.argv[2] + " -- sh -c 'exit 0'; stty -a"])
buf = b""
while True:
    r, _, _ = select.select([fd], [], [], 15)
    if not r: break
    try: d = os.read(fd, 65536)
    except OSError: break
    if not d: break
    buf += d
os.waitpid(pid, 0)
print(buf.decode(errors="replace"))
PY
)
grep -qE '(^|[ ;])icanon' <<<"$out2" && grep -qE '(^|[ ;])echo( |$)' <<<"$out2" &&
	pass "the local terminal is restored (icanon, echo)" || fail "terminal not restored: $(grep -o '.icanon\|.echo ' <<<"$out2" | tr '\n' ' ')"
out=$(drive '@HUTCH@ pty @TARGET@ -- sh -c "exit 9"; echo HUTCH_RC=$?' 9 2>&1); echo "$out" | grep -E '^(PASS|FAIL): ' | sed 's/^\(PASS\|FAIL\): /\1: pty -- CMD: /'
out=$(drive '@HUTCH@ pty @TARGET@ -- sh -c "kill -TERM \$\$"; echo HUTCH_RC=$?' 143 2>&1); echo "$out" | grep -E '^(PASS|FAIL): ' | sed 's/^\(PASS\|FAIL\): /\1: killed by SIGTERM: /'
rm -f /tmp/hutch-pty-drive.$$.py

# not a terminal: input from a pipe, output captured, ^D at the end of input
out=$(printf 'echo piped-$((1+1))\nexit 3\n' | timeout 60 $H pty ptybox -- sh); rc=$?
expect_eq "piped input: exit code" "$rc" 3
expect_match "piped input: output" "$out" 'piped-2'
out=$(printf 'echo eof-ends-it\n' | timeout 60 $H pty ptybox -- sh); rc=$?
expect_eq "end of piped input ends the shell (^D)" "$rc" 0
expect_match "… after running the input" "$out" 'eof-ends-it'
# ended piped input keeps reading as ended: a second reader also sees EOF (^D again)
out=$(printf 'x\n' | timeout 60 $H pty ptybox -- sh -c 'cat >/dev/null; cat >/dev/null; echo both-ended; exit 4'); rc=$?
expect_eq "every reader after the end of piped input sees EOF" "$rc" 4
expect_match "… and the command went on" "$out" 'both-ended'
$H pty nope-nope -- true </dev/null 2>/dev/null; expect_eq "unknown sandbox fails" $? 1
$H pty ptybox -- /no/such/binary </dev/null >/dev/null 2>&1; rc=$?
[ $rc != 0 ] && pass "a missing command fails ($rc)" || fail "a missing command exited 0"
t_done
