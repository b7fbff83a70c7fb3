/*
 * Session spawn: everything is prepared in the daemon (policy resolution,
 * Landlock ruleset, seccomp program, environment, limits, stdio, cgroup,
 * network namespace) so that the child only makes the few syscalls it must
 * (signals reset, setsid, dup2, the sandbox, chdir, execve). Exec failure
 * comes back over a close-on-exec pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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
#include "session-spawn.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Steps the child reports over the error pipe (sandbox steps are 100 + enum sandbox_step). */
enum child_step {
	CHILD_SETSID = 1,
	CHILD_STDIO,
	CHILD_TTY,
	CHILD_CGROUP,
	CHILD_CHDIR,
	CHILD_EXEC,
	CHILD_SANDBOX = 100,
};

struct child_msg {
	int32_t step;
	int32_t err;
};

struct child_args {
	const struct sandbox_compiled *sc;
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int stdio[3];
	bool pty;
	int errfd;
	int cgroup_fd; /* join by writing cgroup.procs when clone3 could not */
	uid_t uid;     /* who the worker will be (spawn_may_share_mm) */
	gid_t gid;
};


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

/* ---- the child: async-signal-safe only ------------------------------------ */

static void __attribute__((noreturn)) child_fail(int errfd, int step, int err)
{
	struct child_msg m = { step, err };

	if (write(errfd, &m, sizeof(m)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(127);
}

static const char *child_getenv(char *const *envp, const char *name, size_t len)
{
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/* execvpe without allocation, with execvp's error precedence. */
static int child_exec(char *const *argv, char *const *envp)
{
	const char *path, *p;
	bool eacces = false;
	char buf[PATH_MAX];
	size_t nlen = strlen(argv[0]);

	if (strchr(argv[0], '/') != NULL) {
		execve(argv[0], argv, envp);
		return errno;
	}
	path = child_getenv(envp, "PATH", 4);
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dlen = end != NULL ? (size_t)(end - p) : strlen(p);

		if (dlen == 0) {
			buf[0] = '.';
			dlen = 1;
		} else if (dlen < sizeof(buf)) {
			memcpy(buf, p, dlen);
		}
		if (dlen + 1 + nlen + 1 <= sizeof(buf)) {
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, argv[0], nlen + 1);
			execve(buf, argv, envp);
			if (errno == EACCES)
				eacces = true;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
				 errno != ENODEV && errno != ETIMEDOUT)
				return errno;
		}
		if (end == NULL)
			break;
		p = end;
	}
	return eacces ? EACCES : ENOENT;
}

static void __attribute__((noreturn)) child_main(const struct child_args *a)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	enum sandbox_step step = SANDBOX_STEP_NONE;
	sigset_t none;
	int rc;

	/* libevent's handlers and mask must not survive into the worker. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (a->cgroup_fd >= 0) {
		int fd = openat(a->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			child_fail(a->errfd, CHILD_CGROUP, errno);
		close(fd);
	}
	if (setsid() < 0)
		child_fail(a->errfd, CHILD_SETSID, errno);
	for (int i = 0; i < 3; i++)
		if (dup2(a->stdio[i], i) < 0)
			child_fail(a->errfd, CHILD_STDIO, errno);
	if (a->pty && ioctl(0, TIOCSCTTY, 0) < 0)
		child_fail(a->errfd, CHILD_TTY, errno);
	/* Everything else the daemon has open closes at execve. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != a->errfd)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	rc = sandbox_enter(a->sc, &step);
	if (rc < 0)
		child_fail(a->errfd, CHILD_SANDBOX + (int)step, -rc);
	if (chdir(a->cwd) < 0)
		child_fail(a->errfd, CHILD_CHDIR, errno);
	child_fail(a->errfd, CHILD_EXEC, child_exec(a->argv, a->envp));
}

/* ---- the daemon side ------------------------------------------------------ */

/*
 * The child shares the daemon's address space on a stack of its own
 * (CLONE_VM) while the daemon's loop thread waits (CLONE_VFORK) until it has
 * exec'd or exited, as posix_spawn() does: no page tables of a large daemon
 * to copy, no copy-on-write faults after. The child only reads its
 * arguments, writes its own stack and makes raw syscalls (sandbox.h); all
 * signals stay blocked until it has reset every handler, so none of the
 * daemon's runs on the shared memory. One stack serves every spawn: only
 * the loop thread spawns, and it is suspended until the child is done.
 */
#define SPAWN_STACK_SIZE (256 * 1024)

static char *spawn_stack(void)
{
	static char *stack;

	if (stack == NULL) {
		char *m = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

		if (m == MAP_FAILED)
			return NULL;
		/* A guard page below: an overflow faults instead of writing the heap. */
		if (mprotect(m, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE) < 0) {
			munmap(m, SPAWN_STACK_SIZE);
			return NULL;
		}
		stack = m;
	}
	return stack;
}

static int spawn_child_fn(void *arg)
{
	child_main(arg);
}

