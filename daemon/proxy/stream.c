/*
 * A buffered socket, plain or TLS, for the proxy's connections: the subset
 * of libevent's bufferevent that the proxy uses, with the same callback
 * contract, but cheaper I/O on the hot path (see stream.h):
 *
 * - the read event is registered once and stays registered while reading
 *   is enabled: no epoll_ctl per exchange (a bufferevent re-arms EPOLLOUT
 *   for every write and drops it after);
 * - output is written at the end of the current loop pass (an event made
 *   active, no syscall), directly, not after another epoll_wait; EPOLLOUT
 *   is only registered while a write would block;
 * - TLS reads use read-ahead: one read(2) per burst instead of one for a
 *   record's header and one for its body. Bytes OpenSSL holds in its buffer
 *   are drained before returning to the loop, and a read stopped early
 *   (watermark, budget) is resumed on the next loop turn, so buffered
 *   bytes never wait for a socket event that will not come;
 * - each pass moves at most STREAM_BUDGET bytes per direction, then
 *   yields to the loop so one fast connection cannot starve the others.
 *
 * Callbacks run from the loop, never from inside a stream_* call. A
 * callback may free the stream (or any other): the struct stays allocated
 * until the handler that called it returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "stream.h"

#define STREAM_BUDGET (256u * 1024u) /* bytes per direction per loop pass */
#define STREAM_READ_DEFAULT (64u * 1024u)

enum st_state {
	ST_IDLE,       /* no socket yet (waiting for stream_connect) */
	ST_CONNECTING, /* TCP connect in progress */
	ST_HANDSHAKE,  /* TLS handshake in progress */
	ST_OPEN,
};

struct stream {
	struct event_base *base;
	int fd;
	SSL *ssl;
	bool accepting;
	bool close_on_free;
	enum st_state state;
	struct evbuffer *in, *out;
	stream_data_cb readcb, writecb;
	stream_event_cb eventcb;
	void *arg;
	short enabled;       /* EV_READ / EV_WRITE, as the user set them */
	bool rd_eof;          /* EOF or error seen reading: no more reads */
	bool wr_dead;         /* write error: no more writes */
	bool rd_watermarked;  /* input at the high watermark */
	bool wr_blocked;      /* waiting for EPOLLOUT */
	bool ssl_read_wants_write, ssl_write_wants_read;
	int last_write;       /* SSL_write must be retried with this length */
	int pending_err;      /* connect() failed at once: report from the loop */
	size_t rd_low, rd_high, wr_low;
	size_t max_read, max_write;
	struct event *rev, *wev, *flush, *later;
	struct event *rtimer, *wtimer;
	struct timeval rto, wto;
	bool has_rto, has_wto;
	unsigned long ssl_err;
	int refs;
	bool freed;
};

static void stream_update(struct stream *s);
static int stream_set_fd(struct stream *s, int fd);

static void
ref(struct stream *s)
{
	s->refs++;
}

/* Returns false when the stream was freed meanwhile (and is now gone). */
static bool
unref(struct stream *s)
{
	bool alive = !s->freed;

	if (--s->refs == 0 && s->freed)
		free(s);
	return alive;
}

static bool
reading_wanted(const struct stream *s)
{
	return s->state == ST_OPEN && (s->enabled & EV_READ) && !s->rd_eof &&
	       !s->rd_watermarked;
}

