/*
 * Internals shared by the snapshot store's files: the per-user repository,
 * objects, chunking, tree objects, the index, credentials and path safety.
 * Nothing outside daemon/snap/ includes this.
 */
#ifndef DAEMON_SNAP_SNAP_INT_H
#define DAEMON_SNAP_SNAP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "snap.h"

#define SNAP_HASH_LEN 32

/* ---- util.c: hex, hash sets, fatal-free allocation helpers ---- */
void snap_hex(const uint8_t h[SNAP_HASH_LEN], char out[SNAP_HEX_LEN + 1]);
int snap_unhex(const char *s, uint8_t h[SNAP_HASH_LEN]);
void snap_set_err(struct snap_result *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Printable rendering of a path for messages (control bytes escaped). */
void snap_path_print(const char *path, char *out, size_t outlen);
int64_t snap_now_ns(void);
/* A timestamp in nanoseconds (stat times, as the stat cache keeps them). */
int64_t snap_ts_ns(const struct timespec *t);
/* Append "/name" (or "name" when len is 0) to the relative path buf[0..len);
 * returns the new length, or 0 when it would not fit in cap. */
size_t snap_path_push(char *buf, size_t cap, size_t len, const char *name, size_t nlen);

/* A set of 32-byte hashes (open addressing). */
struct hset;
struct hset *hset_new(void);
void hset_free(struct hset *h);
/* 1 = added, 0 = was present, -ENOMEM. */
int hset_add(struct hset *h, const uint8_t k[SNAP_HASH_LEN]);
bool hset_has(const struct hset *h, const uint8_t k[SNAP_HASH_LEN]);
size_t hset_count(const struct hset *h);

/* ---- repo.c: one user's store opened for one operation (one thread) ---- */
struct snap_repo {
	int dirfd;              /* <root>/<uid> */
	int objfd;              /* objects/: loose objects of stores older than packs */
	bool has_loose;         /* objects/ is not empty: look there too */
	int lockfd;             /* lock file, flock()ed */
	sqlite3 *db;            /* index.db, this operation's own connection */
	uid_t uid;
	/* Guards pending, pk and the db connection while worker threads store objects. */
	pthread_mutex_t mu;
	struct hset *pending;   /* appended to packs, not yet flushed */
	atomic_uint_fast64_t new_objects, new_bytes;
	struct pack_state *pk;  /* pack.c: writer, index statements, read fds (under mu) */
};

int repo_open(const char *root, uid_t uid, struct snap_repo **out);
void repo_close(struct snap_repo *r);
/* flock the store: shared for writers of snapshots, exclusive for gc. */
int repo_lock(struct snap_repo *r, bool exclusive);
/* Make every pending object durable, then index it (pack_flush). */
int repo_flush(struct snap_repo *r);

/* ---- pack.c: append-only pack files holding objects (format in pack.c) ---- */
#define PACK_HDR_LEN 8          /* "NONOPK01" */
#define PACK_REC_HDR 38         /* u32 stored length, 32-byte hash, type, compression */
#define PACK_TARGET (64u * 1024u * 1024u) /* start a new pack past this size */
struct pack_loc {
	int64_t pack;           /* snap_packs.id */
	uint64_t off;           /* record start */
	uint32_t len;           /* whole record */
};
int pack_state_new(struct snap_repo *r);
void pack_state_free(struct snap_repo *r);
/* Caller holds r->mu. 1 when h is in an indexed pack (loc filled if not NULL), 0 not, <0 error. */
int pack_lookup(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], struct pack_loc *loc);
/* Same, for a writer about to store h: keeps one read transaction open until
 * pack_flush()/pack_abort(), so the caller must flush before writing the index. */
int pack_lookup_batch(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN]);
/* Append one record (hdr = type, compression byte), pending until pack_flush.
 * Thread-safe: each calling thread appends to a pack of its own lane. */
int pack_append(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], const uint8_t hdr[2],
		const void *payload, size_t len);
/* Read the record at loc for h: *raw = type, compression, stored bytes (malloc'd). */
int pack_read(struct snap_repo *r, const struct pack_loc *loc, const uint8_t h[SNAP_HASH_LEN],
	      uint8_t **raw, size_t *rawlen);
/* Caller holds r->mu and no append is running. fsync the packs written,
 * then index their records (one transaction). */
int pack_flush(struct snap_repo *r);
/* Drop unflushed packs (their files are unlinked). As for pack_flush. */
void pack_abort(struct snap_repo *r);
/* Is name a pack file name we create ("<16 hex>.pack")? */
bool pack_name_ok(const char *name);
int pack_dirfd(struct snap_repo *r);