/*
 * clone3 with a new stack returns into the child on that stack, so the
 * child may not return through C frames: it calls child_main() (which
 * never returns) straight from the instruction after the syscall, as
 * glibc's own clone3 wrapper does. Arches without this fall back to fork
 * semantics (a copy of the daemon) when they need CLONE_INTO_CGROUP.
 */
#if defined(__x86_64__)
#define SPAWN_HAVE_CLONE3_VM 1
static long spawn_clone3_vm(struct clone_args *args, struct child_args *ca)
{
	long ret;

	__asm__ volatile(
		"syscall\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 1f\n\t"
		"mov %[ca], %%rdi\n\t"
		"mov %[fn], %%rax\n\t"
		"xor %%ebp, %%ebp\n\t" /* after: the compiler may have put fn or ca there */
		"and $-16, %%rsp\n\t"
		"call *%%rax\n\t"
		"ud2\n"
		"1:"
		: "=a"(ret)
		: "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)),
		  [fn] "r"(spawn_child_fn), [ca] "r"(ca)
		: "rcx", "r11", "memory", "cc");
	return ret;
}
#elif defined(__aarch64__)
#define SPAWN_HAVE_CLONE3_VM 1
static long spawn_clone3_vm(struct clone_args *args, struct child_args *ca)
{
	register long x8 __asm__("x8") = SYS_clone3;
	register long x0 __asm__("x0") = (long)args;
	register long x1 __asm__("x1") = (long)sizeof(*args);

	__asm__ volatile(
		"svc #0\n\t"
		"cbnz x0, 1f\n\t"
		"mov x0, %[ca]\n\t"
		"mov x16, %[fn]\n\t"
		"mov x29, xzr\n\t"
		"blr x16\n\t"
		"brk #0\n"
		"1:"
		: "+r"(x0)
		: "r"(x8), "r"(x1), [fn] "r"(spawn_child_fn), [ca] "r"(ca)
		: "x16", "x30", "memory", "cc");
	return x0;
}
#endif

/*
 * Share the address space only with a worker that keeps nonod's own uid and
 * gid (user mode, or root's sessions in system mode). A worker that changes
 * identity becomes signalable by its user before it has exec'd: one
 * SIGSTOP (or a cwd on the user's FUSE mount) would hold nonod's loop in
 * CLONE_VFORK for everyone, and a core dump forced then would hold nonod's
 * memory. Those workers get a copy, as fork() gives. So do sanitizer
 * builds: their runtimes keep locks and per-thread state in the shared
 * memory (a nonod hang in pthread_create was seen once).
 */
static bool spawn_may_share_mm(const struct child_args *ca)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	(void)ca;
	return false;
#else
	return ca->uid == geteuid() && ca->gid == getegid();
#endif
}

