/*
 * Taking a snapshot: walk the workspace as its owner (walk.c: openat2
 * beneath the workspace fd, no symlinks followed, fstatat without
 * following), reuse the hash of every file whose (dev, inode, size, mtime,
 * ctime) matches the stat cache, read and store the rest in worker threads,
 * write the trees bottom up, make every object durable (repo_flush), then
 * commit the stat cache and the snapshot row in one transaction.
 *
 * Sockets, fifos and devices are recorded from lstat and never opened. A
 * file that changes while it is read (fstat before/after differ) is read
 * once more, then the snapshot fails naming it. A file read to EOF whose
 * length is not its st_size while its stat stays the same (a FUSE or
 * network filesystem reporting a wrong size) is never stored truncated: it
 * fails the snapshot, naming it. An unreadable file, or such a file, fails
 * the snapshot unless allow_unreadable records it as TT_UNREADABLE. What a
 * walk may hold is bounded (budget.c: max_entries, max_meta_bytes).
 * Holes of sparse files are not read (content.c, README.md), and a file
 * whose chunk list could not be read back is refused as a limit.
 * Entries are only cached when their ctime is before the walk started, so a
 * write in the same timestamp tick as our read is never hidden.
 */
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "create-int.h"
#include "log.h"

void create_fail(struct cctx *c, int err, const char *what, const char *rel)
{
	char p[600];

	snap_path_print(rel, p, sizeof(p));
	pthread_mutex_lock(&c->emu);
	snap_set_err(c->res, err, "%s: %s: %s", what, p[0] ? p : ".", strerror(-err));
	pthread_mutex_unlock(&c->emu);
	atomic_store(&c->failed, 1);
}

#define TRIM_ABOVE (32u << 20) /* budget bytes after which a walk trims the heap */

/* A pack's pending record and the pending hash set's slot, about. */
#define STORE_PER_OBJECT 64

static int queue_push(struct cctx *c, struct fent *e)
{
	if (c->nqueue == c->capqueue) {
		size_t nc = c->capqueue ? c->capqueue * 2 : 1024;
		/* with, per file, what commit() adds for its stat cache entry
		 * and what the store keeps per new object until its flush */
		int rc = budget_charge(c, 0, (nc - c->capqueue) *
				       (sizeof(struct fent *) + sizeof(struct statent) +
					sizeof(uint16_t) + sizeof(size_t) + STORE_PER_OBJECT));
		if (rc < 0)
			return rc;
		struct fent **nt = realloc(c->queue, nc * sizeof(*nt));
		if (nt == NULL)
			return -ENOMEM;
		c->queue = nt;
		c->capqueue = nc;
	}
	c->queue[c->nqueue++] = e;
	return 0;
}

/* Files to read: pointers into the finished tree (its arrays no longer move). */
static int collect_queue(struct cctx *c, struct fdir *d)
{
	int rc = 0;

	for (size_t i = 0; i < d->n && rc == 0; i++) {
		struct fent *e = &d->ents[i];
		if (e->te.type == TT_REG && e->rel != NULL)
			rc = queue_push(c, e);
		else if (e->te.type == TT_DIR && e->dir != NULL)
			rc = collect_queue(c, e->dir);
	}
	return rc;
}

/* ---- reading files (worker threads) ---- */

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
	       snap_ts_ns(&a->st_mtim) == snap_ts_ns(&b->st_mtim) &&
	       snap_ts_ns(&a->st_ctim) == snap_ts_ns(&b->st_ctim);
}

