/*
 * The session table and lifecycle after spawn: exit (SIGCHLD + wait4), tree
 * kill, waiters, wall-time limit, history rows, session.exited
 * notifications, daemon stop, and the in-session peer check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "rmtree.h"
#include "rpc-dispatch.h"
#include "session-cgroup.h"
#include "session-netns.h"
#include "session-proxy.h"
#include "session-snapshot.h"
#include "session-spawn.h"
#include "session.h"

struct session_waiter {
	struct rpc_deferred *reply;
	struct event *timer;
	struct session *s;
	struct session_waiter *next;
};

static struct session *sessions;       /* live and recently ended, newest first */
static struct event *ev_sigchld;
static struct event *ev_stop_timer;
static void (*stop_done)(void);
static bool stop_expired;              /* the shutdown grace is over */
static unsigned int n_exited;          /* sessions in the table in state EXITED */

static const char *const session_schema[] = {
	/* 1 */
	"CREATE TABLE sessions ("
	"  id TEXT PRIMARY KEY,"
	"  uid INTEGER NOT NULL,"
	"  gid INTEGER NOT NULL,"
	"  argv TEXT NOT NULL,"          /* JSON array */
	"  cwd TEXT NOT NULL,"
	"  workspace TEXT,"
	"  policy_digest TEXT NOT NULL,"
	"  labels TEXT,"                 /* JSON object */
	"  network TEXT NOT NULL,"
	"  report TEXT,"                 /* JSON: what was enforced */
	"  created_ms INTEGER NOT NULL,"
	"  ended_ms INTEGER,"
	"  exit_code INTEGER,"
	"  exit_signal INTEGER,"
	"  end_reason TEXT);"
	"CREATE INDEX sessions_uid ON sessions(uid, created_ms);",
	/* 2: automatic snapshots (policy snapshot.on_start / on_exit) */
	"ALTER TABLE sessions ADD COLUMN snapshot_start TEXT;"
	"ALTER TABLE sessions ADD COLUMN snapshot_exit TEXT;",
};

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int session_make_id(char id[24])
{
	unsigned char rnd[8];

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	snprintf(id, 24, "s-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5], rnd[6], rnd[7]);
	return 0;
}

struct session *session_new(uid_t uid, gid_t gid)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (session_make_id(s->id) < 0) {
		free(s);
		return NULL;
	}
	s->uid = uid;
	s->gid = gid;
	s->pid = -1;
	s->pidfd = -1;
	s->errpipe = -1;
	s->netns_fd = -1;
	s->pty_master = -1;
	s->refs = 1;
	s->created_ms = realtime_ms();
	return s;
}

static void session_remove_tmpdir(struct session *s)
{
	int rc;

	if (s->tmpdir == NULL)
		return;
	/* The tree is dead, but the user owns the directory and may race us from
	 * outside: rmtree never follows a symlink, and removes with the user's
	 * rights (what they moved in that they could not delete stays). Off the
	 * loop: a session can leave a tree that takes long to delete. */
	if ((rc = rmtree_async(s->tmpdir, s->uid, s->gid)) < 0) {
		errno = -rc;
		log_warn("session %s: remove %s", s->id, s->tmpdir);
	}
	free(s->tmpdir);
	s->tmpdir = NULL;
}

static void session_free(struct session *s)
{
	if (s->argv != NULL)
		for (char **a = s->argv; *a != NULL; a++)
			free(*a);
	free(s->argv);
	free(s->cwd);
	free(s->workspace);
	session_remove_tmpdir(s);
	free(s->cgroup);
	json_object_put(s->labels);
	json_object_put(s->report);
	json_object_put(s->limits);
	if (s->pidfd >= 0)
		close(s->pidfd);
	session_proxy_stop(s);
	if (s->netns_fd >= 0)
		close(s->netns_fd);
	if (s->pty_master >= 0)
		close(s->pty_master);
	session_output_free(s->output);
	session_snap_free(s->snap);
	free(s);
}

void session_unref(struct session *s)
{
	if (s != NULL && --s->refs == 0)
		session_free(s);
}

void session_register(struct session *s)
{
	s->next = sessions;
	sessions = s;
}

