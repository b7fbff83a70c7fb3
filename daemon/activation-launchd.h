/*
 * Socket activation under launchd (macOS): the listening sockets launchd
 * created from the plist's "Sockets" dictionary. The Linux counterpart is
 * sd_listen_fds(); both leave the caller with ordinary listening fds.
 */
#ifndef DAEMON_ACTIVATION_LAUNCHD_H
#define DAEMON_ACTIVATION_LAUNCHD_H

#include <stddef.h>

/* The key under "Sockets" in launchd/org.nono.nonod*.plist. */
#define ACTIVATION_LAUNCHD_SOCKET_NAME "Listeners"

/*
 * Fetch the sockets launchd holds for us under `name`.
 *
 * On success returns 0, *fds is a malloc'd array of *n fds (n >= 1); the
 * caller owns the array (free()) and every fd in it (close()). Each fd has
 * FD_CLOEXEC set so workers never inherit a listener.
 * On failure returns a negative errno and sets *fds = NULL, *n = 0:
 *   -ESRCH    not started by launchd (normal: bind our own socket)
 *   -ENOENT   the plist has no socket called `name`
 *   -EALREADY already activated once in this process
 *   -ENOTSUP  not macOS (this build has no launchd)
 */
int activation_launchd_fds(const char *name, int **fds, size_t *n);

#endif
