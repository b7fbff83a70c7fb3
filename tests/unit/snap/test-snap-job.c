/*
 * The async job API on a real libevent loop: completion and progress arrive
 * on the loop thread, the loop keeps running while a job works (a timer
 * fires while the job is held inside its read), and a second operation on
 * the same workspace is refused with -EBUSY while the first runs.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "helpers.h"
#include "log.h"
#include "snap.h"
#include "../check-run.h"

struct jt {
	struct event_base *base;
	struct snap_store *s;
	pthread_t loop_thread;
	sem_t release;            /* posted by the loop; the job's read waits on it */
	atomic_int entered;       /* set by the job once it is inside its read */
	int state;
	int timer_ticks;
	int done_calls, done_err[2], progress_calls;
	bool wrong_thread;
	char id[SNAP_ID_LEN + 1];
};

static void on_done(struct snap_result *r, void *arg)
{
	struct jt *t = arg;

	if (!pthread_equal(pthread_self(), t->loop_thread))
		t->wrong_thread = true;
	ck_assert_ptr_nonnull(r);
	t->done_err[t->done_calls < 2 ? t->done_calls : 1] = r->err;
	if (r->err == 0 && r->nsnaps == 1)
		memcpy(t->id, r->snaps[0].id, sizeof(t->id));
	t->done_calls++;
	snap_result_free(r);
	free(r);
	if (t->done_calls == 2)
		event_base_loopexit(t->base, NULL);
}

static void on_progress(const struct snap_progress *pr, void *arg)
{
	struct jt *t = arg;

	(void)pr;
	if (!pthread_equal(pthread_self(), t->loop_thread))
		t->wrong_thread = true;
	t->progress_calls++;
}

static struct jt *g_t;

/* Runs in the job's worker: blocks until the loop's timer has run. */
static void hold_hook(const char *rel, int attempt, void *arg)
{
	(void)rel;
	(void)attempt;
	(void)arg;
	atomic_store(&g_t->entered, 1);
	sem_wait(&g_t->release);
}

static struct snap_params g_p;

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct jt *t = arg;

	(void)fd;
	(void)what;
	t->timer_ticks++;
	if (t->state == 0 && atomic_load(&t->entered)) {
		/* The first job is held in its read: a second one on the same
		 * workspace must be refused, without blocking this loop. */
		struct snap_params p2 = g_p;
		p2.read_hook = NULL;
		ck_assert_int_eq(snap_job_start(t->s, SNAP_OP_CREATE, &p2, NULL, on_done, t), 0);
		t->state = 1;
	} else if (t->state == 1 && t->done_calls == 1) {
		sem_post(&t->release); /* the refusal arrived: let the first finish */
		t->state = 2;
	}
}

START_TEST(test_job_loop)
{
	struct jt t = { 0 };
	struct event *tick;
	struct timeval tv = { 0, 2000 };
	char *ws, *store;

	g_t = &t;
	sem_init(&t.release, 0, 0);
	t.base = event_base_new();
	t.loop_thread = pthread_self();
	ck_assert(asprintf(&ws, "%s/ws", th_tmp) > 0);
	ck_assert(asprintf(&store, "%s/store", th_tmp) > 0);
	ck_assert_int_eq(mkdir(ws, 0755), 0);
	th_writes(ws, "a", "a");
	ck_assert_int_eq(snap_store_new(store, t.base, &t.s), 0);
	g_p = (struct snap_params){ .owner = getuid(), .group = getgid(), .workspace = ws,
				    .label = "job", .keep_last = -1, .keep_within = -1,
				    .read_hook = hold_hook };
	ck_assert_int_eq(snap_job_start(t.s, SNAP_OP_CREATE, &g_p, on_progress, on_done, &t), 0);
	tick = event_new(t.base, -1, EV_PERSIST, on_timer, &t);
	event_add(tick, &tv);
	event_base_dispatch(t.base);
	ck_assert_int_eq(t.done_calls, 2);
	ck_assert_int_eq(t.done_err[0], -EBUSY); /* the second, refused while the first ran */
	ck_assert_int_eq(t.done_err[1], 0);
	ck_assert_int_ge(t.timer_ticks, 2);      /* the loop ran while the job worked */
	ck_assert(!t.wrong_thread);
	ck_assert_int_eq(strlen(t.id), SNAP_ID_LEN);
	ck_assert_int_eq(snap_store_jobs(t.s), 0);
	event_free(tick);
	snap_store_free(t.s);
	event_base_free(t.base);
	sem_destroy(&t.release);
	free(ws);
	free(store);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snap-job");
	TCase *tc = tcase_create("loop");

	log_init("test-snap-job", LOG_LEVEL_ERROR);
	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_job_loop);
	suite_add_tcase(s, tc);
	return check_run(s);
}
