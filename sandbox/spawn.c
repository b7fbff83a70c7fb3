/*
 * The spawner pool (spawn.h): threads that each clone one child at a time,
 * sharing the address space where the caller allows it, and hand the
 * result back through a done list and an eventfd.
 */
#include "spawn.h"

#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#define SPAWN_STACK_SIZE (256 * 1024)

struct spawner_thread {
	struct sandbox_spawner *sp;
	pthread_t tid;
	char *stack;                    /* the children's stack (CLONE_VM) */
	struct sandbox_spawn_job *cur;  /* under lock */
	bool killed;                    /* stop() sent cur's child SIGKILL */
};

struct sandbox_spawner {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct sandbox_spawn_job *pending, **pending_tail;
	unsigned int npending;
	struct sandbox_spawn_job *done, **done_tail;
	struct spawner_thread *threads;
	unsigned int nthreads, max, nidle;
	bool stopping, stopped;
	bool abandoned; /* stop gave up on held threads: never freed */
	int efd;
};

/* ---- one clone ------------------------------------------------------------ */

static char *spawn_stack_new(void)
{
	char *m = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	/* A guard page below: an overflow faults instead of writing the heap. */
	if (mprotect(m, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE) < 0) {
		munmap(m, SPAWN_STACK_SIZE);
		return NULL;
	}
	return m;
}

static int spawn_child_fn(void *arg)
{
	const struct sandbox_spawn_job *job = arg;

	job->child(job);
	_exit(127); /* child() must not return */
}

/*
 * clone3 with a new stack returns into the child on that stack, so the
 * child may not return through C frames: it calls spawn_child_fn() (which
 * never returns) straight from the instruction after the syscall, as
 * glibc's own clone3 wrapper does. Other arches get copies only.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPAWN_SHARE_OK 0
#else
#define SPAWN_SHARE_OK 1
#endif

#if defined(__x86_64__)
#define SPAWN_HAVE_CLONE3_VM 1
static long spawn_clone3_vm(struct clone_args *args, struct sandbox_spawn_job *job)
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
		  [fn] "r"(spawn_child_fn), [ca] "r"(job)
		: "rcx", "r11", "memory", "cc");
	return ret;
}
#elif defined(__aarch64__)
#define SPAWN_HAVE_CLONE3_VM 1
static long spawn_clone3_vm(struct clone_args *args, struct sandbox_spawn_job *job)
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
		: "r"(x8), "r"(x1), [fn] "r"(spawn_child_fn), [ca] "r"(job)
		: "x16", "x30", "memory", "cc");
	return x0;
}
#endif

bool sandbox_spawn_can_share_mm(void)
{
#if defined(SPAWN_HAVE_CLONE3_VM)
	return SPAWN_SHARE_OK;
#else
	return false;
#endif
}

pid_t sandbox_spawn_job_pid(const struct sandbox_spawn_job *job)
{
	return __atomic_load_n(&job->pid, __ATOMIC_ACQUIRE);
}

/*
 * The clone itself, on the calling thread with every signal blocked (so
 * none of the caller's handlers runs in the child before it resets them):
 * clone3 straight into the cgroup where there is one, else clone() and the
 * child joins by writing cgroup.procs. Sets job->err and job->shared.
 */
