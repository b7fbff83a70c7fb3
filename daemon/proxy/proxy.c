/*
 * The proxy engine: proxy_new/free, per-session listeners (accept, token),
 * and the rules (allow list, inject rules, routes) with their matching.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "log.h"
#include "proxy-int.h"

uint64_t
proxy_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
proxy_secret_name(const char *tmpl, char *out, size_t outlen)
{
	const char *p = tmpl ? strstr(tmpl, "${secret:") : NULL;
	size_t n = 0;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += 9;
	while (p[n] && p[n] != '}')
		n++;
	if (p[n] != '}' || n >= outlen)
		return;
	memcpy(out, p, n);
	out[n] = '\0';
}

int
proxy_host_norm(const char *in, size_t len, char *out, size_t outlen,
		bool *is_ip)
{
	bool digits_dots = true;

	if (len > 0 && in[len - 1] == '.')
		len--; /* "example.com." is "example.com" */
	if (len == 0 || len >= outlen || len > PROXY_HOST_MAX)
		return -EINVAL;
	if (in[0] == '[') {
		/* IPv6 literal: hex, ':' and '.' only */
		if (in[len - 1] != ']' || len < 4)
			return -EINVAL;
		for (size_t i = 1; i + 1 < len; i++) {
			char ch = in[i];
			if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
			      (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
				return -EINVAL;
		}
		for (size_t i = 0; i < len; i++)
			out[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
		out[len] = '\0';
		*is_ip = true;
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '.' || ch == '_'))
			return -EINVAL;
		if (ch == '.' && (i == 0 || in[i - 1] == '.'))
			return -EINVAL;
		if (!((ch >= '0' && ch <= '9') || ch == '.'))
			digits_dots = false;
		out[i] = ch;
	}
	out[len] = '\0';
	/* All digits and dots is an IPv4 literal (or a numeric trick): never a name. */
	*is_ip = digits_dots;
	return 0;
}

bool
rules_allowed(const struct rules *r, const char *host, uint16_t port)
{
	size_t hl = strlen(host);

	for (size_t i = 0; i < r->n_allow; i++) {
		const struct proxy_allow *a = &r->allow[i];
		if (a->port != 0 && a->port != port)
			continue;
		if (a->host[0] == '*' && a->host[1] == '.') {
			size_t sl = strlen(a->host + 1); /* ".suffix" */
			if (hl > sl && strcasecmp(host + hl - sl, a->host + 1) == 0)
				return true;
		} else if (strcasecmp(host, a->host) == 0) {
			return true;
		}
	}
	return false;
}

bool
rules_has_inject(const struct rules *r, const char *host)
{
	for (size_t i = 0; i < r->n_inject; i++)
		if (strcasecmp(host, r->inject[i].host) == 0)
			return true;
	return false;
}

const struct proxy_route *
rules_route(const struct rules *r, const char *path, size_t len, size_t *rest)
{
	if (len < 2 || path[0] != '/')
		return NULL;
	for (size_t i = 0; i < r->n_routes; i++) {
		size_t n = strlen(r->routes[i].name);
		if (len >= n + 1 && memcmp(path + 1, r->routes[i].name, n) == 0 &&
		    (len == n + 1 || path[n + 1] == '/' || path[n + 1] == '?')) {
			*rest = n + 1;
			return &r->routes[i];
		}
	}
	return NULL;
}

static char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
rules_clear(struct rules *r)
{
	free(r->session_id);
	for (size_t i = 0; i < r->n_allow; i++)
		free((char *)r->allow[i].host);
	for (size_t i = 0; i < r->n_inject; i++) {
		free((char *)r->inject[i].host);
		free((char *)r->inject[i].header);
		free((char *)r->inject[i].value);
	}
	for (size_t i = 0; i < r->n_routes; i++) {
		free((char *)r->routes[i].name);
		free((char *)r->routes[i].upstream);
		free((char *)r->routes[i].header);
		free((char *)r->routes[i].value);
		free((char *)r->routes[i].phantom);
	}
	free(r->allow);
	free(r->inject);
	free(r->routes);
	memset(r, 0, sizeof(*r));
}

