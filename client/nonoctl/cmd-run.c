/*
 * nonoctl run: run a command in a nonod session as a drop-in prefix, like
 * env(1) or timeout(1). The worker gets our own stdin/stdout/stderr (stdio
 * mode "fds"), our signals are forwarded to it, and we exit with its
 * status (128+N for signal N), or 125/126/127 for nono's own failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <json-c/json.h>

#include "nonoctl.h"
#include "run-policy.h"

extern char **environ;

static int cmd_run_exec(struct nonoctl *ctl, int argc, char **argv);

const struct cmd_entry cmd_run_entry = {
	.name = "run",
	.args = "[--policy FILE] [--allow-read P] [--allow-write P] [--allow-host H:PORT] "
		"[--inject HOST:HEADER=TEMPLATE] [--workspace DIR] [--timeout D] [--label K=V] "
		"[--snapshot] [--verify-signature] -- CMD [ARGS...]",
	.summary = "Run a command in a sandboxed session; exit with its status.",
	.exec = cmd_run_exec,
};

/* Forwarded to the session; blocked and read from a signalfd. */
static const int run_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

#define RUN_MAX_FLAGS 256

struct run {
	struct run_policy_args pol;
	const char *workspace;
	int64_t timeout_ms;
	struct json_object *labels;
	bool verify_signature;
	char **cmd;
	/* while waiting */
	char id[64];
	int exit_code;             /* -1 until session.exited arrives */
};

static void run_help(void)
{
	printf("Usage: nonoctl [--socket PATH] run [OPTIONS] -- CMD [ARGS...]\n"
	       "%s\n\n"
	       "Options:\n"
	       "  -p, --policy FILE        policy (JSON or YAML); default: read+write\n"
	       "                           $WORKSPACE and $TMPDIR on top of the base profile\n"
	       "  -r, --allow-read PATH    also allow reading PATH (repeatable)\n"
	       "  -w, --allow-write PATH   also allow writing PATH (repeatable)\n"
	       "  -H, --allow-host H:PORT  allow HTTPS/TCP to H:PORT through the proxy\n"
	       "  -i, --inject HOST:HEADER=TEMPLATE  inject a header, e.g.\n"
	       "                           api.x.com:Authorization='Bearer ${secret:x}'\n"
	       "  -W, --workspace DIR      the session's $WORKSPACE (default: cwd)\n"
	       "  -T, --timeout D          kill the session after D (30s, 5m, 2h)\n"
	       "  -l, --label K=V          attach a label (repeatable)\n"
	       "      --snapshot           snapshot the workspace before and after the run\n"
	       "      --verify-signature   require a valid policy signature\n"
	       "\nExit status: the command's; 128+N if killed by signal N; 125 nono\n"
	       "failed; 126 not executable; 127 not found.\n", cmd_run_entry.summary);
}

static int add_flag(const char ***list, size_t *n, const char *v)
{
	const char **l;

	if (*n >= RUN_MAX_FLAGS)
		return -1;
	l = realloc(*list, (*n + 1) * sizeof(*l));
	if (l == NULL)
		return -1;
	l[(*n)++] = v;
	*list = l;
	return 0;
}

static int add_label(struct run *r, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char *k;

	if (eq == NULL || eq == kv)
		return -1;
	if (r->labels == NULL)
		r->labels = json_object_new_object();
	k = strndup(kv, (size_t)(eq - kv));
	if (k == NULL)
		return -1;
	json_object_object_add(r->labels, k, json_object_new_string(eq + 1));
	free(k);
	return 0;
}

/* <0 = go on; else the exit code (usage errors: 2). */
static int run_parse(struct run *r, int argc, char **argv)
{
	enum { OPT_SNAPSHOT = 1000, OPT_VERIFY };
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "allow-read", required_argument, NULL, 'r' },
		{ "allow-write", required_argument, NULL, 'w' },
		{ "allow-host", required_argument, NULL, 'H' },
		{ "inject", required_argument, NULL, 'i' },
		{ "workspace", required_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "label", required_argument, NULL, 'l' },
		{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
		{ "verify-signature", no_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_policy_args *p = &r->pol;
	int ch, bad = 0;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+p:r:w:H:i:W:T:l:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			p->file = optarg;
			break;
		case 'r':
			bad = add_flag(&p->read, &p->nread, optarg);
			break;
		case 'w':
			bad = add_flag(&p->write, &p->nwrite, optarg);
			break;
		case 'H':
			bad = add_flag(&p->hosts, &p->nhosts, optarg);
			break;
		case 'i':
			bad = add_flag(&p->inject, &p->ninject, optarg);
			break;
		case 'W':
			r->workspace = optarg;
			break;
		case 'T':
			if (util_parse_duration(optarg, UTIL_TIMEOUT_MAX_MS, &r->timeout_ms) < 0)
				return out_usage(&cmd_run_entry, "bad --timeout '%s' (30s, 5m, 2h)", optarg);
			break;
		case 'l':
			if (add_label(r, optarg) < 0)
				return out_usage(&cmd_run_entry, "--label needs K=V, not '%s'", optarg);
			break;
		case OPT_SNAPSHOT:
			p->snapshot = true;
			break;
		case OPT_VERIFY:
			r->verify_signature = true;
			break;
		case 'h':
			run_help();
			return EXIT_OK;
		default:
			if (optopt != 0 && strchr("prwHiWTl", optopt) != NULL)
				return out_usage(&cmd_run_entry, "option '%s' needs an argument",
						 argv[optind - 1]);
			return out_usage(&cmd_run_entry, "unknown option '%s'", argv[optind - 1]);
		}
		if (bad < 0)
			return out_usage(&cmd_run_entry, "too many options");
	}
	if (optind >= argc)
		return out_usage(&cmd_run_entry, "no command given");
	r->cmd = argv + optind;
	return -1;
}

