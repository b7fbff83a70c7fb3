/*
 * Session spawn: everything is prepared in the daemon (policy resolution,
 * Landlock ruleset, seccomp program, environment, limits, stdio, cgroup,
 * network namespace) so that the child (session-child.c) only makes the few
 * syscalls it must. A spawner thread clones it (sandbox/spawn.h); exec
 * failure comes back over a close-on-exec pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "fdrelease.h"
#include "fsid.h"
#include "log.h"
#include "policy.h"
#include "probe.h"
#include "from-policy.h"
#include "sandbox.h"
#include "session-cgroup.h"
#include "session-netns.h"
#include "session-proxy.h"
#include "session-snapshot.h"
#include "session-child.h"
#include "session-spawn.h"
#include "spawn.h"



void spawn_request_release(struct spawn_request *r)
{
	if (r->argv != NULL)
		for (char **a = r->argv; *a != NULL; a++)
			free(*a);
	free(r->argv);
	free(r->cwd);
	free(r->workspace);
	r->argv = NULL;
	r->cwd = r->workspace = NULL;
	session_snap_free(r->snap);
	r->snap = NULL;
	fd_release_all(r->uid, r->fds, 3); /* the client's: closed off the loop */
}

/* ---- the daemon side ------------------------------------------------------ */

/*
 * Starting the worker (sandbox/spawn.h): the loop prepares what needs no
 * path of the user's, a spawner thread makes the TMPDIR, checks cwd and
 * workspace, compiles the sandbox (every policy path is opened there) and
 * clones, and the loop takes the result back from the spawner's eventfd.
 *
 * Anything that touches a path the user chose can be held by the user for
 * as long as they like: a policy path, cwd or exec path on a FUSE mount
 * whose server never answers (with allow_other, root's opens go to it
 * too), a worker stopped before its execve. Such a start holds its spawner
 * thread, never the loop: the loop does none of it, not even when every
 * thread is held (an earlier design compiled on the loop then, so eight
 * held starts and a ninth froze nonod for every user).
 *
 * So who may hold the threads is rationed:
 *  - one uid has at most SPAWN_USER_THREADS of the SPAWN_THREADS threads at
 *    once (jobs handed to the pool and not yet back); its further starts
 *    wait in its queue. A user who holds all of theirs delays only their
 *    own starts, and it takes SPAWN_THREADS / SPAWN_USER_THREADS users
 *    acting together to hold the pool.
 *  - a start that has to wait (its uid at its share, or no thread free for
 *    anyone) waits in one FIFO queue, bounded in all (SPAWN_QUEUE_MAX) and
 *    per uid (SPAWN_QUEUE_USER): beyond that it is refused at once with
 *    limit_exceeded. The bounds are large (a client may pipeline a thousand
 *    creates, and the starts move); queued starts hold what the loop
 *    prepared for them (fds, cgroup, proxy listener), as started sessions do.
 *  - a queued start fails with limit_exceeded, saying which resource was
 *    exhausted, once the threads it waits for (its uid's share, or the whole
 *    pool when that is what is full) have taken no new start for
 *    SPAWN_QUEUE_MS: they are held. A long queue that moves never fails.
 *  - a queued start whose client went away, or that is still queued when
 *    nonod stops, is failed and undone without reaching a thread. (It has
 *    no session in the table yet, so session.kill cannot name it: its
 *    creator has not learned the id.)
 * The fast path (a free thread within the share) is what it was: one
 * count over the jobs in flight and a hand-over.
 */
#define SPAWN_THREADS 16
#define SPAWN_USER_THREADS 4
#define SPAWN_QUEUE_MAX 8192
#define SPAWN_QUEUE_USER 2048
#define SPAWN_QUEUE_MS 10000

struct spawn_job {
	struct sandbox_spawn_job sj;  /* sj.arg = &ca */
	struct child_args ca;         /* read by the child until it has exec'd */
	struct session *s;            /* referenced */
	struct sandbox_spec *spec;    /* owned copy: compiled by the spawner thread */
	bool make_tmpdir;             /* prepare makes s->tmpdir first: */
	bool chown_tmpdir;            /* or only gives it (made by the loop) to the user */
	bool tmpdir_made;
	int tmpdir_rc;
	int dir_rc;                   /* cwd/workspace check: -errno, or 0 */
	const char *dir_field;        /*   and which ("cwd", "workspace") */
	int compile_rc;               /* sandbox_compile()'s, and its reason: */
	char why[512];
	struct sandbox_compiled *sc;  /* owned: the child reads it */
	struct conn *conn;            /* referenced */
	struct rpc_deferred *reply;   /* owned until answered */
	int child_stdio[3], errp[2], cgroup_fd, master;
	bool reaped;                  /* the reaper met the pid first: */
	int status;                   /*   its wait status */
	struct rusage ru;
	struct event *ev_deadline;    /* while queued */
	uint64_t moved_ms;            /* queued, or handed to the pool (monotonic) */
	struct spawn_job *next;       /* in flight, or queued */
};

static struct sandbox_spawner *spawner;
static struct event *ev_spawner;
static struct spawn_job *inflight;           /* handed to the pool */
static struct spawn_job *queued, **queued_tail = &queued; /* waiting for a thread, FIFO */
static unsigned int nqueued;

/*
 * May the worker share nonod's address space until it exec's? Only when it
 * keeps nonod's uid and gid (user mode, root's sessions). A worker that
 * drops to another user runs as that user for as long as the user likes
 * before execve (SIGSTOP, or an exec path on the user's FUSE mount that
 * never answers), and while it shares nonod's mm that mm's dumpability is
 * all that keeps ptrace, /proc/PID/mem, process_vm_* and core dumps away
 * from the user. Every credential change in nonod (the setfsuid() calls
 * made for other users' requests, commit_creds) resets that dumpability to
 * the fs.suid_dumpable of that moment: root setting it to 1 even briefly,
 * at any time while such a child is held, would hand the user nonod's
 * memory for reading and writing (shown by review with a FUSE-held child).
 * So other users' workers get a copy, as fork() gives: after their
 * setresuid the copy is as dumpable as the sysctl says, and holds no more
 * than fork() always exposed (secret buffers are MADV_WIPEONFORK). They
 * still start on a spawner thread, so holding one holds nothing else.
 */
