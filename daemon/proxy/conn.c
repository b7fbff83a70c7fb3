/*
 * One client connection on a session listener: reads the proxy request,
 * checks the session token (407), handles CONNECT (allow list -> 403,
 * resolve with the private-address check, then a blind tunnel or TLS
 * interception with a leaf certificate), relays tunnels, sends final error
 * responses, and owns the single teardown path (proxy_conn_close).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "log.h"
#include "proxy-int.h"

static void front_read_cb(struct stream *bev, void *arg);
static void front_write_cb(struct stream *bev, void *arg);
static void front_event_cb(struct stream *bev, short what, void *arg);

void
proxy_conn_audit(struct conn *c, const char *method, const char *host, uint16_t port,
	   const char *path, int status, uint64_t in, uint64_t out,
	   const char *secret, const char *reason, uint64_t start_us)
{
	struct ploop *p = c->proxy;
	struct proxy_audit_record rec = {
		.session = c->l->rules.session_id,
		.method = method,
		.host = host,
		.port = port,
		.path = path ? path : "",
		.status = status,
		.bytes_in = in,
		.bytes_out = out,
		.secret = secret && *secret ? secret : NULL,
		.reason = reason,
		.latency_us = proxy_now_us() - start_us,
	};

	if (p->cfg.audit)
		p->cfg.audit(p->cfg.audit_ctx, &rec);
}

void
proxy_conn_arm_timer(struct conn *c, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(c->timer, &tv);
}

void
proxy_conn_close(struct conn *c)
{
	if (c->dead)
		return;
	log_debug("%s: close %s:%u mode %d", c->l->rules.session_id,
		  c->host[0] ? c->host : "-", c->port, (int)c->mode);
	if (c->mode == CONN_TUNNEL)
		proxy_conn_audit(c, "CONNECT", c->host, c->port, "", 200, c->t_in,
			   c->t_out, NULL, NULL, c->t_start);
	TAILQ_REMOVE(&c->proxy->conns, c, entry);
	splice_tunnel_stop(c->splice); /* freed by the reaper */
	http_free(c);
	resolve_cancel(c->rreq);
	if (c->timer)
		event_free(c->timer);
	if (c->front)
		stream_free(c->front);
	if (c->back_up)
		upstream_free(c->back_up);
	else if (c->back)
		stream_free(c->back);
	if (c->fd >= 0)
		close(c->fd);
	c->front = c->back = NULL;
	c->back_up = NULL;
	c->timer = NULL;
	c->rreq = NULL;
	c->fd = -1;
	c->dead = true;
	/* callers up the stack may still look at c->dead / c->x */
	TAILQ_INSERT_TAIL(&c->proxy->dead, c, entry);
	event_active(c->proxy->reaper, EV_TIMEOUT, 0);
}

/*
 * Once everything queued is written: half-close and linger briefly, reading
 * and discarding, so a client still sending (a refused oversize head) gets
 * our response instead of a reset.
 */
static void
closing_check(struct conn *c)
{
	if (c->lingering ||
	    evbuffer_get_length(stream_output(c->front)) != 0 ||
	    (c->back && evbuffer_get_length(stream_output(c->back)) != 0))
		return;
	if (c->back) {
		/* a tunnel ends both ways at once */
		proxy_conn_close(c);
		return;
	}
	c->lingering = true;
	shutdown(stream_fd(c->front), SHUT_WR);
	evbuffer_drain(stream_input(c->front),
		       evbuffer_get_length(stream_input(c->front)));
	stream_enable(c->front, EV_READ);
	proxy_conn_arm_timer(c, 2000);
}

void
proxy_conn_drain_close(struct conn *c)
{
	c->mode = CONN_CLOSING;
	stream_disable(c->front, EV_READ);
	stream_setwatermark(c->front, EV_WRITE, 0, 0);
	if (c->back) {
		stream_disable(c->back, EV_READ);
		stream_setwatermark(c->back, EV_WRITE, 0, 0);
	}
	proxy_conn_arm_timer(c, 5000); /* a client that never reads cannot pin us */
	closing_check(c);
}

