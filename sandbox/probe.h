/*
 * What kernel enforcement this host offers, probed once and cached.
 *
 * sandbox_probe() is thread-safe (pthread_once) and never fails: a feature
 * that cannot be determined is reported as absent. It may fork one
 * short-lived child (to try unshare()) that it reads back over a pipe, so it
 * never depends on waitpid() winning a race with a SIGCHLD handler.
 * The daemon puts sandbox_features_to_json() under "sandbox" in daemon.status.
 */
#ifndef SANDBOX_PROBE_H
#define SANDBOX_PROBE_H

#include <limits.h>
#include <stdbool.h>

struct json_object;

struct sandbox_features {
	/* Landlock */
	int landlock_abi;              /* 0: absent or disabled at boot */
	bool ll_fs;                    /* ABI >= 1 */
	bool ll_fs_refer;              /* ABI >= 2: link/rename across dirs */
	bool ll_fs_truncate;           /* ABI >= 3 */
	bool ll_net_tcp;               /* ABI >= 4: TCP bind/connect ports */
	bool ll_fs_ioctl_dev;          /* ABI >= 5 */
	bool ll_scope_abstract_unix;   /* ABI >= 6 */
	bool ll_scope_signal;          /* ABI >= 6 */

	/* seccomp / prctl */
	bool seccomp_filter;           /* SECCOMP_SET_MODE_FILTER + RET_ERRNO */
	bool no_new_privs;             /* PR_GET_NO_NEW_PRIVS works */

	/* namespaces (tried for real in a forked child) */
	bool cap_sys_admin;            /* in this process's effective set */
	bool userns_sysctl;            /* user.max_user_namespaces > 0 and
					  kernel.unprivileged_userns_clone != 0 */
	bool netns;                    /* unshare(CLONE_NEWNET) worked */
	bool mountns;                  /* unshare(CLONE_NEWNS) worked */
	bool ns_via_userns;            /* ...only inside a new user namespace */

	/* cgroup v2 */
	bool cgroup2;                  /* a cgroup2 mount was found */
	char cgroup2_mount[64];        /* "/sys/fs/cgroup" or ".../unified" */
	char cgroup2_dir[PATH_MAX];    /* this process's cgroup directory */
	bool cgroup2_writable;         /* we may create children there */
	bool cg_memory, cg_pids, cg_cpu; /* controllers available in it */

	/* process handles */
	bool so_peerpidfd;
	bool pidfd_open;
	bool clone_into_cgroup;
};

/* Borrowed pointer to the cached result; valid for the process lifetime. */
const struct sandbox_features *sandbox_probe(void);

/* Probe again, uncached, into *out (tests; after privilege changes). */
void sandbox_probe_fill(struct sandbox_features *out);

/* New json-c object (caller owns one reference); NULL on allocation failure. */
struct json_object *sandbox_features_to_json(const struct sandbox_features *f);

#endif
