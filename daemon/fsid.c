/* Per-thread filesystem identity (see fsid.h). */
#include <errno.h>
#include <sys/fsuid.h>

#include "fsid.h"

int fsid_enter(uid_t uid, gid_t gid, struct fsid_saved *old)
{
	old->gid = (gid_t)setfsgid(gid);
	old->uid = (uid_t)setfsuid(uid);
	/* setfsuid/setfsgid report the previous value, not failure: ask again */
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid) {
		fsid_leave(old);
		return -EPERM;
	}
	return 0;
}

void fsid_leave(const struct fsid_saved *old)
{
	setfsuid(old->uid);
	setfsgid(old->gid);
}