static void
sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static const char *
status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 502: return "Bad Gateway";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

void
proxy_conn_fail(struct conn *c, int status, const char *hdr, const char *reason)
{
	char r[512];

	snprintf(r, sizeof(r), "%s", reason);
	sanitize(r);
	evbuffer_add_printf(stream_output(c->front),
			    "HTTP/1.1 %d %s\r\n"
			    "%s: %s\r\n"
			    "%s"
			    "Content-Type: text/plain\r\n"
			    "Content-Length: %zu\r\n"
			    "Connection: close\r\n\r\n%s\n",
			    status, status_text(status), hdr, r,
			    status == 407 ? "Proxy-Authenticate: Basic realm=\"nono\"\r\n" : "",
			    strlen(r) + 1, r);
	if (c->mode == CONN_TUNNEL)
		c->mode = CONN_PROXY; /* no tunnel audit record */
	proxy_conn_drain_close(c);
}

bool
proxy_conn_auth_ok(struct conn *c, const struct http1_msg *m)
{
	const struct proxy_listener *l = c->l;
	int idx = -1;

	for (size_t i = 0; i < m->n_hdr; i++) {
		if (m->hdr[i].name_len == 19 &&
		    strncasecmp(m->hdr[i].name, "proxy-authorization", 19) == 0) {
			if (idx >= 0)
				return false;
			idx = (int)i;
		}
	}
	if (idx < 0)
		return false;
	const char *v = m->hdr[idx].value;
	size_t n = m->hdr[idx].value_len;
	if (n < 6 || strncasecmp(v, "basic ", 6) != 0)
		return false;
	v += 6;
	n -= 6;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	return n == l->auth_len && CRYPTO_memcmp(v, l->auth, n) == 0;
}

static void
deny(struct conn *c, const char *reason)
{
	proxy_conn_audit(c, "CONNECT", c->host, c->port, "", 403, 0, 0, NULL, reason,
		   c->t_start);
	proxy_conn_fail(c, 403, "X-Nono-Denied", reason);
}

static void
tunnel_relay(struct conn *c, struct stream *src, struct stream *dst)
{
	struct evbuffer *in = stream_input(src);
	struct evbuffer *out = stream_output(dst);
	size_t n = evbuffer_get_length(in);

	if (src == c->front)
		c->t_in += n;
	else
		c->t_out += n;
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= PROXY_BUF_HIGH) {
		stream_disable(src, EV_READ);
		stream_setwatermark(dst, EV_WRITE, PROXY_BUF_HIGH / 2, 0);
	}
}

static void
back_read_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;

	if (c->mode == CONN_TUNNEL)
		tunnel_relay(c, c->back, c->front);
}

static void
back_write_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;

	if (c->mode == CONN_CLOSING) {
		closing_check(c);
		return;
	}
	/* drained below the mark: resume the side feeding us */
	stream_setwatermark(bev, EV_WRITE, 0, 0);
	stream_enable(c->front, EV_READ);
}

static void
back_event_cb(struct stream *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (c->mode == CONN_TUNNEL) {
		tunnel_relay(c, c->back, c->front);
		proxy_conn_drain_close(c);
	} else {
		proxy_conn_close(c);
	}
}

void
proxy_conn_tunnel_start(struct conn *c)
{
	c->mode = CONN_TUNNEL;
	evtimer_del(c->timer);
	/* libevent's default 16 KiB per syscall caps bulk relays */
	stream_set_max_read(c->front, PROXY_IO_CHUNK);
	stream_set_max_read(c->back, PROXY_IO_CHUNK);
	stream_setcb(c->back, back_read_cb, back_write_cb, back_event_cb, c);
	stream_setcb(c->front, front_read_cb, front_write_cb, front_event_cb, c);
	stream_set_timeouts(c->back, NULL, NULL);
	stream_setwatermark(c->back, EV_READ, 0, PROXY_READ_HIGH);
	stream_enable(c->back, EV_READ | EV_WRITE);
	stream_enable(c->front, EV_READ | EV_WRITE);
	if (evbuffer_get_length(stream_input(c->front)))
		tunnel_relay(c, c->front, c->back);
	if (evbuffer_get_length(stream_input(c->back)))
		tunnel_relay(c, c->back, c->front);
}

