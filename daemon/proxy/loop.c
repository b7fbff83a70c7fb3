/*
 * The proxy's loop threads. Each runs an event base of its own with its
 * own connections, upstream pool, TLS session tickets, resolver and
 * reaper, so two cores can proxy at once. The root (proxy.c, on the
 * caller's loop) accepts and deals connections out round-robin through
 * each loop's inbox: a locked list and an eventfd. Audit records go the
 * other way in batches, so the caller's audit callback still runs on the
 * caller's loop. What the loops share is read-only (rules, overrides, the
 * upstream SSL_CTX) or locks itself (the CA's leaf cache); the render
 * callback is called from the loops and must be thread-safe (proxy.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#include "deadline.h"
#include "log.h"
#include "proxy-int.h"
#include "thread.h"

#define AUDIT_BATCH_MS 10 /* a loop hands its audit records over this often */
#define AUDIT_SYNC_MS 200 /* proxy_audit_sync waits at most this long */

/* proxy_audit_sync's rendezvous: freed by whichever side lets go last. */
struct audit_sync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned pending; /* loops yet to hand over */
	unsigned refs;
	struct loop_msg msgs[];
};

/* One audit record and copies of its strings, on its way to the root. */
struct audit_item {
	struct audit_item *next;
	struct proxy_audit_record rec;
	char strs[];
};

static void
efd_signal(int efd)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
}

