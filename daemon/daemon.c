/* nonod's lifecycle: state directory, database, subsystems, socket, signals, stop. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "build-config.h"
#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "vault.h"
#include "audit.h"
#include "proxy.h"
#include "snap.h"
#include "db.h"
#include "log.h"
#include "rmtree.h"
#include "notify.h"
#include "probe.h"
#include "server.h"
#include "session.h"

static struct nonod the_daemon;
struct nonod *nonod;

static struct event *ev_sigterm, *ev_sigint, *ev_sighup;
static const char *config_path;
static bool config_explicit;
static int log_level_forced = -1;
static int64_t start_row = -1;

static const char *const daemon_schema[] = {
	/* 1 */
	"CREATE TABLE daemon_runs ("
	"  id INTEGER PRIMARY KEY,"
	"  started_at INTEGER NOT NULL,"  /* unix seconds */
	"  version TEXT NOT NULL,"
	"  mode TEXT NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  stopped_at INTEGER,"
	"  stop_reason TEXT);",
};

const char *nonod_mode_name(enum nonod_mode m)
{
	return m == NONOD_MODE_SYSTEM ? "system" : "user";
}

uint64_t nonod_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Write the features' JSON text, serialized once, wherever this object goes. */
static int daemon_sandbox_serialize(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(o);

	return printbuf_memappend(pb, text, (int)strlen(text));
}

/*
 * The kernel's features do not change while we run: build and serialize
 * them once; daemon.status embeds the text as it is.
 */
struct json_object *daemon_sandbox_json(void)
{
	static struct json_object *cached;
	static char *text;

	if (cached == NULL) {
		struct json_object *f = sandbox_features_to_json(sandbox_probe());

		text = f != NULL ? strdup(json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE)) : NULL;
		json_object_put(f);
		if (text == NULL)
			return json_object_new_object();
		cached = json_object_new_object();
		json_object_set_serializer(cached, daemon_sandbox_serialize, text, NULL);
	}
	return json_object_get(cached);
}

/* mkdir -p with mode for the last component; the state dir must be private. */
static int daemon_make_state_dir(const char *dir)
{
	char *tmp = strdup(dir);
	struct stat st;

	if (tmp == NULL)
		return -ENOMEM;
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			log_error("mkdir %s", tmp);
			free(tmp);
			return -e;
		}
		*p = '/';
	}
	free(tmp);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		log_error("mkdir %s", dir);
		return -e;
	}
	if (lstat(dir, &st) < 0) {
		int e = errno;
		log_error("stat %s", dir);
		return -e;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		log_errorx("state directory %s must be a directory owned by uid %u",
			   dir, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & 0077) != 0 && chmod(dir, 0700) < 0) {
		int e = errno;
		log_error("chmod 0700 %s", dir);
		return -e;
	}
	return 0;
}

static void daemon_record_start(void)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(nonod->db,
			       "INSERT INTO daemon_runs(started_at, version, mode, pid) VALUES(?1, ?2, ?3, ?4)",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 2, NONO_VERSION, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, nonod_mode_name(nonod->mode), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)getpid());
	if (sqlite3_step(st) == SQLITE_DONE)
		start_row = sqlite3_last_insert_rowid(nonod->db);
	sqlite3_finalize(st);
}

static void daemon_record_stop(const char *reason)
{
	sqlite3_stmt *st;

	if (start_row < 0 ||
	    sqlite3_prepare_v2(nonod->db,
			       "UPDATE daemon_runs SET stopped_at = ?1, stop_reason = ?2 WHERE id = ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, start_row);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

static void daemon_apply_log_level(void)
{
	log_set_level(log_level_forced >= 0 ? (enum log_level)log_level_forced
					    : (enum log_level)nonod->cfg->log_level);
}

static void daemon_reload(void)
{
	struct config *fresh = NULL;
	char err[1024];

	notify_reloading();
	if (config_load(config_path, config_explicit, &fresh, err, sizeof(err)) < 0) {
		log_errorx("reload refused, keeping the running configuration: %s", err);
		notify_reloaded();
		notify_status("serving; last reload refused: %s", err);
		return;
	}
	config_free(nonod->cfg);
	nonod->cfg = fresh;
	daemon_apply_log_level();
	conn_config_changed();
	log_info("configuration reloaded%s%s", fresh->path != NULL ? " from " : "",
		 fresh->path != NULL ? fresh->path : "");
	notify_reloaded();
	notify_status("serving on %s", nonod->socket_path);
}

static void daemon_stopped(void)
{
	conn_close_all(NULL);
	event_base_loopexit(nonod->base, NULL);
}

/* Stop accepting at once; sessions get SIGTERM, then SIGKILL after the grace period. */
static void daemon_stop(const char *reason)
{
	if (nonod->stopping)
		return;
	nonod->stopping = true;
	log_info("stopping: %s", reason);
	notify_stopping();
	daemon_record_stop(reason);
	server_close();
	sessions_stop_all(nonod->cfg->shutdown_grace_ms, daemon_stopped);
}

static void daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		daemon_reload();
		break;
	case SIGTERM:
		daemon_stop("SIGTERM");
		break;
	case SIGINT:
		daemon_stop("SIGINT");
		break;
	}
}

/* Many clients and sessions need many fds: use the hard limit. */
static void daemon_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("raise RLIMIT_NOFILE");
	}
}

