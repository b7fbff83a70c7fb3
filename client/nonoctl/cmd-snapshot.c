/*
 * nonoctl snapshot create|list|diff|restore|rm|verify|gc: the daemon's
 * content-addressed workspace snapshots (snapshot.* methods). Output
 * formatting is in snapshot-print.c.
 *
 * create, restore and diff run as async calls so the snapshot.progress
 * notifications the daemon sends meanwhile can drive a progress bar on
 * stderr (only when stderr is a terminal).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nonoctl.h"
#include "snapshot-patch.h"
#include "snapshot-print.h"

static int cmd_snapshot_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_snapshot_entry = {
	.name = "snapshot",
	.args = "create [--label L] [--exclude GLOB]... [--allow-unreadable] [WORKSPACE] | "
		"list [WORKSPACE] | diff [--patch] FROM [TO] | restore ID [PATH]... | rm ID | verify | "
		"gc [--keep-last N] [--keep-within D]  (admins: --owner UID)",
	.summary = "Snapshot a workspace; list, diff, restore, remove, verify, collect.",
	.exec = cmd_snapshot_exec,
};

#define GC_WITHIN_MAX (100LL * 365 * 86400) /* the daemon's bound, seconds */

struct snap_opts {
	const char *label;
	bool allow_unreadable, patch;
	struct json_object *excludes; /* owned; NULL when none */
	int64_t owner, keep_last, keep_within; /* -1 = not given */
};

/* ---- the progress bar ---- */

struct progress {
	bool bar;        /* stderr is a terminal */
	bool drawn;
	bool done;
	char *result;    /* owned: the reply's JSON text */
	nono_error *err; /* owned: the reply's error */
};

static void on_notify(nono_client *c, const char *method, const char *params, int *fds,
		      size_t nfds, void *userdata)
{
	struct progress *p = userdata;

	(void)c;
	(void)fds;
	(void)nfds;
	if (p->bar && !p->done && strcmp(method, "snapshot.progress") == 0) {
		snapshot_print_progress(params);
		p->drawn = true;
	}
}

static void on_reply(nono_client *c, const char *result, const nono_error *err, int *fds,
		     size_t nfds, void *userdata)
{
	struct progress *p = userdata;

	(void)c;
	(void)fds;
	(void)nfds;
	p->done = true;
	/* Allocation failures leave both NULL: reported as out of memory. */
	if (err != NULL)
		p->err = nono_error_dup(err);
	else
		p->result = strdup(result);
}

/* Wait for the async reply, dispatching progress. 0, or a local error. */
static int progress_wait(struct nonoctl *ctl, struct progress *p)
{
	struct pollfd pfd = { .fd = nono_client_get_fd(ctl->client), .events = POLLIN };
	struct timespec start, now;
	int r, wait;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!p->done) {
		wait = -1;
		if (ctl->timeout_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			wait = ctl->timeout_ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
						       (now.tv_nsec - start.tv_nsec) / 1000000);
			if (wait <= 0)
				return -ETIMEDOUT;
		}
		if (nono_client_pending(ctl->client) == 0) {
			r = poll(&pfd, 1, wait);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				continue;
		}
		if (nono_client_dispatch(ctl->client) < 0 && !p->done)
			return -ECONNRESET; /* the reply callback has the error */
	}
	return 0;
}

/*
 * Call method with params (owned, consumed), drawing snapshot.progress on a
 * terminal when progress is set. On success *res owns the parsed result and
 * EXIT_OK is returned (with --json, the result is printed); otherwise the
 * exit code after printing why.
 */
static int snap_call(struct nonoctl *ctl, const char *what, const char *method,
		     struct json_object *params, bool progress, struct json_object **res)
{
	struct progress p = { .bar = progress && isatty(2) };
	int r;

