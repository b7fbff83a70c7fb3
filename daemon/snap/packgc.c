/*
 * Packs in verify and gc (maint.c calls these with the reachable set).
 *
 * gc, under the store's exclusive lock (no operation is appending):
 *  1. a pack whose every record is unreachable loses its index rows (one
 *     transaction), then its file;
 *  2. the reachable records of packs that also hold unreachable ones are
 *     copied into a new pack, made durable and indexed (pack_flush: the rows
 *     now name the new pack), then the old packs' rows go and their files;
 *  3. pack files the index does not name (left by a crash before their
 *     records were indexed, or after their rows were dropped) are removed.
 * A crash between steps leaves either an orphan file or a pack whose rows
 * are all unreachable, which the next gc removes: never a row naming a pack
 * that is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "snap-int.h"

struct prow {
	uint8_t h[SNAP_HASH_LEN];
	int64_t pack;
	uint64_t off;
	uint32_t len;
};

struct pinfo {
	int64_t id;
	char name[32];
	uint64_t live, dead;    /* records */
	bool bad;               /* a reachable record could not be read: keep the pack */
};

struct pset {
	struct prow *rows;
	size_t nrows;
	struct pinfo *packs;    /* sorted by id */
	size_t npacks;
};

static void pset_free(struct pset *s)
{
	free(s->rows);
	free(s->packs);
	memset(s, 0, sizeof(*s));
}

