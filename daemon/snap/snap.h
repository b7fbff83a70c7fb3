/*
 * The content-addressed snapshot store (DESIGN.md "Snapshots").
 *
 * Layout: one store per user under <root>/<uid>/ (root = state_dir/snapshots,
 * 0700, owned by the daemon): packs/<16 hex>.pack holding the objects named
 * by SHA-256 (format: pack.c; zstd level 1 per object: object.c; FastCDC
 * 256 KiB / 1 MiB / 4 MiB: chunk.c), objects/ab/cdef… for loose objects of
 * stores written before packs, index.db (the sqlite index: workspaces,
 * snapshots, stat cache, pack index; db_migrate("snap", …)), and a lock file
 * (flock: create/restore/diff shared, gc exclusive). Each user's index is its
 * own database so a long snapshot never holds the write lock of the daemon's
 * nonod.db, and a user's store can be removed as one directory.
 *
 * Every operation runs in a worker thread started by snap_job_start(); its
 * progress and completion come back on the libevent loop through a self-pipe.
 * The same operations are available synchronously (snap_run) for tests and
 * tools. Workspace files are read and written with the workspace owner's
 * fsuid/fsgid/groups (per-thread); the store is written as the daemon.
 *
 * Snapshot ids are the first 12 hex digits of SHA-256 over the snapshot
 * record (root hash, workspace, label, created time, excludes): short, stable,
 * and unique within a user's store (the index enforces it).
 */
#ifndef DAEMON_SNAP_SNAP_H
#define DAEMON_SNAP_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct snap_store;
struct snap_job;

#define SNAP_ID_LEN 12
#define SNAP_HEX_LEN 64

enum snap_op {
	SNAP_OP_CREATE = 1,
	SNAP_OP_LIST,
	SNAP_OP_DIFF,
	SNAP_OP_RESTORE,
	SNAP_OP_DELETE,
	SNAP_OP_VERIFY,
	SNAP_OP_GC,
	SNAP_OP_READ,           /* one file's content or symlink target (read.c) */
};

/*
 * Default per-snapshot limits. Measured (snapbench, max RSS, the meter's
 * count in brackets): 1M files with short paths in 1000 directories, first
 * snapshot 331 MB (342 MB), no-change 239 MB (234 MB); 300k files with
 * 200-byte names, first 240 MB (272 MB), no-change 197 MB (204 MB). So
 * ~240-330 bytes per entry with short paths, ~650-800 with 200-byte names. 10M entries is ten times the "million entries"
 * and keeps a tree object below the pack's u32 record length even with
 * 255-byte names (3.3 GB); 4 GiB holds 10M short-path entries (~3.3 GB) and
 * is as much as root nonod should hold for one snapshot. The meter counts
 * the walk's allocations (listings by capacity, names, paths, targets, the
 * stat cache, the read queue, encoded trees and chunk lists while they
 * exist), not buffers of fixed size (8 MiB per reader, 1 MiB per pack lane).
 */
#define SNAP_DEFAULT_MAX_ENTRIES (10ull * 1000 * 1000)
#define SNAP_DEFAULT_MAX_META (4ull << 30)

/* The most content one snapshot.read answer carries (the client pages). */
#define SNAP_READ_MAX (512u * 1024u)

/*
 * Parameters of one operation. All pointers are borrowed by snap_run() and
 * deep-copied by snap_job_start(), so the caller may free them right after.
 */
struct snap_params {
	uid_t owner;               /* whose store; workspace work runs as this uid */
	gid_t group;               /* primary gid for the fs credentials */
	const char *workspace;     /* create, diff to live; list filter (NULL = all) */
	const char *label;         /* create; NULL = "" */
	const char *const *excludes; /* create: globs (see exclude.c) */
	size_t nexcludes;
	const char *snapshot;      /* restore, delete, diff "from" */
	const char *to;            /* diff "to"; NULL = the live workspace */
	const char *const *paths;  /* restore: relative paths to restore; NULL = all;
				    * read: paths[0] is the file (npaths == 1) */
	size_t npaths;
	bool allow_unreadable;     /* create: record unreadable files instead of failing */
	/* create for a client: workspace is the client's path and owner/group
	 * the client's ids. The job (never the loop: the path may be on a FUSE
	 * mount that never answers) resolves it with those ids, or the
	 * daemon's when any_owner (an admin), checks it is a directory owned
	 * by the client unless any_owner, and uses its owner's store. */
	bool resolve_workspace;
	bool any_owner;
	/* create, diff to live: what one walk may hold (0 = the default below).
	 * Past either, the operation fails with -E2BIG naming the limit and the
	 * workspace; nothing is committed and everything is freed. */
	uint64_t max_entries;      /* files + directories + others */
	uint64_t max_meta_bytes;   /* names, paths and per-entry metadata in memory */
	int64_t keep_last;         /* gc: per workspace; < 0 = not given */
	int64_t keep_within;       /* gc: seconds; < 0 = not given */
	uint64_t read_offset;      /* read: first byte */
	uint64_t read_length;      /* read: at most this many bytes (clamped to SNAP_READ_MAX) */
	/* Tests only: called in restore after the safety snapshot, before any write. */
	void (*restore_hook)(void *arg);
	void *restore_hook_arg;
	/* Tests only: called by create between opening a file and reading it. */
	void (*read_hook)(const char *rel, int attempt, void *arg);
	void *read_hook_arg;
};

struct snap_stats {
	uint64_t files, dirs, others;   /* entries in the tree */
	uint64_t bytes;                 /* logical bytes of regular files */
	uint64_t read_files, read_bytes;/* what had to be read (stat-cache misses) */
	uint64_t new_objects, new_bytes;/* what was written to the store (on disk) */
	uint64_t unreadable;
};

