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

static const char create_help[] =
        "hutch create [NAME] [--image IMAGE] [--cpus N] [--memory MB] [--disk MB] [--timeout SECS]\n"
        "       [--entrypoint CMD [ARG...] --] [--expose PORT]... [--public] [--no-internet]\n"
        "       [--network-allow DEST]... [--network-deny DEST]... [--snapshot ID] [--no-wait]\n"
        "  Creates a sandbox (named when NAME is given), waits until it runs and prints its id.";
static const char ls_help[] =
        "hutch ls [--all|--running|--suspended|--archived] [--quiet] [--json]\n"
        "  Lists live sandboxes (--all includes terminated ones).";
static const char describe_help[] = "hutch describe ID|NAME [--json]";
static const char update_help[] =
        "hutch update ID|NAME [--name NEW] [--expose PORT]... [--unexpose-all] [--public|--private]\n"
        "       [--no-internet | --network-allow DEST... | --network-deny DEST... | --clear-network]";
static const char terminate_help[] = "hutch terminate ID|NAME...";
static const char suspend_help[] = "hutch suspend ID|NAME [--no-wait]   (named sandboxes only)";
static const char resume_help[] = "hutch resume ID|NAME [--no-wait]";
static const char exec_help[] =
        "hutch exec ID|NAME [--env K=V]... [--workdir DIR] [--timeout SECS] [--user USER]\n"
        "       [--detach [--name NAME]] [--] COMMAND [ARG...]\n"
        "  Runs COMMAND and streams its output; hutch exits with its exit code (128+N for signal\n"
        "  N). --detach starts it in the background and prints its pid.";
static const char run_help[] =
        "hutch run [--image IMAGE] [--keep] [exec options] -- COMMAND [ARG...]\n"
        "  Creates a sandbox, runs COMMAND in it (exit code follows), then terminates it, also\n"
        "  when anything fails or hutch is interrupted. --keep leaves a sandbox that started.";
static const char ps_help[] = "hutch ps ID|NAME [--json]";
static const char logs_help[] =
        "hutch logs ID|NAME PID|PROCESS_NAME [--follow] [--stdout|--stderr]";
static const char kill_help[] = "hutch kill ID|NAME PID|PROCESS_NAME [--signal N]";
static const char cp_help[] =
        "hutch cp SRC DST\n  One side is ID:/path in a sandbox, the other a local path (- for stdin/stdout).";
static const char key_help[] =
        "hutch key create [--name NAME] [--namespace NS] | key ls [--json] | key revoke ID";
static const char image_help[] =
        "hutch image ls [--json] | image build busybox|default | image import NAME FILE | image rm NAME\n"
        "  Manages the images of this host (HUTCH_DATA_DIR).";

