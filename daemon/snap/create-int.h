/*
 * What a snapshot's walk (walk.c) and the rest of taking it (create.c:
 * reading files, writing trees, committing) share: the in-memory tree of
 * the workspace and the operation's context.
 */
#ifndef DAEMON_SNAP_CREATE_INT_H
#define DAEMON_SNAP_CREATE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snap-int.h"

#define SNAP_MAX_WORKERS 4

struct fdir;

/* One directory entry. Arrays of these never move once their directory is listed. */
struct fent {
	struct tree_ent te;      /* te.name points into the directory's name arena */
	struct fdir *dir;        /* TT_DIR: its listing (owned) */
	char *rel;               /* regular files to read: path (owned) */
	char *link;              /* symlink target (owned) */
	uint64_t dev, ino;
	int64_t ctime_ns;
	bool vanished;           /* directory removed while we walked: left out */
};

struct fdir {
	struct fent *ents;
	size_t n, cap;
	char *names;             /* every entry's name, NUL-terminated (owned) */
	char *rel;               /* path relative to the workspace, "" for the root (owned) */
	size_t rlen;
	struct fdir *parent;     /* NULL for the root */
	struct fent *self;       /* this directory's entry in parent */
	/*
	 * Bottom-up tree hashing during the walk: pending counts this listing
	 * and the subdirectories not finished; whoever brings it to zero
	 * encodes and hashes the tree, unless a file below must be read first
	 * (dirty), which leaves it to write_tree() after the reads.
	 */
	atomic_int pending;
	atomic_bool dirty;
	bool hashed;             /* hash is the finished tree's */
	uint8_t *enc;            /* the encoded tree while write_tree() stores it (owned) */
	size_t enclen;
	uint8_t hash[SNAP_HASH_LEN];
};

/*
 * What one snapshot may make nonod hold (budget.c): entries walked, and
 * bytes of listings, names, paths, symlink targets, the stat cache, the read
 * queue and, while they exist, encoded trees. Charged before (or right
 * after, for small per-entry amounts batched by each walker) they are
 * allocated; a walk over either limit fails with -E2BIG.
 */
struct budget {
	atomic_uint_fast64_t entries, bytes;
	uint64_t max_entries, max_bytes;
};

struct cctx {
	struct snap_repo *r;
	const struct snap_creds *cr;
	const struct create_opts *o;
	struct job_ctl *ctl;
	struct snap_result *res;
	int rootfd;
	struct statcache *cache;
	struct fent **queue;     /* files to read */
	size_t nqueue, capqueue;
	atomic_size_t next;
	size_t nworkers;
	atomic_int failed;
	atomic_bool zero_stored; /* the zero chunk (chunk.c) was put once for the holes */
	atomic_uint_fast64_t unreadable;
	pthread_mutex_t emu;
	int64_t start_coarse;
	struct snap_stats st;
	struct budget bud;
};

/* Limits from o (0 = the defaults in snap.h). */
void budget_init(struct cctx *c);
/* Charge n entries and b bytes. 0, or -E2BIG with the error (naming the
 * limit and the workspace) recorded in c->res and every worker stopped. */
int budget_charge(struct cctx *c, uint64_t n, uint64_t b);
/* Give back b bytes charged for something freed again (an encoded tree). */
void budget_release(struct cctx *c, uint64_t b);
/* At the end of a walk: give back to the process total what it still holds. */
void budget_fini(struct cctx *c);
/* Bytes a malloc of n costs (its header and rounding included). */
static inline uint64_t budget_malloc_cost(uint64_t n)
{
	return (n + 8 + 15) & ~(uint64_t)15;
}

/* Record the first error (with a printable path) and stop every worker. */
void create_fail(struct cctx *c, int err, const char *what, const char *rel);

/* content.c: store the content of the regular file fd (st_size size) with
 * buf (2 * CDC_MAX bytes) and give its hash; *total is what was read (the
 * caller compares it with size). 0 or -errno; -EFBIG when its chunk list
 * would pass CHUNKLIST_MAX, the most obj_get() reads back. */
#define CHUNKLIST_MAX (OBJ_MAX_PAYLOAD - OBJ_MAX_PAYLOAD % 40)
int content_store(struct cctx *c, int fd, uint8_t *buf, uint64_t size,
		  uint8_t hash[SNAP_HASH_LEN], uint64_t *total);
/* Free a listing and everything below it. NULL is a no-op. */
void fdir_free(struct fdir *d);
/* Encode d's entries (children's hashes must be final) into d->enc and
 * d->hash, charging the encoding to c's budget: *charged says how much, for
 * budget_release() once d->enc is freed (also when this fails). */
int fdir_encode(struct cctx *c, struct fdir *d, uint64_t *charged);
/*
 * Walk the workspace into root (calloc'd by the caller, rel ""): every
 * directory listed with the owner's credentials on up to SNAP_MAX_WORKERS
 * threads, regular files matched against the stat cache, trees of
 * directories with nothing to read hashed on the way. 0 or -errno (the
 * detail in c->res).
 */
int walk_all(struct cctx *c, struct fdir *root);

#endif
