/*
 * HTTP exchanges on a connection the proxy terminates: requests inside an
 * intercepted CONNECT (TLS front), reverse routes (http://LISTENER/<route>/),
 * and absolute-form http:// proxy requests to hosts without secrets.
 *
 * Per request: strict head parse, the upstream head from request.c, an
 * upstream from the pool (one retry on a fresh connection if a pooled one
 * died unanswered) or a fresh verified TLS connection, and both bodies
 * streamed with their framing validated (Content-Length, chunked,
 * close-delimited, 101 websocket upgrade -> blind relay). Keep-alive on
 * both sides.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "log.h"
#include "proxy-int.h"

static void up_read_cb(struct stream *bev, void *arg);

void
http_free(struct conn *c)
{
	struct exch *x = c->x;

	if (x == NULL)
		return;
	upstream_cancel(x->upreq);
	upstream_free(x->up);
	outbuf_wipe_free(x->head);
	outbuf_wipe_free(x->replay);
	free(x);
	c->x = NULL;
}

static void
audit(struct conn *c, int status, const char *reason)
{
	struct exch *x = c->x;

	proxy_conn_audit(c, x->method[0] ? x->method : "-", x->host, x->port, x->path,
		   status, x->bytes_in, x->bytes_out, x->secret, reason, x->start);
}

/* Refuse the current request; the connection closes afterwards. */
static void
http_fail(struct conn *c, int status, const char *hdr, const char *reason)
{
	struct exch *x = c->x;

	audit(c, x->resp_head ? 0 : status, reason);
	upstream_cancel(x->upreq);
	x->upreq = NULL;
	upstream_free(x->up);
	x->up = NULL;
	if (x->resp_head)
		proxy_conn_close(c); /* mid-response: closing is the only signal left */
	else
		proxy_conn_fail(c, status, hdr, reason);
}

static void up_ready(void *arg, struct upstream *up, int err, const char *reason);

static void
on_request(struct conn *c, const char *buf)
{
	struct exch *x = c->x;
	struct http1_msg *m = &x->m;
	const char *reason = NULL;
	int st;

	evtimer_del(c->timer);
	x->start = proxy_now_us();
	if (m->method_len >= sizeof(x->method)) {
		http_fail(c, 400, "X-Nono-Error", "method too long");
		return;
	}
	memcpy(x->method, m->method, m->method_len);
	x->method[m->method_len] = '\0';
	if (strcmp(x->method, "CONNECT") == 0) {
		http_fail(c, 400, "X-Nono-Error", "CONNECT inside a tunnel");
		return;
	}
	st = http_prepare(c, &reason);
	if (st) {
		http_fail(c, st, st == 403 || st == 407 ? "X-Nono-Denied" : "X-Nono-Error",
			  reason);
		return;
	}
	x->client_ka = m->keep_alive && !x->upgrade;
	x->req_body = m->body;
	x->req_left = m->content_length;
	x->req_done = m->body == HTTP1_BODY_NONE;
	http1_chunked_init(&x->req_ch);
	evbuffer_drain(stream_input(c->front), m->head_len);
	/* keep reading: input is capped by the read watermark, and pipelined
	 * bytes wait in it until this exchange finishes */
	x->state = X_WAIT_UP;

	struct upstream *up = NULL;
	int r = upstream_get(c->proxy, x->host, x->port, x->tls,
			     c->l->rules.allow_private, false, up_ready, c, &up,
			     &x->upreq);
	if (r < 0) {
		http_fail(c, 502, "X-Nono-Error", "out of memory");
	} else if (r == 1) {
		x->reused = true;
		up_ready(c, up, 0, NULL);
	}
}

static void
finish(struct conn *c)
{
	struct exch *x = c->x;
	struct evbuffer *in = stream_input(c->front);

	audit(c, x->status, NULL);
	upstream_release(x->up, x->resp_ka && x->req_done);
	x->up = NULL;
	if (!x->client_ka || !x->req_done) {
		proxy_conn_drain_close(c);
		return;
	}
	c->served = true;
	c->head_timer = false;
	memset(x, 0, sizeof(*x));
	x->state = X_HEAD;
	proxy_conn_arm_timer(c, c->proxy->cfg.idle_timeout_ms);
	stream_enable(c->front, EV_READ);
	if (evbuffer_get_length(in))
		http_on_read(c);
}