/* clone3 straight into the session's cgroup where there is one. */
static pid_t spawn_clone(int cgroup_fd, struct child_args *ca)
{
	char *stack = spawn_stack();
	unsigned long share = spawn_may_share_mm(ca) ? CLONE_VM | CLONE_VFORK : 0;
	sigset_t all, old;
	pid_t pid = -1;
	int e;

	if (stack == NULL)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
#ifdef SPAWN_HAVE_CLONE3_VM
	{
		struct clone_args args = {
			.flags = share | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
			.exit_signal = SIGCHLD,
			.stack = (uint64_t)(uintptr_t)stack,
			.stack_size = SPAWN_STACK_SIZE,
			.cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0,
		};
		long r = spawn_clone3_vm(&args, ca);

		if (r < 0 && r != -ENOSYS && r != -E2BIG && r != -EINVAL) {
			errno = (int)-r;
			goto out;
		}
		if (r > 0) {
			pid = (pid_t)r;
			goto out;
		}
	}
#else
	if (cgroup_fd >= 0) {
		struct clone_args args = {
			.flags = CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgroup_fd,
		};
		long r = syscall(SYS_clone3, &args, sizeof(args));

		if (r == 0)
			child_main(ca);
		if (r > 0 || (errno != ENOSYS && errno != E2BIG && errno != EINVAL)) {
			pid = (pid_t)r;
			goto out;
		}
	}
#endif
	/* No clone3 (or no CLONE_INTO_CGROUP): the child joins by writing cgroup.procs. */
	ca->cgroup_fd = cgroup_fd;
	pid = clone(spawn_child_fn, stack + SPAWN_STACK_SIZE, (int)share | SIGCHLD, ca);
out:
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return pid;
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

/* The private TMPDIR: /tmp/nono-<id>, 0700, owned by the worker's user. */
static int spawn_tmpdir(struct session *s, struct rpc_error *err)
{
	if (asprintf(&s->tmpdir, "/tmp/nono-%s", s->id) < 0) {
		s->tmpdir = NULL;
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	}
	if (mkdir(s->tmpdir, 0700) < 0) {
		int e = errno;
		free(s->tmpdir);
		s->tmpdir = NULL;
		return rpc_error_set(err, NONO_E_INTERNAL, "", "cannot create the session's TMPDIR: %s",
				     strerror(e));
	}
	if (geteuid() == 0 && s->uid != 0 && lchown(s->tmpdir, s->uid, s->gid) < 0)
		return rpc_error_set(err, NONO_E_INTERNAL, "", "chown TMPDIR: %s", strerror(errno));
	return 0;
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

/* Turn what the child reported into the reply to session.create. */
static void spawn_finish(struct session *s)
{
	struct child_msg m;
	ssize_t n;

	if (s->create_reply == NULL)
		return;
	n = read(s->errpipe, &m, sizeof(m));
	if (n < 0 && errno == EAGAIN)
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
	spawn_finish(arg);
}

/* Called by session.c when the leader is reaped before its pipe was read. */
void session_spawn_settle(struct session *s)
{
	if (s->errpipe >= 0) {
		fcntl(s->errpipe, F_SETFL, 0); /* the child is gone: this cannot block */
		spawn_finish(s);
	}
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
 * setfsuid/setfsgid are per-thread, and this is the loop thread.
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

int session_spawn(struct spawn_request *r, struct conn *conn, struct rpc_deferred *reply,
		  struct rpc_error *err)
{
	static char *const empty_env[] = { NULL };
	struct session *s = session_new(r->uid, r->gid);
	struct sandbox_compiled *sc = NULL;
	struct sandbox_spec spec;
	struct spawn_ctx x;
	struct child_args ca;
	int child_stdio[3] = { -1, -1, -1 }, master = -1, errp[2] = { -1, -1 }, cgroup_fd = -1;
	char why[512];
	pid_t pid;
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

	if ((rc = spawn_tmpdir(s, err)) < 0 || (rc = spawn_resolve_policy(s, r, err)) < 0)
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

	rc = spawn_compile_as(s, &spec, &sc, why, sizeof(why));
	if (rc < 0) {
		if (rc == -ENOENT)
			rc = rpc_error_set(err, NONO_E_POLICY_INVALID, "policy.filesystem", "%s", why);
		else if (rc == -EOPNOTSUPP)
			rc = rpc_error_set(err, NONO_E_SANDBOX_UNAVAILABLE, "", "%s", why);
		else if (rc == -EINVAL)
			rc = rpc_error_set(err, NONO_E_POLICY_INVALID, "policy", "%s", why);
		else
			rc = rpc_error_set(err, NONO_E_INTERNAL, "", "%s", why);
		goto fail;
	}
	s->report = sandbox_report_to_json(sandbox_compiled_report(sc));
	if (s->report != NULL) {
		json_object_object_add(s->report, "network",
				       json_object_new_string(session_net_name(s->net)));
		if (s->net == SESSION_NET_FALLBACK)
			json_object_object_add(s->report, "network_detail", json_object_new_string(
				"no network namespace: Landlock allows TCP to the proxy port on any "
				"host, so destination hosts on that port are not enforced by the kernel"));
	}
	if ((rc = spawn_stdio(s, r, child_stdio, &master, err)) < 0)
		goto fail;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "pipe: %s", strerror(errno));
		goto fail;
	}

	ca = (struct child_args){
		.sc = sc, .argv = s->argv, .envp = sandbox_compiled_envp(sc), .cwd = s->cwd,
		.stdio = { child_stdio[0], child_stdio[1], child_stdio[2] },
		.pty = s->stdio == SESSION_STDIO_PTY, .errfd = errp[1], .cgroup_fd = -1,
		.uid = spec.creds.set ? spec.creds.uid : geteuid(),
		.gid = spec.creds.set ? spec.creds.gid : getegid(),
	};
	pid = spawn_clone(cgroup_fd, &ca);
	if (pid < 0) {
		rc = rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "", "fork: %s", strerror(errno));
		goto fail;
	}

	/* Parent. */
	s->pid = pid;
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	s->started_ms = s->created_ms;
	s->state = SESSION_STARTING;
	close(errp[1]);
	s->errpipe = errp[0];
	fcntl(s->errpipe, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 3; i++)
		close(child_stdio[i]);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	sandbox_compiled_free(sc);
	spawn_ctx_free(&x);
	s->owner_conn = conn_ref(conn);
	s->create_reply = reply;
	s->pty_master = master;
	session_register(s);
	session_history_insert(s);
	s->ev_errpipe = event_new(nonod->base, s->errpipe, EV_READ | EV_PERSIST, spawn_on_errpipe, s);
	if (s->create_reply == NULL || s->ev_errpipe == NULL || event_add(s->ev_errpipe, NULL) < 0) {
		log_errorx("session %s: out of memory after fork", s->id);
		session_kill_tree(s, "daemon out of memory");
	}
	log_info("session %s: uid %u started pid %d (%s) network %s", s->id, (unsigned)s->uid,
		 (int)pid, s->argv[0], session_net_name(s->net));
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
	sandbox_compiled_free(sc);
	spawn_ctx_free(&x);
	spawn_request_release(r);
	session_unref(s);
	return rc < 0 ? rc : NONO_E_INTERNAL;
}
