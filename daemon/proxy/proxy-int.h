/*
 * Internal structures shared by the proxy's files:
 *   proxy.c    engine and listeners (accept, rules)
 *   ca.c       CA and per-host leaf certificates
 *   resolve.c  off-loop getaddrinfo, overrides, private-address check
 *   upstream.c upstream TCP/TLS connections and the idle pool
 *   conn.c     a client connection: proxy requests, auth, CONNECT, tunnel
 *   http.c     intercepted / routed HTTP exchanges: upstream, bodies
 *   request.c  the upstream request head: checks and injection
 *   outbuf.c   output buffers: record coalescing, the wiped request head
 *   stream.c   buffered plain/TLS sockets (stream.h)
 *   splice.c   zero-copy blind tunnels
 *   http1.c    the strict HTTP/1.1 parser
 */
#ifndef PROXY_INT_H
#define PROXY_INT_H

#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "http1.h"
#include "proxy.h"
#include "stream.h"

struct stream;
struct ploop;
struct evbuffer;
struct evconnlistener;
struct event;

#define PROXY_HOST_MAX 255
#define PROXY_BUF_HIGH (1024u * 1024u) /* pause the reader above this */
#define PROXY_READ_HIGH (256u * 1024u) /* per-stream input cap */
#define PROXY_IO_CHUNK (128u * 1024u)  /* bytes per read/write syscall */
#define PROXY_POOL_PER_KEY 8
#define PROXY_TICKET_SLOTS 64 /* upstream TLS sessions kept for resumption, per loop */
#define PROXY_LOOPS_MAX 8
#define PROXY_CONNECT_TIMEOUT_S 15 /* upstream TCP connect + TLS handshake */
#define PROXY_RENDER_MAX 8192
#define PROXY_COALESCE_MAX 16384 /* one TLS record: merge smaller writes */

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
int resolver_new(struct ploop *loop, struct resolver **out);
void resolver_free(struct resolver *r);
/* Starts a lookup; cb runs later on the loop (never from inside this call). */
struct resolve_req *resolve_start(struct ploop *loop, const char *host,
				  uint16_t port, bool allow_private,
				  resolve_cb cb, void *arg);
/* cb will not run after this. */
void resolve_cancel(struct resolve_req *req);
bool resolve_is_private(const struct sockaddr *sa);

/* ---- upstream.c ---- */
struct upstream {
	struct ploop *proxy; /* the loop it lives on */
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	bool tls;
	bool allow_private;
	SSL *ssl; /* owned by bev once bev exists */
	struct stream *bev;
	struct event *idle;
	TAILQ_ENTRY(upstream) entry;
};
TAILQ_HEAD(upstream_list, upstream);

struct upstream_req;
struct upstream_ticket;
/* err 0: up is ready and owned by the callee; else reason is set. */
typedef void (*upstream_cb)(void *arg, struct upstream *up, int err,
			    const char *reason);
/*
 * A pooled connection returns 1 and *up immediately (never when fresh);
 * otherwise 0 and cb runs later (*req set for cancel), or a negative errno.
 */
int upstream_get(struct ploop *loop, const char *host, uint16_t port, bool tls,
		 bool allow_private, bool fresh, upstream_cb cb, void *arg,
		 struct upstream **up, struct upstream_req **req);
void upstream_cancel(struct upstream_req *req);
/* Back to the pool when reusable, else closed. */
void upstream_release(struct upstream *up, bool reusable);
void upstream_free(struct upstream *up);
void upstream_pool_clear(struct ploop *loop);
/*
 * TLS session resumption for upstream handshakes: SSL_CTX new-session
 * callback (keeps a ticket per host, port and allow_private; a ticket is
 * used once, then replaced by the ones the resumed connection receives),
 * and the cleanup that frees them.
 */
int upstream_sessions_init(struct ploop *loop);
int upstream_session_new_cb(SSL *ssl, SSL_SESSION *sess);
void upstream_sessions_clear(struct ploop *loop);

/* ---- the engine (proxy.c) and its loops (loop.c) ---- */
struct conn;
TAILQ_HEAD(conn_list, conn);
struct audit_item;

/* What the root's thread tells a loop (loop.c). */
struct audit_sync;
struct loop_msg {
	struct loop_msg *next;
	enum { LOOP_ACCEPT, LOOP_DROP, LOOP_STOP, LOOP_AUDIT_SYNC } kind;
	struct proxy_listener *l;
	int fd;
	struct audit_sync *sync;
};

