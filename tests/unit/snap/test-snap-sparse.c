/*
 * Sparse files in the snapshot store (chunk.c's zero chunk, create.c's
 * holes, restore.c's seeks, read.c):
 *
 *   - equivalence: the same bytes written densely and as a sparse file
 *     (holes shorter and longer than CDC_MAX, unaligned, at the start and
 *     the end, explicit zeros as data) give the same root hash and the same
 *     reachable objects, and verify finds the zero chunk in the store;
 *   - the attack: a 16 TiB file with a few KB of data at its start, at an
 *     odd offset in the middle and at its last byte is snapshotted, read,
 *     verified, diffed to live and restored without reading or writing the
 *     holes (the process's rchar/wchar from /proc/self/io stay small: a
 *     count, not a timing), and restores sparse with the islands byte-equal
 *     (compared through SEEK_DATA maps, never reading 16 TiB);
 *   - data written into a hole while the file is being read is caught by
 *     the fstat before/after check: read again, or the snapshot fails
 *     naming the file; the control (no write) records zeros there;
 *   - an 8 EiB file fails a snapshot as a limit (its chunk list could not
 *     be read back) and cannot block a restore;
 *   - the control: a dense file restores byte-identically.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "helpers.h"
#include "../check-run.h"
#include "log.h"
#include "snap-int.h"

#define MiB (1024ull * 1024ull)
#define TiB (1024ull * 1024ull * MiB)
#define T_MTIME 1600000000

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* rchar or wchar of this process (all its threads) from /proc/self/io. */
static uint64_t io_count(const char *key)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	unsigned long long v = 0;
	size_t kl = strlen(key);

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			v = strtoull(line + kl + 1, NULL, 10);
	fclose(f);
	return v;
}

static void pwrite_full(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);
		ck_assert_msg(w > 0, "pwrite at %llu: %s", (unsigned long long)off, strerror(errno));
		b += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
}

static void pread_full(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = pread(fd, b, n, (off_t)off);
		ck_assert_msg(r > 0, "pread at %llu: %s", (unsigned long long)off,
			      r < 0 ? strerror(errno) : "EOF");
		b += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
}

