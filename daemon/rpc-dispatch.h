/* Between conn.c and rpc.c: one framed message in, responses out via conn_send. */
#ifndef DAEMON_RPC_DISPATCH_H
#define DAEMON_RPC_DISPATCH_H

#include <stddef.h>

struct conn;
struct peer;

/*
 * Handle one message of len bytes (no LF). fds[0..nfds) arrived with it;
 * ownership passes to the dispatcher, which closes what the method does not take.
 */
void rpc_dispatch(struct conn *c, const char *buf, size_t len, int *fds, size_t nfds);

/*
 * Set by the sessions subsystem: true when the peer process belongs to a
 * sandboxed session (such peers may not drive the daemon). NULL = none yet.
 */
extern int (*rpc_peer_in_session)(const struct peer *peer);

#endif
