/* session.* methods: create, list, get, wait, signal, kill, output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "fdrelease.h"
#include "log.h"
#include "methods.h"
#include "policy.h"
#include "session-snapshot.h"
#include "snap.h"
#include "session-spawn.h"
#include "session.h"
#include "userfile.h"

#define SESSION_MAX_ARGV 4096
#define SESSION_MAX_ENV 4096
#define SESSION_MAX_LABELS 32

/* Without a policy: the base profile plus the workspace and TMPDIR. */
static const char default_policy[] =
	"{\"version\":1,\"filesystem\":{\"read\":[\"$WORKSPACE\",\"$TMPDIR\"],"
	"\"write\":[\"$WORKSPACE\",\"$TMPDIR\"]}}";

static const struct param_spec stdio_spec[] = {
	{ .name = "mode", .type = PARAM_STRING, .required = true, .max = 8,
	  .doc = "null, fds, pipe or pty" },
	{ .name = "fds", .type = PARAM_INT_ARRAY, .max = 3,
	  .doc = "mode fds: indexes of the three passed fds for stdin, stdout, stderr" },
	{ NULL },
};

static const struct param_spec create_params[] = {
	{ .name = "argv", .type = PARAM_STRING_ARRAY, .required = true, .max = SESSION_MAX_ARGV,
	  .doc = "program and arguments; argv[0] is looked up in the worker's PATH" },
	{ .name = "policy", .type = PARAM_ANY, .doc = "policy as an object, or JSON/YAML text" },
	{ .name = "policy_file", .type = PARAM_STRING, .max = 4096,
	  .doc = "path of a policy file, read with the caller's rights" },
	{ .name = "workspace", .type = PARAM_STRING, .max = 4096,
	  .doc = "absolute path bound to $WORKSPACE (default: cwd)" },
	{ .name = "cwd", .type = PARAM_STRING, .max = 4096,
	  .doc = "absolute working directory (default: workspace)" },
	{ .name = "environ", .type = PARAM_STRING_ARRAY, .max = SESSION_MAX_ENV,
	  .doc = "the caller's environment (NAME=value); the policy picks what passes" },
	{ .name = "stdio", .type = PARAM_OBJECT, .sub = stdio_spec, .doc = "stdio mode (default null)" },
	{ .name = "labels", .type = PARAM_OBJECT, .doc = "string labels for the caller's bookkeeping" },
	{ .name = "timeout_ms", .type = PARAM_INT, .min = 1, .max = 31LL * 24 * 3600 * 1000,
	  .doc = "wall-clock limit; the tree is killed when it passes" },
	{ NULL },
};

static const struct param_spec id_params[] = {
	{ .name = "id", .type = PARAM_STRING, .required = true, .max = 64, .doc = "session id" },
	{ NULL },
};

static const struct param_spec wait_params[] = {
	{ .name = "id", .type = PARAM_STRING, .required = true, .max = 64, .doc = "session id" },
	{ .name = "timeout_ms", .type = PARAM_INT, .min = -1, .max = 31LL * 24 * 3600 * 1000,
	  .doc = "give up after this long (-1 or absent: wait until it ends)" },
	{ NULL },
};

static const struct param_spec signal_params[] = {
	{ .name = "id", .type = PARAM_STRING, .required = true, .max = 64, .doc = "session id" },
	{ .name = "signal", .type = PARAM_ANY, .required = true,
	  .doc = "signal number or name (\"TERM\", \"SIGINT\")" },
	{ NULL },
};

static const struct param_spec list_params[] = {
	{ .name = "all_users", .type = PARAM_BOOL, .doc = "admins: every user's sessions" },
	{ .name = "history", .type = PARAM_BOOL, .doc = "include ended sessions from the history" },
	{ .name = "limit", .type = PARAM_INT, .min = 1, .max = 10000, .doc = "history rows (default 100)" },
	{ NULL },
};

/* A policy error in protocol terms, naming where. */
static int policy_error(const struct policy_error *perr, struct rpc_error *err)
{
	char where[300] = "policy";

	if (perr->path[0] != '\0')
		snprintf(where, sizeof(where), "policy.%s", perr->path);
	if (perr->line > 0)
		return rpc_error_set(err, NONO_E_POLICY_INVALID, where, "line %d column %d: %s",
				     perr->line, perr->column, perr->message);
	return rpc_error_set(err, NONO_E_POLICY_INVALID, where, "%s", perr->message);
}