struct session *session_find(const char *id)
{
	for (struct session *s = sessions; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

struct session *session_first(void)
{
	return sessions;
}

bool session_visible(const struct session *s, const struct peer *p)
{
	return peer_may_act_for(p, s->uid);
}

static const char *const state_names[] = { "starting", "running", "finishing", "exited" };
static const char *const stdio_names[] = { "null", "fds", "pipe", "pty" };
static const char *const net_names[] = { "none", "strict", "fallback" };

const char *session_net_name(enum session_net n)
{
	return net_names[n];
}

static struct json_object *status_json(const struct session *s)
{
	struct json_object *o = json_object_new_object();
	int st = s->exit_status;

	if (WIFEXITED(st)) {
		json_object_object_add(o, "exited", json_object_new_boolean(1));
		json_object_object_add(o, "code", json_object_new_int(WEXITSTATUS(st)));
	} else if (WIFSIGNALED(st)) {
		json_object_object_add(o, "exited", json_object_new_boolean(0));
		json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(st)));
		json_object_object_add(o, "signal_name", json_object_new_string(sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?"));
		json_object_object_add(o, "core_dumped", json_object_new_boolean(WCOREDUMP(st)));
	}
	return o;
}

static struct json_object *rusage_json(const struct rusage *ru)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "user_ms", json_object_new_int64(
		(int64_t)ru->ru_utime.tv_sec * 1000 + ru->ru_utime.tv_usec / 1000));
	json_object_object_add(o, "system_ms", json_object_new_int64(
		(int64_t)ru->ru_stime.tv_sec * 1000 + ru->ru_stime.tv_usec / 1000));
	json_object_object_add(o, "max_rss_kb", json_object_new_int64(ru->ru_maxrss));
	return o;
}

struct json_object *session_to_json(const struct session *s)
{
	struct json_object *o = json_object_new_object(), *argv = json_object_new_array();

	json_object_object_add(o, "id", json_object_new_string(s->id));
	json_object_object_add(o, "state", json_object_new_string(state_names[s->state]));
	json_object_object_add(o, "uid", json_object_new_int64(s->uid));
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	for (char **a = s->argv; a != NULL && *a != NULL; a++)
		json_object_array_add(argv, json_object_new_string(*a));
	json_object_object_add(o, "argv", argv);
	json_object_object_add(o, "cwd", json_object_new_string(s->cwd != NULL ? s->cwd : ""));
	if (s->workspace != NULL)
		json_object_object_add(o, "workspace", json_object_new_string(s->workspace));
	json_object_object_add(o, "stdio", json_object_new_string(stdio_names[s->stdio]));
	json_object_object_add(o, "network", json_object_new_string(net_names[s->net]));
	if (s->proxy_port != 0)
		json_object_object_add(o, "proxy_port", json_object_new_int(s->proxy_port));
	json_object_object_add(o, "policy_digest", json_object_new_string(s->policy_digest));
	json_object_object_add(o, "labels", json_object_get(s->labels) ? s->labels : json_object_new_object());
	json_object_object_add(o, "created_ms", json_object_new_int64((int64_t)s->created_ms));
	if (s->ended_ms != 0) {
		json_object_object_add(o, "ended_ms", json_object_new_int64((int64_t)s->ended_ms));
		json_object_object_add(o, "duration_ms",
				       json_object_new_int64((int64_t)(s->ended_ms - s->started_ms)));
		json_object_object_add(o, "status", status_json(s));
		json_object_object_add(o, "rusage", rusage_json(&s->rusage));
		json_object_object_add(o, "end_reason", json_object_new_string(s->end_reason));
	}
	if (s->limits != NULL)
		json_object_object_add(o, "limits", json_object_get(s->limits));
	if (s->report != NULL)
		json_object_object_add(o, "enforcement", json_object_get(s->report));
	if (s->snap != NULL)
		json_object_object_add(o, "snapshots", session_snap_json(s->snap));
	return o;
}

/*
 * History writes are queued and committed together every HISTORY_FLUSH_MS:
 * a transaction per session start would cost more than the start itself.
 * A crash loses at most that window of history, never the store's integrity.
 */
#define HISTORY_FLUSH_MS 100
#define HIST_INSERT 0x1
#define HIST_END 0x2

static struct event *ev_history;
static struct session **hist_queue;
static size_t hist_n, hist_cap;

static void history_write_insert(const struct session *s);
static void history_write_end(const struct session *s);

