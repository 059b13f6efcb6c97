/* libFuzzer target: sandbox create and update bodies, network policy entries and the request
 * router with namespaced paths, as the api sees them from outside. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apimodel/apimodel.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apimodel_limits lim;
	struct hutch_error err = HUTCH_ERROR_INIT;
	apimodel_limits_defaults(&lim);

	struct create_req c;
	if (create_req_parse((const char *)data, size, &lim, &c, &err) == 0)
		create_req_release(&c);
	struct update_req u;
	if (update_req_parse((const char *)data, size, &u, &err) == 0)
		update_req_release(&u);
	struct netpol_entry e;
	netpol_entry_parse((const char *)data, size, &e, &err);
	apimodel_name_valid((const char *)data, size, NULL);

	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t at;
	char id[32];
	store_cursor_decode(s, &at, id, sizeof(id));
	apimodel_image_valid(s, strlen(s));
	free(s);
	return 0;
}
