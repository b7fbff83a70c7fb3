/* A client's small file, read with its rights on a thread (see userfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "fsid.h"
#include "log.h"
#include "thread.h"
#include "userfile.h"

struct userfile {
	uid_t uid;
	gid_t gid;
	size_t max;
	int efd;                 /* the thread's "done" to the loop */
	struct event *ev;
	userfile_done_fn done;
	void *arg;
	/* the thread's results, read by the loop after the eventfd */
	int err;
	char *text;
	size_t len;
	struct userfile *next;
	char path[];
};

/* Reads in flight, for the limits: touched on the loop only. */
static struct userfile *inflight;

/* With the client's ids: open without following a FIFO's wait or taking a
 * terminal, then read to EOF (a file may lie about its size). */
static int read_file(struct userfile *u)
{
	struct stat st;
	size_t cap = 0;
	ssize_t n;
	int fd = open(u->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	for (;;) {
		if (u->len == cap) {
			char *t;
			cap = cap ? cap * 2 : 4096;
			if (cap > u->max + 1)
				cap = u->max + 1;
			if ((t = realloc(u->text, cap + 1)) == NULL) {
				close(fd);
				return -ENOMEM;
			}
			u->text = t;
		}
		if ((n = read(fd, u->text + u->len, cap - u->len)) <= 0)
			break;
		u->len += (size_t)n;
		if (u->len > u->max)
			break;
	}
	close(fd);
	if (n < 0)
		return -errno;
	if (u->len > u->max)
		return -EFBIG;
	u->text[u->len] = '\0';
	return 0;
}

static void *reader(void *arg)
{
	struct userfile *u = arg;
	struct fsid_saved old;
	uint64_t one = 1;
	bool switched = u->uid != geteuid() || u->gid != getegid();

	u->err = switched ? fsid_enter(u->uid, u->gid, &old) : 0;
	if (u->err == 0) {
		u->err = read_file(u);
		if (switched)
			fsid_leave(&old);
	}
	/* The last touch of u: the loop owns it from here. */
	if (write(u->efd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd takes a write of 1 until 2^64-2 */
	return NULL;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct userfile *u = arg;

	(void)fd;
	(void)what;
	for (struct userfile **pp = &inflight; *pp != NULL; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	event_free(u->ev);
	close(u->efd);
	if (u->err < 0) {
		free(u->text);
		u->text = NULL;
		u->len = 0;
	}
	u->done(u->err, u->text, u->len, u->arg);
	free(u);
}

int userfile_read_async(uid_t uid, gid_t gid, const char *path, size_t max,
			userfile_done_fn done, void *arg)
{
	size_t plen = strlen(path) + 1;
	unsigned mine = 0, all = 0;
	struct userfile *u;
	int e;

	for (struct userfile *x = inflight; x != NULL; x = x->next) {
		all++;
		mine += x->uid == uid;
	}
	if (mine >= USERFILE_PER_UID)
		return -EAGAIN;
	if (all >= USERFILE_MAX)
		return -EBUSY;
	if ((u = calloc(1, sizeof(*u) + plen)) == NULL)
		return -ENOMEM;
	*u = (struct userfile){ .uid = uid, .gid = gid, .max = max, .done = done, .arg = arg };
	memcpy(u->path, path, plen);
	if ((u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		e = -errno;
		free(u);
		return e;
	}
	u->ev = event_new(nonod->base, u->efd, EV_READ, on_read, u);
	if (u->ev == NULL || event_add(u->ev, NULL) < 0) {
		if (u->ev != NULL)
			event_free(u->ev);
		close(u->efd);
		free(u);
		return -ENOMEM;
	}
	/* Detached: a read held by a file system that never answers is left
	 * to the process exit. */
	if ((e = thread_start(NULL, true, reader, u)) < 0) {
		event_free(u->ev);
		close(u->efd);
		free(u);
		return e;
	}
	u->next = inflight;
	inflight = u;
	return 0;
}
