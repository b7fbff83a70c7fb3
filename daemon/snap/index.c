/*
 * The store's sqlite index (index.db in the user's store): workspaces,
 * snapshots, the stat cache (statcache.c) that lets an unchanged file be
 * skipped without reading it, and the pack index (pack.c). Schema steps are
 * append-only (db_migrate).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "snap-int.h"

static const char *const snap_schema[] = {
	"CREATE TABLE snap_workspaces ("
	" id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);"
	"CREATE TABLE snap_snapshots ("
	" id TEXT PRIMARY KEY,"
	" workspace INTEGER NOT NULL REFERENCES snap_workspaces(id),"
	" label TEXT NOT NULL, root TEXT NOT NULL, created INTEGER NOT NULL,"
	" excludes BLOB NOT NULL,"
	" files INTEGER NOT NULL, dirs INTEGER NOT NULL, others INTEGER NOT NULL,"
	" bytes INTEGER NOT NULL, new_objects INTEGER NOT NULL,"
	" new_bytes INTEGER NOT NULL, unreadable INTEGER NOT NULL);"
	"CREATE INDEX snap_snapshots_ws ON snap_snapshots(workspace, created);"
	/* One packed row per workspace: see statcache.c for why and the format. */
	"CREATE TABLE snap_statcache ("
	" workspace INTEGER PRIMARY KEY REFERENCES snap_workspaces(id),"
	" data BLOB NOT NULL);",
	/* Pack files (ids never reused) and where each object's record is (pack.c). */
	"CREATE TABLE snap_packs ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE snap_packidx ("
	" hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, off INTEGER NOT NULL,"
	" len INTEGER NOT NULL) WITHOUT ROWID;",
	/* The stat cache in shards, rewritten one by one (statcache.c). */
	"CREATE TABLE snap_statcache_shards ("
	" workspace INTEGER NOT NULL REFERENCES snap_workspaces(id),"
	" shard INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (workspace, shard));"
	"DELETE FROM snap_statcache;",
};

