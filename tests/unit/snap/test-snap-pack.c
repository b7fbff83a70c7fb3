/*
 * Pack files (daemon/snap/pack.c, packgc.c): damage verify must report, a
 * truncated orphan pack as a crash leaves it, gc dropping dead packs and
 * rewriting partly dead ones, stores of loose objects from before packs,
 * records buffered before they are written, and every snapshot still
 * restoring byte-identically afterwards.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "helpers.h"
#include "../check-run.h"
#include "log.h"
#include "snap.h"

static void snap(struct th_env *e, char id[SNAP_ID_LEN + 1])
{
	struct snap_result r;
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, &r);

	ck_assert_msg(rc == 0, "create: %d %s", rc, r.detail);
	memcpy(id, r.snaps[0].id, SNAP_ID_LEN + 1);
	snap_result_free(&r);
}

static struct snap_verify_stats verify(struct th_env *e)
{
	struct snap_result r;
	struct snap_verify_stats v;

	ck_assert_int_eq(snap_run(e->s, SNAP_OP_VERIFY, &e->p, &r), 0);
	v = r.verify;
	snap_result_free(&r);
	return v;
}

static struct snap_gc_stats gc(struct th_env *e, int64_t keep_last)
{
	struct snap_result r;
	struct snap_gc_stats g;

	e->p.keep_last = keep_last;
	ck_assert_int_eq(snap_run(e->s, SNAP_OP_GC, &e->p, &r), 0);
	e->p.keep_last = -1;
	g = r.gc;
	snap_result_free(&r);
	return g;
}

/* Restore id and compare the workspace with the manifest it was taken from. */
static void restore_check(struct th_env *e, const char *id, const char *manifest)
{
	struct snap_result r;
	char *now;
	int rc;

	e->p.snapshot = id;
	rc = snap_run(e->s, SNAP_OP_RESTORE, &e->p, &r);
	ck_assert_msg(rc == 0, "restore %s: %d %s", id, rc, r.detail);
	snap_result_free(&r);
	e->p.snapshot = NULL;
	now = th_manifest(e->ws, true);
	ck_assert_str_eq(now, manifest);
	free(now);
}

/* Names of the pack files, largest first, in out[0..n); returns n. */
static size_t packs(const struct th_env *e, char out[][64], size_t max)
{
	DIR *d = opendir(e->packs);
	struct dirent *de;
	off_t sizes[16];
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		char *p;
		struct stat st;
		if (strstr(de->d_name, ".pack") == NULL || strlen(de->d_name) >= 64)
			continue;
		ck_assert_uint_lt(n, max);
		ck_assert(asprintf(&p, "%s/%s", e->packs, de->d_name) > 0);
		ck_assert_int_eq(stat(p, &st), 0);
		free(p);
		size_t i = n++;
		while (i > 0 && sizes[i - 1] < st.st_size) {
			sizes[i] = sizes[i - 1];
			memcpy(out[i], out[i - 1], 64);
			i--;
		}
		sizes[i] = st.st_size;
		memcpy(out[i], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	return n;
}

static char *pack_path(const struct th_env *e, const char *name)
{
	char *p;

	ck_assert(asprintf(&p, "%s/%s", e->packs, name) > 0);
	return p;
}

static void fill_ws(const char *ws, int gen)
{
	char name[32], body[256];
	size_t big = 600 * 1024;
	unsigned char *b = malloc(big);

	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "f%02d.txt", i);
		snprintf(body, sizeof(body), "file %d generation %d\n", i, i < 4 ? gen : 0);
		th_writes(ws, name, body);
	}
	for (size_t i = 0; i < big; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> (11 + gen % 3));
	th_write(ws, "big.bin", b, big, 0640);
	free(b);
}

/*
 * Small records gathered in the writers' 1 MiB buffers interleaved with
 * records written directly (64 KiB and up), over several buffer drains and
 * both writer threads: each must be where the index says (verify re-hashes
 * every object), and the snapshot must restore byte-identically.
 */
START_TEST(test_buffered_records)
{
	struct th_env e;
	struct snap_verify_stats v;
	char id[SNAP_ID_LEN + 1], name[32], *before;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	unsigned char *b = malloc(200 * 1024);

	th_env_open(&e, "bufrec");
	/* Read in directory order: 3 MiB of small records in a row (full
	 * buffers), then large ones (each drains what is left first). */
	th_mkdir(e.ws, "s", 0755);
	th_mkdir(e.ws, "t", 0755);
	for (int i = 0; i < 2010; i++) {
		size_t len = i >= 2000 ? 64 * 1024 + (size_t)i * 37 : 800 + (size_t)(i % 1600);
		for (size_t k = 0; k < len; k++) { /* random: stored uncompressed, full size */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			b[k] = (unsigned char)x;
		}
		snprintf(name, sizeof(name), "%s/r%04d", i >= 2000 ? "t" : "s", i);
		th_write(e.ws, name, b, len, 0644);
	}
	free(b);
	before = th_manifest(e.ws, true);
	snap(&e, id);
	v = verify(&e);
	ck_assert_uint_eq(v.missing, 0);
	ck_assert_uint_eq(v.corrupt, 0);
	ck_assert_uint_ge(v.objects, 2010);
	th_rmrf(e.ws);
	ck_assert_int_eq(mkdir(e.ws, 0755), 0);
	restore_check(&e, id, before);
	free(before);
	th_env_close(&e);
}
END_TEST