static bool
valid_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static int
rules_copy(struct rules *r, const struct proxy_rules *in)
{
	memset(r, 0, sizeof(*r));
	r->owner = in->owner;
	r->allow_private = in->allow_private;
	r->session_id = strdup(in->session_id ? in->session_id : "");
	r->allow = calloc(in->n_allow + 1, sizeof(*r->allow));
	r->inject = calloc(in->n_inject + 1, sizeof(*r->inject));
	r->routes = calloc(in->n_routes + 1, sizeof(*r->routes));
	if (!r->session_id || !r->allow || !r->inject || !r->routes)
		goto nomem;
	for (size_t i = 0; i < in->n_allow; i++, r->n_allow++) {
		if (in->allow[i].host == NULL)
			goto inval;
		r->allow[i].port = in->allow[i].port;
		if (!(r->allow[i].host = strdup(in->allow[i].host)))
			goto nomem;
	}
	for (size_t i = 0; i < in->n_inject; i++, r->n_inject++) {
		const struct proxy_inject *j = &in->inject[i];
		if (!j->host || !valid_token(j->header) || !j->value)
			goto inval;
		r->inject[i].host = xstrdup(j->host);
		r->inject[i].header = xstrdup(j->header);
		r->inject[i].value = xstrdup(j->value);
		if (!r->inject[i].host || !r->inject[i].header || !r->inject[i].value)
			goto nomem;
	}
	for (size_t i = 0; i < in->n_routes; i++, r->n_routes++) {
		const struct proxy_route *j = &in->routes[i];
		if (!valid_token(j->name) || !j->upstream ||
		    strncmp(j->upstream, "https://", 8) != 0 ||
		    !valid_token(j->header) || !j->value || !j->phantom ||
		    !*j->phantom)
			goto inval;
		r->routes[i].name = xstrdup(j->name);
		r->routes[i].upstream = xstrdup(j->upstream);
		r->routes[i].header = xstrdup(j->header);
		r->routes[i].value = xstrdup(j->value);
		r->routes[i].phantom = xstrdup(j->phantom);
		if (!r->routes[i].name || !r->routes[i].upstream ||
		    !r->routes[i].header || !r->routes[i].value ||
		    !r->routes[i].phantom)
			goto nomem;
	}
	return 0;
inval:
	log_warnx("%s: invalid rule", __func__);
	rules_clear(r);
	return -EINVAL;
nomem:
	rules_clear(r);
	return -ENOMEM;
}

/* Connections are dealt to the loops in turn. */
static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		   struct sockaddr *sa, int salen, void *arg)
{
	struct proxy_listener *l = arg;
	struct proxy *p = l->proxy;

	ploop_post_accept(p->loops[p->next_loop++ % p->n_loops], l, fd);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_listener *l = arg;

	evconnlistener_enable(l->evl);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	/* EMFILE/ENFILE: pause briefly instead of spinning. */
	log_warnx("%s: accept: %s", __func__, evutil_socket_error_to_string(e));
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		evconnlistener_disable(evl);
		struct proxy_listener *l = arg;
		struct timeval tv = {1, 0};
		evtimer_add(l->resume, &tv);
	}
}

int
proxy_listener_add(struct proxy *proxy, int listen_fd,
		   const struct proxy_rules *rules, const char *token,
		   struct proxy_listener **out)
{
	struct proxy_listener *l;
	int r;

