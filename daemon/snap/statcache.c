/*
 * The stat cache: for each regular file of a workspace, the (dev, inode,
 * size, mtime_ns, ctime_ns) it had when it was last read, and the hash of
 * its content. A walk that finds the same tuple reuses the hash and never
 * opens the file.
 *
 * Stored as SC_SHARDS packed blobs per workspace (snap_statcache_shards),
 * a file going to the shard its directory hashes to, rather than one row per
 * file: loading 100k rows through sqlite costs ~3000 instructions and two
 * mallocs each, which alone blew the 300 ms budget of a no-change snapshot of
 * 100k files; blobs are read and indexed in place. A no-change snapshot
 * writes nothing, and a snapshot after a few edits rewrites only the shards
 * of the directories they are in (one blob for everything made a 10-file
 * change rewrite 3 MB of index for 30k files). Format of a shard: "SC1\0",
 * then per entry u16 path length, path bytes, u64 dev, u64 ino, u64 size,
 * i64 mtime_ns, i64 ctime_ns, 32-byte hash, little-endian. A malformed blob
 * makes the whole cache empty (every file is read again), never trusted
 * partially. (Schema step 3 dropped the single-blob table's rows: after that
 * upgrade the first snapshot of each workspace reads every file once.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snap-int.h"

#define SC_MAGIC "SC1"
#define SC_FIXED (2 + 5 * 8 + SNAP_HASH_LEN)
#define SC_SHARDS 256

struct statcache {
	uint8_t *blob[SC_SHARDS];
	size_t len[SC_SHARDS];
	struct statent *ents;   /* shard by shard, each in its blob's order */
	size_t first[SC_SHARDS + 1]; /* shard s is ents[first[s] .. first[s + 1]) */
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

/* The shard of a path: that of its directory, so a directory's files stay together. */
static unsigned shard_of(const char *p, size_t n)
{
	const char *slash = memrchr(p, '/', n);

	return (unsigned)path_hash(p, slash ? (size_t)(slash - p) : 0) % SC_SHARDS;
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
	for (int i = 0; i < SC_SHARDS; i++)
		free(c->blob[i]);
	free(c->ents);
	free(c->b);
	free(c);
}

/* Entries in one shard's blob, or -1 when malformed. */
static ssize_t count(const uint8_t *b, size_t len)
{
	size_t off = 4, n = 0;

	if (len < 4 || memcmp(b, SC_MAGIC, 4) != 0)
		return -1;
	while (off < len) {
		if (len - off < SC_FIXED)
			return -1;
		size_t pl = (size_t)b[off] | (size_t)b[off + 1] << 8;
		if (pl == 0 || len - off < SC_FIXED + pl)
			return -1;
		off += SC_FIXED + pl;
		n++;
	}
	return (ssize_t)n;
}

/* Index the blobs (owned by c) in place; false when one is malformed. */
static bool parse(struct statcache *c)
{
	size_t n = 0, k = 0;

	for (int s = 0; s < SC_SHARDS; s++) {
		ssize_t m = c->blob[s] ? count(c->blob[s], c->len[s]) : 0;
		if (m < 0)
			return false;
		n += (size_t)m;
	}
	c->ents = calloc(n ? n : 1, sizeof(*c->ents));
	for (c->nb = 64; c->nb < n * 2; c->nb *= 2)
		;
	c->b = calloc(c->nb, sizeof(*c->b));
	if (c->ents == NULL || c->b == NULL)
		return false;
	for (int s = 0; s < SC_SHARDS; s++) {
		c->first[s] = k;
		for (size_t off = 4; c->blob[s] != NULL && off < c->len[s]; k++) {
			struct statent *e = &c->ents[k];
			const uint8_t *p = c->blob[s] + off;
			e->plen = (size_t)p[0] | (size_t)p[1] << 8;
			e->path = (const char *)p + 2;
			p += 2 + e->plen;
			e->dev = rd64(p);
			e->ino = rd64(p + 8);
			e->size = rd64(p + 16);
			e->mtime_ns = (int64_t)rd64(p + 24);
			e->ctime_ns = (int64_t)rd64(p + 32);
			memcpy(e->hash, p + 40, SNAP_HASH_LEN);
			e->shard = (uint16_t)s;
			off += SC_FIXED + e->plen;
			size_t h = path_hash(e->path, e->plen) & (c->nb - 1);
			e->next = c->b[h];
			c->b[h] = e;
		}
	}
	c->first[SC_SHARDS] = n;
	c->n = n;
	return true;
}