static void
check_done(struct conn *c)
{
	struct exch *x = c->x;

	if (x->resp_done)
		finish(c); /* closes when the request body was not all read */
}

static int
pump(struct evbuffer *src, struct evbuffer *dst, enum http1_body kind,
     uint64_t *left, struct http1_chunked *ch, uint64_t *count)
{
	size_t len = evbuffer_get_length(src);

	if (kind == HTTP1_BODY_LENGTH) {
		size_t n = len < *left ? len : (size_t)*left;
		evbuffer_remove_buffer(src, dst, n);
		*left -= n;
		*count += n;
		return *left == 0;
	}
	if (kind == HTTP1_BODY_CLOSE) {
		evbuffer_add_buffer(dst, src);
		*count += len;
		return 0;
	}
	if (kind != HTTP1_BODY_CHUNKED)
		return 1;
	struct evbuffer_iovec v[16];
	size_t total = 0;
	int r = 0;
	int nv = evbuffer_peek(src, -1, NULL, v, 16);
	for (int i = 0; i < nv && i < 16 && r == 0; i++) {
		size_t used = 0;
		r = http1_chunked_feed(ch, v[i].iov_base, v[i].iov_len, &used);
		total += used;
	}
	evbuffer_remove_buffer(src, dst, total);
	*count += total;
	return r;
}

static void
pump_request(struct conn *c)
{
	struct exch *x = c->x;
	struct evbuffer *out;

	if (x->req_done || x->up == NULL)
		return;
	out = stream_output(x->up->bev);
	int r = pump(stream_input(c->front), out, x->req_body,
		     &x->req_left, &x->req_ch, &x->bytes_in);
	if (r < 0) {
		http_fail(c, 400, "X-Nono-Error", "malformed chunked request body");
		return;
	}
	if (r == 1)
		x->req_done = true;
	/* no outbuf_coalesce() here: a pullup would copy the lent head (and
	 * its secret) out of the chain that gets wiped */
	if (evbuffer_get_length(out) >= PROXY_BUF_HIGH)
		stream_disable(c->front, EV_READ);
}

static void
up_write_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;

	/* upstream output drained: take more request body */
	if (c->x && c->x->state == X_ACTIVE && !c->x->req_done) {
		stream_enable(c->front, EV_READ);
		pump_request(c);
	}
}

/* Forward the response head, rewriting Connection for the client. */
static void
forward_head(struct conn *c, const char *buf)
{
	struct exch *x = c->x;
	struct http1_msg *m = &x->m;
	struct evbuffer *out = stream_output(c->front);
	const char *eol = memchr(buf, '\r', m->head_len);

	evbuffer_add(out, buf, (size_t)(eol - buf) + 2);
	for (size_t i = 0; i < m->n_hdr; i++) {
		const struct http1_header *h = &m->hdr[i];
		if (http_hdr_is(h, "connection") || http_hdr_is(h, "keep-alive") ||
		    http_hdr_is(h, "proxy-connection"))
			continue;
		evbuffer_add(out, h->name, h->name_len);
		evbuffer_add(out, ": ", 2);
		evbuffer_add(out, h->value, h->value_len);
		evbuffer_add(out, "\r\n", 2);
	}
	if (!x->client_ka)
		evbuffer_add(out, "Connection: close\r\n", 19);
	evbuffer_add(out, "\r\n", 2);
}

static void
to_upgrade(struct conn *c)
{
	struct exch *x = c->x;
	struct upstream *up = x->up;

	audit(c, 101, NULL);
	x->up = NULL;
	http_free(c);
	c->back = up->bev;
	c->back_up = up;
	c->t_start = proxy_now_us();
	c->t_in = c->t_out = 0;
	proxy_conn_tunnel_start(c);
}

