/* Checks on paths given to the files API. Pure code, unit-tested. */
#ifndef HUTCH_AGENT_FSPATH_H
#define HUTCH_AGENT_FSPATH_H

/* Returns 0 when path may be used: non-empty, no NUL, and no ".." component. -EINVAL for an empty
 * path, -EACCES (answer 403 PATH_TRAVERSAL) for a ".." component. Relative paths are allowed
 * (they resolve against the agent's working directory). */
int fspath_check(const char *path);

#endif
