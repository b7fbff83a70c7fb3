/*
 * Name resolution off the event loop: two worker threads run getaddrinfo
 * and hand results back through a pipe read on the loop. Resolve overrides
 * ("name:port" -> "addr:port") skip DNS. Either way, unless the session
 * allows it, a name with any loopback/private/link-local/unspecified/
 * multicast address is refused (every address is checked, so one private
 * record among public ones cannot slip through).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "proxy-int.h"

#define RESOLVER_THREADS 2

struct resolve_req {
	struct ploop *proxy;
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	bool allow_private;
	bool cancelled;
	resolve_cb cb;
	void *arg;
	struct resolve_result res;
	struct resolve_req *next;
};

struct resolver {
	pthread_t th[RESOLVER_THREADS];
	size_t n_th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct resolve_req *head, **tail;
	bool stop;
	int pipe[2];
	struct event *ev;
};

static bool
v4_private(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
	       (a & 0xffc00000u) == 0x64400000u || /* 100.64/10 */
	       (a & 0xffff0000u) == 0xa9fe0000u || /* 169.254/16 */
	       (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
	       (a & 0xffff0000u) == 0xc0a80000u || /* 192.168/16 */
	       (a & 0xffffff00u) == 0xc0000000u || /* 192.0.0/24 */
	       (a & 0xfffe0000u) == 0xc6120000u || /* 198.18/15 */
	       (a >> 28) >= 0xe;                   /* multicast, reserved */
}

bool
resolve_is_private(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;
		return v4_private(ntohl(s->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)sa;
		const uint8_t *b = s->sin6_addr.s6_addr;
		static const uint8_t zero[16];
		if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
			return true; /* :: and ::1 */
		if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||
		    b[0] == 0xff)
			return true; /* ULA, link-local, multicast */
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr) ||
		    IN6_IS_ADDR_V4COMPAT(&s->sin6_addr) ||
		    (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)) {
			uint32_t a;
			memcpy(&a, b + 12, 4);
			return v4_private(ntohl(a));
		}
		return false;
	}
	return true;
}

/* Resolve on the calling thread; fills req->res. */
static void
do_resolve(struct resolve_req *req, const char *host, const char *port,
	   bool numeric)
{
	struct addrinfo hints = {0}, *ai = NULL, *p;
	char h[PROXY_HOST_MAX + 1];
	size_t hl = strlen(host);

	if (host[0] == '[' && hl > 2) {
		memcpy(h, host + 1, hl - 2);
		h[hl - 2] = '\0';
		host = h;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL) {
		req->res.err = -EHOSTUNREACH;
		req->res.reason = "name does not resolve";
		return;
	}
	req->res.err = -EHOSTUNREACH;
	req->res.reason = "no usable address";
	for (p = ai; p; p = p->ai_next) {
		if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
			continue;
		if (!req->allow_private && resolve_is_private(p->ai_addr)) {
			req->res.err = -EACCES;
			req->res.reason = "destination resolves to a private, "
					  "loopback or link-local address";
			break;
		}
		if (req->res.addrlen == 0) {
			memcpy(&req->res.addr, p->ai_addr, p->ai_addrlen);
			req->res.addrlen = p->ai_addrlen;
			req->res.err = 0;
			req->res.reason = NULL;
		}
	}
	if (req->res.err)
		req->res.addrlen = 0;
	freeaddrinfo(ai);
}

static void *
worker(void *arg)
{
	struct resolver *r = arg;
	char port[8];

	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (!r->stop && r->head == NULL)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		struct resolve_req *req = r->head;
		r->head = req->next;
		if (r->head == NULL)
			r->tail = &r->head;
		pthread_mutex_unlock(&r->mu);
		snprintf(port, sizeof(port), "%u", req->port);
		do_resolve(req, req->host, port, false);
		ssize_t n;
		do
			n = write(r->pipe[1], &req, sizeof(req));
		while (n < 0 && errno == EINTR);
	}
}