static bool spawn_may_share_mm(const struct child_args *ca)
{
	return sandbox_spawn_can_share_mm() && ca->uid == geteuid() && ca->gid == getegid();
}

struct spawn_ctx {
	struct sandbox_spec_buf buf; /* the policy's rules, env and limits (sandbox/from-policy.c) */
	gid_t groups[256];
	int ngroups;
	uint16_t ports[1];
	char sockdir[4096];
};

static void spawn_ctx_free(struct spawn_ctx *x)
{
	sandbox_spec_buf_free(&x->buf);
}

/*
 * Beyond the policy: the session's own TMPDIR is always its to use, and
 * nonod's own files are never a worker's, whatever the policy allows around
 * them (a user-mode state dir sits under $HOME): the database, the master
 * key, the socket's directory, the configuration.
 */
static int spawn_own_rules(struct session *s, struct spawn_ctx *x, struct sandbox_spec *spec)
{
	const char *deny[3];
	char *slash;

	/* The socket's directory, unless it is a shared one that is not ours. */
	snprintf(x->sockdir, sizeof(x->sockdir), "%s", nonod->socket_path != NULL ? nonod->socket_path : "");
	slash = strrchr(x->sockdir, '/');
	if (x->sockdir[0] != '/' || slash == NULL || slash == x->sockdir)
		x->sockdir[0] = '\0';
	else
		*slash = '\0';
	if (strcmp(x->sockdir, "/tmp") == 0 || strcmp(x->sockdir, "/run") == 0)
		x->sockdir[0] = '\0';
	deny[0] = nonod->state_dir;
	deny[1] = x->sockdir[0] != '\0' ? x->sockdir : NULL;
	deny[2] = nonod->cfg->path;

	if (sandbox_spec_buf_add_path(&x->buf, spec, s->tmpdir, SANDBOX_WRITE, 0) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		if (deny[i] != NULL &&
		    sandbox_spec_buf_add_path(&x->buf, spec, deny[i], SANDBOX_DENY,
					      SANDBOX_PATH_OPTIONAL) < 0)
			return -ENOMEM;
	if (sandbox_spec_buf_setenv(&x->buf, spec, "TMPDIR", s->tmpdir) < 0 ||
	    sandbox_spec_buf_setenv(&x->buf, spec, "NONO_SESSION", s->id) < 0)
		return -ENOMEM;
	return 0;
}

/* Limits: cgroup where we have the controller, rlimits otherwise; say which. */
static struct json_object *spawn_limits(struct session *s, const struct policy_limits *l,
					struct sandbox_limits *rl, int *cgroup_fd)
{
	struct json_object *o = json_object_new_object();
	bool cg = session_cgroup_create(s->id, l->memory_set ? l->memory_bytes : 0,
					l->pids_set ? l->pids : 0, &s->cgroup, cgroup_fd) == 0;

#define LIMIT(key, set, val, how) do {                                               \
		struct json_object *e = json_object_new_object();                   \
		json_object_object_add(e, "value", (set) ? json_object_new_int64((int64_t)(val)) : NULL); \
		json_object_object_add(e, "enforced_by", (set) && (how) != NULL     \
				       ? json_object_new_string(how) : NULL);       \
		json_object_object_add(o, key, e);                                  \
	} while (0)

	if (cg && session_cgroup_has("memory"))
		rl->as = 0; /* the cgroup enforces it, not RLIMIT_AS */
	LIMIT("memory", l->memory_set, l->memory_bytes,
	      cg && session_cgroup_has("memory") ? "cgroup memory.max" : "RLIMIT_AS (address space)");
	if (cg && session_cgroup_has("pids"))
		rl->nproc = 0;
	LIMIT("pids", l->pids_set, l->pids,
	      cg && session_cgroup_has("pids") ? "cgroup pids.max"
	      : s->uid == 0 ? NULL /* the kernel exempts root from RLIMIT_NPROC */
			    : "RLIMIT_NPROC (counts every process of the uid)");
	LIMIT("files", l->files_set, l->files, "RLIMIT_NOFILE");
	LIMIT("cpu_seconds", l->cpu_set, l->cpu_seconds, "RLIMIT_CPU");
	LIMIT("wall_seconds", l->wall_set, l->wall_seconds, "nonod timer (kills the tree)");
	json_object_object_add(o, "tree", json_object_new_string(
		cg ? "cgroup (cgroup.kill)" : "process tree walk (nonod is a child subreaper)"));
#undef LIMIT
	return o;
}

