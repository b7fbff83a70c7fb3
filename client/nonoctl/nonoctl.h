/*
 * nonoctl: shared declarations. Each command is one `const struct
 * cmd_entry` in its own cmd-<name>.c, listed in cmd_table (nonoctl.c).
 */
#ifndef NONOCTL_H
#define NONOCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nono.h"

/* Exit codes (documented in `nonoctl --help` and client/README.md). */
enum {
	EXIT_OK = 0,
	EXIT_DAEMON_ERROR = 1,   /* the daemon returned an error (or sent garbage) */
	EXIT_USAGE = 2,          /* bad command line */
	EXIT_UNAVAILABLE = 69,   /* EX_UNAVAILABLE: daemon not reachable */
	EXIT_RUN_FAILED = 125,   /* run: nono itself failed */
	EXIT_RUN_NOEXEC = 126,   /* run: the command is not executable */
	EXIT_RUN_NOTFOUND = 127, /* run: the command was not found */
};

struct nonoctl {
	const char *socket_path;  /* --socket, else NULL (libnono's default) */
	bool json;                /* --json */
	int timeout_ms;           /* --timeout, -1 = wait for replies forever */
	nono_client *client;      /* set by nonoctl_connect(); freed by main */
};

struct cmd_entry {
	const char *name;
	const char *args;     /* synopsis after the name, "" when none */
	const char *summary;  /* one line for --help */
	/* argv[0] is the command name; returns an exit code. */
	int (*exec)(struct nonoctl *ctl, int argc, char **argv);
};

struct json_object;

extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_ps_entry;
extern const struct cmd_entry cmd_wait_entry;
extern const struct cmd_entry cmd_kill_entry;
extern const struct cmd_entry cmd_secret_entry;
extern const struct cmd_entry cmd_policy_entry;
extern const struct cmd_entry cmd_snapshot_entry;
extern const struct cmd_entry cmd_audit_entry;

/*
 * Connect ctl->client (after the command has checked its arguments, so a
 * usage error never needs a daemon). EXIT_OK, or the exit code after
 * printing why ("cannot connect to PATH: ... (is nonod running?)").
 */
int nonoctl_connect(struct nonoctl *ctl);

/* ---- output.c ---- */

/* Print err as "nonoctl: what: detail (kind...)" and return the exit code it maps to. */
int out_error(const char *what, const nono_error *err);
/* Print "nonoctl: " + printf to stderr. */
void out_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error for a command: message, "Usage:" line; returns EXIT_USAGE. */
int out_usage(const struct cmd_entry *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "key:" padded to width, then value; control characters in both become '?'. */
void out_kv(FILE *f, int width, const char *key, const char *value);
/* JSON text pretty-printed to stdout; 0 or EXIT_DAEMON_ERROR if it does not parse. */
int out_json_pretty(const char *json);
/* Parse argv for a command taking no arguments but -h/--help. <0 = go on,
 * else the exit code to return. */
int out_noargs(const struct cmd_entry *cmd, int argc, char **argv);

/* ---- util.c ---- */

/* "30" (seconds), "500ms", "30s", "5m", "2h", "1d", "4w" -> *ms (> 0, at
 * most max_ms). 0, -EINVAL or -ERANGE. */
#define UTIL_TIMEOUT_MAX_MS (31LL * 86400000) /* the daemon's bound on timeouts */
int util_parse_duration(const char *s, int64_t max_ms, int64_t *ms);
/* Borrowed string member, NULL when absent or not a string. */
const char *util_json_str(struct json_object *o, const char *key);
/* Integer member; false when absent or not an integer. */
bool util_json_int(struct json_object *o, const char *key, int64_t *out);
/* A Session's exit as a shell would report it: code, 128+N for signal N;
 * -1 when it has not exited. */
int util_session_exit_code(struct json_object *session);
/*
 * Connect, call method with params (taken), print the reply with --json,
 * and parse it into *res (caller puts). Returns the exit code (124 for a
 * remote timeout, like timeout(1)).
 */
int nonoctl_call(struct nonoctl *ctl, const char *what, const char *method,
		 struct json_object *params, struct json_object **res);
/* Print a run/wait failure; 127 for exec_failed "not found" on argv[0],
 * 126 for "not executable", else 125. */
int util_run_error(const char *what, const nono_error *err);

#endif