/* A crash while a pack was being appended leaves a truncated pack that no
 * index row names: verify is clean (just unreferenced), gc removes it, and
 * committed snapshots restore. */
START_TEST(test_truncated_orphan)
{
	struct th_env e;
	char id[SNAP_ID_LEN + 1], names[16][64], *src, *dst, *cmd, *m;
	struct snap_verify_stats v;

	th_env_open(&e, "orphan");
	fill_ws(e.ws, 1);
	m = th_manifest(e.ws, true);
	snap(&e, id);
	ck_assert_uint_ge(packs(&e, names, 16), 1); /* one per writer thread */
	src = pack_path(&e, names[0]);
	dst = pack_path(&e, "00000000deadbeef.pack");
	ck_assert(asprintf(&cmd, "head -c 5000 '%s' > '%s'", src, dst) > 0);
	ck_assert_int_eq(system(cmd), 0);
	v = verify(&e);
	ck_assert_uint_eq(v.missing + v.corrupt, 0);
	ck_assert_uint_ge(v.unreferenced, 1);
	gc(&e, -1);
	ck_assert_int_eq(access(dst, F_OK), -1);
	ck_assert_int_eq(access(src, F_OK), 0);
	v = verify(&e);
	ck_assert_uint_eq(v.missing + v.corrupt + v.unreferenced, 0);
	fill_ws(e.ws, 2);
	restore_check(&e, id, m);
	free(cmd);
	free(src);
	free(dst);
	free(m);
	th_env_close(&e);
}
END_TEST

/* An indexed pack cut short or with a record's hash overwritten: verify
 * reports it (it does not crash or trust it), and restore fails cleanly. */
START_TEST(test_damaged_indexed_pack)
{
	struct th_env e;
	char id[SNAP_ID_LEN + 1], names[16][64], *p, *cmd;
	struct snap_verify_stats v;
	struct snap_result r;
	struct stat st;

	th_env_open(&e, "damaged");
	fill_ws(e.ws, 1);
	snap(&e, id);
	ck_assert_uint_ge(packs(&e, names, 16), 1);
	p = pack_path(&e, names[0]); /* the largest */
	/* Overwrite the hash in the first record header (offset 8 + 4). */
	ck_assert(asprintf(&cmd, "chmod u+w '%s' && printf 'ZZZZ' | dd of='%s' bs=1 seek=12"
			   " conv=notrunc 2>/dev/null", p, p) > 0);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	v = verify(&e);
	ck_assert_uint_ge(v.corrupt, 1);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(truncate(p, st.st_size / 2), 0);
	v = verify(&e); /* the root tree is in the lost half: nothing below it is reached */
	ck_assert_uint_ge(v.corrupt + v.missing, 1);
	fill_ws(e.ws, 2);
	e.p.snapshot = id;
	ck_assert_int_lt(snap_run(e.s, SNAP_OP_RESTORE, &e.p, &r), 0);
	snap_result_free(&r);
	/* gc keeps a damaged pack rather than losing what is still readable. */
	e.p.snapshot = NULL;
	gc(&e, -1);
	ck_assert_int_eq(access(p, F_OK), 0);
	free(p);
	th_env_close(&e);
}
END_TEST

/* gc drops fully dead packs and rewrites partly dead ones; what survives
 * restores byte-identically and verify finds nothing unreferenced. */
