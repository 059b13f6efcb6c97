/* Capabilities: the sandbox keeps Docker's default set in its bounding, effective, permitted
 * and inheritable sets (all relative to its own user namespace) and nothing in ambient. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "runtime/internal.h"

static const int default_caps[] = {
        CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
        CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
        CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_KILL,    CAP_AUDIT_WRITE,
};

uint64_t rt_caps_default_mask(void)
{
	uint64_t m = 0;

	for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
		m |= 1ull << default_caps[i];
	return m;
}

int rt_caps_last(void)
{
	char buf[16];

	if (rt_read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) <= 0)
		return CAP_LAST_CAP;
	int n = atoi(buf);
	return n > 0 && n < 64 ? n : CAP_LAST_CAP;
}

int rt_caps_apply(uint64_t mask, int last_cap)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	for (int cap = 0; cap <= last_cap; cap++) {
		if (mask & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(mask >> (32 * i));
		data[i].effective = v;
		data[i].permitted = v;
		data[i].inheritable = v;
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}
