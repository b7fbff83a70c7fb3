/*
 * Per-session cgroup v2 directories: membership (so the whole tree can be
 * killed with cgroup.kill), and memory/pids limits where those controllers
 * are delegated to us. Without a writable cgroup v2 tree every function
 * reports -ENOTSUP and sessions fall back to rlimits and /proc walks.
 */
#ifndef DAEMON_SESSION_CGROUP_H
#define DAEMON_SESSION_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

/* Find or make nonod's session subtree and enable what controllers we can. */
void session_cgroup_init(void);
bool session_cgroup_available(void);
bool session_cgroup_has(const char *controller); /* "memory", "pids" */

/*
 * Give a session a cgroup (new, or an empty one from the pool) with limits
 * (0 = none). On success *path is malloc'd and *dirfd is an O_PATH
 * directory fd for CLONE_INTO_CGROUP. id is for logs only.
 */
int session_cgroup_create(const char *id, uint64_t memory_bytes, uint64_t pids,
			  char **path, int *dirfd);
/* Kill everything in it; 0 when it was already empty, 1 when it killed. */
int session_cgroup_kill(const char *path);
int session_cgroup_signal(const char *path, int sig);
void session_cgroup_remove(const char *path);
/* Done with a session's cgroup (path is taken): pooled for reuse when empty. */
void session_cgroup_release(char *path, bool reusable);
void session_cgroup_fini(void);

#endif
