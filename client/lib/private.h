/*
 * libnono internals shared by client/lib/ (all .c files): the client and error structs,
 * the message queues, and the I/O engine (io.c). Not installed.
 */
#ifndef CLIENT_LIB_PRIVATE_H
#define CLIENT_LIB_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nono.h"
#include "rpc.h"

struct nono_error {
	int code;
	bool remote;
	int errnum;
	char *kind;
	char *field;
	char *detail;
	char *message;
};

/* Local kinds (documented in nono.h). */
#define ERR_KIND_CONNECTION "connection"
#define ERR_KIND_PROTOCOL "protocol"
#define ERR_KIND_ARGUMENT "invalid_argument"
#define ERR_KIND_TIMEOUT "timeout"
#define ERR_KIND_NOMEM "out_of_memory"

/*
 * A local error: code, kind, errno (0 if none) and a printf detail.
 * Returns a new error, or a static out-of-memory error when allocation
 * fails (error_free and nono_error_free know not to free that one).
 */
nono_error *error_local(int code, const char *kind, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A copy of e that is never NULL (the static out-of-memory error instead). */
nono_error *error_copy(const nono_error *e);
/* A daemon error from a parsed RPC_MSG_ERROR. */
nono_error *error_remote(const struct rpc_response *resp);
/*
 * Hand e to the caller: *out = e when out is not NULL, else free it.
 * Returns e's code (or NONO_E_INTERNAL when e is NULL) for `return error_out(...)`.
 */
int error_out(nono_error **out, nono_error *e);

/* Upper bound of fds pending in the receive path: one incomplete message
 * plus the batch of one recvmsg (see io.c). */
#define IO_MAX_PENDING_FDS (2 * NONO_MAX_FDS_PER_MESSAGE)
/* Cap on bytes of queued, undispatched messages before the daemon counts
 * as flooding us: the connection is then failed ("protocol"). */
#define IO_MAX_QUEUED_BYTES (64u * 1024u * 1024u)

/*
 * A call waiting for its reply, then (async calls) the reply waiting for
 * dispatch; or a notification waiting for dispatch. A msg is in at most
 * one list at a time: c->calls while waiting, c->queue once delivered to it.
 */
enum msg_type {
	MSG_CALL = 1,
	MSG_NOTIFY,
};

struct msg {
	struct msg *next;
	enum msg_type type;
	int64_t id;         /* CALL */
	bool blocking;      /* CALL by a nono_client_call* waiter: never queued */
	bool abandoned;     /* the blocking waiter timed out: drop the reply */
	bool done;          /* blocking: the reply (or error) is stored here */
	nono_reply_cb cb;   /* async CALL */
	void *userdata;
	char *method;       /* NOTIFY: owned */
	char *json;         /* NOTIFY params / CALL result; owned, NULL on error */
	nono_error *err;    /* CALL failed; owned */
	int fds[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds;
	size_t bytes;       /* accounted against IO_MAX_QUEUED_BYTES while queued */
};

struct rxfd {
	int fd;
	uint64_t at;        /* stream offset of the last byte of the recvmsg it came with */
};

struct nono_client {
	int fd;
	char *socket_path;
	char *client_name;
	int timeout_ms;

	/* From the hello. */
	int protocol;
	char *daemon_version;
	char *hello_json;
	size_t max_message;

	int64_t next_id;
	struct msg *calls;          /* waiting for replies, unordered */

	struct msg *queue_head;     /* waiting for dispatch, arrival order */
	struct msg **queue_tail;
	size_t queued;
	size_t queued_bytes;

	nono_notify_cb notify_cb;
	void *notify_data;

	/* Receive buffer: rbuf[0..rlen) is the stream from offset rbase on. */
	char *rbuf;
	size_t rlen, rcap;
	uint64_t rbase;
	struct rxfd rxfds[IO_MAX_PENDING_FDS];
	size_t nrxfds;

	nono_error *dead;           /* set once the connection failed; owned */
	unsigned int dispatching;   /* nesting depth of nono_client_dispatch */
	bool freed;                 /* nono_client_free called inside a callback */
};

/* ---- socket.c ---- */

/* Connect a CLOEXEC, nonblocking stream socket to path. fd or -errno. */
int socket_connect(const char *path);

/* ---- io.c ---- */

/*
 * Fail the connection once: record e (taken) as c->dead, shut the socket
 * down, complete every pending call with a copy of the error (blocking ones
 * in place, async ones queued for dispatch). Later calls just free e.
 */
void io_fail(nono_client *c, nono_error *e);

/* Send one framed message with fds. 0, or a code with *err set; on a
 * connection failure the client is dead. */
int io_send(nono_client *c, const char *buf, size_t len, const int *fds, size_t nfds,
	    nono_error **err);

/*
 * Read once without blocking and route every complete message: replies to
 * blocking calls are stored in their struct msg, everything else queued.
 * Returns 1 if data was read, 0 if nothing was ready, or the code of the
 * connection failure (the client is then dead).
 */
int io_read(nono_client *c);

/*
 * Wait until m is done or timeout_ms (-1 = forever) passes, reading and
 * routing meanwhile. 0 when done, else NONO_E_TIMEOUT.
 */
int io_wait(nono_client *c, struct msg *m, int timeout_ms);

/* Pop the first queued message (NULL when empty). Caller frees it. */
struct msg *io_queue_pop(nono_client *c);
/* Free m, closing the fds it still holds. NULL is a no-op. */
void msg_free(struct msg *m);
/* Unlink m from c->calls (no-op if absent). */
void io_unlink_call(nono_client *c, struct msg *m);

/* ---- call.c / client.c ---- */

/* The blocking call behind the public variants and the hello; params taken. */
int client_call_obj(nono_client *c, const char *method, struct json_object *params,
		    const int *fds, size_t nfds, int timeout_ms, char **result_json,
		    int **out_fds, size_t *out_nfds, nono_error **err);
/* Free everything now (nono_client_free defers this while dispatching). */
void client_destroy(nono_client *c);

#endif
