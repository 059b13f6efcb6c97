/* Resolving the user a process runs as: "name", "uid", "uid:gid", "name:group" (or the JSON
 * object forms, turned into these by the caller) against /etc/passwd and /etc/group, parsed here
 * because the agent is a static binary without NSS. Pure code, unit-tested. */
#ifndef HUTCH_AGENT_USER_H
#define HUTCH_AGENT_USER_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

#define USER_MAX_GROUPS 64

struct agent_user {
	uid_t uid;
	gid_t gid;
	gid_t groups[USER_MAX_GROUPS]; /* supplementary groups (includes gid) */
	size_t ngroups;
	char home[256]; /* "" when unknown */
	char name[64];  /* "" when unknown */
};

/* Resolves spec using the passwd and group files at the given paths (missing files count as
 * empty). A numeric uid without a passwd entry gets gid 0, as in Docker. Returns 0, or -EINVAL
 * (malformed spec) / -ENOENT (unknown user or group) with err set to a 400-worthy message. */
int user_resolve(const char *spec, const char *passwd_path, const char *group_path,
                 struct agent_user *ret, struct hutch_error *err);

#endif
