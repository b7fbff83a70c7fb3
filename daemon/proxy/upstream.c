/*
 * Upstream connections: resolve (resolve.c), connect, TLS with full chain
 * and hostname verification (SSL_set1_host against the system roots plus
 * the configured extra CA), and a small idle pool per (host, port, tls,
 * allow_private) so keep-alive requests skip the handshake, and TLS session
 * tickets per the same key so that a fresh connection resumes instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proxy-int.h"

#define POOL_IDLE_S 30

struct upstream_req {
	struct ploop *proxy;
	struct upstream *up;
	struct resolve_req *rreq;
	upstream_cb cb;
	void *arg;
	char reason[256];
};

void
upstream_free(struct upstream *up)
{
	if (up == NULL)
		return;
	if (up->idle) {
		TAILQ_REMOVE(&up->proxy->pool, up, entry);
		up->proxy->pool_len--;
		event_free(up->idle);
	}
	if (up->bev)
		stream_free(up->bev); /* closes the socket, frees the SSL */
	else if (up->ssl)
		SSL_free(up->ssl);
	free(up);
}

static void
req_finish(struct upstream_req *rq, int err, const char *reason)
{
	struct upstream *up = rq->up;
	upstream_cb cb = rq->cb;
	void *arg = rq->arg;
	char why[sizeof(rq->reason)];

	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	rq->up = NULL;
	if (err) {
		upstream_free(up);
		up = NULL;
	} else {
		stream_setcb(up->bev, NULL, NULL, NULL, NULL);
	}
	free(rq);
	cb(arg, up, err, err ? why : NULL);
}

