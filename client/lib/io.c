/*
 * libnono's I/O engine: send framed requests (with fds), read whatever the
 * daemon sends, cut it into messages, and route each one: replies to
 * blocking calls into their waiting struct msg, async replies and
 * notifications onto the dispatch queue. Never runs user callbacks.
 *
 * fds and messages: the kernel attaches SCM_RIGHTS fds to the first byte of
 * the sendmsg() that carried them, and a recvmsg() never reads past the end
 * of a segment that carried fds. So the last byte a recvmsg() returns along
 * with fds lies inside the message they were sent with: each received batch
 * is tagged with that stream offset and handed to the message whose bytes
 * span it. At most one message is incomplete at a time and one recvmsg
 * brings at most one batch, hence IO_MAX_PENDING_FDS.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "frame.h"
#include "private.h"

#define IO_READ_CHUNK (64u * 1024u)
#define JSON_TEXT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

void msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	fdpass_close_all(m->fds, m->nfds);
	free(m->method);
	free(m->json);
	nono_error_free(m->err);
	free(m);
}

void io_unlink_call(nono_client *c, struct msg *m)
{
	struct msg **pp;

	for (pp = &c->calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			m->next = NULL;
			return;
		}
	}
}

static void queue_push(nono_client *c, struct msg *m)
{
	m->next = NULL;
	*c->queue_tail = m;
	c->queue_tail = &m->next;
	c->queued++;
	c->queued_bytes += m->bytes;
}

struct msg *io_queue_pop(nono_client *c)
{
	struct msg *m = c->queue_head;

	if (m == NULL)
		return NULL;
	c->queue_head = m->next;
	if (c->queue_head == NULL)
		c->queue_tail = &c->queue_head;
	m->next = NULL;
	c->queued--;
	c->queued_bytes -= m->bytes;
	return m;
}

void io_fail(nono_client *c, nono_error *e)
{
	struct msg *m, *next;

	if (c->dead != NULL) {
		nono_error_free(e);
		return;
	}
	c->dead = e;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	for (size_t i = 0; i < c->nrxfds; i++)
		close(c->rxfds[i].fd);
	c->nrxfds = 0;
	c->rlen = 0;

	m = c->calls;
	c->calls = NULL;
	for (; m != NULL; m = next) {
		next = m->next;
		m->next = NULL;
		if (m->abandoned) {
			msg_free(m);
			continue;
		}
		m->err = error_copy(e);
		if (m->blocking)
			m->done = true; /* the waiter owns m */
		else
			queue_push(c, m);
	}
}

static int fail_protocol(nono_client *c, int code, const char *what)
{
	io_fail(c, error_local(code, ERR_KIND_PROTOCOL, 0, "protocol error from daemon: %s",
			       what));
	return c->dead->code;
}