void session_history_flush(void)
{
	if (hist_n == 0)
		return;
	if (db_exec(nonod->db, "BEGIN;") < 0)
		log_errorx("session history: cannot begin a transaction");
	for (size_t i = 0; i < hist_n; i++) {
		struct session *s = hist_queue[i];

		if (s->hist_pending & HIST_INSERT)
			history_write_insert(s);
		if (s->hist_pending & HIST_END)
			history_write_end(s);
		s->hist_pending = 0;
		session_unref(s);
	}
	hist_n = 0;
	if (db_exec(nonod->db, "COMMIT;") < 0)
		db_exec(nonod->db, "ROLLBACK;");
}

static void history_on_timer(evutil_socket_t fd, short what, void *arg)
{
	session_history_flush();
}

static void history_queue(struct session *s, unsigned int what)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = HISTORY_FLUSH_MS * 1000 };

	if (s->hist_pending == 0) {
		if (hist_n == hist_cap) {
			size_t cap = hist_cap ? hist_cap * 2 : 64;
			struct session **q = realloc(hist_queue, cap * sizeof(*q));

			if (q == NULL) {
				log_errorx("session history: out of memory, %s not recorded", s->id);
				return;
			}
			hist_queue = q;
			hist_cap = cap;
		}
		hist_queue[hist_n++] = s;
		s->refs++;
	}
	s->hist_pending |= what;
	if (ev_history != NULL && !evtimer_pending(ev_history, NULL))
		evtimer_add(ev_history, &tv);
}

void session_history_insert(struct session *s)
{
	history_queue(s, HIST_INSERT);
}

static void session_history_end(struct session *s)
{
	history_queue(s, HIST_END);
}

static void history_write_insert(const struct session *s)
{
	struct json_object *argv = json_object_new_array();
	sqlite3_stmt *st;

	for (char **a = s->argv; *a != NULL; a++)
		json_object_array_add(argv, json_object_new_string(*a));
	if (sqlite3_prepare_v2(nonod->db,
			       "INSERT INTO sessions(id, uid, gid, argv, cwd, workspace, policy_digest, "
			       "labels, network, report, created_ms, snapshot_start) "
			       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
			       -1, &st, NULL) != SQLITE_OK) {
		log_errorx("sqlite: %s", sqlite3_errmsg(nonod->db));
		json_object_put(argv);
		return;
	}
	sqlite3_bind_text(st, 1, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, s->uid);
	sqlite3_bind_int64(st, 3, s->gid);
	sqlite3_bind_text(st, 4, json_object_to_json_string_ext(argv, JSON_C_TO_STRING_PLAIN), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, s->cwd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, s->workspace, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, s->policy_digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, s->labels != NULL ? json_object_to_json_string_ext(s->labels, JSON_C_TO_STRING_PLAIN) : "{}",
			  -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, net_names[s->net], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, s->report != NULL ? json_object_to_json_string_ext(s->report, JSON_C_TO_STRING_PLAIN) : NULL,
			  -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)s->created_ms);
	sqlite3_bind_text(st, 12, session_snap_id(s->snap, true), -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_errorx("sqlite: %s", sqlite3_errmsg(nonod->db));
	sqlite3_finalize(st);
	json_object_put(argv);
}

static void history_write_end(const struct session *s)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(nonod->db,
			       "UPDATE sessions SET ended_ms=?1, exit_code=?2, exit_signal=?3, end_reason=?4, "
			       "snapshot_exit=?6 WHERE id=?5", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)s->ended_ms);
	if (WIFEXITED(s->exit_status))
		sqlite3_bind_int(st, 2, WEXITSTATUS(s->exit_status));
	if (WIFSIGNALED(s->exit_status))
		sqlite3_bind_int(st, 3, WTERMSIG(s->exit_status));
	sqlite3_bind_text(st, 4, s->end_reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, s->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, session_snap_id(s->snap, false), -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_errorx("sqlite: %s", sqlite3_errmsg(nonod->db));
	sqlite3_finalize(st);
}

/* Parent pid of pid from /proc/PID/stat (the comm field may hold spaces and parens). */
static pid_t proc_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Is pid nonod itself or one of its descendants (i.e. a session's)? */
static bool pid_under_nonod(pid_t pid)
{
	pid_t self = getpid();

	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		if (pid == self)
			return true;
		pid = proc_ppid(pid);
	}
	return false;
}

int session_peer_in_session(const struct peer *peer)
{
	/* nonod never has other children than session processes, and as a
	 * child subreaper it inherits their orphans: so every process of every
	 * session descends from nonod, and no legitimate client does. */
	if (peer->pid <= 0)
		return 1; /* unknown: fail closed */
	return peer->pid != getpid() && pid_under_nonod(peer->pid);
}