static void
tunnel_connect_cb(struct stream *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & STREAM_CONNECTED) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		int one = 1;
		setsockopt(stream_fd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		/* nothing pipelined: hand both sockets to the splice relay */
		if (evbuffer_get_length(stream_input(c->front)) == 0) {
			if (send(c->fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) !=
			    (ssize_t)sizeof(ok) - 1) {
				proxy_conn_close(c);
				return;
			}
			c->mode = CONN_TUNNEL;
			evtimer_del(c->timer);
			stream_disable(c->front, EV_READ | EV_WRITE);
			stream_disable(c->back, EV_READ | EV_WRITE);
			if (splice_tunnel_start(c, c->fd, stream_fd(c->back),
						&c->splice) == 0)
				return;
		} else {
			evbuffer_add(stream_output(c->front), ok, sizeof(ok) - 1);
		}
		proxy_conn_tunnel_start(c);
		return;
	}
	char r[PROXY_HOST_MAX + 160];
	snprintf(r, sizeof(r), "cannot connect to %s:%u: %s", c->host, c->port,
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	proxy_conn_audit(c, "CONNECT", c->host, c->port, "", 502, 0, 0, NULL, r,
		   c->t_start);
	stream_free(c->back);
	c->back = NULL;
	proxy_conn_fail(c, 502, "X-Nono-Error", r);
}

/*
 * Callbacks, the input cap, and a write timeout: a client that stops
 * reading (output pending, no progress for the idle timeout) is closed
 * instead of holding its socket and upstream connection forever.
 */
static void
front_start(struct conn *c)
{
	unsigned ms = c->proxy->cfg.idle_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	stream_setcb(c->front, front_read_cb, front_write_cb, front_event_cb, c);
	stream_setwatermark(c->front, EV_READ, 0, PROXY_READ_HIGH);
	stream_set_timeouts(c->front, NULL, &tv);
	stream_enable(c->front, EV_READ | EV_WRITE);
}