static struct msg *find_call(nono_client *c, int64_t id)
{
	for (struct msg *m = c->calls; m != NULL; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

/* obj as JSON text; json-c represents JSON null as NULL, so NULL -> null_text. */
static char *json_text(struct json_object *obj, const char *null_text)
{
	return strdup(obj != NULL ? json_object_to_json_string_ext(obj, JSON_TEXT_FLAGS)
				  : null_text);
}

static int route_notification(nono_client *c, const struct rpc_response *resp, struct msg *m)
{
	m->type = MSG_NOTIFY;
	m->method = strdup(resp->method);
	m->json = json_text(resp->params, "{}");
	if (m->method == NULL || m->json == NULL)
		return -ENOMEM;
	queue_push(c, m);
	return 0;
}

/* A reply: find its call, fill it in from resp and m's fds. */
static int route_reply(nono_client *c, const struct rpc_response *resp, struct msg *in)
{
	struct msg *call;
	int64_t id;

	if (resp->id == NULL || json_object_is_type(resp->id, json_type_null)) {
		/* The daemon could not tell which request it answers (it could
		 * not parse one of ours): nothing can be trusted any more. */
		if (resp->type == RPC_MSG_ERROR) {
			io_fail(c, error_remote(resp));
			return c->dead->code;
		}
		return fail_protocol(c, NONO_E_PARSE, "result without an id");
	}
	if (!json_object_is_type(resp->id, json_type_int))
		return fail_protocol(c, NONO_E_PARSE, "reply id is not an integer");
	id = json_object_get_int64(resp->id);
	call = find_call(c, id);
	if (call == NULL)
		return fail_protocol(c, NONO_E_PARSE, "reply to a request that was not sent");
	io_unlink_call(c, call);

	memcpy(call->fds, in->fds, in->nfds * sizeof(int));
	call->nfds = in->nfds;
	in->nfds = 0;
	call->bytes = in->bytes;
	if (call->abandoned) {
		msg_free(call);
		return 0;
	}
	if (resp->type == RPC_MSG_ERROR) {
		call->err = error_remote(resp);
	} else {
		call->json = json_text(resp->result, "null");
		if (call->json == NULL)
			call->err = error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						"out of memory");
	}
	if (call->blocking)
		call->done = true;
	else
		queue_push(c, call);
	return 0;
}

/* One complete message buf[0..len): parse and route it; takes fds. */
static int route(nono_client *c, const char *buf, size_t len, const int *fds, size_t nfds)
{
	struct rpc_response resp;
	struct rpc_error rerr;
	struct msg *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		fdpass_close_all((int *)fds, nfds);
		io_fail(c, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM, "out of memory"));
		return c->dead->code;
	}
	memcpy(m->fds, fds, nfds * sizeof(int));
	m->nfds = nfds;
	m->bytes = len + sizeof(*m);

	if (c->queued_bytes + m->bytes > IO_MAX_QUEUED_BYTES) {
		msg_free(m);
		return fail_protocol(c, NONO_E_LIMIT_EXCEEDED,
				     "too many undelivered messages (call nono_client_dispatch)");
	}
	memset(&rerr, 0, sizeof(rerr));
	if (rpc_parse_response(buf, len, &resp, &rerr) < 0) {
		msg_free(m);
		return fail_protocol(c, NONO_E_PARSE,
				     rerr.detail[0] != '\0' ? rerr.detail : "invalid message");
	}
	if (resp.type == RPC_MSG_NOTIFICATION) {
		r = route_notification(c, &resp, m);
		if (r == 0)
			m = NULL;
	} else {
		r = route_reply(c, &resp, m);
	}
	rpc_response_free(&resp);
	msg_free(m);
	if (r == -ENOMEM) {
		io_fail(c, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM, "out of memory"));
		return c->dead->code;
	}
	return r;
}

/* Move the pending fds that arrived within stream offsets <= end to out. */
static int take_fds(nono_client *c, uint64_t end, int *out, size_t *nout)
{
	size_t i, keep = 0;

	*nout = 0;
	for (i = 0; i < c->nrxfds; i++) {
		if (c->rxfds[i].at > end) {
			c->rxfds[keep++] = c->rxfds[i];
		} else if (*nout < NONO_MAX_FDS_PER_MESSAGE) {
			out[(*nout)++] = c->rxfds[i].fd;
		} else {
			close(c->rxfds[i].fd);
			fdpass_close_all(out, *nout);
			*nout = 0;
			for (i++; i < c->nrxfds; i++)
				close(c->rxfds[i].fd);
			c->nrxfds = 0;
			return -1;
		}
	}
	c->nrxfds = keep;
	return 0;
}