static char *path_in(const char *dir, const char *name)
{
	char *p;

	ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void set_mtime(const char *path)
{
	struct timespec ts[2] = { { T_MTIME, 0 }, { T_MTIME, 0 } };

	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* A new ctime, so the next snapshot misses the stat cache and reads name. */
static void touch(const char *dir, const char *name)
{
	char *p = path_in(dir, name);
	struct timespec ts[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static void snap(struct th_env *e, char id[SNAP_ID_LEN + 1], char root[SNAP_HEX_LEN + 1])
{
	struct snap_result r;
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, &r);

	ck_assert_msg(rc == 0, "create: %d %s", rc, r.detail);
	ck_assert_int_eq(r.nsnaps, 1);
	if (id != NULL)
		memcpy(id, r.snaps[0].id, SNAP_ID_LEN + 1);
	if (root != NULL)
		memcpy(root, r.snaps[0].root, SNAP_HEX_LEN + 1);
	snap_result_free(&r);
}

static struct snap_verify_stats verify_ok(struct th_env *e)
{
	struct snap_result r;
	struct snap_verify_stats vs;

	ck_assert_msg(snap_run(e->s, SNAP_OP_VERIFY, &e->p, &r) == 0, "verify: %s", r.detail);
	vs = r.verify;
	ck_assert_msg(vs.missing == 0 && vs.corrupt == 0, "verify: %llu missing, %llu corrupt",
		      (unsigned long long)vs.missing, (unsigned long long)vs.corrupt);
	snap_result_free(&r);
	return vs;
}

static void restore(struct th_env *e, const char *id)
{
	struct snap_result r;

	e->p.snapshot = id;
	ck_assert_msg(snap_run(e->s, SNAP_OP_RESTORE, &e->p, &r) == 0, "restore: %s", r.detail);
	snap_result_free(&r);
	e->p.snapshot = NULL;
}

/* snapshot.read of [off, off + len) of name must give want (len bytes). */
static void read_expect(struct th_env *e, const char *id, const char *name, uint64_t off,
			const uint8_t *want, size_t len)
{
	const char *paths[1] = { name };
	struct snap_params p = e->p;
	struct snap_result r;
	char *b64 = malloc(4 * ((len + 2) / 3) + 1);

	ck_assert_ptr_nonnull(b64);
	p.snapshot = id;
	p.paths = paths;
	p.npaths = 1;
	p.read_offset = off;
	p.read_length = len;
	ck_assert_msg(snap_run(e->s, SNAP_OP_READ, &p, &r) == 0, "read: %s", r.detail);
	ck_assert_uint_eq(r.read.len, len);
	EVP_EncodeBlock((unsigned char *)b64, want, (int)len);
	ck_assert_msg(strcmp(b64, r.read.data) == 0, "snapshot.read of %s at %llu differs", name,
		      (unsigned long long)off);
	free(b64);
	snap_result_free(&r);
}

/* ---- equivalence: dense and sparse copies of the same bytes ---- */

/* A region of a layout: data (random bytes, or explicit zeros) or a hole. */
enum kind { HOLE, DATA, ZEROS };
struct region {
	enum kind k;
	uint64_t len;
};

/* Write the layout twice: densely (every byte) to dense, and sparse (only
 * DATA and ZEROS regions, then ftruncate) to sparse. */
static void write_pair(const char *dense, const char *sparse, const struct region *rg, size_t n)
{
	int fd = open(dense, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int fs = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint64_t off = 0;
	uint8_t *b;

	ck_assert(fd >= 0 && fs >= 0);
	for (size_t i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(b = calloc(1, rg[i].len ? rg[i].len : 1));
		if (rg[i].k == DATA)
			for (uint64_t j = 0; j < rg[i].len; j++)
				b[j] = (uint8_t)(xrand() | 1);
		pwrite_full(fd, b, rg[i].len, off);
		if (rg[i].k != HOLE)
			pwrite_full(fs, b, rg[i].len, off);
		free(b);
		off += rg[i].len;
	}
	ck_assert_int_eq(ftruncate(fs, (off_t)off), 0);
	close(fd);
	close(fs);
	set_mtime(dense);
	set_mtime(sparse);
}

START_TEST(test_sparse_equals_dense)
{
	const struct cdc_zero *z;
	struct th_env d, s;
	char rd[SNAP_HEX_LEN + 1], rs[SNAP_HEX_LEN + 1], id[SNAP_ID_LEN + 1];
	struct snap_verify_stats vd, vs;
	struct stat st;

	ck_assert_int_eq(cdc_zero_get(&z), 0);
	ck_assert(z->len > CDC_MIN && z->len <= CDC_MAX);
	th_env_open(&d, "dense");
	th_env_open(&s, "sparse");
	/* ~40 MiB: holes longer and shorter than CDC_MAX, unaligned, explicit zeros. */
	const struct region big[] = {
		{ DATA, 300 * 1024 + 7 }, { HOLE, 9 * MiB + 123 }, { DATA, 2 * MiB },
		{ HOLE, MiB }, { DATA, 10 }, { HOLE, 12 * MiB + 1 }, { ZEROS, 5 * MiB },
		{ DATA, MiB - 3 }, { HOLE, 3 * MiB + 5 }, { DATA, 1 }, { HOLE, 7 * MiB + 777 },
	};
	/* A hole first, and one reaching EOF. */
	const struct region head[] = { { HOLE, 6 * MiB + 4095 }, { DATA, 4096 }, { HOLE, 5 * MiB } };
	/* Only holes, around the sizes where skipping starts. */
	const struct region h1[] = { { HOLE, CDC_MIN } };
	const struct region h2[] = { { HOLE, CDC_MAX - 1 } };
	const struct region h3[] = { { HOLE, CDC_MAX } };
	const struct region h4[] = { { HOLE, CDC_MAX + 1 } };
	const struct region h5[] = { { HOLE, z->len + CDC_MAX - 1 } };
	const struct region h6[] = { { HOLE, 2 * CDC_MAX + 12345 }, { DATA, 1 } };
	const struct { const char *name; const struct region *rg; size_t n; } set[] = {
		{ "big", big, sizeof(big) / sizeof(big[0]) }, { "head", head, 3 },
		{ "h1", h1, 1 }, { "h2", h2, 1 }, { "h3", h3, 1 }, { "h4", h4, 1 },
		{ "h5", h5, 1 }, { "h6", h6, 2 },
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		char *pd = path_in(d.ws, set[i].name), *ps = path_in(s.ws, set[i].name);
		write_pair(pd, ps, set[i].rg, set[i].n);
		free(pd);
		free(ps);
	}
	/* Random layouts too: data and holes of 1 byte to 9 MiB. */
	for (int k = 0; k < 3; k++) {
		struct region rg[12];
		char name[16], *pd, *ps;
		for (int j = 0; j < 12; j++) {
			rg[j].k = j % 2 ? DATA : HOLE;
			rg[j].len = 1 + xrand() % (j % 2 ? 2 * MiB : 9 * MiB);
		}
		snprintf(name, sizeof(name), "rand%d", k);
		pd = path_in(d.ws, name);
		ps = path_in(s.ws, name);
		write_pair(pd, ps, rg, 12);
		free(pd);
		free(ps);
	}
	/* The sparse copy really has holes. */
	char *pbig = path_in(s.ws, "big");
	ck_assert_int_eq(stat(pbig, &st), 0);
	ck_assert_msg((uint64_t)st.st_blocks * 512 < 20 * MiB, "no holes: %lld blocks",
		      (long long)st.st_blocks);
	free(pbig);

	snap(&d, NULL, rd);
	snap(&s, id, rs);
	ck_assert_str_eq(rd, rs);
	vd = verify_ok(&d);
	vs = verify_ok(&s); /* the zero chunk is in the store, not only named */
	ck_assert_uint_eq(vd.objects, vs.objects);
	ck_assert_uint_eq(vd.bytes, vs.bytes);

	/* Restored from the sparse copy's snapshot: the dense bytes. */
	char *before = th_manifest(d.ws, true);
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		char *ps = path_in(s.ws, set[i].name);
		ck_assert_int_eq(unlink(ps), 0);
		free(ps);
	}
	restore(&s, id);
	char *after = th_manifest(s.ws, true);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	th_env_close(&d);
	th_env_close(&s);
}
END_TEST

/* The control: an ordinary dense file (no zeros to skip) restores byte-identically. */
START_TEST(test_dense_control)
{
	struct th_env e;
	char id[SNAP_ID_LEN + 1];
	size_t n = 11 * MiB + 17, got;
	uint8_t *b = malloc(n);
	char *back;

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)xrand();
	th_env_open(&e, "dense-control");
	th_write(e.ws, "f", b, n, 0640);
	snap(&e, id, NULL);
	th_write(e.ws, "f", "changed", 7, 0640);
	restore(&e, id);
	back = th_read(e.ws, "f", &got);
	ck_assert_uint_eq(got, n);
	ck_assert(memcmp(back, b, n) == 0);
	free(back);
	free(b);
	th_env_close(&e);
}
END_TEST

/* ---- the 16 TiB attack ---- */

struct island {
	uint64_t off;
	size_t len;
	uint8_t seed;
};

static uint8_t island_byte(const struct island *is, uint64_t i)
{
	return (uint8_t)((is->seed * 37 + i * 131 + (i >> 7)) | 1);
}

static uint8_t *island_bytes(const struct island *is)
{
	uint8_t *b = malloc(is->len);

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < is->len; i++)
		b[i] = island_byte(is, i);
	return b;
}

/* What the file must hold at off: an island's byte, else zero. */
static uint8_t expected_at(const struct island *is, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (off >= is[i].off && off - is[i].off < is[i].len)
			return island_byte(&is[i], off - is[i].off);
	return 0;
}

/*
 * path has size bytes: the islands, zeros elsewhere. Read only the islands
 * and the data regions SEEK_DATA reports (at most max_data bytes of them):
 * the holes are zeros by definition.
 */
static void check_sparse_file(const char *path, uint64_t size, const struct island *is,
			      size_t n, uint64_t max_data)
{
	int fd = open(path, O_RDONLY);
	uint64_t off = 0, data = 0;
	uint8_t *buf = malloc(MiB);
	struct stat st;
	off_t d;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, size);
	ck_assert_msg((uint64_t)st.st_blocks * 512 <= max_data, "%s is not sparse: %lld blocks",
		      path, (long long)st.st_blocks);
	for (size_t i = 0; i < n; i++) {
		uint8_t *want = island_bytes(&is[i]);
		ck_assert(is[i].len <= MiB);
		pread_full(fd, buf, is[i].len, is[i].off);
		ck_assert_msg(memcmp(buf, want, is[i].len) == 0, "island %zu differs", i);
		free(want);
	}
	while ((d = lseek(fd, (off_t)off, SEEK_DATA)) >= 0) {
		off_t h = lseek(fd, d, SEEK_HOLE);
		ck_assert((uint64_t)h > (uint64_t)d);
		data += (uint64_t)(h - d);
		ck_assert_msg(data <= max_data, "%s: more than %llu bytes of data regions", path,
			      (unsigned long long)max_data);
		for (uint64_t p = (uint64_t)d; p < (uint64_t)h;) {
			size_t k = (uint64_t)h - p < MiB ? (size_t)((uint64_t)h - p) : MiB;
			pread_full(fd, buf, k, p);
			for (size_t j = 0; j < k; j++)
				ck_assert_msg(buf[j] == expected_at(is, n, p + j),
					      "byte %llu differs", (unsigned long long)(p + j));
			p += k;
		}
		off = (uint64_t)h;
	}
	ck_assert_int_eq(errno, ENXIO);
	free(buf);
	close(fd);
}

