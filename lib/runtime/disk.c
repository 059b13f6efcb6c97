/* The size-limited writable layer: a sparse ext4 image per sandbox (a sparse copy of a cached,
 * pre-formatted template), attached to a loop device with LOOP_CONFIGURE and autoclear, and
 * mounted on the host with upper/ and work/ for overlayfs. No disk quotas needed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/loop.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/internal.h"

int rt_disk_mkfs(const char *path, struct hutch_error *err)
{
	const char *mkfs = access("/usr/sbin/mkfs.ext4", X_OK) == 0 ? "/usr/sbin/mkfs.ext4"
	                                                            : "/sbin/mkfs.ext4";
	char *argv[] = {(char *)mkfs,   "-q", "-F",
	                "-m",           "0",  "-O",
	                "^has_journal", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
	                (char *)path,   NULL};
	int r = rt_run(argv, -1, err);

	if (r < 0)
		return hutch_error_wrap(err, "formatting %s (is e2fsprogs installed?)", path);
	return 0;
}

/* Copies only the allocated extents of src into a new file dst of the same size. */
static int sparse_copy(const char *src, const char *dst, struct hutch_error *err)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = -1;
	struct stat st;

	if (in < 0 || fstat(in, &st) < 0)
		return hutch_error_errno(err, "opening %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0 || ftruncate(out, st.st_size) < 0)
		return hutch_error_errno(err, "creating %s", dst);
	for (off_t pos = 0; pos < st.st_size;) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (data < 0 || hole < 0)
			return hutch_error_errno(err, "scanning %s", src);
		for (off_t off = data; off < hole;) {
			off_t o = off;
			ssize_t n = copy_file_range(in, &off, out, &o, (size_t)(hole - off), 0);
			if (n <= 0)
				return hutch_error_errno(err, "copying %s", src);
		}
		pos = hole;
	}
	return 0;
}

/* The cached template for mb: formatted once, then only copied. */
static int template_get(const struct rt_config *cfg, uint64_t mb, char **ret,
                        struct hutch_error *err)
{
	_cleanup_free_ char *leaf = xasprintf("template-%llu.img", (unsigned long long)mb);
	_cleanup_free_ char *path = rt_path_disks(cfg, leaf);
	_cleanup_free_ char *tmp = NULL;
	char rnd[HUTCH_ID_LEN + 1];
	int r;

	if (access(path, F_OK) == 0) {
		*ret = TAKE_PTR(path);
		return 0;
	}
	id_generate(rnd);
	tmp = xasprintf("%s.tmp-%s", path, rnd);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(mb << 20)) < 0) {
		r = hutch_error_errno(err, "creating %s", tmp);
		unlink(tmp);
		return r;
	}
	if ((r = rt_disk_mkfs(tmp, err)) < 0 || rename(tmp, path) < 0) {
		r = r < 0 ? r : hutch_error_errno(err, "renaming %s", tmp);
		unlink(tmp);
		return r;
	}
	*ret = TAKE_PTR(path);
	return 0;
}

int rt_disk_image_make(const struct rt_config *cfg, const char *path, uint64_t mb,
                       struct hutch_error *err)
{
	_cleanup_free_ char *tmpl = NULL;
	int r = template_get(cfg, mb, &tmpl, err);

	if (r < 0)
		return r;
	r = sparse_copy(tmpl, path, err);
	if (r < 0)
		unlink(path);
	return r;
}

/* Attaches fd to a free loop device with autoclear; returns the open loop fd. */
static int loop_attach(int fd, const char *name, char ret_dev[64], struct hutch_error *err)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	struct loop_config lc = {.fd = (unsigned)fd};

	if (ctl < 0)
		return hutch_error_errno(err, "opening /dev/loop-control");
	lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	snprintf((char *)lc.info.lo_file_name, sizeof(lc.info.lo_file_name), "%s", name);
	for (int attempt = 0; attempt < 64; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return hutch_error_errno(err, "LOOP_CTL_GET_FREE");
		snprintf(ret_dev, 64, "/dev/loop%d", n);
		int lfd = open(ret_dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0)
			return hutch_error_errno(err, "opening %s", ret_dev);
		if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0)
			return lfd;
		int e = errno;
		close(lfd);
		if (e != EBUSY) {
			errno = e;
			return hutch_error_errno(err, "LOOP_CONFIGURE %s", ret_dev);
		}
	}
	return hutch_error_set(err, -EBUSY, "no free loop device after 64 attempts");
}

