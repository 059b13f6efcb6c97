#!/bin/bash
# hutch-agent: managed processes (names, restart policies, backoff, max_restarts, manual restart,
# DELETE stopping supervision) and HTTP/TCP health checks.
. "$(dirname "$0")/lib.sh"
. "$HUTCH_ROOT/tests/integration/helpers/agent/agent.sh"
agent_need
agent_start

# wait_managed NAME JQ: waits until GET /processes/NAME satisfies JQ.
wait_managed() {
	wait_for sh -c "curl -s --unix-socket '$AGENT_SOCK' http://agent/api/v1/processes/$1 | jq -e '$2'"
}

out=$(A -X POST -d '{"command":"sh","args":["-c","exit 3"],"name":"crashy","restart":{"policy":"on_failure","max_restarts":3,"initial_backoff_ms":100,"max_backoff_ms":200}}' -w '\n%{http_code}' /processes)
expect_eq "managed start is 201" "$(tail -n1 <<<"$out")" 201
check "managed object in ProcessInfo" jq -e '.managed.id=="crashy" and .managed.name=="crashy" and .managed.restart=={"policy":"on_failure","max_restarts":3,"initial_backoff_ms":100,"max_backoff_ms":200} and .managed.health_status=="disabled" and .managed.consecutive_health_failures==0 and .managed.health_check==null' <<<"$(head -n1 <<<"$out")"
pid1=$(head -n1 <<<"$out" | jq .pid)
check "on_failure: backing off between restarts" wait_managed crashy '.managed.status=="backing_off" and .managed.next_restart_at>0'
start=$(date +%s%N)
check "on_failure: gives up after max_restarts" wait_managed crashy '.managed.status=="stopped"'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
info=$(A /processes/crashy)
check "restart_count 3, last_exit, last_error" jq -e '.managed.restart_count==3 and .managed.last_exit.exit_code==3 and .managed.last_exit.oom_killed==false and (.managed.last_exit.ended_at>0) and (.managed.last_error|test("gave up")) and .managed.next_restart_at==null' <<<"$info"
check "the pid changed across restarts" test "$(jq .pid <<<"$info")" != "$pid1"
check "backoff grows (100+200+200 ms: took $ms ms)" test $ms -ge 300
check "exited status is kept" jq -e '.status=="exited" and .exit_code==3' <<<"$info"
check "old pid is no longer addressable" test "$(status_of /processes/$pid1)" = 404
out=$(A -X POST -d '{"command":"true","name":"crashy"}' -w '\n%{http_code}' /processes)
expect_eq "a stopped name can be reused" "$(tail -n1 <<<"$out")" 201

A -X POST -d '{"command":"sleep","args":["30"],"name":"svc"}' /processes >/dev/null
expect_eq "duplicate live name is 409" "$(status_of -X POST -d '{"command":"true","name":"svc"}' /processes)" 409
expect_eq "all-digit name is 400" "$(status_of -X POST -d '{"command":"true","name":"123"}' /processes)" 400
expect_eq "name with / is 400" "$(status_of -X POST -d '{"command":"true","name":"a/b"}' /processes)" 400
expect_eq "bad policy is 400" "$(status_of -X POST -d '{"command":"true","name":"x","restart":{"policy":"sometimes"}}' /processes)" 400
check "managed defaults" jq -e '.managed.restart=={"policy":"on_failure","max_restarts":null,"initial_backoff_ms":500,"max_backoff_ms":30000} and .managed.status=="running"' <<<"$(A /processes/svc)"
check "name with spaces is addressable percent-encoded" bash -c "curl -s --unix-socket '$AGENT_SOCK' -X POST -d '{\"command\":\"sleep\",\"args\":[\"30\"],\"name\":\"my web\"}' http://agent/api/v1/processes >/dev/null && curl -s --unix-socket '$AGENT_SOCK' http://agent/api/v1/processes/my%20web | jq -e '.managed.name==\"my web\"'"

# manual restart
old=$(A /processes/svc | jq .pid)
out=$(A -X POST -H 'Content-Length: 0' -w '\n%{http_code}' /processes/svc/restart)
expect_eq "restart is 200" "$(tail -n1 <<<"$out")" 200
check "restart answers the new run" jq -e ".pid != $old and .status==\"running\" and .managed.status==\"running\"" <<<"$(head -n1 <<<"$out")"
plain=$(start_proc '{"command":"sleep","args":["30"]}')
expect_eq "restart of an unmanaged process is 400" "$(status_of -X POST /processes/$plain/restart)" 400
A -X DELETE /processes/$plain >/dev/null

