/* Unit tests for lib/store on a temporary SQLite file. */
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

int main(void)
{
	char dir[] = "/tmp/hutch-store-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *path = xasprintf("%s/hutch.db", dir);
	struct hutch_error err = HUTCH_ERROR_INIT;
	struct store *s;

	CHECK(store_open_sqlite(path, &s, &err) == 0);
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

	/* durability: reopen and find everything, migrations are idempotent */
	store_close(s);
	CHECK(store_open_sqlite(path, &s, &err) == 0 && store_schema_version(s) == 6);
	CHECK(store_sandbox_get(s, "default", "web", 0, &g, &err) == 0);
	sandbox_rec_release(&g);
	int64_t live = 0;
	CHECK(store_sandbox_count_live(s, "pg", &live, &err) == 0 && live == 25);
	store_close(s);

	sandbox_rec_release(&a);
	sandbox_rec_release(&b);
	sandbox_rec_release(&c);
	rm_rf(dir);
	free(path);
	T_DONE();
}