/*
 * The vault: a missing or wrong master key is logged (naming the provider)
 * and reported by daemon.status; the daemon still runs and secret.* answer
 * backend_unavailable. Stored secrets are never touched.
 */
static char vault_error[sizeof(((struct vault_err *)0)->msg)];

const char *nonod_vault_error(void)
{
	return vault_error[0] != '\0' ? vault_error : NULL;
}

/* Without a vault nothing can be injected: refuse, naming no value. */
static int daemon_no_render(void *ctx, uid_t owner, const char *tmpl, char *out, size_t outlen,
			    size_t *len)
{
	return -ENOKEY;
}

/*
 * The proxy: its CA key is sealed by the vault, header values come from the
 * vault, and every request goes to the audit trail. It starts with the
 * first session that has network rules (OpenSSL, the CA and the resolver
 * threads cost memory an idle daemon need not pay); resolve_override and
 * proxy_extra_ca are read then (a reload does not change a running proxy).
 */
static void daemon_open_proxy(void);

struct proxy *nonod_proxy(void)
{
	static bool tried;

	if (nonod->proxy == NULL && !tried) {
		tried = true;
		daemon_open_proxy();
	}
	return nonod->proxy;
}

static void daemon_open_proxy(void)
{
	struct proxy_override *ov = NULL;
	struct proxy_config pc = {
		.upstream_ca_file = nonod->cfg->proxy_extra_ca,
		.loops = nonod->cfg->proxy_threads,
		.audit = audit_proxy_record,
		.render = daemon_no_render,
	};
	size_t n = 0;

	while (nonod->cfg->resolve_override != NULL && nonod->cfg->resolve_override[n] != NULL)
		n++;
	ov = calloc(n + 1, sizeof(*ov));
	if (ov == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(nonod->cfg->resolve_override[i], '=');

		*eq = '\0'; /* validated by config.c: "name:port=addr:port" */
		ov[i].name_port = nonod->cfg->resolve_override[i];
		ov[i].addr_port = eq + 1;
	}
	pc.overrides = ov;
	pc.n_overrides = n;
	if (nonod->vault != NULL) {
		pc.load_ca = vault_proxy_ca_load;
		pc.store_ca = vault_proxy_ca_store;
		pc.ca_ctx = nonod->vault;
		pc.render = vault_render_cb;
		pc.render_ctx = nonod->vault;
	}
	nonod->proxy = proxy_new(nonod->base, &pc);
	for (size_t i = 0; i < n; i++) {
		char *entry = nonod->cfg->resolve_override[i];
		entry[strlen(entry)] = '=';
	}
	free(ov);
	if (nonod->proxy == NULL)
		log_errorx("the proxy did not start: sessions with network rules will be refused");
}

/* The snapshot store: one per user under state_dir/snapshots/<uid>. */
static void daemon_open_snap(void)
{
	char *root = NULL;
	int rc;

	if (asprintf(&root, "%s/snapshots", nonod->state_dir) < 0)
		return;
	rc = snap_store_new(root, nonod->base, &nonod->snap);
	if (rc < 0) {
		errno = -rc;
		log_error("snapshot store %s: snapshot.* will answer backend_unavailable", root);
		nonod->snap = NULL;
	}
	free(root);
}

static void daemon_open_vault(void)
{
	struct vault_options vo = {
		.secret_service = nonod->mode == NONOD_MODE_USER,
		.secret_service_uid = getuid(),
	};
	struct vault_err ve;

	if (vault_open(nonod->db, nonod->state_dir, &vo, &nonod->vault, &ve) < 0)
		snprintf(vault_error, sizeof(vault_error), "%s", ve.msg);
}

