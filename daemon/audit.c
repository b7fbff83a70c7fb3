/* Batched audit records in SQLite, and audit.list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "audit.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "methods.h"
#include "proxy.h"
#include "session.h"

#define AUDIT_FLUSH_MS 200
#define AUDIT_QUEUE_MAX 65536 /* beyond this, records are counted as dropped */

struct audit_row {
	int64_t ts_ms;
	char *session;
	int64_t uid;
	char *method, *host, *path, *secret, *reason;
	int port, status;
	uint64_t bytes_in, bytes_out, latency_us;
};

static const char *const audit_schema[] = {
	/* 1 */
	"CREATE TABLE audit_http ("
	"  id INTEGER PRIMARY KEY,"
	"  ts_ms INTEGER NOT NULL,"
	"  session TEXT NOT NULL,"
	"  uid INTEGER,"
	"  method TEXT NOT NULL,"
	"  host TEXT NOT NULL,"
	"  port INTEGER NOT NULL,"
	"  path TEXT NOT NULL,"
	"  status INTEGER NOT NULL,"
	"  bytes_in INTEGER NOT NULL,"
	"  bytes_out INTEGER NOT NULL,"
	"  secret TEXT,"          /* the secret's NAME, never its value */
	"  reason TEXT,"
	"  latency_us INTEGER NOT NULL);"
	"CREATE INDEX audit_http_session ON audit_http(session, ts_ms);"
	"CREATE INDEX audit_http_uid ON audit_http(uid, ts_ms);",
};

static struct audit_row *queue;
static size_t nqueue, capqueue;
static uint64_t dropped;
static struct event *ev_flush;

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void row_free(struct audit_row *r)
{
	free(r->session);
	free(r->method);
	free(r->host);
	free(r->path);
	free(r->secret);
	free(r->reason);
}

void audit_proxy_record(void *ctx, const struct proxy_audit_record *rec)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = AUDIT_FLUSH_MS * 1000 };
	struct session *s = session_find(rec->session != NULL ? rec->session : "");
	struct audit_row *r;
	struct timespec ts;

	if (nqueue == AUDIT_QUEUE_MAX) {
		dropped++;
		return;
	}
	if (nqueue == capqueue) {
		size_t cap = capqueue != 0 ? capqueue * 2 : 256;
		struct audit_row *q = realloc(queue, cap * sizeof(*q));

		if (q == NULL) {
			dropped++;
			return;
		}
		queue = q;
		capqueue = cap;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r = &queue[nqueue++];
	*r = (struct audit_row){
		.ts_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		.session = strdup(rec->session != NULL ? rec->session : ""),
		.uid = s != NULL ? (int64_t)s->uid : -1,
		.method = strdup(rec->method != NULL ? rec->method : ""),
		.host = strdup(rec->host != NULL ? rec->host : ""),
		.path = strdup(rec->path != NULL ? rec->path : ""),
		.secret = dup_or_null(rec->secret),
		.reason = dup_or_null(rec->reason),
		.port = rec->port,
		.status = rec->status,
		.bytes_in = rec->bytes_in,
		.bytes_out = rec->bytes_out,
		.latency_us = rec->latency_us,
	};
	if (ev_flush != NULL && !evtimer_pending(ev_flush, NULL))
		evtimer_add(ev_flush, &tv);
}

void audit_flush(void)
{
	sqlite3_stmt *st = NULL;

	if (nqueue == 0)
		return;
	if (db_exec(nonod->db, "BEGIN;") < 0 ||
	    sqlite3_prepare_v2(nonod->db,
			       "INSERT INTO audit_http(ts_ms, session, uid, method, host, port, path, status, "
			       "bytes_in, bytes_out, secret, reason, latency_us) "
			       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)", -1, &st, NULL) != SQLITE_OK) {
		log_errorx("audit: cannot write %zu records: %s", nqueue, sqlite3_errmsg(nonod->db));
	} else {
		for (size_t i = 0; i < nqueue; i++) {
			struct audit_row *r = &queue[i];

			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, r->ts_ms);
			sqlite3_bind_text(st, 2, r->session, -1, SQLITE_STATIC);
			if (r->uid >= 0)
				sqlite3_bind_int64(st, 3, r->uid);
			else
				sqlite3_bind_null(st, 3);
			sqlite3_bind_text(st, 4, r->method, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 5, r->host, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 6, r->port);
			sqlite3_bind_text(st, 7, r->path, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 8, r->status);
			sqlite3_bind_int64(st, 9, (sqlite3_int64)r->bytes_in);
			sqlite3_bind_int64(st, 10, (sqlite3_int64)r->bytes_out);
			sqlite3_bind_text(st, 11, r->secret, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 12, r->reason, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 13, (sqlite3_int64)r->latency_us);
			if (sqlite3_step(st) != SQLITE_DONE)
				log_errorx("audit: %s", sqlite3_errmsg(nonod->db));
		}
	}
	sqlite3_finalize(st);
	if (db_exec(nonod->db, "COMMIT;") < 0)
		db_exec(nonod->db, "ROLLBACK;");
	for (size_t i = 0; i < nqueue; i++)
		row_free(&queue[i]);
	nqueue = 0;
	if (dropped != 0) {
		log_warnx("audit: %llu records dropped (queue full)", (unsigned long long)dropped);
		dropped = 0;
	}
}

