/*
 * Network namespaces for strict-mode sessions, made ahead of time: creating
 * one (a thread, unshare, lo up, a listener) costs about as much as the rest
 * of a session start, so a small pool is kept full by a thread beside the
 * loop (session-netns.c).
 */
#ifndef DAEMON_SESSION_NETNS_H
#define DAEMON_SESSION_NETNS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh namespace and its proxy listener (both fds owned by the caller).
 * Loop thread only. The first call starts the maker thread. */
int session_netns_take(int *netns_fd, int *listen_fd, uint16_t *port, char *err, size_t errlen);
/* Stops the maker thread and closes what is pooled. */
void session_netns_fini(void);

#endif