/* Switch the client socket to TLS with a leaf certificate for c->host. */
static void
intercept_start(struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	SSL *ssl;

	if (evbuffer_get_length(stream_input(c->front)) != 0) {
		proxy_conn_fail(c, 400, "X-Nono-Error", "data sent before the CONNECT reply");
		return;
	}
	ssl = ca_server_ssl(c->proxy->ca, c->host);
	if (ssl == NULL) {
		proxy_conn_fail(c, 502, "X-Nono-Error", "cannot issue a certificate");
		return;
	}
	/* the 200 goes out directly: the TLS stream takes the socket next */
	if (send(c->fd, ok, sizeof(ok) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(ok) - 1) {
		SSL_free(ssl);
		proxy_conn_close(c);
		return;
	}
	stream_free(c->front);
	/* from here the TLS stream owns the socket and the SSL */
	c->front = stream_new(c->proxy->base, c->fd, ssl, STREAM_TLS_ACCEPT, true);
	if (c->front == NULL) {
		SSL_free(ssl);
		proxy_conn_close(c);
		return;
	}
	c->fd = -1;
	c->ssl = ssl;
	front_start(c);
	c->mode = CONN_TLS;
	proxy_conn_arm_timer(c, c->proxy->cfg.header_timeout_ms);
}

static void
connect_resolved(void *arg, const struct resolve_result *res)
{
	struct conn *c = arg;

	c->rreq = NULL;
	if (res->err) {
		if (res->err == -EACCES) {
			deny(c, res->reason);
		} else {
			proxy_conn_audit(c, "CONNECT", c->host, c->port, "", 502, 0, 0,
				   NULL, res->reason, c->t_start);
			proxy_conn_fail(c, 502, "X-Nono-Error", res->reason);
		}
		return;
	}
	if (c->intercept) {
		intercept_start(c);
		return;
	}
	c->back = stream_new(c->proxy->base, -1, NULL, STREAM_PLAIN, true);
	if (c->back == NULL) {
		proxy_conn_fail(c, 502, "X-Nono-Error", "out of memory");
		return;
	}
	stream_setcb(c->back, NULL, NULL, tunnel_connect_cb, c);
	struct timeval tv = {PROXY_CONNECT_TIMEOUT_S, 0};
	stream_set_timeouts(c->back, NULL, &tv);
	if (stream_connect(c->back, (struct sockaddr *)&res->addr, res->addrlen) < 0) {
		stream_free(c->back);
		c->back = NULL;
		proxy_conn_fail(c, 502, "X-Nono-Error", "cannot create a socket");
	}
}

int
proxy_conn_parse_authority(const char *t, size_t n, char *host, size_t hostlen,
		     uint16_t *portp, bool *is_ip)
{
	const char *colon = NULL;
	unsigned long port = 0;

	for (size_t i = n; i > 0; i--)
		if (t[i - 1] == ':') {
			colon = t + i - 1;
			break;
		}
	if (colon == NULL || colon == t || (size_t)(t + n - colon) < 2 ||
	    (size_t)(t + n - colon) > 6)
		return -EINVAL;
	for (const char *p = colon + 1; p < t + n; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return -EINVAL;
	*portp = (uint16_t)port;
	return proxy_host_norm(t, (size_t)(colon - t), host, hostlen, is_ip);
}

static void
handle_connect(struct conn *c, const struct http1_msg *m)
{
	struct evbuffer *in = stream_input(c->front);
	bool is_ip = false;
	char r[PROXY_HOST_MAX + 96];

	if (!proxy_conn_auth_ok(c, m)) {
		proxy_conn_audit(c, "CONNECT", "", 0, "", 407, 0, 0, NULL,
			   "missing or wrong proxy credentials", c->t_start);
		proxy_conn_fail(c, 407, "X-Nono-Denied", "missing or wrong proxy credentials");
		return;
	}
	if (proxy_conn_parse_authority(m->target, m->target_len, c->host,
				 sizeof(c->host), &c->port, &is_ip) < 0 ||
	    m->body != HTTP1_BODY_NONE) {
		proxy_conn_fail(c, 400, "X-Nono-Error", "bad CONNECT target");
		return;
	}
	evbuffer_drain(in, m->head_len);
	if (!rules_allowed(&c->l->rules, c->host, c->port)) {
		snprintf(r, sizeof(r), "%s:%u is not in the allow list", c->host, c->port);
		deny(c, r);
		return;
	}
	c->intercept = rules_has_inject(&c->l->rules, c->host);
	if (c->intercept && is_ip) {
		deny(c, "IP-literal CONNECT to a host with injection rules");
		return;
	}
	c->mode = CONN_WAIT;
	evtimer_del(c->timer);
	stream_disable(c->front, EV_READ);
	c->rreq = resolve_start(c->proxy, c->host, c->port,
				c->l->rules.allow_private, connect_resolved, c);
	if (c->rreq == NULL)
		proxy_conn_fail(c, 502, "X-Nono-Error", "out of memory");
}

int
proxy_conn_head_ready(struct conn *c, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	struct evbuffer_ptr start, found;

	if (c->scan > len)
		c->scan = 0;
	if (evbuffer_ptr_set(in, &start, c->scan, EVBUFFER_PTR_SET) < 0)
		return 0;
	found = evbuffer_search(in, "\r\n\r\n", 4, &start);
	if (found.pos >= 0 && (size_t)found.pos + 4 <= HTTP1_MAX_HEAD)
		return 1;
	if (len >= HTTP1_MAX_HEAD)
		return -1;
	c->scan = len > 3 ? len - 3 : 0;
	return 0;
}

/* A request head on a fresh connection: CONNECT, or HTTP for http.c. */
static void
proxy_read(struct conn *c)
{
	struct evbuffer *in = stream_input(c->front);
	size_t len = evbuffer_get_length(in);
	size_t n = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
	struct http1_msg *m;
	const char *p;
	int r;

	if (n == 0)
		return;
	p = (const char *)evbuffer_pullup(in, (ssize_t)(n < 8 ? n : 8));
	if (p == NULL) {
		proxy_conn_close(c);
		return;
	}
	if (n < 8 || memcmp(p, "CONNECT ", 8) != 0) {
		if (n >= 8 || memcmp(p, "CONNECT ", n) != 0) {
			c->mode = CONN_HTTP;
			http_start(c);
		}
		return;
	}
	r = proxy_conn_head_ready(c, in);
	if (r == 0)
		return;
	if (r < 0) {
		proxy_conn_fail(c, 431, "X-Nono-Error", "request head too large");
		return;
	}
	c->scan = 0;
	p = (const char *)evbuffer_pullup(in, (ssize_t)n);
	if (p == NULL) {
		proxy_conn_close(c);
		return;
	}
	m = malloc(sizeof(*m));
	if (m == NULL) {
		proxy_conn_close(c);
		return;
	}
	r = http1_parse_request(p, n, m);
	if (r == 0) {
		free(m);
		return;
	}
	if (r < 0)
		proxy_conn_fail(c, r == HTTP1_E_TOOBIG ? 431 : r == HTTP1_E_VERSION ? 505 : 400,
			  "X-Nono-Error", "malformed request");
	else
		handle_connect(c, m);
	free(m);
}

static void
front_read_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;

	switch (c->mode) {
	case CONN_PROXY:
		proxy_read(c);
		break;
	case CONN_HTTP:
		http_on_read(c);
		break;
	case CONN_TUNNEL:
		tunnel_relay(c, c->front, c->back);
		break;
	case CONN_CLOSING:
		evbuffer_drain(stream_input(bev),
			       evbuffer_get_length(stream_input(bev)));
		break;
	default:
		break;
	}
}

static void
front_write_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;

	switch (c->mode) {
	case CONN_CLOSING:
		closing_check(c);
		break;
	case CONN_TUNNEL:
		stream_setwatermark(bev, EV_WRITE, 0, 0);
		stream_enable(c->back, EV_READ);
		break;
	case CONN_HTTP:
		http_on_read(c); /* resumes a paused upstream; parses nothing new */
		break;
	default:
		break;
	}
}