static int make_layer_dirs(const struct rt_config *cfg, const char *dir, struct hutch_error *err)
{
	_cleanup_free_ char *upper = xasprintf("%s/upper", dir);
	_cleanup_free_ char *work = xasprintf("%s/work", dir);
	uid_t id = rt_cfg_id_base(cfg);

	if (mkdir(upper, 0755) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating %s", upper);
	if (chown(upper, id, id) < 0)
		return hutch_error_errno(err, "chown %s", upper);
	if (mkdir(work, 0700) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating %s", work);
	return 0;
}

int rt_disk_attach_mount(const struct rt_config *cfg, const char *image, const char *dir,
                         struct hutch_error *err)
{
	_cleanup_close_ int fd = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_close_ int lfd = -1;
	char dev[64];
	int r;

	if (fd < 0)
		return hutch_error_errno(err, "opening %s", image);
	lfd = loop_attach(fd, image, dev, err);
	if (lfd < 0)
		return lfd;
	if (mount(dev, dir, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "") < 0)
		return hutch_error_errno(err, "mounting %s on %s", dev, dir);
	/* From here the mount holds the loop device; closing lfd lets autoclear detach it when
	 * the file system is unmounted. */
	r = make_layer_dirs(cfg, dir, err);
	if (r < 0)
		rt_umount_all(dir);
	return r;
}

static bool backing_matches(const char *loopdir, const char *path)
{
	char file[PATH_MAX], bf[PATH_MAX + 32];
	size_t n = strlen(path);

	snprintf(file, sizeof(file), "/sys/block/%s/loop/backing_file", loopdir);
	if (rt_read_small(file, bf, sizeof(bf)) <= 0)
		return false;
	if (strncmp(bf, path, n) != 0)
		return false;
	return bf[n] == '\0' || strcmp(bf + n, " (deleted)") == 0;
}

/* Calls fn for each loop device whose backing file is path; counts them. */
static int loop_scan(const char *path, bool detach)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/block");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "loop", 4) != 0 || !backing_matches(de->d_name, path))
			continue;
		n++;
		if (!detach)
			continue;
		char dev[300];
		snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
		_cleanup_close_ int fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			ioctl(fd, LOOP_CLR_FD, 0);
	}
	return n;
}

int rt_loop_detach_backing(const char *path)
{
	uint64_t deadline = time_mono_ms() + 2000;

	/* After the last unmount autoclear detaches the device, sometimes a moment later. */
	while (loop_scan(path, false) > 0) {
		if (time_mono_ms() >= deadline) {
			loop_scan(path, true);
			usleep(10000);
			return loop_scan(path, false) > 0 ? -EBUSY : 0;
		}
		usleep(1000);
	}
	return 0;
}

bool rt_loop_backed_by(const char *needle)
{
	_cleanup_closedir_ DIR *d = opendir("/sys/block");
	struct dirent *de;

	if (!d)
		return false;
	while ((de = readdir(d))) {
		char file[PATH_MAX], bf[PATH_MAX];
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(file, sizeof(file), "/sys/block/%s/loop/backing_file", de->d_name);
		if (rt_read_small(file, bf, sizeof(bf)) > 0 && strstr(bf, needle))
			return true;
	}
	return false;
}

/* The canonical path the kernel reports for a sandbox's image. */
static char *image_canonical(const struct rt_config *cfg, const char *id)
{
	char real[PATH_MAX];

	if (!realpath(cfg->state_dir, real))
		return rt_path_sandbox(cfg, id, "disk.img");
	return xasprintf("%s/sandboxes/%s/disk.img", real, id);
}

int rt_disk_create(const struct rt_config *cfg, const char *id, uint64_t disk_mb,
                   struct hutch_error *err)
{
	_cleanup_free_ char *image = rt_path_sandbox(cfg, id, "disk.img");
	_cleanup_free_ char *dir = rt_path_sandbox(cfg, id, "disk");
	_cleanup_free_ char *canon = image_canonical(cfg, id);
	int r;

	if (rt_cfg_pool_size(cfg) > 0 && rt_disk_pool_take(cfg, id, disk_mb) == 0)
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return hutch_error_errno(err, "creating %s", dir);
	if ((r = rt_disk_image_make(cfg, image, disk_mb, err)) < 0)
		return r;
	return rt_disk_attach_mount(cfg, canon, dir, err);
}

int rt_disk_destroy(const struct rt_config *cfg, const char *id, struct hutch_error *err)
{
	_cleanup_free_ char *dir = rt_path_sandbox(cfg, id, "disk");
	_cleanup_free_ char *canon = image_canonical(cfg, id);
	int r = rt_umount_all(dir);

	if (r < 0) {
		errno = -r;
		return hutch_error_errno(err, "unmounting %s", dir);
	}
	r = rt_loop_detach_backing(canon);
	if (r < 0)
		return hutch_error_set(err, r, "a loop device still uses %s", canon);
	return 0;
}
