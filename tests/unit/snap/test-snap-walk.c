/*
 * The walk and the stat cache (walk.c, statcache.c): trees hashed during
 * the walk (nothing below them read) must equal trees encoded after
 * reading, whatever the shape of the tree and however the threads split
 * it; a tree the walk hashed but the store lacks (a file removed from an
 * otherwise cached directory) must still be stored; and a snapshot must
 * leave access times alone.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "../check-run.h"
#include "log.h"

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

static Suite *walk_suite(void)
{
	Suite *s = suite_create("snap-walk");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_walk_hash_equal);
	tcase_add_test(tc, test_atime_untouched);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_init("test-snap-walk", LOG_LEVEL_WARN);
	return check_run(walk_suite());
}
