/*
 * The spawner pool (sandbox/spawn.h): a child is cloned off the caller's
 * thread (sharing the address space where the build allows it), its pid is
 * known before it runs, a child held before exec (stopped) holds only its
 * spawner thread, further starts are then refused (-EAGAIN) for the caller
 * to queue, never run on its thread; stop() kills what is held, cancels a
 * start whose prepare() was held, and joins the threads.
 */
#include "spawn.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../check-run.h"

static volatile int shared_flag;
static pid_t held_pid;

/* A failed assertion exits the test process: a stopped child must not outlive it. */
static void kill_held(void)
{
	if (held_pid > 0)
		kill(held_pid, SIGKILL);
}

/* Children: raw syscalls only, never return. */
static void child_true(const struct sandbox_spawn_job *job)
{
	static char *const argv[] = { "true", NULL };
	static char *const envp[] = { NULL };

	(void)job;
	syscall(SYS_execve, "/bin/true", argv, envp);
	syscall(SYS_exit_group, 127);
}

static void child_write_flag(const struct sandbox_spawn_job *job)
{
	(void)job;
	shared_flag = 42; /* the parent's memory only when shared */
	syscall(SYS_exit_group, 7);
}

static void child_stop_self(const struct sandbox_spawn_job *job)
{
	(void)job;
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	syscall(SYS_exit_group, 0);
}

/* The next finished job; fails the test if none comes within a minute
 * (a hang, not a timing assertion). */
static struct sandbox_spawn_job *wait_job(struct sandbox_spawner *sp)
{
	struct pollfd p = { .fd = sandbox_spawner_fd(sp), .events = POLLIN };
	struct sandbox_spawn_job *j;

	while ((j = sandbox_spawner_next(sp)) == NULL)
		ck_assert_msg(poll(&p, 1, 60000) == 1, "no spawn result");
	return j;
}

static int reap(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static void job_init(struct sandbox_spawn_job *j, sandbox_spawn_fn fn, bool share)
{
	memset(j, 0, sizeof(*j));
	j->child = fn;
	j->cgroup_fd = -1;
	j->share_mm = share;
}

START_TEST(test_spawn_exec)
{
	struct sandbox_spawner *sp;
	struct sandbox_spawn_job j, *d;
	int st;

	ck_assert_int_eq(sandbox_spawner_new(2, &sp), 0);
	job_init(&j, child_true, true);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &j), 0);
	d = wait_job(sp);
	ck_assert_ptr_eq(d, &j);
	ck_assert_int_eq(j.err, 0);
	ck_assert_int_gt(sandbox_spawn_job_pid(&j), 0);
	ck_assert_int_eq(j.shared, sandbox_spawn_can_share_mm());
	st = reap(sandbox_spawn_job_pid(&j));
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sandbox_spawner_free(sp);
}
END_TEST

/* Shared means shared: the child's write lands in our memory; a copy's
 * does not (control). */
START_TEST(test_spawn_shared_memory)
{
	struct sandbox_spawner *sp;
	struct sandbox_spawn_job j;
	int st;

	ck_assert_int_eq(sandbox_spawner_new(1, &sp), 0);
	for (int share = 0; share <= 1; share++) {
		shared_flag = 0;
		job_init(&j, child_write_flag, share);
		ck_assert_int_eq(sandbox_spawner_submit(sp, &j), 0);
		ck_assert_ptr_eq(wait_job(sp), &j);
		ck_assert_int_eq(j.err, 0);
		st = reap(sandbox_spawn_job_pid(&j));
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
		ck_assert_int_eq(shared_flag, j.shared ? 42 : 0);
		ck_assert_int_eq(j.shared, share && sandbox_spawn_can_share_mm());
	}
	sandbox_spawner_free(sp);
}
END_TEST

/*
 * A child that stops before exec holds its spawner thread (CLONE_VFORK) but
 * not the caller: with every thread held the next start is refused with
 * -EAGAIN (the caller queues it; nothing runs on the caller's thread),
 * and taken once the thread is free. Its pid is readable while it is
 * held; stop() kills it.
 */
