/*
 * Strict HTTP/1.1 message-head parser and chunked-body validator for the
 * injecting proxy. Pure functions over byte arrays (no allocation, no I/O)
 * so they can be fuzzed alone.
 *
 * Strictness is the point: anything two HTTP implementations could read
 * differently (request smuggling) is an error, not a guess. Refused: bare CR
 * or bare LF, obs-fold, whitespace before ':', non-token method or header
 * names, control bytes in values, more than one Content-Length, a
 * Content-Length with a Transfer-Encoding, a Transfer-Encoding other than
 * exactly "chunked" on a request, more than one Host, heads over
 * HTTP1_MAX_HEAD bytes or with more than HTTP1_MAX_HEADERS fields.
 *
 * Parsed fields point into the caller's buffer (borrowed, valid while it is).
 */
#ifndef PROXY_HTTP1_H
#define PROXY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP1_MAX_HEAD (64u * 1024u)
#define HTTP1_MAX_HEADERS 100
#define HTTP1_MAX_CHUNK_LINE 4096u
#define HTTP1_MAX_TRAILERS (16u * 1024u)

/* Negative results (besides 0 = incomplete). */
#define HTTP1_E_SYNTAX (-1)  /* malformed: 400 / 502 */
#define HTTP1_E_TOOBIG (-2)  /* head or header count over the limit: 431 */
#define HTTP1_E_FRAMING (-3) /* ambiguous or unsupported body framing */
#define HTTP1_E_VERSION (-4) /* not HTTP/1.0 or HTTP/1.1: 505 */

enum http1_body {
	HTTP1_BODY_NONE = 0,
	HTTP1_BODY_LENGTH,
	HTTP1_BODY_CHUNKED,
	HTTP1_BODY_CLOSE, /* response only: until the upstream closes */
};

struct http1_header {
	const char *name;
	size_t name_len;
	const char *value; /* OWS trimmed */
	size_t value_len;
};

struct http1_msg {
	/* request line */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	/* status line */
	int status;
	int minor; /* HTTP/1.<minor> */

	struct http1_header hdr[HTTP1_MAX_HEADERS];
	size_t n_hdr;
	size_t head_len; /* bytes up to and including the empty line */

	enum http1_body body;
	uint64_t content_length;
	bool keep_alive;   /* after Connection and version defaults */
	bool upgrade;      /* Connection: upgrade present */
	int host_idx;      /* index of the Host header, -1 when none */
};

/*
 * Parse a request head at buf[0..len). Returns head_len (> 0) when complete,
 * 0 when more bytes are needed (and none seen so far is invalid), or an
 * HTTP1_E_* value.
 */
int http1_parse_request(const char *buf, size_t len, struct http1_msg *m);

/*
 * Parse a response head. req_method is the request's method (for HEAD) and
 * decides framing with the status (1xx/204/304 carry no body).
 */
int http1_parse_response(const char *buf, size_t len, const char *req_method,
			 size_t req_method_len, struct http1_msg *m);

/* Case-insensitive name lookup; the first match's index or -1. */
int http1_find(const struct http1_msg *m, const char *name);
/* Whether the comma-separated list value contains token (case-insensitive). */
bool http1_list_has(const char *value, size_t len, const char *token);

/* Incremental validator of a chunked body (chunks, extensions, trailers). */
struct http1_chunked {
	int state;
	uint64_t remaining;
	size_t line;     /* bytes in the current size/trailer line */
	size_t trailers; /* total trailer bytes */
	bool ext;        /* inside a chunk extension */
	bool saw_digit;
};

void http1_chunked_init(struct http1_chunked *c);
/*
 * Feed p[0..len). Sets *consumed to the bytes that belong to the body.
 * Returns 1 when the body ended (at p + *consumed), 0 when it needs more
 * (everything consumed), or HTTP1_E_SYNTAX.
 */
int http1_chunked_feed(struct http1_chunked *c, const char *p, size_t len,
		       size_t *consumed);

#endif