/* Kill every process that descends from the session's leader or was orphaned from it. */
static void session_kill_procs(struct session *s)
{
	DIR *d;
	struct dirent *e;
	pid_t self = getpid();

	if (s->cgroup != NULL) {
		if (session_cgroup_kill(s->cgroup) != 0)
			s->cgroup_killed = true;
		return;
	}
	/* Without a cgroup: the process group/session first, then a /proc sweep
	 * for descendants that moved to their own group. */
	if (s->pid > 0)
		kill(-s->pid, SIGKILL);
	d = opendir("/proc");
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(e->d_name), p = pid;

		if (pid <= 1 || pid == self)
			continue;
		for (int depth = 0; p > 1 && depth < 4096; depth++) {
			if (p == s->pid) {
				kill(pid, SIGKILL);
				break;
			}
			p = proc_ppid(p);
			if (p == self)
				break; /* a direct child of nonod that is not this session's leader */
		}
	}
	closedir(d);
}

void session_kill_tree(struct session *s, const char *reason)
{
	if (s->state >= SESSION_FINISHING)
		return;
	if (s->end_reason[0] == '\0')
		snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
	session_kill_procs(s);
}

int session_signal(struct session *s, int sig)
{
	if (s->state >= SESSION_FINISHING)
		return -ESRCH;
	if (s->pidfd >= 0)
		return syscall(SYS_pidfd_send_signal, s->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
	return kill(s->pid, sig) < 0 ? -errno : 0;
}

static void waiter_free(struct session_waiter *w)
{
	if (w->timer != NULL)
		event_free(w->timer);
	free(w);
}

static void session_waiters_done(struct session *s)
{
	struct session_waiter *w;

	while ((w = s->waiters) != NULL) {
		s->waiters = w->next;
		rpc_reply_result(w->reply, session_to_json(s));
		waiter_free(w);
	}
}

static void waiter_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session_waiter *w = arg, **pp;
	struct rpc_error err;

	for (pp = &w->s->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	rpc_error_set(&err, NONO_E_TIMEOUT, "timeout_ms", "session %s still running", w->s->id);
	rpc_reply_error(w->reply, &err);
	waiter_free(w);
}

int session_wait(struct session *s, struct rpc_deferred *d, int64_t timeout_ms)
{
	struct session_waiter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	w->reply = d;
	w->s = s;
	if (timeout_ms >= 0) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

		w->timer = evtimer_new(nonod->base, waiter_on_timeout, w);
		if (w->timer == NULL || evtimer_add(w->timer, &tv) < 0) {
			waiter_free(w);
			return -ENOMEM;
		}
	}
	w->next = s->waiters;
	s->waiters = w;
	return 0;
}

static void session_on_wall(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	log_info("session %s: wall time limit reached", s->id);
	session_kill_tree(s, "wall time limit");
}

void session_spawned(struct session *s)
{
	struct json_object *r;

	if (s->state == SESSION_STARTING)
		s->state = SESSION_RUNNING;
	if (s->wall_ms != 0 && s->state == SESSION_RUNNING) {
		struct timeval tv = { .tv_sec = (time_t)(s->wall_ms / 1000),
				      .tv_usec = (suseconds_t)(s->wall_ms % 1000) * 1000 };

		s->ev_wall = evtimer_new(nonod->base, session_on_wall, s);
		if (s->ev_wall != NULL)
			evtimer_add(s->ev_wall, &tv);
	}
	r = session_to_json(s);
	if (s->pty_master >= 0) {
		rpc_reply_result_fds(s->create_reply, r, &s->pty_master, 1);
		close(s->pty_master);
		s->pty_master = -1;
	} else {
		rpc_reply_result(s->create_reply, r);
	}
	s->create_reply = NULL;
}

void session_spawn_failed(struct session *s, int code, const char *field, const char *fmt, ...)
{
	struct rpc_error err;
	va_list ap;

	va_start(ap, fmt);
	rpc_error_setv(&err, code, field, fmt, ap);
	va_end(ap);
	log_info("session %s: %s", s->id, err.detail);
	snprintf(s->end_reason, sizeof(s->end_reason), "failed to start: %.70s", err.detail);
	rpc_reply_error(s->create_reply, &err);
	s->create_reply = NULL;
	/* It never ran: no session.exited for its creator. */
	conn_unref(s->owner_conn);
	s->owner_conn = NULL;
}

