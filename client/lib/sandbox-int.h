/* libnono internals of the in-process sandbox (policy.c, sandbox.c). */
#ifndef CLIENT_LIB_SANDBOX_INT_H
#define CLIENT_LIB_SANDBOX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "nono.h"

struct json_object;
struct policy_error;

#define NONO_POLICY_MAX_PORTS 64

struct nono_policy {
	struct json_object *doc;   /* the policy document; owned */
	uint16_t ports[NONO_POLICY_MAX_PORTS]; /* nono_policy_allow_tcp_port */
	size_t nports;
};

/* A policy_invalid nono_error (field = the key path) for a policy library
 * failure rc; never NULL. */
nono_error *error_from_policy(const struct policy_error *pe, int rc);

#endif