# DELETE stops supervision
expect_eq "DELETE managed is 204" "$(status_of -X DELETE /processes/svc)" 204
check "DELETE'd managed process stays stopped" wait_managed svc '.status=="signaled" and .managed.status=="stopped"'
sleep 0.7
check "and is not restarted" jq -e '.managed.restart_count==0 and .managed.status=="stopped"' <<<"$(A /processes/svc)"

# policies always / never, and on_failure after a clean exit
A -X POST -d '{"command":"true","name":"again","restart":{"policy":"always","max_restarts":2,"initial_backoff_ms":50}}' /processes >/dev/null
check "always: restarts after success too" wait_managed again '.managed.status=="stopped" and .managed.restart_count==2'
A -X POST -d '{"command":"false","name":"once","restart":{"policy":"never"}}' /processes >/dev/null
check "never: no restart" wait_managed once '.managed.status=="stopped" and .managed.restart_count==0 and .exit_code==1'
A -X POST -d '{"command":"true","name":"clean","restart":{"policy":"on_failure","initial_backoff_ms":50}}' /processes >/dev/null
check "on_failure: a clean exit is not restarted" wait_managed clean '.managed.status=="stopped" and .managed.restart_count==0'
out=$(A -X POST -d '{"command":"true","restart":{"policy":"never"}}' /processes)
check "unnamed managed process has an opaque id and no name" jq -e '(.managed.id|startswith("m-")) and .managed.name==null' <<<"$out"

# a follow on a managed name spans restarts and ends when supervision stops
A -X POST -d '{"command":"sh","args":["-c","echo run"],"name":"looper","restart":{"policy":"always","max_restarts":2,"initial_backoff_ms":50}}' /processes >/dev/null
fol=$(A -N /processes/looper/stdout/follow)
expect_eq "follow spans restarts: 3 runs then eof" "$(grep -c '"line":"run"' <<<"$fol") $(grep -c '^event: eof' <<<"$fol")" "3 1"

# health checks
port=$(free_port)
A -X POST -d '{"command":"python3","args":["-m","http.server","--bind","127.0.0.1","'$port'"],"working_dir":"/tmp","name":"web","health_check":{"type":"http","port":'$port',"path":"/","initial_delay_ms":300,"interval_ms":100,"timeout_ms":500,"failure_threshold":30}}' /processes >/dev/null
check "http health check: starting then healthy and running" wait_managed web '.managed.health_status=="healthy" and .managed.status=="running"'
check "health_check object echoed" jq -e '.managed.health_check=={"type":"http","port":'$port',"path":"/","initial_delay_ms":300,"interval_ms":100,"timeout_ms":500,"failure_threshold":30}' <<<"$(A /processes/web)"
A -X DELETE /processes/web >/dev/null
port2=$(free_port)
A -X POST -d '{"command":"python3","args":["-c","import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((\"127.0.0.1\",'$port2'))\ns.listen()\ntime.sleep(60)"],"name":"tcpsvc","health_check":{"type":"tcp","port":'$port2',"initial_delay_ms":300,"interval_ms":100,"timeout_ms":300,"failure_threshold":30}}' /processes >/dev/null
check "tcp health check: healthy" wait_managed tcpsvc '.managed.health_status=="healthy"'
A -X DELETE /processes/tcpsvc >/dev/null
dead=$(free_port)
A -X POST -d '{"command":"sleep","args":["60"],"name":"sick","restart":{"policy":"on_failure","max_restarts":1,"initial_backoff_ms":50},"health_check":{"type":"tcp","port":'$dead',"initial_delay_ms":50,"interval_ms":50,"timeout_ms":100,"failure_threshold":2}}' /processes >/dev/null
check "failing health check: unhealthy, killed and restarted" wait_managed sick '.managed.restart_count==1'
check "then given up, with the health failure as last_error" wait_managed sick '.managed.status=="stopped" and .managed.health_status=="unhealthy" and (.managed.last_error|test("health check failed")) and .managed.last_exit.signal==9'
A -X POST -d '{"command":"sleep","args":["60"],"name":"watched","restart":{"policy":"never"},"health_check":{"type":"http","port":'$dead',"initial_delay_ms":50,"interval_ms":50,"timeout_ms":100,"failure_threshold":2}}' /processes >/dev/null
check "policy never: unhealthy is only reported" wait_managed watched '.managed.health_status=="unhealthy" and .status=="running" and .managed.consecutive_health_failures>=2'
A -X DELETE /processes/watched >/dev/null
expect_eq "bad health check type is 400" "$(status_of -X POST -d '{"command":"true","health_check":{"type":"udp","port":1}}' /processes)" 400
expect_eq "health check without port is 400" "$(status_of -X POST -d '{"command":"true","health_check":{"type":"tcp"}}' /processes)" 400

check "no zombies left" wait_for no_zombies $AGENT_PID
agent_stop
t_done