/* Register exactly the events the state needs (no-ops when unchanged). */
static void
stream_update(struct stream *s)
{
	bool want_r, want_w;

	if (s->freed || s->fd < 0)
		return;
	if (s->state == ST_CONNECTING) {
		want_r = false;
		want_w = true;
	} else if (s->state == ST_HANDSHAKE) {
		want_r = !s->wr_blocked;
		want_w = s->wr_blocked;
	} else {
		bool writing = (s->enabled & EV_WRITE) && !s->wr_dead;
		want_r = (reading_wanted(s) && !s->ssl_read_wants_write) ||
			 (s->ssl_write_wants_read && writing);
		want_w = (s->wr_blocked && writing) ||
			 (s->ssl_read_wants_write && reading_wanted(s));
	}
	if (want_r && !event_pending(s->rev, EV_READ, NULL))
		event_add(s->rev, NULL);
	else if (!want_r && event_pending(s->rev, EV_READ, NULL))
		event_del(s->rev);
	if (want_w && !event_pending(s->wev, EV_WRITE, NULL))
		event_add(s->wev, NULL);
	else if (!want_w && event_pending(s->wev, EV_WRITE, NULL))
		event_del(s->wev);
	/* read timeout: armed while reading (or handshaking) */
	if (s->has_rto && (reading_wanted(s) || s->state == ST_HANDSHAKE)) {
		if (!evtimer_pending(s->rtimer, NULL))
			evtimer_add(s->rtimer, &s->rto);
	} else if (evtimer_pending(s->rtimer, NULL)) {
		evtimer_del(s->rtimer);
	}
	/* write timeout: armed while connecting or output waits */
	bool wpend = s->state == ST_CONNECTING ||
		     (s->state == ST_HANDSHAKE && !s->has_rto) ||
		     (s->state == ST_OPEN && (s->enabled & EV_WRITE) && !s->wr_dead &&
		      evbuffer_get_length(s->out) > 0);
	if (s->has_wto && wpend) {
		if (!evtimer_pending(s->wtimer, NULL))
			evtimer_add(s->wtimer, &s->wto);
	} else if (evtimer_pending(s->wtimer, NULL)) {
		evtimer_del(s->wtimer);
	}
}

/* Report what to the user; false when the stream was freed by it. */
static bool
report(struct stream *s, short what)
{
	if (s->eventcb)
		s->eventcb(s, what, s->arg);
	return !s->freed;
}

static void
schedule_flush(struct stream *s)
{
	if (s->state == ST_OPEN && (s->enabled & EV_WRITE) && !s->wr_blocked &&
	    !s->wr_dead && evbuffer_get_length(s->out) > 0)
		event_active(s->flush, EV_WRITE, 0);
}

/*
 * Bytes in OpenSSL's read-ahead buffer get no socket event: read them on
 * the next loop turn (a zero timeout, so other connections get their turn
 * first). Plain sockets need nothing: the level-triggered event fires.
 */
static void
kick_read(struct stream *s)
{
	static const struct timeval now = {0, 0};

	if (reading_wanted(s) && s->ssl && SSL_has_pending(s->ssl))
		evtimer_add(s->later, &now);
}

static void
record_ssl_error(struct stream *s)
{
	unsigned long e = ERR_peek_error();

	if (s->ssl_err == 0 && e != 0)
		s->ssl_err = e;
}

/* One read into in: >0 bytes, 0 EOF, -EAGAIN, or another -errno. */
static ssize_t
read_some(struct stream *s, void *buf, size_t len)
{
	if (s->ssl == NULL) {
		ssize_t n;
		do {
			n = read(s->fd, buf, len);
		} while (n < 0 && errno == EINTR);
		return n < 0 ? -errno : n;
	}
	ERR_clear_error();
	int r = SSL_read(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0)
		return r;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		s->ssl_read_wants_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0)
			return errno != 0 && errno != EAGAIN ? -errno : 0; /* dirty EOF */
		/* fall through */
	default:
		record_ssl_error(s);
		return -EPROTO;
	}
}

static void
do_read(struct stream *s)
{
	size_t added = 0;
	short what = 0;
	int err = 0;
	bool starved = false; /* OpenSSL wants socket bytes: the read event says when */

	while (reading_wanted(s)) {
		size_t len = evbuffer_get_length(s->in);
		size_t room = s->max_read;
		struct evbuffer_iovec v;

		if (s->rd_high) {
			if (len >= s->rd_high) {
				s->rd_watermarked = true;
				break;
			}
			if (s->rd_high - len < room)
				room = s->rd_high - len;
		}
		if (added >= STREAM_BUDGET)
			break; /* fairness: the rest on a later turn (kick_read) */
		if (evbuffer_reserve_space(s->in, (ev_ssize_t)room, &v, 1) < 1) {
			what = STREAM_ERROR;
			err = ENOMEM;
			break;
		}
		if (v.iov_len > room)
			v.iov_len = room;
		ssize_t n = read_some(s, v.iov_base, v.iov_len);
		if (n > 0) {
			size_t asked = v.iov_len;
			v.iov_len = (size_t)n;
			evbuffer_commit_space(s->in, &v, 1);
			added += (size_t)n;
			/* drained: the (level-triggered) read event says when there is more */
			if (s->ssl ? !SSL_has_pending(s->ssl) : (size_t)n < asked)
				break;
			continue;
		}
		if (n == -EAGAIN) {
			starved = true;
			break;
		}
		what = n == 0 ? STREAM_EOF : STREAM_ERROR;
		err = n == 0 ? 0 : (int)-n;
		break;
	}
	if (what)
		s->rd_eof = true;
	stream_update(s);
	if (added > 0) {
		if (s->has_rto && evtimer_pending(s->rtimer, NULL))
			evtimer_add(s->rtimer, &s->rto); /* restart the idle clock */
		if (s->readcb && evbuffer_get_length(s->in) >= s->rd_low) {
			s->readcb(s, s->arg);
			if (s->freed)
				return;
		}
	}
	if (!what && !starved)
		kick_read(s);
	if (what) {
		errno = err;
		report(s, what | STREAM_READING);
	}
}

