/*
 * Client connections: reading with fd passing, framing, dispatch to rpc.c,
 * queued output with fds, backpressure, timeouts, and the single teardown
 * path. Memory is freed from the loop once the last reference is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "fdpass.h"
#include "fdrelease.h"
#include "frame.h"
#include "log.h"
#include "rpc-dispatch.h"

#define CONN_MAX_PENDING_FDS 64
#define CONN_READ_CHUNK (64 * 1024)
#define CONN_READ_BUDGET (256 * 1024) /* per callback, for fairness */
#define CONN_WRITE_CHUNK (256 * 1024)

struct in_fd {
	uint64_t pos; /* stream offset where the message it came with begins */
	int fd;
};

struct out_fds {
	TAILQ_ENTRY(out_fds) entry;
	uint64_t pos; /* stream offset of the byte it must travel with */
	int fds[NONO_MAX_FDS_PER_MESSAGE];
	size_t n;
};

struct conn {
	TAILQ_ENTRY(conn) entry;
	uint64_t id;
	int fd;
	int refs;
	bool dead;
	bool paused;       /* reading stopped: too much output queued */
	bool eof;          /* peer shut down its writing side */
	bool close_after_flush;
	struct peer peer;
	bool hello;
	int protocol;
	char client[64];
	struct event *ev_read, *ev_write, *ev_timer;
	struct evbuffer *in, *out;
	uint64_t in_pos, out_pos;
	struct in_fd in_fds[CONN_MAX_PENDING_FDS];
	size_t n_in_fds;
	TAILQ_HEAD(, out_fds) out_fds;
};

static TAILQ_HEAD(, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static uint64_t next_conn_id = 1;

static void conn_on_read(evutil_socket_t fd, short what, void *arg);
static void conn_on_write(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_process(struct conn *c);

struct conn *conn_ref(struct conn *c)
{
	if (c != NULL)
		c->refs++;
	return c;
}

static void conn_free(struct conn *c)
{
	size_t n = evbuffer_get_length(c->in);

	if (n > 0)
		explicit_bzero(evbuffer_pullup(c->in, -1), n);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	free(c);
}

static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

void conn_unref(struct conn *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	/* Deferred: we may be inside one of this connection's callbacks. */
	if (nonod == NULL || nonod->base == NULL ||
	    event_base_once(nonod->base, -1, EV_TIMEOUT, conn_free_cb, c, NULL) < 0)
		conn_free(c);
}

struct conn *conn_new(int fd, const struct peer *peer)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		goto fail;
	c->fd = fd;
	c->refs = 1; /* the connection list's */
	c->peer = *peer;
	c->id = next_conn_id++;
	TAILQ_INIT(&c->out_fds);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->ev_read = event_new(nonod->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
	c->ev_write = event_new(nonod->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, c);
	c->ev_timer = evtimer_new(nonod->base, conn_on_timer, c);
	if (c->in == NULL || c->out == NULL || c->ev_read == NULL ||
	    c->ev_write == NULL || c->ev_timer == NULL || event_add(c->ev_read, NULL) < 0) {
		log_errorx("out of memory for client");
		goto fail;
	}
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nonod->nclients++;
	log_debug("client %llu connected: uid %u gid %u pid %d%s",
		  (unsigned long long)c->id, (unsigned)peer->uid, (unsigned)peer->gid,
		  (int)peer->pid, peer->admin ? " (admin)" : "");
	return c;
fail:
	if (c != NULL) {
		if (c->ev_read != NULL)
			event_free(c->ev_read);
		if (c->ev_write != NULL)
			event_free(c->ev_write);
		if (c->ev_timer != NULL)
			event_free(c->ev_timer);
		if (c->in != NULL)
			evbuffer_free(c->in);
		if (c->out != NULL)
			evbuffer_free(c->out);
		free(c);
	}
	close(fd);
	return NULL;
}

void conn_close(struct conn *c, const char *why)
{
	struct out_fds *o;

	if (c->dead)
		return;
	c->dead = true;
	if (why != NULL)
		log_info("client %llu (uid %u pid %d%s%s) closed: %s",
			 (unsigned long long)c->id, (unsigned)c->peer.uid, (int)c->peer.pid,
			 c->client[0] != '\0' ? " " : "", c->client, why);
	else
		log_debug("client %llu disconnected", (unsigned long long)c->id);
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_timer);
	c->ev_read = c->ev_write = c->ev_timer = NULL;
	close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < c->n_in_fds; i++)
		fd_release(c->peer.uid, c->in_fds[i].fd);
	c->n_in_fds = 0;
	while ((o = TAILQ_FIRST(&c->out_fds)) != NULL) {
		TAILQ_REMOVE(&c->out_fds, o, entry);
		fdpass_close_all(o->fds, o->n);
		free(o);
	}
	TAILQ_REMOVE(&conns, c, entry);
	nonod->nclients--;
	conn_unref(c);
}