static void
efd_drain(int efd)
{
	uint64_t v;

	if (read(efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("%s: read eventfd", __func__);
}

/* ---- audit: loop side ---- */

static void
audit_hand_over(struct ploop *loop)
{
	struct proxy *root = loop->root;
	bool was_empty;

	if (loop->audit_head == NULL)
		return;
	pthread_mutex_lock(&root->audit_mu);
	was_empty = root->audit_head == NULL;
	*root->audit_tail = loop->audit_head;
	root->audit_tail = loop->audit_tail;
	pthread_mutex_unlock(&root->audit_mu);
	loop->audit_head = NULL;
	loop->audit_tail = &loop->audit_head;
	if (was_empty)
		efd_signal(root->audit_efd);
}

static void
audit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	audit_hand_over(arg);
}

/* The loops' cfg.audit: copy the record (its strings are borrowed) and batch it. */
static void
loop_audit(void *ctx, const struct proxy_audit_record *r)
{
	struct ploop *loop = ctx;
	const char *src[] = {r->session, r->method, r->host, r->path, r->secret, r->reason};
	size_t len[6], total = 0;
	struct audit_item *it;
	char *p;

	for (size_t i = 0; i < 6; i++) {
		len[i] = src[i] != NULL ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	it = malloc(sizeof(*it) + total);
	if (it == NULL) {
		log_warnx("%s: out of memory: audit record of %s dropped", __func__,
			  r->session != NULL ? r->session : "-");
		return;
	}
	it->next = NULL;
	it->rec = *r;
	p = it->strs;
	const char **dst[] = {&it->rec.session, &it->rec.method, &it->rec.host,
			      &it->rec.path, &it->rec.secret, &it->rec.reason};
	for (size_t i = 0; i < 6; i++) {
		if (src[i] == NULL)
			continue;
		memcpy(p, src[i], len[i]);
		*dst[i] = p;
		p += len[i];
	}
	if (loop->audit_head == NULL) {
		struct timeval tv = {0, AUDIT_BATCH_MS * 1000};

		evtimer_add(loop->audit_timer, &tv);
	}
	*loop->audit_tail = it;
	loop->audit_tail = &it->next;
}

/* ---- audit: root side ---- */

void
proxy_audit_deliver(struct proxy *p)
{
	struct audit_item *it, *next;

	pthread_mutex_lock(&p->audit_mu);
	it = p->audit_head;
	p->audit_head = NULL;
	p->audit_tail = &p->audit_head;
	pthread_mutex_unlock(&p->audit_mu);
	for (; it != NULL; it = next) {
		next = it->next;
		if (p->cfg.audit != NULL)
			p->cfg.audit(p->cfg.audit_ctx, &it->rec);
		free(it);
	}
}

static void
root_audit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	efd_drain(p->audit_efd);
	proxy_audit_deliver(p);
}

int
proxy_audit_init(struct proxy *p)
{
	pthread_mutex_init(&p->audit_mu, NULL);
	p->audit_tail = &p->audit_head;
	p->audit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->audit_efd < 0)
		return -errno;
	p->audit_ev = event_new(p->base, p->audit_efd, EV_READ | EV_PERSIST, root_audit_cb, p);
	if (p->audit_ev == NULL || event_add(p->audit_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void
proxy_audit_fini(struct proxy *p)
{
	if (p->audit_tail == NULL)
		return; /* never initialized */
	proxy_audit_deliver(p);
	if (p->audit_ev != NULL)
		event_free(p->audit_ev);
	if (p->audit_efd >= 0)
		close(p->audit_efd);
	pthread_mutex_destroy(&p->audit_mu);
}

/* ---- the inbox ---- */

static void
sync_release(struct audit_sync *s, bool handed_over)
{
	bool last;

	pthread_mutex_lock(&s->mu);
	if (handed_over && --s->pending == 0)
		pthread_cond_signal(&s->cv);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		free(s);
	}
}

static void
post(struct ploop *loop, struct loop_msg *m)
{
	bool was_empty;

	m->next = NULL;
	pthread_mutex_lock(&loop->mu);
	was_empty = loop->in_head == NULL;
	*loop->in_tail = m;
	loop->in_tail = &m->next;
	pthread_mutex_unlock(&loop->mu);
	if (was_empty)
		efd_signal(loop->efd);
}

void
ploop_post_accept(struct ploop *loop, struct proxy_listener *l, int fd)
{
	struct loop_msg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		log_warnx("%s: out of memory: connection to %s refused", __func__,
			  l->rules.session_id);
		close(fd);
		return;
	}
	m->kind = LOOP_ACCEPT;
	m->l = l;
	m->fd = fd;
	post(loop, m);
}

void
ploop_post_drop(struct ploop *loop, struct proxy_listener *l)
{
	struct loop_msg *m = &l->drop_msgs[loop->idx];

	m->kind = LOOP_DROP;
	m->l = l;
	post(loop, m);
}

void
proxy_audit_sync(struct proxy *p)
{
	struct audit_sync *s = calloc(1, sizeof(*s) + p->n_loops * sizeof(s->msgs[0]));
	pthread_condattr_t ca;
	struct timespec until;

	if (s == NULL) {
		proxy_audit_deliver(p);
		return;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->pending = p->n_loops;
	s->refs = p->n_loops + 1;
	for (unsigned i = 0; i < p->n_loops; i++) {
		s->msgs[i].kind = LOOP_AUDIT_SYNC;
		s->msgs[i].sync = s;
		post(p->loops[i], &s->msgs[i]);
	}
	until = deadline_after(CLOCK_MONOTONIC, AUDIT_SYNC_MS);
	pthread_mutex_lock(&s->mu);
	while (s->pending > 0)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s->mu);
	sync_release(s, false);
	proxy_audit_deliver(p);
}

/* Close the connections of l (all of them when l is NULL). */
static void
close_conns(struct ploop *loop, const struct proxy_listener *l)
{
	struct conn *c, *next;

	for (c = TAILQ_FIRST(&loop->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (l == NULL || c->l == l)
			proxy_conn_close(c);
	}
}

/*
 * One message. A drop message lives in its listener, which the last loop
 * to drop it frees; live is false once the loop has stopped (ploop_free
 * empties the inbox), when accepted fds are only closed.
 */
static void
handle(struct ploop *loop, struct loop_msg *m, bool live)
{
	switch (m->kind) {
	case LOOP_ACCEPT:
		if (live)
			proxy_conn_accept(loop, m->l, m->fd);
		else
			close(m->fd);
		free(m);
		break;
	case LOOP_DROP:
		close_conns(loop, m->l);
		if (atomic_fetch_sub(&m->l->drops, 1) == 1)
			proxy_listener_destroy(m->l);
		break;
	case LOOP_STOP:
		close_conns(loop, NULL);
		event_base_loopbreak(loop->base);
		break;
	case LOOP_AUDIT_SYNC:
		audit_hand_over(loop);
		sync_release(m->sync, true);
		break;
	}
}

static void
take_inbox(struct ploop *loop, bool live)
{
	struct loop_msg *m, *next;

	pthread_mutex_lock(&loop->mu);
	m = loop->in_head;
	loop->in_head = NULL;
	loop->in_tail = &loop->in_head;
	pthread_mutex_unlock(&loop->mu);
	for (; m != NULL; m = next) {
		next = m->next;
		handle(loop, m, live);
	}
}

static void
inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ploop *loop = arg;

	efd_drain(loop->efd);
	take_inbox(loop, true);
}

/* ---- the loop ---- */

void
proxy_reap(struct ploop *loop)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&loop->dead)) != NULL) {
		TAILQ_REMOVE(&loop->dead, c, entry);
		splice_tunnel_free(c->splice);
		free(c);
	}
}