static void spawn_clone(struct sandbox_spawn_job *job, char *stack)
{
	unsigned long share = job->share_mm && sandbox_spawn_can_share_mm()
			      ? CLONE_VM | CLONE_VFORK : 0;
	sigset_t all, old;
	long r;

	job->shared = share != 0;
	job->join_cgroup_fd = -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
#ifdef SPAWN_HAVE_CLONE3_VM
	{
		struct clone_args args = {
			.flags = share | CLONE_PARENT_SETTID |
				 (job->cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
			.parent_tid = (uint64_t)(uintptr_t)&job->pid,
			.exit_signal = SIGCHLD,
			/* A copy runs on its copy of this thread's stack, which is
			 * where sanitizer runtimes expect it. */
			.stack = share ? (uint64_t)(uintptr_t)stack : 0,
			.stack_size = share ? SPAWN_STACK_SIZE : 0,
			.cgroup = job->cgroup_fd >= 0 ? (uint64_t)job->cgroup_fd : 0,
		};

		r = spawn_clone3_vm(&args, job);
	}
#else
	if (job->cgroup_fd >= 0) {
		struct clone_args args = {
			.flags = CLONE_PARENT_SETTID | CLONE_INTO_CGROUP,
			.parent_tid = (uint64_t)(uintptr_t)&job->pid,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)job->cgroup_fd,
		};

		r = syscall(SYS_clone3, &args, sizeof(args));
		if (r == 0)
			spawn_child_fn(job);
		if (r < 0)
			r = -errno;
	} else {
		r = -ENOSYS;
	}
#endif
	if (r < 0 && (r == -ENOSYS || r == -E2BIG || r == -EINVAL)) {
		/* No clone3 (or no CLONE_INTO_CGROUP): the child joins itself. */
		job->join_cgroup_fd = job->cgroup_fd;
		r = clone(spawn_child_fn, stack + SPAWN_STACK_SIZE,
			  (int)share | CLONE_PARENT_SETTID | SIGCHLD, job, &job->pid);
		if (r < 0)
			r = -errno;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		job->err = (int)r;
		job->shared = false;
		__atomic_store_n(&job->pid, 0, __ATOMIC_RELEASE);
	} else {
		job->err = 0;
		__atomic_store_n(&job->pid, (pid_t)r, __ATOMIC_RELEASE);
	}
}

/* prepare(), then the clone unless it failed or the pool began to stop
 * meanwhile (a prepare held for long must not start a worker that nobody
 * will watch). */
static void spawn_run(struct sandbox_spawner *sp, struct sandbox_spawn_job *job, char *stack)
{
	int rc = job->prepare != NULL ? job->prepare(job) : 0;

	if (rc == 0 && __atomic_load_n(&sp->stopping, __ATOMIC_ACQUIRE))
		rc = -ECANCELED;
	if (rc < 0) {
		job->err = rc;
		return;
	}
	spawn_clone(job, stack);
}

/* ---- the pool ------------------------------------------------------------- */