/* A fallback-mode listener on the host's loopback, any port. */
static int spawn_host_listener(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int spawn_network(struct session *s, const struct policy *p, struct sandbox_spec *spec,
			 struct spawn_ctx *x, struct rpc_error *err)
{
	const struct sandbox_features *f = sandbox_probe();
	struct session_proxy_env penv = { 0 };
	char msg[256];
	int fd, rc;

	spec->net = SANDBOX_NET_NONE;
	spec->netns_fd = -1;
	if (p->n_allow == 0 && p->n_inject == 0 && p->n_routes == 0) {
		s->net = SESSION_NET_NONE;
		return 0;
	}
	if (f->cap_sys_admin && f->netns &&
	    session_netns_take(&s->netns_fd, &fd, &s->proxy_port, msg, sizeof(msg)) == 0) {
		s->net = SESSION_NET_STRICT;
		spec->net = SANDBOX_NET_NETNS;
		spec->netns_fd = s->netns_fd;
	} else {
		fd = spawn_host_listener(&s->proxy_port);
		if (fd < 0)
			return rpc_error_set(err, NONO_E_INTERNAL, "", "proxy listener: %s", strerror(-fd));
		s->net = SESSION_NET_FALLBACK;
		spec->net = SANDBOX_NET_PROXY;
	}
	x->ports[0] = s->proxy_port;
	spec->ports = x->ports;
	spec->nports = 1;
	/* The listener goes to the proxy with the policy's rules; the worker gets
	 * the proxy variables, the token, and the CA bundle. */
	rc = session_proxy_start(s, p, fd, &penv, err);
	for (size_t i = 0; rc == 0 && i < penv.n; i++) {
		char *eq = strchr(penv.vars[i], '=');

		*eq = '\0';
		if (sandbox_spec_buf_setenv(&x->buf, spec, penv.vars[i], eq + 1) < 0)
			rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		*eq = '=';
	}
	session_proxy_env_free(&penv);
	return rc;
}

/*
 * The private TMPDIR: /tmp/nono-<id>, 0700, owned by the worker's user.
 * Made on the spawner thread (before the compile, which resolves it) unless
 * the proxy writes its files there first (network sessions): with /tmp on
 * ext4, a mkdir after many deletions is one of the larger costs of a start
 * (the inode allocator skips recently deleted inodes one by one). The loop
 * then makes it root's, writes the proxy's files, and the spawner thread
 * gives it to the user: the loop never writes into a directory the user
 * owns (they could mount a FUSE file system on it that never answers).
 * The mkdir is in root's /tmp under a random name: nothing the user holds.
 * Returns 0, or -errno with *made saying whether the directory exists (and
 * is then removed with the session).
 */
static int spawn_tmpdir_give(const char *dir, uid_t uid, gid_t gid)
{
	if (geteuid() == 0 && uid != 0 && lchown(dir, uid, gid) < 0)
		return -errno;
	return 0;
}

static int spawn_tmpdir_mkdir(const char *dir, bool *made)
{
	*made = false;
	if (mkdir(dir, 0700) < 0)
		return -errno;
	*made = true;
	return 0;
}

static int spawn_tmpdir_make(const char *dir, uid_t uid, gid_t gid, bool *made)
{
	int rc = spawn_tmpdir_mkdir(dir, made);

	return rc < 0 ? rc : spawn_tmpdir_give(dir, uid, gid);
}

static int spawn_tmpdir_error(struct session *s, int rc, bool made, struct rpc_error *err)
{
	if (!made) {
		free(s->tmpdir); /* not ours: never removed */
		s->tmpdir = NULL;
		return rpc_error_set(err, NONO_E_INTERNAL, "", "cannot create the session's TMPDIR: %s",
				     strerror(-rc));
	}
	return rpc_error_set(err, NONO_E_INTERNAL, "", "chown TMPDIR: %s", strerror(-rc));
}

static int spawn_stdio(struct session *s, struct spawn_request *r, int child[3], int *master,
		       struct rpc_error *err)
{
	int p[2][2] = { { -1, -1 }, { -1, -1 } };

	*master = -1;
	switch (r->stdio) {
	case SESSION_STDIO_FDS:
		for (int i = 0; i < 3; i++) {
			child[i] = r->fds[i];
			r->fds[i] = -1;
		}
		return 0;
	case SESSION_STDIO_NULL:
	case SESSION_STDIO_PIPE:
		child[0] = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (r->stdio == SESSION_STDIO_NULL) {
			child[1] = open("/dev/null", O_RDWR | O_CLOEXEC);
			child[2] = open("/dev/null", O_RDWR | O_CLOEXEC);
		} else if (pipe2(p[0], O_CLOEXEC) == 0 && pipe2(p[1], O_CLOEXEC) == 0) {
			child[1] = p[0][1];
			child[2] = p[1][1];
			fcntl(p[0][0], F_SETFL, O_NONBLOCK);
			fcntl(p[1][0], F_SETFL, O_NONBLOCK);
			session_output_attach(s, p[0][0], p[1][0]);
		}
		break;
	case SESSION_STDIO_PTY: {
		char name[64];
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), sl = -1;

		if (m >= 0 && unlockpt(m) == 0 && ptsname_r(m, name, sizeof(name)) == 0)
			sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (sl >= 0 && geteuid() == 0 && s->uid != 0 && fchown(sl, s->uid, (gid_t)-1) < 0)
			log_warn("fchown %s", name);
		if (sl < 0) {
			if (m >= 0)
				close(m);
			return rpc_error_set(err, NONO_E_INTERNAL, "stdio", "cannot allocate a pty: %s",
					     strerror(errno));
		}
		*master = m;
		child[0] = sl;
		child[1] = dup(sl);
		child[2] = dup(sl);
		break;
	}
	}
	for (int i = 0; i < 3; i++)
		if (child[i] < 0)
			return rpc_error_set(err, NONO_E_INTERNAL, "stdio", "stdio set-up: %s",
					     strerror(errno));
	return 0;
}

static void spawn_on_errpipe(evutil_socket_t fd, short what, void *arg);

/*
 * Turn what the child reported into the reply to session.create. final:
 * the child is gone (reaped), so what it wrote is in the pipe, and no
 * report means it exec'd (or was killed before): never wait for an EOF
 * then, which a descriptor copied into another child could delay.
 */
