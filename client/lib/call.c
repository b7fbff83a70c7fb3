/*
 * libnono calls: build and send requests, blocking calls (with and without
 * fds), async calls, and dispatching queued replies and notifications.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdpass.h"
#include "private.h"

#define METHOD_MAX 128
#define PARAMS_MAX_DEPTH 64

/* Parse caller-supplied params text into a new object (NULL text -> NULL). */
static int parse_params(const char *text, struct json_object **out, nono_error **err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t len, used;

	*out = NULL;
	if (text == NULL)
		return 0;
	len = strlen(text);
	tok = json_tokener_new_ex(PARAMS_MAX_DEPTH);
	if (tok == NULL)
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	obj = json_tokener_parse_ex(tok, text, (int)(len > INT32_MAX ? INT32_MAX : len));
	used = json_tokener_get_parse_end(tok);
	if (obj != NULL && json_tokener_get_error(tok) == json_tokener_success)
		used += strspn(text + used, " \t\r\n");
	else {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (obj == NULL || used != len || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "params must be one JSON object"));
	}
	*out = obj;
	return 0;
}

static int check_args(nono_client *c, const char *method, const int *fds, size_t nfds,
		      nono_error **err)
{
	size_t mlen;

	if (c == NULL || method == NULL || c->freed)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  c != NULL && c->freed ? "client was freed"
						  : "client and method are required"));
	mlen = strlen(method);
	if (mlen == 0 || mlen > METHOD_MAX)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "method name must be 1..%d bytes", METHOD_MAX));
	if (nfds > NONO_MAX_FDS_PER_MESSAGE || (nfds > 0 && fds == NULL))
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "at most %d fds per call", NONO_MAX_FDS_PER_MESSAGE));
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT,
							  EBADF, "fds[%zu] is not a file descriptor", i));
	if (c->dead != NULL)
		return error_out(err, error_copy(c->dead));
	return 0;
}

/*
 * Allocate m's id, send the request, and link m into c->calls only once it
 * is fully written (no reply can come earlier). params is taken.
 */
static int send_call(nono_client *c, struct msg *m, const char *method,
		     struct json_object *params, const int *fds, size_t nfds, nono_error **err)
{
	struct json_object *id, *req;
	char *buf;
	size_t len;
	int r;

	m->type = MSG_CALL;
	m->id = c->next_id++;
	id = json_object_new_int64(m->id);
	req = id != NULL ? rpc_make_request(id, method, params) : NULL;
	if (id == NULL)
		json_object_put(params);
	json_object_put(id);
	buf = req != NULL ? rpc_serialize(req, &len) : NULL;
	json_object_put(req);
	if (buf == NULL)
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	r = io_send(c, buf, len, fds, nfds, err);
	free(buf);
	if (r < 0)
		return r;
	m->next = c->calls;
	c->calls = m;
	return 0;
}

/* The blocking call behind every public variant and the hello. params taken. */
int client_call_obj(nono_client *c, const char *method, struct json_object *params,
		    const int *fds, size_t nfds, int timeout_ms, char **result_json,
		    int **out_fds, size_t *out_nfds, nono_error **err)
{
	struct msg *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		json_object_put(params);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	m->blocking = true;
	r = send_call(c, m, method, params, fds, nfds, err);
	if (r < 0) {
		free(m);
		return r;
	}
	if (io_wait(c, m, timeout_ms) == NONO_E_TIMEOUT) {
		m->abandoned = true; /* stays in c->calls; freed when its reply comes */
		return error_out(err, error_local(NONO_E_TIMEOUT, ERR_KIND_TIMEOUT, ETIMEDOUT,
						  "no reply from nonod to %s within %d ms",
						  method, timeout_ms));
	}
	if (m->err != NULL) {
		r = error_out(err, m->err);
		m->err = NULL;
		msg_free(m);
		return r;
	}
	if (out_fds != NULL) {
		*out_fds = NULL;
		*out_nfds = 0;
		if (m->nfds > 0) {
			*out_fds = malloc(m->nfds * sizeof(int));
			if (*out_fds == NULL) {
				msg_free(m);
				return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM,
								  ENOMEM, "out of memory"));
			}
			memcpy(*out_fds, m->fds, m->nfds * sizeof(int));
			*out_nfds = m->nfds;
			m->nfds = 0;
		}
	}
	if (result_json != NULL) {
		*result_json = m->json;
		m->json = NULL;
	}
	msg_free(m);
	return 0;
}