static const struct cli_command commands[] = {
        {"create", cmd_create, "create a sandbox and wait until it runs", create_help, false},
        {"ls", cmd_ls, "list sandboxes (--all, --running, --suspended, --archived)", ls_help,
         false},
        {"describe", cmd_describe, "show one sandbox (alias: get, info)", describe_help, false},
        {"get", cmd_describe, NULL, describe_help, false},
        {"info", cmd_describe, NULL, describe_help, false},
        {"update", cmd_update, "rename, expose ports, change public access or network policy",
         update_help, false},
        {"terminate", cmd_terminate, "terminate sandboxes (alias: rm, stop)", terminate_help,
         false},
        {"rm", cmd_terminate, NULL, terminate_help, false},
        {"stop", cmd_terminate, NULL, terminate_help, false},
        {"suspend", cmd_suspend, "suspend a named sandbox", suspend_help, false},
        {"resume", cmd_resume, "resume a suspended sandbox", resume_help, false},
        {"exec", cmd_exec, "run a command in a sandbox (exit code follows it; --detach)", exec_help,
         true},
        {"run", cmd_run, "create a sandbox, run a command, tear it down (--keep)", run_help, true},
        {"pty", cmd_pty, "an interactive terminal in a sandbox (alias: ssh, shell)", cli_pty_help,
         true},
        {"ssh", cmd_pty, NULL, cli_pty_help, true},
        {"shell", cmd_pty, NULL, cli_pty_help, true},
        {"ps", cmd_ps, "list the processes of a sandbox", ps_help, false},
        {"logs", cmd_logs, "print (or --follow) a process's output", logs_help, false},
        {"kill", cmd_kill, "kill or signal a process", kill_help, false},
        {"cp", cmd_cp, "copy a file into or out of a sandbox (ID:/path)", cp_help, false},
        {"tunnel", cmd_tunnel, "forward a local TCP port to a port inside a sandbox",
         cli_tunnel_help, false},
        {"port", cmd_port, "expose, list or unexpose user ports: port expose|ls|rm", cli_port_help,
         false},
        {"snapshot", cmd_snapshot, "take, list or delete snapshots (alias: checkpoint)",
         cli_snapshot_help, false},
        {"checkpoint", cmd_snapshot, NULL, cli_snapshot_help, false},
        {"copy", cmd_copy, "live copies of a running sandbox (-n N)", cli_copy_help, false},
        {"clone", cmd_clone, "memory snapshot a sandbox and create a new one from it",
         cli_clone_help, false},
        {"pool", cmd_pool, "warm pools: pool create|ls|describe|update|rm|claim", cli_pool_help,
         false},
        {"key", cmd_key, "manage API keys: key create|ls|revoke", key_help, false},
        {"image", cmd_image, "manage images on this host: image ls|import|build|rm", image_help,
         false},
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
	             "admin key in $HUTCH_DATA_DIR/admin.key\nwhen readable and the API URL is a "
	             "loopback URL (127.0.0.0/8, [::1], localhost).\n`hutch COMMAND --help` "
	             "describes a command.\n");
}

/* The flags every command takes wherever they stand before "--": --help/-h prints the command's
 * help (true: done), --json is taken out of argv and sets cli.json. Commands that end in a remote
 * command line only look at their first argument. */
static bool command_flags(const struct cli_command *c, int *argc, char **argv)
{
	int last = c->raw_args ? (*argc > 1 ? 1 : 0) : *argc - 1;
	for (int j = 1; j <= last && j < *argc; j++) {
		if (strcmp(argv[j], "--") == 0)
			break;
		if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
			printf("usage: %s\n", c->help);
			if (c->summary)
				printf("\n%s.\n", c->summary);
			return true;
		}
		if (strcmp(argv[j], "--json") == 0) {
			cli.json = true;
			memmove(&argv[j], &argv[j + 1], (size_t)(*argc - j) * sizeof(char *));
			(*argc)--;
			last--;
			j--;
		}
	}
	return false;
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
	cli.data_dir = env_first("HUTCH_DATA_DIR", "HUTCH_DATA_DIR");
	if (!cli.data_dir)
		cli.data_dir = xstrdup("/var/lib/hutch");
	cli.api_key = env_first("HUTCH_API_KEY", "TENSORLAKE_API_KEY");
	if (cli.api_key)
		cli.key_source = CLI_KEY_GIVEN;
}

/* After the global options: trims the URL and, when no key was given, falls back to this host's
 * admin key, but only for a loopback API URL, so that it is never sent to another machine. */
static void configure_finish(void)
{
	size_t n = strlen(cli.api_url);
	while (n && cli.api_url[n - 1] == '/')
		cli.api_url[--n] = '\0';
	if (cli.api_key || !cli_url_is_loopback(cli.api_url))
		return;
	char *path = xasprintf("%s/admin.key", cli.data_dir);
	struct buf b = BUF_INIT;
	if (read_file(path, 4096, &b) == 0) {
		struct sv k = sv_trim(sv_make(b.data, b.len));
		if (k.len) {
			cli.api_key = sv_dup(k);
			cli.key_source = CLI_KEY_ADMIN_FILE;
		}
	}
	buf_release(&b);
	free(path);
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
			cli.key_source = CLI_KEY_GIVEN;
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
	configure_finish();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(commands[c].name, argv[i]) == 0) {
			int n = argc - i;
			if (command_flags(&commands[c], &n, argv + i))
				return 0;
			int rc = commands[c].run(n, argv + i);
			curl_global_cleanup();
			return rc;
		}
	}
	fprintf(stderr, "hutch: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