static void spawn_finish(struct session *s, bool final)
{
	struct child_msg m;
	ssize_t n;

	if (s->create_reply == NULL)
		return;
	n = read(s->errpipe, &m, sizeof(m));
	if (n < 0 && errno == EAGAIN && !final)
		return; /* neither exec nor a report yet */
	if (s->ev_errpipe != NULL) {
		event_free(s->ev_errpipe);
		s->ev_errpipe = NULL;
	}
	close(s->errpipe);
	s->errpipe = -1;
	if (n != (ssize_t)sizeof(m)) {
		session_spawned(s); /* EOF: execve succeeded and closed the pipe */
		return;
	}
	switch (m.step) {
	case CHILD_EXEC:
		if (m.err == ENOENT)
			session_spawn_failed(s, NONO_E_EXEC_FAILED, "argv[0]", "not found: %s", s->argv[0]);
		else if (m.err == EACCES || m.err == ENOEXEC || m.err == EISDIR)
			session_spawn_failed(s, NONO_E_EXEC_FAILED, "argv[0]",
					     "not executable: %s: %s (not allowed by the policy, or "
					     "not an executable file)", s->argv[0], strerror(m.err));
		else
			session_spawn_failed(s, NONO_E_EXEC_FAILED, "argv[0]", "cannot execute %s: %s",
					     s->argv[0], strerror(m.err));
		break;
	case CHILD_CHDIR:
		session_spawn_failed(s, NONO_E_EXEC_FAILED, "cwd", "cannot enter %s: %s", s->cwd,
				     strerror(m.err));
		break;
	default:
		if (m.step >= CHILD_SANDBOX)
			session_spawn_failed(s, NONO_E_SANDBOX_UNAVAILABLE, "",
					     "applying the sandbox failed at %s: %s",
					     sandbox_step_name((enum sandbox_step)(m.step - CHILD_SANDBOX)),
					     strerror(m.err));
		else
			session_spawn_failed(s, NONO_E_INTERNAL, "", "worker set-up step %d failed: %s",
					     m.step, strerror(m.err));
	}
}

static void spawn_on_errpipe(evutil_socket_t fd, short what, void *arg)
{
	spawn_finish(arg, false);
}

/* Called by session.c when the leader is reaped before its pipe was read. */
void session_spawn_settle(struct session *s)
{
	if (s->errpipe >= 0)
		spawn_finish(s, true);
}

static int spawn_resolve_policy(struct session *s, struct spawn_request *r, struct rpc_error *err)
{
	struct policy_vars vars = { .workspace = s->workspace, .tmpdir = s->tmpdir };
	struct policy_error perr;
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc;

	if (getpwuid_r(s->uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL && pw.pw_dir[0] == '/')
		vars.home = pw.pw_dir;
	memset(&perr, 0, sizeof(perr));
	/* The digest is of the policy as written (variables unexpanded), the
	 * same one policy.validate and `nonoctl policy check` print, so audit
	 * records and signatures name one thing. */
	if (policy_digest(r->policy, s->policy_digest) < 0)
		return rpc_error_set(err, NONO_E_INTERNAL, "policy", "cannot digest the policy");
	if ((rc = policy_resolve(r->policy, &vars, &perr)) < 0 ||
	    (rc = policy_merge_base(r->policy)) < 0)
		return rpc_error_set(err, NONO_E_POLICY_INVALID, perr.path[0] ? perr.path : "policy",
				     "%s", perr.message[0] ? perr.message : "cannot resolve the policy");
	return 0;
}


static int spawn_creds(struct session *s, struct spawn_ctx *x, struct sandbox_spec *spec)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0)
		return 0; /* user mode: workers run as the daemon's (= the caller's) uid */
	spec->creds.set = true;
	spec->creds.uid = s->uid;
	spec->creds.gid = s->gid;
	x->ngroups = (int)(sizeof(x->groups) / sizeof(x->groups[0]));
	if (getpwuid_r(s->uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
		if (getgrouplist(pw.pw_name, s->gid, x->groups, &x->ngroups) < 0)
			x->ngroups = 0;
	} else {
		x->ngroups = 0; /* a uid without a passwd entry gets no supplementary groups */
	}
	spec->creds.groups = x->ngroups > 0 ? x->groups : NULL;
	spec->creds.ngroups = (size_t)x->ngroups;
	return 0;
}

/*
 * Compile with the worker's filesystem identity: resolving the policy's
 * paths and walking deny carve-outs must not see what the user cannot.
 * setfsuid/setfsgid are per-thread: this runs on the spawner thread that
 * will clone the worker (never on the loop), and restores the thread's
 * identity before returning.
 */
static int spawn_compile_as(const struct session *s, const struct sandbox_spec *spec,
			    struct sandbox_compiled **sc, char *why, size_t len)
{
	struct fsid_saved old;
	int rc;

	if (geteuid() != 0 || s->uid == 0)
		return sandbox_compile(spec, sc, why, len);
	if (fsid_enter(s->uid, s->gid, &old) < 0) {
		snprintf(why, len, "cannot take uid %u's file identity", (unsigned)s->uid);
		return -EPERM;
	}
	rc = sandbox_compile(spec, sc, why, len);
	fsid_leave(&old);
	return rc;
}

/*
 * cwd and workspace are directories the worker's user can reach, checked
 * here with that user's filesystem identity (a path only root can see is
 * not confirmed to exist) and off the loop (the path may be on the user's
 * FUSE mount). The child's chdir is the final word.
 */