bool conn_is_dead(const struct conn *c)
{
	return c->dead;
}

const struct peer *conn_peer(const struct conn *c)
{
	return &c->peer;
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

bool conn_hello_done(const struct conn *c)
{
	return c->hello;
}

void conn_set_hello(struct conn *c, int protocol, const char *client_name)
{
	c->hello = true;
	c->protocol = protocol;
	snprintf(c->client, sizeof(c->client), "%s", client_name != NULL ? client_name : "");
}

/* Send queued output; fds go with the byte they were queued for. */
static void conn_flush(struct conn *c)
{
	while (!c->dead && evbuffer_get_length(c->out) > 0) {
		struct out_fds *o = TAILQ_FIRST(&c->out_fds);
		size_t len = evbuffer_get_length(c->out), chunk = len;
		const int *fds = NULL;
		size_t nfds = 0;
		unsigned char *p;
		ssize_t n;

		if (o != NULL && o->pos == c->out_pos) {
			struct out_fds *next = TAILQ_NEXT(o, entry);
			fds = o->fds;
			nfds = o->n;
			if (next != NULL)
				chunk = (size_t)(next->pos - c->out_pos);
		} else if (o != NULL) {
			chunk = (size_t)(o->pos - c->out_pos);
		}
		if (chunk > CONN_WRITE_CHUNK)
			chunk = CONN_WRITE_CHUNK;
		p = evbuffer_pullup(c->out, (ssize_t)chunk);
		n = fdpass_send(c->fd, p, chunk, fds, nfds);
		if (n == -EAGAIN || n == -EINTR) {
			event_add(c->ev_write, NULL);
			return;
		}
		if (n <= 0) {
			conn_close(c, n == -EPIPE || n == -ECONNRESET ? "peer went away while we wrote"
								     : "write failed");
			return;
		}
		if (nfds > 0) {
			/* The kernel took the fds with the first byte; ours are dups. */
			TAILQ_REMOVE(&c->out_fds, o, entry);
			fdpass_close_all(o->fds, o->n);
			free(o);
		}
		evbuffer_drain(c->out, (size_t)n);
		c->out_pos += (uint64_t)n;
	}
	if (c->dead)
		return;
	event_del(c->ev_write);
	if (c->close_after_flush) {
		conn_close(c, NULL);
		return;
	}
	if (c->paused && evbuffer_get_length(c->out) <= nonod->cfg->max_output / 2) {
		c->paused = false;
		if (!c->eof)
			event_add(c->ev_read, NULL);
		conn_process(c);
	}
}

int conn_send(struct conn *c, struct json_object *msg, const int *fds, size_t nfds)
{
	struct out_fds *o = NULL;
	size_t len;
	char *buf;

	if (c->dead)
		return -EPIPE;
	if (nfds > NONO_MAX_FDS_PER_MESSAGE)
		return -E2BIG;
	buf = rpc_serialize(msg, &len);
	if (buf == NULL)
		return -ENOMEM;
	/* Nothing queued: send straight from buf, and queue only what the
	 * socket does not take (saves a copy and a buffer per reply). */
	if (nfds == 0 && evbuffer_get_length(c->out) == 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)len) {
			c->out_pos += len;
			free(buf);
			return 0;
		}
		if (n > 0) {
			c->out_pos += (uint64_t)n;
			memmove(buf, buf + n, len - (size_t)n);
			len -= (size_t)n;
		} else if (errno != EAGAIN && errno != EINTR) {
			free(buf);
			conn_close(c, errno == EPIPE || errno == ECONNRESET ? "peer went away while we wrote"
									  : "write failed");
			return -EPIPE;
		}
	}
	if (nfds > 0) {
		o = calloc(1, sizeof(*o));
		if (o == NULL) {
			free(buf);
			return -ENOMEM;
		}
		o->pos = c->out_pos + evbuffer_get_length(c->out);
		for (size_t i = 0; i < nfds; i++) {
			o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (o->fds[i] < 0) {
				int e = errno;
				fdpass_close_all(o->fds, i);
				free(o);
				free(buf);
				return -e;
			}
			o->n++;
		}
	}
	if (evbuffer_add(c->out, buf, len) < 0) {
		if (o != NULL) {
			fdpass_close_all(o->fds, o->n);
			free(o);
		}
		free(buf);
		return -ENOMEM;
	}
	free(buf);
	if (o != NULL)
		TAILQ_INSERT_TAIL(&c->out_fds, o, entry);
	/* Reading pauses at max_output; beyond four times that only notifications pile up. */
	if (evbuffer_get_length(c->out) > 4 * nonod->cfg->max_output) {
		conn_close(c, "client does not read its messages");
		return -ENOBUFS;
	}
	conn_flush(c);
	return 0;
}

