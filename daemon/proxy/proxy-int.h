/*
 * Internal structures shared by the proxy's files:
 *   proxy.c    engine and listeners (accept, rules)
 *   ca.c       CA and per-host leaf certificates
 *   resolve.c  off-loop getaddrinfo, overrides, private-address check
 *   upstream.c upstream TCP/TLS connections and the idle pool
 *   conn.c     a client connection: proxy requests, auth, CONNECT, tunnel
 *   http.c     intercepted / routed HTTP exchanges with injection
 *   http1.c    the strict HTTP/1.1 parser
 */
#ifndef PROXY_INT_H
#define PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "http1.h"
#include "proxy.h"

struct bufferevent;
struct evbuffer;
struct evconnlistener;
struct event;

#define PROXY_HOST_MAX 255
#define PROXY_BUF_HIGH (1024u * 1024u) /* pause the reader above this */
#define PROXY_READ_HIGH (256u * 1024u) /* per-bufferevent input cap */
#define PROXY_POOL_PER_KEY 8
#define PROXY_RENDER_MAX 8192

/* ---- rules (proxy.c) ---- */
struct rules {
	char *session_id;
	uid_t owner;
	struct proxy_allow *allow;
	size_t n_allow;
	struct proxy_inject *inject;
	size_t n_inject;
	struct proxy_route *routes;
	size_t n_routes;
	bool allow_private;
};

bool rules_allowed(const struct rules *r, const char *host, uint16_t port);
bool rules_has_inject(const struct rules *r, const char *host);
/* Route whose name is the first path segment of path, or NULL. */
const struct proxy_route *rules_route(const struct rules *r, const char *path,
				      size_t len, size_t *rest);

/* "${secret:NAME}" -> NAME into out (for audit); "" when none. */
void proxy_secret_name(const char *tmpl, char *out, size_t outlen);
uint64_t proxy_now_us(void);
/* Host syntax check + lowercase copy; -EINVAL when not a host name or IP. */
int proxy_host_norm(const char *in, size_t len, char *out, size_t outlen,
		    bool *is_ip);

/* ---- ca.c ---- */
struct ca;
int ca_new(const struct proxy_config *cfg, struct ca **out);
void ca_free(struct ca *ca);
const char *ca_pem(const struct ca *ca);
/* Server SSL for host (SNI must equal host, ALPN http/1.1). NULL on failure. */
SSL *ca_server_ssl(struct ca *ca, const char *host);
/* Why the last handshake of ssl failed (SNI mismatch), or NULL. */
const char *ca_ssl_reason(SSL *ssl);

/* ---- resolve.c ---- */
struct resolver;
struct resolve_req;
struct resolve_result {
	int err; /* 0, or negative errno */
	const char *reason; /* static text when err */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};
typedef void (*resolve_cb)(void *arg, const struct resolve_result *res);
int resolver_new(struct proxy *proxy, struct resolver **out);
void resolver_free(struct resolver *r);
/* Starts a lookup; cb runs later on the loop (never from inside this call). */
struct resolve_req *resolve_start(struct proxy *proxy, const char *host,
				  uint16_t port, bool allow_private,
				  resolve_cb cb, void *arg);
/* cb will not run after this. */
void resolve_cancel(struct resolve_req *req);
bool resolve_is_private(const struct sockaddr *sa);

/* ---- upstream.c ---- */
struct upstream {
	struct proxy *proxy;
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	bool tls;
	bool allow_private;
	int fd;
	SSL *ssl;
	struct bufferevent *bev;
	struct event *idle;
	TAILQ_ENTRY(upstream) entry;
};
TAILQ_HEAD(upstream_list, upstream);

struct upstream_req;
/* err 0: up is ready and owned by the callee; else reason is set. */
typedef void (*upstream_cb)(void *arg, struct upstream *up, int err,
			    const char *reason);
/*
 * A pooled connection returns 1 and *up immediately; otherwise 0 and cb runs
 * later (*req set for cancel), or a negative errno.
 */
int upstream_get(struct proxy *proxy, const char *host, uint16_t port, bool tls,
		 bool allow_private, upstream_cb cb, void *arg,
		 struct upstream **up, struct upstream_req **req);
void upstream_cancel(struct upstream_req *req);
/* Back to the pool when reusable, else closed. */
void upstream_release(struct upstream *up, bool reusable);
void upstream_free(struct upstream *up);
void upstream_pool_clear(struct proxy *proxy);

/* ---- the engine ---- */
struct conn;
TAILQ_HEAD(conn_list, conn);

struct proxy_listener {
	struct proxy *proxy;
	struct evconnlistener *evl;
	struct event *resume; /* re-enable accept after EMFILE */
	struct rules rules;
	char *auth; /* expected base64("nono:TOKEN") */
	size_t auth_len;
	struct conn_list conns;
	TAILQ_ENTRY(proxy_listener) entry;
};

struct proxy {
	struct event_base *base;
	struct proxy_config cfg;
	struct proxy_override *ov;
	size_t n_ov;
	char *upstream_ca_file;
	struct ca *ca;
	SSL_CTX *up_ctx;
	struct resolver *resolver;
	struct upstream_list pool;
	size_t pool_len;
	TAILQ_HEAD(, proxy_listener) listeners;
};

/* ---- conn.c / http.c ---- */
enum conn_mode {
	CONN_PROXY,   /* waiting for a proxy request / route request */
	CONN_WAIT,    /* resolving / connecting a tunnel */
	CONN_TLS,     /* client TLS handshake (interception) */
	CONN_HTTP,    /* HTTP exchanges (intercepted or routed) */
	CONN_TUNNEL,  /* blind relay */
	CONN_CLOSING, /* flushing a final response */
};

struct exch;

struct conn {
	struct proxy_listener *l;
	struct proxy *proxy;
	TAILQ_ENTRY(conn) entry;
	enum conn_mode mode;
	int fd;
	SSL *ssl;
	struct bufferevent *front;
	struct bufferevent *back; /* tunnel peer (owned when mode TUNNEL) */
	struct upstream *back_up; /* when the tunnel peer came from an upgrade */
	struct event *timer;
	struct resolve_req *rreq;
	bool intercept;
	bool served; /* at least one request done on this connection */
	bool head_timer;
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	struct exch *x;
	/* tunnel audit */
	uint64_t t_start, t_in, t_out;
};

void conn_accept(struct proxy_listener *l, int fd);
void conn_close(struct conn *c);
/* Final response with an X-Nono-Denied/X-Nono-Error header, then close. */
void conn_fail(struct conn *c, int status, const char *hdr, const char *reason);
void conn_audit(struct conn *c, const char *method, const char *host,
		uint16_t port, const char *path, int status, uint64_t in,
		uint64_t out, const char *secret, const char *reason,
		uint64_t start_us);
void conn_arm_timer(struct conn *c, unsigned ms);
/* Blind relay between c->front and c->back. */
void conn_tunnel_start(struct conn *c);

/* http.c: start serving HTTP on c->front (after TLS or for routes). */
void http_start(struct conn *c);
/* Handle a route or absolute-form request whose head is in front's input. */
void http_on_read(struct conn *c);
void http_free(struct conn *c);
/* Timer expired while waiting for a request head. */
void http_on_timeout(struct conn *c);

#endif
