/* nonoctl audit: the proxy's record of what sessions sent where. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "nonoctl.h"

static int cmd_audit_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_audit_entry = {
	.name = "audit",
	.args = "[--session ID] [--since DURATION] [--limit N] [--all-users]",
	.summary = "Show proxied requests and refusals, newest first (secret names, never values).",
	.exec = cmd_audit_exec,
};

/* Strings from the daemon may hold anything: no terminal escapes through. */
static const char *clean(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static void audit_row(struct json_object *r)
{
	char when[32] = "?", host[300], path[300], sess[32], sec[140], reason[200];
	int64_t ts = 0, port = 0, status = 0, in = 0, out = 0, lat = 0;
	const char *reas = util_json_str(r, "reason");
	struct tm tm;
	time_t t;

	util_json_int(r, "ts_ms", &ts);
	util_json_int(r, "port", &port);
	util_json_int(r, "status", &status);
	util_json_int(r, "bytes_in", &in);
	util_json_int(r, "bytes_out", &out);
	util_json_int(r, "latency_us", &lat);
	t = (time_t)(ts / 1000);
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s %-18s %-7s %s:%" PRId64 " %s %" PRId64 " in=%" PRId64 " out=%" PRId64
	       " %" PRId64 "us%s%s%s%s\n", when, clean(util_json_str(r, "session"), sess, sizeof(sess)),
	       util_json_str(r, "method") ? util_json_str(r, "method") : "?",
	       clean(util_json_str(r, "host"), host, sizeof(host)), port,
	       clean(util_json_str(r, "path"), path, sizeof(path)), status, in, out, lat,
	       util_json_str(r, "secret") ? " secret=" : "",
	       util_json_str(r, "secret") ? clean(util_json_str(r, "secret"), sec, sizeof(sec)) : "",
	       reas ? " reason=" : "", reas ? clean(reas, reason, sizeof(reason)) : "");
}

static int cmd_audit_exec(struct nonoctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "session", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'n' },
		{ "all-users", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_object *params = json_object_new_object(), *res = NULL, *list;
	int64_t ms;
	char *end;
	long n;
	int ch, r;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+s:S:n:ah", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			json_object_object_add(params, "session", json_object_new_string(optarg));
			break;
		case 'S':
			if (util_parse_duration(optarg, UTIL_TIMEOUT_MAX_MS, &ms) < 0) {
				json_object_put(params);
				return out_usage(&cmd_audit_entry, "--since: '%s' is not a duration", optarg);
			}
			json_object_object_add(params, "since_ms",
					       json_object_new_int64((int64_t)time(NULL) * 1000 - ms));
			break;
		case 'n':
			n = strtol(optarg, &end, 10);
			if (*end != '\0' || n < 1 || n > 100000) {
				json_object_put(params);
				return out_usage(&cmd_audit_entry, "--limit: '%s' is not 1..100000", optarg);
			}
			json_object_object_add(params, "limit", json_object_new_int64(n));
			break;
		case 'a':
			json_object_object_add(params, "all_users", json_object_new_boolean(1));
			break;
		case 'h':
			json_object_put(params);
			printf("Usage: nonoctl [--json] audit %s\n%s\n", cmd_audit_entry.args,
			       cmd_audit_entry.summary);
			return EXIT_OK;
		default:
			json_object_put(params);
			return out_usage(&cmd_audit_entry, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		json_object_put(params);
		return out_usage(&cmd_audit_entry, "unexpected argument '%s'", argv[optind]);
	}
	r = nonoctl_call(ctl, "audit", "audit.list", params, &res);
	if (r == EXIT_OK && !ctl->json && json_object_object_get_ex(res, "records", &list) &&
	    json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			audit_row(json_object_array_get_idx(list, i));
	json_object_put(res);
	return r;
}
