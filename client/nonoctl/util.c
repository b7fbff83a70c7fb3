/* nonoctl: helpers shared by the commands (durations, exit codes, JSON). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "nonoctl.h"

int util_parse_duration(const char *s, int64_t max_ms, int64_t *ms)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 }, { "w", 604800000 },
	};
	char *end;
	unsigned long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || v == 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v > (unsigned long long)(max_ms / units[i].ms))
			return -ERANGE;
		*ms = (int64_t)v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

const char *util_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool util_json_int(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

int util_session_exit_code(struct json_object *session)
{
	struct json_object *st;
	int64_t v;

	/* History rows carry exit_code / exit_signal at the top level. */
	if (util_json_int(session, "exit_signal", &v) && v > 0 && v < 128)
		return 128 + (int)v;
	if (util_json_int(session, "exit_code", &v) && v >= 0 && v <= 255)
		return (int)v;
	if (!json_object_object_get_ex(session, "status", &st) ||
	    !json_object_is_type(st, json_type_object))
		return -1;
	if (util_json_int(st, "signal", &v) && v > 0 && v < 128)
		return 128 + (int)v;
	if (util_json_int(st, "code", &v) && v >= 0 && v <= 255)
		return (int)v;
	return -1;
}

int util_run_error(const char *what, const nono_error *err)
{
	const char *detail = nono_error_detail(err);

	out_error(what, err);
	if (nono_error_code(err) == NONO_E_EXEC_FAILED &&
	    strcmp(nono_error_field(err), "argv[0]") == 0) {
		if (strncmp(detail, "not found", 9) == 0)
			return EXIT_RUN_NOTFOUND;
		if (strncmp(detail, "not executable", 14) == 0)
			return EXIT_RUN_NOEXEC;
	}
	return EXIT_RUN_FAILED;
}

/* Blocking call; with --json the reply is printed. Returns the exit code. */
int nonoctl_call(struct nonoctl *ctl, const char *what, const char *method,
			struct json_object *params, struct json_object **res)
{
	nono_error *err = NULL;
	char *text = NULL;
	int r;

	r = nonoctl_connect(ctl);
	if (r != EXIT_OK) {
		json_object_put(params);
		return r;
	}
	r = nono_client_call(ctl->client, method,
			     json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN),
			     &text, &err);
	json_object_put(params);
	if (r < 0) {
		r = out_error(what, err);
		if (nono_error_code(err) == NONO_E_TIMEOUT && nono_error_is_remote(err))
			r = 124; /* like timeout(1) */
		nono_error_free(err);
		return r;
	}
	*res = json_tokener_parse(text);
	if (ctl->json)
		r = out_json_pretty(text);
	free(text);
	if (*res == NULL) {
		out_warnx("%s: the daemon's reply is not valid JSON", what);
		return EXIT_DAEMON_ERROR;
	}
	return r;
}
