/*
 * The bridge from the policy model (proto/policy) to the kernel
 * enforcement spec (sandbox.h): the one place that maps a validated,
 * resolved policy to filesystem rules, environment pass/set lists,
 * rlimits and best-effort mode. Used by nonod's session spawn and by
 * libnono's in-process nono_sandbox_apply().
 *
 * Not mapped here (the caller's job): network mode and ports (the daemon
 * knows its proxy; libnono has none), credentials, env.from, cwd,
 * netns_fd, readonly_mounts, and limits.wall (a timer, not a kernel limit).
 */
#ifndef SANDBOX_FROM_POLICY_H
#define SANDBOX_FROM_POLICY_H

#include <stddef.h>

#include "policy.h"
#include "sandbox.h"

/* Arrays a spec points into. Owned by the buf; free with
 * sandbox_spec_buf_free(). Strings in paths[] and pass[] are borrowed
 * from the policy (or static), so the policy must outlive the spec;
 * set[] strings are owned by the buf. */
struct sandbox_spec_buf {
	struct sandbox_path_rule *paths;
	size_t npaths;
	const char **pass;
	size_t npass;
	char **set;
	size_t nset;
};

/* Passed when a policy's env.pass names nothing. */
extern const char *const sandbox_default_env_pass[];
extern const size_t sandbox_default_env_pass_len;

/*
 * Fill buf and spec from p, which must be resolved (policy_resolve), and
 * normally base-merged. spec is zeroed first, then: paths (POLICY_FS_DENY
 * -> SANDBOX_DENY, WRITE -> SANDBOX_WRITE, READ -> SANDBOX_READ, optional
 * -> SANDBOX_PATH_OPTIONAL), env.pass (the policy's names or the default
 * list), env.set ("NAME=value" from env.set), limits (memory -> as, pids ->
 * nproc, files -> nofile, cpu -> cpu), best_effort; net = NONE and
 * netns_fd = -1. buf must be zeroed or freed before. Returns 0, -EINVAL
 * (p is NULL or not resolved), or -ENOMEM (buf is then freed).
 */
int sandbox_spec_from_policy(const struct policy *p, struct sandbox_spec_buf *buf,
			     struct sandbox_spec *spec);

/*
 * Append "NAME=value" to the spec's env.set (after the policy's, so it
 * wins), e.g. TMPDIR or proxy variables; updates spec->env. 0 or -ENOMEM.
 */
int sandbox_spec_buf_setenv(struct sandbox_spec_buf *buf, struct sandbox_spec *spec,
			    const char *name, const char *value);

/*
 * Append a path rule the caller adds beside the policy's (the session's own
 * TMPDIR, nonod's files to deny); path is borrowed. 0 or -ENOMEM.
 */
int sandbox_spec_buf_add_path(struct sandbox_spec_buf *buf, struct sandbox_spec *spec,
			      const char *path, enum sandbox_access access, unsigned int flags);

/* Free what buf owns and zero it; NULL is a no-op. */
void sandbox_spec_buf_free(struct sandbox_spec_buf *buf);

#endif
