/* Unit tests for lib/store on a temporary SQLite file, and the same checks on PostgreSQL when
 * HUTCH_TEST_PG_URL names an empty database (tests/unit/store-pg.sh starts a throwaway one). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "t.h"

static void make_sb(struct sandbox_rec *r, const char *ns, const char *name, int64_t at)
{
	char id[22];
	memset(r, 0, sizeof(*r));
	id_generate(id);
	rec_set(&r->id, id);
	rec_set(&r->ns, ns);
	rec_set(&r->name, name);
	r->cpus = 1.0;
	r->memory_mb = 1024;
	r->disk_mb = 10240;
	r->timeout_secs = 600;
	rec_set(&r->status, "pending");
	rec_set(&r->desired, "running");
	r->created_at = at;
	r->updated_at = at;
}

static int count_keys(const struct key_rec *k, void *d)
{
	(*(int *)d)++;
	return 0;
}

/* Every check, on the store spec names (a SQLite path or a PostgreSQL URL to an empty
 * database). */
static void store_checks(const char *path)
{
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct store *s;

	CHECK(store_open(path, &s, &err) == 0);
	if (err.code)
		fprintf(stderr, "store_open: %s\n", err.msg);
	CHECK(store_schema_version(s) == 6);

	/* keys */
	struct key_rec k = {
	        .id = "k1", .ns = "default", .name = "admin", .hash = "ab", .created_at = 1};
	CHECK(store_key_insert(s, &k, &err) == 0);
	CHECK(store_key_insert(s, &k, &err) == -EEXIST);
	struct key_rec got;
	CHECK(store_key_get(s, "k1", &got, &err) == 0 && strcmp(got.ns, "default") == 0);
	key_rec_release(&got);
	CHECK(store_key_get(s, "nope", &got, &err) == -ENOENT);
	CHECK(store_key_revoke(s, "other", "k1", 5, true, &err) == -ENOENT);
	CHECK(store_key_revoke(s, "default", "k1", 5, true, &err) == 0);
	CHECK(store_key_revoke(s, "default", "k1", 6, true, &err) == -ENOENT);
	struct key_rec adm = {.id = "k2",
	                      .ns = "default",
	                      .name = "root",
	                      .hash = "cd",
	                      .created_at = 1,
	                      .admin = true};
	CHECK(store_key_insert(s, &adm, &err) == 0);
	CHECK(store_key_revoke(s, "default", "k2", 7, false, &err) == -ENOENT);
	CHECK(store_key_revoke(s, "default", "k2", 7, true, &err) == 0);
	int n = 0;
	CHECK(store_key_list(s, "default", count_keys, &n, &err) == 0 && n == 2);

	/* names are unique among live sandboxes of a namespace */
	struct sandbox_rec a, b, c;
	make_sb(&a, "default", "web", 100);
	make_sb(&b, "default", "web", 101);
	make_sb(&c, "other", "web", 102);
	CHECK(store_sandbox_insert(s, &a, &err) == 0);
	CHECK(store_sandbox_insert(s, &b, &err) == -EBUSY && err.status == 409);
	CHECK(store_sandbox_insert(s, &c, &err) == 0);
	struct sandbox_rec g;
	CHECK(store_sandbox_get(s, "default", "web", 0, &g, &err) == 0 && strcmp(g.id, a.id) == 0);
	sandbox_rec_release(&g);
	CHECK(store_sandbox_get(s, "default", c.id, 0, &g, &err) == -ENOENT && err.status == 404);
	CHECK(store_sandbox_get_name_any(s, "web", &g, &err) < 0); /* ambiguous */
	/* terminating frees the name */
	rec_set(&a.status, "terminated");
	a.terminated_at = 200;
	CHECK(store_sandbox_update(s, &a, &err) == 0);
	CHECK(store_sandbox_insert(s, &b, &err) == 0);
	CHECK(store_sandbox_get(s, "default", "web", 0, &g, &err) == 0 && strcmp(g.id, b.id) == 0);
	sandbox_rec_release(&g);
	CHECK(store_sandbox_get(s, "default", a.id, 0, &g, &err) == 0);
	sandbox_rec_release(&g);

	/* pagination: 25 more sandboxes, pages of 10, forward then backward */
	for (int i = 0; i < 25; i++) {
		struct sandbox_rec r;
		make_sb(&r, "pg", NULL,
		        1000 + i / 2); /* equal timestamps exercise the id tiebreak */
		CHECK(store_sandbox_insert(s, &r, &err) == 0);
		sandbox_rec_release(&r);
	}
	struct sandbox_page pg = {.ns = "pg", .limit = 10};
	char seen[30][22];
	int total = 0;
	for (int page = 0; page < 5; page++) {
		CHECK(store_sandbox_list(s, &pg, &err) == 0);
		for (size_t i = 0; i < pg.n; i++) {
			for (int j = 0; j < total; j++)
				CHECK(strcmp(seen[j], pg.items[i].id) != 0);
			snprintf(seen[total++], 22, "%s", pg.items[i].id);
			if (i > 0)
				CHECK(pg.items[i - 1].created_at >= pg.items[i].created_at);
		}
		bool more = pg.has_more;
		static char cid[32];
		if (pg.n) {
			pg.has_cursor = true;
			pg.cursor_created_at = pg.items[pg.n - 1].created_at;
			snprintf(cid, sizeof(cid), "%s", pg.items[pg.n - 1].id);
			pg.cursor_id = cid;
		}
		store_sandbox_page_release(&pg);
		if (!more)
			break;
	}
	CHECK(total == 25);
	/* backward from the last item returns the 10 before it, newest first */
	pg.backward = true;
	CHECK(store_sandbox_list(s, &pg, &err) == 0 && pg.n == 10 && pg.has_more);
	CHECK(strcmp(pg.items[9].id, seen[23]) == 0 && strcmp(pg.items[0].id, seen[14]) == 0);
	store_sandbox_page_release(&pg);
	/* status filter */
	struct sandbox_page f = {.ns = "default", .limit = 100, .status = "terminated"};
	CHECK(store_sandbox_list(s, &f, &err) == 0 && f.n == 1);
	store_sandbox_page_release(&f);

	/* archive moves terminated sandboxes out of the listing */
	int64_t moved = 0;
	CHECK(store_sandbox_archive(s, 300, 400, &moved, &err) == 0 && moved == 1);
	CHECK(store_sandbox_get(s, "default", a.id, 0, &g, &err) == -ENOENT);
	CHECK(store_sandbox_get(s, "default", a.id, 1, &g, &err) == 0 && g.archived_at == 400);
	sandbox_rec_release(&g);

	/* cursor encoding */
	struct buf cur = BUF_INIT;
	store_cursor_encode(1234, a.id, &cur);
	int64_t at;
	char cid[32];
	CHECK(store_cursor_decode(buf_cstr(&cur), &at, cid, sizeof(cid)) == 0 && at == 1234 &&
	      strcmp(cid, a.id) == 0);
	CHECK(store_cursor_decode("garbage!", &at, cid, sizeof(cid)) < 0);
	CHECK(store_cursor_decode("MTIzNDphYmM", &at, cid, sizeof(cid)) < 0); /* "1234:abc" */
	buf_release(&cur);

	/* 64-bit integers and doubles survive (PostgreSQL's INTEGER and REAL would not) */
	struct sandbox_rec wide;
	make_sb(&wide, "wide", NULL, INT64_C(1) << 42);
	wide.cpus = 0.1;
	wide.memory_mb = INT64_C(5000000000);
	CHECK(store_sandbox_insert(s, &wide, &err) == 0);
	CHECK(store_sandbox_get_id(s, wide.id, &g, &err) == 0 && g.created_at == INT64_C(1) << 42 &&
	      g.memory_mb == INT64_C(5000000000) && g.cpus == 0.1 && g.name == NULL &&
	      g.entrypoint == NULL);
	sandbox_rec_release(&g);
	sandbox_rec_release(&wide);

	/* transactions: a rollback leaves nothing behind, a commit keeps it */
	struct key_rec tk = {.id = "tx", .ns = "t", .hash = "00", .created_at = 1};
	CHECK(store_begin(s, &err) == 0 && store_key_insert(s, &tk, &err) == 0);
	store_rollback(s);
	CHECK(store_key_get(s, "tx", &got, &err) == -ENOENT);
	CHECK(store_begin(s, &err) == 0 && store_key_insert(s, &tk, &err) == 0 &&
	      store_commit(s, &err) == 0);
	CHECK(store_key_get(s, "tx", &got, &err) == 0);
	key_rec_release(&got);

	/* a second connection opened at the same time sees every commit; a shared store tells
	 * the watchers of other connections (not the writer's own) */
	struct store *s2 = NULL, *ro = NULL;
	struct store_watch *w = NULL;
	CHECK(store_open(path, &s2, &err) == 0);
	CHECK(store_open_readonly(path, &ro, &err) == 0);
	int wr = store_watch_open(s, path, &w, &err);
	if (store_spec_is_postgres(path)) {
		CHECK(wr == 0 && store_watch_fd(w) >= 0 && store_watch_drain(w) == 0);
		CHECK(store_sandbox_touch(s, b.id, 5000, &err) == 0);
		usleep(100 * 1000);
		CHECK(store_watch_drain(w) == 0); /* our own write */
		CHECK(store_sandbox_touch(s2, b.id, 6000, &err) == 0);
		int seen_other = 0;
		for (int i = 0; i < 50 && seen_other == 0; i++, usleep(20 * 1000))
			seen_other = store_watch_drain(w);
		CHECK(seen_other > 0);
	} else {
		CHECK(wr == -EOPNOTSUPP);
		CHECK(store_sandbox_touch(s2, b.id, 6000, &err) == 0);
	}
	CHECK(store_sandbox_get_id(ro, b.id, &g, &err) == 0 && g.last_activity_at == 6000);
	sandbox_rec_release(&g);
	CHECK(store_key_insert(ro, &tk, &err) < 0); /* read-only */
	store_watch_free(w);
	store_close(ro);
	store_close(s2);

	/* durability: reopen and find everything, migrations are idempotent */
	store_close(s);
	CHECK(store_open(path, &s, &err) == 0 && store_schema_version(s) == 6);
	CHECK(store_sandbox_get(s, "default", "web", 0, &g, &err) == 0);
	sandbox_rec_release(&g);
	int64_t live = 0;
	CHECK(store_sandbox_count_live(s, "pg", &live, &err) == 0 && live == 25);
	store_close(s);

	sandbox_rec_release(&a);
	sandbox_rec_release(&b);
	sandbox_rec_release(&c);
}

