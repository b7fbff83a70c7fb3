/*
 * Per-thread filesystem credentials and safe path resolution.
 *
 * On Linux setfsuid/setfsgid and the raw setgroups syscall change only the
 * calling thread (glibc's setgroups() would change every thread), so a worker
 * can touch a workspace with its owner's rights and switch back to the
 * daemon's to write the store. Leaving fsuid 0 also drops the thread's
 * filesystem capabilities (DAC override, FOWNER, MKNOD...), so permission
 * checks apply exactly as for the user. When the daemon is not root (user
 * mode) the switch is a no-op.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "log.h"
#include "snap-int.h"

#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_NO_SYMLINKS
#define RESOLVE_NO_SYMLINKS 0x04
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_BENEATH 0x08
#endif

int creds_init(struct snap_creds *c, uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int n = 64;

	memset(c, 0, sizeof(*c));
	c->uid = uid;
	c->gid = gid;
	c->active = geteuid() == 0;
	if (!c->active)
		return 0;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return 0; /* no passwd entry: no supplementary groups */
	for (;;) {
		gid_t *g = realloc(c->groups, (size_t)n * sizeof(gid_t));
		int want = n;
		if (g == NULL)
			return -ENOMEM;
		c->groups = g;
		if (getgrouplist(pw.pw_name, gid, g, &want) >= 0) {
			c->ngroups = want;
			return 0;
		}
		if (want <= n || want > 65536)
			return -EINVAL;
		n = want;
	}
}

void creds_release(struct snap_creds *c)
{
	free(c->groups);
	c->groups = NULL;
}

static int fsids(uid_t uid, gid_t gid, size_t ng, const gid_t *g)
{
	if (syscall(SYS_setgroups, ng, g) < 0)
		return -errno;
	setfsgid(gid);
	setfsuid(uid);
	/* setfsuid reports the previous value: call again to confirm. */
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid)
		return -EPERM;
	return 0;
}

int creds_user(const struct snap_creds *c)
{
	int rc;

	if (!c->active)
		return 0;
	rc = fsids(c->uid, c->gid, (size_t)c->ngroups, c->groups);
	if (rc < 0)
		log_warnx("%s: cannot switch to uid %u: %s", __func__, (unsigned)c->uid,
			  strerror(-rc));
	return rc;
}

int creds_daemon(const struct snap_creds *c)
{
	int rc;

	if (!c->active)
		return 0;
	rc = fsids(0, 0, 0, NULL);
	if (rc < 0)
		log_warnx("%s: cannot switch back to root: %s", __func__, strerror(-rc));
	return rc;
}

int snap_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

int snap_open_noatime(int dirfd, const char *path, int flags)
{
	int fd = snap_open_beneath(dirfd, path, flags | O_NOATIME, 0);

	/* O_NOATIME needs the file's owner (or CAP_FOWNER): others' files are
	 * opened without it. */
	return fd == -EPERM ? snap_open_beneath(dirfd, path, flags, 0) : fd;
}