static int spawn_check_dir(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static void spawn_check_dirs(struct spawn_job *job)
{
	struct fsid_saved old;
	bool as_user = geteuid() == 0 && job->s->uid != 0;

	if (as_user && fsid_enter(job->s->uid, job->s->gid, &old) < 0) {
		job->dir_field = "cwd";
		job->dir_rc = -EPERM;
		return;
	}
	job->dir_field = "cwd";
	job->dir_rc = job->s->cwd != NULL ? spawn_check_dir(job->s->cwd) : 0;
	if (job->dir_rc == 0 && job->s->workspace != NULL &&
	    (job->s->cwd == NULL || strcmp(job->s->cwd, job->s->workspace) != 0)) {
		job->dir_field = "workspace";
		job->dir_rc = spawn_check_dir(job->s->workspace);
	}
	if (as_user)
		fsid_leave(&old);
}

/* On the spawner thread, before the clone: the TMPDIR, the directory
 * checks, the sandbox compiled with the worker's filesystem identity
 * (setfsuid is per thread). Everything that may touch a user's path. */
static int spawn_job_prepare(struct sandbox_spawn_job *sj)
{
	struct spawn_job *job = sj->user;

	if (job->make_tmpdir)
		job->tmpdir_rc = spawn_tmpdir_make(job->s->tmpdir, job->s->uid, job->s->gid,
						   &job->tmpdir_made);
	else if (job->chown_tmpdir)
		job->tmpdir_rc = spawn_tmpdir_give(job->s->tmpdir, job->s->uid, job->s->gid);
	if (job->tmpdir_rc < 0)
		return job->tmpdir_rc;
	spawn_check_dirs(job);
	if (job->dir_rc < 0)
		return job->dir_rc;
	job->compile_rc = spawn_compile_as(job->s, job->spec, &job->sc, job->why,
					   sizeof(job->why));
	if (job->compile_rc < 0)
		return job->compile_rc;
	job->ca.sc = job->sc;
	job->ca.envp = sandbox_compiled_envp(job->sc);
	sj->share_mm = spawn_may_share_mm(&job->ca);
	return 0;
}

/* A failed compile as the reply to session.create. */
static void spawn_compile_error(const struct spawn_job *job, struct rpc_error *err)
{
	int rc = job->compile_rc;

	if (rc == -ENOENT)
		rpc_error_set(err, NONO_E_POLICY_INVALID, "policy.filesystem", "%s", job->why);
	else if (rc == -EOPNOTSUPP)
		rpc_error_set(err, NONO_E_SANDBOX_UNAVAILABLE, "", "%s", job->why);
	else if (rc == -EINVAL)
		rpc_error_set(err, NONO_E_POLICY_INVALID, "policy", "%s", job->why);
	else
		rpc_error_set(err, NONO_E_INTERNAL, "", "%s", job->why);
}

/* What is enforced, for session.get and the history row. */
static void spawn_report(struct session *s, const struct sandbox_compiled *sc)
{
	s->report = sandbox_report_to_json(sandbox_compiled_report(sc));
	if (s->report == NULL)
		return;
	json_object_object_add(s->report, "network", json_object_new_string(session_net_name(s->net)));
	if (s->net == SESSION_NET_FALLBACK)
		json_object_object_add(s->report, "network_detail", json_object_new_string(
			"no network namespace: Landlock allows TCP to the proxy port on any "
			"host, so destination hosts on that port are not enforced by the kernel"));
}

/* What the child had: closed once it has exec'd (or never will). */
static void spawn_job_close_child_side(struct spawn_job *job)
{
	for (int i = 0; i < 3; i++) /* in mode fds the client's: off the loop */
		if (job->child_stdio[i] >= 0 && job->s->stdio == SESSION_STDIO_FDS)
			fd_release(job->s->uid, job->child_stdio[i]);
		else if (job->child_stdio[i] >= 0)
			close(job->child_stdio[i]);
	if (job->errp[1] >= 0)
		close(job->errp[1]);
	if (job->cgroup_fd >= 0)
		close(job->cgroup_fd);
	job->child_stdio[0] = job->child_stdio[1] = job->child_stdio[2] = -1;
	job->errp[1] = job->cgroup_fd = -1;
	sandbox_compiled_free(job->sc);
	job->sc = NULL;
}

static void spawn_job_unlink(struct spawn_job *job)
{
	for (struct spawn_job **pp = &inflight; *pp != NULL; pp = &(*pp)->next)
		if (*pp == job) {
			*pp = job->next;
			break;
		}
}

/* No worker: answer the create with err, undo what was prepared. */
static void spawn_job_fail(struct spawn_job *job, const struct rpc_error *err)
{
	struct session *s = job->s;

	spawn_job_close_child_side(job);
	sandbox_spec_dup_free(job->spec);
	if (job->errp[0] >= 0)
		close(job->errp[0]);
	if (job->master >= 0)
		close(job->master);
	rpc_reply_error(job->reply, err);
	conn_unref(job->conn);
	if (s->cgroup != NULL)
		session_cgroup_remove(s->cgroup);
	session_unref(s);
	free(job);
}

/* The spawner cloned (or failed to): the session starts here. */
static void spawn_job_done(struct spawn_job *job)
{
	struct session *s = job->s;
	pid_t pid = sandbox_spawn_job_pid(&job->sj);

	spawn_job_unlink(job);
	if (job->tmpdir_rc < 0 || job->compile_rc < 0 || job->sj.err < 0 || pid <= 0) {
		struct rpc_error err;

		if (job->tmpdir_rc < 0)
			spawn_tmpdir_error(s, job->tmpdir_rc, job->tmpdir_made || job->chown_tmpdir, &err);
		else if (job->dir_rc < 0)
			rpc_error_set(&err, NONO_E_INVALID_PARAMS, job->dir_field, "%s: %s",
				      strcmp(job->dir_field, "cwd") == 0 ? s->cwd : s->workspace,
				      job->dir_rc == -ENOTDIR ? "not a directory"
							      : strerror(-job->dir_rc));
		else if (job->sj.err == -ECANCELED)
			rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
		else if (job->compile_rc < 0)
			spawn_compile_error(job, &err);
		else
			rpc_error_set(&err, NONO_E_LIMIT_EXCEEDED, "", "fork: %s",
				      strerror(job->sj.err < 0 ? -job->sj.err : EAGAIN));
		spawn_job_fail(job, &err);
		return;
	}
	spawn_report(s, job->sc);
	sandbox_spec_dup_free(job->spec);
	job->spec = NULL;
	s->pid = pid;
	/* Not reaped yet (the reaper hands unknown pids to session_spawn_reaped),
	 * so the pid is still this child's. */
	s->pidfd = job->reaped ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
	s->started_ms = s->created_ms;
	s->state = SESSION_STARTING;
	spawn_job_close_child_side(job);
	s->errpipe = job->errp[0];
	fcntl(s->errpipe, F_SETFL, O_NONBLOCK);
	s->owner_conn = job->conn;
	s->create_reply = job->reply;
	s->pty_master = job->master;
	session_register(s);
	session_history_insert(s);
	s->ev_errpipe = event_new(nonod->base, s->errpipe, EV_READ | EV_PERSIST, spawn_on_errpipe, s);
	log_info("session %s: uid %u started pid %d (%s) network %s%s", s->id, (unsigned)s->uid,
		 (int)pid, s->argv[0], session_net_name(s->net), job->sj.shared ? "" : " (copy)");
	if (job->reaped) {
		session_reaped(s, job->status, &job->ru);
	} else if (job->sj.shared) {
		/* CLONE_VFORK returned: the child has exec'd or exited, and any
		 * report of its is in the pipe already. */
		spawn_finish(s, true);
	} else if (s->ev_errpipe == NULL || event_add(s->ev_errpipe, NULL) < 0) {
		log_errorx("session %s: out of memory after fork", s->id);
		session_kill_tree(s, "daemon out of memory");
	}
	if (nonod->stopping && s->state < SESSION_FINISHING) {
		snprintf(s->end_reason, sizeof(s->end_reason), "stopped by daemon shutdown");
		session_signal(s, SIGTERM);
	}
	free(job);
}

/* ---- rationing the spawner threads (see SPAWN_USER_THREADS) -------------- */

static uint64_t spawn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned int spawn_count(const struct spawn_job *list, uid_t uid)
{
	unsigned int n = 0;

	for (const struct spawn_job *j = list; j != NULL; j = j->next)
		n += j->s->uid == uid;
	return n;
}

static unsigned int spawn_count_all(const struct spawn_job *list)
{
	unsigned int n = 0;

	for (const struct spawn_job *j = list; j != NULL; j = j->next)
		n++;
	return n;
}

static void spawn_unqueue(struct spawn_job *job)
{
	for (struct spawn_job **pp = &queued; *pp != NULL; pp = &(*pp)->next)
		if (*pp == job) {
			*pp = job->next;
			if (*pp == NULL)
				queued_tail = pp;
			job->next = NULL;
			nqueued--;
			break;
		}
	if (job->ev_deadline != NULL) {
		event_free(job->ev_deadline);
		job->ev_deadline = NULL;
	}
}

/* A queued start that never reached a thread: answer err, undo it all. */
static void spawn_queued_fail(struct spawn_job *job, const struct rpc_error *err)
{
	spawn_unqueue(job);
	spawn_job_fail(job, err);
}

/* What was exhausted, in the caller's terms: their own use, and only
 * whether the rest of the pool was free (not what others are doing). */
static void spawn_exhausted(struct rpc_error *err, uid_t uid, const char *what)
{
	unsigned int mine = spawn_count(inflight, uid);

	rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "spawner",
		      "resource exhausted: %s (uid %u holds %u of its share of %u spawner threads, "
		      "with %u of its starts waiting%s)", what, (unsigned)uid, mine,
		      SPAWN_USER_THREADS, spawn_count(queued, uid),
		      mine < SPAWN_USER_THREADS ? "; every other thread is in use" : "");
}

