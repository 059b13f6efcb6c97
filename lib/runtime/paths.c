/* Configuration defaults, fault injection and the host paths of a sandbox: every other runtime
 * file derives paths through these so the layout lives in one place (see runtime.h). */
#include <errno.h>
#include <string.h>

#include "base/xalloc.h"
#include "runtime/internal.h"

const char *const rt_create_steps[] = {
        "dirs",         "image",       "disk",       "overlay",     "rundir",  "cgroup", "seccomp",
        "clone",        "maps",        "attach",     "netns",       "network", "state",  "release",
        "child-mounts", "child-pivot", "child-exec", "agent-ready", NULL,
};

uid_t rt_cfg_id_base(const struct rt_config *cfg)
{
	return cfg->id_base ? cfg->id_base : RT_DEFAULT_ID_BASE;
}

uint32_t rt_cfg_id_count(const struct rt_config *cfg)
{
	return cfg->id_count ? cfg->id_count : RT_DEFAULT_ID_COUNT;
}

const char *rt_cfg_cgroup(const struct rt_config *cfg)
{
	return cfg->cgroup_name && *cfg->cgroup_name ? cfg->cgroup_name : RT_DEFAULT_CGROUP;
}

uint64_t rt_cfg_pids_max(const struct rt_config *cfg)
{
	return cfg->default_pids_max ? cfg->default_pids_max : RT_DEFAULT_PIDS_MAX;
}

unsigned rt_cfg_ready_timeout_ms(const struct rt_config *cfg)
{
	return cfg->ready_timeout_ms ? cfg->ready_timeout_ms : RT_DEFAULT_READY_TIMEOUT_MS;
}

unsigned rt_cfg_pool_size(const struct rt_config *cfg)
{
	if (cfg->disk_pool_disabled)
		return 0;
	return cfg->disk_pool_size ? cfg->disk_pool_size : RT_DEFAULT_POOL_SIZE;
}

uint64_t rt_cfg_pool_mb(const struct rt_config *cfg)
{
	return cfg->disk_pool_mb ? cfg->disk_pool_mb : RT_DEFAULT_POOL_MB;
}

bool rt_fault(const struct rt_config *cfg, const char *step)
{
	return cfg->fault_step && strcmp(cfg->fault_step, step) == 0;
}

int rt_fault_check(const struct rt_config *cfg, const char *step, struct hutch_error *err)
{
	if (!rt_fault(cfg, step))
		return 0;
	return hutch_error_set(err, -EIO, "injected fault at step %s", step);
}

char *rt_path_sandboxes(const struct rt_config *cfg)
{
	return xasprintf("%s/sandboxes", cfg->state_dir);
}

char *rt_path_sandbox(const struct rt_config *cfg, const char *id, const char *leaf)
{
	if (!leaf)
		return xasprintf("%s/sandboxes/%s", cfg->state_dir, id);
	return xasprintf("%s/sandboxes/%s/%s", cfg->state_dir, id, leaf);
}

char *rt_path_run(const struct rt_config *cfg, const char *id, const char *leaf)
{
	if (!leaf)
		return xasprintf("%s/%s", cfg->run_dir, id);
	return xasprintf("%s/%s/%s", cfg->run_dir, id, leaf);
}

char *rt_path_disks(const struct rt_config *cfg, const char *leaf)
{
	if (!leaf)
		return xasprintf("%s/disks", cfg->state_dir);
	return xasprintf("%s/disks/%s", cfg->state_dir, leaf);
}

bool rt_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 64 || id[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}