START_TEST(test_sparse_16t)
{
	struct th_env e;
	struct snap_result r;
	char id[SNAP_ID_LEN + 1];
	uint64_t size = 16 * TiB, r0, w0;
	char *path;
	int fd;

	th_env_open(&e, "t16");
	path = path_in(e.ws, "huge");
	ck_assert((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0);
	if (ftruncate(fd, (off_t)size) < 0 && errno == EFBIG)
		size -= 4096; /* ext4's largest file (2^32 - 1 blocks) */
	if (ftruncate(fd, (off_t)size) < 0) {
		fprintf(stderr, "not run: test_sparse_16t: %s cannot hold a 16 TiB file: %s\n",
			e.ws, strerror(errno));
		close(fd);
		free(path);
		th_env_close(&e);
		return;
	}
	const struct island is[3] = {
		{ 0, 4096, 1 },
		{ size / 2 + 12345, 5000, 2 },     /* odd, aligned to nothing */
		{ size - 3001, 3001, 3 },          /* up to the last byte */
	};
	for (size_t i = 0; i < 3; i++) {
		uint8_t *b = island_bytes(&is[i]);
		pwrite_full(fd, b, is[i].len, is[i].off);
		free(b);
	}
	close(fd);
	set_mtime(path);

	r0 = io_count("rchar");
	snap(&e, id, NULL);
	ck_assert_msg(io_count("rchar") - r0 < 256 * MiB, "the snapshot read %llu bytes",
		      (unsigned long long)(io_count("rchar") - r0));
	verify_ok(&e);
	/* snapshot.read across the middle island and the holes around it */
	{
		uint64_t off = is[1].off - 100;
		size_t len = is[1].len + 300;
		uint8_t *want = malloc(len);
		ck_assert_ptr_nonnull(want);
		for (size_t i = 0; i < len; i++)
			want[i] = expected_at(is, 3, off + i);
		read_expect(&e, id, "huge", off, want, len);
		free(want);
	}
	/* diff to live reads the file again (touched: no stat cache hit). */
	touch(e.ws, "huge");
	r0 = io_count("rchar");
	e.p.snapshot = id;
	ck_assert_msg(snap_run(e.s, SNAP_OP_DIFF, &e.p, &r) == 0, "diff: %s", r.detail);
	ck_assert_uint_eq(r.nchanges, 0);
	snap_result_free(&r);
	e.p.snapshot = NULL;
	ck_assert_msg(io_count("rchar") - r0 < 256 * MiB, "the diff read %llu bytes",
		      (unsigned long long)(io_count("rchar") - r0));

	ck_assert_int_eq(unlink(path), 0);
	r0 = io_count("rchar");
	w0 = io_count("wchar");
	restore(&e, id);
	ck_assert_msg(io_count("wchar") - w0 < 256 * MiB, "the restore wrote %llu bytes",
		      (unsigned long long)(io_count("wchar") - w0));
	ck_assert_msg(io_count("rchar") - r0 < 512 * MiB, "the restore read %llu bytes",
		      (unsigned long long)(io_count("rchar") - r0));
	check_sparse_file(path, size, is, 3, MiB);
	/* Restored again: the safety snapshot hashes it equal, nothing is rewritten. */
	e.p.snapshot = id;
	ck_assert_msg(snap_run(e.s, SNAP_OP_RESTORE, &e.p, &r) == 0, "restore: %s", r.detail);
	ck_assert_uint_eq(r.nchanges, 0);
	snap_result_free(&r);
	free(path);
	th_env_close(&e);
}
END_TEST

/*
 * A file of 8 EiB (tmpfs, XFS and btrfs allow them): its chunk list would
 * pass what the store can read back, so a snapshot fails naming it as a
 * limit, in seconds; a restore's safety snapshot records it as unreadable
 * instead, so the agent who made it cannot block the way back.
 */
START_TEST(test_exabyte_file)
{
	struct th_env e;
	struct snap_result r;
	char id[SNAP_ID_LEN + 1], *p, *got;
	size_t len;
	int fd;

	th_env_open(&e, "eib");
	th_writes(e.ws, "keep", "keep me");
	snap(&e, id, NULL);
	p = path_in(e.ws, "eib");
	ck_assert((fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0);
	if (ftruncate(fd, INT64_MAX) < 0) {
		fprintf(stderr, "not run: test_exabyte_file: %s: %s\n", e.ws, strerror(errno));
		close(fd);
		free(p);
		th_env_close(&e);
		return;
	}
	pwrite_full(fd, "tail", 4, (uint64_t)INT64_MAX - 4);
	close(fd);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &e.p, &r), -E2BIG);
	ck_assert_msg(strstr(r.detail, "file eib is too large") != NULL, "%s", r.detail);
	snap_result_free(&r);
	restore(&e, id);
	ck_assert_int_eq(access(p, F_OK), -1);
	got = th_read(e.ws, "keep", &len);
	ck_assert(got != NULL && len == 7 && memcmp(got, "keep me", 7) == 0);
	free(got);
	free(p);
	th_env_close(&e);
}
END_TEST