/* Features the daemon must advertise for the options asked for. */
static int run_check_features(struct nonoctl *ctl, const struct run *r)
{
	if (r->pol.snapshot && !nono_client_has_feature(ctl->client, "session-snapshots")) {
		out_warnx("run: --snapshot is not supported by this nonod yet");
		return EXIT_RUN_FAILED;
	}
	if (r->verify_signature && !nono_client_has_feature(ctl->client, "trust")) {
		out_warnx("run: --verify-signature is not supported by this nonod yet");
		return EXIT_RUN_FAILED;
	}
	return EXIT_OK;
}

/* --snapshot: say how to undo the run (the daemon took the snapshot). */
static void run_print_snapshot(struct json_object *session, const char *when)
{
	struct json_object *snaps, *id;

	if (!json_object_object_get_ex(session, "snapshots", &snaps) ||
	    !json_object_object_get_ex(snaps, when, &id) || id == NULL)
		return;
	if (strcmp(when, "start") == 0)
		fprintf(stderr, "nonoctl: snapshot %s taken; undo the run with: "
			"nonoctl snapshot restore %s\n", json_object_get_string(id),
			json_object_get_string(id));
	else
		fprintf(stderr, "nonoctl: snapshot %s taken at exit; see the run's changes with: "
			"nonoctl snapshot diff %s %s\n", json_object_get_string(id),
			util_json_str(snaps, "start") ? util_json_str(snaps, "start") : "START",
			json_object_get_string(id));
}

/* session.create params; NULL on allocation failure. */
static char *run_params(const struct run *r, struct json_object *policy)
{
	struct json_object *o = json_object_new_object(), *a, *stdio, *fds;
	char cwd[PATH_MAX];
	char *text;

	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		out_warnx("run: cannot get the current directory: %s", strerror(errno));
		json_object_put(o);
		json_object_put(policy);
		return NULL;
	}
	a = json_object_new_array();
	for (char **c = r->cmd; *c != NULL; c++)
		json_object_array_add(a, json_object_new_string(*c));
	json_object_object_add(o, "argv", a);
	json_object_object_add(o, "policy", policy);
	json_object_object_add(o, "cwd", json_object_new_string(cwd));
	json_object_object_add(o, "workspace", json_object_new_string(r->workspace ? r->workspace : cwd));
	a = json_object_new_array();
	for (char **e = environ; e != NULL && *e != NULL; e++)
		json_object_array_add(a, json_object_new_string(*e));
	json_object_object_add(o, "environ", a);
	stdio = json_object_new_object();
	json_object_object_add(stdio, "mode", json_object_new_string("fds"));
	fds = json_object_new_array();
	for (int i = 0; i < 3; i++)
		json_object_array_add(fds, json_object_new_int(i));
	json_object_object_add(stdio, "fds", fds);
	json_object_object_add(o, "stdio", stdio);
	if (r->labels != NULL)
		json_object_object_add(o, "labels", json_object_get(r->labels));
	if (r->timeout_ms > 0)
		json_object_object_add(o, "timeout_ms", json_object_new_int64(r->timeout_ms));
	if (r->verify_signature)
		json_object_object_add(o, "verify_signature", json_object_new_boolean(1));
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static void run_on_notify(nono_client *c, const char *method, const char *params,
			  int *fds, size_t nfds, void *ud)
{
	struct run *r = ud;
	struct json_object *o;
	const char *id;

	(void)c, (void)fds, (void)nfds;
	if (strcmp(method, "session.exited") != 0)
		return;
	o = json_tokener_parse(params);
	id = util_json_str(o, "id");
	if (id != NULL && strcmp(id, r->id) == 0) {
		r->exit_code = util_session_exit_code(o);
		if (r->exit_code < 0)
			r->exit_code = EXIT_RUN_FAILED;
		run_print_snapshot(o, "exit");
	}
	json_object_put(o);
}