/* Parse policy text (JSON or YAML). */
static int policy_from_text(const char *text, size_t len, struct policy **out,
			    struct rpc_error *err)
{
	struct policy_error perr;

	memset(&perr, 0, sizeof(perr));
	return policy_parse(text, len, out, &perr) == 0 ? 0 : policy_error(&perr, err);
}

/* The inline policy, or the default one (a policy_file is read apart). */
static int load_policy(struct rpc_call *call, struct policy **out, struct rpc_error *err)
{
	struct json_object *pj = params_get(call->params, "policy");
	struct policy_error perr;

	memset(&perr, 0, sizeof(perr));
	if (pj == NULL)
		return policy_from_text(default_policy, sizeof(default_policy) - 1, out, err);
	if (json_object_is_type(pj, json_type_string))
		return policy_from_text(json_object_get_string(pj),
					(size_t)json_object_get_string_len(pj), out, err);
	if (!json_object_is_type(pj, json_type_object))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "policy",
				     "policy must be an object or JSON/YAML text");
	return policy_from_json(pj, out, &perr) == 0 ? 0 : policy_error(&perr, err);
}

static int check_dir(const char *field, const char *path, struct rpc_error *err)
{
	if (path[0] != '/')
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, field, "must be an absolute path");
	return 0;
}

static char **strv_from_json(struct json_object *a)
{
	size_t n = json_object_array_length(a);
	char **v = calloc(n + 1, sizeof(*v));

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((v[i] = strdup(json_object_get_string(json_object_array_get_idx(a, i)))) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	return v;
}

static void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

static int check_labels(struct json_object *labels, struct rpc_error *err)
{
	int n = 0;

	json_object_object_foreach(labels, k, v) {
		if (++n > SESSION_MAX_LABELS)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "labels", "at most %d labels",
					     SESSION_MAX_LABELS);
		if (strlen(k) == 0 || strlen(k) > 64 || !json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) > 256)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "labels",
					     "labels are string keys (1..64 bytes) with string values "
					     "(up to 256 bytes)");
	}
	return 0;
}

/* A nonod connection handed to a worker would let it drive the daemon. */
static bool fd_is_nonod_connection(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	/* No fstat: on a FUSE file that is a request its server may never answer. */
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == getpid();
}

static int take_stdio(struct rpc_call *call, struct spawn_request *r, struct rpc_error *err)
{
	struct json_object *stdio = params_get(call->params, "stdio"), *fds;
	const char *mode = stdio != NULL ? params_str(stdio, "mode", "null") : "null";

	if (strcmp(mode, "null") == 0)
		r->stdio = SESSION_STDIO_NULL;
	else if (strcmp(mode, "pipe") == 0)
		r->stdio = SESSION_STDIO_PIPE;
	else if (strcmp(mode, "pty") == 0)
		r->stdio = SESSION_STDIO_PTY;
	else if (strcmp(mode, "fds") == 0)
		r->stdio = SESSION_STDIO_FDS;
	else
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "stdio.mode",
				     "'%s' is not one of null, fds, pipe, pty", mode);
	fds = stdio != NULL ? params_get(stdio, "fds") : NULL;
	if (r->stdio != SESSION_STDIO_FDS) {
		if (fds != NULL)
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "stdio.fds",
					     "fds go with mode fds only");
		return 0;
	}
	if (fds == NULL || json_object_array_length(fds) != 3)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "stdio.fds",
				     "mode fds needs three fd indexes: stdin, stdout, stderr");
	for (int i = 0; i < 3; i++) {
		int64_t idx = json_object_get_int64(json_object_array_get_idx(fds, (size_t)i));
		int fd;

		/* The same passed fd may serve several streams (a terminal). */
		for (int j = 0; j < i; j++)
			if (json_object_get_int64(json_object_array_get_idx(fds, (size_t)j)) == idx) {
				r->fds[i] = fcntl(r->fds[j], F_DUPFD_CLOEXEC, 3);
				break;
			}
		if (r->fds[i] >= 0)
			continue;
		fd = rpc_call_take_fd(call, idx, err);
		if (fd < 0)
			return err->code;
		r->fds[i] = fd;
		if (fd_is_nonod_connection(fd))
			return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "stdio.fds",
					     "a connection to nonod cannot be given to a session");
	}
	return 0;
}

/* Spawn; reply (taken) gets the answer either way. */
static int spawn_answering(struct spawn_request *r, struct conn *conn, struct rpc_deferred *reply)
{
	struct rpc_error err;

	if (reply == NULL) {
		spawn_request_release(r);
		return NONO_E_INTERNAL;
	}
	memset(&err, 0, sizeof(err));
	if (session_spawn(r, conn, reply, &err) < 0)
		rpc_reply_error(reply, &err);
	return RPC_DEFERRED;
}