static void session_finish(struct session *s);

static void session_on_exit_snapshot(int err, const char *detail, void *arg)
{
	struct session *s = arg;

	if (s->state == SESSION_FINISHING) { /* not given up on at shutdown */
		if (err < 0)
			log_warnx("session %s: exit snapshot failed: %s", s->id, detail);
		session_finish(s);
	}
	session_unref(s);
}

/* The leader is gone: kill what is left, take the exit snapshot, finish. */
static void session_ended(struct session *s, int status, const struct rusage *ru)
{
	bool ran = s->state == SESSION_RUNNING;
	int rc;

	s->exit_status = status;
	s->rusage = *ru;
	s->ended_ms = realtime_ms();
	if (s->end_reason[0] == '\0')
		snprintf(s->end_reason, sizeof(s->end_reason), "exited");
	session_kill_procs(s); /* whatever the leader left behind */
	s->state = SESSION_FINISHING;
	/* The pid is free for reuse now: drop the handle (signals to an ended
	 * session are refused by state). */
	if (s->pidfd >= 0) {
		close(s->pidfd);
		s->pidfd = -1;
	}
	if (s->ev_wall != NULL) {
		event_free(s->ev_wall);
		s->ev_wall = NULL;
	}
	log_info("session %s (uid %u) ended: %s, status 0x%x", s->id, (unsigned)s->uid,
		 s->end_reason, (unsigned)status);
	/* A session that never ran changed nothing: no exit snapshot. */
	if (ran && session_snap_wants(s->snap, false) && stop_expired) {
		session_snap_exit_failed(s->snap, -ECANCELED);
	} else if (ran && session_snap_wants(s->snap, false)) {
		s->refs++;
		rc = session_snap_take(s->snap, false, s->argv[0], session_on_exit_snapshot, s);
		if (rc == 0)
			return; /* session_finish() when it is taken */
		s->refs--;
		session_snap_exit_failed(s->snap, rc);
	}
	session_finish(s);
}

/* Record, notify, answer waiters, clean up. */
static void session_finish(struct session *s)
{
	struct json_object *note;

	s->state = SESSION_EXITED;
	n_exited++;
	/* the exit event can come before the pipes' last bytes were read */
	session_output_drain(s->output);
	/* Tell whoever waits first; the clean-up below is nobody's latency. */
	note = session_to_json(s);
	rpc_notify(s->owner_conn, "session.exited", note);
	conn_unref(s->owner_conn);
	s->owner_conn = NULL;
	session_waiters_done(s);
	session_remove_tmpdir(s);
	if (s->cgroup != NULL) {
		session_cgroup_release(s->cgroup, !s->cgroup_killed);
		s->cgroup = NULL;
	}
	session_history_end(s);
	session_proxy_stop(s);
	if (nonod->stopping && stop_done != NULL) {
		bool any = false;
		for (struct session *t = sessions; t != NULL; t = t->next)
			any |= t->state != SESSION_EXITED;
		if (!any) {
			void (*done)(void) = stop_done;
			stop_done = NULL;
			done();
		}
	}
}

static void sessions_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	for (;;) {
		struct rusage ru;
		struct session *s;
		int status;
		pid_t pid = wait4(-1, &status, WNOHANG, &ru);

		if (pid <= 0)
			break;
		for (s = sessions; s != NULL; s = s->next)
			if (s->pid == pid && s->state < SESSION_FINISHING) {
				session_reaped(s, status, &ru);
				break;
			}
		/* Other pids: a worker whose start the loop has not taken yet,
		 * or orphans of sessions re-parented to us (just reaped). */
		if (s == NULL)
			session_spawn_reaped(pid, status, &ru);
	}
}

void session_reaped(struct session *s, int status, const struct rusage *ru)
{
	if (s->create_reply != NULL)
		session_spawn_settle(s);
	session_ended(s, status, ru);
}

/* Keep this many ended sessions in memory (up to a batch more between two
 * trims); history stays in SQLite. */
#define SESSIONS_KEEP_ENDED 256
#define SESSIONS_GC_BATCH 64

