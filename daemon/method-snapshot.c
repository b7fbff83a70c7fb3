/*
 * snapshot.* methods: thin wrappers that check authority and run the
 * store's operations as jobs off the event loop (daemon/snap/snap.h; a
 * create's job resolves and checks the workspace itself, with the
 * client's rights: never on the loop). Every method answers through rpc_call_defer();
 * snapshot.create and snapshot.restore send "snapshot.progress"
 * notifications to the calling connection while they run.
 *
 * Authority: a user acts on their own store only (state_dir/snapshots/<uid>)
 * and may snapshot only a workspace directory they own; an admin may name
 * another user's store with "owner", and a workspace's snapshots always go
 * to its owner's store. Snapshot ids are 12 hex digits (snap.h).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "rpc.h"
#include "snap/snap.h"
#include "utf8.h"

extern const struct method snapshot_methods[];

#define SNAP_MAX_CHANGES 10000 /* keeps a diff answer far below the message limit */
#define READ_ENVELOPE 1024     /* snapshot.read's answer without its data, and more */

struct snap_call {
	struct rpc_deferred *d;
	struct conn *conn;           /* referenced while the job runs (progress) */
	struct json_object *req_id;  /* referenced; echoed in progress */
	enum snap_op op;
};

static int snap_errno_code(int err)
{
	switch (err) {
	case -ENOENT: return NONO_E_NOT_FOUND;
	case -EBUSY: return NONO_E_BUSY;
	case -EACCES:
	case -EPERM: return NONO_E_PERMISSION_DENIED;
	case -EINVAL:
	case -EISDIR:
	case -ENOTDIR: return NONO_E_INVALID_PARAMS;
	case -EEXIST: return NONO_E_ALREADY_EXISTS;
	case -E2BIG: return NONO_E_LIMIT_EXCEEDED; /* a snapshot limit (detail names it) */
	default: return NONO_E_INTERNAL;
	}
}

/*
 * A job's error in protocol terms. During restore and create, ELOOP,
 * ENOTDIR and EAGAIN mean the workspace changed under us (a symlink swapped
 * in, a file rewritten while read): "busy", so a client retries rather than
 * reports a bug.
 */
static int snap_job_code(enum snap_op op, int err)
{
	if ((op == SNAP_OP_RESTORE || op == SNAP_OP_CREATE) &&
	    (err == -ELOOP || err == -ENOTDIR || err == -EAGAIN))
		return NONO_E_BUSY;
	return snap_errno_code(err);
}

/* The param a job's not-found error is about. */
static const char *snap_job_field(enum snap_op op, int err)
{
	if (err != -ENOENT)
		return NULL;
	switch (op) {
	case SNAP_OP_CREATE: return "workspace";
	case SNAP_OP_DIFF: return "from";
	case SNAP_OP_RESTORE:
	case SNAP_OP_DELETE: return "snapshot";
	default: return NULL;
	}
}

/* Paths are bytes; JSON wants UTF-8. Invalid sequences become U+FFFD and
 * the exact bytes travel as "path_hex". */
static void add_path(struct json_object *o, const char *key, const char *path)
{
	if (utf8_valid(path, strlen(path))) {
		json_object_object_add(o, key, json_object_new_string(path));
		return;
	}
	size_t n = strlen(path);
	char *safe = malloc(n * 3 + 1), *hex = malloc(n * 2 + 1), *o1 = safe;
	if (safe == NULL || hex == NULL) {
		free(safe);
		free(hex);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];
		snprintf(hex + 2 * i, 3, "%02x", c);
		if (c < 0x80) {
			*o1++ = (char)c;
		} else {
			memcpy(o1, "\xef\xbf\xbd", 3);
			o1 += 3;
		}
	}
	*o1 = '\0';
	json_object_object_add(o, key, json_object_new_string(safe));
	char hk[64];
	snprintf(hk, sizeof(hk), "%s_hex", key);
	json_object_object_add(o, hk, json_object_new_string(hex));
	free(safe);
	free(hex);
}

static struct json_object *info_json(const struct snap_info *si)
{
	struct json_object *o = json_object_new_object(), *ex = json_object_new_array(),
			   *st = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(si->id));
	add_path(o, "workspace", si->workspace);
	json_object_object_add(o, "label", json_object_new_string(si->label));
	json_object_object_add(o, "root", json_object_new_string(si->root));
	json_object_object_add(o, "created", json_object_new_int64(si->created));
	for (size_t i = 0; i < si->nexcludes; i++)
		json_object_array_add(ex, json_object_new_string(si->excludes[i]));
	json_object_object_add(o, "exclude", ex);
