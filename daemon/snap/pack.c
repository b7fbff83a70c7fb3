/*
 * Pack files: objects appended to a few large files instead of one file
 * each, so a first snapshot of 30,000 files creates a handful of files and
 * makes them durable with one fsync each, not 30,000 creates and a syncfs.
 *
 * Format of packs/<16 hex>.pack: "NONOPK01", then records
 *   u32 stored length n (little-endian), 32-byte object hash,
 *   u8 type (enum obj_type), u8 compression (0 stored, 1 zstd frame),
 *   n stored bytes.
 * A record carries its own hash, so a pack can be checked without the
 * index. The index (index.db) maps hash -> (pack id, record offset, record
 * length) in snap_packidx, and snap_packs names the packs by id.
 *
 * Durability: an operation appends to packs of its own (never shared with
 * another operation; one per writer thread, see PACK_LANES), and
 * pack_flush() fsyncs them and the packs/ directory
 * before their records enter the index, in one transaction; the snapshot
 * row that references them commits after that. A crash leaves at most a
 * pack the index does not name (an orphan, removed by gc), never an index
 * row pointing into a pack that is not on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "snap-int.h"

#define PACK_MAGIC "NONOPK01"
#define PACK_NAME_LEN 21        /* 16 hex + ".pack" */
#define PACK_RFDS 8
#define PACK_REC_MAX (1024u * 1024u * 1024u)
/* Start writeback every this many bytes appended, so the fsync in
 * pack_flush() finds most of a big pack already on disk. */
#define PACK_WRITEBACK (8u * 1024u * 1024u)

struct pack_w {                 /* a pack written since the last flush */
	char name[PACK_NAME_LEN + 1];
	int fd;
};

struct pack_pend {              /* a record appended, not yet indexed */
	uint8_t h[SNAP_HASH_LEN];
	uint32_t w;             /* index into pack_state.w */
	uint32_t len;
	uint64_t off;
};

/*
 * Writer threads append through lanes, a lane per thread (up to PACK_LANES),
 * each with a pack of its own: compressing and writing in parallel never
 * waits on another thread's write.
 */
#define PACK_LANES 4

/*
 * Records smaller than PACK_BUF_DIRECT are gathered in the lane's buffer and
 * written PACK_BUF bytes at a time: a write per small file cost a journalled
 * inode update each (ext4 dirties the inode on every write that moves
 * mtime), 6% of a first snapshot's CPU.
 */
#define PACK_BUF (1024u * 1024u)
#define PACK_BUF_DIRECT (64u * 1024u)

struct pack_lane {
	pthread_mutex_t mu;
	int fd;                 /* the pack appended to, -1 none (owned by w[]) */
	uint32_t w;             /* its index in pack_state.w */
	uint64_t cur_off;       /* its end, buffered records included */
	uint64_t wb_off;        /* writeback started up to here */
	uint8_t *buf;           /* records at cur_off - blen .. cur_off, not yet written */
	size_t blen;
	struct pack_pend *pend;
	size_t npend, cappend;
};

struct pack_state {
	int dirfd;              /* packs/ */
	sqlite3_stmt *lookup;
	sqlite3_stmt *name;
	pthread_mutex_t wmu;    /* guards w, nw, capw */
	struct pack_w *w;       /* every pack written since the last flush */
	size_t nw, capw;
	struct pack_lane lane[PACK_LANES];
	struct { int64_t id; int fd; } rfd[PACK_RFDS];
	unsigned rnext;
	bool in_read;           /* a read transaction spans a batch of lookups */
};

