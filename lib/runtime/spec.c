/* Validation of a sandbox spec against the runtime's limits, and the agent's argv and
 * environment built from it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "runtime/internal.h"
#include "runtime/spec.h"

static int check_list(char *const *list, bool is_env, const char *what, struct hutch_error *err)
{
	size_t n = 0, bytes = 0;

	for (; list && list[n]; n++) {
		bytes += strlen(list[n]) + 1;
		if (n >= RT_ARGV_MAX || bytes > RT_ARGV_BYTES_MAX)
			return hutch_error_set(err, -EINVAL, "%s too long", what);
		if (!is_env)
			continue;
		const char *eq = strchr(list[n], '=');
		if (!eq || eq == list[n])
			return hutch_error_set(err, -EINVAL, "env entry without NAME=: %.64s",
			                       list[n]);
		if (strncmp(list[n], "HUTCH_", 6) == 0)
			return hutch_error_set(err, -EINVAL, "env must not set HUTCH_* (%.64s)",
			                       list[n]);
	}
	return 0;
}

static bool hostname_valid(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 63 || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

int rt_spec_validate(const struct rt_config *cfg, const struct rt_spec *spec,
                     struct hutch_error *err)
{
	if (!spec->id || !rt_id_valid(spec->id))
		return hutch_error_set(err, -EINVAL, "invalid sandbox id");
	if (spec->hostname && !hostname_valid(spec->hostname))
		return hutch_error_set(err, -EINVAL, "invalid hostname");
	if (!(spec->cpus > 0 && spec->cpus <= RT_CPUS_MAX))
		return hutch_error_set(err, -EINVAL, "cpus must be in (0, %g]", RT_CPUS_MAX);
	if (spec->memory_mb < RT_MEMORY_MB_MIN || spec->memory_mb > RT_MEMORY_MB_MAX)
		return hutch_error_set(err, -EINVAL, "memory_mb must be in [%u, %u]",
		                       RT_MEMORY_MB_MIN, RT_MEMORY_MB_MAX);
	if (spec->disk_mb < RT_DISK_MB_MIN || spec->disk_mb > RT_DISK_MB_MAX)
		return hutch_error_set(err, -EINVAL, "disk_mb must be in [%u, %u]", RT_DISK_MB_MIN,
		                       RT_DISK_MB_MAX);
	if (spec->pids_max > RT_PIDS_MAX)
		return hutch_error_set(err, -EINVAL, "pids_max must be at most %u", RT_PIDS_MAX);
	if (spec->snapshot_dir && spec->memory_snapshot_dir)
		return hutch_error_set(err, -EINVAL,
		                       "snapshot_dir and memory_snapshot_dir are exclusive");
	/* <run_dir>/<id>/agent.sock must fit a unix socket address (108 bytes). */
	if (strlen(cfg->run_dir) + strlen(spec->id) + sizeof("//agent.sock") > 108)
		return hutch_error_set(err, -ENAMETOOLONG, "run_dir too long for the agent socket");
	if (!cfg->agent_path || !*cfg->agent_path)
		return hutch_error_set(err, -EINVAL, "no agent_path configured");
	int r = check_list(spec->entrypoint, false, "entrypoint", err);
	return r < 0 ? r : check_list(spec->env, true, "env", err);
}

static bool env_has(char *const *env, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
			return true;
	return false;
}

char **rt_spec_envp(const struct rt_spec *spec)
{
	size_t n = 0, k = 0;
	const char *host = spec->hostname ? spec->hostname : spec->id;

	while (spec->env && spec->env[n])
		n++;
	char **envp = xcalloc(n + 10, sizeof(char *));
	envp[k++] = xstrdup("HUTCH_AGENT_SOCKET=/run/hutch/agent.sock");
	envp[k++] = xasprintf("HUTCH_READY_FD=%d", 3);
	envp[k++] = xstrdup("HUTCH_OOM_FILE=/run/hutch/oom");
	if (spec->entrypoint)
		envp[k++] = xstrdup("HUTCH_ENTRYPOINT_FILE=/run/hutch/entrypoint.json");
	envp[k++] = xasprintf("HUTCH_SANDBOX_ID=%s", spec->id);
	if (!env_has(spec->env, "HOSTNAME"))
		envp[k++] = xasprintf("HOSTNAME=%s", host);
	if (!env_has(spec->env, "PATH"))
		envp[k++] = xstrdup("PATH=" RT_DEFAULT_PATH);
	if (!env_has(spec->env, "HOME"))
		envp[k++] = xstrdup("HOME=/root");
	for (size_t i = 0; i < n; i++)
		envp[k++] = xstrdup(spec->env[i]);
	envp[k] = NULL;
	return envp;
}

void rt_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
