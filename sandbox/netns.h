/*
 * Strict network mode: a fresh network namespace with only loopback, and
 * the session's proxy listener created inside it.
 */
#ifndef SANDBOX_NETNS_H
#define SANDBOX_NETNS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Creates a network namespace (from a short-lived thread, since unshare()
 * affects only the calling thread), brings `lo` up, and binds a TCP listener
 * on 127.0.0.1:port inside it (port 0 = any; getsockname() tells which).
 * On success *netns_fd (for setns, e.g. sandbox_spec.netns_fd) and
 * *listen_fd (listening, non-blocking, for the daemon's proxy) are owned by
 * the caller; both are O_CLOEXEC. The namespace lives while either fd is
 * open. Needs CAP_SYS_ADMIN: returns -EPERM with a message saying so.
 */
int sandbox_netns_create(int *netns_fd, uint16_t port, int *listen_fd, char *errbuf,
			 size_t errlen);

#endif
