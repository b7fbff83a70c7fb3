/*
 * The RPC layer: parse a framed message, check it centrally (hello, authority,
 * session membership, params), run the handler, and answer. The only place
 * that turns handler results into JSON-RPC responses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fdpass.h"
#include "fdrelease.h"
#include "log.h"
#include "methods.h"
#include "rpc-dispatch.h"
#include "rpc.h"

const struct method *const rpc_method_tables[] = {
	daemon_methods,
	secret_methods,
	session_methods,
	policy_methods,
	audit_methods,
	snapshot_methods,
	NULL,
};

int (*rpc_peer_in_session)(const struct peer *peer);

struct rpc_deferred {
	struct conn *conn;
	struct json_object *id;
	struct peer peer;
};

const struct method *rpc_method_lookup(const char *name)
{
	for (size_t t = 0; rpc_method_tables[t] != NULL; t++)
		for (const struct method *m = rpc_method_tables[t]; m->name != NULL; m++)
			if (strcmp(m->name, name) == 0)
				return m;
	return NULL;
}

static void rpc_send_error(struct conn *c, struct json_object *id, const struct rpc_error *err)
{
	struct json_object *msg = rpc_make_error(id, err);

	if (msg == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	conn_send(c, msg, NULL, 0);
	json_object_put(msg);
}

static void rpc_send_result(struct conn *c, struct json_object *id, struct json_object *result,
			    const int *fds, size_t nfds)
{
	struct json_object *msg = rpc_make_result(id, result);

	if (msg == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	conn_send(c, msg, fds, nfds);
	json_object_put(msg);
}

int rpc_call_take_fd(struct rpc_call *call, int64_t idx, struct rpc_error *err)
{
	int fd;

	if (idx < 0 || (uint64_t)idx >= call->nfds)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fds",
				     "file descriptor index %lld not passed with this message "
				     "(%zu received)", (long long)idx, call->nfds),
		       -1;
	fd = call->fds[idx];
	if (fd == FD_REFUSED_FUSE)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fds",
				     "file descriptor index %lld is a file on a FUSE file system: "
				     "nonod takes none (closing one waits for its server)",
				     (long long)idx),
		       -1;
	if (fd < 0)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "fds",
				     "file descriptor index %lld used twice", (long long)idx),
		       -1;
	call->fds[idx] = -1;
	return fd;
}

int rpc_call_attach_fds(struct rpc_call *call, const int *fds, size_t nfds)
{
	if (call->n_out_fds + nfds > sizeof(call->out_fds) / sizeof(call->out_fds[0]))
		return -E2BIG;
	for (size_t i = 0; i < nfds; i++)
		call->out_fds[call->n_out_fds++] = fds[i];
	return 0;
}

struct rpc_deferred *rpc_call_defer(struct rpc_call *call)
{
	struct rpc_deferred *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->conn = conn_ref(call->conn);
	d->id = json_object_get(call->id);
	d->peer = *call->peer;
	return d;
}

const struct peer *rpc_deferred_peer(const struct rpc_deferred *d)
{
	return &d->peer;
}

static void rpc_deferred_free(struct rpc_deferred *d)
{
	conn_unref(d->conn);
	json_object_put(d->id);
	free(d);
}

void rpc_reply_result_fds(struct rpc_deferred *d, struct json_object *result,
			  const int *fds, size_t nfds)
{
	if (!conn_is_dead(d->conn))
		rpc_send_result(d->conn, d->id, result, fds, nfds);
	else
		json_object_put(result);
	rpc_deferred_free(d);
}

void rpc_reply_result(struct rpc_deferred *d, struct json_object *result)
{
	rpc_reply_result_fds(d, result, NULL, 0);
}

void rpc_reply_error(struct rpc_deferred *d, const struct rpc_error *err)
{
	if (!conn_is_dead(d->conn))
		rpc_send_error(d->conn, d->id, err);
	rpc_deferred_free(d);
}

void rpc_notify(struct conn *c, const char *method, struct json_object *params)
{
	struct json_object *msg;

	if (c == NULL || conn_is_dead(c) || !conn_hello_done(c)) {
		json_object_put(params);
		return;
	}
	msg = rpc_make_request(NULL, method, params);
	if (msg == NULL)
		return;
	conn_send(c, msg, NULL, 0);
	json_object_put(msg);
}

/* The central checks every call passes before its handler runs. */
static int rpc_check(struct conn *c, const struct method *m, struct rpc_request *req,
		     struct rpc_error *err)
{
	const struct peer *peer = conn_peer(c);

	if (m == NULL)
		return rpc_error_set(err, NONO_E_METHOD_NOT_FOUND, "method",
				     "unknown method '%.128s'", req->method);
	if (m->auth != AUTH_NONE && !conn_hello_done(c))
		return rpc_error_set(err, NONO_E_HELLO_REQUIRED, "method",
				     "call daemon.hello first");
	if (peer->in_session)
		return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "",
				     "requests from inside a sandboxed session are refused");
	if (m->auth == AUTH_ADMIN && !peer->admin)
		return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "method",
				     "%s needs an administrator", m->name);
	return params_check(req->params, m->params, err);
}

void rpc_dispatch(struct conn *c, const char *buf, size_t len, int *fds, size_t nfds)
{
	struct rpc_request req;
	struct rpc_error err;
	struct json_object *err_id = NULL, *result = NULL;
	const struct method *m;
	int rc;

	rpc_error_clear(&err);
	if (rpc_parse_request(buf, len, &req, &err, &err_id) < 0) {
		log_debug("client %llu: bad message: %s", (unsigned long long)conn_id(c), err.detail);
		rpc_send_error(c, err_id, &err);
		json_object_put(err_id);
		fd_release_all(conn_peer(c)->uid, fds, nfds);
		return;
	}
	if (rpc_request_is_notification(&req)) {
		/* Protocol v1 defines no client notifications; JSON-RPC forbids answering them. */
		log_debug("client %llu: ignoring notification '%.64s'",
			  (unsigned long long)conn_id(c), req.method);
		goto out;
	}
	m = rpc_method_lookup(req.method);
	if (rpc_check(c, m, &req, &err) < 0) {
		rpc_send_error(c, req.id, &err);
		goto out;
	}
	{
		struct rpc_call call = {
			.conn = c,
			.peer = conn_peer(c),
			.params = req.params,
			.id = req.id,
			.fds = fds,
			.nfds = nfds,
		};

		rc = m->fn(&call, &result, &err);
		if (rc == RPC_DEFERRED) {
			/* The handler answers later through its rpc_deferred. */
		} else if (rc == 0) {
			rpc_send_result(c, req.id, result, call.out_fds, call.n_out_fds);
		} else {
			json_object_put(result);
			if (err.code == 0)
				rpc_error_set(&err, rc < -32768 || rc > -32000 ? NONO_E_INTERNAL : rc,
					      "", "%s failed", m->name);
			rpc_send_error(c, req.id, &err);
		}
	}
out:
	fd_release_all(conn_peer(c)->uid, fds, nfds);
	rpc_request_free(&req);
}
