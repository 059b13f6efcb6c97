/* Helpers shared by the image store's files (image.c, image-build.c, image-import.c). */
#ifndef HUTCH_RUNTIME_IMAGE_STORE_H
#define HUTCH_RUNTIME_IMAGE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/image.h"

/* Limits on imported archives. */
#define IMAGE_IMPORT_MAX_BYTES   (64ull << 30)
#define IMAGE_IMPORT_MAX_ENTRIES 2000000u
#define IMAGE_IMPORT_MAX_LAYERS  256u
#define IMAGE_JSON_MAX           (4u << 20)

/* True for a valid image name (see image.h). */
bool image_name_valid(const char *name);
/* <state_dir>/images/<leaf> (malloc'd). */
char *image_path(const struct rt_config *cfg, const char *leaf);
/* Makes a fresh build directory images/tmp/<rnd>/ with an empty rootfs/ inside. */
int image_tmp_new(const struct rt_config *cfg, char **ret_dir, struct hutch_error *err);
/* Gives rootfs what the runtime mounts on (proc, sys, dev, run, tmp, etc/hosts, ...) and
 * shifts ownership of everything by cfg->id_base when shift is set. Returns total bytes of
 * regular files in *ret_size. */
int image_rootfs_finish(const struct rt_config *cfg, const char *rootfs, bool shift,
                        uint64_t *ret_size, struct hutch_error *err);
/* Moves tmpdir (holding rootfs/) to blobs/<hex of digest>, records meta.json and points name
 * at it. tmpdir is gone afterwards, whatever the outcome. */
int image_publish(const struct rt_config *cfg, const char *tmpdir, const char *digest,
                  const char *name, const char *source, uint64_t size, struct image_info *ret,
                  struct hutch_error *err);

/* Reads the main Debian mirror URI and suite from etc_apt (normally /etc/apt):
 * sources.list.d/ *.sources (deb822 "URIs:"), then *.list and sources.list ("deb" lines);
 * the first "deb" entry whose suite has no '-' (not -updates or -security) wins. */
int image_host_mirror(const char *etc_apt, char **ret_uri, char **ret_suite);

#endif