START_TEST(test_gc_packs)
{
	struct th_env e;
	char a[SNAP_ID_LEN + 1], b[SNAP_ID_LEN + 1], c[SNAP_ID_LEN + 1], names[16][64];
	char *mb, *mc, *pa[16];
	size_t na;
	struct snap_verify_stats v;
	struct snap_gc_stats g;

	th_env_open(&e, "gc");
	fill_ws(e.ws, 1);
	snap(&e, a);
	na = packs(&e, names, 16);
	ck_assert_uint_ge(na, 1);
	for (size_t i = 0; i < na; i++)
		pa[i] = pack_path(&e, names[i]);
	fill_ws(e.ws, 2);
	mb = th_manifest(e.ws, true);
	snap(&e, b);
	fill_ws(e.ws, 3);
	mc = th_manifest(e.ws, true);
	snap(&e, c);
	ck_assert_uint_gt(packs(&e, names, 16), na);

	/* Drop a: its packs hold the unchanged small files (live) and
	 * generation 1's data (dead): each is rewritten or dropped. */
	g = gc(&e, 2);
	ck_assert_uint_eq(g.snapshots_deleted, 1);
	ck_assert_uint_ge(g.objects_deleted, 4);
	/* Which of a's packs held dead records depends on how the writer
	 * threads split the work; at least one did, and none that is left
	 * keeps any (verify counts unreferenced records below). */
	{
		size_t gone = 0;

		for (size_t i = 0; i < na; i++)
			gone += access(pa[i], F_OK) == -1;
		ck_assert_uint_ge(gone, 1);
	}
	v = verify(&e);
	ck_assert_uint_eq(v.missing + v.corrupt + v.unreferenced, 0);
	ck_assert_uint_eq(v.snapshots, 2);
	restore_check(&e, b, mb);
	restore_check(&e, c, mc);

	/* Nothing dead: a second gc rewrites nothing. */
	size_t n = packs(&e, names, 16);
	g = gc(&e, -1);
	ck_assert_uint_eq(g.objects_deleted, 0);
	ck_assert_uint_eq(packs(&e, names, 16), n);

	/* Keep none: every pack goes. */
	gc(&e, 0);
	ck_assert_uint_eq(packs(&e, names, 16), 0);
	v = verify(&e);
	ck_assert_uint_eq(v.snapshots + v.missing + v.corrupt + v.unreferenced, 0);
	for (size_t i = 0; i < na; i++)
		free(pa[i]);
	free(mb);
	free(mc);
	th_env_close(&e);
}
END_TEST

/* Turn every packed object into a loose file objects/ab/<62 hex> (the
 * layout of stores written before packs) and forget the packs. */
static void unpack_to_loose(const struct th_env *e)
{
	char *db_path, *objdir;
	sqlite3 *db;
	sqlite3_stmt *st;

	ck_assert(asprintf(&db_path, "%s/%u/index.db", e->root, (unsigned)getuid()) > 0);
	ck_assert(asprintf(&objdir, "%s/%u/objects", e->root, (unsigned)getuid()) > 0);
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT x.hash, p.name, x.off, x.len FROM"
					    " snap_packidx x JOIN snap_packs p ON p.id = x.pack",
					    -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *h = sqlite3_column_blob(st, 0);
		char *pp = pack_path(e, (const char *)sqlite3_column_text(st, 1)), sub[3], rel[80];
		size_t len = (size_t)sqlite3_column_int64(st, 3);
		uint8_t *rec = malloc(len);
		int fd = open(pp, O_RDONLY);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pread(fd, rec, len, sqlite3_column_int64(st, 2)), (ssize_t)len);
		close(fd);
		snprintf(sub, sizeof(sub), "%02x", h[0]);
		snprintf(rel, sizeof(rel), "%s/", sub);
		for (int i = 1; i < 32; i++)
			snprintf(rel + 3 + 2 * (i - 1), 3, "%02x", h[i]);
		th_mkdir(objdir, sub, 0700);
		th_write(objdir, rel, rec + 36, len - 36, 0400); /* type, compression, bytes */
		free(rec);
		free(pp);
	}
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM snap_packidx; DELETE FROM snap_packs;",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(db_path);
	ck_assert(asprintf(&db_path, "rm -f %s/*.pack", e->packs) > 0);
	ck_assert_int_eq(system(db_path), 0);
	free(db_path);
	free(objdir);
}

/* Stores written before packs keep working: loose objects are read,
 * verified, deduplicated against and collected. */
START_TEST(test_loose_store)
{
	struct th_env e;
	char a[SNAP_ID_LEN + 1], b[SNAP_ID_LEN + 1], names[16][64], *ma;
	struct snap_verify_stats v;
	struct snap_result r;

	th_env_open(&e, "loose");
	fill_ws(e.ws, 1);
	ma = th_manifest(e.ws, true);
	snap(&e, a);
	unpack_to_loose(&e);
	ck_assert_uint_eq(packs(&e, names, 16), 0);
	v = verify(&e);
	ck_assert_uint_eq(v.missing + v.corrupt + v.unreferenced, 0);
	ck_assert_uint_ge(v.objects, 5);
	/* Unchanged content is not stored again: only the changed files. */
	fill_ws(e.ws, 2);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &e.p, &r), 0);
	memcpy(b, r.snaps[0].id, sizeof(b));
	ck_assert_uint_le(r.snaps[0].stats.new_objects, 8);
	snap_result_free(&r);
	restore_check(&e, a, ma);
	gc(&e, 1);
	v = verify(&e);
	ck_assert_uint_eq(v.missing + v.corrupt + v.unreferenced, 0);
	ck_assert_uint_eq(v.snapshots, 1);
	free(ma);
	th_env_close(&e);
}
END_TEST

static Suite *pack_suite(void)
{
	Suite *s = suite_create("snap-pack");
	TCase *tc = tcase_create("pack");

	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_buffered_records);
	tcase_add_test(tc, test_truncated_orphan);
	tcase_add_test(tc, test_damaged_indexed_pack);
	tcase_add_test(tc, test_gc_packs);
	tcase_add_test(tc, test_loose_store);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_init("test-snap-pack", LOG_LEVEL_ERROR);
	return check_run(pack_suite());
}
