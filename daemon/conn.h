/*
 * One client connection: buffered, framed, with fd passing both ways and
 * backpressure. One teardown path (conn_close), deferred free by reference
 * count, and a dead flag every callback checks.
 */
#ifndef DAEMON_CONN_H
#define DAEMON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <json-c/json.h>

#include "rpc.h"

struct conn;

/* Takes ownership of fd (connected, nonblocking). NULL on failure (fd closed). */
struct conn *conn_new(int fd, const struct peer *peer);
/* Tear down now: logs one line, closes the fd; memory goes when the last ref does. */
void conn_close(struct conn *c, const char *why);
bool conn_is_dead(const struct conn *c);
const struct peer *conn_peer(const struct conn *c);
uint64_t conn_id(const struct conn *c);

/* Protocol state kept by rpc.c. */
bool conn_hello_done(const struct conn *c);
void conn_set_hello(struct conn *c, int protocol, const char *client_name);

/*
 * Queue one message (serialized with its LF) and optionally fds to pass with
 * its first byte (duplicated; the caller keeps its own). Closes the
 * connection when the peer lets more than the hard output cap pile up.
 */
int conn_send(struct conn *c, struct json_object *msg, const int *fds, size_t nfds);

/* Close every connection (daemon shutdown). */
void conn_close_all(const char *why);
/* Number of connections of one uid (for the per-user limit). */
unsigned int conn_count_uid(uid_t uid);
/* Re-read limits from nonod->cfg (after reload). */
void conn_config_changed(void);

#endif