	*res = NULL;
	if (!progress) { /* the plain call, plus the check that it is an object */
		r = nonoctl_call(ctl, what, method, params, res);
		if (r == EXIT_OK && !json_object_is_type(*res, json_type_object)) {
			out_warnx("%s: the daemon's reply is not a JSON object", what);
			r = EXIT_DAEMON_ERROR;
		}
		return r;
	}
	r = nonoctl_connect(ctl);
	if (r != EXIT_OK) {
		json_object_put(params);
		return r;
	}
	nono_client_set_notify_cb(ctl->client, on_notify, &p);
	r = nono_client_call_async(ctl->client, method,
				   json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN),
				   NULL, 0, on_reply, &p, &p.err);
	if (r == 0 && (r = progress_wait(ctl, &p)) == -ETIMEDOUT) {
		out_warnx("%s: no reply within %d s", what, ctl->timeout_ms / 1000);
		r = EXIT_UNAVAILABLE;
	}
	nono_client_set_notify_cb(ctl->client, NULL, NULL);
	if (p.drawn)
		fputs("\r\033[K", stderr);
	json_object_put(params);
	if (r == EXIT_UNAVAILABLE) {
		nono_error_free(p.err);
		free(p.result);
		return r;
	}
	if (p.err != NULL) {
		r = out_error(what, p.err);
		nono_error_free(p.err);
		free(p.result);
		return r;
	}
	if (p.result == NULL) {
		out_warnx("%s: %s", what, r < 0 ? "connection lost" : "out of memory");
		return r < 0 ? EXIT_UNAVAILABLE : EXIT_DAEMON_ERROR;
	}
	*res = json_tokener_parse(p.result);
	r = EXIT_OK;
	if (*res == NULL || !json_object_is_type(*res, json_type_object)) {
		out_warnx("%s: the daemon's reply is not a JSON object", what);
		r = EXIT_DAEMON_ERROR;
	} else if (ctl->json) {
		r = out_json_pretty(p.result);
	}
	free(p.result);
	return r;
}

/* ---- argument parsing ---- */

static int usage_help(void)
{
	printf("Usage: nonoctl [--json] snapshot create [--label L] [--exclude GLOB]... "
	       "[--allow-unreadable] [WORKSPACE]\n"
	       "       nonoctl [--json] snapshot list [WORKSPACE]\n"
	       "       nonoctl [--json] snapshot diff [--patch] FROM [TO]\n"
	       "       nonoctl [--json] snapshot restore ID [PATH]...\n"
	       "       nonoctl [--json] snapshot rm ID\n"
	       "       nonoctl [--json] snapshot verify\n"
	       "       nonoctl [--json] snapshot gc [--keep-last N] [--keep-within D]\n"
	       "%s\n"
	       "WORKSPACE defaults to the current directory. Without TO, diff compares\n"
	       "with the live workspace. diff --patch prints git-style unified diffs\n"
	       "(`git apply` or `patch -p1` in the workspace turns FROM into TO); with\n"
	       "--json each change gets a \"patch\" string. restore takes a safety\n"
	       "snapshot first and prints its id (restore that id to undo). Admins may\n"
	       "add --owner UID to act on another user's store. Durations: 30s, 15m,\n"
	       "12h, 7d, 4w.\n",
	       cmd_snapshot_entry.summary);
	return EXIT_OK;
}

/* "90d" etc. -> whole seconds, 1..GC_WITHIN_MAX. */
static int parse_within(const char *s, int64_t *sec)
{
	int64_t ms;
	int rc = util_parse_duration(s, GC_WITHIN_MAX * 1000, &ms);

	if (rc < 0)
		return rc;
	if (ms % 1000 != 0)
		return -EINVAL;
	*sec = ms / 1000;
	return 0;
}

static int parse_count(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct snap_opts *o)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "allow-unreadable", no_argument, NULL, 'U' },
		{ "patch", no_argument, NULL, 'p' },
		{ "owner", required_argument, NULL, 'o' },
		{ "keep-last", required_argument, NULL, 'k' },
		{ "keep-within", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_entry *cmd = &cmd_snapshot_entry;
	int ch;

	optind = 0; /* 0: glibc re-initializes, so options may follow operands */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "l:x:Upo:k:w:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			o->label = optarg;
			break;
		case 'x':
			if (optarg[0] == '\0')
				return out_usage(cmd, "--exclude needs a glob");
			if (o->excludes == NULL)
				o->excludes = json_object_new_array();
			json_object_array_add(o->excludes, json_object_new_string(optarg));
			break;
		case 'U':
			o->allow_unreadable = true;
			break;
		case 'p':
			o->patch = true;
			break;
		case 'o':
			if (parse_count(optarg, 0, 4294967294LL, &o->owner) < 0)
				return out_usage(cmd, "bad --owner '%s' (a uid)", optarg);
			break;
		case 'k':
			if (parse_count(optarg, 1, 1000000, &o->keep_last) < 0)
				return out_usage(cmd, "bad --keep-last '%s' (1..1000000)", optarg);
			break;
		case 'w':
			if (parse_within(optarg, &o->keep_within) < 0)
				return out_usage(cmd, "bad --keep-within '%s' (30s, 15m, 12h, 7d, 4w; "
						 "at most 100 years)", optarg);
			break;
		case 'h':
			return usage_help();
		default:
			return out_usage(cmd, "unknown option or missing argument '%s'",
					 argv[optind - 1]);
		}
	}
	return -1;
}

