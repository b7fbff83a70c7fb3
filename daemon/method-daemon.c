/* daemon.* methods: the handshake and the daemon's status. */
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "methods.h"
#include "nono-protocol.h"
#include "build-config.h"

static const struct param_spec hello_params[] = {
	{ .name = "protocol", .type = PARAM_INT_ARRAY, .required = true, .max = 16,
	  .doc = "protocol versions the client speaks" },
	{ .name = "client", .type = PARAM_STRING, .max = 128,
	  .doc = "client name and version, for logs (\"nonoctl/0.1.0\")" },
	{ NULL },
};

/* Optional capabilities a client may test for; new ones never bump the version. */
static struct json_object *daemon_features(void)
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_string("fd-passing"));
	json_object_array_add(a, json_object_new_string("notifications"));
	json_object_array_add(a, json_object_new_string("sessions"));
	json_object_array_add(a, json_object_new_string("policy"));
	if (nonod->vault != NULL)
		json_object_array_add(a, json_object_new_string("secrets"));
	if (nonod->snap != NULL) {
		json_object_array_add(a, json_object_new_string("snapshots"));
		json_object_array_add(a, json_object_new_string("snapshot-read"));
		json_object_array_add(a, json_object_new_string("session-snapshots"));
	}
	json_object_array_add(a, json_object_new_string("proxy")); /* started on first use */
	return a;
}

static struct json_object *peer_json(const struct peer *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "uid", json_object_new_int64(p->uid));
	json_object_object_add(o, "gid", json_object_new_int64(p->gid));
	json_object_object_add(o, "admin", json_object_new_boolean(p->admin));
	return o;
}

static int daemon_hello(struct rpc_call *call, struct json_object **result,
			struct rpc_error *err)
{
	struct json_object *versions = params_get(call->params, "protocol");
	struct json_object *r, *limits, *supported;
	int best = 0;

	if (conn_hello_done(call->conn))
		return rpc_error_set(err, NONO_E_INVALID_REQUEST, "method",
				     "daemon.hello was already done on this connection");
	for (size_t i = 0; i < json_object_array_length(versions); i++) {
		int64_t v = json_object_get_int64(json_object_array_get_idx(versions, i));

		if (v >= NONO_PROTOCOL_MIN_VERSION && v <= NONO_PROTOCOL_VERSION && v > best)
			best = (int)v;
	}
	if (best == 0) {
		rpc_error_set(err, NONO_E_UNSUPPORTED_PROTOCOL, "protocol",
			      "no common protocol version: this daemon speaks %d..%d",
			      NONO_PROTOCOL_MIN_VERSION, NONO_PROTOCOL_VERSION);
		return err->code;
	}
	conn_set_hello(call->conn, best, params_str(call->params, "client", ""));

	r = json_object_new_object();
	json_object_object_add(r, "protocol", json_object_new_int(best));
	json_object_object_add(r, "daemon", json_object_new_string(NONO_VERSION));
	supported = json_object_new_array();
	for (int v = NONO_PROTOCOL_MIN_VERSION; v <= NONO_PROTOCOL_VERSION; v++)
		json_object_array_add(supported, json_object_new_int(v));
	json_object_object_add(r, "supported", supported);
	json_object_object_add(r, "features", daemon_features());
	limits = json_object_new_object();
	json_object_object_add(limits, "max_message", json_object_new_int64((int64_t)nonod->cfg->max_message));
	json_object_object_add(limits, "max_fds", json_object_new_int(NONO_MAX_FDS_PER_MESSAGE));
	json_object_object_add(r, "limits", limits);
	json_object_object_add(r, "peer", peer_json(call->peer));
	*result = r;
	return 0;
}

static int daemon_status(struct rpc_call *call, struct json_object **result,
			 struct rpc_error *err)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "version", json_object_new_string(NONO_VERSION));
	json_object_object_add(r, "protocol", json_object_new_int(NONO_PROTOCOL_VERSION));
	json_object_object_add(r, "mode", json_object_new_string(nonod_mode_name(nonod->mode)));
	json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(r, "uptime_ms",
			       json_object_new_int64((int64_t)(nonod_now_ms() - nonod->start_ms)));
	json_object_object_add(r, "socket", json_object_new_string(nonod->socket_path));
	json_object_object_add(r, "state_dir", json_object_new_string(nonod->state_dir));
	json_object_object_add(r, "clients", json_object_new_int64(nonod->nclients));
	json_object_object_add(r, "sandbox", daemon_sandbox_json());
	json_object_object_add(r, "vault", secret_status_json(nonod_vault_error()));
	*result = r;
	return 0;
}

const struct method daemon_methods[] = {
	{ "daemon.hello", hello_params, AUTH_NONE, daemon_hello,
	  "negotiate the protocol version; must be the first call" },
	{ "daemon.status", NULL, AUTH_USER, daemon_status,
	  "version, mode, uptime, clients and the kernel's sandbox features" },
	{ NULL },
};
