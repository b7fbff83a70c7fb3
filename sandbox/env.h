/*
 * Environment for a sandboxed worker: only what the spec passes or sets.
 * See struct sandbox_env_spec in sandbox.h for the pass/set semantics.
 */
#ifndef SANDBOX_ENV_H
#define SANDBOX_ENV_H

#include "sandbox.h"

#include <stdbool.h>
#include <stddef.h>

/* Upper bounds on what a spec may produce. */
#define SANDBOX_ENV_MAX_VARS 4096
#define SANDBOX_ENV_MAX_BYTES (1024 * 1024)

/*
 * Builds a NULL-terminated "NAME=value" array. *envp_out is owned by the
 * caller (sandbox_env_free). Returns -EINVAL for an invalid name or pair
 * (errbuf names it), -E2BIG beyond the bounds above, -ENOMEM.
 */
int sandbox_env_build(const struct sandbox_env_spec *spec, char ***envp_out,
		      char *errbuf, size_t errlen);

void sandbox_env_free(char **envp);

/* True for names a pattern never matches: loader/interpreter start-up hooks
 * and agent/service-manager sockets (the list and its reasons: env.c). */
bool sandbox_env_is_hook(const char *name, size_t namelen);

/* A portable variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool sandbox_env_name_valid(const char *name, size_t namelen);

#endif