/* Take the fds that arrived with bytes up to stream offset end. */
static size_t conn_take_fds(struct conn *c, uint64_t end, int *out, size_t cap)
{
	size_t n = 0, k = 0;

	while (k < c->n_in_fds && c->in_fds[k].pos <= end) {
		if (n < cap)
			out[n++] = c->in_fds[k].fd;
		else
			fd_release(c->peer.uid, c->in_fds[k].fd); /* more than a message may carry */
		k++;
	}
	memmove(c->in_fds, c->in_fds + k, (c->n_in_fds - k) * sizeof(c->in_fds[0]));
	c->n_in_fds -= k;
	return n;
}

static void conn_too_long(struct conn *c)
{
	struct rpc_error err;
	struct json_object *msg;

	rpc_error_set(&err, NONO_E_MESSAGE_TOO_LARGE, "",
		      "message longer than %zu bytes without a newline; closing the connection",
		      nonod->cfg->max_message);
	msg = rpc_make_error(NULL, &err);
	if (msg != NULL) {
		conn_send(c, msg, NULL, 0);
		json_object_put(msg);
	}
	if (c->dead)
		return;
	/* Framing is lost: answer, stop reading, close once the answer is out. */
	event_del(c->ev_read);
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	c->close_after_flush = true;
	if (evbuffer_get_length(c->out) == 0)
		conn_close(c, "message too large");
	else
		log_info("client %llu: message too large", (unsigned long long)c->id);
}

/* Handle every complete message buffered, unless output backs up. */
static void conn_process(struct conn *c)
{
	size_t max = nonod->cfg->max_message;

	conn_ref(c);
	while (!c->dead && !c->close_after_flush) {
		size_t len = evbuffer_get_length(c->in), look, mlen;
		int fds[NONO_MAX_FDS_PER_MESSAGE];
		size_t nfds;
		enum frame_status st;
		const char *p;

		if (len == 0) {
			evtimer_del(c->ev_timer);
			break;
		}
		if (evbuffer_get_length(c->out) > nonod->cfg->max_output) {
			c->paused = true;
			event_del(c->ev_read);
			break;
		}
		look = len < max + 1 ? len : max + 1;
		p = (const char *)evbuffer_pullup(c->in, (ssize_t)look);
		st = frame_scan(p, look, max, &mlen);
		if (st == FRAME_TOO_LONG) {
			conn_too_long(c);
			break;
		}
		if (st == FRAME_NEED_MORE) {
			/* A started message must complete in time (slow-loris). */
			if (!evtimer_pending(c->ev_timer, NULL)) {
				struct timeval tv = {
					.tv_sec = nonod->cfg->request_timeout_ms / 1000,
					.tv_usec = (nonod->cfg->request_timeout_ms % 1000) * 1000,
				};
				evtimer_add(c->ev_timer, &tv);
			}
			break;
		}
		evtimer_del(c->ev_timer);
		nfds = conn_take_fds(c, c->in_pos + mlen, fds, NONO_MAX_FDS_PER_MESSAGE);
		rpc_dispatch(c, p, mlen, fds, nfds);
		if (c->dead)
			break;
		/* Requests may carry secret values (secret.set): leave no copy behind. */
		explicit_bzero((void *)p, mlen + 1);
		evbuffer_drain(c->in, mlen + 1);
		c->in_pos += mlen + 1;
	}
	if (!c->dead && c->eof && evbuffer_get_length(c->out) == 0 && !c->paused)
		conn_close(c, NULL);
	else if (!c->dead && c->eof)
		c->close_after_flush = true;
	conn_unref(c);
}

