/* Image store tests (root only, no network): import of a `docker save` archive and of an OCI
 * layout that the test builds itself with libarchive (two layers, the second gzip-compressed,
 * with a file whiteout and an opaque directory), ownership shifting, rejection of archives
 * that try to escape, list/remove, and the apt mirror parser. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/util.h"
#include "runtime/image-store.h"
#include "runtime/image.h"
#include "t.h"

static char base_dir[64], state_dir[128];
static struct rt_config cfg;

struct ent {
	const char *path;
	char type;        /* f file, d dir, l symlink, h hard link */
	const char *data; /* content, or link target */
	int uid;
};

/* A tar (optionally gzip) of the entries into buf. */
static void tar_build(const struct ent *e, size_t n, bool gzip, struct buf *out)
{
	struct archive *a = archive_write_new();
	size_t used = 0;
	static char mem[1 << 20];

	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open_memory(a, mem, sizeof(mem), &used);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *x = archive_entry_new();
		archive_entry_set_pathname(x, e[i].path);
		archive_entry_set_uid(x, e[i].uid);
		archive_entry_set_gid(x, e[i].uid);
		archive_entry_set_mtime(x, 1700000000, 0);
		if (e[i].type == 'd') {
			archive_entry_set_filetype(x, AE_IFDIR);
			archive_entry_set_perm(x, 0755);
		} else if (e[i].type == 'l') {
			archive_entry_set_filetype(x, AE_IFLNK);
			archive_entry_set_symlink(x, e[i].data);
			archive_entry_set_perm(x, 0777);
		} else if (e[i].type == 'h') {
			archive_entry_set_filetype(x, AE_IFREG);
			archive_entry_set_hardlink(x, e[i].data);
		} else {
			archive_entry_set_filetype(x, AE_IFREG);
			archive_entry_set_perm(x, 0755);
			archive_entry_set_size(x, (la_int64_t)strlen(e[i].data));
		}
		archive_write_header(a, x);
		if (e[i].type == 'f')
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(x);
	}
	archive_write_close(a);
	archive_write_free(a);
	buf_reset(out);
	buf_add(out, mem, used);
}

struct file {
	const char *path;
	const struct buf *data;
};

