/*
 * The walk and the stat cache (walk.c, statcache.c): trees hashed during
 * the walk (nothing below them read) must equal trees encoded after
 * reading, whatever the shape of the tree and however the threads split
 * it; a tree the walk hashed but the store lacks (a file removed from an
 * otherwise cached directory) must still be stored; and a snapshot must
 * leave access times alone.
 *
 * The limits on what a hostile tree can make nonod hold (budget.c): past
 * max_entries or max_meta_bytes a snapshot fails naming the limit and the
 * workspace, commits nothing (no snapshot row, the stat cache as it was),
 * and a following snapshot with a higher limit works; under the limit
 * (control) it works. A stat-cache shard never passes the db's blob limit.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "../check-run.h"
#include "log.h"
#include "db.h"
#include "snap-int.h"

static void snap_root(struct th_env *e, char root[SNAP_HEX_LEN + 1], char id[SNAP_ID_LEN + 1],
		      uint64_t *read_files)
{
	struct snap_result r;
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, &r);

	ck_assert_msg(rc == 0, "create: %d %s", rc, r.detail);
	ck_assert_int_eq(r.nsnaps, 1);
	memcpy(root, r.snaps[0].root, SNAP_HEX_LEN + 1);
	if (id != NULL)
		memcpy(id, r.snaps[0].id, SNAP_ID_LEN + 1);
	if (read_files != NULL)
		*read_files = r.snaps[0].stats.read_files;
	snap_result_free(&r);
}

/* The root hash a fresh store (no stat cache: every file read) gives ws. */
static void fresh_root(const char *ws, const char *tag, char root[SNAP_HEX_LEN + 1])
{
	struct th_env f;
	uint64_t nread;

	th_env_open(&f, tag);
	f.p.workspace = ws;
	snap_root(&f, root, NULL, &nread);
	ck_assert_uint_gt(nread, 0);
	th_env_close(&f);
}

/* A deep chain under one top-level directory (one subtree holds all the
 * work) next to a wide directory. */
static void make_shapes(const char *ws)
{
	char rel[4096] = "chain";

	th_mkdir(ws, rel, 0755);
	for (int depth = 0; depth < 40; depth++) {
		char f[4200], c[64];
		for (int i = 0; i < 3; i++) {
			snprintf(f, sizeof(f), "%s/f%d", rel, i);
			snprintf(c, sizeof(c), "depth %d file %d\n", depth, i);
			th_writes(ws, f, c);
		}
		strcat(rel, "/d");
		th_mkdir(ws, rel, 0755);
	}
	th_mkdir(ws, "wide", 0755);
	for (int i = 0; i < 300; i++) {
		char f[64], c[64];
		snprintf(f, sizeof(f), "wide/w%03d", i);
		snprintf(c, sizeof(c), "wide %d\n", i);
		th_writes(ws, f, c);
	}
	th_symlink(ws, "wide/link", "../chain/f0");
	th_mkdir(ws, "empty", 0700);
}

START_TEST(test_walk_hash_equal)
{
	struct th_env e;
	char r1[SNAP_HEX_LEN + 1], r[SNAP_HEX_LEN + 1], fr[SNAP_HEX_LEN + 1];
	char id[SNAP_ID_LEN + 1], path[4200];
	struct snap_result res;
	uint64_t nread;

	th_env_open(&e, "shapes");
	make_shapes(e.ws);
	sleep(1); /* ctimes behind the next walk's start: cached */
	snap_root(&e, r1, NULL, &nread);
	ck_assert_uint_eq(nread, 40 * 3 + 300);

	/* Nothing changed: every tree hashed during the walk, same root. */
	snap_root(&e, r, NULL, &nread);
	ck_assert_uint_eq(nread, 0);
	ck_assert_str_eq(r, r1);

	/* One file deep down: its directories are encoded after the read, the
	 * rest hashed in the walk; a fresh store reading everything agrees. */
	strcpy(path, "chain");
	for (int i = 0; i < 20; i++)
		strcat(path, "/d");
	strcat(path, "/f1");
	th_writes(e.ws, path, "changed deep down\n");
	sleep(1);
	snap_root(&e, r, NULL, &nread);
	ck_assert_uint_eq(nread, 1);
	ck_assert_str_ne(r, r1);
	fresh_root(e.ws, "fresh1", fr);
	ck_assert_str_eq(r, fr);

	/* A file removed from a directory whose other files are all cached:
	 * the walk hashes a tree the store has never seen, which must be
	 * stored (verify finds it, restore brings the tree back). */
	char *before = th_manifest(e.ws, true);
	strcpy(path, e.ws);
	strcat(path, "/chain/d/d/d/d/d/d/d/d/d/d/f2");
	ck_assert_int_eq(unlink(path), 0);
	th_writes(e.ws, "wide/w007", "other\n");
	sleep(1);
	snap_root(&e, r, id, &nread);
	ck_assert_uint_eq(nread, 1);
	fresh_root(e.ws, "fresh2", fr);
	ck_assert_str_eq(r, fr);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_VERIFY, &e.p, &res), 0);
	ck_assert_uint_eq(res.verify.missing, 0);
	ck_assert_uint_eq(res.verify.corrupt, 0);
	snap_result_free(&res);
	free(before);
	before = th_manifest(e.ws, true);
	th_rmrf(e.ws);
	ck_assert_int_eq(mkdir(e.ws, 0755), 0);
	e.p.snapshot = id;
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_RESTORE, &e.p, &res), 0);
	snap_result_free(&res);
	char *after = th_manifest(e.ws, true);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	th_env_close(&e);
}
END_TEST

