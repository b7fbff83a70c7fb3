/*
 * Sessions: one sandboxed process tree each, with its policy, stdio, limits,
 * private TMPDIR, optional network listener, and a row of history in SQLite.
 *
 * The daemon compiles everything before forking (session-spawn.c); exit is
 * noticed through SIGCHLD and wait4; the whole tree is killed through its
 * cgroup (cgroup.kill) or, without one, by walking /proc for processes whose
 * ancestry leads to the session (nonod is a child subreaper, so orphans of a
 * session are re-parented to nonod and stay findable).
 */
#ifndef DAEMON_SESSION_H
#define DAEMON_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "rpc.h"

struct conn;
struct policy;
struct sandbox_compiled;
struct rpc_deferred;
struct proxy_listener;

enum session_state {
	SESSION_STARTING = 0, /* forked, exec not confirmed yet */
	SESSION_RUNNING,
	SESSION_FINISHING,    /* the tree is dead; its exit snapshot is being taken */
	SESSION_EXITED,       /* the leader is gone and the tree is killed */
};

enum session_stdio {
	SESSION_STDIO_NULL = 0,
	SESSION_STDIO_FDS,
	SESSION_STDIO_PIPE,
	SESSION_STDIO_PTY,
};

enum session_net {
	SESSION_NET_NONE = 0,     /* no network at all */
	SESSION_NET_STRICT,       /* own network namespace; the proxy listener inside */
	SESSION_NET_FALLBACK,     /* host loopback listener + Landlock port rule */
};

struct session_waiter;
struct session_output;

struct session {
	char id[24];              /* "s-" + 16 hex digits, unguessable */
	uid_t uid;
	gid_t gid;
	pid_t pid;                /* the leader; also its session and process group id */
	int pidfd;                /* -1 where pidfd_open is missing */
	enum session_state state;
	enum session_stdio stdio;
	enum session_net net;
	char **argv;
	char *cwd;
	char *workspace;
	char *tmpdir;             /* private TMPDIR, removed at the end */
	char *cgroup;             /* its cgroup dir, or NULL */
	bool cgroup_killed;
	uint64_t t_start, t_clone;       /* cgroup.kill was used: do not reuse it */
	char policy_digest[65];
	struct json_object *labels;     /* owned */
	struct json_object *report;     /* owned: what is enforced */
	struct json_object *limits;     /* owned: limits and how each is enforced */
	uint64_t created_ms, started_ms, ended_ms; /* CLOCK_REALTIME ms */
	uint64_t wall_ms;               /* 0 = none */
	int exit_status;                /* wait status */
	struct rusage rusage;
	char end_reason[96];            /* "exited", "killed by session.kill", "wall time limit", ... */
	struct session_snap *snap;      /* automatic snapshots (session-snapshot.c), or NULL */
	struct proxy_listener *proxy_listener; /* its proxy listener, or NULL */
	uint16_t proxy_port;
	int netns_fd;
	int pty_master;                 /* stdio pty: returned with the create reply */

	/* Loop plumbing (session.c). */
	struct conn *owner_conn;        /* referenced: gets session.exited */
	struct rpc_deferred *create_reply; /* answered when exec succeeds or fails */
	int errpipe;                    /* child's exec-failure pipe, -1 when done */
	struct event *ev_errpipe, *ev_wall, *ev_kill;
	struct session_waiter *waiters;
	struct session_output *output;  /* pipe mode */
	int refs;
	unsigned int hist_pending;      /* history writes queued (session.c) */
	struct session *next;
};

/* Set up the subsystem (child subreaper, SIGCHLD, cgroup root, schema). */
int sessions_init(void);
/* SIGTERM every session, SIGKILL after grace_ms, then call done(). */
void sessions_stop_all(unsigned int grace_ms, void (*done)(void));
void sessions_fini(void);

struct session *session_find(const char *id);
struct session *session_first(void);
/* Visible to this peer: its own, or any for admins. */
bool session_visible(const struct session *s, const struct peer *p);

/* State for JSON (session.get / list / exited). New object. */
struct json_object *session_to_json(const struct session *s);

/* Signal the leader; 0 or -errno. */
int session_signal(struct session *s, int sig);
/* Kill the whole tree now (SIGKILL), recording why. */
void session_kill_tree(struct session *s, const char *reason);

/* Wait for exit: calls back when it ends, or with timeout. */
int session_wait(struct session *s, struct rpc_deferred *d, int64_t timeout_ms);

/* Is pid (a peer) a process of some session? (descendant of nonod) */
int session_peer_in_session(const struct peer *peer);

/* Output kept for stdio mode "pipe" (base64 in JSON). New object. */
struct json_object *session_output_json(const struct session *s);

/* Internal between session.c and session-spawn.c. */
int session_make_id(char id[24]);  /* "s-" + 16 random hex digits; 0 or -errno */
void session_snap_free(struct session_snap *ss); /* session-snapshot.c */
struct session *session_new(uid_t uid, gid_t gid);
void session_register(struct session *s);
void session_spawned(struct session *s);     /* exec confirmed: reply, start timers */
void session_spawn_failed(struct session *s, int code, const char *field,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void session_output_attach(struct session *s, int out_fd, int err_fd);
/*
 * Read what the pipes hold now (the session's processes are dead or dying,
 * so nothing more is coming): session.exited and session.wait then carry
 * complete output. NULL is a no-op.
 */
void session_output_drain(struct session_output *o);
void session_output_free(struct session_output *o);
const char *session_net_name(enum session_net n);
/* Drop the oldest ended sessions beyond a bound (history stays in SQLite). */
void session_gc(void);
void session_unref(struct session *s);
void session_spawn_settle(struct session *s); /* session-spawn.c */
void session_history_insert(struct session *s);
/* Write queued history rows now (before reading the table). */
void session_history_flush(void);

#endif
