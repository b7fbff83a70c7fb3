/* nonoctl status: what the daemon is and what the kernel enforces. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "nonoctl.h"

#define STATUS_WIDTH 22 /* fits "  clone_into_cgroup:" and the like */

static int cmd_status_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.args = "",
	.summary = "Show the daemon's version, mode, clients and sandbox features.",
	.exec = cmd_status_exec,
};

static void format_uptime(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000, d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d > 0)
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m", d, h, m);
	else if (h > 0)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h, m, s % 60);
	else if (m > 0)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "s", s, ms % 1000);
}

/* A feature value for humans: yes/no, numbers, strings, lists joined by
 * ",", one level of objects as "k=v k=v"; deeper levels as compact JSON. */
static void put_value(FILE *f, struct json_object *v, int depth)
{
	size_t i, n;
	bool first = true;

	switch (json_object_get_type(v)) {
	case json_type_boolean:
		fputs(json_object_get_boolean(v) ? "yes" : "no", f);
		break;
	case json_type_string:
		fputs(json_object_get_string(v), f);
		break;
	case json_type_array:
		n = json_object_array_length(v);
		if (n == 0)
			fputs("(none)", f);
		for (i = 0; i < n; i++) {
			if (i > 0)
				fputc(',', f);
			put_value(f, json_object_array_get_idx(v, i), depth + 1);
		}
		break;
	case json_type_object:
		if (depth > 0) {
			fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE), f);
			break;
		}
		json_object_object_foreach(v, k, sub) {
			fprintf(f, "%s%s=", first ? "" : " ", k);
			put_value(f, sub, depth + 1);
			first = false;
		}
		break;
	default:
		fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), f);
		break;
	}
}

/* One "  key: value" line per sandbox feature, in the daemon's order. */
static void print_sandbox(const char *json)
{
	struct json_object *sb = json_tokener_parse(json);
	char key[80];

	if (sb == NULL || !json_object_is_type(sb, json_type_object) ||
	    json_object_object_length(sb) == 0) {
		out_kv(stdout, STATUS_WIDTH, "sandbox", "(not reported)");
		json_object_put(sb);
		return;
	}
	puts("sandbox:");
	json_object_object_foreach(sb, k, v) {
		char *text = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&text, &len);

		if (mem == NULL)
			break;
		put_value(mem, v, 0);
		fclose(mem);
		snprintf(key, sizeof(key), "  %s", k);
		out_kv(stdout, STATUS_WIDTH, key, text);
		free(text);
	}
	json_object_put(sb);
}

static int cmd_status_exec(struct nonoctl *ctl, int argc, char **argv)
{
	nono_status *st = NULL;
	nono_error *err = NULL;
	char num[64];
	int r;

	r = out_noargs(&cmd_status_entry, argc, argv);
	if (r >= 0)
		return r;
	r = nonoctl_connect(ctl);
	if (r != EXIT_OK)
		return r;
	if (nono_client_status(ctl->client, &st, &err) < 0) {
		r = out_error("status", err);
		nono_error_free(err);
		return r;
	}
	if (ctl->json) {
		r = out_json_pretty(nono_status_json(st));
		nono_status_free(st);
		return r;
	}
	out_kv(stdout, STATUS_WIDTH, "daemon version", nono_status_version(st));
	snprintf(num, sizeof(num), "%d", nono_status_protocol(st));
	out_kv(stdout, STATUS_WIDTH, "protocol", num);
	out_kv(stdout, STATUS_WIDTH, "mode", nono_status_mode(st));
	snprintf(num, sizeof(num), "%ld", (long)nono_status_pid(st));
	out_kv(stdout, STATUS_WIDTH, "pid", num);
	format_uptime(num, sizeof(num), nono_status_uptime_ms(st));
	out_kv(stdout, STATUS_WIDTH, "uptime", num);
	out_kv(stdout, STATUS_WIDTH, "socket", nono_status_socket(st));
	out_kv(stdout, STATUS_WIDTH, "state dir", nono_status_state_dir(st));
	snprintf(num, sizeof(num), "%u", nono_status_clients(st));
	out_kv(stdout, STATUS_WIDTH, "clients", num);
	print_sandbox(nono_status_sandbox_json(st));
	nono_status_free(st);
	return EXIT_OK;
}
