/*
 * The stat cache: for each regular file of a workspace, the (dev, inode,
 * size, mtime_ns, ctime_ns) it had when it was last read, and the hash of
 * its content. A walk that finds the same tuple reuses the hash and never
 * opens the file.
 *
 * Stored as one packed blob per workspace (snap_statcache.data) rather than
 * one row per file: loading 100k rows through sqlite costs ~3000
 * instructions and two mallocs each, which alone blew the 300 ms budget of a
 * no-change snapshot of 100k files; one blob is read and indexed in place.
 * A no-change snapshot writes nothing. Format: "SC1\0", then per entry
 * u16 path length, path bytes, u64 dev, u64 ino, u64 size, i64 mtime_ns,
 * i64 ctime_ns, 32-byte hash, little-endian. A malformed blob is treated as
 * an empty cache (every file is read again), never trusted partially.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snap-int.h"

#define SC_MAGIC "SC1"
#define SC_FIXED (2 + 5 * 8 + SNAP_HASH_LEN)

struct statcache {
	uint8_t *blob;
	size_t len;
	struct statent *ents;
	size_t n;
	struct statent **b;
	size_t nb;
};

static size_t path_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 29));
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

void statcache_free(struct statcache *c)
{
	if (c == NULL)
		return;
	free(c->blob);
	free(c->ents);
	free(c->b);
	free(c);
}

/* Index blob (owned by c) in place; false when malformed. */
static bool parse(struct statcache *c)
{
	size_t off = 4, n = 0;

	if (c->len < 4 || memcmp(c->blob, SC_MAGIC, 4) != 0)
		return false;
	while (off < c->len) {
		if (c->len - off < SC_FIXED)
			return false;
		size_t pl = (size_t)c->blob[off] | (size_t)c->blob[off + 1] << 8;
		if (pl == 0 || c->len - off < SC_FIXED + pl)
			return false;
		off += SC_FIXED + pl;
		n++;
	}
	c->ents = calloc(n ? n : 1, sizeof(*c->ents));
	for (c->nb = 64; c->nb < n * 2; c->nb *= 2)
		;
	c->b = calloc(c->nb, sizeof(*c->b));
	if (c->ents == NULL || c->b == NULL)
		return false;
	off = 4;
	for (size_t i = 0; i < n; i++) {
		struct statent *e = &c->ents[i];
		const uint8_t *p = c->blob + off;
		e->plen = (size_t)p[0] | (size_t)p[1] << 8;
		e->path = (const char *)p + 2;
		p += 2 + e->plen;
		e->dev = rd64(p);
		e->ino = rd64(p + 8);
		e->size = rd64(p + 16);
		e->mtime_ns = (int64_t)rd64(p + 24);
		e->ctime_ns = (int64_t)rd64(p + 32);
		memcpy(e->hash, p + 40, SNAP_HASH_LEN);
		off += SC_FIXED + e->plen;
		size_t h = path_hash(e->path, e->plen) & (c->nb - 1);
		e->next = c->b[h];
		c->b[h] = e;
	}
	c->n = n;
	return true;
}

static int load_blob(sqlite3 *db, int64_t ws, struct statcache *c)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT data FROM snap_statcache WHERE workspace = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, ws);
	if (sqlite3_step(st) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(st, 0);
		c->blob = malloc(len > 0 ? (size_t)len : 1);
		if (c->blob == NULL)
			rc = -ENOMEM;
		else if (len > 0)
			memcpy(c->blob, sqlite3_column_blob(st, 0), (size_t)len);
		c->len = len > 0 ? (size_t)len : 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int statcache_load(sqlite3 *db, int64_t ws, struct statcache **out)
{
	struct statcache *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	if (ws >= 0 && (rc = load_blob(db, ws, c)) < 0) {
		statcache_free(c);
		return rc;
	}
	if (c->blob != NULL && !parse(c)) {
		log_warnx("stat cache of workspace %lld is malformed: ignoring it", (long long)ws);
		free(c->ents);
		free(c->b);
		c->ents = NULL;
		c->b = NULL;
		c->n = 0;
	}
	if (c->b == NULL) {
		c->nb = 1;
		c->b = calloc(1, sizeof(*c->b));
		if (c->b == NULL) {
			statcache_free(c);
			return -ENOMEM;
		}
	}
	*out = c;
	return 0;
}

struct statent *statcache_find(struct statcache *c, const char *path, size_t plen)
{
	for (struct statent *e = c->b[path_hash(path, plen) & (c->nb - 1)]; e; e = e->next)
		if (e->plen == plen && memcmp(e->path, path, plen) == 0)
			return e;
	return NULL;
}

static uint8_t *put_ent(uint8_t *p, const struct statent *e)
{
	*p++ = (uint8_t)e->plen;
	*p++ = (uint8_t)(e->plen >> 8);
	memcpy(p, e->path, e->plen);
	p += e->plen;
	p = wr64(p, e->dev);
	p = wr64(p, e->ino);
	p = wr64(p, e->size);
	p = wr64(p, (uint64_t)e->mtime_ns);
	p = wr64(p, (uint64_t)e->ctime_ns);
	memcpy(p, e->hash, SNAP_HASH_LEN);
	return p + SNAP_HASH_LEN;
}

static int write_blob(sqlite3 *db, int64_t ws, const uint8_t *b, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO snap_statcache(workspace, data)"
			       " VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, ws);
	sqlite3_bind_blob(st, 2, b, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int statcache_save(sqlite3 *db, int64_t ws, struct statcache *c, const struct statent *add,
		   size_t nadd)
{
	size_t len = 4, kept = 0;
	uint8_t *b, *p;
	int rc;

	for (size_t i = 0; i < c->n; i++)
		if (c->ents[i].keep) {
			len += SC_FIXED + c->ents[i].plen;
			kept++;
		}
	if (nadd == 0 && kept == c->n && c->blob != NULL)
		return 0; /* unchanged */
	for (size_t i = 0; i < nadd; i++)
		len += SC_FIXED + add[i].plen;
	if (len > 1024u * 1024u * 1024u)
		return -E2BIG;
	b = malloc(len);
	if (b == NULL)
		return -ENOMEM;
	memcpy(b, SC_MAGIC, 4);
	p = b + 4;
	for (size_t i = 0; i < c->n; i++)
		if (c->ents[i].keep)
			p = put_ent(p, &c->ents[i]);
	for (size_t i = 0; i < nadd; i++)
		p = put_ent(p, &add[i]);
	rc = write_blob(db, ws, b, len);
	free(b);
	return rc;
}

int statcache_filter(sqlite3 *db, bool (*ok)(const uint8_t *h, void *arg), void *arg,
		     bool rewrite, uint64_t *bad)
{
	sqlite3_stmt *st;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT workspace FROM snap_statcache", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			int64_t *ni = realloc(ids, nc * sizeof(*ni));
			if (ni == NULL) {
				rc = -ENOMEM;
				break;
			}
			ids = ni;
			cap = nc;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct statcache *c;
		size_t dropped = 0;
		if ((rc = statcache_load(db, ids[i], &c)) < 0)
			break;
		for (size_t j = 0; j < c->n; j++) {
			c->ents[j].keep = ok(c->ents[j].hash, arg);
			dropped += !c->ents[j].keep;
		}
		*bad += dropped;
		if (rewrite && dropped > 0)
			rc = statcache_save(db, ids[i], c, NULL, 0);
		statcache_free(c);
	}
	free(ids);
	return rc;
}
