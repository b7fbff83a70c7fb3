/*
 * libnono: the C client of nonod, the nono sandboxing daemon.
 *
 * A nono_client is one connection to nonod's control socket, speaking the
 * JSON-RPC protocol described in proto/PROTOCOL.md. JSON crosses this API
 * as text (UTF-8, one object), so callers need no particular JSON library.
 *
 * Return values: 0 on success, otherwise a negative NONO_E_* code from
 * nono-protocol.h; when the `err` argument is non-NULL, *err then receives
 * a new nono_error (free it with nono_error_free). Errors the daemon
 * returned carry the daemon's code and data {kind, field, detail}. Errors
 * raised locally use these codes and kinds:
 *
 *   kind "connection"        NONO_E_BACKEND_UNAVAILABLE  cannot connect, the
 *                            daemon closed the connection, I/O error
 *                            (nono_error_errno() has the errno)
 *   kind "protocol"          NONO_E_PARSE, NONO_E_MESSAGE_TOO_LARGE or
 *                            NONO_E_UNSUPPORTED_PROTOCOL: the daemon sent
 *                            something that is not valid protocol; the
 *                            connection is closed
 *   kind "invalid_argument"  NONO_E_INVALID_PARAMS (bad argument, params not
 *                            a JSON object) or NONO_E_MESSAGE_TOO_LARGE (the
 *                            request exceeds the daemon's max_message)
 *   kind "timeout"           NONO_E_TIMEOUT (nono_client_set_timeout)
 *   kind "out_of_memory"     NONO_E_INTERNAL
 *
 * nono_error_is_remote() tells the two apart. After a "connection" or
 * "protocol" error the client is dead: every later call fails with the same
 * error; free it and connect again.
 *
 * Threads: a nono_client must be used by one thread at a time. Different
 * clients are independent.
 *
 * File descriptors: every fd the library creates or receives is O_CLOEXEC.
 * Writes use MSG_NOSIGNAL, so a dead daemon never raises SIGPIPE.
 */
#ifndef NONO_H
#define NONO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nono-protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nono_client nono_client;
typedef struct nono_error nono_error;
typedef struct nono_status nono_status;

/* The library's version ("0.1.0"). */
const char *nono_version(void);

/* ---- errors ---- */

/* The NONO_E_* code (always negative). */
int nono_error_code(const nono_error *e);
/* Stable machine-readable kind ("not_found", "connection"); never NULL. */
const char *nono_error_kind(const nono_error *e);
/* Dotted path of the offending parameter; "" when none. Never NULL. */
const char *nono_error_field(const nono_error *e);
/* A human sentence: data.detail, else the message. Never NULL. */
const char *nono_error_detail(const nono_error *e);
/* The JSON-RPC "message" (or a short local summary). Never NULL. */
const char *nono_error_message(const nono_error *e);
/* The errno behind a local "connection" error, else 0. */
int nono_error_errno(const nono_error *e);
/* True when the daemon returned this error, false when raised locally. */
bool nono_error_is_remote(const nono_error *e);
/* A copy (NULL on allocation failure or when e is NULL). */
nono_error *nono_error_dup(const nono_error *e);
void nono_error_free(nono_error *e);

/* ---- connecting ---- */

/*
 * The socket a client should use when none is given, written into buf:
 * $NONO_SOCKET when set and non-empty; the system socket for uid 0;
 * else $XDG_RUNTIME_DIR/nono/nonod.sock, unless that does not exist while
 * the system socket does (then the system socket); the system socket when
 * XDG_RUNTIME_DIR is unset or not absolute. Environment variables are read
 * with secure_getenv(). Returns buf, or NULL with errno = ENAMETOOLONG.
 */
const char *nono_default_socket(char *buf, size_t len);

/*
 * Connect to socket_path (NULL = nono_default_socket()) and do the
 * daemon.hello handshake, offering protocol NONO_PROTOCOL_VERSION.
 * client_name ("myorchestrator/1.2", NULL = "libnono/<version>") is shown
 * in the daemon's logs. Blocks until the handshake is done, at most
 * NONO_CLIENT_HELLO_TIMEOUT_MS (a daemon that accepts but never answers
 * then fails with NONO_E_TIMEOUT). On success *out owns the new client.
 */
#define NONO_CLIENT_HELLO_TIMEOUT_MS 30000
int nono_client_connect(const char *socket_path, const char *client_name,
			nono_client **out, nono_error **err);

/*
 * Close the connection and free everything. NULL is a no-op. Pending async
 * calls are dropped without running their callbacks. May be called from
 * inside a callback: the client is then freed when dispatch returns.
 */
void nono_client_free(nono_client *c);