/* A session.create waiting for its baseline snapshot. */
struct create_pending {
	struct spawn_request r;   /* owns policy and environ here */
	struct conn *conn;
	struct rpc_deferred *reply;
};

static void create_pending_free(struct create_pending *cp)
{
	spawn_request_release(&cp->r);
	strv_free(cp->r.environ);
	policy_free(cp->r.policy);
	json_object_put(cp->r.labels);
	conn_unref(cp->conn);
	free(cp);
}

static void create_on_baseline(int e, const char *detail, void *arg)
{
	struct create_pending *cp = arg;
	struct rpc_error err;

	if (e < 0) {
		/* Fail closed: the policy asked for a way back before the run. */
		rpc_error_set(&err, e == -EBUSY || e == -ELOOP || e == -EAGAIN ? NONO_E_BUSY :
			      e == -ENOENT || e == -ENOTDIR ? NONO_E_POLICY_INVALID :
			      e == -EACCES || e == -EPERM ? NONO_E_PERMISSION_DENIED : NONO_E_INTERNAL,
			      "policy.snapshot", "the baseline snapshot failed, so the session was not "
			      "started: %s", detail);
		rpc_reply_error(cp->reply, &err);
	} else if (nonod->stopping) {
		rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
		rpc_reply_error(cp->reply, &err);
	} else if (conn_is_dead(cp->conn)) {
		/* Nobody would learn the session's id: the request was abandoned. */
		log_info("session.create abandoned by its client during the baseline snapshot");
		rpc_reply_error(cp->reply, &(struct rpc_error){ .code = NONO_E_INTERNAL });
	} else {
		spawn_answering(&cp->r, cp->conn, cp->reply);
	}
	create_pending_free(cp);
	session_gc();
}

/* Take the baseline snapshot, then spawn. Takes the request, *policy and
 * reply (NULL: the call is deferred here). */
static int create_after_snapshot(struct spawn_request *r, struct policy **policy,
				 struct rpc_call *call, struct rpc_deferred *reply,
				 struct rpc_error *err)
{
	struct create_pending *cp = calloc(1, sizeof(*cp));
	int rc;

	if (cp == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	cp->r = *r;
	cp->r.policy = *policy;
	cp->r.labels = json_object_get(r->labels);
	*policy = NULL;
	/* The request's members are the pending one's now. */
	memset(r, 0, sizeof(*r));
	r->fds[0] = r->fds[1] = r->fds[2] = -1;
	cp->reply = reply != NULL ? reply : rpc_call_defer(call);
	if (cp->reply == NULL) {
		create_pending_free(cp);
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	}
	cp->conn = conn_ref(call->conn);
	rc = session_snap_take(cp->r.snap, true, cp->r.argv[0], create_on_baseline, cp);
	if (rc < 0) {
		rpc_error_set(err, rc == -E2BIG ? NONO_E_LIMIT_EXCEEDED : NONO_E_INTERNAL,
			      "policy.snapshot", "cannot start the baseline snapshot: %s",
			      snap_job_strerror(rc));
		rpc_reply_error(cp->reply, err);
		create_pending_free(cp);
	}
	return RPC_DEFERRED;
}

/*
 * session.create once its policy is known (takes policy). reply: the
 * deferred answer when the call was deferred already, else NULL. Returns
 * RPC_DEFERRED (the answer is on its way) or an error code with err set.
 */
static int create_with_policy(struct rpc_call *call, struct rpc_deferred *reply,
			      struct policy *policy, struct rpc_error *err)
{
	struct spawn_request r = { .fds = { -1, -1, -1 } };
	struct json_object *argv = params_get(call->params, "argv");
	struct json_object *env = params_get(call->params, "environ");
	const char *ws = params_str(call->params, "workspace", NULL);
	const char *cwd = params_str(call->params, "cwd", NULL);
	int rc;