int nono_client_call_fds(nono_client *c, const char *method, const char *params_json,
			 const int *fds, size_t nfds,
			 char **result_json, int **out_fds, size_t *out_nfds,
			 nono_error **err)
{
	struct json_object *params;
	int r;

	if (result_json != NULL)
		*result_json = NULL;
	if (out_fds != NULL) {
		*out_fds = NULL;
		if (out_nfds == NULL)
			return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT,
							  0, "out_nfds is required with out_fds"));
		*out_nfds = 0;
	}
	r = check_args(c, method, fds, nfds, err);
	if (r < 0)
		return r;
	r = parse_params(params_json, &params, err);
	if (r < 0)
		return r;
	return client_call_obj(c, method, params, fds, nfds, c->timeout_ms, result_json,
			       out_fds, out_nfds, err);
}

int nono_client_call(nono_client *c, const char *method, const char *params_json,
		     char **result_json, nono_error **err)
{
	return nono_client_call_fds(c, method, params_json, NULL, 0, result_json, NULL, NULL,
				    err);
}

int nono_client_call_async(nono_client *c, const char *method, const char *params_json,
			   const int *fds, size_t nfds,
			   nono_reply_cb cb, void *userdata, nono_error **err)
{
	struct json_object *params;
	struct msg *m;
	int r;

	r = check_args(c, method, fds, nfds, err);
	if (r < 0)
		return r;
	if (cb == NULL)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "a reply callback is required"));
	r = parse_params(params_json, &params, err);
	if (r < 0)
		return r;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		json_object_put(params);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	m->cb = cb;
	m->userdata = userdata;
	r = send_call(c, m, method, params, fds, nfds, err);
	if (r < 0)
		free(m);
	return r;
}

static void deliver(nono_client *c, struct msg *m)
{
	if (m->type == MSG_NOTIFY) {
		if (c->notify_cb != NULL)
			c->notify_cb(c, m->method, m->json, m->fds, m->nfds, c->notify_data);
	} else {
		m->cb(c, m->err == NULL ? m->json : NULL, m->err, m->fds, m->nfds, m->userdata);
	}
	msg_free(m); /* closes the fds the callback did not take */
}

/* Bound the reads of one dispatch so a flooding daemon cannot starve the loop. */
#define DISPATCH_MAX_READS 64

int nono_client_dispatch(nono_client *c)
{
	struct msg *m;
	int n = 0, r = 0;

	if (c == NULL)
		return NONO_E_INVALID_PARAMS;
	if (c->freed)
		return NONO_E_BACKEND_UNAVAILABLE;
	c->dispatching++;
	for (int i = 0; i < DISPATCH_MAX_READS && c->dead == NULL; i++)
		if (io_read(c) <= 0)
			break;
	while (!c->freed && (m = io_queue_pop(c)) != NULL) {
		deliver(c, m);
		n++;
	}
	c->dispatching--;
	if (c->freed) {
		if (c->dispatching == 0)
			client_destroy(c);
		return NONO_E_BACKEND_UNAVAILABLE;
	}
	if (c->dead != NULL)
		r = c->dead->code;
	return r < 0 ? r : n;
}

size_t nono_client_pending(const nono_client *c)
{
	return c != NULL ? c->queued : 0;
}

void nono_client_set_notify_cb(nono_client *c, nono_notify_cb cb, void *userdata)
{
	if (c == NULL)
		return;
	c->notify_cb = cb;
	c->notify_data = userdata;
}