/* Route every complete message in the buffer, then compact it. */
static int io_process(nono_client *c)
{
	size_t off = 0, mlen;
	int fds[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds;
	int r = 0;

	while (c->dead == NULL && off < c->rlen) {
		enum frame_status st = frame_scan(c->rbuf + off, c->rlen - off,
						  c->max_message, &mlen);

		if (st == FRAME_NEED_MORE)
			break;
		if (st != FRAME_OK)
			return fail_protocol(c, NONO_E_MESSAGE_TOO_LARGE,
					     "message longer than the negotiated maximum");
		if (take_fds(c, c->rbase + off + mlen, fds, &nfds) < 0)
			return fail_protocol(c, NONO_E_LIMIT_EXCEEDED,
					     "too many file descriptors with one message");
		r = route(c, c->rbuf + off, mlen, fds, nfds);
		if (r < 0)
			return r;
		off += mlen + 1;
	}
	if (c->dead != NULL)
		return c->dead->code;
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	c->rbase += off;
	return 0;
}

int io_read(nono_client *c)
{
	int fds[NONO_MAX_FDS_PER_MESSAGE];
	size_t nfds = 0;
	int truncated = 0;
	ssize_t n;

	if (c->dead != NULL)
		return c->dead->code;
	if (c->rcap - c->rlen < IO_READ_CHUNK) {
		size_t ncap = c->rlen + IO_READ_CHUNK;
		char *nbuf = realloc(c->rbuf, ncap);

		if (nbuf == NULL) {
			io_fail(c, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
					       "out of memory"));
			return c->dead->code;
		}
		c->rbuf = nbuf;
		c->rcap = ncap;
	}
	do {
		n = fdpass_recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, fds, &nfds,
				NONO_MAX_FDS_PER_MESSAGE, &truncated);
	} while (n == -EINTR);
	if (n == -EAGAIN || n == -EWOULDBLOCK)
		return 0;
	if (n < 0) {
		io_fail(c, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION, (int)-n,
				       "cannot read from nonod: %s", strerror((int)-n)));
		return c->dead->code;
	}
	if (truncated || c->nrxfds + nfds > IO_MAX_PENDING_FDS) {
		fdpass_close_all(fds, nfds);
		return fail_protocol(c, NONO_E_LIMIT_EXCEEDED, "too many file descriptors");
	}
	if (n == 0) {
		fdpass_close_all(fds, nfds);
		io_fail(c, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION, ECONNRESET,
				       c->rlen > 0 ? "nonod closed the connection in the middle of a message"
						   : "nonod closed the connection"));
		return c->dead->code;
	}
	c->rlen += (size_t)n;
	for (size_t i = 0; i < nfds; i++) {
		c->rxfds[c->nrxfds].fd = fds[i];
		c->rxfds[c->nrxfds].at = c->rbase + c->rlen - 1;
		c->nrxfds++;
	}
	return io_process(c) < 0 ? c->dead->code : 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * poll() fd for events, at most until deadline (-1 = none); polls at least
 * once even when the deadline has passed, so what is already there is seen.
 * >0 the revents, 0 timeout, <0 -errno.
 */
static int io_poll(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int timeout, r;

	for (;;) {
		timeout = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();

			timeout = left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
		}
		r = poll(&pfd, 1, timeout);
		if (r > 0)
			return pfd.revents;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0 && timeout == 0)
			return 0;
	}
}

int io_send(nono_client *c, const char *buf, size_t len, const int *fds, size_t nfds,
	    nono_error **err)
{
	int64_t deadline = c->timeout_ms >= 0 ? now_ms() + c->timeout_ms : -1;
	size_t off = 0;

	if (c->dead != NULL)
		return error_out(err, error_copy(c->dead));
	if (len == 0 || len - 1 > c->max_message)
		return error_out(err, error_local(NONO_E_MESSAGE_TOO_LARGE, ERR_KIND_ARGUMENT, 0,
						  "request of %zu bytes exceeds the daemon's limit of %zu",
						  len, c->max_message));
	while (off < len) {
		ssize_t n = fdpass_send(c->fd, buf + off, len - off, off == 0 ? fds : NULL,
					off == 0 ? nfds : 0);
		int ev;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN && n != -EWOULDBLOCK && n != 0) {
			io_fail(c, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION,
					       (int)-n, "cannot write to nonod: %s",
					       strerror((int)-n)));
			return error_out(err, error_copy(c->dead));
		}
		/* Socket buffer full: read meanwhile so neither side deadlocks. */
		ev = io_poll(c->fd, POLLIN | POLLOUT, deadline);
		if (ev == 0) {
			nono_error *e = error_local(NONO_E_TIMEOUT, ERR_KIND_TIMEOUT, ETIMEDOUT,
						    "timed out writing to nonod");
			if (off == 0)
				return error_out(err, e);
			io_fail(c, e); /* a partial message: framing is lost */
			return error_out(err, error_copy(c->dead));
		}
		if (ev < 0) {
			io_fail(c, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION,
					       -ev, "poll: %s", strerror(-ev)));
			return error_out(err, error_copy(c->dead));
		}
		if ((ev & (POLLIN | POLLHUP | POLLERR)) && io_read(c) < 0)
			return error_out(err, error_copy(c->dead));
	}
	return 0;
}

int io_wait(nono_client *c, struct msg *m, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

	while (!m->done) {
		int r = io_read(c);
		int ev;

		if (r < 0 && !m->done)
			return r; /* cannot happen: io_fail completes linked calls */
		if (r != 0)
			continue;
		ev = io_poll(c->fd, POLLIN, deadline);
		if (ev == 0)
			return NONO_E_TIMEOUT;
		if (ev < 0)
			io_fail(c, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION,
					       -ev, "poll: %s", strerror(-ev)));
	}
	return 0;
}
