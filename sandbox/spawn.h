/*
 * Starting children off the caller's thread: a small pool of spawner
 * threads, each of which clones one child at a time, so that an event loop
 * never waits for a child until it has exec'd.
 *
 * A child may share the caller's address space (CLONE_VM|CLONE_VFORK, as
 * posix_spawn does: no page tables to copy, no copy-on-write faults) on a
 * stack of its own; then the spawner thread, not the caller, is suspended
 * until the child has exec'd or exited. Or it gets a copy (fork semantics),
 * which is what sanitizer builds always get: their runtimes keep locks and
 * per-thread state in the shared memory.
 *
 * The child function runs with every signal blocked (the spawner threads
 * block them all), on the spawner thread's TLS (errno), and must only make
 * async-signal-safe calls, never allocate, and end in execve() or _exit():
 * with a shared address space everything it writes but its own stack is
 * the caller's memory, which other threads are using at the same time.
 *
 * Nothing here logs. Thread-safety: submit, next and stop from one thread
 * (the owner's loop); the pool threads are internal.
 */
#ifndef SANDBOX_SPAWN_H
#define SANDBOX_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

struct sandbox_spawn_job;

typedef void (*sandbox_spawn_fn)(const struct sandbox_spawn_job *job);

struct sandbox_spawn_job {
	/* Set by the caller before sandbox_spawner_submit(). */
	sandbox_spawn_fn child;     /* runs in the child; must not return */
	void *arg;                  /* for child; borrowed until the job is done */
	/* Optional: runs first, on the spawner thread that will clone, as
	 * ordinary code (it may allocate and block: there is no child yet).
	 * A negative return becomes err and no child is made; so does a
	 * stop() that began meanwhile (-ECANCELED). */
	int (*prepare)(struct sandbox_spawn_job *job);
	int cgroup_fd;              /* clone straight into this cgroup (O_PATH dir), or -1 */
	bool share_mm;              /* ask for CLONE_VM|CLONE_VFORK (prepare may still set it;
				       it may be refused: see shared) */

	/* Set before the child runs; the child reads it. */
	int join_cgroup_fd;         /* >= 0: CLONE_INTO_CGROUP was not available and the
				       child must join this cgroup itself (cgroup.procs) */

	/*
	 * The child's pid is written here by the kernel (CLONE_PARENT_SETTID)
	 * before the child runs, so a reaper that meets an unknown pid while
	 * jobs are in flight can match it: read it with sandbox_spawn_job_pid().
	 */
	pid_t pid;

	/* Results, valid once sandbox_spawner_next() returned the job. */
	int err;                    /* 0, or -errno (no child then: pid 0) */
	bool shared;                /* the child shared the address space */

	void *user;                 /* the caller's */
	struct sandbox_spawn_job *next; /* private to the pool */
};

struct sandbox_spawner;

/* A pool of at most max_threads spawner threads (made on demand), and an
 * eventfd that is readable while finished jobs wait. 0 or -errno. */
int sandbox_spawner_new(unsigned int max_threads, struct sandbox_spawner **out);

/* Readable (eventfd) when sandbox_spawner_next() has jobs to return. */
int sandbox_spawner_fd(const struct sandbox_spawner *sp);

/*
 * Hands job to an idle spawner thread, or to a new one while there are
 * fewer than max_threads: 0, and the job comes back from
 * sandbox_spawner_next() (it is borrowed until then). When every thread is
 * busy (children held before exec, or a prepare() blocked in the kernel on
 * a FUSE path), -EAGAIN: the job was not taken, and the caller queues it
 * itself (the pool never runs prepare() or a clone on the caller's thread,
 * which must not be held by what a job touches). -ECANCELED once stopping.
 */
__attribute__((warn_unused_result))
int sandbox_spawner_submit(struct sandbox_spawner *sp, struct sandbox_spawn_job *job);

/* A finished job (in completion order), or NULL. */
struct sandbox_spawn_job *sandbox_spawner_next(struct sandbox_spawner *sp);

/* The child's pid once the kernel has written it, else 0 (any thread). */
pid_t sandbox_spawn_job_pid(const struct sandbox_spawn_job *job);

/*
 * Stop the pool: jobs not started yet are finished with -ECANCELED (as are
 * those whose prepare() returns after this: no clone), children still
 * before exec are sent SIGKILL (the caller must not reap
 * meanwhile: their pids stay theirs until reaped), and the threads are
 * joined. Every job then waits in sandbox_spawner_next(). Free afterwards.
 * A killed child can stay stuck in the kernel (an execve waiting on a FUSE
 * server that never answers), and so can a prepare() (an open on such a
 * mount): after SANDBOX_SPAWNER_STOP_MS the threads still held are given up, -EBUSY is returned, their jobs never come back, and
 * sandbox_spawner_free() leaves the pool allocated (those threads still
 * use it). Only for a process on its way out.
 */
#define SANDBOX_SPAWNER_STOP_MS 5000
int sandbox_spawner_stop(struct sandbox_spawner *sp);
/* Stops if needed; jobs not taken with next() are dropped. NULL is a no-op. */
void sandbox_spawner_free(struct sandbox_spawner *sp);

/* Would a job asking for share_mm get it in this build (arch, sanitizers)? */
bool sandbox_spawn_can_share_mm(void);

#endif
