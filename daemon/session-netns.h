/*
 * Network namespaces for strict-mode sessions, made ahead of time: creating
 * one (a thread, unshare, lo up, a listener) costs about as much as the rest
 * of a session start, so a small pool is refilled from the loop after each
 * start instead of inside it.
 */
#ifndef DAEMON_SESSION_NETNS_H
#define DAEMON_SESSION_NETNS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh namespace and its proxy listener (both fds owned by the caller). */
int session_netns_take(int *netns_fd, int *listen_fd, uint16_t *port, char *err, size_t errlen);
void session_netns_fini(void);

#endif
