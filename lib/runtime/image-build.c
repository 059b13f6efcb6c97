/* Image builders: busybox (from the host's busybox-static, for fast tests) and the default
 * Debian image (debootstrap from the mirror in the host's apt configuration). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/image-store.h"
#include "runtime/internal.h"

#define BUSYBOX_PATH "/bin/busybox"
#define DEFAULT_PACKAGES                                                                      \
	"python3,python3-pip,python3-venv,ca-certificates,procps,less,iproute2,iputils-ping," \
	"curl,wget,git,nano,xz-utils,unzip"

static int write_text(const char *dir, const char *leaf, const char *text, mode_t mode,
                      struct hutch_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, leaf);
	_cleanup_close_ int fd =
	        open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0 || write_all(fd, text, strlen(text)) < 0)
		return hutch_error_errno(err, "writing %s", path);
	return 0;
}

/* Runs `busybox --list-full` and makes one symlink to /bin/busybox per applet. */
static int busybox_applets(const char *rootfs, struct hutch_error *err)
{
	_cleanup_close_ int out = memfd_create("busybox-list", MFD_CLOEXEC);
	_cleanup_buf_ struct buf list = BUF_INIT;
	char *argv[] = {BUSYBOX_PATH, "--list-full", NULL};
	char proc[64];
	int r;

	if (out < 0)
		return hutch_error_errno(err, "memfd_create");
	if ((r = rt_run(argv, out, err)) < 0)
		return r;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", out);
	if ((r = read_file(proc, 1 << 20, &list)) < 0)
		return hutch_error_set(err, r, "reading the busybox applet list");
	for (struct sv rest = sv_make(list.data, list.len), line; rest.len;) {
		sv_split(rest, '\n', &line, &rest);
		if (line.len == 0 || line.len > 200 || sv_index(line, '.') >= 0 ||
		    sv_eq_cstr(line, "bin/busybox"))
			continue;
		_cleanup_free_ char *rel = sv_dup(line);
		_cleanup_free_ char *path = xasprintf("%s/%s", rootfs, rel);
		char *slash = strrchr(path, '/');
		*slash = '\0';
		if (mkdir_p(path, 0755) < 0)
			return hutch_error_errno(err, "creating %s", path);
		*slash = '/';
		if (symlink("/bin/busybox", path) < 0 && errno != EEXIST)
			return hutch_error_errno(err, "symlink %s", path);
	}
	return 0;
}

