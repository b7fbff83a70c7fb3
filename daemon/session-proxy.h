/*
 * A session's way out: its proxy listener with the policy's rules and a
 * random token, and the environment that points the worker's tools at it
 * (proxy variables with the token as credentials, a CA bundle that extends
 * the system roots with nonod's CA, route base URLs and phantom API keys).
 */
#ifndef DAEMON_SESSION_PROXY_H
#define DAEMON_SESSION_PROXY_H

#include "rpc.h"

struct session;
struct policy;

/* NULL-terminated "NAME=value" list; free with session_proxy_env_free. */
struct session_proxy_env {
	char **vars;
	size_t n;
};

/*
 * Hand listen_fd (taken, even on failure) to the proxy with the policy's
 * rules, write the CA files into the session's TMPDIR, and fill env.
 * Returns 0 or a negative NONO_E_* code with err filled.
 */
int session_proxy_start(struct session *s, const struct policy *p, int listen_fd,
			struct session_proxy_env *env, struct rpc_error *err);
void session_proxy_stop(struct session *s);
void session_proxy_env_free(struct session_proxy_env *env);

#endif
