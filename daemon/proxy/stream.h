/*
 * A buffered socket, plain or TLS, on the proxy's event loop: the part of
 * libevent's bufferevent API the proxy uses (input/output evbuffers, read,
 * write and event callbacks, enable/disable, watermarks, timeouts), with
 * its own I/O so an HTTP exchange costs fewer syscalls (stream.c says how).
 *
 * Contract, as for bufferevents: the read callback runs after bytes were
 * added to the input (at least the low read watermark); reading pauses
 * while the input holds the high watermark or more. The write callback runs
 * after a write left the output at or below the low write watermark. The
 * event callback gets STREAM_CONNECTED once connected (and the TLS
 * handshake done), or STREAM_EOF / STREAM_ERROR / STREAM_TIMEOUT with
 * STREAM_READING or STREAM_WRITING; errno holds the socket error for
 * STREAM_ERROR (0 when the peer closed during a handshake). Callbacks run
 * from the loop only, and may free any stream.
 *
 * Loop thread only.
 */
#ifndef PROXY_STREAM_H
#define PROXY_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct stream;

#define STREAM_READING 0x01
#define STREAM_WRITING 0x02
#define STREAM_EOF 0x10
#define STREAM_ERROR 0x20
#define STREAM_TIMEOUT 0x40
#define STREAM_CONNECTED 0x80

enum stream_tls {
	STREAM_PLAIN,
	STREAM_TLS_ACCEPT,  /* server side of a TLS handshake */
	STREAM_TLS_CONNECT, /* client side */
};

typedef void (*stream_data_cb)(struct stream *s, void *arg);
typedef void (*stream_event_cb)(struct stream *s, short what, void *arg);

/*
 * A stream on fd (or -1: stream_connect makes the socket). With TLS, ssl
 * is used for it (read-ahead on). close_on_free: stream_free closes fd and
 * frees ssl; on failure (NULL) both stay the caller's.
 */
struct stream *stream_new(struct event_base *base, int fd, SSL *ssl,
			  enum stream_tls tls, bool close_on_free);
/* Connect a stream made with fd -1; the outcome comes as an event. */
int stream_connect(struct stream *s, const struct sockaddr *sa, socklen_t len);
/* NULL is a no-op. Safe inside any callback. */
void stream_free(struct stream *s);

struct evbuffer *stream_input(struct stream *s);
struct evbuffer *stream_output(struct stream *s);
int stream_fd(const struct stream *s);
/* The first OpenSSL error of a failed handshake or read, or 0. */
unsigned long stream_ssl_error(const struct stream *s);

void stream_setcb(struct stream *s, stream_data_cb readcb, stream_data_cb writecb,
		  stream_event_cb eventcb, void *arg);
void stream_enable(struct stream *s, short what);  /* EV_READ | EV_WRITE */
void stream_disable(struct stream *s, short what);
void stream_setwatermark(struct stream *s, short what, size_t low, size_t high);
/* NULL: no timeout in that direction. */
void stream_set_timeouts(struct stream *s, const struct timeval *rd,
			 const struct timeval *wr);
/* Bytes per read call (bulk relays want more than the default 64 KiB). */
void stream_set_max_read(struct stream *s, size_t n);

#endif