/*
 * Hand queued starts to the pool, oldest first, skipping those whose uid
 * holds its share, until the pool has no thread free. Starts whose client
 * went away, and all of them once nonod stops, fail here instead.
 */
static void spawn_dispatch(void)
{
	struct spawn_job *job = queued, *nx;
	struct rpc_error err;

	for (; job != NULL; job = nx) {
		nx = job->next;
		if (nonod->stopping) {
			rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
			spawn_queued_fail(job, &err);
			continue;
		}
		if (conn_is_dead(job->conn)) {
			log_info("session %s: start abandoned by its client while waiting for a "
				 "spawner thread", job->s->id);
			rpc_error_set(&err, NONO_E_INTERNAL, "", "abandoned");
			spawn_queued_fail(job, &err);
			continue;
		}
		if (spawn_count(inflight, job->s->uid) >= SPAWN_USER_THREADS)
			continue;
		switch (sandbox_spawner_submit(spawner, &job->sj)) {
		case 0:
			spawn_unqueue(job);
			job->moved_ms = spawn_now_ms();
			job->next = inflight;
			inflight = job;
			break;
		case -EAGAIN:
			return; /* no thread free for anyone: wait for one to come back */
		default:
			rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
			spawn_queued_fail(job, &err);
			break;
		}
	}
}

/*
 * When did the threads job waits for last take a start? Its uid's own, when
 * it holds its share; else the pool's (full: every thread is in flight).
 */
static uint64_t spawn_last_move(const struct spawn_job *job)
{
	bool at_share = spawn_count(inflight, job->s->uid) >= SPAWN_USER_THREADS;
	uint64_t t = job->moved_ms;

	for (const struct spawn_job *j = inflight; j != NULL; j = j->next)
		if ((!at_share || j->s->uid == job->s->uid) && j->moved_ms > t)
			t = j->moved_ms;
	return t;
}

static void spawn_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct spawn_job *job = arg;
	uint64_t now = spawn_now_ms(), moved = spawn_last_move(job);
	struct rpc_error err;
	char what_[128];

	if (moved + SPAWN_QUEUE_MS > now) {
		/* The queue moves: wait on, until it has stood still that long. */
		uint64_t left = moved + SPAWN_QUEUE_MS - now;
		struct timeval tv = { .tv_sec = (time_t)(left / 1000),
				      .tv_usec = (suseconds_t)(left % 1000) * 1000 };

		if (evtimer_add(job->ev_deadline, &tv) == 0)
			return;
	}
	snprintf(what_, sizeof(what_), "the spawner threads this start waits for took no new "
		 "start for %u s (held)", SPAWN_QUEUE_MS / 1000);
	spawn_exhausted(&err, job->s->uid, what_);
	log_info("session %s: uid %u: %s%s", job->s->id, (unsigned)job->s->uid, err.detail,
		 conn_is_dead(job->conn) ? " (its client had gone)" : "");
	spawn_queued_fail(job, &err);
}

/*
 * May a start of uid's wait for a thread, if it has to? 0, or
 * NONO_E_LIMIT_EXCEEDED with err filled (refused at once).
 */
static int spawn_admit(uid_t uid, struct rpc_error *err)
{
	if (nqueued < SPAWN_QUEUE_MAX && spawn_count(queued, uid) < SPAWN_QUEUE_USER)
		return 0;
	if (spawn_count(inflight, uid) < SPAWN_USER_THREADS &&
	    spawn_count_all(inflight) < SPAWN_THREADS)
		return 0; /* it will not wait: a thread is free, within its share */
	spawn_exhausted(err, uid, nqueued >= SPAWN_QUEUE_MAX
			? "too many starts are waiting for a spawner thread"
			: "too many of this user's starts are waiting for a spawner thread");
	log_debug("uid %u: %s", (unsigned)uid, err->detail); /* the user can repeat it at will */
	return err->code;
}