int index_migrate(sqlite3 *db)
{
	int rc = db_migrate(db, "snap", snap_schema,
			    sizeof(snap_schema) / sizeof(snap_schema[0]));

	return rc < 0 ? rc : 0;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		log_warnx("sqlite prepare: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

int index_workspace_id(sqlite3 *db, const char *path, bool create, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;

	if (create) {
		if (prep(db, "INSERT OR IGNORE INTO snap_workspaces(path) VALUES(?1)", &st) < 0)
			return -EIO;
		sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return -EIO;
	}
	if (prep(db, "SELECT id FROM snap_workspaces WHERE path = ?1", &st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int index_pack_excludes(char *const *ex, size_t n, char **blob, size_t *len)
{
	size_t l = 0;
	char *b;

	for (size_t i = 0; i < n; i++)
		l += strlen(ex[i]) + 1;
	b = malloc(l ? l : 1);
	if (b == NULL)
		return -ENOMEM;
	l = 0;
	for (size_t i = 0; i < n; i++) {
		size_t s = strlen(ex[i]) + 1;
		memcpy(b + l, ex[i], s);
		l += s;
	}
	*blob = b;
	*len = l;
	return 0;
}

static int unpack_excludes(const char *b, size_t len, struct snap_info *si)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += b[i] == '\0';
	si->excludes = calloc(n ? n : 1, sizeof(char *));
	if (si->excludes == NULL)
		return -ENOMEM;
	for (size_t off = 0; off < len && si->nexcludes < n;) {
		size_t l = strnlen(b + off, len - off);
		si->excludes[si->nexcludes] = strndup(b + off, l);
		if (si->excludes[si->nexcludes] == NULL)
			return -ENOMEM;
		si->nexcludes++;
		off += l + 1;
	}
	return 0;
}

void snap_info_clear(struct snap_info *si)
{
	free(si->workspace);
	free(si->label);
	for (size_t i = 0; i < si->nexcludes; i++)
		free(si->excludes[i]);
	free(si->excludes);
	memset(si, 0, sizeof(*si));
}

int index_insert_snapshot(sqlite3 *db, int64_t ws, const struct snap_info *si)
{
	sqlite3_stmt *st;
	char *ex;
	size_t exlen;
	int rc;

	if (index_pack_excludes(si->excludes, si->nexcludes, &ex, &exlen) < 0)
		return -ENOMEM;
	if (prep(db, "INSERT INTO snap_snapshots(id, workspace, label, root, created,"
		 " excludes, files, dirs, others, bytes, new_objects, new_bytes, unreadable)"
		 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)", &st) < 0) {
		free(ex);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, si->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ws);
	sqlite3_bind_text(st, 3, si->label, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, si->root, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, si->created);
	sqlite3_bind_blob(st, 6, ex, (int)exlen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)si->stats.files);
	sqlite3_bind_int64(st, 8, (int64_t)si->stats.dirs);
	sqlite3_bind_int64(st, 9, (int64_t)si->stats.others);
	sqlite3_bind_int64(st, 10, (int64_t)si->stats.bytes);
	sqlite3_bind_int64(st, 11, (int64_t)si->stats.new_objects);
	sqlite3_bind_int64(st, 12, (int64_t)si->stats.new_bytes);
	sqlite3_bind_int64(st, 13, (int64_t)si->stats.unreadable);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		log_warnx("insert snapshot: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	free(ex);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
}

#define SNAP_COLS "s.id, w.path, s.label, s.root, s.created, s.excludes, s.files," \
	" s.dirs, s.others, s.bytes, s.new_objects, s.new_bytes, s.unreadable" \
	" FROM snap_snapshots s JOIN snap_workspaces w ON w.id = s.workspace"

static int row_info(sqlite3_stmt *st, struct snap_info *si)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *ws = (const char *)sqlite3_column_text(st, 1);
	const char *label = (const char *)sqlite3_column_text(st, 2);
	const char *root = (const char *)sqlite3_column_text(st, 3);

	memset(si, 0, sizeof(*si));
	if (id == NULL || strlen(id) != SNAP_ID_LEN || root == NULL ||
	    strlen(root) != SNAP_HEX_LEN || ws == NULL || label == NULL)
		return -EBADMSG;
	memcpy(si->id, id, SNAP_ID_LEN + 1);
	memcpy(si->root, root, SNAP_HEX_LEN + 1);
	si->workspace = strdup(ws);
	si->label = strdup(label);
	si->created = sqlite3_column_int64(st, 4);
	if (si->workspace == NULL || si->label == NULL ||
	    unpack_excludes(sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st, 5), si) < 0) {
		snap_info_clear(si);
		return -ENOMEM;
	}
	si->stats.files = (uint64_t)sqlite3_column_int64(st, 6);
	si->stats.dirs = (uint64_t)sqlite3_column_int64(st, 7);
	si->stats.others = (uint64_t)sqlite3_column_int64(st, 8);
	si->stats.bytes = (uint64_t)sqlite3_column_int64(st, 9);
	si->stats.new_objects = (uint64_t)sqlite3_column_int64(st, 10);
	si->stats.new_bytes = (uint64_t)sqlite3_column_int64(st, 11);
	si->stats.unreadable = (uint64_t)sqlite3_column_int64(st, 12);
	return 0;
}

int index_get_snapshot(sqlite3 *db, const char *id, struct snap_info *si)
{
	sqlite3_stmt *st;
	int rc;

	if (prep(db, "SELECT " SNAP_COLS " WHERE s.id = ?1", &st) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = row_info(st, si);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_finalize(st);
	return rc;
}

int index_list(sqlite3 *db, const char *workspace, struct snap_info **out, size_t *n)
{
	sqlite3_stmt *st;
	struct snap_info *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (prep(db, workspace != NULL ?
		 "SELECT " SNAP_COLS " WHERE w.path = ?1 ORDER BY s.created, s.rowid" :
		 "SELECT " SNAP_COLS " ORDER BY s.created, s.rowid", &st) < 0)
		return -EIO;
	if (workspace != NULL)
		sqlite3_bind_text(st, 1, workspace, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct snap_info *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		if ((rc = row_info(st, &v[cnt])) < 0)
			break;
		cnt++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < cnt; i++)
			snap_info_clear(&v[i]);
		free(v);
		return rc < 0 ? rc : -EIO;
	}
	*out = v;
	*n = cnt;
	return 0;
}