	r.uid = call->peer->uid;
	r.gid = call->peer->gid;
	r.policy = policy;
	r.labels = params_get(call->params, "labels");
	r.wall_ms = (uint64_t)params_int(call->params, "timeout_ms", 0);
	r.argv = strv_from_json(argv);
	r.environ = env != NULL ? strv_from_json(env) : NULL;
	r.workspace = strdup(ws != NULL ? ws : cwd);
	r.cwd = strdup(cwd != NULL ? cwd : ws);
	if (r.argv == NULL || r.workspace == NULL || r.cwd == NULL || (env != NULL && r.environ == NULL)) {
		rc = rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
		goto out;
	}
	if ((rc = take_stdio(call, &r, err)) < 0 ||
	    (rc = session_snap_prepare(policy, r.uid, r.gid, r.workspace, &r.snap, err)) < 0)
		goto out;
	if (session_snap_wants(r.snap, true)) {
		rc = create_after_snapshot(&r, &policy, call, reply, err);
		goto out;
	}
	rc = spawn_answering(&r, call->conn, reply != NULL ? reply : rpc_call_defer(call));
out:
	spawn_request_release(&r);
	strv_free(r.environ);
	policy_free(policy);
	session_gc();
	return rc;
}

/* A session.create whose policy_file is being read (userfile.h). */
struct create_reading {
	uid_t uid;                    /* the client's: its fds are closed as its */
	struct conn *conn;            /* referenced */
	struct rpc_deferred *reply;
	struct json_object *params;   /* referenced */
	int *fds;                     /* the call's passed fds, taken */
	size_t nfds;
	char path[];
};

/* Everything but the reply, which is answered by then. */
static void create_reading_free(struct create_reading *cr)
{
	fd_release_all(cr->uid, cr->fds, cr->nfds);
	free(cr->fds);
	json_object_put(cr->params);
	conn_unref(cr->conn);
	free(cr);
}

static void create_on_policy_file(int e, char *text, size_t len, void *arg)
{
	struct create_reading *cr = arg;
	struct rpc_call call = { .conn = cr->conn, .peer = rpc_deferred_peer(cr->reply),
				 .params = cr->params, .fds = cr->fds, .nfds = cr->nfds };
	struct policy *policy = NULL;
	struct rpc_error err;
	int rc;

	memset(&err, 0, sizeof(err));
	if (e < 0)
		rc = rpc_error_set(&err, NONO_E_INVALID_PARAMS, "policy_file", "%s: %s", cr->path,
				   e == -EINVAL ? "not a regular file" :
				   e == -EFBIG ? "more than 1 MiB" : strerror(-e));
	else if (nonod->stopping)
		rc = rpc_error_set(&err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
	else if ((rc = policy_from_text(text, len, &policy, &err)) == 0)
		rc = create_with_policy(&call, cr->reply, policy, &err);
	if (rc != RPC_DEFERRED)
		rpc_reply_error(cr->reply, &err);
	free(text);
	create_reading_free(cr);
}

/* Read the policy file with the caller's rights off the loop (the path
 * may be on their FUSE mount), then go on with the create. */
static int create_read_policy_file(struct rpc_call *call, const char *file,
				   struct rpc_error *err)
{
	size_t plen = strlen(file) + 1;
	struct create_reading *cr = calloc(1, sizeof(*cr) + plen);
	int rc;

	if (cr == NULL || (call->nfds > 0 && (cr->fds = calloc(call->nfds, sizeof(int))) == NULL) ||
	    (cr->reply = rpc_call_defer(call)) == NULL) {
		if (cr != NULL)
			free(cr->fds);
		free(cr);
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	}
	memcpy(cr->path, file, plen);
	cr->uid = call->peer->uid;
	for (size_t i = 0; i < call->nfds; i++) { /* the continuation's now */
		cr->fds[i] = call->fds[i];
		call->fds[i] = -1;
	}
	cr->nfds = call->nfds;
	cr->params = json_object_get(call->params);
	cr->conn = conn_ref(call->conn);
	rc = userfile_read_async(call->peer->uid, call->peer->gid, file, POLICY_MAX_TEXT,
				 create_on_policy_file, cr);
	if (rc < 0) {
		if (rc == -EAGAIN)
			rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "policy_file",
				      "resource exhausted: %d policy files of yours are being read "
				      "already (on a file system that does not answer?)",
				      USERFILE_PER_UID);
		else if (rc == -EBUSY)
			rpc_error_set(err, NONO_E_LIMIT_EXCEEDED, "policy_file",
				      "resource exhausted: nonod is reading %d policy files already",
				      USERFILE_MAX);
		else
			rpc_error_set(err, NONO_E_INTERNAL, "policy_file", "cannot read it: %s",
				      strerror(-rc));
		rpc_reply_error(cr->reply, err);
		create_reading_free(cr);
	}
	return RPC_DEFERRED;
}

static int session_create_m(struct rpc_call *call, struct json_object **result,
			    struct rpc_error *err)
{
	struct json_object *argv = params_get(call->params, "argv");
	struct json_object *env = params_get(call->params, "environ");
	struct json_object *labels = params_get(call->params, "labels");
	const char *ws = params_str(call->params, "workspace", NULL);
	const char *cwd = params_str(call->params, "cwd", NULL);
	const char *file = params_str(call->params, "policy_file", NULL);
	struct policy *policy = NULL;
	int rc;