static void
front_event_cb(struct stream *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (c->mode == CONN_TLS) {
		if (what & STREAM_CONNECTED) {
			evtimer_del(c->timer);
			c->mode = CONN_HTTP;
			http_start(c);
			return;
		}
		const char *why = ca_ssl_reason(c->ssl);
		proxy_conn_audit(c, "CONNECT", c->host, c->port, "", 0, 0, 0, NULL,
			   why ? why : "client TLS handshake failed", c->t_start);
		proxy_conn_close(c);
		return;
	}
	if (c->mode == CONN_TUNNEL && c->back) {
		tunnel_relay(c, c->front, c->back);
		proxy_conn_drain_close(c);
		return;
	}
	if (c->mode == CONN_HTTP)
		http_on_client_gone(c, what & STREAM_TIMEOUT
					       ? "client stopped reading"
					       : "client closed the connection");
	proxy_conn_close(c);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	switch (c->mode) {
	case CONN_PROXY:
		proxy_conn_audit(c, "-", "", 0, "", 408, 0, 0, NULL,
			   "request header timeout", c->t_start);
		proxy_conn_fail(c, 408, "X-Nono-Error", "request header timeout");
		break;
	case CONN_HTTP:
		http_on_timeout(c);
		break;
	default:
		proxy_conn_close(c);
		break;
	}
}

void
proxy_conn_accept(struct ploop *loop, struct proxy_listener *l, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	c->l = l;
	c->proxy = loop;
	c->fd = fd;
	c->mode = CONN_PROXY;
	c->t_start = proxy_now_us();
	TAILQ_INSERT_TAIL(&loop->conns, c, entry);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	c->timer = evtimer_new(loop->base, timer_cb, c);
	c->front = stream_new(loop->base, fd, NULL, STREAM_PLAIN, false);
	if (c->timer == NULL || c->front == NULL) {
		proxy_conn_close(c);
		return;
	}
	front_start(c);
	proxy_conn_arm_timer(c, loop->cfg.header_timeout_ms);
}