static int busybox_tree(const char *rootfs, struct hutch_error *err)
{
	_cleanup_free_ char *bin = xasprintf("%s/bin", rootfs);
	_cleanup_free_ char *etc = xasprintf("%s/etc", rootfs);
	_cleanup_free_ char *dst = xasprintf("%s/bin/busybox", rootfs);
	_cleanup_buf_ struct buf data = BUF_INIT;
	int r;

	if (mkdir(bin, 0755) < 0 || mkdir(etc, 0755) < 0)
		return hutch_error_errno(err, "creating %s", bin);
	if ((r = read_file(BUSYBOX_PATH, 64 << 20, &data)) < 0)
		return hutch_error_set(err, r,
		                       "reading " BUSYBOX_PATH " (install busybox-static): %s",
		                       strerror(-r));
	_cleanup_close_ int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (fd < 0 || write_all(fd, data.data, data.len) < 0)
		return hutch_error_errno(err, "writing %s", dst);
	if ((r = busybox_applets(rootfs, err)) < 0)
		return r;
	if ((r = write_text(etc, "passwd",
	                    "root:x:0:0:root:/root:/bin/sh\n"
	                    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
	                    0644, err)) < 0)
		return r;
	return write_text(etc, "group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0644, err);
}

/* The recipe digest: the builder, its version and the busybox binary's own digest. */
static int busybox_digest(const struct rt_config *cfg, char digest[72], struct hutch_error *err)
{
	_cleanup_buf_ struct buf data = BUF_INIT, recipe = BUF_INIT;
	char bin[72];
	int r = read_file(BUSYBOX_PATH, 64 << 20, &data);

	if (r < 0)
		return hutch_error_set(err, r, "reading " BUSYBOX_PATH " (install busybox-static)");
	rt_sha256(data.data, data.len, bin);
	buf_printf(&recipe, "hutch-busybox-v1\n%s\nid_base=%u\n", bin,
	           (unsigned)rt_cfg_id_base(cfg));
	rt_sha256(recipe.data, recipe.len, digest);
	return 0;
}

int image_build_busybox(const struct rt_config *cfg, struct image_info *ret,
                        struct hutch_error *err)
{
	_cleanup_free_ char *tmp = NULL, *rootfs = NULL;
	char digest[72];
	uint64_t size = 0;
	int r;

	if ((r = busybox_digest(cfg, digest, err)) < 0)
		return r;
	if ((r = image_tmp_new(cfg, &tmp, err)) < 0)
		return r;
	rootfs = xasprintf("%s/rootfs", tmp);
	if ((r = busybox_tree(rootfs, err)) < 0 ||
	    (r = image_rootfs_finish(cfg, rootfs, true, &size, err)) < 0) {
		rm_rf(tmp);
		return r;
	}
	return image_publish(cfg, tmp, digest, "busybox", "busybox", size, ret, err);
}

static bool field_is(struct sv line, const char *name, struct sv *ret_value)
{
	struct sv key, value;

	if (!sv_split(line, ':', &key, &value) || !sv_case_eq(sv_trim(key), sv_from(name)))
		return false;
	*ret_value = sv_trim(value);
	return true;
}

/* First whitespace-separated word of s that satisfies (or not) having a '-'. */
static struct sv first_word(struct sv s, bool main_suite)
{
	while (s.len) {
		size_t i = 0;
		while (i < s.len && s.p[i] != ' ' && s.p[i] != '\t')
			i++;
		struct sv w = sv_make(s.p, i);
		if (w.len && (!main_suite || sv_index(w, '-') < 0))
			return w;
		s = sv_trim(sv_make(s.p + i, s.len - i));
	}
	return SV_NULL;
}

/* One deb822 stanza: Types has deb, a suite without '-' (not -updates/-security). */
static bool stanza_pick(struct sv stanza, char **ret_uri, char **ret_suite)
{
	struct sv rest = stanza, line, v, types = SV_NULL, uris = SV_NULL, suites = SV_NULL;

	while (rest.len) {
		sv_split(rest, '\n', &line, &rest);
		if (field_is(line, "Types", &v))
			types = v;
		else if (field_is(line, "URIs", &v))
			uris = v;
		else if (field_is(line, "Suites", &v))
			suites = v;
	}
	struct sv deb = first_word(types, false);
	struct sv uri = first_word(uris, false), suite = first_word(suites, true);
	if (!sv_eq_cstr(deb, "deb") || !uri.len || !suite.len)
		return false;
	*ret_uri = sv_dup(uri);
	*ret_suite = sv_dup(suite);
	return true;
}

static bool sources_file_pick(const char *path, char **ret_uri, char **ret_suite)
{
	_cleanup_buf_ struct buf b = BUF_INIT;

	if (read_file(path, 1 << 20, &b) < 0)
		return false;
	const char *p = buf_cstr(&b);
	for (;;) {
		const char *end = strstr(p, "\n\n");
		struct sv stanza = sv_make(p, end ? (size_t)(end - p) : strlen(p));
		if (stanza_pick(stanza, ret_uri, ret_suite))
			return true;
		if (!end)
			return false;
		p = end + 2;
	}
}

/* One-line format: "deb [options] URI SUITE COMPONENTS...". */
static bool list_file_pick(const char *path, char **ret_uri, char **ret_suite)
{
	_cleanup_buf_ struct buf b = BUF_INIT;

	if (read_file(path, 1 << 20, &b) < 0)
		return false;
	for (struct sv rest = sv_make(b.data, b.len), line; rest.len;) {
		sv_split(rest, '\n', &line, &rest);
		line = sv_trim(line);
		if (!sv_starts_with(line, SV("deb ")))
			continue;
		line = sv_trim(sv_make(line.p + 4, line.len - 4));
		if (line.len && line.p[0] == '[') {
			long close = sv_index(line, ']');
			if (close < 0)
				continue;
			line = sv_trim(sv_make(line.p + close + 1, line.len - (size_t)close - 1));
		}
		struct sv uri = first_word(line, false);
		struct sv after = sv_trim(sv_make(uri.p + uri.len, line.len - uri.len));
		struct sv suite = first_word(after, false);
		if (!uri.len || !suite.len || sv_index(suite, '-') >= 0)
			continue;
		*ret_uri = sv_dup(uri);
		*ret_suite = sv_dup(suite);
		return true;
	}
	return false;
}

int image_host_mirror(const char *etc_apt, char **ret_uri, char **ret_suite)
{
	_cleanup_free_ char *dir = xasprintf("%s/sources.list.d", etc_apt);
	_cleanup_free_ char *list = xasprintf("%s/sources.list", etc_apt);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	bool found = false;

	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, names[i]->d_name);
		if (!found && len > 8 && strcmp(names[i]->d_name + len - 8, ".sources") == 0)
			found = sources_file_pick(path, ret_uri, ret_suite);
		if (!found && len > 5 && strcmp(names[i]->d_name + len - 5, ".list") == 0)
			found = list_file_pick(path, ret_uri, ret_suite);
		free(names[i]);
	}
	free(names);
	if (!found)
		found = list_file_pick(list, ret_uri, ret_suite);
	return found ? 0 : -ENOENT;
}

