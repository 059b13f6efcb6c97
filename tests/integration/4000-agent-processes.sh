#!/bin/bash
# hutch-agent: health, info, CORS, process start/list/get/run/signal/kill/stdin/output, errors.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
agent_start

expect_eq "health" "$(A /health)" '{"healthy":true}'
info=$(A /info)
check "info has version, uptime, counts" jq -e '.version and (.uptime_secs|type=="number") and .running_processes==0 and .total_processes==0' <<<"$info"
expect_eq "unknown endpoint is 404" "$(status_of /nope)" 404
expect_eq "wrong method is 405" "$(status_of -X PUT /health)" 405
hdrs=$(A -D - -o /dev/null /health)
expect_match "CORS header on responses" "$hdrs" "Access-Control-Allow-Origin: \*"
pre=$(A -D - -o /dev/null -X OPTIONS -H 'Origin: http://x' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' /processes)
expect_match "CORS preflight is 204" "$pre" "^HTTP/1.1 204"
expect_match "preflight allows the requested headers" "$pre" "Access-Control-Allow-Headers: content-type"

# --- start / get / list ---
out=$(A -X POST -d '{"command":"sleep","args":["30"]}' -w '\n%{http_code}' /processes)
expect_eq "start answers 201" "$(tail -n1 <<<"$out")" 201
info=$(head -n1 <<<"$out")
check "ProcessInfo has every field" jq -e '.pid>0 and .status=="running" and .exit_code==null and .signal==null and .oom_killed==false and .stdin_writable==false and .command=="sleep" and .args==["30"] and (.started_at>1600000000000) and .ended_at==null and (.handle|type=="number")' <<<"$info"
pid=$(jq .pid <<<"$info")
check "get by pid" jq -e ".pid==$pid" <<<"$(A /processes/$pid)"
check "list holds it" jq -e "[.processes[].pid]|index($pid) != null" <<<"$(A /processes)"
expect_eq "unknown pid is 404" "$(status_of /processes/999999)" 404
expect_eq "unknown name is 404" "$(status_of /processes/nosuch)" 404
check "404 body is JSON with a code" jq -e '.code=="NOT_FOUND" and (.error|length>0)' <<<"$(A /processes/999999)"

# --- signal / delete ---
expect_eq "bad signal is 400" "$(status_of -X POST -d '{"signal":0}' /processes/$pid/signal)" 400
expect_eq "signal 999 is 400" "$(status_of -X POST -d '{"signal":999}' /processes/$pid/signal)" 400
expect_eq "signal without body is 400" "$(status_of -X POST /processes/$pid/signal)" 400
expect_eq "signal on unknown pid is 404" "$(status_of -X POST -d '{"signal":15}' /processes/999999/signal)" 404
expect_eq "SIGTERM answers success" "$(A -X POST -d '{"signal":15}' /processes/$pid/signal)" '{"success":true}'
check "SIGTERM'd process is signaled 15" wait_status $pid signaled
check "signal field is 15, ended_at set" jq -e '.signal==15 and .exit_code==null and .ended_at>0' <<<"$(A /processes/$pid)"
pid2=$(start_proc '{"command":"sleep","args":["30"]}')
expect_eq "DELETE answers 204" "$(status_of -X DELETE /processes/$pid2)" 204
check "DELETE'd process was SIGKILLed" wait_status $pid2 signaled
check "signal is 9" jq -e '.signal==9' <<<"$(A /processes/$pid2)"
expect_eq "DELETE unknown is 404" "$(status_of -X DELETE /processes/999999)" 404

# --- run (SSE) ---
run=$(A -N -D "$AGENT_DIR/h" -X POST -H 'Accept: text/event-stream' -d '{"command":"sh","args":["-c","echo one; echo two >&2; printf partial"]}' /processes/run)
expect_match "run content type is text/event-stream" "$(cat "$AGENT_DIR/h")" "Content-Type: text/event-stream"
ev=$(sed -n 's/^data: //p' <<<"$run")
check "run: start event first" jq -se '.[0] | .pid>0 and .started_at>0 and (.handle|type=="number")' <<<"$ev"
check "run: stdout and stderr lines with stream tags and timestamps" jq -se '([.[] | select(.line) | select(.timestamp>0)] | length)==3 and [.[] | select(.stream=="stderr") | .line]==["two"]' <<<"$ev"
check "run: partial last line delivered after the full one" jq -se '[.[] | select(.stream=="stdout") | .line]==["one","partial"]' <<<"$ev"
check "run: exit event last" jq -se '.[-1] == {"exit_code":0}' <<<"$ev"
check "run: no event names" bash -c "! grep -q '^event:' <<<'$run'"
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","exit 7"]}' /processes/run | sed -n 's/^data: //p')
check "run: exit code 7" jq -se '.[-1] == {"exit_code":7}' <<<"$ev"
start=$(date +%s%N)
ev=$(A -N -X POST -d '{"command":"sleep","args":["20"],"timeout":0.3}' /processes/run | sed -n 's/^data: //p')
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "run: timeout kills with signal 9" jq -se '.[-1] == {"signal":9}' <<<"$ev"
check "run: timeout took ~0.3 s ($ms ms)" test $ms -lt 3000
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","sleep 20 & echo bg; exit 0"],"timeout":5}' /processes/run | sed -n 's/^data: //p')
check "run: a background child holding the pipe does not hang the run" jq -se '.[-1] == {"exit_code":0} and .[1].line=="bg"' <<<"$ev"
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","echo $FOO; pwd; id -u"],"env":{"FOO":"bar"},"working_dir":"/tmp","user":"nobody"}' /processes/run | sed -n 's/^data: //p')
check "run: env, working_dir and user applied" jq -se '[.[]|select(.line)|.line] == ["bar","/tmp","65534"]' <<<"$ev"
ev=$(A -N -X POST -d '{"command":"id","args":["-u"],"user":{"uid":1234,"gid":4321}}' /processes/run | sed -n 's/^data: //p')
check "run: user as {uid,gid}" jq -se '[.[]|select(.line)|.line] == ["1234"]' <<<"$ev"
ev=$(A -N -X POST -d '{"command":"id","args":["-g"],"user":"1234:4321"}' /processes/run | sed -n 's/^data: //p')
check "run: user as uid:gid" jq -se '[.[]|select(.line)|.line] == ["4321"]' <<<"$ev"
ev=$(A -N -X POST -d '{"command":"sh","args":["-c","grep -E \"^(SigBlk|SigIgn)\" /proc/self/status; cat /proc/self/oom_score_adj; ls /proc/self/fd | wc -l"]}' /processes/run | sed -n 's/^data: //p')
check "run: signals unblocked and not ignored, fds 0-2 only" jq -se '[.[]|select(.line)|.line] == ["SigBlk:\t0000000000000000","SigIgn:\t0000000000000000","0","4"]' <<<"$ev"
expect_eq "run: unknown user is 400" "$(status_of -X POST -d '{"command":"true","user":"nosuchuser"}' /processes/run)" 400
expect_eq "run: missing command is 400" "$(status_of -X POST -d '{"args":[]}' /processes/run)" 400
expect_eq "run: bad JSON is 400" "$(status_of -X POST -d '{"command":' /processes/run)" 400
out=$(A -X POST -d '{"command":"/no/such/binary"}' /processes)
check "start of a missing binary is 400 with a message" jq -e '.code=="SPAWN_FAILED" and (.error|test("No such file"))' <<<"$out"
expect_eq "bad working_dir is 400" "$(status_of -X POST -d '{"command":"true","working_dir":"/no/such"}' /processes)" 400

# --- non-UTF-8 output ---
ev=$(A -N -X POST -d '{"command":"printf","args":["a\\377b\\342\\202c\\n\\303\\251"]}' /processes/run | sed -n 's/^data: //p')
check "invalid UTF-8 becomes U+FFFD, valid UTF-8 kept" jq -se '[.[]|select(.line)|.line] == ["a\ufffdb\ufffdc","é"]' <<<"$ev"
ev=$(A -N -X POST -d '{"command":"printf","args":["q\"\\\\\\t\\001\\r"]}' /processes/run | sed -n 's/^data: //p')
check "control characters and quotes JSON-escaped" jq -se '[.[]|select(.line)|.line] == ["q\"\\\t\u0001\r"]' <<<"$ev"

# --- stdin ---
pid=$(start_proc '{"command":"cat","stdin_mode":"pipe"}')
check "stdin_writable with stdin_mode pipe" jq -e '.stdin_writable==true' <<<"$(A /processes/$pid)"
expect_eq "stdin write is 204" "$(status_of -X POST --data-binary $'hello\nwor' /processes/$pid/stdin)" 204
expect_eq "empty stdin write is 204" "$(status_of -X POST -H 'Content-Length: 0' /processes/$pid/stdin)" 204
expect_eq "stdin write with raw bytes is 204" "$(status_of -X POST -H 'Content-Type: application/octet-stream' --data-binary 'ld' /processes/$pid/stdin)" 204
expect_eq "stdin close is 204" "$(status_of -X POST -H 'Content-Length: 0' /processes/$pid/stdin/close)" 204
check "process ends at EOF" wait_status $pid exited
check "captured stdout" jq -e '.pid=='$pid' and .lines==["hello","world"] and .line_count==2' <<<"$(A /processes/$pid/stdout)"
expect_eq "stdin write after close is 400" "$(status_of -X POST -d x /processes/$pid/stdin)" 400
check "STDIN_NOT_WRITABLE code" jq -e '.code=="STDIN_NOT_WRITABLE"' <<<"$(A -X POST -d x /processes/$pid/stdin)"
expect_eq "stdin close again is 400" "$(status_of -X POST /processes/$pid/stdin/close)" 400
pid=$(start_proc '{"command":"sleep","args":["5"]}')
check "closed stdin_mode is not writable" jq -e '.code=="STDIN_NOT_WRITABLE"' <<<"$(A -X POST -d x /processes/$pid/stdin)"
A -X DELETE /processes/$pid >/dev/null

# --- captured output ---
pid=$(start_proc '{"command":"sh","args":["-c","echo o1; echo e1 >&2; echo o2; echo e2 >&2"]}')
wait_status $pid exited
check "stdout lines" jq -e '.lines==["o1","o2"] and .line_count==2' <<<"$(A /processes/$pid/stdout)"
check "stderr lines" jq -e '.lines==["e1","e2"]' <<<"$(A /processes/$pid/stderr)"
out=$(A /processes/$pid/output)
check "output has both streams, 4 lines" jq -e '(.lines|sort)==["e1","e2","o1","o2"] and .line_count==4' <<<"$out"
pid=$(start_proc '{"command":"sh","args":["-c","echo shown; echo hidden >&2"],"stderr_mode":"discard"}')
wait_status $pid exited
check "discarded stderr is empty" jq -e '.lines==[]' <<<"$(A /processes/$pid/stderr)"
check "captured stdout kept" jq -e '.lines==["shown"]' <<<"$(A /processes/$pid/stdout)"
check "info counts" jq -e '.total_processes>=10' <<<"$(A /info)"

agent_stop
t_done
