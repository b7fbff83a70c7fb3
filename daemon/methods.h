/* Every namespace's method table; rpc.c lists them in rpc_method_tables. */
#ifndef DAEMON_METHODS_H
#define DAEMON_METHODS_H

#include "rpc.h"

extern const struct method daemon_methods[];
extern const struct method secret_methods[];

/* daemon.status's "vault" member (method-secret.c). */
struct json_object *secret_status_json(const char *open_error);
extern const struct method session_methods[];
extern const struct method policy_methods[];
extern const struct method audit_methods[];
extern const struct method snapshot_methods[];

#endif
