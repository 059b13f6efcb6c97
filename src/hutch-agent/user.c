/* passwd/group parsing and user spec resolution. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/cleanup.h"
#include "base/sv.h"
#include "base/util.h"
#include "user.h"

#define DB_MAX (4 * 1024 * 1024)

/* Splits a colon-separated record into at most n fields; returns the count. */
static size_t fields(struct sv line, struct sv *f, size_t n)
{
	size_t k = 0;
	struct sv rest = line;
	while (k < n) {
		bool more = sv_split(rest, ':', &f[k], &rest);
		k++;
		if (!more)
			break;
	}
	return k;
}

static bool parse_id(struct sv s, unsigned *ret)
{
	uint64_t v;
	if (sv_to_u64(s, 0xfffffffeu, &v) < 0)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* Finds the passwd record whose name (by_name) or uid matches. */
static bool passwd_find(const struct buf *db, const char *name, unsigned uid, struct agent_user *u)
{
	struct sv rest = sv_make(db->data ? db->data : "", db->len), line, f[7];
	while (rest.len) {
		sv_split(rest, '\n', &line, &rest);
		if (fields(line, f, 7) < 7)
			continue;
		unsigned pu, pg;
		if (!parse_id(f[2], &pu) || !parse_id(f[3], &pg))
			continue;
		if (name ? !sv_eq_cstr(f[0], name) : pu != uid)
			continue;
		u->uid = pu;
		u->gid = pg;
		snprintf(u->name, sizeof(u->name), "%.*s", SV_FMT(f[0]));
		snprintf(u->home, sizeof(u->home), "%.*s", SV_FMT(f[5]));
		return true;
	}
	return false;
}

/* Finds a group by name (or number) and stores its gid. */
static bool group_find(const struct buf *db, const char *name, unsigned *ret_gid)
{
	struct sv rest = sv_make(db->data ? db->data : "", db->len), line, f[4];
	if (parse_id(sv_from(name), ret_gid))
		return true;
	while (rest.len) {
		sv_split(rest, '\n', &line, &rest);
		unsigned g;
		if (fields(line, f, 4) >= 3 && sv_eq_cstr(f[0], name) && parse_id(f[2], &g)) {
			*ret_gid = g;
			return true;
		}
	}
	return false;
}

static void add_group(struct agent_user *u, gid_t g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	if (u->ngroups < USER_MAX_GROUPS)
		u->groups[u->ngroups++] = g;
}

/* Supplementary groups: the primary one plus every group listing the user as a member. */
static void groups_collect(const struct buf *db, struct agent_user *u)
{
	struct sv rest = sv_make(db->data ? db->data : "", db->len), line, f[4], m, mrest;
	add_group(u, u->gid);
	if (!u->name[0])
		return;
	while (rest.len) {
		sv_split(rest, '\n', &line, &rest);
		unsigned g;
		if (fields(line, f, 4) < 4 || !parse_id(f[2], &g))
			continue;
		mrest = sv_trim(f[3]);
		while (mrest.len) {
			sv_split(mrest, ',', &m, &mrest);
			if (sv_eq_cstr(sv_trim(m), u->name))
				add_group(u, g);
		}
	}
}

int user_resolve(const char *spec, const char *passwd_path, const char *group_path,
                 struct agent_user *ret, struct hutch_error *err)
{
	struct buf pw = BUF_INIT, gr = BUF_INIT;
	struct agent_user u = {0};
	struct sv head, tail;
	int r = 0;

	bool has_group = sv_split(sv_from(spec), ':', &head, &tail);
	_cleanup_free_ char *uname = sv_dup(head);
	_cleanup_free_ char *gname = has_group ? sv_dup(tail) : NULL;
	if (!uname[0] || (has_group && !gname[0])) {
		r = hutch_error_set(err, -EINVAL, "invalid user \"%s\"", spec);
		goto out;
	}
	read_file(passwd_path, DB_MAX, &pw);
	read_file(group_path, DB_MAX, &gr);
	unsigned id;
	if (parse_id(sv_from(uname), &id)) {
		if (!passwd_find(&pw, NULL, id, &u)) {
			u.uid = id;
			u.gid = 0;
		}
	} else if (!passwd_find(&pw, uname, 0, &u)) {
		r = hutch_error_set(err, -ENOENT, "unknown user \"%s\"", uname);
		goto out;
	}
	if (gname) {
		unsigned g;
		if (!group_find(&gr, gname, &g)) {
			r = hutch_error_set(err, -ENOENT, "unknown group \"%s\"", gname);
			goto out;
		}
		u.gid = g;
		add_group(&u, g);
	} else {
		groups_collect(&gr, &u);
	}
	*ret = u;
out:
	buf_release(&pw);
	buf_release(&gr);
	return r;
}