static void
deliver(struct resolve_req *req)
{
	if (!req->cancelled)
		req->cb(req->arg, &req->res);
	free(req);
}

static void
pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_req *reqs[64];
	ssize_t n = read(fd, reqs, sizeof(reqs));

	for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(reqs[0]); i++)
		deliver(reqs[i]);
}

static void
once_cb(evutil_socket_t fd, short what, void *arg)
{
	deliver(arg);
}

int
resolver_new(struct ploop *proxy, struct resolver **out)
{
	struct resolver *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	r->tail = &r->head;
	r->pipe[0] = r->pipe[1] = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	/* pointer-sized writes to a pipe are atomic; the read end is non-blocking */
	if (pipe2(r->pipe, O_CLOEXEC) < 0 ||
	    fcntl(r->pipe[0], F_SETFL, O_NONBLOCK) < 0) {
		log_warn("%s: pipe", __func__);
		resolver_free(r);
		return -errno;
	}
	r->ev = event_new(proxy->base, r->pipe[0], EV_READ | EV_PERSIST, pipe_cb, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
		resolver_free(r);
		return -ENOMEM;
	}
	for (; r->n_th < RESOLVER_THREADS; r->n_th++) {
		int e = pthread_create(&r->th[r->n_th], NULL, worker, r);
		if (e) {
			errno = e;
			log_warn("%s: pthread_create", __func__);
			resolver_free(r);
			return -e;
		}
	}
	*out = r;
	return 0;
}

void
resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < r->n_th; i++)
		pthread_join(r->th[i], NULL);
	/* queued but unstarted requests, then finished ones in the pipe */
	while (r->head) {
		struct resolve_req *n = r->head->next;
		free(r->head);
		r->head = n;
	}
	if (r->pipe[0] >= 0) {
		struct resolve_req *req;
		while (read(r->pipe[0], &req, sizeof(req)) == sizeof(req))
			free(req);
	}
	if (r->ev)
		event_free(r->ev);
	if (r->pipe[0] >= 0)
		close(r->pipe[0]);
	if (r->pipe[1] >= 0)
		close(r->pipe[1]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/* The override for host:port, or NULL. */
static const char *
override_for(struct ploop *proxy, const char *host, uint16_t port)
{
	char key[PROXY_HOST_MAX + 8];

	snprintf(key, sizeof(key), "%s:%u", host, port);
	for (size_t i = 0; i < proxy->n_ov; i++)
		if (strcasecmp(proxy->ov[i].name_port, key) == 0)
			return proxy->ov[i].addr_port;
	return NULL;
}

struct resolve_req *
resolve_start(struct ploop *proxy, const char *host, uint16_t port,
	      bool allow_private, resolve_cb cb, void *arg)
{
	struct resolve_req *req = calloc(1, sizeof(*req));
	const char *ov;

	if (req == NULL)
		return NULL;
	req->proxy = proxy;
	snprintf(req->host, sizeof(req->host), "%s", host);
	req->port = port;
	req->allow_private = allow_private;
	req->cb = cb;
	req->arg = arg;
	ov = override_for(proxy, host, port);
	if (ov != NULL) {
		char a[PROXY_HOST_MAX + 1];
		const char *colon = strrchr(ov, ':');
		size_t al = colon ? (size_t)(colon - ov) : 0;
		if (colon == NULL || al == 0 || al >= sizeof(a)) {
			req->res.err = -EINVAL;
			req->res.reason = "invalid resolve override";
		} else {
			memcpy(a, ov, al);
			a[al] = '\0';
			do_resolve(req, a, colon + 1, true);
		}
		struct timeval tv = {0, 0};
		if (event_base_once(proxy->base, -1, EV_TIMEOUT, once_cb, req, &tv) < 0) {
			free(req);
			return NULL;
		}
		return req;
	}
	struct resolver *r = proxy->resolver;
	pthread_mutex_lock(&r->mu);
	*r->tail = req;
	r->tail = &req->next;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return req;
}

void
resolve_cancel(struct resolve_req *req)
{
	if (req)
		req->cancelled = true;
}