/* The outer archive (plain tar of files) into a memfd, rewound. */
static int outer_build(const struct file *f, size_t n)
{
	int fd = memfd_create("image", MFD_CLOEXEC);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open_fd(a, fd);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *x = archive_entry_new();
		archive_entry_set_pathname(x, f[i].path);
		archive_entry_set_filetype(x, AE_IFREG);
		archive_entry_set_perm(x, 0644);
		archive_entry_set_size(x, (la_int64_t)f[i].data->len);
		archive_write_header(a, x);
		archive_write_data(a, f[i].data->data, f[i].data->len);
		archive_entry_free(x);
	}
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static void sha256_hex(const struct buf *b, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(b->data, b->len, md, &n, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

static const struct ent layer1[] = {
        {"bin/", 'd', NULL, 0},
        {"bin/hello", 'f', "hi\n", 0},
        {"etc/", 'd', NULL, 0},
        {"etc/a", 'f', "a", 0},
        {"etc/b", 'f', "b", 0},
        {"dir/", 'd', NULL, 0},
        {"dir/x", 'f', "x", 0},
        {"dir/sub/", 'd', NULL, 0},
        {"dir/sub/z", 'f', "z", 0},
        {"lnk", 'l', "/etc", 0},
        {"home/u/", 'd', NULL, 1000},
        {"home/u/f", 'f', "f", 1000},
        {"./bin/hl", 'h', "bin/hello", 0},
        {"dev/", 'd', NULL, 0},
};
static const struct ent layer2[] = {
        {"etc/.wh.a", 'f', "", 0},
        {"dir/.wh..wh..opq", 'f', "", 0},
        {"dir/y", 'f', "y", 0},
        {"etc/c", 'f', "c", 0},
};

static bool exists(const char *rootfs, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", rootfs, rel);
	return lstat(p, &st) == 0;
}

static uid_t owner(const char *rootfs, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", rootfs, rel);
	return lstat(p, &st) == 0 ? st.st_uid : (uid_t)-1;
}

static void check_tiny(const char *name, const char *config_hex)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct image_info info;
	char rootfs[PATH_MAX], want[80];

	CHECK(image_resolve(&cfg, name, rootfs, &info, &err) == 0);
	snprintf(want, sizeof(want), "sha256:%s", config_hex);
	CHECK_STR(info.digest, want);
	CHECK(exists(rootfs, "bin/hello") && exists(rootfs, "bin/hl"));
	CHECK(!exists(rootfs, "etc/a"));
	CHECK(exists(rootfs, "etc/b") && exists(rootfs, "etc/c"));
	CHECK(!exists(rootfs, "dir/x") && !exists(rootfs, "dir/sub"));
	CHECK(exists(rootfs, "dir/y"));
	CHECK(!exists(rootfs, "etc/.wh.a") && !exists(rootfs, "dir/.wh..wh..opq"));
	CHECK(owner(rootfs, "bin/hello") == 100000);
	CHECK(owner(rootfs, "home/u/f") == 101000);
	CHECK(owner(rootfs, "lnk") == 100000);
	CHECK(owner(rootfs, ".") == 100000);
	/* What the runtime mounts on is there. */
	CHECK(exists(rootfs, "proc") && exists(rootfs, "tmp") && exists(rootfs, "etc/hosts"));
	CHECK(info.size_bytes >= 3);
}

static void test_docker_save(void)
{
	struct buf l1 = BUF_INIT, l2 = BUF_INIT, conf = BUF_INIT, man = BUF_INIT;
	struct hutch_error err = HUTCH_ERROR_INIT;
	char hex[65];

	tar_build(layer1, ARRAY_SIZE(layer1), false, &l1);
	tar_build(layer2, ARRAY_SIZE(layer2), true, &l2);
	buf_adds(&conf, "{\"architecture\":\"amd64\",\"os\":\"linux\"}");
	buf_adds(&man, "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"t:1\"],"
	               "\"Layers\":[\"l1/layer.tar\",\"./l2/layer.tar\"]}]");
	const struct file files[] = {{"cfg.json", &conf},
	                             {"l1/layer.tar", &l1},
	                             {"l2/layer.tar", &l2},
	                             {"manifest.json", &man}};
	int fd = outer_build(files, ARRAY_SIZE(files));
	int r = image_import(&cfg, "test/tiny", fd, NULL, &err);
	if (r < 0)
		fprintf(stderr, "import: %s\n", err.msg);
	CHECK(r == 0);
	close(fd);
	sha256_hex(&conf, hex);
	check_tiny("test/tiny", hex);
	buf_release(&l1);
	buf_release(&l2);
	buf_release(&conf);
	buf_release(&man);
}

static void test_oci(void)
{
	struct buf l1 = BUF_INIT, l2 = BUF_INIT, conf = BUF_INIT, man = BUF_INIT, idx = BUF_INIT,
	           lay = BUF_INIT;
	char h1[65], h2[65], hc[65], hm[65], p1[100], p2[100], pc[100], pm[100];
	struct hutch_error err = HUTCH_ERROR_INIT;

	tar_build(layer1, ARRAY_SIZE(layer1), true, &l1);
	tar_build(layer2, ARRAY_SIZE(layer2), false, &l2);
	buf_adds(&conf, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"oci\":true}");
	sha256_hex(&l1, h1);
	sha256_hex(&l2, h2);
	sha256_hex(&conf, hc);
	buf_printf(&man,
	           "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:%s\"},\"layers\":["
	           "{\"digest\":\"sha256:%s\"},{\"digest\":\"sha256:%s\"}]}",
	           hc, h1, h2);
	sha256_hex(&man, hm);
	buf_printf(&idx, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"sha256:%s\"}]}", hm);
	buf_adds(&lay, "{\"imageLayoutVersion\":\"1.0.0\"}");
	snprintf(p1, sizeof(p1), "blobs/sha256/%s", h1);
	snprintf(p2, sizeof(p2), "blobs/sha256/%s", h2);
	snprintf(pc, sizeof(pc), "blobs/sha256/%s", hc);
	snprintf(pm, sizeof(pm), "blobs/sha256/%s", hm);
	const struct file files[] = {{"oci-layout", &lay},
	                             {"index.json", &idx},
	                             {pm, &man},
	                             {pc, &conf},
	                             {p1, &l1},
	                             {p2, &l2}};
	int fd = outer_build(files, ARRAY_SIZE(files));
	int r = image_import(&cfg, "oci-tiny", fd, NULL, &err);
	if (r < 0)
		fprintf(stderr, "oci import: %s\n", err.msg);
	CHECK(r == 0);
	close(fd);
	check_tiny("oci-tiny", hc);
	struct buf *all[] = {&l1, &l2, &conf, &man, &idx, &lay};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		buf_release(all[i]);
}

/* A layer tries to leave the rootfs: it must fail and write nothing outside. */
static void import_evil(const struct ent *layer, size_t n, const char *outside)
{
	struct buf l = BUF_INIT, conf = BUF_INIT, man = BUF_INIT;
	struct hutch_error err = HUTCH_ERROR_INIT;

	tar_build(layer, n, false, &l);
	buf_adds(&conf, "{}");
	buf_adds(&man, "[{\"Config\":\"c.json\",\"Layers\":[\"l.tar\"]}]");
	const struct file files[] = {{"c.json", &conf}, {"l.tar", &l}, {"manifest.json", &man}};
	int fd = outer_build(files, ARRAY_SIZE(files));
	CHECK(image_import(&cfg, "evil", fd, NULL, &err) < 0);
	if (getenv("T_VERBOSE"))
		fprintf(stderr, "evil import refused: %s\n", err.msg);
	CHECK(access(outside, F_OK) < 0);
	close(fd);
	buf_release(&l);
	buf_release(&conf);
	buf_release(&man);
}

static void test_escapes(void)
{
	char outside[200], target[220];

	snprintf(outside, sizeof(outside), "%s/outside", base_dir);
	mkdir(outside, 0755);
	snprintf(target, sizeof(target), "%s/pwned", outside);
	char evil_path[300];
	snprintf(evil_path, sizeof(evil_path), "../../../../../../..%s", target);
	const struct ent e1[] = {{evil_path, 'f', "x", 0}};
	const struct ent e2[] = {{"esc", 'l', outside, 0}, {"esc/pwned", 'f', "x", 0}};
	const struct ent e3[] = {{"esc", 'l', "../../../../../../../../..", 0},
	                         {"esc/pwned", 'f', "x", 0}};
	const struct ent e4[] = {{"big", 'f', "x", 70000}};
	import_evil(e1, ARRAY_SIZE(e1), target);
	import_evil(e2, ARRAY_SIZE(e2), target);
	import_evil(e3, ARRAY_SIZE(e3), "/pwned");
	import_evil(e4, ARRAY_SIZE(e4), target); /* owner outside the id range */
	char path[PATH_MAX];
	CHECK(image_resolve(&cfg, "evil", path, NULL, NULL) == -ENOENT);
}

static int count_images(const struct image_info *info, void *data)
{
	(*(int *)data)++;
	return 0;
}

static void test_list_remove(void)
{
	char path[PATH_MAX], blob[PATH_MAX];
	int n = 0;

	CHECK(image_list(&cfg, count_images, &n, NULL) == 0 && n == 2);
	CHECK(image_resolve(&cfg, "test/tiny", path, NULL, NULL) == 0);
	snprintf(blob, sizeof(blob), "%s", path);
	CHECK(image_remove(&cfg, "test/tiny", NULL) == 0);
	CHECK(access(blob, F_OK) < 0);
	CHECK(image_remove(&cfg, "test/tiny", NULL) == -ENOENT);
	CHECK(image_resolve(&cfg, "../x", path, NULL, NULL) == -EINVAL);
	CHECK(image_resolve(&cfg, NULL, path, NULL, NULL) == -ENOENT); /* default not built */
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_mirror(void)
{
	char apt[200], dir[220], path[300];
	char *uri = NULL, *suite = NULL;

	snprintf(apt, sizeof(apt), "%s/apt", base_dir);
	snprintf(dir, sizeof(dir), "%s/sources.list.d", apt);
	mkdir_p(dir, 0755);
	snprintf(path, sizeof(path), "%s/sources.list", apt);
	write_text(path, "# comment\ndeb-src http://src.example/debian bookworm main\n"
	                 "deb [arch=amd64] http://list.example/debian bookworm main\n");
	CHECK(image_host_mirror(apt, &uri, &suite) == 0);
	CHECK_STR(uri, "http://list.example/debian");
	CHECK_STR(suite, "bookworm");
	free(uri);
	free(suite);
	snprintf(path, sizeof(path), "%s/debian.sources", dir);
	write_text(path, "Types: deb\nURIs: http://sec.example/debian-security\n"
	                 "Suites: bookworm-security\nComponents: main\n\n"
	                 "Types: deb deb-src\n# note\nURIs: http://main.example/debian\n"
	                 "Suites: bookworm bookworm-updates\nComponents: main\n");
	CHECK(image_host_mirror(apt, &uri, &suite) == 0);
	CHECK_STR(uri, "http://main.example/debian");
	CHECK_STR(suite, "bookworm");
	free(uri);
	free(suite);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("SKIP: test_runtime_image needs root (chroot, chown)\n");
		T_DONE();
	}
	snprintf(base_dir, sizeof(base_dir), "/tmp/hutch-img-XXXXXX");
	if (!mkdtemp(base_dir)) {
		CHECK(0);
		T_DONE();
	}
	snprintf(state_dir, sizeof(state_dir), "%s/state", base_dir);
	cfg.state_dir = state_dir;
	test_docker_save();
	test_oci();
	test_escapes();
	test_list_remove();
	test_mirror();
	rm_rf(base_dir);
	T_DONE();
}
