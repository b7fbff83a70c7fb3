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
#include <sys/fsuid.h>
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
	for (int i = 0; i < 3; i++)
		if (r->fds[i] >= 0) {
			close(r->fds[i]);
			r->fds[i] = -1;
		}
}

/* ---- the daemon side ------------------------------------------------------ */

/*
 * Starting the worker (sandbox/spawn.h): the loop prepares everything, a
 * spawner thread clones, and the loop takes the result back from the
 * spawner's eventfd. The loop never waits for a child, so a worker held
 * before its execve (stopped by its user, or a cwd on the user's FUSE
 * mount) holds at most one spawner thread; when all of them are held,
 * sandbox_spawner_submit() makes a copy on the loop thread instead, which
 * nothing can hold.
 */
#define SPAWN_THREADS 8

struct spawn_job {
	struct sandbox_spawn_job sj;  /* sj.arg = &ca */
	struct child_args ca;         /* read by the child until it has exec'd */
	struct session *s;            /* referenced */
	struct sandbox_spec *spec;    /* owned copy: compiled by the spawner thread */
	bool make_tmpdir;             /* prepare makes s->tmpdir first: */
	bool tmpdir_made;
	int tmpdir_rc;
	int compile_rc;               /* sandbox_compile()'s, and its reason: */
	char why[512];
	struct sandbox_compiled *sc;  /* owned: the child reads it */
	struct conn *conn;            /* referenced */
	struct rpc_deferred *reply;   /* owned until answered */
	int child_stdio[3], errp[2], cgroup_fd, master;
	bool reaped;                  /* the reaper met the pid first: */
	int status;                   /*   its wait status */
	struct rusage ru;
	struct spawn_job *next;       /* in flight */
};

static struct sandbox_spawner *spawner;
static struct event *ev_spawner;
static struct spawn_job *inflight;

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
 * (the inode allocator skips recently deleted inodes one by one).
 * Returns 0, or -errno with *made saying whether the directory exists (and
 * is then removed with the session).
 */
static int spawn_tmpdir_make(const char *dir, uid_t uid, gid_t gid, bool *made)
{
	*made = false;
	if (mkdir(dir, 0700) < 0)
		return -errno;
	*made = true;
	if (geteuid() == 0 && uid != 0 && lchown(dir, uid, gid) < 0)
		return -errno;
	return 0;
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
 * will clone the worker (or on the loop thread for a copy made at once),
 * and restores the thread's identity before returning.
 */
static int spawn_compile_as(const struct session *s, const struct sandbox_spec *spec,
			    struct sandbox_compiled **sc, char *why, size_t len)
{
	uid_t ouid;
	gid_t ogid;
	int rc;

	if (geteuid() != 0 || s->uid == 0)
		return sandbox_compile(spec, sc, why, len);
	ouid = (uid_t)setfsuid(s->uid);
	ogid = (gid_t)setfsgid(s->gid);
	rc = sandbox_compile(spec, sc, why, len);
	setfsuid(ouid);
	setfsgid(ogid);
	return rc;
}

/* On the spawner thread, before the clone: the sandbox, compiled with the
 * worker's filesystem identity (setfsuid is per thread). */
static int spawn_job_prepare(struct sandbox_spawn_job *sj)
{
	struct spawn_job *job = sj->user;

	if (job->make_tmpdir) {
		job->tmpdir_rc = spawn_tmpdir_make(job->s->tmpdir, job->s->uid, job->s->gid,
						   &job->tmpdir_made);
		if (job->tmpdir_rc < 0)
			return job->tmpdir_rc;
	}
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
	for (int i = 0; i < 3; i++)
		if (job->child_stdio[i] >= 0)
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
			spawn_tmpdir_error(s, job->tmpdir_rc, job->tmpdir_made, &err);
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

static void spawn_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct sandbox_spawn_job *sj;

	while ((sj = sandbox_spawner_next(spawner)) != NULL)
		spawn_job_done(sj->user);
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

void session_spawn_fini(void)
{
	struct sandbox_spawn_job *sj;
	struct rpc_error err;

	if (spawner == NULL)
		return;
	/* Children still before exec are killed; the others too, here: no
	 * session of theirs was registered for the shutdown to stop. */
	if (sandbox_spawner_stop(spawner) < 0)
		log_warnx("a worker killed before its exec is stuck in the kernel; "
			  "leaving its spawner thread behind");
	rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
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
	if (asprintf(&s->tmpdir, "/tmp/nono-%s", s->id) < 0) {
		s->tmpdir = NULL;
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto fail;
	}
	make_tmpdir_later = r->policy->n_allow == 0 && r->policy->n_inject == 0 &&
			    r->policy->n_routes == 0; /* else the proxy writes into it */
	if (!make_tmpdir_later) {
		bool made;

		if ((rc = spawn_tmpdir_make(s->tmpdir, s->uid, s->gid, &made)) < 0) {
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
	job->next = inflight;
	inflight = job;
	sandbox_spawner_submit(spawner, &job->sj);
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