/* Write what the output holds: returns false when the stream was freed. */
static bool
do_write(struct stream *s)
{
	size_t written = 0;
	int err = 0;

	s->wr_blocked = false;
	if (s->state != ST_OPEN || !(s->enabled & EV_WRITE) || s->wr_dead) {
		stream_update(s);
		return true;
	}
	while (evbuffer_get_length(s->out) > 0) {
		if (written >= s->max_write) {
			s->wr_blocked = true; /* fairness: EPOLLOUT brings us back */
			break;
		}
		if (s->ssl) {
			struct evbuffer_iovec v[4];
			int nv = evbuffer_peek(s->out, -1, NULL, v, 4), i = 0;
			while (i < nv && i < 4 && v[i].iov_len == 0)
				i++;
			if (i >= nv || i >= 4)
				break;
			int len = v[i].iov_len > INT32_MAX ? INT32_MAX : (int)v[i].iov_len;
			if (s->last_write > 0 && s->last_write <= len)
				len = s->last_write; /* a retry must repeat its length */
			ERR_clear_error();
			int r = SSL_write(s->ssl, v[i].iov_base, len);
			if (r > 0) {
				s->last_write = 0;
				evbuffer_drain(s->out, (size_t)r);
				written += (size_t)r;
				continue;
			}
			s->last_write = len;
			int e = SSL_get_error(s->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE) {
				s->wr_blocked = true;
			} else if (e == SSL_ERROR_WANT_READ) {
				s->ssl_write_wants_read = true;
			} else {
				record_ssl_error(s);
				err = e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO;
			}
			break;
		}
		struct evbuffer_iovec v[16];
		struct iovec iov[16];
		int nv = evbuffer_peek(s->out, (ev_ssize_t)(s->max_write - written), NULL, v, 16);
		size_t total = 0;
		if (nv > 16)
			nv = 16;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			total += v[i].iov_len;
		}
		ssize_t n;
		do {
			n = writev(s->fd, iov, nv);
		} while (n < 0 && errno == EINTR);
		if (n > 0) {
			evbuffer_drain(s->out, (size_t)n);
			written += (size_t)n;
			if ((size_t)n < total) {
				s->wr_blocked = true; /* socket buffer full */
				break;
			}
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			s->wr_blocked = true;
		else
			err = n < 0 ? errno : EPIPE;
		break;
	}
	if (err)
		s->wr_dead = true;
	if (written > 0 && s->has_wto && evtimer_pending(s->wtimer, NULL))
		evtimer_del(s->wtimer); /* progress: restart the clock below */
	stream_update(s);
	if (written > 0 && s->writecb && evbuffer_get_length(s->out) <= s->wr_low) {
		s->writecb(s, s->arg);
		if (s->freed)
			return false;
	}
	if (err) {
		errno = err;
		return report(s, STREAM_ERROR | STREAM_WRITING);
	}
	return true;
}

static void
handshake_failed(struct stream *s, int err)
{
	s->rd_eof = s->wr_dead = true;
	s->state = ST_OPEN; /* finished, badly */
	stream_update(s);
	errno = err;
	report(s, STREAM_ERROR);
}

static void
handshake(struct stream *s)
{
	ERR_clear_error();
	int r = SSL_do_handshake(s->ssl);

	if (r == 1) {
		s->state = ST_OPEN;
		s->wr_blocked = false;
		stream_update(s);
		if (!report(s, STREAM_CONNECTED))
			return;
		kick_read(s);
		schedule_flush(s);
		return;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->wr_blocked = false;
		stream_update(s);
		return;
	case SSL_ERROR_WANT_WRITE:
		s->wr_blocked = true;
		stream_update(s);
		return;
	case SSL_ERROR_SYSCALL: {
		int e = ERR_peek_error() == 0 ? errno : 0; /* 0: closed by the peer */
		record_ssl_error(s);
		handshake_failed(s, e == EAGAIN ? 0 : e);
		return;
	}
	default:
		record_ssl_error(s);
		handshake_failed(s, 0);
		return;
	}
}