	(void)result;
	if (nonod->stopping)
		return rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, "", "nonod is stopping");
	if (json_object_array_length(argv) == 0 ||
	    json_object_get_string_len(json_object_array_get_idx(argv, 0)) == 0)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "argv", "argv[0] must name a program");
	for (size_t i = 0; env != NULL && i < json_object_array_length(env); i++) {
		const char *e = json_object_get_string(json_object_array_get_idx(env, i));
		if (strchr(e, '=') == NULL || e[0] == '=')
			return rpc_error_set(err, NONO_E_INVALID_PARAMS, "environ",
					     "environ[%zu] is not NAME=value", i);
	}
	if (ws == NULL && cwd == NULL)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "cwd", "give cwd or workspace");
	if ((ws != NULL && check_dir("workspace", ws, err) < 0) ||
	    (cwd != NULL && check_dir("cwd", cwd, err) < 0))
		return err->code;
	if (labels != NULL && check_labels(labels, err) < 0)
		return err->code;
	if (file != NULL && params_get(call->params, "policy") != NULL)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "policy_file",
				     "give either policy or policy_file, not both");
	if (file != NULL)
		return create_read_policy_file(call, file, err);
	if ((rc = load_policy(call, &policy, err)) < 0)
		return rc;
	return create_with_policy(call, NULL, policy, err);
}

static struct session *find_visible(struct rpc_call *call, struct rpc_error *err)
{
	const char *id = params_str(call->params, "id", "");
	struct session *s = session_find(id);

	/* Someone else's session does not exist, as far as this caller can tell. */
	if (s == NULL || !session_visible(s, call->peer)) {
		rpc_error_set(err, NONO_E_NOT_FOUND, "id", "no session '%.64s'", id);
		return NULL;
	}
	return s;
}

static int session_get_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct session *s = find_visible(call, err);

	if (s == NULL)
		return err->code;
	*result = session_to_json(s);
	return 0;
}

static struct json_object *history_rows(const struct peer *p, bool all, int64_t limit)
{
	struct json_object *a = json_object_new_array();
	sqlite3_stmt *st;

	session_history_flush();
	if (sqlite3_prepare_v2(nonod->db,
			       "SELECT id, uid, argv, cwd, policy_digest, network, created_ms, ended_ms, "
			       "exit_code, exit_signal, end_reason, snapshot_start, snapshot_exit FROM sessions "
			       "WHERE (?1 OR uid = ?2) AND ended_ms IS NOT NULL "
			       "ORDER BY created_ms DESC LIMIT ?3", -1, &st, NULL) != SQLITE_OK)
		return a;
	sqlite3_bind_int(st, 1, all);
	sqlite3_bind_int64(st, 2, p->uid);
	sqlite3_bind_int64(st, 3, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "id", json_object_new_string((const char *)sqlite3_column_text(st, 0)));
		json_object_object_add(o, "state", json_object_new_string("exited"));
		json_object_object_add(o, "uid", json_object_new_int64(sqlite3_column_int64(st, 1)));
		json_object_object_add(o, "argv", json_tokener_parse((const char *)sqlite3_column_text(st, 2)));
		json_object_object_add(o, "cwd", json_object_new_string((const char *)sqlite3_column_text(st, 3)));
		json_object_object_add(o, "policy_digest", json_object_new_string((const char *)sqlite3_column_text(st, 4)));
		json_object_object_add(o, "network", json_object_new_string((const char *)sqlite3_column_text(st, 5)));
		json_object_object_add(o, "created_ms", json_object_new_int64(sqlite3_column_int64(st, 6)));
		json_object_object_add(o, "ended_ms", json_object_new_int64(sqlite3_column_int64(st, 7)));
		if (sqlite3_column_type(st, 8) != SQLITE_NULL)
			json_object_object_add(o, "exit_code", json_object_new_int(sqlite3_column_int(st, 8)));
		if (sqlite3_column_type(st, 9) != SQLITE_NULL)
			json_object_object_add(o, "exit_signal", json_object_new_int(sqlite3_column_int(st, 9)));
		if (sqlite3_column_type(st, 10) != SQLITE_NULL)
			json_object_object_add(o, "end_reason",
					       json_object_new_string((const char *)sqlite3_column_text(st, 10)));
		for (int c = 11; c <= 12; c++)
			if (sqlite3_column_type(st, c) != SQLITE_NULL)
				json_object_object_add(o, c == 11 ? "snapshot_start" : "snapshot_exit",
						       json_object_new_string((const char *)sqlite3_column_text(st, c)));
		json_object_array_add(a, o);
	}
	sqlite3_finalize(st);
	return a;
}