/* Queue the prepared job and dispatch; it waits (with a deadline) if it
 * must. 0, or NONO_E_INTERNAL with err filled (the job is not queued). */
static int spawn_enqueue(struct spawn_job *job, struct rpc_error *err)
{
	struct timeval tv = { .tv_sec = SPAWN_QUEUE_MS / 1000,
			      .tv_usec = (SPAWN_QUEUE_MS % 1000) * 1000 };

	job->next = NULL;
	job->moved_ms = spawn_now_ms();
	*queued_tail = job;
	queued_tail = &job->next;
	nqueued++;
	spawn_dispatch();
	for (struct spawn_job *j = queued; j != NULL; j = j->next) {
		if (j != job)
			continue;
		/* Still waiting: give it its deadline. */
		job->ev_deadline = evtimer_new(nonod->base, spawn_on_deadline, job);
		if (job->ev_deadline == NULL || evtimer_add(job->ev_deadline, &tv) < 0) {
			spawn_unqueue(job);
			return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		}
		log_debug("session %s: uid %u waits for a spawner thread (%u waiting)", job->s->id,
			  (unsigned)job->s->uid, nqueued);
		break;
	}
	return 0;
}

static void spawn_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct sandbox_spawn_job *sj;

	while ((sj = sandbox_spawner_next(spawner)) != NULL)
		spawn_job_done(sj->user);
	if (queued != NULL)
		spawn_dispatch();
}

/* The spawner pool and its event, on first use. 0 or -1 with errno. */
static int spawn_start(void)
{
	int rc;

	if (spawner != NULL)
		return 0;
	if ((rc = sandbox_spawner_new(SPAWN_THREADS, &spawner)) < 0) {
		errno = -rc;
		log_warn("spawner");
		return -1;
	}
	ev_spawner = event_new(nonod->base, sandbox_spawner_fd(spawner), EV_READ | EV_PERSIST,
			       spawn_on_done, NULL);
	if (ev_spawner == NULL || event_add(ev_spawner, NULL) < 0) {
		if (ev_spawner != NULL)
			event_free(ev_spawner);
		ev_spawner = NULL;
		sandbox_spawner_free(spawner);
		spawner = NULL;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

bool session_spawn_reaped(pid_t pid, int status, const struct rusage *ru)
{
	for (struct spawn_job *j = inflight; j != NULL; j = j->next)
		if (!j->reaped && sandbox_spawn_job_pid(&j->sj) == pid) {
			j->reaped = true;
			j->status = status;
			j->ru = *ru;
			return true;
		}
	return false;
}

/*
 * Shutdown, after the pool gave up threads still held in the kernel: their
 * jobs stay theirs (the thread may still read them), but the creator gets
 * its answer, and what the loop can undo without touching a path the user
 * could hold is undone: the cgroup (empty: no clone after a stop), and the
 * TMPDIR by a plain rmdir (it does not look inside: a FUSE mount on it is
 * EBUSY, not a hang; a network session's CA files keep it, with a log).
 */
static void spawn_abandon_held(const struct rpc_error *err)
{
	for (struct spawn_job *job = inflight; job != NULL; job = job->next) {
		struct session *s = job->s;

		if (job->reply != NULL) {
			rpc_reply_error(job->reply, err);
			job->reply = NULL;
		}
		if (s->cgroup != NULL)
			session_cgroup_remove(s->cgroup);
		if (s->tmpdir != NULL && rmdir(s->tmpdir) < 0 && errno != ENOENT)
			log_warn("session %s: rmdir %s", s->id, s->tmpdir);
		log_info("session %s: start given up at shutdown, held in the kernel", s->id);
	}
}

void session_spawn_stopping(void)
{
	struct rpc_error err;

	rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
	while (queued != NULL)
		spawn_queued_fail(queued, &err);
}

void session_spawn_fini(void)
{
	struct sandbox_spawn_job *sj;
	struct rpc_error err;

	if (spawner == NULL)
		return;
	session_spawn_stopping();
	rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
	/* Children still before exec are killed; the others too, here: no
	 * session of theirs was registered for the shutdown to stop. */
	if (sandbox_spawner_stop(spawner) < 0)
		log_warnx("a start is stuck in the kernel (a worker killed before its exec, or "
			  "a path on a file system that does not answer); leaving its spawner "
			  "thread behind");
	while ((sj = sandbox_spawner_next(spawner)) != NULL) {
		struct spawn_job *job = sj->user;
		pid_t pid = sandbox_spawn_job_pid(sj);

		spawn_job_unlink(job);
		if (sj->err == 0 && pid > 0 && !job->reaped) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, WNOHANG); /* else init reaps it after us */
		}
		spawn_job_fail(job, &err);
	}
	spawn_abandon_held(&err);
	event_free(ev_spawner);
	ev_spawner = NULL;
	sandbox_spawner_free(spawner);
	spawner = NULL;
}

/*
 * fs.suid_dumpable 1 makes a process ptraceable by its user after it drops
 * to that user: a worker, still a copy of nonod (OpenSSL's heap, the proxy
 * CA key) until its execve, would be readable by the session's user for as
 * long as they hold it there. Refuse other users' sessions then (0 and 2
 * keep ptrace away; 2 dumps cores for root only).
 */
static int spawn_check_dumpable(struct rpc_error *err)
{
	char v[4] = "";
	int fd = open("/proc/sys/fs/suid_dumpable", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, v, sizeof(v) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n >= 1 && v[0] != '1')
		return 0;
	return rpc_error_set(err, NONO_E_SANDBOX_UNAVAILABLE, "",
			     n >= 1 ? "fs.suid_dumpable is 1: another user's worker could be ptraced by "
				      "that user before its exec (set it to 0 or 2)"
				    : "cannot read fs.suid_dumpable");
}