static void
up_read_cb(struct stream *bev, void *arg)
{
	struct conn *c = arg;
	struct exch *x = c->x;
	struct evbuffer *in = stream_input(bev);
	struct evbuffer *fout = stream_output(c->front);

	while (!x->resp_head) {
		size_t len = evbuffer_get_length(in);
		size_t n = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
		if (n == 0)
			return;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
		int r = http1_parse_response(p, n, x->method, strlen(x->method), &x->m);
		if (r == 0)
			return;
		if (r < 0) {
			http_fail(c, 502, "X-Nono-Error", "malformed response from upstream");
			return;
		}
		x->status = x->m.status;
		if (x->status == 101) {
			if (!x->upgrade) {
				http_fail(c, 502, "X-Nono-Error", "unexpected 101 from upstream");
				return;
			}
			evbuffer_remove_buffer(in, fout, x->m.head_len);
			to_upgrade(c);
			return;
		}
		if (x->status < 200) {
			evbuffer_remove_buffer(in, fout, x->m.head_len);
			continue;
		}
		x->resp_body = x->m.body;
		x->resp_left = x->m.content_length;
		x->resp_ka = x->m.keep_alive && x->m.body != HTTP1_BODY_CLOSE;
		if (x->m.body == HTTP1_BODY_CLOSE)
			x->client_ka = false;
		http1_chunked_init(&x->resp_ch);
		forward_head(c, p);
		evbuffer_drain(in, x->m.head_len);
		x->resp_head = true;
		outbuf_wipe_free(x->replay);
		x->replay = NULL;
		x->resp_done = x->resp_body == HTTP1_BODY_NONE;
	}
	if (!x->resp_done) {
		int r = pump(in, fout, x->resp_body, &x->resp_left, &x->resp_ch,
			     &x->bytes_out);
		if (r < 0) {
			http_fail(c, 502, "X-Nono-Error", "malformed chunked response");
			return;
		}
		x->resp_done = r == 1;
	}
	outbuf_coalesce(fout);
	if (x->resp_done) {
		if (evbuffer_get_length(in))
			x->resp_ka = false; /* upstream sent more than the body */
		check_done(c);
		return;
	}
	if (evbuffer_get_length(fout) >= PROXY_BUF_HIGH)
		stream_disable(bev, EV_READ);
}

/* The pooled upstream died before answering: resend the head on a new one. */
static void
retry_fresh(struct conn *c)
{
	struct exch *x = c->x;
	struct upstream *up = NULL;

	log_debug("%s: pooled upstream %s:%u closed unanswered; retrying",
		  c->l->rules.session_id, x->host, x->port);
	upstream_free(x->up);
	x->up = NULL;
	x->head = x->replay;
	x->replay = NULL;
	x->reused = false;
	x->state = X_WAIT_UP;
	int r = upstream_get(c->proxy, x->host, x->port, x->tls,
			     c->l->rules.allow_private, true, up_ready, c, &up,
			     &x->upreq);
	if (r < 0)
		http_fail(c, 502, "X-Nono-Error", "out of memory");
	else if (r == 1)
		up_ready(c, up, 0, NULL);
}

static void
up_event_cb(struct stream *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct exch *x = c->x;

	if (what & STREAM_EOF) {
		up_read_cb(bev, c);
		if (c->dead || c->x != x || x->state != X_ACTIVE || x->up == NULL ||
		    x->up->bev != bev)
			return; /* finished or failed inside */
		if (x->resp_head && x->resp_body == HTTP1_BODY_CLOSE) {
			x->resp_done = true;
			x->resp_ka = false;
			check_done(c);
			return;
		}
	}
	if (!x->resp_head && x->replay && !(what & STREAM_TIMEOUT) &&
	    evbuffer_get_length(stream_input(bev)) == 0) {
		retry_fresh(c);
		return;
	}
	if (!x->resp_head)
		http_fail(c, 502, "X-Nono-Error",
			  what & STREAM_TIMEOUT
				  ? "upstream timed out"
				  : "upstream closed the connection before responding");
	else
		http_fail(c, 0, "X-Nono-Error", "upstream closed mid-response");
}

