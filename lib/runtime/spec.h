/* Spec validation and the agent's environment (spec.c). */
#ifndef HUTCH_RUNTIME_SPEC_H
#define HUTCH_RUNTIME_SPEC_H

#include "base/error.h"
#include "runtime/runtime.h"

/* Checks spec against the runtime's limits: -EINVAL (or -ENOTSUP) with a message. */
int rt_spec_validate(const struct rt_config *cfg, const struct rt_spec *spec,
                     struct hutch_error *err);
/* The agent's environment: HUTCH_*, HOSTNAME, PATH and HOME defaults, then spec->env.
 * Free with rt_strv_free. */
char **rt_spec_envp(const struct rt_spec *spec);
void rt_strv_free(char **v);

#endif
