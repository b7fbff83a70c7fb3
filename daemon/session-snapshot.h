/* Automatic snapshots of a session's workspace (policy snapshot.on_start / on_exit). */
#ifndef DAEMON_SESSION_SNAPSHOT_H
#define DAEMON_SESSION_SNAPSHOT_H

#include <stdbool.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "policy.h"
#include "rpc.h"

struct session_snap;

/*
 * From an unresolved policy: NULL in *out when it asks for no snapshots.
 * The snapshot workspace is expanded with $WORKSPACE and $HOME. A negative
 * NONO_E_* with err filled when it cannot be had (no store, bad path).
 */
int session_snap_prepare(const struct policy *p, uid_t uid, gid_t gid, const char *workspace,
			 struct session_snap **out, struct rpc_error *err);
void session_snap_free(struct session_snap *ss);

/* The id the session will have: the snapshot labels name it. */
const char *session_snap_session_id(const struct session_snap *ss);
/* Does it want a snapshot at start (or at exit)? False for NULL. */
bool session_snap_wants(const struct session_snap *ss, bool at_start);

/*
 * Take the start or exit snapshot. done gets 0 or -errno with a sentence,
 * on the loop, exactly once, unless this returns -errno. ss must outlive it.
 */
typedef void (*session_snap_done_fn)(int err, const char *detail, void *arg);
int session_snap_take(struct session_snap *ss, bool at_start, const char *argv0,
		      session_snap_done_fn done, void *arg);
/* Record that the exit snapshot could not be started (or, -ECANCELED, was
 * given up at shutdown). */
void session_snap_exit_failed(struct session_snap *ss, int err);

/* {"workspace", "start", "exit", "exit_error"?}: new object. */
struct json_object *session_snap_json(const struct session_snap *ss);
/* The snapshot id taken at start (or exit), or NULL. */
const char *session_snap_id(const struct session_snap *ss, bool at_start);

#endif
