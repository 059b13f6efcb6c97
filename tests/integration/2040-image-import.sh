#!/bin/bash
# Importing a `docker save` archive built here without network (two layers, a whiteout, an
# opaque directory, a file owned by uid 1000), then running a sandbox from it.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq
hutchd_start
work=$(mktemp -d)
trap 'rm -rf "$work"; hutchd_cleanup' EXIT
l1=$work/l1; l2=$work/l2
mkdir -p $l1/bin $l1/etc $l1/tmp $l1/root $l1/old $l1/opaque $l2/etc $l2/opaque
cp /bin/busybox $l1/bin/busybox
for a in sh cat ls echo id stat test; do ln -s busybox $l1/bin/$a; done
echo 'root:x:0:0:root:/root:/bin/sh' > $l1/etc/passwd
echo 'root:x:0:' > $l1/etc/group
echo layer1 > $l1/etc/version; echo gone > $l1/old/file; echo hidden > $l1/opaque/a
echo layer2 > $l2/etc/version; echo mine > $l2/etc/owned
touch $l2/.wh.old; touch $l2/opaque/.wh..wh..opq; echo b > $l2/opaque/b
(cd $l1 && tar --numeric-owner --owner=0 --group=0 -cf $work/layer1.tar .)
(cd $l2 && tar --numeric-owner --owner=0 --group=0 --transform='s,etc/owned,etc/owned,' -cf $work/layer2.tar . && \
	tar --numeric-owner --owner=1000 --group=1000 -rf $work/layer2.tar ./etc/owned)
mkdir -p $work/arch/a $work/arch/b
mv $work/layer1.tar $work/arch/a/layer.tar; mv $work/layer2.tar $work/arch/b/layer.tar
echo '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}' > $work/arch/config.json
echo '[{"Config":"config.json","RepoTags":["test/import:latest"],"Layers":["a/layer.tar","b/layer.tar"]}]' > $work/arch/manifest.json
(cd $work/arch && tar -cf $work/image.tar manifest.json config.json a b)
out=$("$HUTCH_BIN/hutch" image import test/imported "$work/image.tar" 2>&1)
expect_match "hutch image import" "$out" '^test/imported sha256:[0-9a-f]{64}$'
"$HUTCH_BIN/hutch" image ls | grep -q '^test/imported ' && pass "image ls shows it" || fail "image ls"
id=$(curl -s -H "$AUTH" -H "X-Tensorlake-Request-Timeout-Ms: 30000" -X POST "$API/sandboxes" -d '{"image":"test/imported"}' | jq_get .sandbox_id)
expect_eq "a sandbox runs from the imported image" "$(apij GET "/sandboxes/$id" | jq_get .status)" running
expect_eq "the later layer wins" "$(sb_run "$id" 'cat /etc/version')" layer2
sb_run "$id" 'test -e /old' >/dev/null; [ "$RC" != 0 ] && pass "a whiteout removes a directory" || fail "whiteout ignored"
expect_eq "an opaque directory hides the lower layer" "$(sb_run "$id" 'ls /opaque')" b
expect_eq "ownership kept inside the sandbox" "$(sb_run "$id" 'stat -c %u /etc/owned')" 1000
api DELETE "/sandboxes/$id"
printf 'not a tar' > $work/bad.tar
"$HUTCH_BIN/hutch" image import broken "$work/bad.tar" >/dev/null 2>&1 && fail "a broken archive was imported" || pass "a broken archive is refused"
"$HUTCH_BIN/hutch" image ls | grep -q '^broken ' && fail "broken image listed" || pass "nothing published for it"
"$HUTCH_BIN/hutch" image rm test/imported && pass "image rm" || fail "image rm"
t_done