/*
 * A session's listener. Accepts on the root's base (the daemon loop) and
 * deals each connection to a loop; its connections live on those loops.
 * proxy_listener_free() stops accepting and tells every loop to close the
 * listener's connections; the last loop to do so frees it (drops).
 */
struct proxy_listener {
	struct proxy *proxy;
	struct evconnlistener *evl;
	struct event *resume; /* re-enable accept after EMFILE */
	struct rules rules;   /* read-only once added: shared by the loops */
	char *auth;           /* expected base64("nono:TOKEN") */
	size_t auth_len;
	atomic_uint drops;    /* loops yet to drop it */
	struct loop_msg *drop_msgs; /* one per loop, made up front */
	TAILQ_ENTRY(proxy_listener) entry;
};

/*
 * One event loop thread. Everything here belongs to that thread but the
 * inbox (posted to by the root's thread, under mu) and the shared,
 * read-only or self-locking ca, up_ctx and ov.
 */
struct ploop {
	struct proxy *root;
	unsigned idx;
	struct event_base *base;
	struct proxy_config cfg; /* the root's; audit goes through loop_audit */
	const struct proxy_override *ov;
	size_t n_ov;
	struct ca *ca;
	SSL_CTX *up_ctx;
	struct resolver *resolver;
	struct upstream_list pool;
	size_t pool_len;
	struct upstream_ticket *tickets; /* PROXY_TICKET_SLOTS, upstream.c */
	struct conn_list conns;          /* open connections */
	struct conn_list dead;           /* closed connections awaiting free */
	struct event *reaper;
	/* audit records batched for the root */
	struct audit_item *audit_head, **audit_tail;
	struct event *audit_timer;
	/* messages from the root's thread */
	pthread_mutex_t mu;
	struct loop_msg *in_head, **in_tail;
	int efd;
	struct event *in_ev;
	struct loop_msg *stop_msg;
	pthread_t th;
	bool running;
};

struct proxy {
	struct event_base *base; /* the caller's: listeners and audit delivery */
	struct proxy_config cfg;
	struct proxy_override *ov;
	size_t n_ov;
	char *upstream_ca_file;
	struct ca *ca;
	SSL_CTX *up_ctx;
	struct ploop **loops;
	unsigned n_loops, next_loop;
	TAILQ_HEAD(, proxy_listener) listeners;
	/* audit records from the loops, delivered to cfg.audit on base */
	pthread_mutex_t audit_mu;
	struct audit_item *audit_head, **audit_tail;
	int audit_efd;
	struct event *audit_ev;
};

/* loop.c */
int ploop_new(struct proxy *root, unsigned idx, struct ploop **out);
int ploop_start(struct ploop *loop);
/* Stop the thread (closing its connections) and free everything. */
void ploop_free(struct ploop *loop);
/* Hand an accepted fd to the loop (closed on failure). Root thread only. */
void ploop_post_accept(struct ploop *loop, struct proxy_listener *l, int fd);
/* Tell the loop to close l's connections (l->drops counts down). */
void ploop_post_drop(struct ploop *loop, struct proxy_listener *l);
/* Root side of audit delivery (proxy.c sets it up; loop.c feeds it). */
int proxy_audit_init(struct proxy *p);
void proxy_audit_deliver(struct proxy *p);
void proxy_audit_fini(struct proxy *p);
/* Free a listener whose loops have all dropped it. */
void proxy_listener_destroy(struct proxy_listener *l);

/* Free closed connections (from the loop, never inside their callbacks). */
void proxy_reap(struct ploop *loop);

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
struct splice_tunnel;

/* ---- splice.c ---- */
/* Relay front_fd <-> back_fd with splice(2); the conn keeps owning the fds. */
int splice_tunnel_start(struct conn *c, int front_fd, int back_fd,
			struct splice_tunnel **out);
/* Stop all events (safe inside its callbacks); free later from the loop. */
void splice_tunnel_stop(struct splice_tunnel *t);
void splice_tunnel_free(struct splice_tunnel *t);

