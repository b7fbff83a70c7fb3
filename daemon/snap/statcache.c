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
 * change rewrite 3 MB of index for 30k files). Loading only copies and
 * validates the blobs; a shard is decoded and indexed the first time a
 * walking thread looks into it, so that work runs in parallel with the walk
 * instead of before it (it was 36 ms of a 100k-file no-change snapshot).
 * Format of a shard: "SC1\0",
 * then per entry u16 path length, path bytes, u64 dev, u64 ino, u64 size,
 * i64 mtime_ns, i64 ctime_ns, 32-byte hash, little-endian. A malformed blob
 * makes the whole cache empty (every file is read again), never trusted
 * partially. (Schema step 3 dropped the single-blob table's rows: after that
 * upgrade the first snapshot of each workspace reads every file once.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snap-int.h"

#define SC_MAGIC "SC1"
#define SC_FIXED (2 + 5 * 8 + SNAP_HASH_LEN)
#define SC_SHARDS 256

struct sc_shard {
	uint8_t *blob;          /* as stored (owned) */
	size_t len;             /* 0 with blob != NULL: stored but unusable, rewrite it */
	size_t n;               /* entries, counted when loaded */
	atomic_bool ready;      /* off, keep and tab built (on first lookup) */
	uint32_t *off;          /* entry k's record starts at blob + off[k] */
	uint8_t *keep;          /* entry k matched this walk: carried into the next cache */
	uint32_t *tab;          /* open addressing by path: entry index + 1, 0 = empty */
	size_t ntab;            /* power of two, >= 2 n */
};

struct statcache {
	struct sc_shard sh[SC_SHARDS];
	pthread_mutex_t mu;     /* serializes shard builds */
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
	for (int i = 0; i < SC_SHARDS; i++) {
		free(c->sh[i].blob);
		free(c->sh[i].off);
		free(c->sh[i].keep);
		free(c->sh[i].tab);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t tab_size(size_t n)
{
	size_t t = 16;

	while (t < n * 2)
		t *= 2;
	return t;
}

uint64_t statcache_mem(const struct statcache *c)
{
	uint64_t m = sizeof(*c);

	for (int s = 0; s < SC_SHARDS; s++) {
		const struct sc_shard *sh = &c->sh[s];
		if (sh->blob != NULL)
			m += sh->len + 16;
		if (sh->n > 0)
			m += sh->n * (sizeof(*sh->off) + 1) + tab_size(sh->n) * sizeof(*sh->tab) + 48;
	}
	return m;
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

/* Index shard s (validated by count() at load). Caller holds c->mu. */
static int build(struct statcache *c, unsigned s)
{
	struct sc_shard *sh = &c->sh[s];
	size_t off = 4;

	sh->ntab = tab_size(sh->n);
	sh->off = malloc(sh->n * sizeof(*sh->off));
	sh->keep = calloc(sh->n, 1);
	sh->tab = calloc(sh->ntab, sizeof(*sh->tab));
	if (sh->off == NULL || sh->keep == NULL || sh->tab == NULL) {
		free(sh->off);
		free(sh->keep);
		free(sh->tab);
		sh->off = NULL;
		sh->keep = NULL;
		sh->tab = NULL;
		return -ENOMEM;
	}
	for (size_t k = 0; k < sh->n; k++) {
		const uint8_t *p = sh->blob + off;
		size_t plen = (size_t)p[0] | (size_t)p[1] << 8;
		size_t h = path_hash((const char *)p + 2, plen) & (sh->ntab - 1);
		while (sh->tab[h] != 0)
			h = (h + 1) & (sh->ntab - 1);
		sh->tab[h] = (uint32_t)k + 1;
		sh->off[k] = (uint32_t)off;
		off += SC_FIXED + plen;
	}
	return 0;
}

/* Shard s ready for lookups; false when it could not be built (lookups miss). */
static bool ready(struct statcache *c, unsigned s)
{
	struct sc_shard *sh = &c->sh[s];
	bool ok;

	if (atomic_load_explicit(&sh->ready, memory_order_acquire))
		return true;
	if (sh->n == 0)
		return false;
	pthread_mutex_lock(&c->mu);
	ok = atomic_load_explicit(&sh->ready, memory_order_relaxed);
	if (!ok && sh->off == NULL && build(c, s) == 0) {
		atomic_store_explicit(&sh->ready, true, memory_order_release);
		ok = true;
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
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
		if (s < 0 || s >= SC_SHARDS || c->sh[s].blob != NULL || len <= 0) {
			/* Not ours to trust: an empty shard makes the load drop the cache. */
			s = s < 0 || s >= SC_SHARDS ? 0 : s;
			len = 0;
		}
		free(c->sh[s].blob);
		c->sh[s].blob = malloc(len > 0 ? (size_t)len : 1);
		if (c->sh[s].blob == NULL)
			rc = -ENOMEM;
		else if (len > 0)
			memcpy(c->sh[s].blob, sqlite3_column_blob(st, 1), (size_t)len);
		c->sh[s].len = len > 0 ? (size_t)len : 0;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = -EIO;
	sqlite3_finalize(st);
	return rc;
}

/* Count every stored shard's entries; false when one is malformed. */
static bool validate(struct statcache *c)
{
	for (int s = 0; s < SC_SHARDS; s++) {
		ssize_t m = c->sh[s].blob ? count(c->sh[s].blob, c->sh[s].len) : 0;
		/* Offsets are u32: a shard stays far below sqlite's 1 GB blob limit. */
		if (m < 0 || (size_t)m > UINT32_MAX - 1 || c->sh[s].len > UINT32_MAX)
			return false;
		c->sh[s].n = (size_t)m;
	}
	return true;
}

int statcache_load(sqlite3 *db, int64_t ws, struct statcache **out)
{
	struct statcache *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	if (ws >= 0 && (rc = load_blobs(db, ws, c)) < 0) {
		statcache_free(c);
		return rc;
	}
	if (!validate(c)) {
		log_warnx("stat cache of workspace %lld is malformed: ignoring it", (long long)ws);
		/* Every stored shard is rewritten on the next save. */
		for (int s = 0; s < SC_SHARDS; s++) {
			c->sh[s].n = 0;
			if (c->sh[s].blob != NULL)
				c->sh[s].len = 0;
		}
	}
	*out = c;
	return 0;
}

/* Index of path in shard s (ready), trying cur's guess first; -1 if absent. */
static ssize_t lookup(const struct sc_shard *sh, unsigned s, const struct statcursor *cur,
		      const char *path, size_t plen)
{
	if (cur->shard == (int)s && cur->next < sh->n) {
		const uint8_t *p = sh->blob + sh->off[cur->next];
		if (((size_t)p[0] | (size_t)p[1] << 8) == plen && memcmp(p + 2, path, plen) == 0)
			return (ssize_t)cur->next;
	}
	for (size_t h = path_hash(path, plen) & (sh->ntab - 1); sh->tab[h] != 0;
	     h = (h + 1) & (sh->ntab - 1)) {
		const uint8_t *p = sh->blob + sh->off[sh->tab[h] - 1];
		if (((size_t)p[0] | (size_t)p[1] << 8) == plen && memcmp(p + 2, path, plen) == 0)
			return (ssize_t)sh->tab[h] - 1;
	}
	return -1;
}

bool statcache_match(struct statcache *c, struct statcursor *cur, struct statent *now)
{
	unsigned s = shard_of(now->path, now->plen);
	struct sc_shard *sh = &c->sh[s];
	const uint8_t *p;
	ssize_t k;

	if (!ready(c, s) || (k = lookup(sh, s, cur, now->path, now->plen)) < 0)
		return false;
	/* A walk meets a directory's files in the order the cache was written
	 * (both follow readdir order): the next lookup tries the next entry. */
	cur->shard = (int)s;
	cur->next = (uint32_t)k + 1;
	p = sh->blob + sh->off[k] + 2 + now->plen;
	if (rd64(p) != now->dev || rd64(p + 8) != now->ino || rd64(p + 16) != now->size ||
	    (int64_t)rd64(p + 24) != now->mtime_ns || (int64_t)rd64(p + 32) != now->ctime_ns)
		return false;
	memcpy(now->hash, p + 40, SNAP_HASH_LEN);
	sh->keep[k] = 1; /* this thread's entry alone: a path is walked once */
	return true;
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
	if (rc != SQLITE_DONE)
		log_warnx("stat cache: write shard %u of workspace %lld (%zu bytes): %s", shard,
			  (long long)ws, len, sqlite3_errmsg(db));
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
	/* The row (the blob and two integers) must fit SQLite's length limit. */
	int lim = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
	size_t max = lim > 4096 ? (size_t)lim - 64 : 4096 - 64;
	int rc = 0;

	for (int s = 0; s < SC_SHARDS; s++) {
		const struct sc_shard *sh = &c->sh[s];
		len[s] = 4;
		/* Stored but unparsable (see statcache_load): rewrite it. */
		dirty[s] = sh->blob != NULL && sh->len == 0;
		/* A shard never looked into kept nothing. */
		if (!atomic_load(&sh->ready)) {
			dirty[s] = dirty[s] || sh->n > 0;
			continue;
		}
		for (size_t i = 0; i < sh->n; i++) {
			if (sh->keep[i])
				len[s] += SC_FIXED + ((size_t)sh->blob[sh->off[i]] |
						      (size_t)sh->blob[sh->off[i] + 1] << 8);
			else
				dirty[s] = true;
		}
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
		size_t cap = len[s] < max ? len[s] : max, left_out = 0;
		uint8_t *p;
		if (!dirty[s])
			continue;
		if ((p = b = malloc(cap)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		memcpy(p, SC_MAGIC, 4);
		p += 4;
		const struct sc_shard *sh = &c->sh[s];
		for (size_t i = 0; atomic_load(&sh->ready) && i < sh->n; i++) {
			if (!sh->keep[i])
				continue;
			/* Kept entries are copied as stored. */
			size_t rl = SC_FIXED + ((size_t)sh->blob[sh->off[i]] |
						(size_t)sh->blob[sh->off[i] + 1] << 8);
			if (rl > cap - (size_t)(p - b)) {
				left_out++;
				continue;
			}
			memcpy(p, sh->blob + sh->off[i], rl);
			p += rl;
		}
		for (size_t i = afirst[s]; i < afirst[s + 1]; i++) {
			if (SC_FIXED + add[aorder[i]].plen > cap - (size_t)(p - b)) {
				left_out++;
				continue;
			}
			p = put_ent(p, &add[aorder[i]]);
		}
		if (left_out > 0)
			log_warnx("stat cache of workspace %lld: shard %u would pass %zu bytes: "
				  "%zu files left out (read again by the next snapshot)",
				  (long long)ws, s, max, left_out);
		rc = write_shard(db, ws, s, b, (size_t)(p - b));
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
		for (unsigned sh = 0; rc == 0 && sh < SC_SHARDS; sh++) {
			if (c->sh[sh].n > 0 && !ready(c, sh)) {
				rc = -ENOMEM;
				break;
			}
			const uint8_t *b = c->sh[sh].blob;
			for (size_t j = 0; j < c->sh[sh].n; j++) {
				const uint8_t *p = b + c->sh[sh].off[j];
				size_t plen = (size_t)p[0] | (size_t)p[1] << 8;
				c->sh[sh].keep[j] = ok(p + 2 + plen + 40, arg);
				dropped += !c->sh[sh].keep[j];
			}
		}
		if (rc < 0) {
			statcache_free(c);
			break;
		}
		*bad += dropped;
		if (rewrite && dropped > 0)
			rc = statcache_save(db, ids[i], c, NULL, 0);
		statcache_free(c);
	}
	free(ids);
	return rc;
}