static int load_blobs(sqlite3 *db, int64_t ws, struct statcache *c)
{
	sqlite3_stmt *st;
	int rc = 0, step;

	if (sqlite3_prepare_v2(db, "SELECT shard, data FROM snap_statcache_shards"
			       " WHERE workspace = ?1", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, ws);
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t s = sqlite3_column_int64(st, 0);
		int len = sqlite3_column_bytes(st, 1);
		if (s < 0 || s >= SC_SHARDS || c->blob[s] != NULL || len <= 0) {
			/* Not ours to trust: an empty shard makes parse() drop the cache. */
			s = s < 0 || s >= SC_SHARDS ? 0 : s;
			len = 0;
		}
		free(c->blob[s]);
		c->blob[s] = malloc(len > 0 ? (size_t)len : 1);
		if (c->blob[s] == NULL)
			rc = -ENOMEM;
		else if (len > 0)
			memcpy(c->blob[s], sqlite3_column_blob(st, 1), (size_t)len);
		c->len[s] = len > 0 ? (size_t)len : 0;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = -EIO;
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
	if (ws >= 0 && (rc = load_blobs(db, ws, c)) < 0) {
		statcache_free(c);
		return rc;
	}
	if (!parse(c)) {
		log_warnx("stat cache of workspace %lld is malformed: ignoring it", (long long)ws);
		free(c->ents);
		free(c->b);
		c->ents = NULL;
		c->b = NULL;
		c->n = 0;
		memset(c->first, 0, sizeof(c->first));
		/* Rewrite every stored shard on the next save. */
		for (int s = 0; s < SC_SHARDS; s++)
			if (c->blob[s] != NULL)
				c->len[s] = 0;
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

struct statent *statcache_find_next(struct statcache *c, const struct statent *prev,
				    const char *path, size_t plen)
{
	/* A walk meets files in the order the cache was written (both follow
	 * readdir order): try the entry after the last hit before hashing. */
	if (prev != NULL && prev + 1 < c->ents + c->n && prev[1].plen == plen &&
	    memcmp(prev[1].path, path, plen) == 0)
		return (struct statent *)&prev[1];
	return statcache_find(c, path, plen);
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

static int write_shard(sqlite3 *db, int64_t ws, unsigned shard, const uint8_t *b, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, len > 4 ?
			       "INSERT OR REPLACE INTO snap_statcache_shards(workspace, shard, data)"
			       " VALUES(?1, ?2, ?3)" :
			       "DELETE FROM snap_statcache_shards WHERE workspace = ?1 AND shard = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, ws);
	sqlite3_bind_int64(st, 2, shard);
	if (len > 4)
		sqlite3_bind_blob(st, 3, b, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int statcache_save(sqlite3 *db, int64_t ws, struct statcache *c, const struct statent *add,
		   size_t nadd)
{
	size_t len[SC_SHARDS], afirst[SC_SHARDS + 1] = { 0 };
	bool dirty[SC_SHARDS] = { false };
	uint16_t *ashard = NULL;
	size_t *aorder = NULL;  /* add[] indices grouped by shard */
	uint8_t *b = NULL;
	int rc = 0;

	for (int s = 0; s < SC_SHARDS; s++) {
		len[s] = 4;
		/* Stored but unparsable (see statcache_load): rewrite it. */
		dirty[s] = c->blob[s] != NULL && c->len[s] == 0;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->ents[i].keep)
			len[c->ents[i].shard] += SC_FIXED + c->ents[i].plen;
		else
			dirty[c->ents[i].shard] = true;
	}
	if (nadd > 0 && ((ashard = malloc(nadd * sizeof(*ashard))) == NULL ||
			 (aorder = malloc(nadd * sizeof(*aorder))) == NULL)) {
		free(ashard);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nadd; i++) {
		ashard[i] = (uint16_t)shard_of(add[i].path, add[i].plen);
		len[ashard[i]] += SC_FIXED + add[i].plen;
		dirty[ashard[i]] = true;
		afirst[ashard[i] + 1]++;
	}
	for (int s = 0; s < SC_SHARDS; s++)
		afirst[s + 1] += afirst[s];
	size_t next[SC_SHARDS];
	memcpy(next, afirst, sizeof(next));
	for (size_t i = 0; i < nadd; i++)
		aorder[next[ashard[i]]++] = i;
	for (unsigned s = 0; rc == 0 && s < SC_SHARDS; s++) {
		uint8_t *p;
		if (!dirty[s])
			continue;
		if (len[s] > 1000u * 1000u * 1000u) { /* sqlite's default blob limit */
			rc = -E2BIG;
			break;
		}
		if ((p = b = malloc(len[s])) == NULL) {
			rc = -ENOMEM;
			break;
		}
		memcpy(p, SC_MAGIC, 4);
		p += 4;
		for (size_t i = c->first[s]; i < c->first[s + 1]; i++)
			if (c->ents[i].keep)
				p = put_ent(p, &c->ents[i]);
		for (size_t i = afirst[s]; i < afirst[s + 1]; i++)
			p = put_ent(p, &add[aorder[i]]);
		rc = write_shard(db, ws, s, b, len[s]);
		free(b);
	}
	free(ashard);
	free(aorder);
	return rc;
}

int statcache_filter(sqlite3 *db, bool (*ok)(const uint8_t *h, void *arg), void *arg,
		     bool rewrite, uint64_t *bad)
{
	sqlite3_stmt *st;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT DISTINCT workspace FROM snap_statcache_shards", -1, &st, NULL) != SQLITE_OK)
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
