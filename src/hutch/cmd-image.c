/* Image commands. Images live on each executor host (the overlay lower layers), so these run
 * locally, as root, on the host's data directory: image ls | import NAME FILE | build
 * busybox|default | rm NAME. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"
#include "runtime/image.h"
#include "runtime/runtime.h"

static const char image_usage[] =
        "hutch image ls | image import NAME FILE|- | image build busybox|default | image rm NAME";

static struct rt_config rt;
static char *state_dir;

static int setup(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	const char *base = getenv("HUTCH_ID_BASE");
	state_dir = xasprintf("%s/runtime", cli.data_dir);
	rt = (struct rt_config){
	        .state_dir = state_dir,
	        .run_dir = getenv("HUTCH_RUN_DIR") ? getenv("HUTCH_RUN_DIR") : "/run/hutch",
	        .agent_path = "/nonexistent",
	        .id_base = base ? (uid_t)atol(base) : 100000,
	        .id_count = 65536,
	        .cgroup_name = "hutch",
	        .disk_pool_disabled = true,
	};
	if (geteuid() != 0)
		return cli_error("image commands manage this host's image store and need root");
	if (mkdir_p(state_dir, 0711) < 0)
		return cli_error("cannot create %s", state_dir);
	(void)err;
	return 0;
}

static int print_image(const struct image_info *info, void *data)
{
	if (cli.json) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(info->name));
		json_object_set_new(o, "digest", json_string(info->digest));
		json_object_set_new(o, "size_bytes", json_integer((json_int_t)info->size_bytes));
		json_object_set_new(o, "created_at", json_integer(info->created_at_ms));
		json_array_append_new(data, o);
	} else {
		printf("%-32s  %-20.20s  %10.1f MB\n", info->name, info->digest,
		       (double)info->size_bytes / 1e6);
	}
	return 0;
}

static int image_ls(void)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	json_t *arr = json_array();
	if (!cli.json)
		printf("%-32s  %-20s  %13s\n", "NAME", "DIGEST", "SIZE");
	int rc = image_list(&rt, print_image, arr, &err);
	if (rc < 0)
		rc = cli_error("image ls: %s", err.msg);
	else if (cli.json)
		cli_print_json(arr);
	json_decref(arr);
	return rc < 0 ? 1 : rc;
}

static int image_import_cmd(const char *name, const char *file)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct image_info info;
	_cleanup_close_ int fd = strcmp(file, "-") == 0 ? dup(0) : open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_error("image import: cannot open %s: %s", file, strerror(errno));
	if (image_import(&rt, name, fd, &info, &err) < 0)
		return cli_error("image import: %s", err.msg);
	printf("%s %s\n", info.name, info.digest);
	return 0;
}

static int image_build(const char *which)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct image_info info;
	int rc;
	if (rt_init(&rt, &err) < 0)
		return cli_error("image build: %s", err.msg);
	if (strcmp(which, "busybox") == 0)
		rc = image_build_busybox(&rt, &info, &err);
	else if (strcmp(which, "default") == 0)
		rc = image_build_default(&rt, cli.quiet ? -1 : 2, &info, &err);
	else
		return cli_usage(image_usage);
	if (rc < 0)
		return cli_error("image build %s: %s", which, err.msg);
	printf("%s %s\n", info.name, info.digest);
	return 0;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0)
		return cli_usage(image_usage);
	if (setup())
		return 1;
	struct hutch_error err = HUTCH_ERROR_INIT;
	int rc;
	if (argc == 2 && strcmp(argv[1], "ls") == 0)
		rc = image_ls();
	else if (argc == 4 && strcmp(argv[1], "import") == 0)
		rc = image_import_cmd(argv[2], argv[3]);
	else if (argc == 3 && strcmp(argv[1], "build") == 0)
		rc = image_build(argv[2]);
	else if (argc == 3 && strcmp(argv[1], "rm") == 0)
		rc = image_remove(&rt, argv[2], &err) < 0 ? cli_error("image rm: %s", err.msg) : 0;
	else
		rc = cli_usage(image_usage);
	free(state_dir);
	return rc;
}