/* Negotiated protocol version, daemon version ("x.y.z"). */
int nono_client_protocol(const nono_client *c);
const char *nono_client_daemon_version(const nono_client *c);
/* Did the daemon list this in hello's "features"? */
bool nono_client_has_feature(const nono_client *c, const char *feature);
/* The whole hello result as JSON text (borrowed, valid until free). */
const char *nono_client_hello_json(const nono_client *c);
/* The socket path this client connected to (borrowed). */
const char *nono_client_socket_path(const nono_client *c);
/* The largest message the daemon accepts (hello's limits.max_message). */
size_t nono_client_max_message(const nono_client *c);

/*
 * Timeout in milliseconds for blocking calls; -1 (the default) waits
 * forever. On timeout the call fails with NONO_E_TIMEOUT; its late reply,
 * if it ever comes, is dropped. The connection stays usable.
 */
void nono_client_set_timeout(nono_client *c, int timeout_ms);

/* ---- blocking calls ---- */

/*
 * Call method with params_json (a JSON object as text, NULL = no params)
 * and wait for the reply. On success *result_json (if result_json is not
 * NULL) receives the result as malloc'd JSON text; the caller frees it.
 *
 * While waiting, notifications and replies to async calls that arrive are
 * queued, not delivered: blocking calls never run callbacks. They are
 * delivered by the next nono_client_dispatch() (nono_client_pending() says
 * whether there are any; event-loop users should check it after a blocking
 * call, since the socket will not become readable for already-read data).
 */
int nono_client_call(nono_client *c, const char *method, const char *params_json,
		     char **result_json, nono_error **err);

/*
 * As nono_client_call, also sending fds[0..nfds) (at most
 * NONO_MAX_FDS_PER_MESSAGE; params name them by index, "fds":[0,1]) and
 * receiving the fds the daemon returns with the reply. The caller keeps
 * its own fds. When out_fds is not NULL, *out_fds receives a malloc'd
 * array of *out_nfds received fds (NULL when none); the caller owns both
 * the fds and the array. When out_fds is NULL, received fds are closed.
 */
int nono_client_call_fds(nono_client *c, const char *method, const char *params_json,
			 const int *fds, size_t nfds,
			 char **result_json, int **out_fds, size_t *out_nfds,
			 nono_error **err);

/* ---- event-loop integration ---- */

/*
 * Reply callback. Exactly one of result_json and err is non-NULL; both are
 * borrowed for the duration of the callback. fds[0..nfds) are the fds that
 * came with the reply: to keep one, copy it and set fds[i] = -1; the
 * library closes the rest after the callback returns.
 */
typedef void (*nono_reply_cb)(nono_client *c, const char *result_json,
			      const nono_error *err, int *fds, size_t nfds,
			      void *userdata);

/*
 * Notification callback (server->client events such as session.exited).
 * params_json is the params object as text ("{}" when absent), borrowed.
 * The fd rule is the one of nono_reply_cb.
 */
typedef void (*nono_notify_cb)(nono_client *c, const char *method,
			       const char *params_json, int *fds, size_t nfds,
			       void *userdata);

/* Set (or clear with NULL) the notification callback. Without one,
 * notifications are discarded when dispatched. */
void nono_client_set_notify_cb(nono_client *c, nono_notify_cb cb, void *userdata);

/*
 * The connection's fd, to watch for readability in the caller's loop
 * (poll/epoll/libevent), level-triggered: one dispatch reads a bounded
 * amount, so the fd may still be readable afterwards. Valid until
 * nono_client_free. Do not read or write it yourself.
 */
int nono_client_get_fd(const nono_client *c);

/*
 * Send a request and return without waiting; cb runs from
 * nono_client_dispatch() when the reply arrives, or with an error if the
 * connection dies first. fds as in nono_client_call_fds (may be NULL/0).
 * The request is written before this returns (it may briefly block while
 * the socket buffer is full; incoming data is read meanwhile so neither
 * side can deadlock).
 */
int nono_client_call_async(nono_client *c, const char *method, const char *params_json,
			   const int *fds, size_t nfds,
			   nono_reply_cb cb, void *userdata, nono_error **err);

/*
 * Read what is available without blocking, then run the callbacks of
 * everything queued (replies and notifications, in arrival order).
 * Returns the number of callbacks run (>= 0), or the negative code of the
 * connection error once the connection is dead (after failing the pending
 * async calls through their callbacks); remove the fd from your loop then.
 *
 * Reentrancy: callbacks may call nono_client_call_async, nono_client_call
 * (its wait queues other messages as above), nono_client_dispatch, and
 * nono_client_free (the client is then freed when the outermost dispatch
 * returns; that dispatch returns NONO_E_BACKEND_UNAVAILABLE, and the
 * caller must not touch the client again).
 */
int nono_client_dispatch(nono_client *c);

/* Number of queued messages waiting for nono_client_dispatch(). */
size_t nono_client_pending(const nono_client *c);