static int debootstrap(const char *rootfs, const char *uri, const char *suite, int progress_fd,
                       struct hutch_error *err)
{
	char *argv[] = {"/usr/sbin/debootstrap",
	                "--variant=minbase",
	                "--include=" DEFAULT_PACKAGES,
	                (char *)suite,
	                (char *)rootfs,
	                (char *)uri,
	                NULL};
	_cleanup_free_ char *dev = xasprintf("%s/dev", rootfs);
	_cleanup_free_ char *debs = xasprintf("%s/var/cache/apt/archives", rootfs);
	int r = rt_run(argv, progress_fd, err);

	if (r < 0)
		return hutch_error_wrap(err, "debootstrap %s from %s (is debootstrap installed?)",
		                        suite, uri);
	/* Device nodes are never used (the sandbox gets its own /dev); downloaded .debs only
	 * take space. */
	rm_rf(dev);
	rm_rf(debs);
	mkdir(dev, 0755);
	return 0;
}

int image_build_default(const struct rt_config *cfg, int progress_fd, struct image_info *ret,
                        struct hutch_error *err)
{
	_cleanup_free_ char *uri = NULL, *suite = NULL, *tmp = NULL, *rootfs = NULL;
	_cleanup_buf_ struct buf recipe = BUF_INIT;
	char digest[72];
	uint64_t size = 0;
	int r;

	if (image_host_mirror("/etc/apt", &uri, &suite) < 0)
		return hutch_error_set(err, -ENOENT, "no Debian mirror in /etc/apt sources");
	if ((r = image_tmp_new(cfg, &tmp, err)) < 0)
		return r;
	rootfs = xasprintf("%s/rootfs", tmp);
	if ((r = debootstrap(rootfs, uri, suite, progress_fd, err)) < 0 ||
	    (r = image_rootfs_finish(cfg, rootfs, true, &size, err)) < 0) {
		rm_rf(tmp);
		return r;
	}
	/* debootstrap is not reproducible: the digest names this build, not its bytes. */
	buf_printf(&recipe, "hutch-debootstrap-v1\n%s\n%s\n%s\nid_base=%u\n%lld\n", suite, uri,
	           DEFAULT_PACKAGES, (unsigned)rt_cfg_id_base(cfg), (long long)time_now_ms());
	rt_sha256(recipe.data, recipe.len, digest);
	return image_publish(cfg, tmp, digest, "default", "debootstrap", size, ret, err);
}