#define STAT(f) json_object_object_add(st, #f, json_object_new_int64((int64_t)si->stats.f))
	STAT(files);
	STAT(dirs);
	STAT(others);
	STAT(bytes);
	STAT(read_files);
	STAT(read_bytes);
	STAT(new_objects);
	STAT(new_bytes);
	STAT(unreadable);
#undef STAT
	json_object_object_add(o, "stats", st);
	return o;
}

static struct json_object *changes_json(const struct snap_result *r)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	size_t n = r->nchanges < SNAP_MAX_CHANGES ? r->nchanges : SNAP_MAX_CHANGES;

	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_new_object();
		add_path(c, "path", r->changes[i].path);
		json_object_object_add(c, "kind",
				       json_object_new_string(snap_change_kind_name(r->changes[i].kind)));
		json_object_array_add(a, c);
	}
	json_object_object_add(o, "changes", a);
	json_object_object_add(o, "total", json_object_new_int64((int64_t)r->nchanges));
	json_object_object_add(o, "truncated", json_object_new_boolean(n < r->nchanges));
	return o;
}

/* Write a base64 string as it is: its alphabet needs no JSON escaping. */
static int b64_serialize(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(o);

	(void)level;
	(void)flags;
	if (printbuf_memappend(pb, "\"", 1) < 0 ||
	    printbuf_memappend(pb, text, (int)strlen(text)) < 0)
		return -1;
	return printbuf_memappend(pb, "\"", 1);
}

static void b64_free(struct json_object *o, void *userdata)
{
	(void)o;
	free(userdata);
}

/*
 * snapshot.read's answer (takes rd->data); NULL when out of memory. "data"
 * carries its own serializer: json-c would otherwise scan up to 700 KB of
 * base64 for escapes on the event loop.
 */
static struct json_object *read_json(struct snap_read_out *rd)
{
	struct json_object *o = json_object_new_object(), *data = json_object_new_string("");

	if (o == NULL || data == NULL || rd->data == NULL) {
		json_object_put(o);
		json_object_put(data);
		return NULL;
	}
	json_object_set_serializer(data, b64_serialize, rd->data, b64_free);
	rd->data = NULL;
	json_object_object_add(o, "kind", json_object_new_string(
				       rd->kind == SNAP_READ_SYMLINK ? "symlink" : "file"));
	json_object_object_add(o, "mode", json_object_new_int64(rd->mode & 07777));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)rd->size));
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)rd->offset));
	json_object_object_add(o, "length", json_object_new_int64((int64_t)rd->len));
	json_object_object_add(o, "eof", json_object_new_boolean(rd->eof));
	json_object_object_add(o, "data", data);
	return o;
}

static struct json_object *result_json(enum snap_op op, struct snap_result *r)
{
	struct json_object *o, *a;

	switch (op) {
	case SNAP_OP_CREATE:
		o = json_object_new_object();
		json_object_object_add(o, "snapshot", info_json(&r->snaps[0]));
		return o;
	case SNAP_OP_LIST:
		o = json_object_new_object();
		a = json_object_new_array();
		for (size_t i = 0; i < r->nsnaps; i++)
			json_object_array_add(a, info_json(&r->snaps[i]));
		json_object_object_add(o, "snapshots", a);
		return o;
	case SNAP_OP_DIFF:
		return changes_json(r);
	case SNAP_OP_RESTORE:
		o = changes_json(r);
		if (r->nsnaps == 1)
			json_object_object_add(o, "safety_snapshot", info_json(&r->snaps[0]));
		return o;
	case SNAP_OP_VERIFY:
		o = json_object_new_object();
		json_object_object_add(o, "snapshots", json_object_new_int64((int64_t)r->verify.snapshots));
		json_object_object_add(o, "objects", json_object_new_int64((int64_t)r->verify.objects));
		json_object_object_add(o, "bytes", json_object_new_int64((int64_t)r->verify.bytes));
		json_object_object_add(o, "missing", json_object_new_int64((int64_t)r->verify.missing));
		json_object_object_add(o, "corrupt", json_object_new_int64((int64_t)r->verify.corrupt));
		json_object_object_add(o, "unreferenced",
				       json_object_new_int64((int64_t)r->verify.unreferenced));
		json_object_object_add(o, "ok", json_object_new_boolean(
					       r->verify.missing == 0 && r->verify.corrupt == 0));
		return o;
	case SNAP_OP_READ:
		return read_json(&r->read);
	case SNAP_OP_GC:
		o = json_object_new_object();
		json_object_object_add(o, "snapshots_deleted",
				       json_object_new_int64((int64_t)r->gc.snapshots_deleted));
		json_object_object_add(o, "objects_deleted",
				       json_object_new_int64((int64_t)r->gc.objects_deleted));
		json_object_object_add(o, "bytes_freed", json_object_new_int64((int64_t)r->gc.bytes_freed));
		return o;
	default:
		return json_object_new_object();
	}
}

