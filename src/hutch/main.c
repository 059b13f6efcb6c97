/* hutch: the command-line client. Global options, configuration from the environment, and the
 * command table; each command family lives in its own cmd-*.c file. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli.h"

struct cli cli;

static const struct cli_command commands[] = {
	{"create", cmd_create, "create a sandbox and wait until it runs"},
	{"ls", cmd_ls, "list sandboxes (--all, --running, --suspended, --archived)"},
	{"describe", cmd_describe, "show one sandbox (alias: get, info)"},
	{"get", cmd_describe, NULL},
	{"info", cmd_describe, NULL},
	{"update", cmd_update, "rename, expose ports, change public access or network policy"},
	{"terminate", cmd_terminate, "terminate sandboxes (alias: rm, stop)"},
	{"rm", cmd_terminate, NULL},
	{"stop", cmd_terminate, NULL},
	{"suspend", cmd_suspend, "suspend a named sandbox"},
	{"resume", cmd_resume, "resume a suspended sandbox"},
	{"exec", cmd_exec, "run a command in a sandbox (exit code follows it; --detach)"},
	{"run", cmd_run, "create a sandbox, run a command, tear it down (--keep)"},
	{"ps", cmd_ps, "list the processes of a sandbox"},
	{"logs", cmd_logs, "print (or --follow) a process's output"},
	{"kill", cmd_kill, "kill or signal a process"},
	{"cp", cmd_cp, "copy a file into or out of a sandbox (ID:/path)"},
	{"key", cmd_key, "manage API keys: key create|ls|revoke"},
	{"image", cmd_image, "manage images on this host: image ls|import|build|rm"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hutch [--json] [--api-url URL] [--api-key KEY] COMMAND [ARGS]\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].summary)
			fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nConfiguration: HUTCH_API_URL (or TENSORLAKE_API_URL), default "
		     "http://127.0.0.1:8900;\nHUTCH_API_KEY (or TENSORLAKE_API_KEY), default the "
		     "admin key in $HUTCH_DATA_DIR/admin.key\nwhen readable. `hutch COMMAND --help` "
		     "describes a command.\n");
}

static char *env_first(const char *a, const char *b)
{
	const char *v = getenv(a);
	if (!v || !v[0])
		v = getenv(b);
	return v && v[0] ? xstrdup(v) : NULL;
}

static void configure(void)
{
	cli.api_url = env_first("HUTCH_API_URL", "TENSORLAKE_API_URL");
	if (!cli.api_url)
		cli.api_url = xstrdup("http://127.0.0.1:8900");
	size_t n = strlen(cli.api_url);
	while (n && cli.api_url[n - 1] == '/')
		cli.api_url[--n] = '\0';
	cli.data_dir = env_first("HUTCH_DATA_DIR", "HUTCH_DATA_DIR");
	if (!cli.data_dir)
		cli.data_dir = xstrdup("/var/lib/hutch");
	cli.api_key = env_first("HUTCH_API_KEY", "TENSORLAKE_API_KEY");
	if (!cli.api_key) {
		char *path = xasprintf("%s/admin.key", cli.data_dir);
		struct buf b = BUF_INIT;
		if (read_file(path, 4096, &b) == 0) {
			struct sv k = sv_trim(sv_make(b.data, b.len));
			cli.api_key = sv_dup(k);
		}
		buf_release(&b);
		free(path);
	}
}

int main(int argc, char **argv)
{
	int i = 1;
	configure();
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0) {
			cli.json = true;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cli.quiet = true;
		} else if (strcmp(a, "--api-url") == 0 && i + 1 < argc) {
			free(cli.api_url);
			cli.api_url = xstrdup(argv[++i]);
		} else if (strcmp(a, "--api-key") == 0 && i + 1 < argc) {
			free(cli.api_key);
			cli.api_key = xstrdup(argv[++i]);
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("hutch %s\n", HUTCH_VERSION);
			return 0;
		} else {
			fprintf(stderr, "hutch: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(commands[c].name, argv[i]) == 0) {
			int rc = commands[c].run(argc - i, argv + i);
			curl_global_cleanup();
			return rc;
		}
	}
	fprintf(stderr, "hutch: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
