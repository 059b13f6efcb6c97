#!/bin/bash
# hutch CLI: cp in both directions with a binary file of a few MB, stdin/stdout (-), a path
# with spaces, an empty file, and the errors.
. "$(dirname "$0")/lib.sh"
need_root
hutchd_start
H=$HUTCH_BIN/hutch
W=$(mktemp -d /tmp/hutch-cli-cp-XXXXXX)
trap 'rm -rf "$W"; hutchd_cleanup' EXIT
id=$($H create --image busybox cpbox)

head -c 3145739 /dev/urandom >"$W/blob.bin"
check "cp a binary file in" $H cp "$W/blob.bin" cpbox:/tmp/blob.bin
expect_eq "it arrived whole (md5 inside)" "$($H exec cpbox -- md5sum /tmp/blob.bin | cut -d' ' -f1)" \
	"$(md5sum <"$W/blob.bin" | cut -d' ' -f1)"
check "cp it back out" $H cp "$id:/tmp/blob.bin" "$W/back.bin"
check "byte-identical round trip" cmp "$W/blob.bin" "$W/back.bin"
printf '\x00\x01\xff\xfe\n\r\x00' >"$W/tiny.bin"
$H cp - cpbox:/tmp/dir/sub/from-stdin.bin <"$W/tiny.bin"
check "cp - (stdin) into a new directory, then out to stdout" \
	sh -c "$H cp cpbox:/tmp/dir/sub/from-stdin.bin - | cmp - '$W/tiny.bin'"
echo spaced >"$W/a b.txt"
check "paths with spaces" $H cp "$W/a b.txt" "cpbox:/tmp/x y/a b.txt"
expect_eq "path with spaces inside" "$($H exec cpbox -- cat '/tmp/x y/a b.txt')" spaced
: >"$W/empty"
check "an empty file" $H cp "$W/empty" cpbox:/tmp/empty
expect_eq "it is empty inside" "$($H exec cpbox -- stat -c %s /tmp/empty)" 0
$H cp cpbox:/tmp/nope "$W/nope" 2>/dev/null; expect_eq "a missing remote file fails" $? 1
[ ! -e "$W/nope" ] && pass "no partial local file is left" || fail "a local file was left behind"
$H cp "$W/nope" cpbox:/tmp/x 2>/dev/null; expect_eq "a missing local file fails" $? 1
$H cp "$W/blob.bin" "$W/other" 2>/dev/null; expect_eq "two local paths is a usage error" $? 2
t_done
