/*
 * Automatic snapshots of a session's workspace (policy snapshot.on_start and
 * snapshot.on_exit).
 *
 * The baseline is taken before anything of the session exists: if it cannot
 * be taken the session does not start (fail closed: the user asked for a way
 * back, and running without one is not what they asked). The final snapshot
 * is taken once the whole tree is dead, and session.exited is sent only
 * after it, so whoever gets the notification can diff or restore against
 * both ids. A final snapshot that fails does not undo the session: its error
 * is recorded on the session instead of an id.
 *
 * Both snapshots run as snapshot jobs (off the loop, with the owner's
 * filesystem rights) in the owner's own store, with the policy's excludes.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "session-snapshot.h"
#include "session.h"
#include "snap/snap.h"

struct session_snap {
	bool on_start, on_exit;
	uid_t owner;
	gid_t group;
	char *workspace;                 /* expanded, absolute */
	char **excludes;
	size_t nexcludes;
	char session_id[24];             /* chosen before the session exists: labels name it */
	char start[SNAP_ID_LEN + 1];     /* "" = none */
	char exit[SNAP_ID_LEN + 1];
	char exit_error[256];            /* why exit is "", when on_exit */
	bool exit_running;
};

struct snap_wait {
	struct session_snap *ss;
	bool at_start;
	session_snap_done_fn done;
	void *arg;
};

void session_snap_free(struct session_snap *ss)
{
	if (ss == NULL)
		return;
	free(ss->workspace);
	for (size_t i = 0; i < ss->nexcludes; i++)
		free(ss->excludes[i]);
	free(ss->excludes);
	free(ss);
}

int session_snap_prepare(const struct policy *p, uid_t uid, gid_t gid, const char *workspace,
			 struct session_snap **out, struct rpc_error *err)
{
	struct policy_vars vars = { .workspace = workspace };
	struct policy_error perr;
	struct session_snap *ss;
	struct passwd pw, *res = NULL;
	char buf[4096];

	*out = NULL;
	if (!p->snapshot.on_start && !p->snapshot.on_exit)
		return 0;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL && pw.pw_dir[0] == '/')
		vars.home = pw.pw_dir;
	if (nonod->snap == NULL)
		return rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, "policy.snapshot",
				     "the policy asks for automatic snapshots, but the snapshot "
				     "store is not enabled in this nonod");
	ss = calloc(1, sizeof(*ss));
	if (ss == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
	ss->on_start = p->snapshot.on_start;
	ss->on_exit = p->snapshot.on_exit;
	ss->owner = uid;
	ss->group = gid;
	/* $TMPDIR is the session's own and gone at exit: not a workspace. */
	if (policy_expand_path(p->snapshot.workspace != NULL ? p->snapshot.workspace : "$WORKSPACE",
			       &vars, "policy.snapshot.workspace", &ss->workspace, &perr) < 0) {
		session_snap_free(ss);
		return rpc_error_set(err, NONO_E_POLICY_INVALID, "policy.snapshot.workspace", "%s",
				     perr.message);
	}
	if (p->snapshot.n_exclude > 0) {
		ss->excludes = calloc(p->snapshot.n_exclude, sizeof(char *));
		if (ss->excludes == NULL)
			goto oom;
		for (; ss->nexcludes < p->snapshot.n_exclude; ss->nexcludes++)
			if ((ss->excludes[ss->nexcludes] = strdup(p->snapshot.exclude[ss->nexcludes])) == NULL)
				goto oom;
	}
	if (session_make_id(ss->session_id) < 0)
		goto oom;
	*out = ss;
	return 0;
oom:
	session_snap_free(ss);
	return rpc_error_set(err, NONO_E_INTERNAL, "", "out of memory");
}

const char *session_snap_session_id(const struct session_snap *ss)
{
	return ss->session_id;
}

bool session_snap_wants(const struct session_snap *ss, bool at_start)
{
	return ss != NULL && (at_start ? ss->on_start : ss->on_exit);
}

static void snap_wait_done(struct snap_result *r, void *arg)
{
	struct snap_wait *w = arg;
	struct session_snap *ss = w->ss;
	int err = r == NULL ? -ENOMEM : r->err;
	const char *detail = r == NULL ? "out of memory" : r->detail;

	if (err == 0 && r->nsnaps == 1)
		snprintf(w->at_start ? ss->start : ss->exit, SNAP_ID_LEN + 1, "%s", r->snaps[0].id);
	else if (err == 0)
		err = -EIO; /* a create that reports no snapshot: never expected */
	if (!w->at_start) {
		ss->exit_running = false;
		if (err < 0)
			snprintf(ss->exit_error, sizeof(ss->exit_error), "%.250s",
				 detail[0] ? detail : strerror(-err));
	}
	w->done(err, detail, w->arg);
	if (r != NULL) {
		snap_result_free(r);
		free(r);
	}
	free(w);
}

int session_snap_take(struct session_snap *ss, bool at_start, const char *argv0,
		      session_snap_done_fn done, void *arg)
{
	char label[256];
	struct snap_params p = {
		.owner = ss->owner, .group = ss->group, .workspace = ss->workspace,
		.label = label, .excludes = (const char *const *)ss->excludes,
		.nexcludes = ss->nexcludes, .keep_last = -1, .keep_within = -1,
		.max_entries = nonod->cfg->snapshot_max_entries,
		.max_meta_bytes = nonod->cfg->snapshot_max_memory,
	};
	struct snap_wait *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL)
		return -ENOMEM;
	snprintf(label, sizeof(label), "session %s %s: %.200s", ss->session_id,
		 at_start ? "start" : "exit", argv0);
	*w = (struct snap_wait){ .ss = ss, .at_start = at_start, .done = done, .arg = arg };
	if (!at_start)
		ss->exit_running = true;
	rc = snap_job_start(nonod->snap, SNAP_OP_CREATE, &p, NULL, snap_wait_done, w);
	if (rc < 0) {
		ss->exit_running = false;
		free(w);
	}
	return rc;
}

void session_snap_exit_failed(struct session_snap *ss, int err)
{
	ss->exit_running = false;
	if (err == -ECANCELED)
		snprintf(ss->exit_error, sizeof(ss->exit_error),
			 "nonod stopped before the exit snapshot was done");
	else
		snprintf(ss->exit_error, sizeof(ss->exit_error), "cannot start the snapshot: %s",
			 snap_job_strerror(err));
}

struct json_object *session_snap_json(const struct session_snap *ss)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "workspace", json_object_new_string(ss->workspace));
	if (ss->on_start)
		json_object_object_add(o, "start", ss->start[0] ? json_object_new_string(ss->start) : NULL);
	if (ss->on_exit) {
		json_object_object_add(o, "exit", ss->exit[0] ? json_object_new_string(ss->exit) : NULL);
		if (ss->exit_running)
			json_object_object_add(o, "exit_pending", json_object_new_boolean(1));
		if (ss->exit_error[0])
			json_object_object_add(o, "exit_error", json_object_new_string(ss->exit_error));
	}
	return o;
}

const char *session_snap_id(const struct session_snap *ss, bool at_start)
{
	const char *id = ss == NULL ? "" : at_start ? ss->start : ss->exit;

	return id[0] ? id : NULL;
}