static void
up_ready(void *arg, struct upstream *up, int err, const char *reason)
{
	struct conn *c = arg;
	struct exch *x = c->x;

	x->upreq = NULL;
	if (err) {
		http_fail(c, err == -EACCES ? 403 : 502,
			  err == -EACCES ? "X-Nono-Denied" : "X-Nono-Error", reason);
		return;
	}
	x->up = up;
	x->state = X_ACTIVE;
	struct timeval tv = {c->proxy->cfg.idle_timeout_ms / 1000,
			     (c->proxy->cfg.idle_timeout_ms % 1000) * 1000};
	stream_set_timeouts(up->bev, &tv, NULL);
	stream_setcb(up->bev, up_read_cb, up_write_cb, up_event_cb, c);
	stream_setwatermark(up->bev, EV_WRITE, 0, 0);
	if (outbuf_head_flatten(&x->head) < 0) {
		http_fail(c, 502, "X-Nono-Error", "out of memory");
		return;
	}
	if (x->reused && x->req_body == HTTP1_BODY_NONE) {
		/* a pooled connection may have been closed under us: keep the
		 * head to retry once on a fresh one (no body, so no replay risk
		 * beyond what any client retry of an idempotent request has) */
		x->replay = evbuffer_new();
		if (x->replay)
			evbuffer_add(x->replay, evbuffer_pullup(x->head, -1),
				     evbuffer_get_length(x->head));
	}
	struct evbuffer *head = x->head;
	x->head = NULL;
	if (outbuf_head_lend(stream_output(up->bev), head) < 0) {
		http_fail(c, 502, "X-Nono-Error", "out of memory");
		return;
	}
	stream_enable(up->bev, EV_READ | EV_WRITE);
	stream_enable(c->front, EV_READ);
	pump_request(c);
	/* pump_request may have failed the exchange (and freed up) */
	if (!c->dead && c->x == x && x->up == up &&
	    evbuffer_get_length(stream_input(up->bev)))
		up_read_cb(up->bev, c);
}

void
http_start(struct conn *c)
{
	c->x = calloc(1, sizeof(*c->x));
	if (c->x == NULL) {
		proxy_conn_close(c);
		return;
	}
	c->x->state = X_HEAD;
	c->head_timer = true;
	proxy_conn_arm_timer(c, c->proxy->cfg.header_timeout_ms);
	stream_enable(c->front, EV_READ | EV_WRITE);
	http_on_read(c);
}

void
http_on_read(struct conn *c)
{
	struct exch *x = c->x;
	struct evbuffer *in = stream_input(c->front);

	if (x == NULL)
		return;
	if (x->state == X_ACTIVE) {
		/* front drained: resume a paused upstream */
		if (x->up && !x->resp_done &&
		    evbuffer_get_length(stream_output(c->front)) < PROXY_BUF_HIGH)
			stream_enable(x->up->bev, EV_READ);
		pump_request(c);
		return;
	}
	if (x->state != X_HEAD)
		return;
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return;
	if (!c->head_timer) {
		c->head_timer = true;
		proxy_conn_arm_timer(c, c->proxy->cfg.header_timeout_ms);
	}
	int ready = proxy_conn_head_ready(c, in);
	if (ready == 0)
		return;
	size_t n = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
	const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
	int r = ready < 0 ? HTTP1_E_TOOBIG : http1_parse_request(p, n, &x->m);
	c->scan = 0;
	if (r == 0) {
		/* a terminator beyond what the parser accepts: treat as too big */
		r = HTTP1_E_TOOBIG;
	}
	if (r < 0) {
		int st = r == HTTP1_E_TOOBIG ? 431 : r == HTTP1_E_VERSION ? 505 : 400;
		http_fail(c, st, "X-Nono-Error",
			  r == HTTP1_E_FRAMING ? "ambiguous or unsupported message framing"
			  : r == HTTP1_E_TOOBIG ? "request head too large"
						: "malformed request");
		return;
	}
	on_request(c, p);
}

void
http_on_client_gone(struct conn *c, const char *why)
{
	if (c->x && c->x->state != X_HEAD)
		audit(c, 0, why);
}

void
http_on_timeout(struct conn *c)
{
	struct exch *x = c->x;

	if (x && x->state == X_HEAD) {
		if (c->served && evbuffer_get_length(stream_input(c->front)) == 0) {
			proxy_conn_close(c); /* idle keep-alive connection */
			return;
		}
		http_fail(c, 408, "X-Nono-Error", "request header timeout");
		return;
	}
	proxy_conn_close(c);
}