/* PostgreSQL-only pieces: DDL widening, password redaction, errors naming the store. */
static void pg_checks(const char *url)
{
	struct buf t = BUF_INIT;
	db_pg_translate("CREATE TABLE x (a INTEGER, b real, c TEXT DEFAULT 'INTEGER', "
	                "integer_col INTEGER)",
	                &t);
	CHECK_STR(buf_cstr(&t), "CREATE TABLE x (a BIGINT, b DOUBLE PRECISION, c TEXT DEFAULT "
	                        "'INTEGER', integer_col BIGINT)");
	buf_reset(&t);
	store_spec_display("postgresql://u:s3cret@db.local:5/h?password=s3cret&x=1", &t);
	CHECK_STR(buf_cstr(&t), "postgresql://u:***@db.local:5/h?password=***&x=1");
	buf_reset(&t);
	store_spec_display("/var/lib/hutch/hutch.db", &t);
	CHECK_STR(buf_cstr(&t), "/var/lib/hutch/hutch.db");
	buf_release(&t);
	CHECK(store_spec_is_postgres("postgres://x") && store_spec_is_postgres("postgresql://x") &&
	      !store_spec_is_postgres("/tmp/postgres://x"));

	/* a database that does not exist: the message names the store, never the password */
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct store *s = NULL;
	struct buf bad = BUF_INIT;
	const char *q = strchr(url, '?');
	buf_printf(&bad, "postgresql://postgres:s3cret@/hutch_no_such_db%s", q ? q : "");
	CHECK(store_open(buf_cstr(&bad), &s, &err) < 0);
	CHECK(strstr(err.msg, "hutch_no_such_db") != NULL && strstr(err.msg, "s3cret") == NULL);
	buf_release(&bad);

	store_checks(url);

	/* a connection the server dropped is reopened before the next statement (its prepared
	 * statements with it); the statement that met the loss fails */
	struct store *s2 = NULL;
	int64_t n = 0;
	CHECK(store_open(url, &s, &err) == 0 && store_open(url, &s2, &err) == 0);
	CHECK(store_key_count(s, &n, &err) == 0 && n > 0);
	struct db_value pid[] = {DB_I(db_pg_backend_pid(s->db))};
	CHECK(pid[0].i > 0 &&
	      db_exec(s2->db, "SELECT pg_terminate_backend($1::int)", pid, 1, NULL, &err) == 0);
	usleep(100 * 1000);
	n = 0;
	store_key_count(s, &n, &err);
	CHECK(store_key_count(s, &n, &err) == 0 && n > 0);
	CHECK(db_pg_backend_pid(s->db) != pid[0].i);
	store_close(s2);
	store_close(s);
}

int main(void)
{
	char dir[] = "/tmp/hutch-store-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *path = xasprintf("%s/hutch.db", dir);
	store_checks(path);
	rm_rf(dir);
	free(path);

	const char *url = getenv("HUTCH_TEST_PG_URL");
	if (url && url[0])
		pg_checks(url);
	T_DONE();
}