/* A snapshot reads every file of a first snapshot without touching atimes.
 * Control: a plain read of the same kind of file does update it here. */
START_TEST(test_atime_untouched)
{
	struct th_env e;
	struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_nsec = UTIME_OMIT } };
	struct stat st;
	char path[4200], buf[16], root[SNAP_HEX_LEN + 1];
	int fd;

	th_env_open(&e, "atime");
	th_mkdir(e.ws, "d", 0755);
	th_writes(e.ws, "d/f", "some content\n");
	th_writes(e.ws, "control", "some content\n");
	snprintf(path, sizeof(path), "%s/control", e.ws);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	if (st.st_atim.tv_sec == 1000000000) {
		fprintf(stderr, "not run: test_atime_untouched: %s does not update atimes\n",
			th_tmp);
		th_env_close(&e);
		return;
	}
	snprintf(path, sizeof(path), "%s/d/f", e.ws);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	snap_root(&e, root, NULL, NULL);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_atim.tv_sec, 1000000000);
	th_env_close(&e);
}
END_TEST

/* ---- limits ---- */

/* ndirs directories of per files: ndirs * (per + 1) entries. */
static void flat_tree(const char *ws, const char *prefix, int ndirs, int per)
{
	char rel[128];

	for (int i = 0; i < ndirs; i++) {
		snprintf(rel, sizeof(rel), "%s%d", prefix, i);
		th_mkdir(ws, rel, 0755);
		for (int j = 0; j < per; j++) {
			snprintf(rel, sizeof(rel), "%s%d/f%d", prefix, i, j);
			th_writes(ws, rel, rel);
		}
	}
}

static size_t count_snapshots(struct th_env *e)
{
	struct snap_result r;
	size_t n;

	ck_assert_int_eq(snap_run(e->s, SNAP_OP_LIST, &e->p, &r), 0);
	n = r.nsnaps;
	snap_result_free(&r);
	return n;
}

static void expect_limit(struct th_env *e, const char *limit)
{
	struct snap_result r;
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, &r);

	ck_assert_msg(rc == -E2BIG, "create: %d %s", rc, r.detail);
	ck_assert_msg(strstr(r.detail, limit) != NULL && strstr(r.detail, e->ws) != NULL,
		      "detail names neither the limit nor the workspace: %s", r.detail);
	ck_assert_str_eq(r.field, "workspace");
	ck_assert_int_eq(r.nsnaps, 0);
	snap_result_free(&r);
}

static struct snap_stats create_ok(struct th_env *e)
{
	struct snap_result r;
	struct snap_stats st;
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, &r);

	ck_assert_msg(rc == 0, "create: %d %s", rc, r.detail);
	st = r.snaps[0].stats;
	snap_result_free(&r);
	return st;
}

START_TEST(test_limit_entries)
{
	struct th_env e;
	struct snap_stats st;

	th_env_open(&e, "lim-entries");
	flat_tree(e.ws, "d", 4, 10); /* 44 entries */
	/* Attack: one entry over the limit. */
	e.p.max_entries = 43;
	expect_limit(&e, "max_entries");
	ck_assert_int_eq(count_snapshots(&e), 0);
	/* Control: exactly at the limit. */
	e.p.max_entries = 44;
	sleep(1); /* ctimes behind the walk's start: cached */
	st = create_ok(&e);
	ck_assert_int_eq(st.files + st.dirs + st.others, 44);
	/* The tree grows past the limit: that snapshot fails, the store keeps
	 * its snapshot and its stat cache as they were... */
	flat_tree(e.ws, "n", 1, 5);
	sleep(1);
	expect_limit(&e, "max_entries");
	ck_assert_int_eq(count_snapshots(&e), 1);
	/* ...so with a higher limit only the 5 new files are read. */
	e.p.max_entries = 50;
	st = create_ok(&e);
	ck_assert_int_eq(st.files + st.dirs + st.others, 50);
	ck_assert_int_eq(st.read_files, 5);
	ck_assert_int_eq(count_snapshots(&e), 2);
	th_env_close(&e);
}
END_TEST

