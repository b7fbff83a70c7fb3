/* Closing clients' descriptors off the loop (see fdrelease.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdrelease.h"
#include "log.h"
#include "thread.h"

/* One uid's closes, in order; freed by its thread when empty. */
struct fdq {
	uid_t uid;
	int *fds;
	size_t head, n, cap;     /* fds[head .. head + n) wait */
	bool running;            /* a thread works on it */
	struct fdq *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct fdq *queues;

static struct fdq *fdq_find(uid_t uid)
{
	for (struct fdq *q = queues; q != NULL; q = q->next)
		if (q->uid == uid)
			return q;
	return NULL;
}

static void fdq_unlink(struct fdq *q)
{
	for (struct fdq **pp = &queues; *pp != NULL; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
}

static void *closer(void *arg)
{
	struct fdq *q = arg;

	pthread_mutex_lock(&mu);
	while (q->n > 0) {
		int fd = q->fds[q->head++];

		q->n--;
		pthread_mutex_unlock(&mu);
		close(fd); /* may wait on the file's server: only this uid's */
		pthread_mutex_lock(&mu);
	}
	fdq_unlink(q);
	pthread_mutex_unlock(&mu);
	free(q->fds);
	free(q);
	return NULL;
}

/* Under mu: append fd to uid's queue, starting its thread if it has none.
 * false when that cannot be done (no memory): the caller closes. */
static bool fdq_push(uid_t uid, int fd)
{
	struct fdq *q = fdq_find(uid);
	int e;

	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL)
			return false;
		q->uid = uid;
		q->next = queues;
		queues = q;
	}
	if (q->head + q->n == q->cap) {
		size_t nc;
		int *nf;

		if (q->head > 0) { /* reuse the room already closed */
			memmove(q->fds, q->fds + q->head, q->n * sizeof(int));
			q->head = 0;
		}
		nc = q->n == q->cap ? (q->cap ? q->cap * 2 : 16) : q->cap;
		if (nc != q->cap) {
			if ((nf = realloc(q->fds, nc * sizeof(int))) == NULL)
				return false;
			q->fds = nf;
			q->cap = nc;
		}
	}
	q->fds[q->head + q->n++] = fd;
	if (q->running)
		return true;
	if ((e = thread_start(NULL, true, closer, q)) == 0)
		q->running = true;
	else /* stays queued: the next push tries again */
		log_warnx("cannot start a thread to close uid %u's descriptors: %s", (unsigned)uid,
			  strerror(-e));
	return true;
}

void fd_release(uid_t uid, int fd)
{
	bool queued;

	if (fd < 0)
		return;
	pthread_mutex_lock(&mu);
	queued = fdq_push(uid, fd);
	pthread_mutex_unlock(&mu);
	if (!queued)
		close(fd); /* out of memory: better a risk than a leak */
}

void fd_release_all(uid_t uid, int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fd_release(uid, fds[i]);
		fds[i] = -1;
	}
}

bool fd_release_held(uid_t uid)
{
	struct fdq *q;
	bool held;

	pthread_mutex_lock(&mu);
	q = fdq_find(uid);
	held = q != NULL && q->n >= FD_RELEASE_HELD;
	pthread_mutex_unlock(&mu);
	return held;
}

/* The mount id of fd, from /proc/self/fdinfo; -1 if unknown. */
static long fd_mnt_id(int fd)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strstr(buf, "mnt_id:")) == NULL)
		return -1;
	return strtol(p + 7, NULL, 10);
}

bool fd_on_fuse(int fd)
{
	int type;
	socklen_t tlen = sizeof(type);
	char line[4096];
	bool fuse = false;
	long id;
	FILE *f;

	/* Pipes and sockets (most passed fds) are no file system's: skip the
	 * mountinfo scan, which costs O(mounts). */
	if (fcntl(fd, F_GETPIPE_SZ) >= 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0)
		return false;
	if ((id = fd_mnt_id(fd)) < 0 || (f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return false;
	/* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
	while (fgets(line, sizeof(line), f) != NULL) {
		char *sep;

		if (strtol(line, NULL, 10) != id || (sep = strstr(line, " - ")) == NULL)
			continue;
		fuse = strncmp(sep + 3, "fuse", 4) == 0;
		break;
	}
	fclose(f);
	return fuse;
}