bool pack_name_ok(const char *name)
{
	if (strlen(name) != PACK_NAME_LEN || strcmp(name + 16, ".pack") != 0)
		return false;
	for (int i = 0; i < 16; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

int pack_state_new(struct snap_repo *r)
{
	struct pack_state *ps = calloc(1, sizeof(*ps));
	int rc = 0;

	if (ps == NULL)
		return -ENOMEM;
	ps->dirfd = -1;
	for (int i = 0; i < PACK_RFDS; i++)
		ps->rfd[i].fd = -1;
	pthread_mutex_init(&ps->wmu, NULL);
	for (int i = 0; i < PACK_LANES; i++) {
		pthread_mutex_init(&ps->lane[i].mu, NULL);
		ps->lane[i].fd = -1;
	}
	r->pk = ps; /* from here pack_state_free() undoes what is done */
	if (mkdirat(r->dirfd, "packs", 0700) < 0 && errno != EEXIST)
		rc = -errno;
	else if ((ps->dirfd = openat(r->dirfd, "packs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				     O_CLOEXEC)) < 0)
		rc = -errno;
	if (rc < 0) {
		log_warnx("%s: packs/: %s", __func__, strerror(-rc));
	} else if (sqlite3_prepare_v2(r->db, "SELECT pack, off, len FROM snap_packidx"
				      " WHERE hash = ?1", -1, &ps->lookup, NULL) != SQLITE_OK ||
		   sqlite3_prepare_v2(r->db, "SELECT name FROM snap_packs WHERE id = ?1", -1,
				      &ps->name, NULL) != SQLITE_OK) {
		log_warnx("%s: prepare: %s", __func__, sqlite3_errmsg(r->db));
		rc = -EIO;
	}
	if (rc < 0)
		pack_state_free(r);
	return rc;
}

void pack_state_free(struct snap_repo *r)
{
	struct pack_state *ps = r->pk;

	if (ps == NULL)
		return;
	pack_abort(r);
	for (int i = 0; i < PACK_RFDS; i++)
		if (ps->rfd[i].fd >= 0)
			close(ps->rfd[i].fd);
	sqlite3_finalize(ps->lookup);
	sqlite3_finalize(ps->name);
	if (ps->dirfd >= 0)
		close(ps->dirfd);
	free(ps->w);
	for (int i = 0; i < PACK_LANES; i++) {
		free(ps->lane[i].pend);
		free(ps->lane[i].buf);
		pthread_mutex_destroy(&ps->lane[i].mu);
	}
	pthread_mutex_destroy(&ps->wmu);
	free(ps);
	r->pk = NULL;
}

int pack_dirfd(struct snap_repo *r)
{
	return r->pk->dirfd;
}

/*
 * Writers look up every object they store: one read transaction for the
 * whole batch (until pack_flush/pack_abort) saves sqlite's lock and unlock
 * per lookup. Objects other operations index meanwhile are not seen: at
 * worst a duplicate record, which gc removes.
 */
static void batch_begin(struct snap_repo *r)
{
	if (!r->pk->in_read)
		r->pk->in_read = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

static void batch_end(struct snap_repo *r)
{
	if (r->pk->in_read && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	r->pk->in_read = false;
}

int pack_lookup_batch(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	batch_begin(r);
	return pack_lookup(r, h, NULL);
}

int pack_lookup(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], struct pack_loc *loc)
{
	sqlite3_stmt *st = r->pk->lookup;
	int rc;

	sqlite3_bind_blob(st, 1, h, SNAP_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && loc != NULL) {
		loc->pack = sqlite3_column_int64(st, 0);
		loc->off = (uint64_t)sqlite3_column_int64(st, 1);
		loc->len = (uint32_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	log_warnx("%s: %s", __func__, sqlite3_errmsg(r->db));
	return -EIO;
}

static int pwrite_all(int fd, struct iovec *v, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwritev(fd, v, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += (uint64_t)w;
		while (n > 0 && (size_t)w >= v[0].iov_len) {
			w -= (ssize_t)v[0].iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v[0].iov_base = (char *)v[0].iov_base + w;
			v[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Start a new pack file; it becomes the one lane l appends to. */
static int pack_start(struct pack_state *ps, struct pack_lane *l)
{
	struct iovec v = { .iov_base = PACK_MAGIC, .iov_len = PACK_HDR_LEN };
	char name[PACK_NAME_LEN + 1];
	uint8_t rnd[8];
	int fd, rc;

	for (int tries = 0;; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		for (int i = 0; i < 8; i++)
			snprintf(name + 2 * i, 3, "%02x", rnd[i]);
		memcpy(name + 16, ".pack", 6);
		fd = openat(ps->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries > 8) {
			rc = -errno;
			log_warn("create pack %s", name);
			return rc;
		}
	}
	rc = pwrite_all(fd, &v, 1, 0);
	pthread_mutex_lock(&ps->wmu);
	if (rc == 0 && ps->nw == ps->capw) {
		size_t nc = ps->capw ? ps->capw * 2 : 4;
		struct pack_w *nw = realloc(ps->w, nc * sizeof(*nw));
		if (nw == NULL) {
			rc = -ENOMEM;
		} else {
			ps->w = nw;
			ps->capw = nc;
		}
	}
	if (rc == 0) {
		memcpy(ps->w[ps->nw].name, name, sizeof(name));
		ps->w[ps->nw].fd = fd;
		l->w = (uint32_t)ps->nw++;
	}
	pthread_mutex_unlock(&ps->wmu);
	if (rc < 0) {
		log_warnx("start pack %s: %s", name, strerror(-rc));
		close(fd);
		unlinkat(ps->dirfd, name, 0);
		return rc;
	}
	l->fd = fd;
	l->cur_off = PACK_HDR_LEN;
	l->wb_off = 0;
	return 0;
}

static unsigned my_lane(void)
{
	static atomic_uint next;
	static _Thread_local unsigned lane; /* 1 + a number unique to this thread */

	if (lane == 0)
		lane = atomic_fetch_add(&next, 1) + 1;
	return (lane - 1) % PACK_LANES;
}

/* Write out what the lane's buffer holds, then start writeback of what is
 * written past wb_off (only starts I/O: durability comes from pack_flush). */
static int lane_drain(struct pack_lane *l)
{
	struct iovec v = { .iov_base = l->buf, .iov_len = l->blen };
	int rc;

	if (l->blen == 0)
		return 0;
	if ((rc = pwrite_all(l->fd, &v, 1, l->cur_off - l->blen)) < 0) {
		log_warnx("write pack: %s", strerror(-rc));
		return rc;
	}
	l->blen = 0;
	if (l->cur_off - l->wb_off >= PACK_WRITEBACK) {
		sync_file_range(l->fd, (off64_t)l->wb_off, (off64_t)(l->cur_off - l->wb_off),
				SYNC_FILE_RANGE_WRITE);
		l->wb_off = l->cur_off;
	}
	return 0;
}

static int lane_append(struct pack_state *ps, struct pack_lane *l, const uint8_t *h,
		       const uint8_t hdr[2], const void *payload, size_t len)
{
	uint8_t rh[PACK_REC_HDR];
	struct iovec v[2];
	int rc;

	if (l->fd >= 0 && l->cur_off > PACK_HDR_LEN &&
	    l->cur_off + PACK_REC_HDR + len > PACK_TARGET && (rc = lane_drain(l)) < 0)
		return rc;
	if ((l->fd < 0 || (l->cur_off > PACK_HDR_LEN &&
			   l->cur_off + PACK_REC_HDR + len > PACK_TARGET)) &&
	    (rc = pack_start(ps, l)) < 0)
		return rc;
	if (l->buf == NULL && (l->buf = malloc(PACK_BUF)) == NULL)
		return -ENOMEM;
	if (l->npend == l->cappend) {
		size_t nc = l->cappend ? l->cappend * 2 : 256;
		struct pack_pend *np = realloc(l->pend, nc * sizeof(*np));
		if (np == NULL)
			return -ENOMEM;
		l->pend = np;
		l->cappend = nc;
	}
	for (int i = 0; i < 4; i++)
		rh[i] = (uint8_t)(len >> (8 * i));
	memcpy(rh + 4, h, SNAP_HASH_LEN);
	rh[36] = hdr[0];
	rh[37] = hdr[1];
	if (len < PACK_BUF_DIRECT) {
		if (l->blen + PACK_REC_HDR + len > PACK_BUF && (rc = lane_drain(l)) < 0)
			return rc;
		memcpy(l->buf + l->blen, rh, PACK_REC_HDR);
		memcpy(l->buf + l->blen + PACK_REC_HDR, payload, len);
		l->blen += PACK_REC_HDR + len;
	} else {
		if ((rc = lane_drain(l)) < 0)
			return rc;
		v[0] = (struct iovec){ .iov_base = rh, .iov_len = sizeof(rh) };
		v[1] = (struct iovec){ .iov_base = (void *)payload, .iov_len = len };
		if ((rc = pwrite_all(l->fd, v, 2, l->cur_off)) < 0) {
			log_warnx("write pack: %s", strerror(-rc));
			return rc;
		}
	}
	memcpy(l->pend[l->npend].h, h, SNAP_HASH_LEN);
	l->pend[l->npend].w = l->w;
	l->pend[l->npend].off = l->cur_off;
	l->pend[l->npend].len = (uint32_t)(PACK_REC_HDR + len);
	l->npend++;
	l->cur_off += PACK_REC_HDR + len;
	if (l->blen == 0 && l->cur_off - l->wb_off >= PACK_WRITEBACK) {
		sync_file_range(l->fd, (off64_t)l->wb_off, (off64_t)(l->cur_off - l->wb_off),
				SYNC_FILE_RANGE_WRITE);
		l->wb_off = l->cur_off;
	}
	return 0;
}

int pack_append(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], const uint8_t hdr[2],
		const void *payload, size_t len)
{
	struct pack_state *ps = r->pk;
	struct pack_lane *l = &ps->lane[my_lane()];
	int rc;

	if (len > PACK_REC_MAX)
		return -EFBIG;
	pthread_mutex_lock(&l->mu);
	rc = lane_append(ps, l, h, hdr, payload, len);
	pthread_mutex_unlock(&l->mu);
	return rc;
}

/* Forget what was appended (the files stay: callers decide). */
static void lanes_reset(struct pack_state *ps)
{
	for (size_t i = 0; i < ps->nw; i++)
		close(ps->w[i].fd);
	ps->nw = 0;
	for (int i = 0; i < PACK_LANES; i++) {
		ps->lane[i].fd = -1;
		ps->lane[i].npend = 0;
		ps->lane[i].blen = 0;
	}
}

void pack_abort(struct snap_repo *r)
{
	struct pack_state *ps = r->pk;

	batch_end(r);
	for (size_t i = 0; i < ps->nw; i++)
		unlinkat(ps->dirfd, ps->w[i].name, 0);
	lanes_reset(ps);
}

static int exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	log_warnx("%s: %s", sql, sqlite3_errmsg(db));
	return -EIO;
}

static int pend_cmp(const void *a, const void *b)
{
	const struct pack_pend *x = *(const struct pack_pend *const *)a;
	const struct pack_pend *y = *(const struct pack_pend *const *)b;

	return memcmp(x->h, y->h, SNAP_HASH_LEN);
}

/* Name the packs and index their records: one transaction. */
static int pack_index(struct snap_repo *r, int64_t *ids)
{
	struct pack_state *ps = r->pk;
	sqlite3_stmt *ins = NULL, *idx = NULL;
	int rc = exec(r->db, "BEGIN IMMEDIATE");

	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(r->db, "INSERT INTO snap_packs(name) VALUES(?1)", -1, &ins,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO snap_packidx(hash, pack, off, len)"
			       " VALUES(?1, ?2, ?3, ?4)", -1, &idx, NULL) != SQLITE_OK)
		rc = -EIO;
	for (size_t i = 0; rc == 0 && i < ps->nw; i++) {
		sqlite3_bind_text(ins, 1, ps->w[i].name, -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			rc = -EIO;
		ids[i] = sqlite3_last_insert_rowid(r->db);
		sqlite3_reset(ins);
	}
	/* In key order: sqlite then appends to its b-tree (or walks it in
	 * order) instead of splitting random pages, 31k rows of a first
	 * snapshot in a fraction of the time. */
	size_t n = 0;
	for (int l = 0; l < PACK_LANES; l++)
		n += ps->lane[l].npend;
	const struct pack_pend **order = malloc((n ? n : 1) * sizeof(*order));
	if (order == NULL && rc == 0)
		rc = -ENOMEM;
	n = 0;
	for (int l = 0; rc == 0 && l < PACK_LANES; l++)
		for (size_t i = 0; i < ps->lane[l].npend; i++)
			order[n++] = &ps->lane[l].pend[i];
	if (rc == 0)
		qsort(order, n, sizeof(*order), pend_cmp);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct pack_pend *p = order[i];
		sqlite3_bind_blob(idx, 1, p->h, SNAP_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(idx, 2, ids[p->w]);
		sqlite3_bind_int64(idx, 3, (int64_t)p->off);
		sqlite3_bind_int64(idx, 4, p->len);
		if (sqlite3_step(idx) != SQLITE_DONE)
			rc = -EIO;
		sqlite3_reset(idx);
	}
	free(order);
	if (rc < 0)
		log_warnx("%s: %s", __func__, sqlite3_errmsg(r->db));
	sqlite3_finalize(ins);
	sqlite3_finalize(idx);
	if (rc == 0)
		rc = exec(r->db, "COMMIT");
	if (rc < 0)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int pack_flush(struct snap_repo *r)
{
	struct pack_state *ps = r->pk;
	int64_t *ids;
	int rc = 0;

	batch_end(r);
	if (ps->nw == 0)
		return 0;
	for (int i = 0; rc == 0 && i < PACK_LANES; i++)
		if (ps->lane[i].fd >= 0)
			rc = lane_drain(&ps->lane[i]);
	for (size_t i = 0; rc == 0 && i < ps->nw; i++)
		if (fsync(ps->w[i].fd) < 0) {
			rc = -errno;
			log_warn("fsync pack %s", ps->w[i].name);
		}
	if (rc == 0 && fsync(ps->dirfd) < 0) {
		rc = -errno;
		log_warn("fsync packs/");
	}
	ids = calloc(ps->nw, sizeof(*ids));
	if (rc == 0)
		rc = ids == NULL ? -ENOMEM : pack_index(r, ids);
	free(ids);
	if (rc < 0) {
		pack_abort(r);
		return rc;
	}
	lanes_reset(ps);
	return 0;
}

/* An fd for pack id (cached). Caller holds r->mu. */
static int pack_fd(struct snap_repo *r, int64_t id)
{
	struct pack_state *ps = r->pk;
	const char *name;
	int fd, rc;

	for (int i = 0; i < PACK_RFDS; i++)
		if (ps->rfd[i].fd >= 0 && ps->rfd[i].id == id)
			return ps->rfd[i].fd;
	sqlite3_bind_int64(ps->name, 1, id);
	rc = sqlite3_step(ps->name);
	name = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(ps->name, 0) : NULL;
	if (name == NULL || !pack_name_ok(name))
		fd = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT : -EIO;
	else if ((fd = openat(ps->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		fd = -errno;
	sqlite3_reset(ps->name);
	if (fd < 0)
		return fd;
	unsigned slot = ps->rnext++ % PACK_RFDS;
	if (ps->rfd[slot].fd >= 0)
		close(ps->rfd[slot].fd);
	ps->rfd[slot].id = id;
	ps->rfd[slot].fd = fd;
	return fd;
}

int pack_read(struct snap_repo *r, const struct pack_loc *loc, const uint8_t h[SNAP_HASH_LEN],
	      uint8_t **raw, size_t *rawlen)
{
	uint8_t *buf;
	size_t off = 0;
	uint32_t n;
	int fd, rc = 0;

	*raw = NULL;
	if (loc->len < PACK_REC_HDR || loc->len > PACK_REC_MAX || loc->off < PACK_HDR_LEN)
		return -EBADMSG;
	buf = malloc(loc->len);
	if (buf == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&r->mu);
	fd = pack_fd(r, loc->pack);
	while (fd >= 0 && off < loc->len) {
		ssize_t k = pread(fd, buf + off, loc->len - off, (off_t)(loc->off + off));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = k < 0 ? -errno : -EBADMSG; /* short: a truncated pack */
			break;
		}
		off += (size_t)k;
	}
	pthread_mutex_unlock(&r->mu);
	if (fd < 0)
		rc = fd;
	if (rc == 0) {
		n = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
		    (uint32_t)buf[3] << 24;
		if (n != loc->len - PACK_REC_HDR || memcmp(buf + 4, h, SNAP_HASH_LEN) != 0)
			rc = -EBADMSG;
	}
	if (rc < 0) {
		free(buf);
		return rc;
	}
	memmove(buf, buf + 36, loc->len - 36);
	*raw = buf;
	*rawlen = loc->len - 36;
	return 0;
}