struct conn {
	struct proxy_listener *l;
	struct ploop *proxy; /* the loop it lives on */
	TAILQ_ENTRY(conn) entry;
	enum conn_mode mode;
	int fd;   /* owned until a TLS front takes it, then -1 */
	SSL *ssl; /* borrowed from the TLS front */
	struct stream *front;
	struct stream *back; /* tunnel peer (owned when mode TUNNEL) */
	struct upstream *back_up; /* when the tunnel peer came from an upgrade */
	struct event *timer;
	struct splice_tunnel *splice; /* zero-copy tunnel, when used */
	struct resolve_req *rreq;
	bool dead; /* closed; freed later from the loop */
	bool lingering; /* CLOSING: half-closed, discarding input */
	bool intercept;
	bool served; /* at least one request done on this connection */
	bool head_timer;
	size_t scan; /* input bytes already searched for the end of a head */
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	struct exch *x;
	/* tunnel audit */
	uint64_t t_start, t_in, t_out;
};

void proxy_conn_accept(struct ploop *loop, struct proxy_listener *l, int fd);
void proxy_conn_close(struct conn *c);
/* Final response with an X-Nono-Denied/X-Nono-Error header, then close. */
void proxy_conn_fail(struct conn *c, int status, const char *hdr, const char *reason);
void proxy_conn_audit(struct conn *c, const char *method, const char *host,
		uint16_t port, const char *path, int status, uint64_t in,
		uint64_t out, const char *secret, const char *reason,
		uint64_t start_us);
void proxy_conn_arm_timer(struct conn *c, unsigned ms);
/* Stop reading, flush what is queued to both sides, then close. */
void proxy_conn_drain_close(struct conn *c);
/*
 * Whether input holds a complete head: 1 yes, 0 not yet, -1 over the limit.
 * Searches only bytes not searched before (c->scan), so a client dribbling
 * a head byte by byte costs linear, not quadratic, work.
 */
int proxy_conn_head_ready(struct conn *c, struct evbuffer *in);
/* Proxy-Authorization carries Basic base64("nono:TOKEN") (constant time). */
bool proxy_conn_auth_ok(struct conn *c, const struct http1_msg *m);
/* authority "host:port" / "[v6]:port": normalized host and port. */
int proxy_conn_parse_authority(const char *t, size_t n, char *host, size_t hostlen,
			 uint16_t *port, bool *is_ip);
/* Blind relay between c->front and c->back. */
void proxy_conn_tunnel_start(struct conn *c);

/* One HTTP exchange on a terminated connection (http.c, request.c). */
enum xstate {
	X_HEAD,    /* waiting for a request head */
	X_WAIT_UP, /* upstream being resolved / connected */
	X_ACTIVE,  /* bodies streaming */
};

struct exch {
	enum xstate state;
	struct http1_msg m;
	char method[24];
	char path[512]; /* audit: without the query */
	char host[PROXY_HOST_MAX + 1];
	uint16_t port;
	bool tls;
	char secret[64];
	uint64_t start;
	struct evbuffer *head;
	bool client_ka, upgrade;
	enum http1_body req_body;
	uint64_t req_left;
	struct http1_chunked req_ch;
	bool req_done;
	struct upstream *up;
	struct upstream_req *upreq;
	bool reused;            /* up came from the idle pool */
	struct evbuffer *replay; /* head copy for one retry on a stale pooled up */
	bool resp_head, resp_done, resp_ka;
	enum http1_body resp_body;
	uint64_t resp_left;
	struct http1_chunked resp_ch;
	int status;
	uint64_t bytes_in, bytes_out;
};

/* Build x->head for the request in c->x->m: 0, or an HTTP status to refuse
 * with (*reason set to static text). */
int http_prepare(struct conn *c, const char **reason);
bool http_hdr_is(const struct http1_header *h, const char *name);

/* ---- outbuf.c ---- */
/* Merge output below PROXY_COALESCE_MAX into one chain (one TLS record). */
void outbuf_coalesce(struct evbuffer *out);
/* Wipe every chain in place, then free. NULL is a no-op. */
void outbuf_wipe_free(struct evbuffer *b);
/* Make *headp one chain (copying and wiping if it must); on failure
 * *headp is wiped, NULL, and -ENOMEM returned. */
int outbuf_head_flatten(struct evbuffer **headp);
/* Lend the one-chain head to out by reference; wiped and freed when out is
 * done with it. Takes head in every case. */
int outbuf_head_lend(struct evbuffer *out, struct evbuffer *head);

/* http.c: start serving HTTP on c->front (after TLS or for routes). */
void http_start(struct conn *c);
/* Handle a route or absolute-form request whose head is in front's input. */
void http_on_read(struct conn *c);
void http_free(struct conn *c);
/* The client went away (why: static text): audit an exchange in flight. */
void http_on_client_gone(struct conn *c, const char *why);
/* Timer expired while waiting for a request head. */
void http_on_timeout(struct conn *c);

#endif