/* One directory of many long names: its listing alone passes the budget,
 * and the walk stops there. */
START_TEST(test_limit_memory)
{
	struct th_env e;
	struct snap_result r;
	char name[256];

	th_env_open(&e, "lim-mem");
	th_mkdir(e.ws, "big", 0755);
	memset(name, 'n', sizeof(name));
	for (int i = 0; i < 3000; i++) {
		char rel[300];
		snprintf(rel, sizeof(rel), "big/%05d%.200s", i, name);
		th_writes(e.ws, rel, "x");
	}
	e.p.max_meta_bytes = 256 * 1024;
	expect_limit(&e, "max_meta_bytes");
	ck_assert_int_eq(count_snapshots(&e), 0);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_VERIFY, &e.p, &r), 0);
	ck_assert_int_eq(r.verify.snapshots, 0);
	ck_assert_int_eq(r.verify.corrupt + r.verify.missing, 0);
	snap_result_free(&r);
	/* Control: the defaults hold it with room. */
	e.p.max_meta_bytes = 0;
	ck_assert_int_eq(create_ok(&e).files, 3000);
	/* Diff to live walks with the same limits. */
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_LIST, &e.p, &r), 0);
	char id[SNAP_ID_LEN + 1];
	memcpy(id, r.snaps[0].id, sizeof(id));
	snap_result_free(&r);
	e.p.snapshot = id;
	e.p.max_meta_bytes = 256 * 1024;
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_DIFF, &e.p, &r), -E2BIG);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

/* ---- the total over walks running at once ---- */

struct held {
	struct th_env *e;
	struct snap_params p;
	char ws[512];
	atomic_bool go;           /* every read of a held walk waits for it */
	atomic_int *entered;
	atomic_uint_fast64_t *seen; /* calibration: bytes in use during the read */
	atomic_bool waited;
	int rc;
	char detail[512];
	pthread_t th;
};

static void held_hook(const char *rel, int attempt, void *arg)
{
	struct held *h = arg;

	(void)rel;
	(void)attempt;
	if (h->seen != NULL)
		atomic_store(h->seen, snap_meta_bytes_in_use());
	if (h->entered == NULL)
		return;
	/* All its reader threads stop here: the walk holds what it held
	 * when reading began, until released. */
	if (!atomic_exchange(&h->waited, true))
		atomic_fetch_add(h->entered, 1);
	while (!atomic_load(&h->go))
		usleep(1000);
}

static void *held_run(void *arg)
{
	struct held *h = arg;
	struct snap_result r;

	h->rc = snap_run(h->e->s, SNAP_OP_CREATE, &h->p, &r);
	snprintf(h->detail, sizeof(h->detail), "%s", r.detail);
	snap_result_free(&r);
	return NULL;
}

/* Workspace i (100 directories of 30 files with 200-byte names: small
 * trees, so what a walk holds while it reads is most of its peak) and
 * params for it. */
static void held_init(struct held *h, struct th_env *e, int i)
{
	char name[201];

	memset(h, 0, sizeof(*h));
	h->e = e;
	snprintf(h->ws, sizeof(h->ws), "%s/w%d", e->ws, i);
	ck_assert_int_eq(mkdir(h->ws, 0755), 0);
	memset(name, 'n', 200);
	name[200] = '\0';
	for (int k = 0; k < 3000; k++) {
		char rel[320];
		if (k % 30 == 0) {
			snprintf(rel, sizeof(rel), "d%03d", k / 30);
			th_mkdir(h->ws, rel, 0755);
		}
		snprintf(rel, sizeof(rel), "d%03d/%05d%s", k / 30, k, name);
		th_writes(h->ws, rel, "x");
	}
	h->p = e->p;
	h->p.workspace = h->ws;
	h->p.read_hook = held_hook;
	h->p.read_hook_arg = h;
}

/* Each walk may hold max_meta_bytes, and all of them at once twice that:
 * two walks held in their reads at ~0.77 of the limit each, and a third
 * that alone fits fails, naming the total; the held ones then finish, the
 * total is back to zero, and the third alone succeeds (control). */
