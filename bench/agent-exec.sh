#!/bin/bash
# hutch-agent figures: idle RSS of the static binary and `run` latency of `echo hi` over the unix
# socket. Usage: bench/agent-exec.sh [N]   (HUTCH_BUILD selects the build, default build/)
set -e
cd "$(dirname "$0")/.."
B=${HUTCH_BUILD:-$PWD/build}
N=${1:-2000}
out=$(mktemp -d /tmp/hutch-agent-bench.XXXXXX)
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
cc -O2 -o "$out/agent-exec" bench/agent-exec.c
"$B/bin/hutch-agent" --socket "$out/agent.sock" 2>"$out/log" &
pid=$!
for i in $(seq 100); do [ -S "$out/agent.sock" ] && break; sleep 0.02; done
sleep 0.3
echo "idle RSS: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status) (binary $(stat -c %s "$B/bin/hutch-agent") bytes)"
"$out/agent-exec" "$out/agent.sock" "$N" echo
# the same with a static no-op target: what the agent itself adds on top of exec
printf 'int main(void){return 0;}' >"$out/noop.c"
if cc -static -O2 -o "$out/noop" "$out/noop.c" 2>/dev/null; then
	"$out/agent-exec" "$out/agent.sock" "$N" "$out/noop"
fi
# baseline: fork + exec + wait of the same targets from a small C program, no agent
cat >"$out/fe.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int cmp(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
int main(int c,char**v){int n=atoi(v[2]);double*t=calloc(n,sizeof(double));
for(int i=0;i<n;i++){double t0=now();pid_t p=fork();if(!p){int fd=open("/dev/null",O_WRONLY);dup2(fd,1);
char*a[]={v[1],"hi",0};execvp(v[1],a);_exit(1);}waitpid(p,0,0);t[i]=now()-t0;}
qsort(t,n,sizeof(double),cmp);printf("baseline fork+exec+wait of %s (no agent): p50 %.0f us\n",v[1],t[n/2]);return 0;}
C
cc -O2 -static -o "$out/fe" "$out/fe.c" 2>/dev/null && { "$out/fe" echo 500; [ -x "$out/noop" ] && "$out/fe" "$out/noop" 500; }
echo "RSS after $N runs: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