/* Open a queued file; the caller runs with the owner's credentials. */
static int open_queued(struct cctx *c, const struct fent *e)
{
	return snap_open_noatime(c->rootfd, e->rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
}

/* e is recorded without content (TT_UNREADABLE; allow_unreadable). Returns 1. */
static int record_unreadable(struct cctx *c, struct fent *e)
{
	e->te.type = TT_UNREADABLE;
	memset(e->te.hash, 0, SNAP_HASH_LEN);
	atomic_fetch_add(&c->unreadable, 1);
	return 1;
}

/*
 * A file whose content is longer or shorter than its st_size while nothing
 * about it changed (same fstat before and after): its filesystem (FUSE, a
 * network one) reports a wrong size. Recorded as unreadable when the caller
 * allows that, else the snapshot fails naming it: never stored truncated.
 */
static int size_lies(struct cctx *c, struct fent *e, uint64_t size, uint64_t got)
{
	char p[600];

	if (c->o->allow_unreadable)
		return record_unreadable(c, e);
	snap_path_print(e->rel, p, sizeof(p));
	pthread_mutex_lock(&c->emu);
	snap_set_err(c->res, -EIO, "file %s: its filesystem reports %llu bytes but reading it "
		     "to the end gave %llu: not stored", p, (unsigned long long)size,
		     (unsigned long long)got);
	pthread_mutex_unlock(&c->emu);
	atomic_store(&c->failed, 1);
	return -EIO;
}

/*
 * A file whose chunk list would pass CHUNKLIST_MAX (a sparse file of
 * exabytes, on a filesystem that allows them): recorded as unreadable when
 * the caller allows that (a restore's safety snapshot, so the restore can
 * still replace it), else the snapshot fails naming it (-E2BIG: a limit).
 */
static int too_large(struct cctx *c, struct fent *e)
{
	char p[600];

	if (c->o->allow_unreadable)
		return record_unreadable(c, e);
	snap_path_print(e->rel, p, sizeof(p));
	pthread_mutex_lock(&c->emu);
	snap_set_err(c->res, -E2BIG, "file %s is too large for the snapshot store: its chunk "
		     "list passes %u bytes (about 100 TiB of holes or 25 TiB of data)", p,
		     (unsigned)CHUNKLIST_MAX);
	pthread_mutex_unlock(&c->emu);
	atomic_store(&c->failed, 1);
	return -E2BIG;
}

/* Read and store e. fd0 is its first open (fd or -errno), always consumed. */
static int read_one(struct cctx *c, struct fent *e, uint8_t *buf, int fd0)
{
	uint64_t lied_size = 0, lied_got = 0;
	bool lied = false;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct stat a, b;
		uint64_t total;
		int fd = fd0, rc;

		lied = false;
		if (attempt > 0) {
			if ((rc = creds_user(c->cr)) < 0)
				return rc;
			fd = open_queued(c, e);
			if ((rc = creds_daemon(c->cr)) < 0) {
				if (fd >= 0)
					close(fd);
				return rc;
			}
		}
		if ((fd == -EACCES || fd == -EPERM || fd == -ENAMETOOLONG) && c->o->allow_unreadable)
			return record_unreadable(c, e);
		if (fd == -EACCES || fd == -EPERM) {
			create_fail(c, fd, "unreadable file", e->rel);
			return fd;
		}
		if (fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR || fd == -EXDEV ||
		    fd == -EISDIR)
			continue; /* vanished or replaced by a symlink/dir: retry, then fail */
		if (fd < 0) {
			create_fail(c, fd, "open", e->rel);
			return fd;
		}
		if (fstat(fd, &a) < 0 || !S_ISREG(a.st_mode) || a.st_ino != e->ino) {
			close(fd);
			continue;
		}
		if (c->o->read_hook != NULL)
			c->o->read_hook(e->rel, attempt, c->o->read_hook_arg);
		rc = content_store(c, fd, buf, (uint64_t)a.st_size, e->te.hash, &total);
		if (rc == 0 && fstat(fd, &b) < 0)
			rc = -errno;
		close(fd);
		if (rc == -EFBIG)
			return too_large(c, e);
		if (rc < 0) {
			create_fail(c, rc, "read", e->rel);
			return rc;
		}
		lied = same_stat(&a, &b) && total != (uint64_t)a.st_size;
		lied_size = (uint64_t)a.st_size;
		lied_got = total;
		if (!same_stat(&a, &b) || total != (uint64_t)a.st_size)
			continue;
		e->te.size = (uint64_t)a.st_size;
		e->te.mode = a.st_mode;
		e->te.mtime_ns = snap_ts_ns(&a.st_mtim);
		e->ctime_ns = snap_ts_ns(&a.st_ctim);
		e->dev = a.st_dev;
		return 0;
	}
	if (lied)
		return size_lies(c, e, lied_size, lied_got);
	create_fail(c, -EAGAIN, "file changed during snapshot", e->rel);
	return -EAGAIN;
}

