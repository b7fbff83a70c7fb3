/* libnono: daemon.status as a typed value. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

struct nono_status {
	char *json;
	char *version;
	int protocol;
	char *mode;
	pid_t pid;
	uint64_t uptime_ms;
	char *socket;
	char *state_dir;
	unsigned int clients;
	char *sandbox_json;
};

static char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return strdup(json_object_get_string(v));
	return strdup("");
}

/* An integer member clamped to [0, max]; 0 when absent or not an integer. */
static uint64_t get_uint(struct json_object *o, const char *key, uint64_t max)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	n = json_object_get_int64(v);
	if (n < 0)
		return 0;
	return (uint64_t)n > max ? max : (uint64_t)n;
}

void nono_status_free(nono_status *s)
{
	if (s == NULL)
		return;
	free(s->json);
	free(s->version);
	free(s->mode);
	free(s->socket);
	free(s->state_dir);
	free(s->sandbox_json);
	free(s);
}

int nono_client_status(nono_client *c, nono_status **out, nono_error **err)
{
	struct json_object *res, *sandbox;
	nono_status *s;
	char *json = NULL;
	int r;

	if (out == NULL)
		return error_out(err, error_local(NONO_E_INVALID_PARAMS, ERR_KIND_ARGUMENT, 0,
						  "out is required"));
	*out = NULL;
	r = nono_client_call(c, NONO_M_DAEMON_STATUS, NULL, &json, err);
	if (r < 0)
		return r;
	res = json_tokener_parse(json);
	if (res == NULL || !json_object_is_type(res, json_type_object)) {
		json_object_put(res);
		free(json);
		return error_out(err, error_local(NONO_E_PARSE, ERR_KIND_PROTOCOL, 0,
						  "protocol error from daemon: daemon.status "
						  "result is not an object"));
	}
	s = calloc(1, sizeof(*s));
	if (s != NULL) {
		s->json = json;
		json = NULL;
		s->version = get_str(res, "version");
		s->protocol = (int)get_uint(res, "protocol", INT32_MAX);
		s->mode = get_str(res, "mode");
		s->pid = (pid_t)get_uint(res, "pid", INT32_MAX);
		s->uptime_ms = get_uint(res, "uptime_ms", INT64_MAX);
		s->socket = get_str(res, "socket");
		s->state_dir = get_str(res, "state_dir");
		s->clients = (unsigned int)get_uint(res, "clients", UINT32_MAX);
		if (json_object_object_get_ex(res, "sandbox", &sandbox) &&
		    json_object_is_type(sandbox, json_type_object))
			s->sandbox_json = strdup(json_object_to_json_string_ext(sandbox,
					JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			s->sandbox_json = strdup("{}");
	}
	json_object_put(res);
	free(json);
	if (s == NULL || s->version == NULL || s->mode == NULL || s->socket == NULL ||
	    s->state_dir == NULL || s->sandbox_json == NULL) {
		nono_status_free(s);
		return error_out(err, error_local(NONO_E_INTERNAL, ERR_KIND_NOMEM, ENOMEM,
						  "out of memory"));
	}
	*out = s;
	return 0;
}

const char *nono_status_version(const nono_status *s) { return s->version; }
int nono_status_protocol(const nono_status *s) { return s->protocol; }
const char *nono_status_mode(const nono_status *s) { return s->mode; }
pid_t nono_status_pid(const nono_status *s) { return s->pid; }
uint64_t nono_status_uptime_ms(const nono_status *s) { return s->uptime_ms; }
const char *nono_status_socket(const nono_status *s) { return s->socket; }
const char *nono_status_state_dir(const nono_status *s) { return s->state_dir; }
unsigned int nono_status_clients(const nono_status *s) { return s->clients; }
const char *nono_status_sandbox_json(const nono_status *s) { return s->sandbox_json; }
const char *nono_status_json(const nono_status *s) { return s->json; }