static void
connect_done(struct stream *s)
{
	int e = s->pending_err;
	socklen_t len = sizeof(e);

	if (e == 0 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	s->pending_err = 0;
	if (e == EINPROGRESS || e == EALREADY)
		return;
	if (e != 0) {
		s->state = ST_OPEN;
		s->rd_eof = s->wr_dead = true;
		stream_update(s);
		errno = e;
		report(s, STREAM_ERROR);
		return;
	}
	if (s->ssl) {
		s->state = ST_HANDSHAKE;
		handshake(s);
		return;
	}
	s->state = ST_OPEN;
	stream_update(s);
	if (report(s, STREAM_CONNECTED))
		schedule_flush(s);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	ref(s);
	if (s->state == ST_HANDSHAKE) {
		handshake(s);
	} else if (s->ssl_write_wants_read) {
		s->ssl_write_wants_read = false;
		if (do_write(s))
			do_read(s);
	} else {
		do_read(s);
	}
	unref(s);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	ref(s);
	if (s->state == ST_CONNECTING) {
		connect_done(s);
	} else if (s->state == ST_HANDSHAKE) {
		handshake(s);
	} else if (s->ssl_read_wants_write) {
		s->ssl_read_wants_write = false;
		do_read(s);
		if (!s->freed)
			do_write(s);
	} else {
		do_write(s);
	}
	unref(s);
}

/* Work deferred to later in this loop pass (flush: EV_WRITE) or to the
 * next turn (the zero-timeout read kick: EV_TIMEOUT). */
static void
on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	ref(s);
	if (what & EV_WRITE)
		do_write(s);
	else
		do_read(s);
	unref(s);
}

static void
on_timeout(struct stream *s, short dir)
{
	ref(s);
	if (dir == STREAM_READING)
		s->enabled &= ~EV_READ;
	else
		s->enabled &= ~EV_WRITE;
	stream_update(s);
	errno = ETIMEDOUT; /* for callers that name the socket error */
	report(s, STREAM_TIMEOUT | dir);
	unref(s);
}

static void
on_rtimer(evutil_socket_t fd, short what, void *arg)
{
	on_timeout(arg, STREAM_READING);
}

static void
on_wtimer(evutil_socket_t fd, short what, void *arg)
{
	on_timeout(arg, STREAM_WRITING);
}

/* Output grew: write at the end of this loop pass. Input shrank: resume. */
static void
out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct stream *s = arg;

	if (info->n_added > 0)
		schedule_flush(s);
}

static void
in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct stream *s = arg;

	if (info->n_deleted > 0 && s->rd_watermarked &&
	    evbuffer_get_length(b) < s->rd_high) {
		s->rd_watermarked = false;
		stream_update(s);
		kick_read(s); /* bytes may wait in OpenSSL's buffer */
	}
}

struct stream *
stream_new(struct event_base *base, int fd, SSL *ssl, enum stream_tls tls,
	   bool close_on_free)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->fd = -1;
	s->ssl = tls == STREAM_PLAIN ? NULL : ssl;
	s->accepting = tls == STREAM_TLS_ACCEPT;
	s->close_on_free = close_on_free;
	s->max_read = STREAM_READ_DEFAULT;
	s->max_write = STREAM_BUDGET;
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	s->flush = event_new(base, -1, 0, on_deferred, s);
	s->rtimer = evtimer_new(base, on_rtimer, s);
	s->wtimer = evtimer_new(base, on_wtimer, s);
	s->later = evtimer_new(base, on_deferred, s);
	if (!s->in || !s->out || !s->flush || !s->rtimer || !s->wtimer || !s->later)
		goto fail;
	evbuffer_add_cb(s->out, out_cb, s);
	evbuffer_add_cb(s->in, in_cb, s);
	if (s->ssl) {
		SSL_set_mode(s->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_set_read_ahead(s->ssl, 1);
		/* one SSL_read handles at most what read-ahead holds: a peer
		 * streaming KeyUpdates cannot keep it looping on the socket */
		SSL_clear_mode(s->ssl, SSL_MODE_AUTO_RETRY);
		if (s->accepting)
			SSL_set_accept_state(s->ssl);
		else
			SSL_set_connect_state(s->ssl);
	}
	if (fd >= 0 && stream_set_fd(s, fd) < 0)
		goto fail;
	if (fd >= 0) {
		s->state = s->ssl ? ST_HANDSHAKE : ST_OPEN;
		stream_update(s);
	}
	return s;
fail:
	s->ssl = NULL; /* the caller keeps it on failure */
	s->close_on_free = false;
	stream_free(s);
	return NULL;
}