/* ---- packgc.c: packs in verify and gc ---- */
/* verify: count index rows live does not reach, and pack files the index lacks. */
int packgc_unreferenced(struct snap_repo *r, const struct hset *live, uint64_t *count);
/* gc (exclusive lock): drop dead packs, rewrite partly dead ones, remove orphan pack files. */
int packgc_run(struct snap_repo *r, const struct hset *live, struct snap_gc_stats *gs);

/* ---- object.c ---- */
enum obj_type {
	OBJ_BLOB = 'B',  /* a chunk of file data, or a whole small file, or a symlink target */
	OBJ_FILE = 'F',  /* a chunk list: (u64 length, hash) per chunk */
	OBJ_TREE = 'T',  /* a directory: see tree.c */
};
/* The largest payload obj_get() reads back (a sanity bound): nothing larger
 * is ever stored (create.c caps chunk lists at it). */
#define OBJ_MAX_PAYLOAD (1024u * 1024u * 1024u)
int obj_hash(enum obj_type t, const void *data, size_t len, uint8_t out[SNAP_HASH_LEN]);
/* Store if not present (compressing) in this operation's pack; durable and
 * indexed only after repo_flush(), which must come before any index write
 * on r->db (see pack_lookup_batch). Returns 0 or -errno. */
int obj_put(struct snap_repo *r, enum obj_type t, const void *data, size_t len,
	    const uint8_t h[SNAP_HASH_LEN]);
/* 1 present, 0 absent, <0 error. */
int obj_exists(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN]);
/* The same for a writer: one read transaction until repo_flush (see obj_put). */
int obj_exists_batch(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN]);
/*
 * Read and (when verify) re-hash an object. *data is malloc'd (caller frees).
 * Objects this repo stored are readable once repo_flush() has indexed them.
 * -ENOENT missing, -EBADMSG corrupt or wrong type (when want != 0).
 */
int obj_get(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], enum obj_type want,
	    bool verify, uint8_t **data, size_t *len, enum obj_type *type);

/* ---- chunk.c: FastCDC ---- */
#define CDC_MIN (256u * 1024u)
#define CDC_AVG (1024u * 1024u)
#define CDC_MAX (4u * 1024u * 1024u)
/* Length of the next chunk of p[0..n); n must be >= CDC_MAX unless at EOF. */
size_t cdc_cut(const uint8_t *p, size_t n);
/*
 * The zero chunk: what cdc_cut() cuts from a run of zeros with at least
 * CDC_MAX bytes before EOF (len, computed once by running the chunker over
 * zeros), its blob hash, and len zero bytes to store it from (static).
 */
struct cdc_zero {
	size_t len;
	uint8_t hash[SNAP_HASH_LEN];
	const uint8_t *data;
};
/* 0 and *out (static, never freed), or -errno when hashing failed (then
 * callers read and write holes like any data). Thread-safe. */
int cdc_zero_get(const struct cdc_zero **out);

/* ---- tree.c ---- */
#define TREE_ENT_FIXED (2 + 1 + 4 + 8 + 8 + SNAP_HASH_LEN) /* per entry, plus its name */
enum tree_type {
	TT_REG = 1, TT_DIR, TT_SYMLINK, TT_FIFO, TT_SOCK, TT_CHR, TT_BLK,
	TT_UNREADABLE, /* recorded, content not stored (allow_unreadable) */
};
struct tree_ent {
	const char *name;       /* not NUL-terminated in decoded trees: use nlen */
	uint16_t nlen;
	uint8_t type;
	uint32_t mode;          /* st_mode (type bits included) */
	uint64_t size;          /* file size, symlink length, rdev for devices */
	int64_t mtime_ns;
	uint8_t hash[SNAP_HASH_LEN]; /* zero when there is no content */
};
struct tree {
	struct tree_ent *ents;
	size_t n;
	uint8_t *buf;           /* owns the name bytes */
};
/* Sorts ents by name and encodes; *out malloc'd. Rejects duplicates (-EINVAL). */
int tree_encode(struct tree_ent *ents, size_t n, uint8_t **out, size_t *outlen);
/* Validates strictly (order, names, types, length); takes ownership of buf. */
int tree_decode(uint8_t *buf, size_t len, struct tree *t);
void tree_release(struct tree *t);
int tree_load(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], struct tree *t);
int tree_name_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* ---- index.c ---- */
int index_migrate(sqlite3 *db);
int index_workspace_id(sqlite3 *db, const char *path, bool create, int64_t *id);
int index_insert_snapshot(sqlite3 *db, int64_t ws, const struct snap_info *si);
int index_get_snapshot(sqlite3 *db, const char *id, struct snap_info *si);
int index_list(sqlite3 *db, const char *workspace, struct snap_info **out, size_t *n);
void snap_info_clear(struct snap_info *si);
/* Excludes stored as NUL-separated bytes. */
int index_pack_excludes(char *const *ex, size_t n, char **blob, size_t *len);

