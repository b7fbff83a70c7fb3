/*
 * The worker between clone and execve. Everything was prepared by the
 * daemon (session-spawn.c) so the child only makes the few syscalls it
 * must; it may share nonod's address space until execve, so it calls
 * async-signal-safe functions only and allocates nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"
#include "session-child.h"
#include "spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

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

/*
 * Close everything nonod has open but what the child still needs, while it
 * is root (its user cannot stop it yet). Workers are cloned while the loop
 * goes on preparing others, so the fd table copied into this child holds
 * other starts' descriptors; held until execve they would keep another
 * session's error pipe (whose EOF says its exec succeeded) and output pipes
 * open for as long as this child is held before exec. Where close_range()
 * is missing they are only marked close-on-exec.
 */
static void child_close_others(const struct child_args *a)
{
	int keep[SANDBOX_ENTER_FDS + 1];
	size_t n = sandbox_compiled_fds(a->sc, keep);
	unsigned int from = 3;

	keep[n++] = a->errfd;
	for (size_t i = 1; i < n; i++) /* insertion sort: a handful */
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned int)keep[i] > from &&
		    syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0) < 0)
			break;
		from = (unsigned int)keep[i] + 1;
	}
	if (syscall(SYS_close_range, from, ~0U, 0) < 0 ||
	    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
}

void session_child_main(const struct sandbox_spawn_job *job)
{
	const struct child_args *a = job->arg;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	enum sandbox_step step = SANDBOX_STEP_NONE;
	sigset_t none;
	int rc;

	/* libevent's handlers and mask must not survive into the worker. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (job->join_cgroup_fd >= 0) {
		int fd = openat(job->join_cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
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
	child_close_others(a);
	rc = sandbox_enter(a->sc, &step);
	if (rc < 0)
		child_fail(a->errfd, CHILD_SANDBOX + (int)step, -rc);
	if (chdir(a->cwd) < 0)
		child_fail(a->errfd, CHILD_CHDIR, errno);
	child_fail(a->errfd, CHILD_EXEC, child_exec(a->argv, a->envp));
}

