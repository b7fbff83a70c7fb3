/* libnono connections: connect and handshake, accessors, teardown. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "private.h"

#define HELLO_MIN_MAX_MESSAGE 1024u

const char *nono_version(void)
{
	return NONO_VERSION;
}

void client_destroy(nono_client *c)
{
	struct msg *m, *next;

	for (m = c->calls; m != NULL; m = next) {
		next = m->next;
		msg_free(m);
	}
	while ((m = io_queue_pop(c)) != NULL)
		msg_free(m);
	for (size_t i = 0; i < c->nrxfds; i++)
		close(c->rxfds[i].fd);
	if (c->fd >= 0)
		close(c->fd);
	nono_error_free(c->dead);
	free(c->rbuf);
	free(c->socket_path);
	free(c->client_name);
	free(c->daemon_version);
	free(c->hello_json);
	free(c);
}

void nono_client_free(nono_client *c)
{
	if (c == NULL)
		return;
	if (c->dispatching > 0) {
		c->freed = true; /* the outermost dispatch frees it */
		return;
	}
	client_destroy(c);
}

static struct json_object *hello_params(const char *client_name)
{
	struct json_object *p = json_object_new_object();
	struct json_object *versions = json_object_new_array();

	if (p == NULL || versions == NULL ||
	    json_object_array_add(versions, json_object_new_int(NONO_PROTOCOL_VERSION)) < 0 ||
	    json_object_object_add(p, "protocol", versions) < 0) {
		json_object_put(versions);
		json_object_put(p);
		return NULL;
	}
	if (json_object_object_add(p, "client", json_object_new_string(client_name)) < 0) {
		json_object_put(p);
		return NULL;
	}
	return p;
}

static int hello_protocol_error(nono_error **err, const char *what)
{
	return error_out(err, error_local(NONO_E_PARSE, ERR_KIND_PROTOCOL, 0,
					  "protocol error from daemon: daemon.hello %s", what));
}

/* Check the hello result and keep what the client needs from it. */
static int hello_accept(nono_client *c, char *json, nono_error **err)
{
	struct json_object *res, *v, *limits;
	int r = 0;

	res = json_tokener_parse(json);
	if (res == NULL || !json_object_is_type(res, json_type_object)) {
		r = hello_protocol_error(err, "result is not an object");
		goto out;
	}
	if (!json_object_object_get_ex(res, "protocol", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != NONO_PROTOCOL_VERSION) {
		r = error_out(err, error_local(NONO_E_UNSUPPORTED_PROTOCOL, ERR_KIND_PROTOCOL, 0,
					       "nonod chose a protocol version this library "
					       "does not speak (it speaks %d)",
					       NONO_PROTOCOL_VERSION));
		goto out;
	}
	c->protocol = NONO_PROTOCOL_VERSION;
	if (!json_object_object_get_ex(res, "daemon", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		r = hello_protocol_error(err, "result has no daemon version");
		goto out;
	}
	c->daemon_version = strdup(json_object_get_string(v));
	if (json_object_object_get_ex(res, "features", &v) &&
	    !json_object_is_type(v, json_type_array)) {
		r = hello_protocol_error(err, "features is not an array");
		goto out;
	}
	if (json_object_object_get_ex(res, "limits", &limits) &&
	    json_object_object_get_ex(limits, "max_message", &v)) {
		int64_t max = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || max < HELLO_MIN_MAX_MESSAGE ||
		    max > NONO_MAX_MESSAGE_CEILING) {
			r = hello_protocol_error(err, "limits.max_message is out of range");
			goto out;
		}
		c->max_message = (size_t)max;
	}
	c->hello_json = json;
	json = NULL;
	if (c->daemon_version == NULL)
		r = error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
					       "out of memory"));
out:
	json_object_put(res);
	free(json);
	return r;
}

int nono_client_connect(const char *socket_path, const char *client_name,
			nono_client **out, nono_error **err)
{
	char pathbuf[PATH_MAX];
	struct json_object *params;
	nono_client *c;
	char *result = NULL;
	int fd, r;

	if (out == NULL)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "out is required"));
	*out = NULL;
	if (client_name == NULL)
		client_name = "libnono/" NONO_VERSION;
	if (strlen(client_name) > 128)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "client name longer than 128 bytes"));
	if (socket_path == NULL) {
		socket_path = nono_default_socket(pathbuf, sizeof(pathbuf));
		if (socket_path == NULL)
			return error_out(err, error_local(NONO_E_BACKEND_UNAVAILABLE,
							  ERR_KIND_CONNECTION, errno,
							  "cannot find the nonod socket: %s",
							  strerror(errno)));
	}
	fd = socket_connect(socket_path);
	if (fd < 0)
		return error_out(err, error_local(NONO_E_BACKEND_UNAVAILABLE, ERR_KIND_CONNECTION,
						  -fd, "cannot connect to %s: %s", socket_path,
						  strerror(-fd)));
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	c->fd = fd;
	c->timeout_ms = -1;
	c->max_message = NONO_MAX_MESSAGE_DEFAULT;
	c->next_id = 1;
	c->queue_tail = &c->queue_head;
	c->socket_path = strdup(socket_path);
	c->client_name = strdup(client_name);
	params = hello_params(client_name);
	if (c->socket_path == NULL || c->client_name == NULL || params == NULL) {
		json_object_put(params);
		client_destroy(c);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	r = client_call_obj(c, NONO_M_DAEMON_HELLO, params, NULL, 0,
			    NONO_CLIENT_HELLO_TIMEOUT_MS, &result, NULL, NULL, err);
	if (r == 0)
		r = hello_accept(c, result, err);
	if (r < 0) {
		client_destroy(c);
		return r;
	}
	*out = c;
	return 0;
}

int nono_client_protocol(const nono_client *c)
{
	return c != NULL ? c->protocol : 0;
}

const char *nono_client_daemon_version(const nono_client *c)
{
	return c != NULL && c->daemon_version != NULL ? c->daemon_version : "";
}

bool nono_client_has_feature(const nono_client *c, const char *feature)
{
	struct json_object *res, *features;
	bool found = false;

	if (c == NULL || c->hello_json == NULL || feature == NULL)
		return false;
	res = json_tokener_parse(c->hello_json);
	if (json_object_object_get_ex(res, "features", &features) &&
	    json_object_is_type(features, json_type_array)) {
		size_t n = json_object_array_length(features);

		for (size_t i = 0; i < n && !found; i++) {
			struct json_object *f = json_object_array_get_idx(features, i);

			found = json_object_is_type(f, json_type_string) &&
				strcmp(json_object_get_string(f), feature) == 0;
		}
	}
	json_object_put(res);
	return found;
}

const char *nono_client_hello_json(const nono_client *c)
{
	return c != NULL && c->hello_json != NULL ? c->hello_json : "{}";
}

const char *nono_client_socket_path(const nono_client *c)
{
	return c != NULL ? c->socket_path : "";
}

size_t nono_client_max_message(const nono_client *c)
{
	return c != NULL ? c->max_message : 0;
}

void nono_client_set_timeout(nono_client *c, int timeout_ms)
{
	if (c != NULL)
		c->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

int nono_client_get_fd(const nono_client *c)
{
	return c != NULL ? c->fd : -1;
}
