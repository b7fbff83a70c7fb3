/*
 * The worker between clone and execve (session-child.c): what the daemon
 * hands it, and the steps it reports over its error pipe when one fails.
 */
#ifndef NONOD_SESSION_CHILD_H
#define NONOD_SESSION_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sandbox_compiled;
struct sandbox_spawn_job;

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
	uid_t uid;     /* who the worker will be (spawn_may_share_mm) */
	gid_t gid;
};

/*
 * The child's whole life: signals reset, cgroup, setsid, stdio, the
 * sandbox, chdir, execve. job->arg is a struct child_args. Never returns;
 * a failure is written to errfd as a struct child_msg. Async-signal-safe
 * only: it may share nonod's memory (CLONE_VM) until execve.
 */
void session_child_main(const struct sandbox_spawn_job *job) __attribute__((noreturn));

#endif
