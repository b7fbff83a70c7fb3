/*
 * The injecting HTTPS proxy engine (DESIGN.md "The injecting proxy").
 *
 * One struct proxy per daemon holds the CA, the upstream TLS context and
 * its loop threads; one struct proxy_listener per session accepts on a
 * socket the daemon hands over, authenticates the session token and applies
 * that session's rules. Listeners accept on the caller's libevent loop and
 * deal connections to the loop threads, which do all the proxying (each
 * with its own connections, upstream pool and resolver).
 *
 * Secrets never pass through this module's memory except transiently: the
 * value of an injected header is asked from config->render at the moment a
 * request is forwarded, written into the upstream buffer, and the local copy
 * wiped. Nothing here logs or audits header values.
 *
 * The functions below must be called on the caller's loop thread.
 * config->audit is called there too (records are batched over from the
 * loops); config->render is called on the loop threads, concurrently, and
 * must be thread-safe. The process must ignore SIGPIPE (peers reset sockets
 * mid-write).
 */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct proxy;
struct proxy_listener;

/* One audited request (or refusal). All strings borrowed for the call. */
struct proxy_audit_record {
	const char *session; /* proxy_rules.session_id */
	const char *method;  /* "CONNECT" for tunnels and refusals of them */
	const char *host;
	uint16_t port;
	const char *path;   /* without the query; "" for CONNECT */
	int status;         /* sent to the client; 0 if the connection died */
	uint64_t bytes_in;  /* client -> upstream (bodies / tunnel bytes) */
	uint64_t bytes_out; /* upstream -> client */
	const char *secret; /* secret name injected ("${secret:NAME}"), or NULL */
	const char *reason; /* why refused / failed, or NULL */
	uint64_t latency_us;
};

/* "name:port" -> "addr:port", bypassing DNS (the private check still applies). */
struct proxy_override {
	const char *name_port;
	const char *addr_port;
};

struct proxy_config {
	/*
	 * CA persistence. load_ca returns 0 and two malloc'd PEM strings (the
	 * proxy frees them, wiping the key), -ENOENT when there is none yet
	 * (the proxy then generates an ECDSA P-256 CA and calls store_ca), or
	 * another negative errno (proxy_new fails). store_ca borrows its
	 * arguments. Both NULL: an in-memory CA for this process only.
	 */
	int (*load_ca)(void *ctx, char **cert_pem, char **key_pem);
	int (*store_ca)(void *ctx, const char *cert_pem, const char *key_pem);
	void *ca_ctx;

	const char *upstream_ca_file; /* extra trusted roots (PEM), optional */
	const struct proxy_override *overrides;
	size_t n_overrides;

	void (*audit)(void *ctx, const struct proxy_audit_record *rec);
	void *audit_ctx;

	/*
	 * Expand template ("Bearer ${secret:NAME}") for owner into out[outlen],
	 * setting *len. Returns 0, or a negative errno (the request then gets a
	 * 502 naming the secret, never its value).
	 */
	int (*render)(void *ctx, uid_t owner, const char *tmpl, char *out,
		      size_t outlen, size_t *len);
	void *render_ctx;

	unsigned header_timeout_ms; /* request head deadline; 0: 10 s */
	unsigned loops;             /* loop threads; 0: one per CPU, at most 8 */
	unsigned idle_timeout_ms;   /* keep-alive idle; 0: 60 s */
};

struct proxy_allow {
	const char *host; /* "api.example.com" or "*.example.com" (subdomains only) */
	uint16_t port;    /* 0: any port */
};

struct proxy_inject {
	const char *host; /* exact host name */
	const char *header;
	const char *value; /* template for render() */
};

struct proxy_route {
	const char *name;     /* http://LISTENER/<name>/... */
	const char *upstream; /* "https://host[:port][/base]" */
	const char *header;
	const char *value;   /* template for render() */
	const char *phantom; /* what the sandbox sends in header instead */
};

struct proxy_rules {
	const char *session_id;
	uid_t owner; /* passed to render() */
	const struct proxy_allow *allow;
	size_t n_allow;
	const struct proxy_inject *inject;
	size_t n_inject;
	const struct proxy_route *routes;
	size_t n_routes;
	bool allow_private; /* permit loopback/private/link-local destinations */
};

/*
 * Create the engine on base (borrowed; must outlive the proxy). config and
 * everything it points to are copied. NULL on failure (logged).
 */
struct proxy *proxy_new(struct event_base *base, const struct proxy_config *config);
/*
 * Closes every listener (their handles become invalid: do not call
 * proxy_listener_free on them afterwards) and connection. NULL is a no-op.
 */
void proxy_free(struct proxy *proxy);

/*
 * Deliver to config->audit, now, the records of every request the loops
 * finished before this call (they are otherwise batched for up to 10 ms).
 * Waits for each loop to answer, at most 200 ms in all.
 */
void proxy_audit_sync(struct proxy *proxy);

/* The CA certificate in PEM (borrowed, lives as long as proxy). */
const char *proxy_ca_pem(const struct proxy *proxy);

/*
 * Start accepting on listen_fd (a listening TCP socket; ownership moves to
 * the listener, which closes it). rules and token are copied. token is the
 * proxy password the client sends as Basic "nono:TOKEN". Returns 0 and
 * *out, or a negative errno (listen_fd is closed then too).
 */
int proxy_listener_add(struct proxy *proxy, int listen_fd,
		       const struct proxy_rules *rules, const char *token,
		       struct proxy_listener **out);
/*
 * Stop accepting now, and close this listener's connections (each loop
 * closes its own as soon as it gets to it; nothing of the listener's is
 * used after that). NULL is a no-op.
 */
void proxy_listener_free(struct proxy_listener *l);

#endif