static const char *op_name(enum snap_op op)
{
	switch (op) {
	case SNAP_OP_CREATE: return "create";
	case SNAP_OP_RESTORE: return "restore";
	case SNAP_OP_DIFF: return "diff";
	default: return "other";
	}
}

static void snap_call_free(struct snap_call *sc)
{
	if (sc->conn != NULL)
		conn_unref(sc->conn);
	json_object_put(sc->req_id);
	free(sc);
}

static void on_progress(const struct snap_progress *pr, void *arg)
{
	struct snap_call *sc = arg;
	struct json_object *o = json_object_new_object();

	if (sc->req_id != NULL)
		json_object_object_add(o, "request", json_object_get(sc->req_id));
	json_object_object_add(o, "op", json_object_new_string(op_name(pr->op)));
	json_object_object_add(o, "files_done", json_object_new_int64((int64_t)pr->files_done));
	json_object_object_add(o, "files_total", json_object_new_int64((int64_t)pr->files_total));
	json_object_object_add(o, "bytes_done", json_object_new_int64((int64_t)pr->bytes_done));
	json_object_object_add(o, "bytes_total", json_object_new_int64((int64_t)pr->bytes_total));
	rpc_notify(sc->conn, "snapshot.progress", o);
}

static void on_done(struct snap_result *r, void *arg)
{
	struct snap_call *sc = arg;
	struct json_object *res;
	struct rpc_error err;

	if (r == NULL) {
		rpc_error_set(&err, NONO_E_INTERNAL, NULL, "out of memory");
		rpc_reply_error(sc->d, &err);
	} else if (r->err < 0) {
		rpc_error_set(&err, snap_job_code(sc->op, r->err),
			      r->field ? r->field : snap_job_field(sc->op, r->err), "%s", r->detail);
		rpc_reply_error(sc->d, &err);
	} else if ((res = result_json(sc->op, r)) == NULL) {
		rpc_error_set(&err, NONO_E_INTERNAL, NULL, "out of memory");
		rpc_reply_error(sc->d, &err);
	} else {
		rpc_reply_result(sc->d, res);
	}
	snap_result_free(r);
	free(r);
	snap_call_free(sc);
}

/* Which store: the caller's own, or "owner" for admins. */
static int store_owner(struct rpc_call *call, struct snap_params *p, struct rpc_error *err)
{
	struct json_object *o = params_get(call->params, "owner");
	struct passwd pw, *res = NULL;
	char buf[4096];

	p->owner = call->peer->uid;
	p->group = call->peer->gid;
	if (o != NULL) {
		uid_t want = (uid_t)params_int(call->params, "owner", 0);
		if (!peer_may_act_for(call->peer, want))
			return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "owner",
					     "only an admin may use another user's snapshots");
		p->owner = want;
		p->group = getpwuid_r(want, &pw, buf, sizeof(buf), &res) == 0 && res ? pw.pw_gid : want;
	}
	return 0;
}

static int start(struct rpc_call *call, enum snap_op op, struct snap_params *p,
		 bool progress, struct rpc_error *err)
{
	struct snap_call *sc;
	int rc;

	if (nonod->snap == NULL)
		return rpc_error_set(err, NONO_E_BACKEND_UNAVAILABLE, NULL,
				     "the snapshot store is not enabled");
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
	sc->op = op;
	if (progress) {
		sc->conn = conn_ref(call->conn);
		sc->req_id = call->id ? json_object_get(call->id) : NULL;
	}
	sc->d = rpc_call_defer(call);
	rc = snap_job_start(nonod->snap, op, p, progress ? on_progress : NULL, on_done, sc);
	if (rc < 0) {
		struct rpc_error e2;
		rpc_error_set(&e2, snap_errno_code(rc), NULL, "cannot start the snapshot job: %s",
			      snap_job_strerror(rc));
		rpc_reply_error(sc->d, &e2);
		snap_call_free(sc);
	}
	return RPC_DEFERRED;
}

