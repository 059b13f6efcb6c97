/* The image store: a name maps to a content-addressed, read-only root filesystem directory that
 * every sandbox using it shares as its overlay lower layer. Files are stored already shifted
 * into the sandbox id range (cfg->id_base), so no per-sandbox ownership work is needed.
 *
 * Layout: <state_dir>/images/blobs/<digest>/rootfs/ plus <digest>/meta.json, and
 * <state_dir>/images/names/<name> (a file holding the digest). Names: [a-z0-9][a-z0-9._/-]*
 * up to 128 characters. "default", "ubuntu-minimal", "tensorlake/ubuntu-minimal",
 * "debian-minimal" and an empty name resolve to the default image; "busybox" is the tiny
 * image for fast tests. */
#ifndef HUTCH_IMAGE_H
#define HUTCH_IMAGE_H

#include <stdint.h>

#include "base/error.h"
#include "runtime/runtime.h"

struct image_info {
	char name[136];
	char digest[72]; /* "sha256:<hex>" */
	uint64_t size_bytes;
	int64_t created_at_ms;
};

/* Resolves name (aliases included) to the host path of its rootfs directory, written into
 * ret_path (size PATH_MAX). -ENOENT with a message saying how to build or import it. */
int image_resolve(const struct rt_config *cfg, const char *name, char *ret_path,
                  struct image_info *ret_info, struct hutch_error *err);

/* Imports a `docker save` archive or an OCI image layout tarball read from fd: layers applied in
 * order, whiteouts honoured, ownership shifted, then published atomically under name. */
int image_import(const struct rt_config *cfg, const char *name, int fd, struct image_info *ret,
                 struct hutch_error *err);

/* Builds the busybox image from the host's busybox-static package. */
int image_build_busybox(const struct rt_config *cfg, struct image_info *ret,
                        struct hutch_error *err);

/* Builds the default Debian image with debootstrap from the mirror in the host's apt
 * configuration (python3 and the usual shell tools). progress_fd receives debootstrap's output
 * (-1 to discard). Takes minutes; the result is cached. */
int image_build_default(const struct rt_config *cfg, int progress_fd, struct image_info *ret,
                        struct hutch_error *err);

/* Lists images; cb's non-zero return stops the walk. */
int image_list(const struct rt_config *cfg, int (*cb)(const struct image_info *info, void *data),
               void *data, struct hutch_error *err);

/* Removes a name; the blob goes when no name points at it and no sandbox uses it. */
int image_remove(const struct rt_config *cfg, const char *name, struct hutch_error *err);

#endif
