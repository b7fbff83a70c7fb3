/*
 * rmtree() on a thread of its own, for the event loop: a session can leave
 * a tree in its TMPDIR that takes many seconds to delete (20,000 empty
 * directories take ~20 s on an ext4 that discards on unlink), and the loop
 * answers every user meanwhile. One thread, removing in the order asked,
 * each tree with its owner's rights (rmtree_as).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "log.h"
#include "rmtree.h"
#include "thread.h"

struct rm_job {
	struct rm_job *next;
	uid_t uid;      /* the tree's owner: removed with their rights */
	gid_t gid;
	char path[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER; /* a job, or stop */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER; /* queue empty, nothing running */
static struct rm_job *head, **tail = &head;
static bool started, busy, stopping;
static pthread_t th;

static void *remover(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct rm_job *j;
		int rc;

		while (head == NULL && !stopping)
			pthread_cond_wait(&wake, &mu);
		if (head == NULL)
			break;
		j = head;
		head = j->next;
		if (head == NULL)
			tail = &head;
		busy = true;
		pthread_mutex_unlock(&mu);
		if ((rc = rmtree_as(j->path, j->uid, j->gid)) < 0) {
			errno = -rc;
			log_warn("remove %s", j->path);
		}
		free(j);
		pthread_mutex_lock(&mu);
		busy = false;
		if (head == NULL)
			pthread_cond_broadcast(&idle);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Under mu. */
static int start(void)
{
	int e = thread_start(&th, false, remover, NULL);

	if (e == 0)
		started = true;
	return e;
}

int rmtree_async(const char *path, uid_t uid, gid_t gid)
{
	size_t len = strlen(path) + 1;
	struct rm_job *j = malloc(sizeof(*j) + len);
	int rc = 0;

	if (j != NULL) {
		j->next = NULL;
		j->uid = uid;
		j->gid = gid;
		memcpy(j->path, path, len);
		pthread_mutex_lock(&mu);
		if (stopping || (!started && (rc = start()) < 0)) {
			pthread_mutex_unlock(&mu);
			free(j);
			j = NULL;
		} else {
			*tail = j;
			tail = &j->next;
			pthread_cond_signal(&wake);
			pthread_mutex_unlock(&mu);
			return 0;
		}
	}
	/* no thread: do it here rather than leave it behind */
	return rc < 0 || j == NULL ? rmtree_as(path, uid, gid) : 0;
}

void rmtree_async_drain(unsigned int timeout_ms)
{
	struct timespec until;
	bool done;

	pthread_mutex_lock(&mu);
	if (!started) {
		pthread_mutex_unlock(&mu);
		return;
	}
	until = deadline_after(CLOCK_REALTIME, timeout_ms);
	while ((head != NULL || busy) &&
	       pthread_cond_timedwait(&idle, &mu, &until) != ETIMEDOUT)
		;
	done = head == NULL && !busy;
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&mu);
	if (done)
		pthread_join(th, NULL);
	else
		log_warnx("removal of session directories still running at exit: left behind");
}