/* Fill a NULL-terminated borrowed string vector from a JSON string array. */
static const char **str_vec(struct json_object *a, size_t *n)
{
	size_t len = a ? json_object_array_length(a) : 0;
	const char **v = calloc(len + 1, sizeof(char *));

	*n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		v[(*n)++] = json_object_get_string(json_object_array_get_idx(a, i));
	return v;
}

static int m_create(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	const char *ws = params_str(call->params, "workspace", NULL);
	const char **ex;
	int rc;

	(void)result;
	if (ws[0] != '/')
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "workspace", "must be an absolute path");
	/* Resolved and checked by the job with the client's rights (the path
	 * may be on the client's FUSE mount, which would hold the loop); a
	 * workspace's snapshots go to its owner's store. */
	p.owner = call->peer->uid;
	p.group = call->peer->gid;
	p.resolve_workspace = true;
	p.any_owner = call->peer->admin;
	p.workspace = ws;
	p.label = params_str(call->params, "label", "");
	p.allow_unreadable = params_bool(call->params, "allow_unreadable", false);
	/* What one walk may hold: the admin's limits, not the caller's to raise. */
	p.max_entries = nonod->cfg->snapshot_max_entries;
	p.max_meta_bytes = nonod->cfg->snapshot_max_memory;
	ex = str_vec(params_get(call->params, "exclude"), &p.nexcludes);
	if (ex == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
	p.excludes = ex;
	rc = start(call, SNAP_OP_CREATE, &p, true, err);
	free(ex); /* the job copied everything */
	return rc;
}

static int m_list(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	p.workspace = params_str(call->params, "workspace", NULL);
	return start(call, SNAP_OP_LIST, &p, false, err);
}

static int m_diff(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	p.snapshot = params_str(call->params, "from", NULL);
	p.to = params_str(call->params, "to", NULL);
	p.max_entries = nonod->cfg->snapshot_max_entries; /* diff to live walks */
	p.max_meta_bytes = nonod->cfg->snapshot_max_memory;
	return start(call, SNAP_OP_DIFF, &p, true, err);
}

static int m_restore(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	const char **paths;
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	p.max_entries = nonod->cfg->snapshot_max_entries; /* its safety snapshot */
	p.max_meta_bytes = nonod->cfg->snapshot_max_memory;
	p.snapshot = params_str(call->params, "snapshot", NULL);
	paths = str_vec(params_get(call->params, "paths"), &p.npaths);
	if (paths == NULL)
		return rpc_error_set(err, NONO_E_INTERNAL, NULL, "out of memory");
	p.paths = p.npaths ? paths : NULL;
	rc = start(call, SNAP_OP_RESTORE, &p, true, err);
	free(paths);
	return rc;
}

static int m_delete(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	p.snapshot = params_str(call->params, "snapshot", NULL);
	return start(call, SNAP_OP_DELETE, &p, false, err);
}

static int m_verify(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	int rc = store_owner(call, &p, err);

	(void)result;
	return rc < 0 ? rc : start(call, SNAP_OP_VERIFY, &p, false, err);
}

static int m_gc(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	p.keep_last = params_int(call->params, "keep_last", -1);
	p.keep_within = params_int(call->params, "keep_within", -1);
	return start(call, SNAP_OP_GC, &p, false, err);
}

static int m_read(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	struct snap_params p = { .keep_last = -1, .keep_within = -1 };
	const char *path = params_str(call->params, "path", NULL);
	const char *hex = params_str(call->params, "path_hex", NULL);
	/* The answer must fit one message: base64 grows 4/3, plus a small envelope. */
	uint64_t fit = (nonod->cfg->max_message - READ_ENVELOPE) / 4 * 3;
	const char *paths[1];
	char *raw = NULL;
	int rc = store_owner(call, &p, err);

	(void)result;
	if (rc < 0)
		return rc;
	if ((path == NULL) == (hex == NULL))
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "path",
				     "give the path (or, for names that are not UTF-8, path_hex)");
	if (hex != NULL && (raw = path_from_hex(hex)) == NULL)
		return rpc_error_set(err, NONO_E_INVALID_PARAMS, "path_hex",
				     "must be hex digits of a path without NUL bytes");
	paths[0] = raw ? raw : path;
	p.paths = paths;
	p.npaths = 1;
	p.snapshot = params_str(call->params, "snapshot", NULL);
	p.read_offset = (uint64_t)params_int(call->params, "offset", 0);
	p.read_length = (uint64_t)params_int(call->params, "length", SNAP_READ_MAX);
	if (p.read_length > fit)
		p.read_length = fit;
	rc = start(call, SNAP_OP_READ, &p, false, err);
	free(raw); /* the job copied it */
	return rc;
}