int nonod_init(const struct nonod_options *o)
{
	char err[1024], *dbpath = NULL;
	int rc;

	nonod = &the_daemon;
	memset(nonod, 0, sizeof(*nonod));
	nonod->mode = o->mode;
	nonod->start_ms = nonod_now_ms();
	config_path = o->config_path;
	config_explicit = o->config_explicit;
	log_level_forced = o->log_level;

	if (config_load(config_path, config_explicit, &nonod->cfg, err, sizeof(err)) < 0) {
		log_errorx("configuration: %s", err);
		return -EINVAL;
	}
	daemon_apply_log_level();
	signal(SIGPIPE, SIG_IGN);
	daemon_raise_nofile();

	nonod->state_dir = strdup(o->state_dir);
	if (nonod->state_dir == NULL)
		return -ENOMEM;
	if ((rc = daemon_make_state_dir(nonod->state_dir)) < 0)
		return rc;
	if (asprintf(&dbpath, "%s/nonod.db", nonod->state_dir) < 0)
		return -ENOMEM;
	rc = db_open(dbpath, &nonod->db);
	free(dbpath);
	if (rc < 0)
		return rc;
	if ((rc = db_migrate(nonod->db, "daemon", daemon_schema,
			     sizeof(daemon_schema) / sizeof(daemon_schema[0]))) < 0)
		return rc;
	nonod->base = event_base_new();
	if (nonod->base == NULL) {
		log_errorx("event_base_new failed");
		return -ENOMEM;
	}
	/* The socket (and its lock) first: a second nonod stops here, before
	 * it touches the vault or anything else in the state directory. */
	rc = server_open(o->socket_path, nonod->mode == NONOD_MODE_SYSTEM,
			 nonod->cfg->socket_gid, &nonod->socket_path);
	if (rc < 0)
		return rc;
	daemon_open_vault();
	if ((rc = audit_init()) < 0)
		return rc;
	daemon_open_snap();
	ev_sigterm = evsignal_new(nonod->base, SIGTERM, daemon_on_signal, NULL);
	ev_sigint = evsignal_new(nonod->base, SIGINT, daemon_on_signal, NULL);
	ev_sighup = evsignal_new(nonod->base, SIGHUP, daemon_on_signal, NULL);
	if (ev_sigterm == NULL || ev_sigint == NULL || ev_sighup == NULL ||
	    event_add(ev_sigterm, NULL) < 0 || event_add(ev_sigint, NULL) < 0 ||
	    event_add(ev_sighup, NULL) < 0)
		return -ENOMEM;
	if ((rc = sessions_init()) < 0)
		return rc;
	if ((rc = server_start()) < 0)
		return rc;
	daemon_record_start();
	return 0;
}

int nonod_run(void)
{
	char status[512];

	snprintf(status, sizeof(status), "serving on %s", nonod->socket_path);
	log_info("nonod %s (%s mode) %s, state in %s", NONO_VERSION,
		 nonod_mode_name(nonod->mode), status, nonod->state_dir);
	/* Ready only now: the socket accepts and every subsystem is up. */
	notify_ready(status);
	notify_watchdog_start(nonod->base);
	if (event_base_dispatch(nonod->base) < 0) {
		log_errorx("event loop failed");
		return 1;
	}
	return 0;
}

void nonod_fini(void)
{
	if (nonod == NULL)
		return;
	notify_watchdog_stop();
	server_close();
	sessions_fini();
	rmtree_async_drain(30000); /* the sessions' TMPDIRs, bounded */
	proxy_free(nonod->proxy);
	nonod->proxy = NULL;
	snap_store_free(nonod->snap);
	nonod->snap = NULL;
	audit_fini();
	conn_close_all(NULL);
	if (ev_sigterm != NULL)
		event_free(ev_sigterm);
	if (ev_sigint != NULL)
		event_free(ev_sigint);
	if (ev_sighup != NULL)
		event_free(ev_sighup);
	ev_sigterm = ev_sigint = ev_sighup = NULL;
	if (nonod->base != NULL) {
		/* Run pending deferred frees. */
		event_base_loop(nonod->base, EVLOOP_NONBLOCK);
		event_base_free(nonod->base);
	}
	vault_free(nonod->vault);
	nonod->vault = NULL;
	db_close(nonod->db);
	config_free(nonod->cfg);
	free(nonod->state_dir);
	free(nonod->runtime_dir);
	free(nonod->socket_path);
	memset(nonod, 0, sizeof(*nonod));
	nonod = NULL;
}