/* 0, or the exit code when the connection failed. */
static int run_forward(struct nonoctl *ctl, struct run *r, int signo)
{
	nono_error *err = NULL;
	char params[128];

	snprintf(params, sizeof(params), "{\"id\":\"%s\",\"signal\":%d}", r->id, signo);
	if (nono_client_call(ctl->client, "session.signal", params, NULL, &err) == 0)
		return 0;
	/* The session may have just ended: its exited note is queued. */
	if (nono_error_is_remote(err)) {
		nono_error_free(err);
		return 0;
	}
	out_error("run: forwarding a signal", err);
	nono_error_free(err);
	return EXIT_RUN_FAILED;
}

/* Forward signals until session.exited; returns the exit code. */
static int run_wait(struct nonoctl *ctl, struct run *r, int sfd)
{
	struct pollfd pfd[2] = {
		{ .fd = nono_client_get_fd(ctl->client), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	int rc;

	nono_client_set_timeout(ctl->client, -1); /* --timeout is for replies, not the worker */
	nono_client_set_notify_cb(ctl->client, run_on_notify, r);
	while (r->exit_code < 0) {
		if (nono_client_pending(ctl->client) == 0 &&
		    poll(pfd, 2, -1) < 0 && errno != EINTR) {
			out_warnx("run: poll: %s", strerror(errno));
			return EXIT_RUN_FAILED;
		}
		if (pfd[1].revents & POLLIN) {
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if ((rc = run_forward(ctl, r, (int)si.ssi_signo)) != 0)
					return rc;
		}
		rc = nono_client_dispatch(ctl->client);
		if (rc < 0) {
			out_warnx("run: lost the connection to nonod; session %s may still be running",
				  r->id);
			return EXIT_RUN_FAILED;
		}
	}
	return r->exit_code;
}

/* Our stdio as the worker's; a closed one is replaced by /dev/null. */
static int run_stdio(int fds[3])
{
	for (int i = 0; i < 3; i++) {
		fds[i] = i;
		if (fcntl(i, F_GETFD) < 0) {
			fds[i] = open("/dev/null", i == 0 ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CLOEXEC);
			if (fds[i] < 0)
				return -1;
		}
	}
	return 0;
}

static int run_session(struct nonoctl *ctl, struct run *r, struct json_object *policy)
{
	nono_error *err = NULL;
	struct json_object *res;
	char *params, *result = NULL;
	sigset_t set;
	int fds[3], sfd, rc;

	params = run_params(r, policy);
	if (params == NULL)
		return EXIT_RUN_FAILED;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(run_signals) / sizeof(run_signals[0]); i++)
		sigaddset(&set, run_signals[i]);
	/* Blocked from here: a signal during session.create is forwarded
	 * once the session exists instead of killing us halfway. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		out_warnx("run: signalfd: %s", strerror(errno));
		free(params);
		return EXIT_RUN_FAILED;
	}
	if (run_stdio(fds) < 0) {
		out_warnx("run: /dev/null: %s", strerror(errno));
		free(params);
		close(sfd);
		return EXIT_RUN_FAILED;
	}
	rc = nono_client_call_fds(ctl->client, "session.create", params, fds, 3, &result,
				  NULL, NULL, &err);
	free(params);
	for (int i = 0; i < 3; i++)
		if (fds[i] != i)
			close(fds[i]);
	if (rc < 0) {
		rc = util_run_error("run", err);
		nono_error_free(err);
		close(sfd);
		return rc;
	}
	res = json_tokener_parse(result);
	free(result);
	if (util_json_str(res, "id") == NULL ||
	    strlen(util_json_str(res, "id")) >= sizeof(r->id)) {
		out_warnx("run: session.create returned no session id");
		json_object_put(res);
		close(sfd);
		return EXIT_RUN_FAILED;
	}
	snprintf(r->id, sizeof(r->id), "%s", util_json_str(res, "id"));
	run_print_snapshot(res, "start");
	json_object_put(res);
	r->exit_code = -1;
	rc = run_wait(ctl, r, sfd);
	close(sfd);
	return rc;
}

static int cmd_run_exec(struct nonoctl *ctl, int argc, char **argv)
{
	struct run r = { .exit_code = -1 };
	struct json_object *policy = NULL;
	int rc;

	rc = run_parse(&r, argc, argv);
	if (rc >= 0)
		goto out;
	rc = EXIT_RUN_FAILED;
	if (run_policy_build(&r.pol, &policy) < 0)
		goto out;
	/* Unreachable daemon is nono's failure here: 125, like env(1). */
	if (nonoctl_connect(ctl) != EXIT_OK)
		goto out;
	rc = run_check_features(ctl, &r);
	if (rc != EXIT_OK)
		goto out;
	rc = run_session(ctl, &r, policy);
	policy = NULL; /* run_session took it */
out:
	json_object_put(policy);
	json_object_put(r.labels);
	free(r.pol.read);
	free(r.pol.write);
	free(r.pol.hosts);
	free(r.pol.inject);
	return rc;
}