/* ---- data written into a hole while the file is read ---- */

#define HOLE_AT (40 * MiB + 3)
static const char injected[] = "INJECTED into a hole";
static int g_writes;

static void hole_hook(const char *rel, int attempt, void *arg)
{
	struct th_env *e = arg;
	char *p;
	int fd;

	if (strcmp(rel, "s") != 0 || (attempt > 0 && e->p.label == NULL))
		return;
	p = path_in(e->ws, "s");
	ck_assert((fd = open(p, O_WRONLY)) >= 0);
	pwrite_full(fd, injected, sizeof(injected), HOLE_AT + (uint64_t)g_writes++);
	close(fd);
	free(p);
}

START_TEST(test_hole_written_during_read)
{
	struct th_env e;
	struct snap_result r;
	char id[SNAP_ID_LEN + 1], *p;
	uint8_t zeros[sizeof(injected)] = { 0 };
	int fd;

	th_env_open(&e, "hole-write");
	p = path_in(e.ws, "s");
	ck_assert((fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644)) >= 0);
	pwrite_full(fd, "head", 4, 0);
	ck_assert_int_eq(ftruncate(fd, 64 * MiB), 0);
	close(fd);
	free(p);

	/* Control: nothing written, the hole is recorded as zeros. */
	snap(&e, id, NULL);
	read_expect(&e, id, "s", HOLE_AT, zeros, sizeof(zeros));

	/* Written once (after the first fstat, before the read): read again,
	 * and the snapshot holds the new bytes. */
	e.p.read_hook = hole_hook;
	e.p.read_hook_arg = &e;
	touch(e.ws, "s");
	snap(&e, id, NULL);
	ck_assert_int_eq(g_writes, 1);
	read_expect(&e, id, "s", HOLE_AT, (const uint8_t *)injected, sizeof(injected));

	/* Written on every attempt: the snapshot fails naming the file. */
	e.p.label = "always";
	touch(e.ws, "s");
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &e.p, &r), -EAGAIN);
	ck_assert_msg(strstr(r.detail, "changed during snapshot: s:") != NULL, "%s", r.detail);
	snap_result_free(&r);
	ck_assert_int_eq(g_writes, 3);
	th_env_close(&e);
}
END_TEST

static Suite *sparse_suite(void)
{
	Suite *s = suite_create("snap-sparse");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 1200);
	tcase_add_test(tc, test_sparse_equals_dense);
	tcase_add_test(tc, test_dense_control);
	tcase_add_test(tc, test_sparse_16t);
	tcase_add_test(tc, test_hole_written_during_read);
	tcase_add_test(tc, test_exabyte_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_init("test-snap-sparse", LOG_LEVEL_WARN);
	return check_run(sparse_suite());
}
