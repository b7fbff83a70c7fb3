/*
 * Acting on a user's files with that user's rights, from one thread of a
 * root daemon: fsuid and fsgid are per thread on Linux (setfsuid(2)), and
 * leaving fsuid 0 drops the thread's filesystem capabilities (DAC override,
 * FOWNER, ...), so the kernel checks every access exactly as for the user.
 */
#ifndef DAEMON_FSID_H
#define DAEMON_FSID_H

#include <sys/types.h>

struct fsid_saved {
	uid_t uid;
	gid_t gid;
};

/* Switch the calling thread's fsuid/fsgid to uid/gid, the previous ones in
 * *old. Returns 0, or -EPERM (nothing changed) when the switch does not
 * take: without CAP_SETUID only one's own ids can be set. */
int fsid_enter(uid_t uid, gid_t gid, struct fsid_saved *old);
/* Back to what fsid_enter saved. */
void fsid_leave(const struct fsid_saved *old);

#endif
