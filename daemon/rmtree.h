/*
 * Removing a directory tree that someone else controls, safely, as root:
 * a session's TMPDIR after the session (rmtree), and what a snapshot
 * restore removes while leaving excluded entries alone (rmtree_at with a
 * keep callback). One walker for both, built into nonod-util so that nonod,
 * the snap library and everything that links either gets it.
 */
#ifndef DAEMON_RMTREE_H
#define DAEMON_RMTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Optional behaviour of rmtree_at; zero-initialised = remove everything,
 * stop at the first failure, report nothing but the return value. */
struct rmtree_opts {
	/*
	 * Called for each entry below the root before anything is done to it
	 * (the root itself is never asked); true leaves the entry in place, and
	 * with it the directories above it (they end up holding only kept
	 * entries). path is the entry's path in the path buffer below, "/"-joined
	 * under the root's path, NULL when there is no buffer or the path does
	 * not fit in it (too deep to name). Borrowed for the call only.
	 */
	bool (*keep)(void *arg, const char *path, const char *name);
	/*
	 * Called on every failure: err (-errno), what failed ("stat", "open",
	 * "unlink", "rmdir", "readdir", "moved while being removed:", ...) and
	 * the path buffer as it stands (the directory being worked on, or its
	 * deepest nameable ancestor; NULL without a buffer). Names are the
	 * tree owner's bytes: escape them before logging.
	 */
	void (*fail)(void *arg, int err, const char *what, const char *path);
	void *arg;
	/* Caller's buffer holding the root's path in its first path_len bytes
	 * (NUL-terminated); names are appended while walking and the buffer is
	 * back to path_len bytes on return. NULL: no paths. */
	char *path;
	size_t path_size, path_len;
	/* false: stop at the first failure. true: go on and remove what can be
	 * removed, still returning the first failure (a directory that cannot
	 * be emptied is left and skipped from then on). */
	bool keep_going;
	/* Stay on the root's filesystem: a directory on another one (a mount
	 * point, a btrfs subvolume) is neither entered nor removed; -EXDEV. */
	bool xdev;
	/* A directory whose mode stops its removal (no read, search or write
	 * permission: EACCES) is made 0700 and tried again, once. Meant for a
	 * thread running with the tree owner's fsuid (rmtree_as), for which the
	 * kernel lets chmod change only that owner's directories. */
	bool unlock;
};

/*
 * Remove name (one path component: -EINVAL with a '/') in dfd and
 * everything below it. A non-directory (or a directory swapped for a
 * symlink) is unlinked, never followed.
 *
 * Iterative: one directory descriptor open at a time besides dfd (two while
 * stepping), no recursion, any depth; memory is about 48 bytes plus the
 * name per level of depth, plus up to 48 bytes per directory left behind.
 * Every open is relative to the directory's parent fd with
 * O_NOFOLLOW|O_DIRECTORY and every unlink is relative to the fd of the
 * directory being emptied. Going back up opens ".." and checks it is the
 * directory we came down from (dev, ino): a directory moved elsewhere
 * mid-walk ends the walk with -EXDEV instead of leading it outside the
 * tree. A ".." check failure and out-of-memory stop the walk even with
 * keep_going.
 *
 * Termination: once nobody else writes into the tree. Returns 0 (also when
 * name does not exist, or when only kept entries and the directories holding
 * them are left) or the first -errno met.
 */
int rmtree_at(int dfd, const char *name, const struct rmtree_opts *opts);

/*
 * Remove path and everything below it, removing what it can: rmtree_at
 * with keep_going and xdev (a user can mount FUSE on a directory they own,
 * and such a tree may never end), relative to path's parent directory
 * (which nonod chose: /tmp for TMPDIRs). path's last component may be a
 * symlink; it is unlinked, not followed. Logs the first failure (never
 * names from inside the tree). Returns 0 (also when path does not exist)
 * or the first -errno met; -EINVAL for a path ending in "", "." or "..".
 */
int rmtree(const char *path);

/*
 * rmtree(path) with the rights of the tree's owner, uid/gid: the calling
 * thread takes that fsuid and fsgid and no supplementary groups for the
 * call (fsid.h), and unlocks the owner's directories (opts.unlock). What
 * the owner could not remove stays: root's files that a user moved into
 * their TMPDIR are not removed on the user's behalf. uid 0: plain
 * rmtree; a daemon that is not root keeps its ids (its sessions run as
 * itself) and unlocks. -EPERM when the switch does not take.
 */
int rmtree_as(const char *path, uid_t uid, gid_t gid);

/*
 * rmtree_as(path, uid, gid) on a background thread (rmtree-async.c), in
 * the order asked, so a huge tree never holds the caller's event loop.
 * path is copied. Returns 0 once queued; when no thread can be had,
 * removes it here and returns what rmtree_as returned.
 */
int rmtree_async(const char *path, uid_t uid, gid_t gid);
/* At exit: wait up to timeout_ms for queued removals, then stop the thread
 * (what is still queued then stays on disk, and is logged). */
void rmtree_async_drain(unsigned int timeout_ms);

#endif
