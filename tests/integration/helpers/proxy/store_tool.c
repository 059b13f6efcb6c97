/* Test helper for the proxy's integration tests: creates a hutch store with the project's own
 * store code and manipulates keys and sandbox rows the way the api and executor would.
 *
 *   store_tool DB init
 *   store_tool DB key NS                      prints a new API key of NS
 *   store_tool DB put ID NS NAME STATUS SOCKET IP PORTS ALLOW EXECUTOR   ("-" = NULL)
 *   store_tool DB set ID FIELD VALUE          status, name, agent_socket, ip, exposed_ports,
 *                                             allow_unauth, executor_id, archived ("-" = NULL)
 *   store_tool DB get ID FIELD                prints status or last_activity_at */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/util.h"
#include "store/store.h"

static const char *opt(const char *s)
{
	return strcmp(s, "-") == 0 ? NULL : s;
}

static int put(struct store *s, char **a, struct hutch_error *err)
{
	struct sandbox_rec r = {0};
	int64_t now = time_now_ms();
	rec_set(&r.id, a[0]);
	rec_set(&r.ns, a[1]);
	rec_set(&r.name, opt(a[2]));
	rec_set(&r.status, a[3]);
	rec_set(&r.desired, "running");
	rec_set(&r.agent_socket, opt(a[4]));
	rec_set(&r.ip, opt(a[5]));
	rec_set(&r.exposed_ports, opt(a[6]));
	r.allow_unauth = strcmp(a[7], "1") == 0;
	rec_set(&r.executor_id, opt(a[8]));
	r.cpus = 1;
	r.memory_mb = 512;
	r.disk_mb = 1024;
	r.timeout_secs = 600;
	r.created_at = r.updated_at = now;
	int rc = store_sandbox_insert(s, &r, err);
	sandbox_rec_release(&r);
	return rc;
}

static int set(struct store *s, const char *id, const char *field, const char *value,
               struct hutch_error *err)
{
	struct sandbox_rec r = {0};
	int rc = store_sandbox_get_id(s, id, &r, err);
	if (rc < 0)
		return rc;
	if (strcmp(field, "status") == 0)
		rec_set(&r.status, value);
	else if (strcmp(field, "name") == 0)
		rec_set(&r.name, opt(value));
	else if (strcmp(field, "agent_socket") == 0)
		rec_set(&r.agent_socket, opt(value));
	else if (strcmp(field, "ip") == 0)
		rec_set(&r.ip, opt(value));
	else if (strcmp(field, "exposed_ports") == 0)
		rec_set(&r.exposed_ports, opt(value));
	else if (strcmp(field, "allow_unauth") == 0)
		r.allow_unauth = strcmp(value, "1") == 0;
	else if (strcmp(field, "executor_id") == 0)
		rec_set(&r.executor_id, opt(value));
	else if (strcmp(field, "archived") == 0)
		r.archived_at = strcmp(value, "1") == 0 ? time_now_ms() : 0;
	else
		rc = hutch_error_set(err, -EINVAL, "unknown field %s", field);
	r.updated_at = time_now_ms();
	if (rc == 0)
		rc = store_sandbox_update(s, &r, err);
	sandbox_rec_release(&r);
	return rc;
}

static int get(struct store *s, const char *id, const char *field, struct hutch_error *err)
{
	struct sandbox_rec r = {0};
	int rc = store_sandbox_get_id(s, id, &r, err);
	if (rc < 0)
		return rc;
	if (strcmp(field, "last_activity_at") == 0)
		printf("%lld\n", (long long)r.last_activity_at);
	else
		printf("%s\n", r.status);
	sandbox_rec_release(&r);
	return 0;
}

int main(int argc, char **argv)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct store *s = NULL;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: store_tool DB init|key|put|set|get ...\n");
		return 2;
	}
	/* Opening retries: a failed migration is rolled back and the next open goes on from there
	 * (works around lib/store caching migration statements by the address of a freed copy,
	 * which can re-run an earlier statement; reported to the store's owner). */
	for (int attempt = 0; store_open_sqlite(argv[1], &s, &err) < 0; attempt++) {
		if (attempt == 20) {
			fprintf(stderr, "store_tool: %s\n", err.msg);
			return 1;
		}
	}
	const char *cmd = argv[2];
	if (strcmp(cmd, "init") == 0) {
		rc = 0;
	} else if (strcmp(cmd, "key") == 0 && argc == 4) {
		struct buf key = BUF_INIT;
		rc = auth_key_create(s, argv[3], "test", false, &key, NULL, &err);
		if (rc == 0)
			printf("%s\n", buf_cstr(&key));
		buf_release(&key);
	} else if (strcmp(cmd, "put") == 0 && argc == 12) {
		rc = put(s, argv + 3, &err);
	} else if (strcmp(cmd, "set") == 0 && argc == 6) {
		rc = set(s, argv[3], argv[4], argv[5], &err);
	} else if (strcmp(cmd, "get") == 0 && argc == 5) {
		rc = get(s, argv[3], argv[4], &err);
	} else {
		rc = hutch_error_set(&err, -EINVAL, "bad command or argument count");
	}
	if (rc < 0)
		fprintf(stderr, "store_tool: %s\n", err.msg);
	store_close(s);
	return rc < 0 ? 1 : 0;
}