#define ID_SPEC(n, req, doc) { n, PARAM_STRING, req, 0, SNAP_ID_LEN, NULL, doc }
#define OWNER_SPEC { "owner", PARAM_INT, false, 0, 4294967294LL, NULL, \
		     "admins: the uid whose store to use (default: the caller's)" }

static const struct param_spec create_params[] = {
	{ "workspace", PARAM_STRING, true, 0, PATH_MAX, NULL, "absolute path of a directory you own" },
	{ "label", PARAM_STRING, false, 0, 256, NULL, "free text" },
	{ "exclude", PARAM_STRING_ARRAY, false, 0, 256, NULL,
	  "globs: a name at any depth, or with '/' a path from the workspace root" },
	{ "allow_unreadable", PARAM_BOOL, false, 0, 0, NULL,
	  "record unreadable files as such instead of failing" },
	{ NULL },
};
static const struct param_spec list_params[] = {
	{ "workspace", PARAM_STRING, false, 0, PATH_MAX, NULL, "only this workspace's snapshots" },
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec diff_params[] = {
	ID_SPEC("from", true, "snapshot id"),
	ID_SPEC("to", false, "snapshot id; absent = the live workspace"),
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec restore_params[] = {
	ID_SPEC("snapshot", true, "snapshot id"),
	{ "paths", PARAM_STRING_ARRAY, false, 0, 4096, NULL,
	  "restore only these paths (relative to the workspace)" },
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec delete_params[] = {
	ID_SPEC("snapshot", true, "snapshot id"),
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec verify_params[] = {
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec read_params[] = {
	ID_SPEC("snapshot", true, "snapshot id"),
	{ "path", PARAM_STRING, false, 0, PATH_MAX, NULL,
	  "file or symlink, relative to the workspace root (no '.', '..' or empty components)" },
	{ "path_hex", PARAM_STRING, false, 0, 2 * PATH_MAX, NULL,
	  "the path's bytes in hex, for names that are not UTF-8 (instead of path)" },
	{ "offset", PARAM_INT, false, 0, INT64_MAX, NULL, "first byte (default 0)" },
	{ "length", PARAM_INT, false, 0, SNAP_READ_MAX, NULL,
	  "at most this many bytes (default and maximum 524288; fewer may come)" },
	OWNER_SPEC,
	{ NULL },
};
static const struct param_spec gc_params[] = {
	{ "keep_last", PARAM_INT, false, 1, 1000000, NULL, "keep the N newest per workspace" },
	{ "keep_within", PARAM_INT, false, 0, 100LL * 365 * 86400, NULL,
	  "keep snapshots younger than this many seconds" },
	OWNER_SPEC,
	{ NULL },
};

const struct method snapshot_methods[] = {
	{ "snapshot.create", create_params, AUTH_USER, m_create,
	  "Snapshot a workspace you own (progress: snapshot.progress)" },
	{ "snapshot.list", list_params, AUTH_USER, m_list, "List your snapshots" },
	{ "snapshot.diff", diff_params, AUTH_USER, m_diff,
	  "Changes between two snapshots, or a snapshot and the live workspace" },
	{ "snapshot.restore", restore_params, AUTH_USER, m_restore,
	  "Restore a snapshot (after taking a safety snapshot)" },
	{ "snapshot.delete", delete_params, AUTH_USER, m_delete, "Delete a snapshot" },
	{ "snapshot.verify", verify_params, AUTH_USER, m_verify,
	  "Re-hash every object your snapshots reach" },
	{ "snapshot.gc", gc_params, AUTH_USER, m_gc,
	  "Apply retention and remove unreachable objects" },
	{ NONO_M_SNAPSHOT_READ, read_params, AUTH_USER, m_read,
	  "Read a file's content or a symlink's target from one of your snapshots" },
	{ NULL },
};