/* ---- statcache.c: (dev, ino, size, mtime, ctime) -> hash per path ---- */
struct statent {
	const char *path;       /* not NUL-terminated: plen bytes */
	size_t plen;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint8_t hash[SNAP_HASH_LEN];
};
/* A walking thread's place in the cache: its next lookup tries the entry
 * after its last one first. Start at { -1, 0 }. */
struct statcursor {
	int shard;
	uint32_t next;
};
struct statcache;
/* Load workspace ws's cache (ws < 0 or none stored: empty). Matching is
 * thread-safe (one thread per path); save and filter run alone. */
int statcache_load(sqlite3 *db, int64_t ws, struct statcache **out);
void statcache_free(struct statcache *c);
/* Bytes c holds once every shard is indexed (for the snapshot's budget). */
uint64_t statcache_mem(const struct statcache *c);
/* Is now->path cached with now's exact (dev, ino, size, mtime_ns, ctime_ns)?
 * Then the entry is kept for the next cache, its hash copied into now->hash,
 * and the answer is true. */
bool statcache_match(struct statcache *c, struct statcursor *cur, struct statent *now);
/* Store the kept entries of c plus add[0..nadd) as ws's cache; shards with
 * nothing dropped or added are not written. A shard never grows past what
 * the db will store (SQLITE_LIMIT_LENGTH): entries that do not fit are left
 * out (those files are read again next time) with a warning. */
int statcache_save(sqlite3 *db, int64_t ws, struct statcache *c, const struct statent *add,
		   size_t nadd);
/* Drop (rewrite) or count entries whose hash fails ok(), in every workspace's cache. */
int statcache_filter(sqlite3 *db, bool (*ok)(const uint8_t *h, void *arg), void *arg,
		     bool rewrite, uint64_t *bad);

/* ---- creds.c: per-thread filesystem credentials, safe path opening ---- */
struct snap_creds {
	bool active;            /* we are root and switch per thread */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};
int creds_init(struct snap_creds *c, uid_t uid, gid_t gid);
void creds_release(struct snap_creds *c);
/* Switch this thread's fsuid/fsgid/groups to the user, or back to the daemon. */
int creds_user(const struct snap_creds *c);
int creds_daemon(const struct snap_creds *c);
/* openat2(dirfd, path, flags, RESOLVE_BENEATH|NO_SYMLINKS|NO_MAGICLINKS). */
int snap_open_beneath(int dirfd, const char *path, int flags, mode_t mode);
/* The same for reading (no O_CREAT) without updating the access time when
 * the caller may ask that: a snapshot leaves atimes alone, and updating
 * them cost a journalled inode write per file on a first snapshot. */
int snap_open_noatime(int dirfd, const char *path, int flags);

/* ---- exclude.c ---- */
/*
 * A pattern without '/' matches an entry's name at any depth; a pattern with
 * '/' (a leading one is dropped) matches the path relative to the workspace.
 * fnmatch(3) with FNM_PATHNAME | FNM_PERIOD is not used: '*' matches dots.
 */
bool exclude_match(char *const *ex, size_t n, const char *rel, const char *name);

/* ---- create.c ---- */
struct create_opts {
	const char *workspace;
	const char *label;
	char *const *excludes;
	size_t nexcludes;
	bool allow_unreadable;
	bool commit;            /* false: diff to live (objects written, no row) */
	uint64_t max_entries;   /* 0 = SNAP_DEFAULT_MAX_ENTRIES (snap.h) */
	uint64_t max_meta_bytes;/* 0 = SNAP_DEFAULT_MAX_META */
	void (*read_hook)(const char *rel, int attempt, void *arg);
	void *read_hook_arg;
};
struct job_ctl {             /* shared with job.c for progress */
	atomic_uint_fast64_t files_done, files_total, bytes_done, bytes_total;
	void (*progress)(struct job_ctl *ctl);
	const atomic_bool *cancel;   /* the store is closing: a create gives up (-ECANCELED) */
};
int snap_create_run(struct snap_repo *r, const struct snap_creds *cr,
		    const struct create_opts *o, struct job_ctl *ctl,
		    struct snap_result *res, struct snap_info *out);

/* ---- diff.c / restore.c / maint.c ---- */
int snap_diff_trees(struct snap_repo *r, const uint8_t *a, const uint8_t *b,
		    struct snap_result *res);
int snap_restore_run(struct snap_repo *r, const struct snap_creds *cr,
		     const struct snap_params *p, struct job_ctl *ctl, struct snap_result *res);
int snap_verify_run(struct snap_repo *r, struct snap_result *res);
int snap_gc_run(struct snap_repo *r, const struct snap_params *p, struct snap_result *res);
int snap_delete_run(struct snap_repo *r, const char *id, struct snap_result *res);
int snap_changes_add(struct snap_result *res, const char *path, enum snap_change_kind k);

#endif