/*
 * Files are opened OPEN_BATCH at a time with the owner's credentials, then
 * read and stored with the daemon's: two credential switches per batch
 * instead of per file. No store work ever runs with the owner's rights.
 */
#define OPEN_BATCH 32

/* Claim the next files to read: up to OPEN_BATCH small ones, fewer when few
 * are left (so every worker gets some), and a large one (a chunked file)
 * only on its own, so big files spread over the workers. 0 = none left. */
static size_t claim(struct cctx *c, size_t *i0)
{
	size_t at = atomic_load(&c->next), n;

	do {
		if (at >= c->nqueue)
			return 0;
		size_t left = c->nqueue - at, fair = left / (2 * c->nworkers);
		size_t max = fair < 1 ? 1 : fair > OPEN_BATCH ? OPEN_BATCH : fair;
		for (n = 1; n < max && c->queue[at + n - 1]->te.size < CDC_MIN &&
			    c->queue[at + n]->te.size < CDC_MIN; n++)
			;
	} while (!atomic_compare_exchange_weak(&c->next, &at, at + n));
	*i0 = at;
	return n;
}

static void *read_worker(void *arg)
{
	struct cctx *c = arg;
	uint8_t *buf = malloc(2 * CDC_MAX);
	int fds[OPEN_BATCH];
	size_t i0, n;

	if (buf == NULL) {
		create_fail(c, -ENOMEM, "read", "");
		return NULL;
	}
	while (!atomic_load(&c->failed) && (n = claim(c, &i0)) > 0) {
		size_t k;
		int rc = creds_user(c->cr);

		for (k = 0; k < n; k++)
			fds[k] = rc < 0 ? rc : open_queued(c, c->queue[i0 + k]);
		if (rc == 0 && (rc = creds_daemon(c->cr)) < 0)
			for (k = 0; k < n; k++)
				if (fds[k] >= 0)
					close(fds[k]);
		if (rc < 0) {
			create_fail(c, rc, "switch credentials", "");
			break;
		}
		for (k = 0; k < n && !atomic_load(&c->failed); k++) {
			if (read_one(c, c->queue[i0 + k], buf, fds[k]) < 0) {
				k++;
				break;
			}
			atomic_fetch_add(&c->ctl->files_done, 1);
			if (c->ctl->progress != NULL)
				c->ctl->progress(c->ctl);
		}
		for (; k < n; k++) /* stopped early: these were never consumed */
			if (fds[k] >= 0)
				close(fds[k]);
	}
	free(buf);
	return NULL;
}

static int read_all(struct cctx *c)
{
	pthread_t th[SNAP_MAX_WORKERS];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n = ncpu < 1 ? 1 : ncpu > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : (int)ncpu, started = 0;

	if ((size_t)n > c->nqueue)
		n = c->nqueue ? (int)c->nqueue : 0;
	c->nworkers = n > 0 ? (size_t)n : 1;
	for (int i = 1; i < n; i++) {
		if (pthread_create(&th[i], NULL, read_worker, c) != 0)
			break;
		started++;
	}
	if (n > 0)
		read_worker(c); /* this thread is worker 0 */
	for (int i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&c->failed) ? (c->res->err ? c->res->err : -EIO) : 0;
}

/* ---- trees ---- */

/*
 * Store the trees bottom up, with the symlink targets. A directory the walk
 * already hashed (nothing below it was read) is only looked up, and encoded
 * again if the store lacks it.
 */
