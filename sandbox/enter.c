/*
 * sandbox_enter(): applied in the forked child between fork() and execve().
 * Only raw syscalls (async-signal-safe): no allocation, no stdio, no locks.
 * Order: setns and read-only mounts (need CAP_SYS_ADMIN, so first), rlimits, credentials,
 * capabilities, no_new_privs, Landlock, seccomp; then each is verified.
 * Raw syscalls change only the calling thread, which is the whole process
 * right after fork(); libnono's in-process use is per-thread.
 */
#include "internal.h"
#include "landlock-abi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

const char *sandbox_step_name(enum sandbox_step step)
{
	switch (step) {
	case SANDBOX_STEP_NONE: return "none";
	case SANDBOX_STEP_SETNS: return "setns";
	case SANDBOX_STEP_MOUNTS: return "read-only mounts";
	case SANDBOX_STEP_RLIMIT: return "setrlimit";
	case SANDBOX_STEP_CREDS: return "credentials";
	case SANDBOX_STEP_CAPS: return "capabilities";
	case SANDBOX_STEP_NO_NEW_PRIVS: return "no_new_privs";
	case SANDBOX_STEP_LANDLOCK: return "landlock_restrict_self";
	case SANDBOX_STEP_SECCOMP: return "seccomp";
	case SANDBOX_STEP_VERIFY: return "verify";
	case SANDBOX_STEP_CHDIR: return "chdir";
	}
	return "unknown";
}

static int enter_creds(const struct sandbox_compiled *c)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (syscall(SYS_setgroups, c->ngroups, c->groups) != 0 ||
	    syscall(SYS_setresgid, c->gid, c->gid, c->gid) != 0 ||
	    syscall(SYS_setresuid, c->uid, c->uid, c->uid) != 0)
		return -errno;
	if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0)
		return -errno;
	if (r != c->uid || e != c->uid || s != c->uid || rg != c->gid || eg != c->gid ||
	    sg != c->gid)
		return -EPERM;
	/* Root must not be regainable. */
	if (c->uid != 0 && syscall(SYS_setresuid, 0, 0, 0) == 0)
		return -EPERM;
	return 0;
}

static bool enter_has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) != 0)
		return true;  /* unknown: assume the worst */
	return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0;
}

/*
 * Empty the bounding set while we still hold CAP_SETPCAP: once the
 * credentials change to an ordinary uid that capability is gone, and the
 * bounding set would stay full for the worker's lifetime.
 */
static int enter_drop_bounding(void)
{
	if (!enter_has_cap(CAP_SETPCAP))
		return 0;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -errno;
	return 0;
}

static int enter_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (enter_has_cap(CAP_SETPCAP)) {
		/* Still root (no credential drop): make root powerless for
		 * good, so no later execve() can hand capabilities back. */
		if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
			  SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
			  SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) != 0)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return -errno;
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -errno;
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -errno;
	if (data[0].effective | data[0].permitted | data[0].inheritable |
	    data[1].effective | data[1].permitted | data[1].inheritable)
		return -EPERM;
	return 0;
}

static int enter_verify(const struct sandbox_compiled *c)
{
	int fd;

	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return -EPERM;
	if (c->prog.len && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return -EPERM;
	if (!sandbox_mounts_verify(c))
		return -EPERM;
	if (c->ruleset_fd >= 0 && c->verify_fd >= 0) {
		fd = openat(c->verify_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return -EPERM;  /* Landlock is not in force */
		}
		if (errno != EACCES)
			return -errno;
	}
	return 0;
}

#define ENTER_FAIL(s, e) do { if (failed) *failed = (s); return (e); } while (0)

int sandbox_enter(const struct sandbox_compiled *c, enum sandbox_step *failed)
{
	int rc;

	if (failed)
		*failed = SANDBOX_STEP_NONE;
	if (c->netns_fd >= 0 && syscall(SYS_setns, c->netns_fd, CLONE_NEWNET) != 0)
		ENTER_FAIL(SANDBOX_STEP_SETNS, -errno);
	if ((rc = sandbox_mounts_enter(c)) < 0)
		ENTER_FAIL(SANDBOX_STEP_MOUNTS, rc);
	for (size_t i = 0; i < c->nrlimits; i++)
		if (setrlimit(c->rlimits[i].resource, &c->rlimits[i].lim) != 0)
			ENTER_FAIL(SANDBOX_STEP_RLIMIT, -errno);
	if ((rc = enter_drop_bounding()) < 0)
		ENTER_FAIL(SANDBOX_STEP_CAPS, rc);
	if (c->creds_set && (rc = enter_creds(c)) < 0)
		ENTER_FAIL(SANDBOX_STEP_CREDS, rc);
	if ((rc = enter_caps()) < 0)
		ENTER_FAIL(SANDBOX_STEP_CAPS, rc);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		ENTER_FAIL(SANDBOX_STEP_NO_NEW_PRIVS, -errno);
	if (c->ruleset_fd >= 0 && sandbox_ll_restrict_self(c->ruleset_fd, 0) != 0)
		ENTER_FAIL(SANDBOX_STEP_LANDLOCK, -errno);
	if (c->prog.len &&
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &c->prog) != 0)
		ENTER_FAIL(SANDBOX_STEP_SECCOMP, -errno);
	if ((rc = enter_verify(c)) < 0)
		ENTER_FAIL(SANDBOX_STEP_VERIFY, rc);
	/* Last, so it resolves through the new mounts and the worker's rights. */
	if (c->cwd && chdir(c->cwd) != 0)
		ENTER_FAIL(SANDBOX_STEP_CHDIR, -errno);
	return 0;
}