int session_spawn(struct spawn_request *r, struct conn *conn, struct rpc_deferred *reply,
		  struct rpc_error *err)
{
	static char *const empty_env[] = { NULL };
	struct session *s = session_new(r->uid, r->gid);
	struct sandbox_spec spec;
	struct spawn_ctx x;
	struct spawn_job *job = NULL;
	int child_stdio[3] = { -1, -1, -1 }, master = -1, errp[2] = { -1, -1 }, cgroup_fd = -1;
	bool make_tmpdir_later;
	int rc;

	memset(&spec, 0, sizeof(spec));
	memset(&x, 0, sizeof(x));
	spec.netns_fd = -1;
	if (s == NULL) {
		spawn_request_release(r);
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	}
	s->argv = r->argv;
	s->cwd = r->cwd;
	s->workspace = r->workspace;
	r->argv = NULL;
	r->cwd = r->workspace = NULL;
	s->stdio = r->stdio;
	s->labels = json_object_get(r->labels);
	s->snap = r->snap; /* automatic snapshots: the start one is named after this id */
	r->snap = NULL;
	if (s->snap != NULL)
		snprintf(s->id, sizeof(s->id), "%s", session_snap_session_id(s->snap));

	if ((s->uid != geteuid() || s->gid != getegid()) && (rc = spawn_check_dumpable(err)) < 0)
		goto fail;
	if ((rc = spawn_admit(s->uid, err)) < 0)
		goto fail;
	if (asprintf(&s->tmpdir, "/tmp/nono-%s", s->id) < 0) {
		s->tmpdir = NULL;
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto fail;
	}
	make_tmpdir_later = r->policy->n_allow == 0 && r->policy->n_inject == 0 &&
			    r->policy->n_routes == 0; /* else the proxy writes into it */
	if (!make_tmpdir_later) {
		bool made;

		if ((rc = spawn_tmpdir_mkdir(s->tmpdir, &made)) < 0) {
			rc = spawn_tmpdir_error(s, rc, made, err);
			goto fail;
		}
	}
	if ((rc = spawn_resolve_policy(s, r, err)) < 0)
		goto fail;
	if (sandbox_spec_from_policy(r->policy, &x.buf, &spec) < 0 || spawn_own_rules(s, &x, &spec) < 0) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto fail;
	}
	spec.netns_fd = -1;
	if ((rc = spawn_network(s, r->policy, &spec, &x, err)) < 0)
		goto fail;
	s->limits = spawn_limits(s, &r->policy->limits, &spec.limits, &cgroup_fd);
	if (r->policy->limits.wall_set)
		s->wall_ms = r->policy->limits.wall_seconds * 1000;
	if (r->wall_ms != 0 && (s->wall_ms == 0 || r->wall_ms < s->wall_ms))
		s->wall_ms = r->wall_ms;
	spawn_creds(s, &x, &spec);
	spec.env.from = r->environ != NULL ? r->environ : empty_env; /* never the daemon's environ */
	spec.best_effort = r->policy->enforcement == POLICY_ENFORCE_BEST_EFFORT;
	/* Strict mode: where namespaces can be had, everything outside the
	 * writable paths is read-only, which closes Landlock's metadata gap
	 * (chmod/chown/utimes/xattr). Elsewhere the report says it is open. */
	spec.readonly_mounts = sandbox_probe()->cap_sys_admin && sandbox_probe()->mountns;
	/* And /tmp, /run, /var/tmp are hidden but for what the policy allows:
	 * the unix sockets there (tmux, agents, X11, D-Bus, docker) are out of
	 * the worker's reach, which Landlock alone cannot do. */
	spec.hide_shared_dirs = spec.readonly_mounts;

	if ((rc = spawn_stdio(s, r, child_stdio, &master, err)) < 0)
		goto fail;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "pipe: %s", strerror(errno));
		goto fail;
	}

	if (spawn_start() < 0 || (job = calloc(1, sizeof(*job))) == NULL) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "cannot start a spawner: %s",
				   strerror(spawner == NULL ? errno : ENOMEM));
		goto fail;
	}
	if ((job->spec = sandbox_spec_dup(&spec)) == NULL) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto fail;
	}
	job->ca = (struct child_args){
		.argv = s->argv, .cwd = s->cwd, /* .sc, .envp: once compiled */
		.stdio = { child_stdio[0], child_stdio[1], child_stdio[2] },
		.pty = s->stdio == SESSION_STDIO_PTY, .errfd = errp[1],
		.uid = spec.creds.set ? spec.creds.uid : geteuid(),
		.gid = spec.creds.set ? spec.creds.gid : getegid(),
	};
	job->make_tmpdir = make_tmpdir_later;
	job->chown_tmpdir = !make_tmpdir_later;
	job->sj.child = session_child_main;
	job->sj.prepare = spawn_job_prepare;
	job->sj.arg = &job->ca;
	job->sj.cgroup_fd = cgroup_fd;
	job->sj.user = job;
	job->s = s;
	job->conn = conn_ref(conn);
	job->reply = reply;
	memcpy(job->child_stdio, child_stdio, sizeof(child_stdio));
	memcpy(job->errp, errp, sizeof(errp));
	job->cgroup_fd = cgroup_fd;
	job->master = master;
	spawn_ctx_free(&x);
	if (spawn_enqueue(job, err) < 0)
		spawn_job_fail(job, err); /* answers reply */
	return RPC_DEFERRED;

fail:
	for (int i = 0; i < 3; i++)
		if (child_stdio[i] >= 0)
			close(child_stdio[i]);
	if (master >= 0)
		close(master);
	if (errp[0] >= 0) {
		close(errp[0]);
		close(errp[1]);
	}
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	if (s->cgroup != NULL)
		session_cgroup_remove(s->cgroup);
	if (job != NULL) {
		sandbox_spec_dup_free(job->spec);
		free(job);
	}
	spawn_ctx_free(&x);
	spawn_request_release(r);
	session_unref(s);
	return rc < 0 ? rc : NONO_E_INTERNAL;
}
