/*
 * The daemon's SQLite database (state-dir/nonod.db) and per-component
 * schema migrations.
 *
 * Each subsystem (daemon, vault, snap, ...) owns its tables and lists its
 * schema as an append-only array of SQL steps; db_migrate() applies the
 * steps not applied yet, each in one transaction together with the row in
 * schema_migrations(component, version) that records it. Never edit a step
 * that has shipped: append a new one.
 */
#ifndef DAEMON_DB_H
#define DAEMON_DB_H

#include <stddef.h>
#include <sqlite3.h>

/*
 * Open (creating if needed) the database at path with WAL, foreign keys,
 * synchronous=NORMAL, a busy timeout, and mode 0600. ":memory:" works for
 * tests. Returns 0 and *out, or -errno / -EIO with a log line.
 */
int db_open(const char *path, sqlite3 **out);
void db_close(sqlite3 *db);

/*
 * Apply steps[version..n) for component. Returns the resulting version
 * (>= 0) or a negative value; a database whose recorded version is newer
 * than n is refused with -EPROTO (downgrade), naming the component in the log.
 */
int db_migrate(sqlite3 *db, const char *component, const char *const *steps,
	       size_t n);

/* exec() a statement without results; logs sqlite's message on failure. */
int db_exec(sqlite3 *db, const char *sql);

#endif
