/*
 * Zero-copy blind tunnels: bytes move socket -> pipe -> socket with
 * splice(2), never through user space. One pipe per direction; a direction
 * whose destination is full stops reading its source until the pipe drains
 * (so memory stays at the two pipes). EOF is passed on as a half-close; the
 * tunnel ends when both directions are done or either side errors.
 *
 * Used for plain CONNECT tunnels; upgraded (websocket) connections inside
 * interception are TLS on both sides and use the bufferevent relay instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "log.h"
#include "proxy-int.h"

/*
 * Pipe capacity per direction. Pipes hold references to socket pages, not
 * copies, and only while the destination is behind. 4 MiB measured ~1.5 GB/s
 * through a tunnel on loopback against ~1 GB/s at 1 MiB (bench/README.md);
 * above /proc/sys/fs/pipe-max-size (1 MiB) it needs CAP_SYS_RESOURCE, so a
 * user-mode daemon falls back to 1 MiB, then to the default.
 * Only SPLICE_BIG_PIPES directions at a time get them, daemon-wide: a
 * sandbox that opens many tunnels and never reads would otherwise pin
 * megabytes of kernel memory for each (root is exempt from the pipe
 * limits). The rest keep the default 64 KiB.
 */
#define SPLICE_PIPE_SIZE (4 * 1024 * 1024)
#define SPLICE_PIPE_FALLBACK (1024 * 1024)
#define SPLICE_BIG_PIPES 16
#define SPLICE_ROUNDS 16 /* per callback and direction: fairness */
#define SPLICE_BUDGET (2 * SPLICE_PIPE_SIZE) /* bytes out per callback, likewise */

struct sdir {
	struct splice_tunnel *t;
	int src, dst;
	int pipe[2];
	size_t inpipe;
	bool eof, done;
	bool big;         /* counted in big_pipes */
	uint64_t *count;
	struct event *rd; /* src readable */
	struct event *wr; /* dst writable */
};

static atomic_uint big_pipes; /* shared by the loops */

struct splice_tunnel {
	struct conn *c;
	struct sdir dir[2]; /* 0: client -> upstream, 1: upstream -> client */
};

static void
sdir_fail(struct sdir *d)
{
	/* a reset or error on either side ends the tunnel */
	proxy_conn_close(d->t->c);
}

static void
sdir_pump(struct sdir *d)
{
	struct splice_tunnel *t = d->t;
	size_t moved = 0;

	for (int i = 0; i < SPLICE_ROUNDS && moved < SPLICE_BUDGET; i++) {
		if (d->inpipe) {
			ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, d->inpipe,
					   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				event_del(d->rd);
				event_add(d->wr, NULL);
				return;
			}
			if (n <= 0) {
				sdir_fail(d);
				return;
			}
			d->inpipe -= (size_t)n;
			*d->count += (uint64_t)n;
			moved += (size_t)n;
			continue;
		}
		if (d->eof) {
			shutdown(d->dst, SHUT_WR);
			d->done = true;
			event_del(d->rd);
			event_del(d->wr);
			if (t->dir[0].done && t->dir[1].done)
				proxy_conn_close(t->c);
			return;
		}
		ssize_t n = splice(d->src, NULL, d->pipe[1], NULL, SPLICE_PIPE_SIZE,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n > 0) {
			d->inpipe += (size_t)n;
		} else if (n == 0) {
			d->eof = true;
		} else if (errno == EAGAIN || errno == EINTR) {
			event_del(d->wr);
			event_add(d->rd, NULL);
			return;
		} else {
			sdir_fail(d);
			return;
		}
	}
	/* more to do: come back on the next loop turn via readiness */
	if (d->inpipe)
		event_add(d->wr, NULL);
	else
		event_add(d->rd, NULL);
}

static void
sdir_cb(evutil_socket_t fd, short what, void *arg)
{
	sdir_pump(arg);
}

void
splice_tunnel_stop(struct splice_tunnel *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		if (t->dir[i].rd)
			event_del(t->dir[i].rd);
		if (t->dir[i].wr)
			event_del(t->dir[i].wr);
	}
}

void
splice_tunnel_free(struct splice_tunnel *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		struct sdir *d = &t->dir[i];
		if (d->rd)
			event_free(d->rd);
		if (d->wr)
			event_free(d->wr);
		if (d->pipe[0] >= 0)
			close(d->pipe[0]);
		if (d->pipe[1] >= 0)
			close(d->pipe[1]);
		if (d->big)
			atomic_fetch_sub(&big_pipes, 1);
	}
	free(t);
}

int
splice_tunnel_start(struct conn *c, int front_fd, int back_fd,
		    struct splice_tunnel **out)
{
	struct splice_tunnel *t = calloc(1, sizeof(*t));
	struct event_base *base = c->proxy->base;

	if (t == NULL)
		return -ENOMEM;
	t->c = c;
	for (int i = 0; i < 2; i++) {
		struct sdir *d = &t->dir[i];
		d->t = t;
		d->src = i == 0 ? front_fd : back_fd;
		d->dst = i == 0 ? back_fd : front_fd;
		d->count = i == 0 ? &c->t_in : &c->t_out;
		d->pipe[0] = d->pipe[1] = -1;
		if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
			int e = errno;
			log_warn("%s: pipe2", __func__);
			splice_tunnel_free(t);
			return -e;
		}
		/* claim a slot first, give it back if the pipe cannot grow */
		if (atomic_fetch_add(&big_pipes, 1) < SPLICE_BIG_PIPES &&
		    (fcntl(d->pipe[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE) >= 0 ||
		     fcntl(d->pipe[1], F_SETPIPE_SZ, SPLICE_PIPE_FALLBACK) >= 0))
			d->big = true;
		else
			atomic_fetch_sub(&big_pipes, 1);
		d->rd = event_new(base, d->src, EV_READ | EV_PERSIST, sdir_cb, d);
		d->wr = event_new(base, d->dst, EV_WRITE | EV_PERSIST, sdir_cb, d);
		if (d->rd == NULL || d->wr == NULL) {
			splice_tunnel_free(t);
			return -ENOMEM;
		}
	}
	for (int i = 0; i < 2; i++)
		event_add(t->dir[i].rd, NULL);
	*out = t;
	return 0;
}
