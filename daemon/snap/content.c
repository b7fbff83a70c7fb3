/*
 * A regular file's content into the store (for create.c's readers): read
 * in CDC_MAX refills, cut by content-defined chunking (chunk.c), each chunk
 * a blob and the file a chunk list, or one blob when it is one chunk. The
 * holes of a sparse file are not read (see content_store).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "create-int.h"

/* pread, not read: the SEEK_DATA/SEEK_HOLE probes move the file offset. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n, uint64_t at)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = pread(fd, buf + off, n - off, (off_t)(at + off));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		off += (size_t)r;
	}
	return (ssize_t)off;
}

/*
 * The holes of the file being read: one region [lo, hi) known to be a hole
 * (hole) or data, from lseek(SEEK_DATA/SEEK_HOLE) on the fd already open.
 * A filesystem without them answers "all data" (the VFS default) or an
 * error: then on is cleared and the file is read like any other. ENXIO
 * from SEEK_DATA means no data from there to EOF.
 */
struct holes {
	bool on;
	bool hole;
	uint64_t lo, hi;
};

/* Is [off, off + len) inside one hole? */
static bool in_hole(int fd, struct holes *hm, uint64_t off, uint64_t len)
{
	if (!hm->on || off > INT64_MAX)
		return false;
	if (off < hm->lo || off >= hm->hi) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA), e;
		if (d < 0 && errno == ENXIO) {
			hm->hole = true;
			hm->hi = UINT64_MAX;
		} else if (d < 0 || (uint64_t)d < off) {
			hm->on = false;
			return false;
		} else if ((uint64_t)d > off) {
			hm->hole = true;
			hm->hi = (uint64_t)d;
		} else if ((e = lseek(fd, (off_t)off, SEEK_HOLE)) < 0 || (uint64_t)e <= off) {
			hm->on = false;
			return false;
		} else {
			hm->hole = false;
			hm->hi = (uint64_t)e;
		}
		hm->lo = off;
	}
	return hm->hole && hm->hi - off >= len;
}

struct chunklist {
	uint8_t *b;
	size_t len, cap;
	uint64_t charged;       /* to the budget, given back when freed */
};

/* Most bytes of a chunk list: what obj_get() reads back, in whole records. */
/*
 * A chunk list grows with the file (40 bytes per chunk: 160 MiB for a 16
 * TiB sparse file, in 4 MiB zero chunks), so it is charged to the budget
 * too. Past CHUNKLIST_MAX (about 100 TiB of holes, 25 TiB of data) the
 * object could never be read back: -EFBIG, the file is too large to store.
 */
static int chunklist_add(struct cctx *c, struct chunklist *cl, uint64_t len,
			 const uint8_t h[SNAP_HASH_LEN])
{
	if (cl->len + 40 > CHUNKLIST_MAX)
		return -EFBIG;
	if (cl->len + 40 > cl->cap) {
		size_t nc = cl->cap ? cl->cap * 2 : 40 * 64;
		if (nc > CHUNKLIST_MAX)
			nc = CHUNKLIST_MAX;
		int rc = budget_charge(c, 0, 2 * (nc - cl->cap)); /* and obj_put's copy */
		if (rc < 0)
			return rc;
		cl->charged += 2 * (nc - cl->cap);
		uint8_t *nb = realloc(cl->b, nc);
		if (nb == NULL)
			return -ENOMEM;
		cl->b = nb;
		cl->cap = nc;
	}
	for (int i = 0; i < 8; i++)
		cl->b[cl->len++] = (uint8_t)(len >> (8 * i));
	memcpy(cl->b + cl->len, h, SNAP_HASH_LEN);
	cl->len += SNAP_HASH_LEN;
	return 0;
}

