#!/bin/bash
# Isolation of a real sandbox, checked from inside (through the proxy and agent) and from the
# host: own pid namespace, unprivileged uid on the host, no mounts, no module loading, seccomp,
# capabilities, hostname, no host devices.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
id=$(curl -s -H "$AUTH" -H "X-Tensorlake-Request-Timeout-Ms: 20000" -X POST "$API/sandboxes" -d '{"image":"busybox","name":"iso"}' | jq_get .sandbox_id)
sh_in() { sb_run "$id" "$1"; }
out=$(sh_in 'ps -o pid,comm | tail -n +2')
expect_eq "PID 1 is the agent" "$(awk '$1==1{print $2}' <<<"$out")" hutch-agent
n=$(wc -l <<<"$out")
[ "$n" -le 4 ] && pass "no host processes visible ($n processes)" || fail "saw $n processes: $out"
expect_eq "hostname is the sandbox name" "$(sh_in hostname)" iso
expect_eq "root inside" "$(sh_in 'id -u')" 0
sh_in 'mount -t tmpfs none /mnt' >/dev/null; [ "$RC" != 0 ] && pass "mount is refused" || fail "mount succeeded"
sh_in 'mount --bind /tmp /mnt' >/dev/null; [ "$RC" != 0 ] && pass "bind mount is refused" || fail "bind mount succeeded"
sh_in 'echo > /tmp/x.ko; insmod /tmp/x.ko' >/dev/null; [ "$RC" != 0 ] && pass "module loading is refused" || fail "insmod succeeded"
sh_in 'cat /proc/self/status' >/tmp/st.$$; out=$(cat /tmp/st.$$); rm -f /tmp/st.$$
grep -qP '^Seccomp:\t2$' <<<"$out" && pass "seccomp filter active" || fail "seccomp: $out"
grep -qP '^NoNewPrivs:\t1$' <<<"$out" && pass "no_new_privs set" || fail "no_new_privs: $out"
grep -qP '^CapEff:\t00000000a80425fb$' <<<"$out" && pass "Docker's default capability set" || fail "caps: $out"
expect_eq "host block devices are invisible" "$(sh_in 'ls /dev | grep -c -E "^(vda|sda|loop|nvme)"')" 0
sh_in 'head -c 1 /proc/kcore' >/dev/null; [ "$RC" != 0 ] && pass "/proc/kcore masked" || fail "/proc/kcore readable"
sh_in 'echo 1 > /proc/sys/kernel/panic' >/dev/null; [ "$RC" != 0 ] && pass "/proc/sys read-only" || fail "/proc/sys writable"
sh_in 'echo b > /proc/sysrq-trigger' >/dev/null; [ "$RC" != 0 ] && pass "sysrq-trigger refused" || fail "sysrq-trigger writable"
# from the host: the sandbox's root is an unprivileged uid
pid1=$(jq -r .init_pid "$T_DATA/runtime/sandboxes/$id/state.json" 2>/dev/null)
[ -n "$pid1" ] && [ "$pid1" != null ] || pid1=$(head -1 /sys/fs/cgroup/pids/$T_CGROUP/$id/cgroup.procs 2>/dev/null)
uid=$(awk '/^Uid:/{print $2}' /proc/$pid1/status)
expect_eq "sandbox root is uid 100000 on the host" "$uid" 100000
[ "$(readlink /proc/$pid1/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] && pass "own pid namespace" || fail "pid ns shared"
[ "$(readlink /proc/$pid1/ns/net)" != "$(readlink /proc/self/ns/net)" ] && pass "own network namespace" || fail "net ns shared"
[ "$(readlink /proc/$pid1/ns/user)" != "$(readlink /proc/self/ns/user)" ] && pass "own user namespace" || fail "user ns shared"
# another sandbox's files and processes are invisible
id2=$(curl -s -H "$AUTH" -H "X-Tensorlake-Request-Timeout-Ms: 20000" -X POST "$API/sandboxes" -d '{"image":"busybox"}' | jq_get .sandbox_id)
sh_in 'echo secret > /root/mine' >/dev/null
out=$(curl -s -H "$AUTH" -H "Host: $id2.local" "$PROXY/api/v1/processes/run" -d '{"command":"/bin/sh","args":["-c","cat /root/mine; ls /run/hutch 2>&1 | head -3"]}')
grep -q secret <<<"$out" && fail "another sandbox's file is visible" || pass "sandboxes do not share files"
api DELETE "/sandboxes/$id"; api DELETE "/sandboxes/$id2"
t_done
