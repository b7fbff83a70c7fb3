/* The control socket: our own (locked, stale-checked) or one handed over by systemd. */
#ifndef DAEMON_SERVER_H
#define DAEMON_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Get a listening socket for path: the one systemd passed (sd_listen_fds),
 * or a new one bound at path with the mode for the daemon's mode (user 0600,
 * system 0660 group socket_gid). A second nonod on the same path is refused
 * (lock file beside the socket); a stale socket file is removed.
 * On success *path_out is the socket's path (malloc'd).
 */
int server_open(const char *path, bool system_mode, gid_t socket_gid, char **path_out);
/* Start accepting on the event loop. */
int server_start(void);
/* Stop accepting, close, remove the socket file we created, release the lock. */
void server_close(void);

#endif