static void
reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	proxy_reap(arg);
}

int
ploop_new(struct proxy *root, unsigned idx, struct ploop **out)
{
	struct ploop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return -ENOMEM;
	loop->root = root;
	loop->idx = idx;
	loop->efd = -1;
	loop->cfg = root->cfg;
	if (root->cfg.audit != NULL) {
		loop->cfg.audit = loop_audit;
		loop->cfg.audit_ctx = loop;
	}
	loop->ov = root->ov;
	loop->n_ov = root->n_ov;
	loop->ca = root->ca;
	loop->up_ctx = root->up_ctx;
	TAILQ_INIT(&loop->pool);
	TAILQ_INIT(&loop->conns);
	TAILQ_INIT(&loop->dead);
	loop->audit_tail = &loop->audit_head;
	loop->in_tail = &loop->in_head;
	pthread_mutex_init(&loop->mu, NULL);
	*out = loop;
	loop->base = event_base_new();
	loop->stop_msg = calloc(1, sizeof(*loop->stop_msg));
	if (loop->base == NULL || loop->stop_msg == NULL)
		return -ENOMEM;
	loop->stop_msg->kind = LOOP_STOP;
	loop->reaper = evtimer_new(loop->base, reaper_cb, loop);
	loop->audit_timer = evtimer_new(loop->base, audit_timer_cb, loop);
	loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->efd < 0)
		return -errno;
	loop->in_ev = event_new(loop->base, loop->efd, EV_READ | EV_PERSIST, inbox_cb, loop);
	if (loop->reaper == NULL || loop->audit_timer == NULL || loop->in_ev == NULL ||
	    event_add(loop->in_ev, NULL) < 0)
		return -ENOMEM;
	if (upstream_sessions_init(loop) < 0)
		return -ENOMEM;
	return resolver_new(loop, &loop->resolver);
}

static void *
loop_main(void *arg)
{
	struct ploop *loop = arg;

	event_base_dispatch(loop->base); /* until a stop message */
	return NULL;
}

int
ploop_start(struct ploop *loop)
{
	int e = thread_start(&loop->th, false, loop_main, loop);

	if (e < 0) {
		log_warnx("%s: pthread_create: %s", __func__, strerror(-e));
		return e;
	}
	loop->running = true;
	return 0;
}

void
ploop_free(struct ploop *loop)
{
	if (loop == NULL)
		return;
	if (loop->running) {
		post(loop, loop->stop_msg);
		pthread_join(loop->th, NULL);
	}
	/* the thread is gone (or never ran): finish what it left */
	take_inbox(loop, false);
	close_conns(loop, NULL);
	proxy_reap(loop);
	upstream_pool_clear(loop);
	upstream_sessions_clear(loop);
	resolver_free(loop->resolver);
	if (loop->root->audit_tail != NULL)
		audit_hand_over(loop);
	if (loop->in_ev)
		event_free(loop->in_ev);
	if (loop->reaper)
		event_free(loop->reaper);
	if (loop->audit_timer)
		event_free(loop->audit_timer);
	if (loop->base)
		event_base_free(loop->base);
	if (loop->efd >= 0)
		close(loop->efd);
	pthread_mutex_destroy(&loop->mu);
	free(loop->stop_msg);
	free(loop);
}