/* An absolute form of a workspace argument (NULL = cwd), resolved when it
 * exists so it matches what the daemon stored. Owned string or NULL. */
static char *workspace_path(const char *arg)
{
	char buf[PATH_MAX], *abs = NULL, *real;

	if (arg == NULL || arg[0] != '/') {
		if (getcwd(buf, sizeof(buf)) == NULL)
			return NULL;
		if (arg == NULL)
			return strdup(buf);
		if (asprintf(&abs, "%s/%s", buf, arg) < 0)
			return NULL;
	} else if ((abs = strdup(arg)) == NULL) {
		return NULL;
	}
	real = realpath(abs, NULL);
	if (real != NULL) {
		free(abs);
		return real;
	}
	return abs; /* the daemon names what is wrong with it */
}

/* Which options each subcommand takes (the rest are usage errors). */
static int check_opts(const char *sub, const struct snap_opts *o)
{
	bool create = strcmp(sub, "create") == 0, gc = strcmp(sub, "gc") == 0;
	const struct cmd_entry *cmd = &cmd_snapshot_entry;

	if (!create && (o->label != NULL || o->excludes != NULL || o->allow_unreadable))
		return out_usage(cmd, "--label, --exclude and --allow-unreadable are for create");
	if (create && o->owner >= 0)
		return out_usage(cmd, "create takes no --owner: a workspace's snapshots go to "
				 "its owner's store");
	if (!gc && (o->keep_last >= 0 || o->keep_within >= 0))
		return out_usage(cmd, "--keep-last and --keep-within are for gc");
	if (o->patch && strcmp(sub, "diff") != 0)
		return out_usage(cmd, "--patch is for diff");
	return -1;
}

/* ---- subcommands ---- */

static int snap_create(struct nonoctl *ctl, struct snap_opts *o, int nargs, char **args)
{
	struct json_object *params, *res = NULL, *s;
	char *ws;
	int r;

	if (nargs > 1)
		return out_usage(&cmd_snapshot_entry, "create takes at most one WORKSPACE");
	ws = workspace_path(nargs ? args[0] : NULL);
	if (ws == NULL) {
		out_warnx("snapshot create: cannot resolve the workspace: %s", strerror(errno));
		return EXIT_USAGE;
	}
	params = json_object_new_object();
	json_object_object_add(params, "workspace", json_object_new_string(ws));
	free(ws);
	if (o->label != NULL)
		json_object_object_add(params, "label", json_object_new_string(o->label));
	if (o->excludes != NULL) {
		json_object_object_add(params, "exclude", o->excludes);
		o->excludes = NULL;
	}
	if (o->allow_unreadable)
		json_object_object_add(params, "allow_unreadable", json_object_new_boolean(1));
	r = snap_call(ctl, "snapshot create", "snapshot.create", params, true, &res);
	if (r == EXIT_OK && !ctl->json) {
		if (json_object_object_get_ex(res, "snapshot", &s))
			snapshot_print_created(s);
	}
	json_object_put(res);
	return r;
}

