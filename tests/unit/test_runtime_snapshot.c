/* Filesystem snapshot tests (root only): a busybox sandbox with created, modified and deleted
 * files (whiteouts, an opaque directory) is snapshotted; a new sandbox boots cold from the
 * snapshot and sees exactly that layer; the digest is checked and a corrupted archive refuses to
 * boot. Also times the snapshot of a 100 MiB writable layer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/checkpoint.h"
#include "runtime/runtime.h"
#include "rt_env.h"
#include "t.h"

static struct rt_fs_snapshot_info snap;

/* The source: a created file and directory, a modified lower file, a deleted lower file (a
 * whiteout) and a deleted-then-recreated lower directory (opaque). */
static void test_snapshot(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("s-src", 64, 256);
	struct rt_sandbox *sb = NULL;
	char path[4400];
	struct stat st;

	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == 0);
	rt_sandbox_free(sb);
	char *out =
	        sb_sh("s-src", "mkdir -p /data/sub && echo created > /data/sub/new.txt && "
	                       "echo extra >> /etc/passwd && rm /etc/group && "
	                       "rm -rf /usr && mkdir /usr && echo only > /usr/file && "
	                       "ln -s /data/sub/new.txt /data/link && chmod 640 /data/sub/new.txt");
	CHECK(out != NULL);
	free(out);
	int r = rt_sandbox_fs_snapshot(&cfg, "s-src", NULL, &snap, &err);
	if (r < 0)
		fprintf(stderr, "fs snapshot: %s\n", err.msg);
	CHECK(r == 0);
	CHECK(strncmp(snap.digest, "sha256:", 7) == 0 && strlen(snap.digest) == 71);
	CHECK(strncmp(snap.image, "sha256:", 7) == 0 && snap.size_bytes > 0);
	snprintf(path, sizeof(path), "%s/snapshots/%s", state_dir, snap.digest + 7);
	CHECK_STR(snap.dir, path);
	/* The source keeps running (thawed after the archive). */
	out = sb_sh("s-src", "echo alive");
	CHECK_STR(out, "alive");
	free(out);
	struct rt_fs_snapshot_info v;
	CHECK(rt_fs_snapshot_verify(snap.dir, &v, NULL) == 0 && strcmp(v.digest, snap.digest) == 0);
	/* Snapshotting the same layer again lands in the same directory. */
	struct rt_fs_snapshot_info again;
	CHECK(rt_sandbox_fs_snapshot(&cfg, "s-src", NULL, &again, NULL) == 0);
	CHECK(strcmp(again.dir, snap.dir) == 0 || strcmp(again.digest, snap.digest) != 0);
	CHECK(rt_sandbox_destroy(&cfg, "s-src", NULL) == 0);
	CHECK_CLEAN("s-src");
	/* The snapshot outlives its source. */
	CHECK(stat(snap.dir, &st) == 0);
}

