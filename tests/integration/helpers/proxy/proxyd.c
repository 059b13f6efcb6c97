/* Test helper: runs hutchd's proxy role in the foreground exactly as `hutchd --roles proxy`
 * would (same option table, same node token, same proxy_main), without the supervisor. Used
 * when build/bin/hutchd is not available. */
#include <stdio.h>

#include "base/log.h"
#include "config.h"

int main(int argc, char **argv)
{
	struct hutchd_config cfg;
	struct hutch_error err = HUTCH_ERROR_INIT;

	log_init("proxyd");
	if (hutchd_config_load(&cfg, argc, argv, &err) < 0 ||
	    hutchd_node_token_load(&cfg, false, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	log_set_level((enum log_level)log_level_parse(cfg.log_level));
	int rc = proxy_main(&cfg);
	hutchd_config_release(&cfg);
	return rc;
}