struct snap_info {
	char id[SNAP_ID_LEN + 1];
	char root[SNAP_HEX_LEN + 1];
	char *workspace;
	char *label;
	int64_t created;                /* unix seconds */
	char **excludes;
	size_t nexcludes;
	struct snap_stats stats;
};

enum snap_change_kind {
	SNAP_ADDED = 1,
	SNAP_REMOVED,
	SNAP_MODIFIED,
	SNAP_TYPE_CHANGED,
};

struct snap_change {
	char *path;                     /* relative; arbitrary bytes but NUL */
	enum snap_change_kind kind;
};

struct snap_verify_stats {
	uint64_t snapshots, objects, bytes;
	uint64_t missing, corrupt;      /* both 0 = store healthy */
	uint64_t unreferenced;          /* objects on disk no snapshot reaches */
};

struct snap_gc_stats {
	uint64_t snapshots_deleted, objects_deleted, bytes_freed;
};

enum snap_read_kind {
	SNAP_READ_FILE = 1,
	SNAP_READ_SYMLINK,              /* data is the link target */
};

/* What SNAP_OP_READ produced: bytes [offset, offset + len) of an entry of size bytes. */
struct snap_read_out {
	enum snap_read_kind kind;
	uint32_t mode;                  /* st_mode as recorded (type bits included) */
	uint64_t size;                  /* whole file (or target) length */
	uint64_t offset;
	size_t len;                     /* bytes read */
	/* Those bytes in base64, NUL-terminated (the wire form, encoded in the
	 * job's thread to keep it off the event loop); malloc'd, freed by
	 * snap_result_free() unless taken (set to NULL). */
	char *data;
	bool eof;                       /* offset + len == size */
};

/* What an operation produced. Owned by whoever got it; free with snap_result_free(). */
struct snap_result {
	int err;                        /* 0 or -errno */
	char detail[512];               /* human sentence for err (may name a path) */
	struct snap_info *snaps;        /* create: 1; list: n; restore: the safety snapshot */
	size_t nsnaps;
	struct snap_change *changes;    /* diff; restore: what was rewritten */
	size_t nchanges;
	struct snap_verify_stats verify;
	struct snap_gc_stats gc;
	struct snap_read_out read;
	const char *field;              /* static: the param err is about, NULL = unknown */
};

void snap_result_free(struct snap_result *r);
const char *snap_change_kind_name(enum snap_change_kind k);

/* Progress of a running job (files/bytes done of a total that grows while walking). */
struct snap_progress {
	enum snap_op op;
	uint64_t files_done, files_total, bytes_done, bytes_total;
};

/*
 * Open the store manager rooted at root (created 0700 if missing). base may be
 * NULL for synchronous use only. Returns 0 and *out, or -errno.
 */
int snap_store_new(const char *root, struct event_base *base, struct snap_store **out);
/* Cancels running creates, waits for every job and calls its done callback
 * (on the calling thread), then frees. NULL is a no-op. */
void snap_store_free(struct snap_store *s);

/* Run op synchronously in the calling thread; fills *res (always; free it). Returns res->err. */
int snap_run(struct snap_store *s, enum snap_op op, const struct snap_params *p,
	     struct snap_result *res);

typedef void (*snap_progress_fn)(const struct snap_progress *pr, void *arg);
/* res is owned by the callee: call snap_result_free() when done with it. */
typedef void (*snap_done_fn)(struct snap_result *res, void *arg);

/*
 * Run op in a worker thread. progress (may be NULL) and done are called on
 * the store's event loop; done exactly once. Returns 0 or -errno (then done
 * is never called). An operation that walks or writes a workspace (create,
 * restore, diff to live) while another one on the same workspace of the same
 * owner runs finishes with res->err = -EBUSY: we refuse rather than queue,
 * so a client learns at once that its request was not taken (snap_run too).
 *
 * Admission: at most SNAP_JOBS_PER_UID jobs of one store owner and
 * SNAP_JOBS_RUNNING in all run at once (each is a thread with its own
 * database connection and descriptors); further jobs wait in a FIFO queue,
 * at most SNAP_JOBS_QUEUED_PER_UID per owner and SNAP_JOBS_QUEUED in all.
 * Past those: -E2BIG, and done is never called. A job that waits is
 * started from the loop when a running one of a fitting owner ends.
 */
#define SNAP_JOBS_PER_UID 4
#define SNAP_JOBS_RUNNING 16
#define SNAP_JOBS_QUEUED_PER_UID 64
#define SNAP_JOBS_QUEUED 1024
int snap_job_start(struct snap_store *s, enum snap_op op, const struct snap_params *p,
		   snap_progress_fn progress, snap_done_fn done, void *arg);
/* Why snap_job_start returned err, for an error message (static string). */
const char *snap_job_strerror(int err);

/*
 * SNAP_OP_READ's body, run by job.c in the job's thread with the repo open
 * (takes the shared store lock itself). Reads the store only, never a
 * workspace. Internal to daemon/snap/; declared here to keep snap-int.h
 * untouched while the pack work lands.
 */
struct snap_repo;
int snap_read_run(struct snap_repo *r, const struct snap_params *p, struct snap_result *res);

/* Bytes of names and metadata every snapshot walk of this process holds
 * now (budget.c; zero when none runs). */
uint64_t snap_meta_bytes_in_use(void);

/* Number of jobs running or waiting to run (for status). */
unsigned snap_store_jobs(struct snap_store *s);

#endif
