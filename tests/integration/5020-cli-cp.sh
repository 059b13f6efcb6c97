#!/bin/bash
# hutch CLI: cp in both directions with a binary file of a few MB, stdin/stdout (-), a path
# with spaces, an empty file, and the errors; a download replaces a local file only once it is
# complete (temporary file + rename: a failure leaves the old file intact and no temporary file).
. "$(dirname "$0")/lib.sh"
need_root
hutchd_start
H=$HUTCH_BIN/hutch
W=$(mktemp -d /tmp/hutch-cli-cp-XXXXXX)
trap 'umount "$W/small" 2>/dev/null; rm -rf "$W"; hutchd_cleanup' EXIT
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

# downloads over an existing file: temporary file in the same directory, renamed when complete
D=$W/dl; mkdir "$D"
echo old >"$D/keep.txt"; chmod 640 "$D/keep.txt"
$H cp cpbox:/tmp/nope "$D/keep.txt" 2>/dev/null; expect_eq "a missing remote file over an existing one fails" $? 1
expect_eq "the existing file is unchanged" "$(cat "$D/keep.txt")" old
expect_eq "no temporary file is left" "$(ls -A "$D")" keep.txt
check "a download over an existing file" $H cp cpbox:/tmp/blob.bin "$D/keep.txt"
check "it has the new content" cmp "$W/blob.bin" "$D/keep.txt"
expect_eq "and keeps the old file's mode" "$(stat -c %a "$D/keep.txt")" 640
expect_eq "no temporary file after success" "$(ls -A "$D")" keep.txt
(umask 027; $H cp cpbox:/tmp/dir/sub/from-stdin.bin "$D/new.bin")
expect_eq "a new file's mode follows the umask" "$(stat -c %a "$D/new.bin")" 640
echo target >"$D/target"; ln -s target "$D/link"
check "a download through a symlink" $H cp cpbox:/tmp/dir/sub/from-stdin.bin "$D/link"
[ -L "$D/link" ] && cmp -s "$D/target" "$W/tiny.bin" && pass "the symlink stays, its target is written" ||
	fail "the symlink was replaced or its target not written"
ln -s nowhere "$D/dangling"
$H cp cpbox:/tmp/empty "$D/dangling" 2>/dev/null; expect_eq "not through a dangling symlink" $? 1
[ -L "$D/dangling" ] && [ ! -e "$D/nowhere" ] && pass "the dangling symlink is left alone" ||
	fail "the dangling symlink was replaced or followed"
$H cp cpbox:/tmp/empty "$D" 2>/dev/null; expect_eq "a directory as the destination fails" $? 1
check "a download to /dev/null" $H cp cpbox:/tmp/blob.bin /dev/null
[ -c /dev/null ] && pass "/dev/null is written in place, not replaced" || fail "/dev/null is no longer a device"
expect_eq "the directory holds only what was copied" "$(ls -A "$D" | tr '\n' ' ')" "dangling keep.txt link new.bin target "
# a transfer that fails half way (the file system fills up): the old file stays whole
mkdir "$W/small" && mount -t tmpfs -o size=1m tmpfs "$W/small"
echo old >"$W/small/f"
$H cp cpbox:/tmp/blob.bin "$W/small/f" 2>"$W/err"; expect_eq "a download that runs out of space fails" $? 1
expect_match "it says why" "$(cat "$W/err")" 'No space left'
expect_eq "the old file survives a half-done transfer" "$(cat "$W/small/f")" old
expect_eq "the temporary file is removed" "$(ls -A "$W/small")" f
umount "$W/small"
$H cp "$W/blob.bin" "$W/other" 2>/dev/null; expect_eq "two local paths is a usage error" $? 2
t_done