static void audit_on_flush(evutil_socket_t fd, short what, void *arg)
{
	audit_flush();
}

int audit_init(void)
{
	int rc = db_migrate(nonod->db, "audit", audit_schema,
			    sizeof(audit_schema) / sizeof(audit_schema[0]));

	if (rc < 0)
		return rc;
	ev_flush = evtimer_new(nonod->base, audit_on_flush, NULL);
	return ev_flush != NULL ? 0 : -ENOMEM;
}

void audit_fini(void)
{
	audit_flush();
	if (ev_flush != NULL)
		event_free(ev_flush);
	ev_flush = NULL;
	free(queue);
	queue = NULL;
	capqueue = 0;
}

/* ---- audit.list ----------------------------------------------------------- */

static const struct param_spec list_params[] = {
	{ .name = "session", .type = PARAM_STRING, .max = 64, .doc = "only this session's records" },
	{ .name = "since_ms", .type = PARAM_INT, .min = 0, .max = INT64_MAX, .doc = "only records at or after this time (unix ms)" },
	{ .name = "limit", .type = PARAM_INT, .min = 1, .max = 100000, .doc = "at most this many, newest first (default 1000)" },
	{ .name = "all_users", .type = PARAM_BOOL, .doc = "admins: every user's records" },
	{ NULL },
};

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t != NULL ? (const char *)t : NULL;
}

static int audit_list(struct rpc_call *call, struct json_object **result, struct rpc_error *err)
{
	bool all = params_bool(call->params, "all_users", false);
	const char *session = params_str(call->params, "session", NULL);
	struct json_object *a;
	sqlite3_stmt *st;

	if (all && !call->peer->admin)
		return rpc_error_set(err, NONO_E_PERMISSION_DENIED, "all_users",
				     "only administrators read other users' records");
	if (nonod->proxy != NULL)
		proxy_audit_sync(nonod->proxy); /* what the proxy's loops still hold */
	audit_flush();
	if (sqlite3_prepare_v2(nonod->db,
			       "SELECT ts_ms, session, uid, method, host, port, path, status, bytes_in, "
			       "bytes_out, secret, reason, latency_us FROM audit_http "
			       "WHERE (?1 OR uid = ?2) AND (?3 IS NULL OR session = ?3) AND ts_ms >= ?4 "
			       "ORDER BY id DESC LIMIT ?5", -1, &st, NULL) != SQLITE_OK)
		return rpc_error_set(err, NONO_E_INTERNAL, "", "audit query failed");
	sqlite3_bind_int(st, 1, all);
	sqlite3_bind_int64(st, 2, call->peer->uid);
	if (session != NULL)
		sqlite3_bind_text(st, 3, session, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, params_int(call->params, "since_ms", 0));
	sqlite3_bind_int64(st, 5, params_int(call->params, "limit", 1000));
	a = json_object_new_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "ts_ms", json_object_new_int64(sqlite3_column_int64(st, 0)));
		json_object_object_add(o, "session", json_object_new_string(col(st, 1)));
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			json_object_object_add(o, "uid", json_object_new_int64(sqlite3_column_int64(st, 2)));
		json_object_object_add(o, "method", json_object_new_string(col(st, 3)));
		json_object_object_add(o, "host", json_object_new_string(col(st, 4)));
		json_object_object_add(o, "port", json_object_new_int(sqlite3_column_int(st, 5)));
		json_object_object_add(o, "path", json_object_new_string(col(st, 6)));
		json_object_object_add(o, "status", json_object_new_int(sqlite3_column_int(st, 7)));
		json_object_object_add(o, "bytes_in", json_object_new_int64(sqlite3_column_int64(st, 8)));
		json_object_object_add(o, "bytes_out", json_object_new_int64(sqlite3_column_int64(st, 9)));
		if (col(st, 10) != NULL)
			json_object_object_add(o, "secret", json_object_new_string(col(st, 10)));
		if (col(st, 11) != NULL)
			json_object_object_add(o, "reason", json_object_new_string(col(st, 11)));
		json_object_object_add(o, "latency_us", json_object_new_int64(sqlite3_column_int64(st, 12)));
		json_object_array_add(a, o);
	}
	sqlite3_finalize(st);
	*result = json_object_new_object();
	json_object_object_add(*result, "records", a);
	return 0;
}

const struct method audit_methods[] = {
	{ "audit.list", list_params, AUTH_USER, audit_list,
	  "proxied requests and refusals, newest first (the caller's own unless all_users)" },
	{ NULL },
};
