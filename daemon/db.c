/* SQLite database and component schema migrations. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

int db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_errorx("sqlite: %s", msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int db_open(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	if (strcmp(path, ":memory:") != 0) {
		/* Create it 0600 ourselves: sqlite would honour the umask only. */
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			int e = errno;
			log_error("open %s", path);
			return -e;
		}
		close(fd);
	}
	rc = sqlite3_open_v2(path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		log_errorx("sqlite open %s: %s", path,
			   db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	if (db_exec(db, "PRAGMA journal_mode=WAL;") < 0 ||
	    db_exec(db, "PRAGMA synchronous=NORMAL;") < 0 ||
	    db_exec(db, "PRAGMA foreign_keys=ON;") < 0 ||
	    db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			"component TEXT PRIMARY KEY, version INTEGER NOT NULL);") < 0) {
		sqlite3_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}

void db_close(sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close(db);
}

static int db_version(sqlite3 *db, const char *component)
{
	sqlite3_stmt *st = NULL;
	int v = 0;

	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations WHERE component = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, component, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int db_set_version(sqlite3 *db, const char *component, int v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations(component, version) VALUES(?1, ?2) "
			       "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, component, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int db_migrate(sqlite3 *db, const char *component, const char *const *steps,
	       size_t n)
{
	int v = db_version(db, component);

	if (v < 0)
		return v;
	if ((size_t)v > n) {
		log_errorx("database schema for %s is version %d, newer than this nonod knows (%zu)",
			   component, v, n);
		return -EPROTO;
	}
	for (size_t i = (size_t)v; i < n; i++) {
		if (db_exec(db, "BEGIN IMMEDIATE;") < 0)
			return -EIO;
		if (db_exec(db, steps[i]) < 0 || db_set_version(db, component, (int)i + 1) < 0) {
			db_exec(db, "ROLLBACK;");
			log_errorx("migration %s step %zu failed", component, i + 1);
			return -EIO;
		}
		if (db_exec(db, "COMMIT;") < 0)
			return -EIO;
		if (i + 1 == n || i == (size_t)v)
			log_debug("%s schema now at version %zu", component, i + 1);
	}
	return (int)n;
}