START_TEST(test_spawn_held_child)
{
	struct sandbox_spawner *sp;
	struct sandbox_spawn_job held, next;
	int st;

	if (!sandbox_spawn_can_share_mm()) {
		fprintf(stderr, "no shared-address-space spawns in this build: nothing is held\n");
		return;
	}
	ck_assert_int_eq(sandbox_spawner_new(1, &sp), 0);
	job_init(&held, child_stop_self, true);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &held), 0);
	/* Wait until it has stopped (its pid is there before it runs). */
	atexit(kill_held);
	while (sandbox_spawn_job_pid(&held) == 0)
		usleep(1000);
	held_pid = sandbox_spawn_job_pid(&held);
	ck_assert_int_eq(waitpid(sandbox_spawn_job_pid(&held), &st, WUNTRACED | __WALL),
			 sandbox_spawn_job_pid(&held));
	ck_assert(WIFSTOPPED(st));

	job_init(&next, child_true, true);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &next), -EAGAIN);
	ck_assert_ptr_null(sandbox_spawner_next(sp)); /* neither is done */

	/* The held child goes: its thread is free for the next one. */
	kill(held_pid, SIGKILL);
	ck_assert_ptr_eq(wait_job(sp), &held);
	st = reap(held_pid);
	held_pid = 0;
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &next), 0);
	ck_assert_ptr_eq(wait_job(sp), &next);
	ck_assert_int_eq(next.err, 0);
	st = reap(sandbox_spawn_job_pid(&next));
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	ck_assert_int_eq(sandbox_spawner_stop(sp), 0);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &next), -ECANCELED);
	sandbox_spawner_free(sp);
}
END_TEST

/*
 * A prepare() held in the kernel (here: a read on a pipe) holds its thread:
 * the next job is refused (-EAGAIN), never run on the caller's thread. When
 * a stop() began meanwhile, the prepare's return starts no child: the job
 * comes back with -ECANCELED and no pid.
 */
static int gate[2] = { -1, -1 };

static int prepare_wait_gate(struct sandbox_spawn_job *job)
{
	char c;

	(void)job;
	return read(gate[0], &c, 1) == 1 ? 0 : -EIO;
}

static void *open_gate_once_stopping(void *arg)
{
	struct sandbox_spawner *sp = arg;
	struct sandbox_spawn_job probe;

	/* Submit is refused with -EAGAIN until stop() has begun, then -ECANCELED. */
	job_init(&probe, child_true, false);
	while (sandbox_spawner_submit(sp, &probe) == -EAGAIN)
		usleep(1000);
	if (write(gate[1], "x", 1) != 1)
		abort();
	return NULL;
}

START_TEST(test_spawn_stop_during_prepare)
{
	struct sandbox_spawner *sp;
	struct sandbox_spawn_job held, other;
	pthread_t opener;

	ck_assert_int_eq(pipe(gate), 0);
	ck_assert_int_eq(sandbox_spawner_new(1, &sp), 0);
	job_init(&held, child_true, true);
	held.prepare = prepare_wait_gate;
	ck_assert_int_eq(sandbox_spawner_submit(sp, &held), 0);
	job_init(&other, child_true, true);
	ck_assert_int_eq(sandbox_spawner_submit(sp, &other), -EAGAIN);
	ck_assert_ptr_null(sandbox_spawner_next(sp));

	ck_assert_int_eq(pthread_create(&opener, NULL, open_gate_once_stopping, sp), 0);
	ck_assert_int_eq(sandbox_spawner_stop(sp), 0);
	pthread_join(opener, NULL);
	ck_assert_ptr_eq(sandbox_spawner_next(sp), &held);
	ck_assert_int_eq(held.err, -ECANCELED);
	ck_assert_int_eq(sandbox_spawn_job_pid(&held), 0);
	ck_assert_ptr_null(sandbox_spawner_next(sp));
	sandbox_spawner_free(sp);
	close(gate[0]);
	close(gate[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_spawn");
	TCase *tc = tcase_create("spawn");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_spawn_exec);
	tcase_add_test(tc, test_spawn_shared_memory);
	tcase_add_test(tc, test_spawn_held_child);
	tcase_add_test(tc, test_spawn_stop_during_prepare);
	suite_add_tcase(s, tc);
	return check_run(s);
}
