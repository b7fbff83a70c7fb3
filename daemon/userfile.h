/*
 * Reading a small file a client named, with the client's rights, off the
 * event loop: the path may be on the client's own FUSE mount whose server
 * never answers (any open, stat or read there waits forever), so it is
 * read on a thread of its own and the answer comes back on the loop.
 * A client holds at most USERFILE_PER_UID reads (a held read keeps its
 * slot), and USERFILE_MAX run in all.
 */
#ifndef DAEMON_USERFILE_H
#define DAEMON_USERFILE_H

#include <stddef.h>
#include <sys/types.h>

#define USERFILE_PER_UID 4
#define USERFILE_MAX 16

/*
 * err: 0, or -errno of open/read, -EINVAL (not a regular file), -EFBIG
 * (more than max bytes). text: NUL-terminated, len bytes, owned by the
 * callee (NULL on error). Called on the loop.
 */
typedef void (*userfile_done_fn)(int err, char *text, size_t len, void *arg);

/*
 * Read path (at most max bytes) with fsuid uid and fsgid gid on a new
 * thread; done is called on nonod's loop exactly once. Returns 0, or
 * -EAGAIN when uid has USERFILE_PER_UID reads already, -EBUSY when all
 * USERFILE_MAX are taken, or -errno; then done is never called.
 */
int userfile_read_async(uid_t uid, gid_t gid, const char *path, size_t max,
			userfile_done_fn done, void *arg);

#endif
