/* nonoctl ps / wait / kill: the sessions the daemon runs for us. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "nonoctl.h"

static int cmd_ps_exec(struct nonoctl *ctl, int argc, char **argv);
static int cmd_wait_exec(struct nonoctl *ctl, int argc, char **argv);
static int cmd_kill_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_ps_entry = {
	.name = "ps",
	.args = "[--all-users] [--history]",
	.summary = "List sessions (--history: also ended ones).",
	.exec = cmd_ps_exec,
};

const struct cmd_entry cmd_wait_entry = {
	.name = "wait",
	.args = "ID [--timeout D]",
	.summary = "Wait for a session to end; exit with its status (124 on timeout).",
	.exec = cmd_wait_exec,
};

const struct cmd_entry cmd_kill_entry = {
	.name = "kill",
	.args = "ID",
	.summary = "Kill a session's whole process tree.",
	.exec = cmd_kill_exec,
};

#define EXIT_WAIT_TIMEOUT 124 /* like timeout(1) */

static void ps_argv(struct json_object *s, char *buf, size_t len)
{
	struct json_object *a;
	size_t n = 0;

	buf[0] = '\0';
	if (!json_object_object_get_ex(s, "argv", &a) || !json_object_is_type(a, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(a) && n + 1 < len; i++) {
		const char *w = json_object_get_string(json_object_array_get_idx(a, i));
		int k = snprintf(buf + n, len - n, "%s%s", i > 0 ? " " : "", w ? w : "");

		if (k < 0)
			break;
		n += (size_t)k;
	}
	for (char *p = buf; *p != '\0'; p++) /* sanitize terminal escapes */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static void ps_row(struct json_object *s)
{
	char cmd[256], status[32] = "-", pids[24] = "-";
	const char *id = util_json_str(s, "id"), *state = util_json_str(s, "state");
	const char *net = util_json_str(s, "network");
	int64_t pid = 0, uid = 0;
	int code = util_session_exit_code(s);

	util_json_int(s, "pid", &pid);
	util_json_int(s, "uid", &uid);
	if (pid > 0)
		snprintf(pids, sizeof(pids), "%" PRId64, pid);
	if (code >= 0)
		snprintf(status, sizeof(status), "%d", code);
	ps_argv(s, cmd, sizeof(cmd));
	printf("%-20s %-9s %8s %6" PRId64 " %-8s %-6s %s\n", id ? id : "?",
	       state ? state : "?", pids, uid, net ? net : "-", status, cmd);
}

static void ps_print(struct json_object *res)
{
	struct json_object *list;

	printf("%-20s %-9s %8s %6s %-8s %-6s %s\n", "ID", "STATE", "PID", "UID", "NETWORK",
	       "EXIT", "COMMAND");
	if (json_object_object_get_ex(res, "sessions", &list) &&
	    json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			ps_row(json_object_array_get_idx(list, i));
	if (json_object_object_get_ex(res, "history", &list) &&
	    json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			ps_row(json_object_array_get_idx(list, i));
}

static int cmd_ps_exec(struct nonoctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all-users", no_argument, NULL, 'a' },
		{ "history", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_object *params = json_object_new_object(), *res = NULL;
	int ch, r;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+aHh", opts, NULL)) != -1) {
		if (ch == 'a') {
			json_object_object_add(params, "all_users", json_object_new_boolean(1));
		} else if (ch == 'H') {
			json_object_object_add(params, "history", json_object_new_boolean(1));
		} else {
			json_object_put(params);
			if (ch == 'h') {
				printf("Usage: nonoctl [--json] ps %s\n%s\n", cmd_ps_entry.args,
				       cmd_ps_entry.summary);
				return EXIT_OK;
			}
			return out_usage(&cmd_ps_entry, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		json_object_put(params);
		return out_usage(&cmd_ps_entry, "unexpected argument '%s'", argv[optind]);
	}
	r = nonoctl_call(ctl, "ps", "session.list", params, &res);
	if (r == EXIT_OK && !ctl->json)
		ps_print(res);
	json_object_put(res);
	return r;
}

/* Parse "ID" plus, for wait, --timeout. <0 = go on. */
static int parse_id(const struct cmd_entry *cmd, int argc, char **argv, bool timeout,
		    const char **id, int64_t *timeout_ms)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 0; /* 0: glibc re-initializes its permutation state */
	opterr = 0;
	/* GNU getopt permutes: "wait ID --timeout 5s" works too. */
	while ((ch = getopt_long(argc, argv, timeout ? "t:h" : "h", opts, NULL)) != -1) {
		if (ch == 't' && timeout) {
			if (util_parse_duration(optarg, UTIL_TIMEOUT_MAX_MS, timeout_ms) < 0)
				return out_usage(cmd, "bad --timeout '%s' (30s, 5m, 2h)", optarg);
		} else if (ch == 'h') {
			printf("Usage: nonoctl [--json] %s %s\n%s\n", cmd->name, cmd->args, cmd->summary);
			return EXIT_OK;
		} else {
			return out_usage(cmd, "unknown option or missing argument '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return out_usage(cmd, optind >= argc ? "no session ID given" : "too many arguments");
	*id = argv[optind];
	return -1;
}

static int cmd_wait_exec(struct nonoctl *ctl, int argc, char **argv)
{
	struct json_object *params, *res = NULL;
	const char *id = NULL;
	int64_t timeout_ms = -1;
	int r;

	r = parse_id(&cmd_wait_entry, argc, argv, true, &id, &timeout_ms);
	if (r >= 0)
		return r;
	params = json_object_new_object();
	json_object_object_add(params, "id", json_object_new_string(id));
	if (timeout_ms > 0)
		json_object_object_add(params, "timeout_ms", json_object_new_int64(timeout_ms));
	r = nonoctl_call(ctl, "wait", "session.wait", params, &res);
	if (r == EXIT_OK) {
		r = util_session_exit_code(res);
		if (r < 0) {
			out_warnx("wait: session %s has no exit status", id);
			r = EXIT_RUN_FAILED;
		}
	} else if (r == EXIT_DAEMON_ERROR || r == EXIT_UNAVAILABLE) {
		r = EXIT_RUN_FAILED;
	}
	json_object_put(res);
	return r;
}

static int cmd_kill_exec(struct nonoctl *ctl, int argc, char **argv)
{
	struct json_object *params, *res = NULL;
	const char *id = NULL;
	int r;

	r = parse_id(&cmd_kill_entry, argc, argv, false, &id, NULL);
	if (r >= 0)
		return r;
	params = json_object_new_object();
	json_object_object_add(params, "id", json_object_new_string(id));
	r = nonoctl_call(ctl, "kill", "session.kill", params, &res);
	json_object_put(res);
	return r;
}