static int load(sqlite3 *db, struct pset *s)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	if (sqlite3_prepare_v2(db, "SELECT id, name FROM snap_packs ORDER BY id", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (s->npacks == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct pinfo *np = realloc(s->packs, nc * sizeof(*np));
			if (np == NULL) {
				rc = -ENOMEM;
				break;
			}
			s->packs = np;
			cap = nc;
		}
		memset(&s->packs[s->npacks], 0, sizeof(s->packs[0]));
		s->packs[s->npacks].id = sqlite3_column_int64(st, 0);
		if (name != NULL && pack_name_ok(name))
			strcpy(s->packs[s->npacks].name, name);
		s->npacks++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	if (sqlite3_prepare_v2(db, "SELECT hash, pack, off, len FROM snap_packidx", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = -EIO;
		goto fail;
	}
	cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct prow *p;
		if (s->nrows == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			struct prow *nr = realloc(s->rows, nc * sizeof(*nr));
			if (nr == NULL) {
				rc = -ENOMEM;
				break;
			}
			s->rows = nr;
			cap = nc;
		}
		p = &s->rows[s->nrows];
		memset(p, 0, sizeof(*p));
		if (sqlite3_column_bytes(st, 0) == SNAP_HASH_LEN)
			memcpy(p->h, sqlite3_column_blob(st, 0), SNAP_HASH_LEN);
		p->pack = sqlite3_column_int64(st, 1);
		p->off = (uint64_t)sqlite3_column_int64(st, 2);
		p->len = (uint32_t)sqlite3_column_int64(st, 3);
		s->nrows++;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	pset_free(s);
	return rc < 0 ? rc : -EIO;
}

static struct pinfo *find_pack(struct pset *s, int64_t id)
{
	size_t lo = 0, hi = s->npacks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->packs[mid].id == id)
			return &s->packs[mid];
		if (s->packs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool named(const struct pset *s, const char *name)
{
	for (size_t i = 0; i < s->npacks; i++)
		if (strcmp(s->packs[i].name, name) == 0)
			return true;
	return false;
}

/* Call fn for each pack file the index does not name. */
static int orphans(struct snap_repo *r, const struct pset *s,
		   int (*fn)(int dfd, const char *name, void *arg), void *arg)
{
	int fd = openat(pack_dirfd(r), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	struct dirent *de;
	DIR *dp;

	if (fd < 0)
		return -errno;
	dp = fdopendir(fd);
	if (dp == NULL) {
		close(fd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(dp)) != NULL)
		if (pack_name_ok(de->d_name) && !named(s, de->d_name))
			rc = fn(dirfd(dp), de->d_name, arg);
	closedir(dp);
	return rc;
}

static int count_fn(int dfd, const char *name, void *arg)
{
	(void)dfd;
	(void)name;
	(*(uint64_t *)arg)++;
	return 0;
}

int packgc_unreferenced(struct snap_repo *r, const struct hset *live, uint64_t *count)
{
	struct pset s;
	int rc = load(r->db, &s);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s.nrows; i++)
		*count += !hset_has(live, s.rows[i].h);
	rc = orphans(r, &s, count_fn, count);
	pset_free(&s);
	return rc;
}

struct unlink_arg {
	struct snap_gc_stats *gs;
};

static int unlink_fn(int dfd, const char *name, void *arg)
{
	struct unlink_arg *a = arg;
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		a->gs->bytes_freed += (uint64_t)st.st_blocks * 512;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		log_warn("unlink pack %s", name);
		return -errno;
	}
	return 0;
}

/* Copy the reachable records of partly dead packs into new packs (indexed). */
static int repack(struct snap_repo *r, struct pset *s, const struct hset *live)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < s->nrows; i++) {
		struct prow *p = &s->rows[i];
		struct pinfo *pi = find_pack(s, p->pack);
		struct pack_loc loc = { .pack = p->pack, .off = p->off, .len = p->len };
		uint8_t *raw;
		size_t rawlen;

		if (pi == NULL || pi->dead == 0 || pi->live == 0 || pi->bad ||
		    !hset_has(live, p->h))
			continue;
		rc = pack_read(r, &loc, p->h, &raw, &rawlen);
		if (rc == -ENOMEM)
			break;
		if (rc < 0) {
			/* Damaged: keep the pack as it is so verify keeps reporting it. */
			log_warnx("gc: pack %s: unreadable record, not repacking it", pi->name);
			pi->bad = true;
			rc = 0;
			continue;
		}
		rc = pack_append(r, p->h, raw, raw + 2, rawlen - 2);
		free(raw);
	}
	pthread_mutex_lock(&r->mu);
	if (rc == 0)
		rc = pack_flush(r);
	else
		pack_abort(r);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Drop the index rows of every pack that is fully dead or was rewritten. */
static int drop_rows(struct snap_repo *r, struct pset *s, struct snap_gc_stats *gs)
{
	sqlite3_stmt *dr = NULL, *dp = NULL;
	int rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;

	if (rc == 0 &&
	    (sqlite3_prepare_v2(r->db, "DELETE FROM snap_packidx WHERE hash = ?1 AND pack = ?2",
				-1, &dr, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(r->db, "DELETE FROM snap_packs WHERE id = ?1", -1, &dp,
				NULL) != SQLITE_OK))
		rc = -EIO;
	for (size_t i = 0; rc == 0 && i < s->nrows; i++) {
		struct pinfo *pi = find_pack(s, s->rows[i].pack);
		if (pi != NULL && (pi->dead == 0 || pi->bad))
			continue;
		/* Rewritten rows already name the new pack: only the dead ones match. */
		sqlite3_bind_blob(dr, 1, s->rows[i].h, SNAP_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(dr, 2, s->rows[i].pack);
		if (sqlite3_step(dr) != SQLITE_DONE)
			rc = -EIO;
		sqlite3_reset(dr);
	}
	for (size_t i = 0; rc == 0 && i < s->npacks; i++) {
		struct pinfo *pi = &s->packs[i];
		if (pi->bad || (pi->dead == 0 && pi->live > 0))
			continue;
		gs->objects_deleted += pi->dead;
		sqlite3_bind_int64(dp, 1, pi->id);
		if (sqlite3_step(dp) != SQLITE_DONE)
			rc = -EIO;
		sqlite3_reset(dp);
	}
	if (rc < 0)
		log_warnx("gc: dropping pack rows: %s", sqlite3_errmsg(r->db));
	sqlite3_finalize(dr);
	sqlite3_finalize(dp);
	if (rc == 0 && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int packgc_run(struct snap_repo *r, const struct hset *live, struct snap_gc_stats *gs)
{
	struct unlink_arg ua = { .gs = gs };
	struct pset s;
	int rc = load(r->db, &s);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s.nrows; i++) {
		struct pinfo *pi = find_pack(&s, s.rows[i].pack);
		if (pi == NULL)
			continue; /* a row naming no pack: dropped below */
		if (hset_has(live, s.rows[i].h))
			pi->live++;
		else
			pi->dead++;
	}
	rc = repack(r, &s, live);
	if (rc == 0)
		rc = drop_rows(r, &s, gs);
	pset_free(&s);
	/* Now every pack the index lost is an orphan file: remove them. */
	if (rc == 0)
		rc = load(r->db, &s);
	if (rc == 0) {
		rc = orphans(r, &s, unlink_fn, &ua);
		pset_free(&s);
	}
	if (rc == 0 && fsync(pack_dirfd(r)) < 0)
		rc = -errno;
	return rc;
}