static int
stream_set_fd(struct stream *s, int fd)
{
	s->rev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, s);
	s->wev = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_writable, s);
	if (s->rev == NULL || s->wev == NULL)
		return -ENOMEM;
	if (s->ssl && SSL_set_fd(s->ssl, fd) != 1)
		return -ENOMEM;
	s->fd = fd;
	return 0;
}

int
stream_connect(struct stream *s, const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (stream_set_fd(s, fd) < 0) {
		close(fd);
		return -ENOMEM;
	}
	s->state = ST_CONNECTING;
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS)
		s->pending_err = errno ? errno : ECONNREFUSED;
	stream_update(s);
	if (s->pending_err)
		event_active(s->wev, EV_WRITE, 0); /* reported from the loop */
	return 0;
}

void
stream_free(struct stream *s)
{
	if (s == NULL || s->freed)
		return;
	s->freed = true;
	if (s->rev)
		event_free(s->rev);
	if (s->wev)
		event_free(s->wev);
	if (s->flush)
		event_free(s->flush);
	if (s->rtimer)
		event_free(s->rtimer);
	if (s->wtimer)
		event_free(s->wtimer);
	if (s->later)
		event_free(s->later);
	if (s->in) {
		evbuffer_remove_cb(s->in, in_cb, s);
		evbuffer_free(s->in);
	}
	if (s->out) {
		evbuffer_remove_cb(s->out, out_cb, s);
		evbuffer_free(s->out); /* runs the wiping cleanups of lent heads */
	}
	if (s->close_on_free) {
		SSL_free(s->ssl); /* its socket BIO does not close fd */
		if (s->fd >= 0)
			close(s->fd);
	}
	if (s->refs == 0)
		free(s);
}

struct evbuffer *
stream_input(struct stream *s)
{
	return s->in;
}

struct evbuffer *
stream_output(struct stream *s)
{
	return s->out;
}

int
stream_fd(const struct stream *s)
{
	return s->fd;
}

unsigned long
stream_ssl_error(const struct stream *s)
{
	return s->ssl_err;
}

void
stream_setcb(struct stream *s, stream_data_cb readcb, stream_data_cb writecb,
	     stream_event_cb eventcb, void *arg)
{
	s->readcb = readcb;
	s->writecb = writecb;
	s->eventcb = eventcb;
	s->arg = arg;
}

void
stream_enable(struct stream *s, short what)
{
	short was = s->enabled;

	s->enabled |= what & (EV_READ | EV_WRITE);
	if (s->enabled == was)
		return;
	stream_update(s);
	if ((what & EV_READ) && !(was & EV_READ))
		kick_read(s); /* bytes may wait in OpenSSL's buffer */
	if (what & EV_WRITE)
		schedule_flush(s);
}

void
stream_disable(struct stream *s, short what)
{
	short was = s->enabled;

	s->enabled &= ~(what & (EV_READ | EV_WRITE));
	if (s->enabled != was)
		stream_update(s);
}

void
stream_setwatermark(struct stream *s, short what, size_t low, size_t high)
{
	if (what & EV_READ) {
		s->rd_low = low;
		s->rd_high = high;
		if (s->rd_watermarked && (high == 0 || evbuffer_get_length(s->in) < high)) {
			s->rd_watermarked = false;
			stream_update(s);
			kick_read(s);
		}
	}
	if (what & EV_WRITE)
		s->wr_low = low;
}

void
stream_set_timeouts(struct stream *s, const struct timeval *rd, const struct timeval *wr)
{
	s->has_rto = rd != NULL;
	s->has_wto = wr != NULL;
	if (rd)
		s->rto = *rd;
	if (wr)
		s->wto = *wr;
	/* restart both clocks with the new values */
	if (evtimer_pending(s->rtimer, NULL))
		evtimer_del(s->rtimer);
	if (evtimer_pending(s->wtimer, NULL))
		evtimer_del(s->wtimer);
	stream_update(s);
}

void
stream_set_max_read(struct stream *s, size_t n)
{
	s->max_read = n > 0 ? n : STREAM_READ_DEFAULT;
}
