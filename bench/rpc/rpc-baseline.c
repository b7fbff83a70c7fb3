/*
 * nono-rpc-baseline: the floor for bench/rpc. A single-threaded epoll
 * server on a Unix socket that answers every line with a fixed reply of
 * REPLY_BYTES (run.sh passes the size of nonod's daemon.status answer),
 * with no JSON parsing, dispatch or authorization. nonod's round-trip rate divided by this one is the share
 * of the transport's ceiling (on the same machine, same client) that nonod
 * reaches.
 *
 * usage: nono-rpc-baseline SOCKET [REPLY_BYTES]   (runs until killed)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_HEAD "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"pad\":\""
#define REPLY_TAIL "\"}}\n"
#define REPLY_MAX 16384

static char reply[REPLY_MAX];
static size_t reply_len;

/* A reply of exactly `want` bytes (LF included), padded inside "pad". */
static void reply_init(size_t want)
{
	size_t fixed = strlen(REPLY_HEAD) + strlen(REPLY_TAIL);

	if (want < fixed)
		want = fixed;
	if (want > REPLY_MAX)
		want = REPLY_MAX;
	memcpy(reply, REPLY_HEAD, strlen(REPLY_HEAD));
	memset(reply + strlen(REPLY_HEAD), 'x', want - fixed);
	memcpy(reply + want - strlen(REPLY_TAIL), REPLY_TAIL, strlen(REPLY_TAIL));
	reply_len = want;
}

struct peer {
	int fd;
	size_t len;
	char buf[65536];
};

static void die(const char *what)
{
	fprintf(stderr, "nono-rpc-baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void drop(int ep, struct peer *p)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	free(p);
}

/* Answer every complete line; 0 to keep the peer, -1 to drop it. */
static int serve(struct peer *p)
{
	for (;;) {
		ssize_t got = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
		char *start = p->buf, *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == EAGAIN ? 0 : -1;
		if (got == 0)
			return -1;
		p->len += (size_t)got;
		while ((nl = memchr(start, '\n', p->len - (size_t)(start - p->buf))) != NULL) {
			/* One outstanding request per client: the reply fits the
			 * socket buffer, so a short write means a broken client. */
			if (send(p->fd, reply, reply_len, MSG_NOSIGNAL) != (ssize_t)reply_len)
				return -1;
			start = nl + 1;
		}
		p->len -= (size_t)(start - p->buf);
		memmove(p->buf, start, p->len);
		if (p->len == sizeof(p->buf))
			return -1;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event evs[64], ev = { .events = EPOLLIN };
	int lfd, ep;

	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: nono-rpc-baseline SOCKET [REPLY_BYTES]\n");
		return 2;
	}
	reply_init(argc == 3 ? (size_t)strtoul(argv[2], NULL, 10) : 256);
	strcpy(sa.sun_path, argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0)
		die("bind/listen");
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.ptr = NULL;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll");
	for (;;) {
		int k = epoll_wait(ep, evs, 64, -1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			die("epoll_wait");
		for (int i = 0; i < k; i++) {
			struct peer *p = evs[i].data.ptr;

			if (p == NULL) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				p = calloc(1, sizeof(*p));
				if (p == NULL)
					die("calloc");
				p->fd = fd;
				ev.data.ptr = p;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
					die("epoll_ctl");
			} else if (serve(p) < 0) {
				drop(ep, p);
			}
		}
	}
}