static void check_restored_upper(const char *id)
{
	char path[512], val[8];

	snprintf(path, sizeof(path), "%s/sandboxes/%s/disk/upper/etc/group", state_dir, id);
	struct stat st;
	CHECK(lstat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	snprintf(path, sizeof(path), "%s/sandboxes/%s/disk/upper/usr", state_dir, id);
	ssize_t n = lgetxattr(path, "trusted.overlay.opaque", val, sizeof(val));
	CHECK(n == 1 && val[0] == 'y');
	snprintf(path, sizeof(path), "%s/sandboxes/%s/disk/upper/data/sub/new.txt", state_dir, id);
	CHECK(lstat(path, &st) == 0 && st.st_uid == 100000 && (st.st_mode & 07777) == 0640);
}

static void test_restore(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("s-dst", 64, 256);
	struct rt_sandbox *sb = NULL;

	spec.snapshot_dir = snap.dir;
	spec.image = snap.image;
	int r = rt_sandbox_create(&cfg, &spec, &sb, &err);
	if (r < 0)
		fprintf(stderr, "create from snapshot: %s\n", err.msg);
	CHECK(r == 0);
	rt_sandbox_free(sb);
	if (r < 0)
		return;
	check_restored_upper("s-dst");
	char *out = sb_sh("s-dst", "cat /data/sub/new.txt; tail -n 1 /etc/passwd; "
	                           "test -e /etc/group || echo nogroup; ls /usr; cat /data/link");
	CHECK_STR(out, "created\nextra\nnogroup\nfile\ncreated");
	free(out);
	out = sb_sh("s-dst", "ls /bin/sh >/dev/null && echo lower-ok");
	CHECK_STR(out, "lower-ok");
	free(out);
	CHECK(rt_sandbox_destroy(&cfg, "s-dst", NULL) == 0);
	CHECK_CLEAN("s-dst");
}

/* A copy of the snapshot with one byte flipped: create fails before extracting anything. */
static void test_corrupt(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("s-bad", 64, 256);
	struct rt_sandbox *sb = NULL;
	char dir[256], cmd[8500], path[300];

	snprintf(dir, sizeof(dir), "%s/corrupt", base_dir);
	snprintf(cmd, sizeof(cmd), "cp -a %s %s", snap.dir, dir);
	CHECK(system(cmd) == 0);
	snprintf(path, sizeof(path), "%s/layer.tar.zst", dir);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	unsigned char c = 0;
	off_t off = (off_t)(snap.size_bytes / 2);
	CHECK(fd >= 0 && pread(fd, &c, 1, off) == 1);
	c ^= 0x40;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
	CHECK(rt_fs_snapshot_verify(dir, &(struct rt_fs_snapshot_info){0}, NULL) == -EBADMSG);
	spec.snapshot_dir = dir;
	spec.image = snap.image;
	int r = rt_sandbox_create(&cfg, &spec, &sb, &err);
	CHECK(r == -EBADMSG && strstr(err.msg, "corrupted"));
	CHECK(sb == NULL);
	CHECK_CLEAN("s-bad");
	spec.snapshot_dir = base_dir; /* not a snapshot at all */
	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == -ENOENT);
	CHECK_CLEAN("s-bad");
}

/* Times the snapshot of a 100 MiB writable layer (incompressible data) and the cold boot. */
static void test_bench_100(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct rt_spec spec = spec_of("s-big", 64, 512);
	struct rt_sandbox *sb = NULL;
	struct rt_fs_snapshot_info info;

	CHECK(rt_sandbox_create(&cfg, &spec, &sb, &err) == 0);
	rt_sandbox_free(sb);
	sb = NULL;
	char *out = sb_sh("s-big", "dd if=/dev/urandom of=/root/big bs=1M count=100 2>/dev/null "
	                           "&& echo done");
	CHECK_STR(out, "done");
	free(out);
	uint64_t t0 = time_mono_ns();
	CHECK(rt_sandbox_fs_snapshot(&cfg, "s-big", NULL, &info, &err) == 0);
	uint64_t t1 = time_mono_ns();
	struct rt_spec s2 = spec_of("s-big2", 64, 512);
	s2.snapshot_dir = info.dir;
	s2.image = info.image;
	CHECK(rt_sandbox_create(&cfg, &s2, &sb, &err) == 0);
	uint64_t t2 = time_mono_ns();
	rt_sandbox_free(sb);
	out = sb_sh("s-big2", "wc -c < /root/big");
	CHECK_STR(out, "104857600");
	free(out);
	printf("100 MiB writable layer: fs snapshot %.0f ms (%.1f MiB archive), create from it "
	       "%.0f ms\n",
	       (t1 - t0) / 1e6, info.size_bytes / 1048576.0, (t2 - t1) / 1e6);
	CHECK(rt_sandbox_destroy(&cfg, "s-big", NULL) == 0);
	CHECK(rt_sandbox_destroy(&cfg, "s-big2", NULL) == 0);
	CHECK_CLEAN("s-big");
	CHECK_CLEAN("s-big2");
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_runtime_snapshot needs root (namespaces, cgroups, loop devices)\n");
		T_DONE();
	}
	if (setup("fake-agent.c", 0, NULL) < 0) {
		CHECK(0);
		T_DONE();
	}
	test_snapshot();
	test_restore();
	test_corrupt();
	test_bench_100();
	teardown();
	T_DONE();
}