static int snap_list(struct nonoctl *ctl, struct json_object *params, int nargs, char **args)
{
	struct json_object *res = NULL, *a;
	int r;

	if (nargs > 1) {
		json_object_put(params);
		return out_usage(&cmd_snapshot_entry, "list takes at most one WORKSPACE");
	}
	if (nargs == 1) {
		char *ws = workspace_path(args[0]);
		if (ws == NULL) {
			json_object_put(params);
			out_warnx("snapshot list: cannot resolve the workspace: %s", strerror(errno));
			return EXIT_USAGE;
		}
		json_object_object_add(params, "workspace", json_object_new_string(ws));
		free(ws);
	}
	r = snap_call(ctl, "snapshot list", "snapshot.list", params, false, &res);
	if (r == EXIT_OK && !ctl->json) {
		printf("%-12s  %-20s  %8s  %10s  %s\n", "ID", "CREATED", "FILES", "SIZE",
		       "WORKSPACE  LABEL");
		if (json_object_object_get_ex(res, "snapshots", &a) &&
		    json_object_is_type(a, json_type_array))
			for (size_t i = 0; i < json_object_array_length(a); i++)
				snapshot_print_row(json_object_array_get_idx(a, i));
	}
	json_object_put(res);
	return r;
}

static int snap_diff(struct nonoctl *ctl, struct json_object *params, const struct snap_opts *o,
		     int nargs, char **args)
{
	struct json_object *res = NULL;
	int r;

	if (nargs < 1 || nargs > 2) {
		json_object_put(params);
		return out_usage(&cmd_snapshot_entry, "diff takes FROM and optionally TO");
	}
	json_object_object_add(params, "from", json_object_new_string(args[0]));
	if (nargs == 2)
		json_object_object_add(params, "to", json_object_new_string(args[1]));
	if (o->patch) {
		/* With --json the result is printed once its patches are in. */
		bool json = ctl->json;

		if ((r = nonoctl_connect(ctl)) != EXIT_OK) {
			json_object_put(params);
			return r;
		}
		if (!nono_client_has_feature(ctl->client, "snapshot-read")) {
			json_object_put(params);
			out_warnx("snapshot diff: --patch needs a nonod that offers snapshot.read");
			return EXIT_DAEMON_ERROR;
		}
		ctl->json = false;
		r = snap_call(ctl, "snapshot diff", "snapshot.diff", params, true, &res);
		ctl->json = json;
		if (r == EXIT_OK)
			r = snapshot_patch(ctl, res, args[0], nargs == 2 ? args[1] : NULL, o->owner);
		json_object_put(res);
		return r;
	}
	r = snap_call(ctl, "snapshot diff", "snapshot.diff", params, true, &res);
	if (r == EXIT_OK && !ctl->json)
		snapshot_print_changes(res);
	json_object_put(res);
	return r;
}

static int snap_restore(struct nonoctl *ctl, struct json_object *params, int nargs, char **args)
{
	struct json_object *res = NULL, *paths, *safety;
	int r;

	if (nargs < 1) {
		json_object_put(params);
		return out_usage(&cmd_snapshot_entry, "restore needs a snapshot ID");
	}
	json_object_object_add(params, "snapshot", json_object_new_string(args[0]));
	if (nargs > 1) {
		paths = json_object_new_array();
		for (int i = 1; i < nargs; i++)
			json_object_array_add(paths, json_object_new_string(args[i]));
		json_object_object_add(params, "paths", paths);
	}
	r = snap_call(ctl, "snapshot restore", "snapshot.restore", params, true, &res);
	if (r == EXIT_OK && !ctl->json) {
		snapshot_print_changes(res);
		if (json_object_object_get_ex(res, "safety_snapshot", &safety))
			printf("safety snapshot %s (undo: nonoctl snapshot restore %s)\n",
			       snapshot_id(safety), snapshot_id(safety));
	}
	json_object_put(res);
	return r;
}

static int snap_id_only(struct nonoctl *ctl, struct json_object *params, int nargs, char **args)
{
	struct json_object *res = NULL;
	int r;

	if (nargs != 1) {
		json_object_put(params);
		return out_usage(&cmd_snapshot_entry, "rm takes one snapshot ID");
	}
	json_object_object_add(params, "snapshot", json_object_new_string(args[0]));
	r = snap_call(ctl, "snapshot rm", "snapshot.delete", params, false, &res);
	if (r == EXIT_OK && !ctl->json)
		printf("snapshot %s removed (its data goes at the next gc)\n", args[0]);
	json_object_put(res);
	return r;
}