/* Under lock. */
static void spawner_push_done(struct sandbox_spawner *sp, struct sandbox_spawn_job *job)
{
	uint64_t one = 1;

	job->next = NULL;
	*sp->done_tail = job;
	sp->done_tail = &job->next;
	if (write(sp->efd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow with one write per job */
	}
}

static void *spawner_main(void *arg)
{
	struct spawner_thread *t = arg;
	struct sandbox_spawner *sp = t->sp;

	pthread_mutex_lock(&sp->lock);
	for (;;) {
		struct sandbox_spawn_job *job;

		while (sp->pending == NULL && !sp->stopping) {
			sp->nidle++;
			pthread_cond_wait(&sp->work, &sp->lock);
			sp->nidle--;
		}
		if (sp->pending == NULL)
			break;
		job = sp->pending;
		sp->pending = job->next;
		if (sp->pending == NULL)
			sp->pending_tail = &sp->pending;
		sp->npending--;
		t->cur = job;
		t->killed = false;
		pthread_mutex_unlock(&sp->lock);
		spawn_run(sp, job, t->stack);
		pthread_mutex_lock(&sp->lock);
		t->cur = NULL;
		spawner_push_done(sp, job);
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

/* Under lock. Signals stay with the owner's threads. */
static int spawner_add_thread(struct sandbox_spawner *sp)
{
	struct spawner_thread *t = &sp->threads[sp->nthreads];
	sigset_t all, old;
	int rc;

	if (t->stack == NULL && (t->stack = spawn_stack_new()) == NULL)
		return -ENOMEM;
	t->sp = sp;
	t->cur = NULL;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->tid, NULL, spawner_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	sp->nthreads++;
	return 0;
}

int sandbox_spawner_new(unsigned int max_threads, struct sandbox_spawner **out)
{
	struct sandbox_spawner *sp = calloc(1, sizeof(*sp));

	*out = NULL;
	if (sp == NULL)
		return -ENOMEM;
	sp->max = max_threads;
	sp->pending_tail = &sp->pending;
	sp->done_tail = &sp->done;
	sp->efd = -1;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->work, NULL);
	if (max_threads > 0 && (sp->threads = calloc(max_threads, sizeof(*sp->threads))) == NULL) {
		sandbox_spawner_free(sp);
		return -ENOMEM;
	}
	sp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->efd < 0) {
		int e = errno;

		sandbox_spawner_free(sp);
		return -e;
	}
	*out = sp;
	return 0;
}

int sandbox_spawner_fd(const struct sandbox_spawner *sp)
{
	return sp->efd;
}

int sandbox_spawner_submit(struct sandbox_spawner *sp, struct sandbox_spawn_job *job)
{
	int rc = 0;

	pthread_mutex_lock(&sp->lock);
	if (sp->stopping) {
		rc = -ECANCELED;
	} else if (sp->nidle > sp->npending ||
		   (sp->nthreads < sp->max && spawner_add_thread(sp) == 0)) {
		job->pid = 0;
		job->err = 0;
		job->shared = false;
		job->join_cgroup_fd = -1;
		job->next = NULL;
		*sp->pending_tail = job;
		sp->pending_tail = &job->next;
		sp->npending++;
		pthread_cond_signal(&sp->work);
	} else {
		/* Every thread is busy: the caller keeps the job and queues it. */
		rc = -EAGAIN;
	}
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

struct sandbox_spawn_job *sandbox_spawner_next(struct sandbox_spawner *sp)
{
	struct sandbox_spawn_job *job;
	uint64_t n;

	/* Reset the counter first: a job pushed after this read writes it again. */
	if (read(sp->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing was signalled since the last read */
	}
	pthread_mutex_lock(&sp->lock);
	job = sp->done;
	if (job != NULL) {
		sp->done = job->next;
		if (sp->done == NULL)
			sp->done_tail = &sp->done;
		job->next = NULL;
	}
	pthread_mutex_unlock(&sp->lock);
	return job;
}

int sandbox_spawner_stop(struct sandbox_spawner *sp)
{
	struct sandbox_spawn_job *job;
	unsigned int waited_ms = 0;

	if (sp->stopped)
		return sp->abandoned ? -EBUSY : 0;
	pthread_mutex_lock(&sp->lock);
	__atomic_store_n(&sp->stopping, true, __ATOMIC_RELEASE);
	while ((job = sp->pending) != NULL) {
		sp->pending = job->next;
		job->err = -ECANCELED;
		spawner_push_done(sp, job);
	}
	sp->pending_tail = &sp->pending;
	sp->npending = 0;
	pthread_cond_broadcast(&sp->work);
	pthread_mutex_unlock(&sp->lock);
	/* A child held before exec (stopped by its user) holds its thread in
	 * CLONE_VFORK: kill it. Its pid is valid: nobody reaps meanwhile. */
	for (;;) {
		bool busy = false;

		pthread_mutex_lock(&sp->lock);
		for (unsigned int i = 0; i < sp->nthreads; i++) {
			struct spawner_thread *t = &sp->threads[i];
			pid_t pid;

			if (t->cur == NULL)
				continue;
			busy = true;
			pid = sandbox_spawn_job_pid(t->cur);
			if (pid > 0 && !t->killed) {
				kill(pid, SIGKILL);
				t->killed = true;
			}
		}
		pthread_mutex_unlock(&sp->lock);
		if (!busy)
			break;
		if (waited_ms++ >= SANDBOX_SPAWNER_STOP_MS) {
			/* a killed child stuck in the kernel: give its thread up */
			sp->abandoned = true;
			sp->stopped = true;
			return -EBUSY;
		}
		usleep(1000);
	}
	for (unsigned int i = 0; i < sp->nthreads; i++)
		pthread_join(sp->threads[i].tid, NULL);
	sp->stopped = true;
	return 0;
}

void sandbox_spawner_free(struct sandbox_spawner *sp)
{
	if (sp == NULL)
		return;
	if (sandbox_spawner_stop(sp) < 0)
		return; /* held threads still use sp, their stacks and its lock */
	for (unsigned int i = 0; i < sp->max && sp->threads != NULL; i++)
		if (sp->threads[i].stack != NULL)
			munmap(sp->threads[i].stack, SPAWN_STACK_SIZE);
	if (sp->efd >= 0)
		close(sp->efd);
	pthread_mutex_destroy(&sp->lock);
	pthread_cond_destroy(&sp->work);
	free(sp->threads);
	free(sp);
}