START_TEST(test_limit_memory_in_all)
{
	struct th_env e;
	struct held h[4];
	atomic_int entered = 0;
	atomic_uint_fast64_t seen = 0;
	struct snap_result r;
	uint64_t one;

	th_env_open(&e, "lim-all");
	for (int i = 0; i < 4; i++)
		held_init(&h[i], &e, i);
	/* Calibration: what one such walk holds while it reads. */
	h[3].seen = &seen;
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &h[3].p, &r), 0);
	snap_result_free(&r);
	one = atomic_load(&seen);
	ck_assert_uint_gt(one, 3000 * 200);
	ck_assert_uint_eq(snap_meta_bytes_in_use(), 0);
	for (int i = 0; i < 3; i++)
		h[i].p.max_meta_bytes = one * 13 / 10; /* one walk: 0.77 of it */
	for (int i = 0; i < 2; i++) {
		h[i].entered = &entered;
		ck_assert_int_eq(pthread_create(&h[i].th, NULL, held_run, &h[i]), 0);
	}
	while (atomic_load(&entered) < 2)
		usleep(1000);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &h[2].p, &r), -E2BIG);
	ck_assert_msg(strstr(r.detail, "in all") != NULL && strstr(r.detail, h[2].ws) != NULL,
		      "%s", r.detail);
	ck_assert_str_eq(r.field, "workspace");
	snap_result_free(&r);
	for (int i = 0; i < 2; i++) {
		atomic_store(&h[i].go, true);
		pthread_join(h[i].th, NULL);
		ck_assert_msg(h[i].rc == 0, "held walk %d: %s (one walk held %llu while reading)",
			      i, h[i].detail, (unsigned long long)one);
	}
	ck_assert_uint_eq(snap_meta_bytes_in_use(), 0);
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &h[2].p, &r), 0);
	snap_result_free(&r);
	ck_assert_uint_eq(snap_meta_bytes_in_use(), 0);
	th_env_close(&e);
}
END_TEST

/* A stat-cache shard never grows past what the db stores: files that do not
 * fit are left out (read again next time), the rest load back intact. */
START_TEST(test_statcache_shard_cap)
{
	enum { N = 200 };
	struct statent add[N];
	char paths[N][64];
	struct statcache *c;
	sqlite3 *db;
	int64_t ws;
	size_t hits = 0;

	ck_assert_int_eq(db_open(":memory:", &db), 0);
	ck_assert_int_eq(index_migrate(db), 0);
	/* 200 entries of ~120 bytes in one shard (one directory): ~24 KB */
	for (int i = 0; i < N; i++) {
		snprintf(paths[i], sizeof(paths[i]), "dir/file-%04d-padding-padding-padding", i);
		add[i] = (struct statent){ .path = paths[i], .plen = strlen(paths[i]),
					   .dev = 1, .ino = (uint64_t)i + 10, .size = 5,
					   .mtime_ns = 7, .ctime_ns = 8 };
		memset(add[i].hash, i, SNAP_HASH_LEN);
	}
	ck_assert_int_eq(index_workspace_id(db, "/ws", true, &ws), 0);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 8192);
	ck_assert_int_eq(statcache_load(db, ws, &c), 0);
	ck_assert_int_eq(statcache_save(db, ws, c, add, N), 0); /* not -E2BIG: capped */
	statcache_free(c);
	ck_assert_int_eq(statcache_load(db, ws, &c), 0);
	for (int i = 0; i < N; i++) {
		struct statcursor cur = { .shard = -1 };
		struct statent now = add[i];
		if (statcache_match(c, &cur, &now)) {
			ck_assert_int_eq(now.hash[0], (uint8_t)i);
			hits++;
		}
	}
	/* (8192 - 64 - 4) / 116 bytes per entry */
	ck_assert_msg(hits > 50 && hits < N, "%zu entries cached", hits);
	statcache_free(c);
	db_close(db);
}
END_TEST

static Suite *walk_suite(void)
{
	Suite *s = suite_create("snap-walk");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_walk_hash_equal);
	tcase_add_test(tc, test_atime_untouched);
	tcase_add_test(tc, test_limit_entries);
	tcase_add_test(tc, test_limit_memory_in_all);
	tcase_add_test(tc, test_limit_memory);
	tcase_add_test(tc, test_statcache_shard_cap);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_init("test-snap-walk", LOG_LEVEL_WARN);
	return check_run(walk_suite());
}
