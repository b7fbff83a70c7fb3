/*
 * Descriptors a client passed to nonod, closed off the event loop.
 *
 * close() of a file on a FUSE file system sends FLUSH and waits for the
 * server's answer, and a user's own server may never answer; a socket with
 * SO_LINGER waits too. On the loop either would stop nonod for everyone.
 * So every descriptor a client passed is closed on a thread of that
 * client's uid: one uid's held close holds only that uid's closes. A uid
 * with FD_RELEASE_HELD closes waiting is "held": conn.c takes no more
 * descriptors from it (the kernel drops them unopened, which sends no
 * FLUSH). And a file on a FUSE file system is refused as it arrives
 * (fd_on_fuse), so it stays in nonod's descriptor table, which every
 * worker nonod starts inherits until exec, for as short as possible.
 */
#ifndef DAEMON_FDRELEASE_H
#define DAEMON_FDRELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define FD_RELEASE_HELD 64
/* In a call's received fds: this one was a file on a FUSE file system,
 * refused on arrival (rpc_call_take_fd says so). */
#define FD_REFUSED_FUSE (-2)

/* Close fd (a no-op when < 0) on uid's closing thread. */
void fd_release(uid_t uid, int fd);
/* fd_release each of fds[0..n), setting them to -1. */
void fd_release_all(uid_t uid, int *fds, size_t n);
/* Does uid have FD_RELEASE_HELD or more closes waiting? */
bool fd_release_held(uid_t uid);

/* Is fd a file of a FUSE file system? From /proc (fdinfo's mnt_id and
 * mountinfo), never asking the file system itself. */
bool fd_on_fuse(int fd);

#endif