void session_gc(void)
{
	unsigned int ended = 0;
	struct session **pp = &sessions;

	/* Called for every create: walk the table only once a batch has
	 * accumulated beyond the bound, not for each session. */
	if (n_exited <= SESSIONS_KEEP_ENDED + SESSIONS_GC_BATCH)
		return;
	while (*pp != NULL) {
		struct session *s = *pp;

		if (s->state == SESSION_EXITED && s->waiters == NULL && ++ended > SESSIONS_KEEP_ENDED) {
			*pp = s->next;
			n_exited--;
			session_unref(s);
			continue;
		}
		pp = &s->next;
	}
}

int sessions_init(void)
{
	int rc;

	if ((rc = db_migrate(nonod->db, "sessions", session_schema,
			     sizeof(session_schema) / sizeof(session_schema[0]))) < 0)
		return rc;
	/* Orphans of sessions come to us, so no process escapes tracking by double-forking. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("PR_SET_CHILD_SUBREAPER");
	ev_history = evtimer_new(nonod->base, history_on_timer, NULL);
	ev_sigchld = evsignal_new(nonod->base, SIGCHLD, sessions_on_sigchld, NULL);
	if (ev_history == NULL || ev_sigchld == NULL || event_add(ev_sigchld, NULL) < 0)
		return -ENOMEM;
	session_cgroup_init();
	rpc_peer_in_session = session_peer_in_session;
	stop_expired = false;
	return 0;
}

static void sessions_on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *next;

	stop_expired = true;
	for (struct session *s = sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state < SESSION_FINISHING) {
			log_warnx("session %s did not stop in time: killing its tree", s->id);
			session_kill_procs(s);
		} else if (s->state == SESSION_FINISHING) {
			/* A huge workspace must not hold the daemon up: the job is
			 * cancelled when the store closes, nothing of it committed. */
			log_warnx("session %s: exit snapshot not done in time: given up", s->id);
			session_snap_exit_failed(s->snap, -ECANCELED);
			session_finish(s);
		}
	}
}

void sessions_stop_all(unsigned int grace_ms, void (*done)(void))
{
	struct timeval tv = { .tv_sec = grace_ms / 1000, .tv_usec = (grace_ms % 1000) * 1000 };
	bool any = false;

	session_spawn_stopping(); /* queued starts: nobody will run them now */
	for (struct session *s = sessions; s != NULL; s = s->next) {
		if (s->state == SESSION_EXITED)
			continue;
		any = true;
		if (s->state == SESSION_FINISHING)
			continue; /* dead already; its exit snapshot ends it */
		snprintf(s->end_reason, sizeof(s->end_reason), "stopped by daemon shutdown");
		if (s->cgroup == NULL || session_cgroup_signal(s->cgroup, SIGTERM) < 0)
			kill(-s->pid, SIGTERM);
		session_signal(s, SIGTERM);
	}
	if (!any) {
		done();
		return;
	}
	stop_done = done;
	ev_stop_timer = evtimer_new(nonod->base, sessions_on_stop_timer, NULL);
	if (ev_stop_timer != NULL)
		evtimer_add(ev_stop_timer, &tv);
}

void sessions_fini(void)
{
	struct session *s;

	session_spawn_fini();
	while ((s = sessions) != NULL) {
		sessions = s->next;
		if (s->state < SESSION_FINISHING)
			session_kill_procs(s);
		while (s->waiters != NULL) {
			struct session_waiter *w = s->waiters;
			s->waiters = w->next;
			rpc_reply_result(w->reply, session_to_json(s));
			waiter_free(w);
		}
		conn_unref(s->owner_conn);
		s->owner_conn = NULL;
		if (s->ev_errpipe != NULL)
			event_free(s->ev_errpipe);
		if (s->ev_wall != NULL)
			event_free(s->ev_wall);
		if (s->errpipe >= 0)
			close(s->errpipe);
		if (s->cgroup != NULL) {
			session_cgroup_release(s->cgroup, !s->cgroup_killed);
			s->cgroup = NULL;
		}
		session_unref(s);
	}
	n_exited = 0;
	session_history_flush();
	free(hist_queue);
	hist_queue = NULL;
	hist_cap = 0;
	if (ev_history != NULL)
		event_free(ev_history);
	ev_history = NULL;
	session_cgroup_fini();
	session_netns_fini();
	if (ev_sigchld != NULL)
		event_free(ev_sigchld);
	if (ev_stop_timer != NULL)
		event_free(ev_stop_timer);
	ev_sigchld = ev_stop_timer = NULL;
	rpc_peer_in_session = NULL;
}