static void
connect_event_cb(struct stream *bev, short what, void *arg)
{
	struct upstream_req *rq = arg;
	struct upstream *up = rq->up;

	if (what & STREAM_CONNECTED) {
		int one = 1;
		setsockopt(stream_fd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		req_finish(rq, 0, NULL);
		return;
	}
	long vr = up->ssl ? SSL_get_verify_result(up->ssl) : X509_V_OK;
	unsigned long e = stream_ssl_error(bev);
	if (up->ssl && vr != X509_V_OK) {
		snprintf(rq->reason, sizeof(rq->reason),
			 "upstream certificate verification failed: %s",
			 X509_verify_cert_error_string(vr));
	} else if (e) {
		char buf[160];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(rq->reason, sizeof(rq->reason),
			 "upstream TLS handshake failed: %s", buf);
	} else if (what & STREAM_TIMEOUT) {
		snprintf(rq->reason, sizeof(rq->reason), "upstream connect timed out");
	} else {
		int err = EVUTIL_SOCKET_ERROR();
		snprintf(rq->reason, sizeof(rq->reason), "upstream connect failed: %s",
			 (what & STREAM_EOF) || err == 0
				 ? "connection closed during handshake"
				 : evutil_socket_error_to_string(err));
	}
	req_finish(rq, -ECONNREFUSED, rq->reason);
}

/*
 * Upstream TLS sessions, for resumption. The key is what the pool keys on
 * (host, port, allow_private): a session is only ever offered to the host
 * whose certificate and name were verified when it was made, and a server
 * that cannot decrypt the ticket (another machine behind the name) simply
 * gets a full, fully verified handshake. TLS 1.3 tickets are single-use:
 * taking one empties its slot, and the resumed connection brings new ones.
 * Loop thread only.
 */
struct upstream_ticket {
	char key[PROXY_HOST_MAX + 16];
	SSL_SESSION *sess;
};

static size_t
ticket_key(const struct upstream *up, char *key, size_t len)
{
	unsigned h = 2166136261u;
	int n = snprintf(key, len, "%s:%u:%d", up->host, up->port, up->allow_private);

	for (int i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h % PROXY_TICKET_SLOTS;
}

int
upstream_sessions_init(struct ploop *p)
{
	p->tickets = calloc(PROXY_TICKET_SLOTS, sizeof(*p->tickets));
	return p->tickets ? 0 : -ENOMEM;
}

void
upstream_sessions_clear(struct ploop *p)
{
	if (p->tickets == NULL)
		return;
	for (size_t i = 0; i < PROXY_TICKET_SLOTS; i++)
		SSL_SESSION_free(p->tickets[i].sess);
	free(p->tickets);
	p->tickets = NULL;
}

int
upstream_session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct upstream *up = SSL_get_app_data(ssl);
	struct upstream_ticket *t;
	char key[sizeof(t->key)];

	/* only after a verified handshake: a failed one never gets here */
	if (up == NULL || up->proxy->tickets == NULL || !SSL_SESSION_is_resumable(sess) ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	/*
	 * A copy: sess stays the connection's own, and OpenSSL marks it not
	 * resumable when the connection is freed without a TLS shutdown (an
	 * upstream that answers and closes), which would spoil ours.
	 */
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (copy == NULL)
		return 0;
	t = &up->proxy->tickets[ticket_key(up, key, sizeof(key))];
	SSL_SESSION_free(t->sess);
	snprintf(t->key, sizeof(t->key), "%s", key);
	t->sess = copy;
	return 0; /* OpenSSL keeps its reference to sess */
}

/* Offer a kept session for up's destination (the slot gives it up). */
static void
ticket_use(struct upstream *up)
{
	struct upstream_ticket *t;
	char key[sizeof(t->key)];

	if (up->proxy->tickets == NULL)
		return;
	t = &up->proxy->tickets[ticket_key(up, key, sizeof(key))];
	if (t->sess == NULL || strcmp(t->key, key) != 0)
		return;
	SSL_set_session(up->ssl, t->sess); /* takes its own reference */
	SSL_SESSION_free(t->sess);
	t->sess = NULL;
}

static int
tls_setup(struct upstream *up)
{
	up->ssl = SSL_new(up->proxy->up_ctx);
	if (up->ssl == NULL)
		return -ENOMEM;
	SSL_set_app_data(up->ssl, up);
	bool ip = up->host[0] == '[' || strspn(up->host, "0123456789.") == strlen(up->host);
	if (ip) {
		char a[PROXY_HOST_MAX + 1];
		size_t l = strlen(up->host);
		if (up->host[0] == '[') {
			memcpy(a, up->host + 1, l - 2);
			a[l - 2] = '\0';
		} else {
			memcpy(a, up->host, l + 1);
		}
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(up->ssl), a) != 1)
			return -EINVAL;
	} else if (SSL_set1_host(up->ssl, up->host) != 1 ||
		   SSL_set_tlsext_host_name(up->ssl, up->host) != 1) {
		return -EINVAL;
	}
	ticket_use(up);
	return 0;
}

static void
resolved_cb(void *arg, const struct resolve_result *res)
{
	struct upstream_req *rq = arg;
	struct upstream *up = rq->up;
	struct ploop *p = rq->proxy;

	rq->rreq = NULL;
	if (res->err) {
		req_finish(rq, res->err, res->reason);
		return;
	}
	if (up->tls && tls_setup(up) < 0) {
		req_finish(rq, -EIO, "cannot set up upstream TLS");
		return;
	}
	/* the stream owns the socket it creates and the SSL */
	up->bev = stream_new(p->base, -1, up->ssl,
			     up->tls ? STREAM_TLS_CONNECT : STREAM_PLAIN, true);
	if (up->bev == NULL && up->ssl) {
		SSL_free(up->ssl);
		up->ssl = NULL;
	}
	if (up->bev == NULL) {
		req_finish(rq, -ENOMEM, "cannot set up upstream connection");
		return;
	}
	struct timeval tv = {PROXY_CONNECT_TIMEOUT_S, 0};
	stream_set_timeouts(up->bev, &tv, &tv);
	stream_setcb(up->bev, NULL, NULL, connect_event_cb, rq);
	stream_setwatermark(up->bev, EV_READ, 0, PROXY_READ_HIGH);
	/* the outcome comes to connect_event_cb, from the loop */
	if (stream_connect(up->bev, (struct sockaddr *)&res->addr, res->addrlen) < 0)
		req_finish(rq, -EIO, "cannot create a socket for the upstream");
}

