/* Starting a session: policy -> sandbox, fork, child set-up, exec, and the reply. */
#ifndef DAEMON_SESSION_SPAWN_H
#define DAEMON_SESSION_SPAWN_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "rpc.h"
#include "session.h"

struct policy;

struct spawn_request {
	uid_t uid;
	gid_t gid;
	char **argv;               /* NULL-terminated; taken (moved into the session) */
	char *cwd;                 /* absolute; taken */
	char *workspace;           /* absolute; taken */
	char **environ;            /* the caller's environment, NULL-terminated; borrowed.
				      Never the daemon's own: pass-through names come from here. */
	struct policy *policy;     /* validated, unresolved; borrowed (resolved in place) */
	enum session_stdio stdio;
	int fds[3];                /* SESSION_STDIO_FDS: taken */
	struct json_object *labels;/* borrowed */
	uint64_t wall_ms;          /* 0 = none (policy may set one) */
	struct session_snap *snap; /* automatic snapshots, or NULL; taken */
};

/*
 * Compile, fork and start. Returns RPC_DEFERRED, having taken reply (it is
 * answered once exec succeeded or failed, and conn gets session.exited), or
 * a negative NONO_E_* with err filled, and then the caller still owns reply.
 * Takes the request's owned members in every case.
 */
int session_spawn(struct spawn_request *r, struct conn *conn, struct rpc_deferred *reply,
		  struct rpc_error *err);
void spawn_request_release(struct spawn_request *r);

/*
 * Workers are cloned by spawner threads (sandbox/spawn.h) while the loop
 * goes on; a worker may exit before the loop has taken its spawn result.
 * The reaper (session.c) hands every pid that is no session's to
 * session_spawn_reaped(): true when it was such a worker (its status is
 * kept and the session ends as soon as it is registered).
 */
bool session_spawn_reaped(pid_t pid, int status, const struct rusage *ru);
/* Shutdown begins: starts still waiting for a spawner thread fail now. */
void session_spawn_stopping(void);
/* Shutdown, before the session table goes: starts in flight fail. */
void session_spawn_fini(void);
/* session.c: a session's leader was reaped with this status. */
void session_reaped(struct session *s, int status, const struct rusage *ru);

#endif