/* ---- typed convenience ---- */

/* daemon.status: *out receives a new nono_status (free with nono_status_free). */
int nono_client_status(nono_client *c, nono_status **out, nono_error **err);
void nono_status_free(nono_status *s);
/* Accessors; strings are borrowed from s and never NULL ("" if absent). */
const char *nono_status_version(const nono_status *s);
int nono_status_protocol(const nono_status *s);
const char *nono_status_mode(const nono_status *s);     /* "user" or "system" */
pid_t nono_status_pid(const nono_status *s);
uint64_t nono_status_uptime_ms(const nono_status *s);
const char *nono_status_socket(const nono_status *s);
const char *nono_status_state_dir(const nono_status *s);
unsigned int nono_status_clients(const nono_status *s);
/* The "sandbox" member as JSON text ("{}" if absent). */
const char *nono_status_sandbox_json(const nono_status *s);
/* The whole result as JSON text. */
const char *nono_status_json(const nono_status *s);

/* ---- in-process sandbox ---- */

/*
 * A policy for nono_sandbox_apply(): the same policy model nonod uses
 * (docs/policies/README.md), built from text or step by step. The base
 * profile (system libraries and tools, read-only) is merged unless the
 * policy says "base": "none". Builders copy their arguments.
 */
typedef struct nono_policy nono_policy;

/* An empty version-1 policy (base profile only). NULL on out of memory. */
nono_policy *nono_policy_new(void);

/*
 * Parse and validate len bytes of JSON or YAML. On success *out owns a new
 * policy. An invalid policy fails with NONO_E_POLICY_INVALID, the key's
 * path in nono_error_field() and "LINE:COL: path: message" as detail.
 */
int nono_policy_from_text(const char *text, size_t len, nono_policy **out, nono_error **err);

/*
 * Add a filesystem rule. path is absolute or starts with $WORKSPACE (the
 * current directory at apply time), $HOME or $TMPDIR. Checked in full by
 * nono_sandbox_apply(); here only NULL/empty/too long is refused
 * (NONO_E_INVALID_PARAMS). NONO_E_INTERNAL on out of memory.
 */
int nono_policy_allow_read(nono_policy *p, const char *path);
int nono_policy_allow_write(nono_policy *p, const char *path);
int nono_policy_deny(nono_policy *p, const char *path);

/*
 * Allow TCP connect() to this port on any host (Landlock matches ports,
 * not hosts; UDP and raw sockets stay denied by seccomp). Without any,
 * the process can open no inet socket at all. At most 64 ports
 * (NONO_E_LIMIT_EXCEEDED).
 */
int nono_policy_allow_tcp_port(nono_policy *p, uint16_t port);

/* Best effort: kernel features that are missing are reported, not fatal. */
int nono_policy_set_best_effort(nono_policy *p, bool best_effort);

/* The policy document as JSON text (malloc'd; NULL on out of memory). */
char *nono_policy_to_json(const nono_policy *p);

void nono_policy_free(nono_policy *p);

/*
 * Restrict the calling process, irreversibly: no_new_privs, rlimits from
 * limits, Landlock (filesystem rules, TCP ports, scopes), seccomp. It
 * applies to the calling thread and the children it starts later, so the
 * process must have exactly one thread (else NONO_E_SANDBOX_UNAVAILABLE,
 * nothing applied). Variables: $WORKSPACE = getcwd(), $HOME and $TMPDIR
 * from the environment ($TMPDIR defaults to /tmp).
 *
 * Not in-process: network allow/inject/routes (they need nonod's proxy:
 * use nono_policy_allow_tcp_port), limits.wall and snapshots; a policy
 * using them fails with NONO_E_POLICY_INVALID. The env section is not
 * applied to this process's own environment.
 *
 * Errors: NONO_E_POLICY_INVALID (the policy, or a path that does not
 * exist), NONO_E_SANDBOX_UNAVAILABLE (a kernel feature is missing and the
 * policy is strict; or a step failed after restrictions began, in which
 * case the detail says so and the process should exit), NONO_E_INTERNAL.
 */
int nono_sandbox_apply(const nono_policy *p, nono_error **err);

/*
 * Everything nono_sandbox_apply() does except the restriction itself: on
 * success *report_json (if not NULL) receives what would be enforced, as
 * malloc'd JSON {"landlock_abi", "best_effort", "features": {name:
 * {"enforced", "detail"}}}.
 */
int nono_sandbox_check(const nono_policy *p, char **report_json, nono_error **err);

/* What the last successful nono_sandbox_apply() of this process enforces
 * (same JSON as nono_sandbox_check), malloc'd; NULL when none ran. */
char *nono_sandbox_report_json(void);

#ifdef __cplusplus
}
#endif

#endif /* NONO_H */
