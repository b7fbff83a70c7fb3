/*
 * The daemon's RPC layer: the method table and the call context handlers get.
 *
 * Each namespace has one file, daemon/method-<ns>.c (or <subsystem>/method-<ns>.c),
 * exporting a `const struct method <ns>_methods[]` terminated by {NULL}.
 * rpc.c lists those tables in one place. Before a handler runs, rpc.c has
 * checked: the hello was done (except for daemon.hello), the caller has the
 * authority the method needs, the caller is not inside a session, and the
 * params match the spec (unknown keys, types, required members, ranges).
 * Handlers borrow params and return an owned result.
 */
#ifndef DAEMON_RPC_H
#define DAEMON_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>

/* proto's JSON-RPC envelope header shares this file's name: include it by path. */
#include "proto/error.h"
#include "proto/params.h"
#include "proto/rpc.h"

struct conn;

enum method_auth {
	AUTH_NONE = 0, /* callable before hello (daemon.hello only) */
	AUTH_USER,     /* any authenticated local user, acting for themselves */
	AUTH_ADMIN,    /* root or a member of the configured admin group */
};

/* Who is calling, from SO_PEERCRED at accept time. */
struct peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool admin;
	bool in_session; /* the connecting process belongs to a sandboxed session */
};

struct rpc_call {
	struct conn *conn;         /* the connection; see rpc_call_defer() */
	const struct peer *peer;   /* borrowed, valid for the call */
	struct json_object *params;/* borrowed; NULL when the request had none */
	struct json_object *id;    /* borrowed; NULL for a notification */
	int *fds;                  /* fds received with the message (owned by the call) */
	size_t nfds;
	/* Internal to rpc.c: fds to return with a synchronous result. */
	int out_fds[16];
	size_t n_out_fds;
};

/*
 * Handler result:
 *   0  *result is set (owned by the caller; NULL means {}).
 *  <0  a NONO_E_* code; err is filled (rpc_error_set returns the code).
 *   RPC_DEFERRED  the handler called rpc_call_defer() and will answer later.
 */
#define RPC_DEFERRED 1

typedef int (*method_fn)(struct rpc_call *call, struct json_object **result,
			 struct rpc_error *err);

struct method {
	const char *name;                 /* NULL terminates a table */
	const struct param_spec *params;  /* NULL = takes no params */
	enum method_auth auth;
	method_fn fn;
	const char *summary;              /* one line, for docs and the OpenRPC check */
};

/*
 * Take ownership of received fd number idx (the index a param like
 * "fds":[0,1,2] names). Returns the fd, or -1 with err set when idx is out
 * of range or was already taken. fds not taken are closed after the handler.
 */
int rpc_call_take_fd(struct rpc_call *call, int64_t idx, struct rpc_error *err);

/*
 * Answer later (off-loop work, waits). Returns a handle that keeps the
 * connection alive (reference) until rpc_reply_result/rpc_reply_error is
 * called exactly once; if the client went away meanwhile the reply is dropped.
 */
struct rpc_deferred;
struct rpc_deferred *rpc_call_defer(struct rpc_call *call);
void rpc_reply_result(struct rpc_deferred *d, struct json_object *result /* taken */);
void rpc_reply_result_fds(struct rpc_deferred *d, struct json_object *result /* taken */,
			  const int *fds, size_t nfds /* duplicated; caller keeps its fds */);
void rpc_reply_error(struct rpc_deferred *d, const struct rpc_error *err);
/* The peer of a deferred call (valid until the reply). */
const struct peer *rpc_deferred_peer(const struct rpc_deferred *d);

/*
 * Return fds with a synchronous result: call during the handler, before
 * returning 0. The fds are duplicated; the caller keeps its own.
 */
int rpc_call_attach_fds(struct rpc_call *call, const int *fds, size_t nfds);

/* Send a notification to one connection (dropped if it is gone). */
void rpc_notify(struct conn *conn, const char *method, struct json_object *params /* taken */);
/* Connection handles for notifications outliving the call. */
struct conn *conn_ref(struct conn *c);
void conn_unref(struct conn *c);

/* Can this peer act on something owned by uid? (itself, or admin) */
static inline bool peer_may_act_for(const struct peer *p, uid_t owner)
{
	return p->admin || p->uid == owner;
}

/* All method tables (NULL-terminated list of tables), for dispatch and the OpenRPC test. */
extern const struct method *const rpc_method_tables[];
const struct method *rpc_method_lookup(const char *name);

#endif
