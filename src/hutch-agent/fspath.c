/* Path checks for the files API. */
#include <errno.h>

#include "base/sv.h"
#include "fspath.h"

int fspath_check(const char *path)
{
	struct sv rest = sv_from(path), seg;
	if (rest.len == 0)
		return -EINVAL;
	while (rest.len) {
		sv_split(rest, '/', &seg, &rest);
		if (sv_eq_cstr(seg, ".."))
			return -EACCES;
	}
	return 0;
}