static int snap_verify(struct nonoctl *ctl, struct json_object *params)
{
	struct json_object *res = NULL, *ok;
	int64_t v[6] = { 0 };
	static const char *const keys[] = { "snapshots", "objects", "bytes", "missing", "corrupt",
					    "unreferenced" };
	char size[32];
	bool healthy;
	int r;

	r = snap_call(ctl, "snapshot verify", "snapshot.verify", params, false, &res);
	if (r != EXIT_OK) {
		json_object_put(res);
		return r;
	}
	for (size_t i = 0; i < 6; i++)
		util_json_int(res, keys[i], &v[i]);
	/* Fail closed: "ok" and the counts must agree. */
	healthy = json_object_object_get_ex(res, "ok", &ok) &&
		  json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok) &&
		  v[3] == 0 && v[4] == 0;
	if (!ctl->json) {
		snapshot_human_bytes(size, sizeof(size), v[2]);
		printf("%" PRId64 " snapshots, %" PRId64 " objects (%s) checked: %" PRId64
		       " missing, %" PRId64 " corrupt, %" PRId64 " unreferenced\n",
		       v[0], v[1], size, v[3], v[4], v[5]);
	}
	if (!healthy)
		out_warnx("snapshot verify: the store is damaged (%" PRId64 " missing, %" PRId64
			  " corrupt objects)", v[3], v[4]);
	json_object_put(res);
	return healthy ? EXIT_OK : EXIT_DAEMON_ERROR;
}

static int snap_gc(struct nonoctl *ctl, struct json_object *params, const struct snap_opts *o)
{
	struct json_object *res = NULL;
	int64_t sd = 0, od = 0, bf = 0;
	char size[32];
	int r;

	if (o->keep_last >= 0)
		json_object_object_add(params, "keep_last", json_object_new_int64(o->keep_last));
	if (o->keep_within >= 0)
		json_object_object_add(params, "keep_within", json_object_new_int64(o->keep_within));
	r = snap_call(ctl, "snapshot gc", "snapshot.gc", params, false, &res);
	if (r == EXIT_OK && !ctl->json) {
		util_json_int(res, "snapshots_deleted", &sd);
		util_json_int(res, "objects_deleted", &od);
		util_json_int(res, "bytes_freed", &bf);
		snapshot_human_bytes(size, sizeof(size), bf);
		printf("%" PRId64 " snapshots and %" PRId64 " objects deleted, %s freed\n", sd, od,
		       size);
	}
	json_object_put(res);
	return r;
}

static int cmd_snapshot_exec(struct nonoctl *ctl, int argc, char **argv)
{
	struct snap_opts o = { .owner = -1, .keep_last = -1, .keep_within = -1 };
	struct json_object *params;
	const char *sub;
	char **args;
	int r, nargs;

	r = parse_opts(argc, argv, &o);
	if (r < 0 && optind >= argc)
		r = out_usage(&cmd_snapshot_entry, "no subcommand given");
	if (r >= 0) {
		json_object_put(o.excludes);
		return r;
	}
	sub = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;
	r = check_opts(sub, &o);
	if (r < 0 && strcmp(sub, "create") == 0)
		r = snap_create(ctl, &o, nargs, args);
	json_object_put(o.excludes); /* NULL when create took it */
	if (r >= 0)
		return r;
	params = json_object_new_object();
	if (o.owner >= 0)
		json_object_object_add(params, "owner", json_object_new_int64(o.owner));
	if (strcmp(sub, "list") == 0)
		return snap_list(ctl, params, nargs, args);
	if (strcmp(sub, "diff") == 0)
		return snap_diff(ctl, params, &o, nargs, args);
	if (strcmp(sub, "restore") == 0)
		return snap_restore(ctl, params, nargs, args);
	if (strcmp(sub, "rm") == 0 || strcmp(sub, "delete") == 0)
		return snap_id_only(ctl, params, nargs, args);
	if ((strcmp(sub, "verify") == 0 || strcmp(sub, "gc") == 0) && nargs > 0) {
		json_object_put(params);
		return out_usage(&cmd_snapshot_entry, "unexpected argument '%s'", args[0]);
	}
	if (strcmp(sub, "verify") == 0)
		return snap_verify(ctl, params);
	if (strcmp(sub, "gc") == 0)
		return snap_gc(ctl, params, &o);
	json_object_put(params);
	return out_usage(&cmd_snapshot_entry, "unknown subcommand '%s'", sub);
}