static int session_list_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	bool all = params_bool(call->params, "all_users", false);
	struct json_object *r = json_object_new_object(), *a = json_object_new_array();

	if (all && !call->peer->admin) {
		json_object_put(r);
		json_object_put(a);
		return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "all_users",
				     "only administrators see other users' sessions");
	}
	for (struct session *s = session_first(); s != NULL; s = s->next)
		if (s->state != SESSION_EXITED && (all ? true : s->uid == call->peer->uid))
			json_object_array_add(a, session_to_json(s));
	json_object_object_add(r, "sessions", a);
	if (params_bool(call->params, "history", false))
		json_object_object_add(r, "history",
				       history_rows(call->peer, all, params_int(call->params, "limit", 100)));
	*result = r;
	return 0;
}

static int session_wait_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct session *s = find_visible(call, err);
	struct rpc_deferred *d;

	if (s == NULL)
		return err->code;
	if (s->state == SESSION_EXITED) {
		*result = session_to_json(s);
		return 0;
	}
	d = rpc_call_defer(call);
	if (d == NULL || session_wait(s, d, params_int(call->params, "timeout_ms", -1)) < 0) {
		if (d != NULL)
			rpc_reply_error(d, &(struct rpc_error){ .code = NONO_E_INTERNAL });
		return RPC_DEFERRED;
	}
	return RPC_DEFERRED;
}

static int parse_signal(struct json_object *v, struct rpc_error *err)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);
		if (n >= 1 && n < NSIG)
			return (int)n;
	} else if (json_object_is_type(v, json_type_string)) {
		const char *name = json_object_get_string(v);

		if (strncmp(name, "SIG", 3) == 0)
			name += 3;
		for (int sig = 1; sig < NSIG; sig++) {
			const char *abbr = sigabbrev_np(sig);
			if (abbr != NULL && strcmp(abbr, name) == 0)
				return sig;
		}
	}
	return rpc_error_set(err, NONO_E_INVALID_PARAMS, "signal",
			     "not a signal number (1..%d) or name like \"TERM\"", NSIG - 1);
}

static int session_signal_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct session *s = find_visible(call, err);
	int sig, rc;

	if (s == NULL)
		return err->code;
	if ((sig = parse_signal(params_get(call->params, "signal"), err)) < 0)
		return sig;
	if ((rc = session_signal(s, sig)) < 0)
		return rpc_error_set(err, NONO_E_NOT_FOUND, "id", "session %s: %s", s->id,
				     rc == -ESRCH ? "has ended" : strerror(-rc));
	return 0;
}

static int session_kill_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct session *s = find_visible(call, err);

	if (s == NULL)
		return err->code;
	if (s->state == SESSION_EXITED)
		return rpc_error_set(err, NONO_E_NOT_FOUND, "id", "session %s has ended", s->id);
	session_kill_tree(s, "killed by session.kill");
	return 0;
}

static int session_output_m(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct session *s = find_visible(call, err);

	if (s == NULL)
		return err->code;
	if (s->output == NULL)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "id",
				     "session %s does not use stdio mode pipe", s->id);
	*result = session_output_json(s);
	return 0;
}

const struct method session_methods[] = {
	{ "session.create", create_params, AUTH_USER, session_create_m,
	  "start a program in a new sandboxed session (answers once it has exec'd)" },
	{ "session.list", list_params, AUTH_USER, session_list_m, "running sessions, and history" },
	{ "session.get", id_params, AUTH_USER, session_get_m, "one session's state" },
	{ "session.wait", wait_params, AUTH_USER, session_wait_m, "wait until a session ends" },
	{ "session.signal", signal_params, AUTH_USER, session_signal_m, "signal a session's leader" },
	{ "session.kill", id_params, AUTH_USER, session_kill_m, "kill a session's whole process tree" },
	{ "session.output", id_params, AUTH_USER, session_output_m,
	  "captured stdout/stderr of a stdio-pipe session (base64)" },
	{ NULL },
};