/*
 * Read fd to EOF, storing chunks; sets hash (blob or chunk list) and total.
 * A small file (size from the fstat before) is read with one read() asking
 * for a byte more, then read on until a read() returns 0: only that is EOF.
 * Taking "size bytes came back" as EOF saved that read() but trusted
 * st_size, which a FUSE filesystem reports as it likes (with direct_io its
 * reads are not clipped to it): a file whose st_size lies low was recorded
 * truncated, silently. The caller compares total with st_size.
 *
 * Holes: a chunk that would start where the next zero-chunk length of bytes
 * is a hole, with at least CDC_MAX bytes left, is the zero chunk (chunk.c:
 * the chunker would cut exactly that from those zeros), so it is recorded
 * without reading and total moves past it. A 16 TiB sparse file costs a
 * chunk-list entry per 4 MiB of hole, not 16 TiB of reads. Data written
 * into a hole meanwhile changes mtime/ctime, which read_one()'s fstat
 * after the read catches like any other write.
 */
int content_store(struct cctx *c, int fd, uint8_t *buf, uint64_t size,
		  uint8_t hash[SNAP_HASH_LEN], uint64_t *total)
{
	struct chunklist cl = { 0 };
	struct holes hm = { .on = size >= CDC_MAX };
	const struct cdc_zero *z = NULL;
	size_t start = 0, have = 0;     /* unchunked bytes: buf[start .. have) */
	uint64_t nchunks = 0;           /* *total: file offset of buf[have] */
	bool eof = false;
	uint8_t h[SNAP_HASH_LEN];
	int rc = 0;

	*total = 0;
	if (hm.on && cdc_zero_get(&z) < 0)
		hm.on = false;
	if (size < CDC_MIN) {
		ssize_t r;
		do
			r = pread(fd, buf, (size_t)size + 1, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		have = (size_t)r;
		*total = (uint64_t)r;
		eof = r == 0;
	}
	for (;;) {
		if (c->ctl->cancel != NULL && atomic_load(c->ctl->cancel)) {
			rc = -ECANCELED; /* nothing is committed: the store stays as it was */
			break;
		}
		uint64_t cs = *total - (have - start); /* file offset of buf[start] */
		uint64_t left = eof ? have - start : size > cs ? size - cs : 0;
		if (hm.on && left >= CDC_MAX && in_hole(fd, &hm, cs, z->len)) {
			if (!atomic_exchange(&c->zero_stored, true) &&
			    (rc = obj_put(c->r, OBJ_BLOB, z->data, z->len, z->hash)) < 0)
				break;
			if ((rc = chunklist_add(c, &cl, z->len, z->hash)) < 0)
				break;
			memcpy(h, z->hash, SNAP_HASH_LEN);
			nchunks++;
			atomic_fetch_add(&c->ctl->bytes_done, z->len);
			if (have - start >= z->len) {
				start += z->len;
			} else {
				*total = cs + z->len; /* the next read starts past it */
				start = have = 0;
			}
			continue;
		}
		if (!eof && have - start < CDC_MAX) {
			/* Compact only now: less than CDC_MAX moves, then a refill. */
			memmove(buf, buf + start, have - start);
			have -= start;
			start = 0;
			ssize_t r = read_full(fd, buf + have, 2 * CDC_MAX - have, *total);
			if (r < 0) {
				rc = (int)r;
				break;
			}
			eof = have + (size_t)r < 2 * CDC_MAX;
			have += (size_t)r;
			*total += (uint64_t)r;
		}
		if (have == start && nchunks > 0)
			break;
		size_t cut = cdc_cut(buf + start, have - start);
		if ((rc = obj_hash(OBJ_BLOB, buf + start, cut, h)) < 0 ||
		    (rc = obj_put(c->r, OBJ_BLOB, buf + start, cut, h)) < 0 ||
		    (rc = chunklist_add(c, &cl, cut, h)) < 0)
			break;
		nchunks++;
		atomic_fetch_add(&c->ctl->bytes_done, cut);
		start += cut;
		if (have == start && eof)
			break;
	}
	if (rc == 0 && nchunks == 1)
		memcpy(hash, h, SNAP_HASH_LEN);
	else if (rc == 0 && (rc = obj_hash(OBJ_FILE, cl.b, cl.len, hash)) == 0)
		rc = obj_put(c->r, OBJ_FILE, cl.b, cl.len, hash);
	free(cl.b);
	budget_release(c, cl.charged);
	return rc;
}