static void conn_drop_fd(int fd, void *arg)
{
	struct conn *c = arg;

	fd_release(c->peer.uid, fd);
}

/* A file on a FUSE file system is refused as it arrives: its slot says so
 * (FD_REFUSED_FUSE, for rpc_call_take_fd) and it is closed off the
 * loop, so it stays in nonod's table (which workers inherit until exec,
 * and close there) as briefly as possible. */
static void conn_refuse_fuse(struct conn *c, int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0 && fd_on_fuse(fds[i])) {
			fd_release(c->peer.uid, fds[i]);
			fds[i] = FD_REFUSED_FUSE;
		}
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char buf[CONN_READ_CHUNK];
	size_t total = 0;

	while (!c->dead && total < CONN_READ_BUDGET) {
		int fds[NONO_MAX_FDS_PER_MESSAGE];
		size_t nfds = 0;
		int trunc = 0;
		/* A uid whose earlier fds are still being closed passes no more:
		 * the kernel drops them unopened (fdrelease.h). */
		bool held = fd_release_held(c->peer.uid);
		ssize_t n = fdpass_recv_drop(c->fd, buf, sizeof(buf), held ? NULL : fds, &nfds,
					     held ? 0 : NONO_MAX_FDS_PER_MESSAGE, &trunc,
					     conn_drop_fd, c);

		if (n == -EAGAIN || n == -EINTR)
			break;
		if (n < 0) {
			fd_release_all(c->peer.uid, fds, nfds);
			conn_close(c, n == -ECONNRESET ? NULL : "read failed");
			return;
		}
		if (trunc && held) {
			conn_close(c, "file descriptors refused: earlier ones of this uid are still "
				      "being closed (a file system that does not answer?)");
			return;
		}
		if (trunc || nfds + c->n_in_fds > CONN_MAX_PENDING_FDS) {
			fd_release_all(c->peer.uid, fds, nfds);
			conn_close(c, "too many file descriptors passed");
			return;
		}
		conn_refuse_fuse(c, fds, nfds);
		if (n == 0) {
			fd_release_all(c->peer.uid, fds, nfds);
			c->eof = true;
			event_del(c->ev_read);
			/* Half-close: answer what is complete, then close. */
			break;
		}
		if (nfds > 0) {
			/* A read ends right after the send that carried fds, and such a
			 * send starts a message (PROTOCOL.md): the fds belong to the
			 * last message that begins in this read. */
			const char *lf = n > 1 ? memrchr(buf, '\n', (size_t)n - 1) : NULL;
			uint64_t pos = c->in_pos + evbuffer_get_length(c->in) +
				       (lf != NULL ? (uint64_t)(lf - buf) + 1 : 0);

			for (size_t i = 0; i < nfds; i++) {
				c->in_fds[c->n_in_fds].pos = pos;
				c->in_fds[c->n_in_fds].fd = fds[i];
				c->n_in_fds++;
			}
		}
		if (evbuffer_add(c->in, buf, (size_t)n) < 0) {
			explicit_bzero(buf, (size_t)n);
			conn_close(c, "out of memory");
			return;
		}
		explicit_bzero(buf, (size_t)n);
		total += (size_t)n;
		/* Don't buffer far beyond one message: process as we go. A short
		 * read drained the socket: skip the recvmsg that would say EAGAIN. */
		if (evbuffer_get_length(c->in) > nonod->cfg->max_message || (size_t)n < sizeof(buf))
			break;
	}
	if (!c->dead)
		conn_process(c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	conn_flush(arg);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_close(c, "incomplete message timed out");
}

void conn_close_all(const char *why)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&conns)) != NULL)
		conn_close(c, why);
}

unsigned int conn_count_uid(uid_t uid)
{
	const struct conn *c;
	unsigned int n = 0;

	TAILQ_FOREACH(c, &conns, entry)
		if (c->peer.uid == uid)
			n++;
	return n;
}

void conn_config_changed(void)
{
	struct conn *c, *next;

	/* A larger max_output may let paused connections go on. */
	for (c = TAILQ_FIRST(&conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->paused && evbuffer_get_length(c->out) <= nonod->cfg->max_output / 2)
			conn_flush(c);
	}
}