static bool
pool_match(const struct upstream *u, const char *host, uint16_t port, bool tls,
	   bool allow_private)
{
	return u->port == port && u->tls == tls && u->allow_private == allow_private &&
	       strcmp(u->host, host) == 0;
}

int
upstream_get(struct ploop *p, const char *host, uint16_t port, bool tls,
	     bool allow_private, bool fresh, upstream_cb cb, void *arg, struct upstream **out,
	     struct upstream_req **reqp)
{
	struct upstream *u;

	TAILQ_FOREACH(u, &p->pool, entry) {
		if (fresh)
			break;
		if (!pool_match(u, host, port, tls, allow_private))
			continue;
		TAILQ_REMOVE(&p->pool, u, entry);
		p->pool_len--;
		event_free(u->idle);
		u->idle = NULL;
		stream_setcb(u->bev, NULL, NULL, NULL, NULL);
		*out = u;
		return 1;
	}
	struct upstream_req *rq = calloc(1, sizeof(*rq));
	u = calloc(1, sizeof(*u));
	if (rq == NULL || u == NULL) {
		free(rq);
		free(u);
		return -ENOMEM;
	}
	u->proxy = p;
	snprintf(u->host, sizeof(u->host), "%s", host);
	u->port = port;
	u->tls = tls;
	u->allow_private = allow_private;
	rq->proxy = p;
	rq->up = u;
	rq->cb = cb;
	rq->arg = arg;
	rq->rreq = resolve_start(p, host, port, allow_private, resolved_cb, rq);
	if (rq->rreq == NULL) {
		free(u);
		free(rq);
		return -ENOMEM;
	}
	*reqp = rq;
	return 0;
}

void
upstream_cancel(struct upstream_req *rq)
{
	if (rq == NULL)
		return;
	if (rq->rreq) {
		/* the resolver still holds rq as its arg: detach and free here */
		resolve_cancel(rq->rreq);
	}
	upstream_free(rq->up);
	free(rq);
}

static void
idle_event_cb(struct stream *bev, short what, void *arg)
{
	upstream_free(arg); /* closed or errored while idle */
}

static void
idle_read_cb(struct stream *bev, void *arg)
{
	upstream_free(arg); /* unsolicited bytes: not reusable */
}

static void
idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	upstream_free(arg);
}

void
upstream_release(struct upstream *up, bool reusable)
{
	struct ploop *p;

	if (up == NULL)
		return;
	p = up->proxy;
	if (!reusable || p->pool_len >= 64 ||
	    evbuffer_get_length(stream_input(up->bev)) != 0 ||
	    evbuffer_get_length(stream_output(up->bev)) != 0) {
		upstream_free(up);
		return;
	}
	size_t same = 0;
	struct upstream *u;
	TAILQ_FOREACH(u, &p->pool, entry)
		if (pool_match(u, up->host, up->port, up->tls, up->allow_private))
			same++;
	if (same >= PROXY_POOL_PER_KEY) {
		upstream_free(up);
		return;
	}
	up->idle = evtimer_new(p->base, idle_timeout_cb, up);
	if (up->idle == NULL) {
		upstream_free(up);
		return;
	}
	struct timeval tv = {POOL_IDLE_S, 0};
	evtimer_add(up->idle, &tv);
	stream_set_timeouts(up->bev, NULL, NULL);
	stream_setcb(up->bev, idle_read_cb, NULL, idle_event_cb, up);
	stream_enable(up->bev, EV_READ);
	TAILQ_INSERT_HEAD(&p->pool, up, entry);
	p->pool_len++;
}

void
upstream_pool_clear(struct ploop *p)
{
	struct upstream *u;

	while ((u = TAILQ_FIRST(&p->pool)) != NULL)
		upstream_free(u);
}