	if (token == NULL || strlen(token) < 16 || strlen(token) > 256) {
		log_warnx("%s: session token must be 16..256 bytes", __func__);
		close(listen_fd);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(listen_fd);
		return -ENOMEM;
	}
	l->proxy = proxy;
	l->drop_msgs = calloc(proxy->n_loops, sizeof(*l->drop_msgs));
	r = l->drop_msgs != NULL ? rules_copy(&l->rules, rules) : -ENOMEM;
	if (r < 0) {
		free(l->drop_msgs);
		free(l);
		close(listen_fd);
		return r;
	}
	size_t tl = strlen(token) + 5;
	char *plain = malloc(tl + 1);
	l->auth = malloc(4 * ((tl + 2) / 3) + 1);
	if (plain == NULL || l->auth == NULL) {
		free(plain);
		r = -ENOMEM;
		goto fail;
	}
	snprintf(plain, tl + 1, "nono:%s", token);
	l->auth_len = (size_t)EVP_EncodeBlock((unsigned char *)l->auth,
					      (unsigned char *)plain, (int)tl);
	OPENSSL_cleanse(plain, tl);
	free(plain);
	evutil_make_socket_nonblocking(listen_fd);
	l->evl = evconnlistener_new(proxy->base, listener_accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE, -1, listen_fd);
	if (l->evl == NULL) {
		log_warnx("%s: evconnlistener_new failed", __func__);
		close(listen_fd);
		r = -EIO;
		goto fail_noclose;
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	l->resume = evtimer_new(proxy->base, listener_resume, l);
	if (l->resume == NULL) {
		evconnlistener_free(l->evl);
		r = -ENOMEM;
		goto fail_noclose;
	}
	TAILQ_INSERT_TAIL(&proxy->listeners, l, entry);
	*out = l;
	return 0;
fail:
	close(listen_fd);
fail_noclose:
	proxy_listener_destroy(l); /* auth_len is 0 until auth is filled */
	return r;
}

/*
 * Stop accepting now; each loop closes the listener's connections when it
 * reads the drop message, and the last one frees the listener.
 */
void
proxy_listener_free(struct proxy_listener *l)
{
	struct proxy *p;

	if (l == NULL)
		return;
	p = l->proxy;
	evconnlistener_free(l->evl);
	event_free(l->resume);
	l->evl = NULL;
	l->resume = NULL;
	TAILQ_REMOVE(&p->listeners, l, entry);
	atomic_store(&l->drops, p->n_loops);
	for (unsigned i = 0; i < p->n_loops; i++)
		ploop_post_drop(p->loops[i], l);
}

void
proxy_listener_destroy(struct proxy_listener *l)
{
	if (l->auth != NULL)
		OPENSSL_cleanse(l->auth, l->auth_len);
	free(l->auth);
	rules_clear(&l->rules);
	free(l->drop_msgs);
	free(l);
}

static SSL_CTX *
upstream_ctx_new(const char *extra_ca)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* outbuf_coalesce() may move output a pending SSL_write will retry */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* resumption: sessions are kept per upstream by upstream.c, not by OpenSSL */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
						    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, upstream_session_new_cb);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
	    (extra_ca && SSL_CTX_load_verify_locations(ctx, extra_ca, NULL) != 1) ||
	    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
		log_warnx("%s: cannot load trust roots%s%s", __func__,
			  extra_ca ? " from " : "", extra_ca ? extra_ca : "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Loop threads when the config says 0: one per CPU, up to PROXY_LOOPS_MAX. */
static unsigned
default_loops(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > PROXY_LOOPS_MAX ? PROXY_LOOPS_MAX : (unsigned)n;
}

struct proxy *
proxy_new(struct event_base *base, const struct proxy_config *config)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->base = base;
	p->cfg = *config;
	p->audit_efd = -1;
	TAILQ_INIT(&p->listeners);
	if (p->cfg.header_timeout_ms == 0)
		p->cfg.header_timeout_ms = 10000;
	if (p->cfg.idle_timeout_ms == 0)
		p->cfg.idle_timeout_ms = 60000;
	if (p->cfg.loops == 0)
		p->cfg.loops = default_loops();
	else if (p->cfg.loops > PROXY_LOOPS_MAX)
		p->cfg.loops = PROXY_LOOPS_MAX;
	p->cfg.overrides = NULL;
	p->cfg.upstream_ca_file = NULL;
	if (config->upstream_ca_file &&
	    !(p->upstream_ca_file = strdup(config->upstream_ca_file)))
		goto fail;
	if (config->n_overrides) {
		p->ov = calloc(config->n_overrides, sizeof(*p->ov));
		if (p->ov == NULL)
			goto fail;
		for (size_t i = 0; i < config->n_overrides; i++, p->n_ov++) {
			p->ov[i].name_port = xstrdup(config->overrides[i].name_port);
			p->ov[i].addr_port = xstrdup(config->overrides[i].addr_port);
			if (!p->ov[i].name_port || !p->ov[i].addr_port) {
				p->n_ov++;
				goto fail;
			}
		}
	}
	if (ca_new(config, &p->ca) < 0)
		goto fail;
	p->up_ctx = upstream_ctx_new(p->upstream_ca_file);
	if (p->up_ctx == NULL || proxy_audit_init(p) < 0)
		goto fail;
	p->loops = calloc(p->cfg.loops, sizeof(*p->loops));
	if (p->loops == NULL)
		goto fail;
	for (; p->n_loops < p->cfg.loops; p->n_loops++)
		if (ploop_new(p, p->n_loops, &p->loops[p->n_loops]) < 0) {
			p->n_loops++; /* freed with the others */
			goto fail;
		}
	for (unsigned i = 0; i < p->n_loops; i++)
		if (ploop_start(p->loops[i]) < 0)
			goto fail;
	return p;
fail:
	log_warnx("%s: proxy setup failed", __func__);
	proxy_free(p);
	return NULL;
}

void
proxy_free(struct proxy *p)
{
	struct proxy_listener *l;

	if (p == NULL)
		return;
	/* the drop messages reach each loop before its stop message */
	while ((l = TAILQ_FIRST(&p->listeners)) != NULL)
		proxy_listener_free(l);
	for (unsigned i = 0; i < p->n_loops; i++)
		ploop_free(p->loops[i]);
	free(p->loops);
	proxy_audit_fini(p);
	SSL_CTX_free(p->up_ctx);
	ca_free(p->ca);
	for (size_t i = 0; i < p->n_ov; i++) {
		free((char *)p->ov[i].name_port);
		free((char *)p->ov[i].addr_port);
	}
	free(p->ov);
	free(p->upstream_ca_file);
	free(p);
}

const char *
proxy_ca_pem(const struct proxy *proxy)
{
	return ca_pem(proxy->ca);
}
