/*
 * stdio mode "pipe": the daemon reads the worker's stdout and stderr and
 * keeps the last SESSION_OUTPUT_MAX bytes of each (older bytes are dropped
 * and counted), for session.output.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "daemon.h"
#include "log.h"
#include "session.h"

#define SESSION_OUTPUT_MAX (1024 * 1024)

struct output_stream {
	int fd;
	struct event *ev;
	struct evbuffer *buf;
	uint64_t dropped;
};

struct session_output {
	struct output_stream out, err;
};

static void stream_close(struct output_stream *st)
{
	if (st->ev != NULL)
		event_free(st->ev);
	st->ev = NULL;
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
}

/* One read: 1 bytes kept, 0 end of stream (closed), -1 nothing there now. */
static int stream_read(struct output_stream *st)
{
	char chunk[16384];
	ssize_t n = read(st->fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n <= 0) {
		stream_close(st);
		return 0;
	}
	evbuffer_add(st->buf, chunk, (size_t)n);
	if (evbuffer_get_length(st->buf) > SESSION_OUTPUT_MAX) {
		size_t extra = evbuffer_get_length(st->buf) - SESSION_OUTPUT_MAX;

		evbuffer_drain(st->buf, extra);
		st->dropped += extra;
	}
	return 1;
}

static void output_on_read(evutil_socket_t fd, short what, void *arg)
{
	stream_read(arg);
}

static void stream_drain(struct output_stream *st)
{
	while (st->fd >= 0 && stream_read(st) > 0)
		;
}

void session_output_drain(struct session_output *o)
{
	if (o == NULL)
		return;
	stream_drain(&o->out);
	stream_drain(&o->err);
}

static int stream_open(struct output_stream *st, int fd)
{
	st->fd = fd;
	st->buf = evbuffer_new();
	st->ev = event_new(nonod->base, fd, EV_READ | EV_PERSIST, output_on_read, st);
	if (st->buf == NULL || st->ev == NULL || event_add(st->ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void session_output_attach(struct session *s, int out_fd, int err_fd)
{
	struct session_output *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		close(out_fd);
		close(err_fd);
		return;
	}
	o->out.fd = o->err.fd = -1;
	if (stream_open(&o->out, out_fd) < 0 || stream_open(&o->err, err_fd) < 0)
		log_errorx("session %s: cannot capture output", s->id);
	s->output = o;
}

static struct json_object *stream_json(struct output_stream *st)
{
	struct json_object *o = json_object_new_object();
	size_t len = evbuffer_get_length(st->buf);
	unsigned char *raw = evbuffer_pullup(st->buf, -1);
	char *b64 = malloc(4 * ((len + 2) / 3) + 1);

	if (b64 != NULL) {
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)len);
		json_object_object_add(o, "base64", json_object_new_string(b64));
	}
	free(b64);
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)len));
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)st->dropped));
	json_object_object_add(o, "open", json_object_new_boolean(st->fd >= 0));
	return o;
}

struct json_object *session_output_json(const struct session *s)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "stdout", stream_json(&s->output->out));
	json_object_object_add(o, "stderr", stream_json(&s->output->err));
	return o;
}

void session_output_free(struct session_output *o)
{
	if (o == NULL)
		return;
	stream_close(&o->out);
	stream_close(&o->err);
	if (o->out.buf != NULL)
		evbuffer_free(o->out.buf);
	if (o->err.buf != NULL)
		evbuffer_free(o->err.buf);
	free(o);
}