static int write_tree(struct cctx *c, struct fdir *d)
{
	uint64_t charged = 0;
	int rc = 0;

	for (size_t i = 0; i < d->n && rc == 0; i++) {
		struct fent *e = &d->ents[i];
		if (e->vanished)
			continue;
		if (e->te.type == TT_DIR && e->dir != NULL)
			rc = write_tree(c, e->dir);
		else if (e->te.type == TT_SYMLINK)
			rc = obj_put(c->r, OBJ_BLOB, e->link, e->te.size, e->te.hash);
	}
	if (rc == 0 && d->hashed)
		rc = obj_exists_batch(c->r, d->hash);
	if (rc == 0 && (rc = fdir_encode(c, d, &charged)) == 0)
		rc = obj_put(c->r, OBJ_TREE, d->enc, d->enclen, d->hash);
	rc = rc > 0 ? 0 : rc;
	free(d->enc);
	d->enc = NULL;
	budget_release(c, charged);
	if (rc == 0 && d->self != NULL)
		memcpy(d->self->te.hash, d->hash, SNAP_HASH_LEN);
	return rc;
}

/* ---- commit ---- */

static int make_id(struct snap_info *si, int64_t created_ns)
{
	uint8_t h[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1], *ex, *buf;
	size_t exlen, len;
	int rc;

	if (index_pack_excludes(si->excludes, si->nexcludes, &ex, &exlen) < 0)
		return -ENOMEM;
	len = strlen(si->root) + strlen(si->workspace) + strlen(si->label) + exlen + 64;
	buf = malloc(len);
	if (buf == NULL) {
		free(ex);
		return -ENOMEM;
	}
	int n = snprintf(buf, len, "nono-snapshot-1%c%s%c%s%c%s%c%lld%c", 0, si->root, 0,
			 si->workspace, 0, si->label, 0, (long long)created_ns, 0);
	memcpy(buf + n, ex, exlen);
	rc = obj_hash(OBJ_BLOB, buf, (size_t)n + exlen, h);
	free(buf);
	free(ex);
	snap_hex(h, hex);
	memcpy(si->id, hex, SNAP_ID_LEN);
	si->id[SNAP_ID_LEN] = '\0';
	return rc;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static int begin_immediate(sqlite3 *db)
{
	return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int commit(struct cctx *c, struct snap_info *si, int64_t created_ns)
{
	sqlite3 *db = c->r->db;
	struct statent *add;
	size_t nadd = 0;
	int64_t ws;
	int rc;

	add = calloc(c->nqueue ? c->nqueue : 1, sizeof(*add));
	if (add == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < c->nqueue; i++) {
		struct fent *e = c->queue[i];
		struct statent *se = &add[nadd];
		/* Only entries older than the walk's start: see the top of this file. */
		if (e->te.type != TT_REG || e->ctime_ns >= c->start_coarse ||
		    e->te.mtime_ns >= c->start_coarse)
			continue;
		se->path = e->rel;
		se->plen = strlen(e->rel);
		se->dev = e->dev;
		se->ino = e->ino;
		se->size = e->te.size;
		se->mtime_ns = e->te.mtime_ns;
		se->ctime_ns = e->ctime_ns;
		memcpy(se->hash, e->te.hash, SNAP_HASH_LEN);
		nadd++;
	}
	if (begin_immediate(db) < 0) {
		free(add);
		return -EIO;
	}
	rc = index_workspace_id(db, c->o->workspace, true, &ws);
	if (rc == 0)
		rc = statcache_save(db, ws, c->cache, add, nadd);
	if (rc == 0 && c->o->commit) {
		rc = make_id(si, created_ns);
		if (rc == 0)
			rc = index_insert_snapshot(db, ws, si);
	}
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	free(add);
	return rc;
}

int snap_create_run(struct snap_repo *r, const struct snap_creds *cr,
		    const struct create_opts *o, struct job_ctl *ctl,
		    struct snap_result *res, struct snap_info *out)
{
	struct cctx *c = calloc(1, sizeof(*c));
	struct fdir *root = calloc(1, sizeof(*root));
	struct timespec coarse;
	struct stat st;
	int64_t created_ns = snap_now_ns(), ws;
	struct timespec t0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(out, 0, sizeof(*out));
	if (root != NULL)
		root->rel = calloc(1, 1); /* the workspace itself: "" */
	if (c == NULL || root == NULL || root->rel == NULL) {
		free(c);
		fdir_free(root);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->emu, NULL);
	c->r = r;
	c->cr = cr;
	c->o = o;
	c->ctl = ctl;
	c->res = res;
	c->rootfd = -1;
	budget_init(c);
	clock_gettime(CLOCK_REALTIME_COARSE, &coarse);
	c->start_coarse = snap_ts_ns(&coarse);
	if (index_workspace_id(r->db, o->workspace, false, &ws) < 0)
		ws = -1;
	if ((rc = statcache_load(r->db, ws, &c->cache)) < 0) {
		snap_set_err(res, rc, "cannot load the stat cache");
		goto out;
	}
	/* The cache a previous snapshot left is held for the whole walk. */
	if ((rc = budget_charge(c, 0, statcache_mem(c->cache))) < 0)
		goto out;
	if ((rc = creds_user(cr)) < 0)
		goto out;
	c->rootfd = open(o->workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = c->rootfd < 0 ? -errno : 0;
	if (rc == 0 && fstat(c->rootfd, &st) < 0)
		rc = -errno;
	if (rc == 0 && cr->active && st.st_uid != cr->uid)
		rc = -EPERM;
	if (rc < 0) {
		char p[600];
		snap_path_print(o->workspace, p, sizeof(p));
		creds_daemon(cr);
		snap_set_err(res, rc, "workspace %s: %s", p,
			     rc == -EPERM ? "not owned by the snapshot owner" : strerror(-rc));
		goto out;
	}
	log_debug("snapshot %s: stat cache loaded (%.1f ms)", o->workspace, ms_since(&t0));
	if (creds_daemon(cr) < 0) {
		rc = -EPERM;
		goto out;
	}
	rc = walk_all(c, root);
	log_debug("walked %llu files (%.1f ms)", (unsigned long long)c->st.files, ms_since(&t0));
	if (rc < 0) {
		snap_set_err(res, rc, "walk failed: %s", strerror(-rc));
		goto out;
	}
	if ((rc = collect_queue(c, root)) < 0 || (rc = read_all(c)) < 0)
		goto out;
	log_debug("read %zu files (%.1f ms)", c->nqueue, ms_since(&t0));
	if ((rc = write_tree(c, root)) < 0 || (rc = repo_flush(r)) < 0) {
		snap_set_err(res, rc, "cannot write to the store: %s", strerror(-rc));
		goto out;
	}
	log_debug("trees written, objects durable (%.1f ms)", ms_since(&t0));
	snap_hex(root->hash, out->root);
	out->workspace = strdup(o->workspace);
	out->label = strdup(o->label ? o->label : "");
	out->excludes = calloc(o->nexcludes + 1, sizeof(char *));
	if (out->workspace == NULL || out->label == NULL || out->excludes == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < o->nexcludes; i++) {
		if ((out->excludes[i] = strdup(o->excludes[i])) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		out->nexcludes++;
	}
	out->created = created_ns / 1000000000;
	c->st.unreadable += atomic_load(&c->unreadable);
	c->st.read_files = c->nqueue;
	c->st.read_bytes = atomic_load(&ctl->bytes_done);
	c->st.new_objects = atomic_load(&r->new_objects);
	c->st.new_bytes = atomic_load(&r->new_bytes);
	out->stats = c->st;
	rc = commit(c, out, created_ns);
	if (rc < 0)
		snap_set_err(res, rc, "cannot commit the snapshot to the index");
	log_debug("committed (%.1f ms); budget: %llu entries, %llu bytes at the end", ms_since(&t0),
		  (unsigned long long)atomic_load(&c->bud.entries),
		  (unsigned long long)atomic_load(&c->bud.bytes));
out:
	if (rc < 0) {
		snap_set_err(res, rc, "snapshot failed: %s", strerror(-rc));
		snap_info_clear(out);
	}
	if (c->rootfd >= 0)
		close(c->rootfd);
	statcache_free(c->cache);
	free(c->queue);
	fdir_free(root);
	pthread_mutex_destroy(&c->emu);
#ifdef __GLIBC__
	/* Hand a big walk's memory back to the system: glibc keeps freed small
	 * blocks in its arenas (a 1M-entry walk stopped at its limit left
	 * nonod 85 MB larger; 6 MB after the trim). */
	if (atomic_load(&c->bud.bytes) > TRIM_ABOVE)
		malloc_trim(0);
#endif
	budget_fini(c);
	free(c);
	return rc;
}
