/*
 * The symlink-swap attack on restore, as root (nonod's situation).
 *
 * A workspace owned by an unprivileged uid holds cfg/passwd. The agent
 * replaces the directory cfg with a symlink to a directory standing in for
 * /etc, either before the restore starts or right after the safety snapshot
 * (the restore hook), hoping restore writes cfg/passwd through it. Two
 * decoys: root-owned 0755 (the real /etc case, where the owner's fsuid alone
 * already blocks writes) and a world-writable 0777 one (so only the
 * no-follow path walk stands in the way). The control case shows that,
 * without the swap, restore does write that path.
 *
 * A hostile FUSE workspace (fuse-liar.c, served from this test): a file
 * whose st_size lies low must never be stored truncated (the control shows
 * a read of st_size + 1 bytes really gets exactly st_size: the old EOF
 * shortcut's blind spot); a directory that never ends stops at the entry
 * limit; a name over 255 bytes fails clearly; an honest FUSE file works.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse-liar.h"
#include "helpers.h"
#include "log.h"
#include "snap.h"
#include "../check-run.h"

#define NOBODY 65534

struct world {
	char *dir, *ws, *decoy, *cfg;
	struct snap_store *s;
	struct snap_params p;
	char id[SNAP_ID_LEN + 1];
	char *decoy_before;
};

static void swap_to_symlink(struct world *w)
{
	th_rmrf(w->cfg);
	ck_assert_int_eq(symlink(w->decoy, w->cfg), 0);
	ck_assert_int_eq(lchown(w->cfg, NOBODY, NOBODY), 0);
}

static void hook_swap(void *arg)
{
	swap_to_symlink(arg);
}

static void world_new(struct world *w, const char *tag, mode_t decoy_mode)
{
	struct snap_result r;

	memset(w, 0, sizeof(*w));
	ck_assert(asprintf(&w->dir, "%s/%s", th_tmp, tag) > 0);
	ck_assert_int_eq(mkdir(w->dir, 0755), 0);
	ck_assert(asprintf(&w->ws, "%s/ws", w->dir) > 0);
	ck_assert(asprintf(&w->cfg, "%s/ws/cfg", w->dir) > 0);
	ck_assert(asprintf(&w->decoy, "%s/etc", w->dir) > 0);
	/* The stand-in for /etc: root-owned, with a passwd and a subdir. */
	th_mkdir(w->dir, "etc", decoy_mode);
	th_write(w->decoy, "passwd", "root:x:0:0::/root:/bin/sh\n", 26, 0644);
	th_mkdir(w->decoy, "sub", 0755);
	th_writes(w->decoy, "sub/keep", "k");
	w->decoy_before = th_manifest(w->decoy, true);
	/* The workspace, owned by nobody. */
	th_mkdir(w->dir, "ws", 0755);
	th_mkdir(w->ws, "cfg", 0755);
	th_writes(w->ws, "cfg/passwd", "snapshot-version\n");
	th_mkdir(w->ws, "cfg/sub", 0755);
	th_writes(w->ws, "cfg/sub/keep", "snap");
	th_chown_r(w->ws, NOBODY, NOBODY);
	char *store;
	ck_assert(asprintf(&store, "%s/store", w->dir) > 0);
	ck_assert_int_eq(snap_store_new(store, NULL, &w->s), 0);
	free(store);
	w->p.owner = NOBODY;
	w->p.group = NOBODY;
	w->p.workspace = w->ws;
	w->p.keep_last = w->p.keep_within = -1;
	ck_assert_int_eq(snap_run(w->s, SNAP_OP_CREATE, &w->p, &r), 0);
	memcpy(w->id, r.snaps[0].id, sizeof(w->id));
	snap_result_free(&r);
	/* The agent edits what restore will want to put back. */
	th_writes(w->ws, "cfg/passwd", "agent-version\n");
	th_writes(w->ws, "cfg/extra", "x");
	th_chown_r(w->ws, NOBODY, NOBODY);
	w->p.snapshot = w->id;
}

static void world_check_decoy(struct world *w)
{
	char *after = th_manifest(w->decoy, true);

	ck_assert_msg(strcmp(w->decoy_before, after) == 0, "decoy changed:\n%s\nvs\n%s",
		      w->decoy_before, after);
	free(after);
}

static void world_free(struct world *w)
{
	snap_store_free(w->s);
	free(w->dir);
	free(w->ws);
	free(w->decoy);
	free(w->cfg);
	free(w->decoy_before);
}

/*
 * An agent plants a chain of directories deeper than a path can name
 * (10,000 bytes of "d/d/...", with a file at the bottom) and clobbers a
 * file. The restore must still work: its safety snapshot records the part
 * too deep to open as unreadable, and the removal of the chain does not
 * need paths (nor one descriptor per level).
 */
START_TEST(test_deep_tree_cannot_block_restore)
{
	struct th_env e;
	struct snap_result r;
	char id[SNAP_ID_LEN + 1], *s;
	int fd, n;

	th_env_open(&e, "deep");
	th_writes(e.ws, "important", "good\n");
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &e.p, &r), 0);
	snprintf(id, sizeof(id), "%s", r.snaps[0].id);
	snap_result_free(&r);
	th_writes(e.ws, "important", "EVIL\n");
	fd = open(e.ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < 5000; i++) {
		ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
		n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(n, 0);
		close(fd);
		fd = n;
	}
	n = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(n, 0);
	close(n);
	close(fd);
	e.p.snapshot = id;
	ck_assert_msg(snap_run(e.s, SNAP_OP_RESTORE, &e.p, &r) == 0, "restore: %s", r.detail);
	snap_result_free(&r);
	s = th_read(e.ws, "important", NULL);
	ck_assert_str_eq(s, "good\n");
	free(s);
	fd = open(e.ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(faccessat(fd, "d", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	ck_assert_int_eq(errno, ENOENT);
	close(fd);
	th_env_close(&e);
}
END_TEST

START_TEST(test_control_restore_writes_cfg)
{
	struct world w;
	struct snap_result r;
	char *s;

	world_new(&w, "control", 0755);
	ck_assert_int_eq(snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r), 0);
	snap_result_free(&r);
	s = th_read(w.ws, "cfg/passwd", NULL);
	ck_assert_str_eq(s, "snapshot-version\n");
	free(s);
	ck_assert_ptr_null(th_read(w.ws, "cfg/extra", NULL));
	world_check_decoy(&w);
	world_free(&w);
}
END_TEST

static void swap_before(mode_t decoy_mode)
{
	struct world w;
	struct snap_result r;
	struct stat st;
	char *s;

	world_new(&w, decoy_mode == 0755 ? "before-root" : "before-open", decoy_mode);
	swap_to_symlink(&w);
	/* The safety snapshot sees a symlink where the snapshot has a directory:
	 * restore replaces the link itself and never follows it. */
	ck_assert_int_eq(snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r), 0);
	snap_result_free(&r);
	world_check_decoy(&w);
	ck_assert_int_eq(lstat(w.cfg, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_uid, NOBODY); /* created with the owner's fsuid */
	s = th_read(w.ws, "cfg/passwd", NULL);
	ck_assert_str_eq(s, "snapshot-version\n");
	free(s);
	world_free(&w);
}

START_TEST(test_swap_before_restore_root_decoy)
{
	swap_before(0755);
}
END_TEST

START_TEST(test_swap_before_restore_open_decoy)
{
	swap_before(0777);
}
END_TEST

static void swap_during(mode_t decoy_mode)
{
	struct world w;
	struct snap_result r;
	struct stat st;
	int rc;

	world_new(&w, decoy_mode == 0755 ? "during-root" : "during-open", decoy_mode);
	w.p.restore_hook = hook_swap;
	w.p.restore_hook_arg = &w;
	/* The trees say cfg is a directory; the open with O_NOFOLLOW fails. */
	rc = snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r);
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(r.detail, "cfg") != NULL, "%s", r.detail);
	ck_assert_int_eq(r.nsnaps, 1); /* the safety snapshot is still reported */
	snap_result_free(&r);
	world_check_decoy(&w);
	ck_assert_int_eq(lstat(w.cfg, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	/* No temp file was left in the decoy either (manifest compared above). */
	world_free(&w);
}

START_TEST(test_swap_during_restore_root_decoy)
{
	swap_during(0755);
}
END_TEST

START_TEST(test_swap_during_restore_open_decoy)
{
	swap_during(0777);
}
END_TEST

static void hook_swap_file(void *arg)
{
	struct world *w = arg;
	char *p, *t;

	ck_assert(asprintf(&p, "%s/passwd", w->cfg) > 0);
	ck_assert(asprintf(&t, "%s/passwd", w->decoy) > 0);
	unlink(p);
	ck_assert_int_eq(symlink(t, p), 0);
	ck_assert_int_eq(lchown(p, NOBODY, NOBODY), 0);
	free(p);
	free(t);
}

START_TEST(test_swap_file_for_symlink)
{
	struct world w;
	struct snap_result r;
	struct stat st;
	char *p;

	world_new(&w, "file-open", 0777);
	ck_assert_int_eq(chmod(w.decoy, 0777), 0);
	w.p.restore_hook = hook_swap_file;
	w.p.restore_hook_arg = &w;
	/* Restore renames a new file over the link: the link goes, its target stays. */
	ck_assert_int_eq(snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r), 0);
	snap_result_free(&r);
	world_check_decoy(&w);
	ck_assert(asprintf(&p, "%s/passwd", w.cfg) > 0);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	free(p);
	world_free(&w);
}
END_TEST

/* A directory the snapshot has read-only (0555) gets its files back and its
 * mode last: restore works as the owner (no DAC override), so the mode is
 * set only after the renames into the directory. */
START_TEST(test_readonly_dir_restore)
{
	struct world w;
	struct snap_result r;
	struct stat st;
	char *ro, *s;

	world_new(&w, "readonly", 0755);
	th_mkdir(w.ws, "ro", 0755);
	th_writes(w.ws, "ro/f", "snapshot-version\n");
	th_chown_r(w.ws, NOBODY, NOBODY);
	ck_assert(asprintf(&ro, "%s/ro", w.ws) > 0);
	ck_assert_int_eq(chmod(ro, 0555), 0);
	ck_assert_int_eq(snap_run(w.s, SNAP_OP_CREATE, &w.p, &r), 0);
	memcpy(w.id, r.snaps[0].id, sizeof(w.id));
	snap_result_free(&r);
	/* The agent opens it up and edits. */
	ck_assert_int_eq(chmod(ro, 0755), 0);
	th_writes(w.ws, "ro/f", "agent-version\n");
	th_writes(w.ws, "ro/g", "new");
	th_chown_r(w.ws, NOBODY, NOBODY);
	w.p.snapshot = w.id;
	ck_assert_int_eq(snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r), 0);
	snap_result_free(&r);
	s = th_read(w.ws, "ro/f", NULL);
	ck_assert_str_eq(s, "snapshot-version\n");
	free(s);
	ck_assert_ptr_null(th_read(w.ws, "ro/g", NULL));
	ck_assert_int_eq(stat(ro, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0555);
	ck_assert_int_eq(chmod(ro, 0755), 0); /* so teardown can remove it */
	free(ro);
	world_free(&w);
}
END_TEST

/*
 * The agent plants, in a directory the snapshot lacks, symlinks to the
 * world-writable decoy (a directory, a file in it, and one at the bottom
 * of a 300-deep chain). Restore removes the directory and every link in it
 * without following one: the decoy is unchanged.
 */
START_TEST(test_removal_never_follows_planted_links)
{
	struct world w;
	struct snap_result r;
	char *passwd;
	int fd, n;

	world_new(&w, "links", 0777);
	ck_assert(asprintf(&passwd, "%s/passwd", w.decoy) > 0);
	th_mkdir(w.ws, "junk", 0755);
	th_symlink(w.ws, "junk/etc", w.decoy);
	th_symlink(w.ws, "junk/passwd", passwd);
	th_mkdir(w.ws, "junk/deep", 0755);
	fd = open(w.ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = openat(fd, "junk/deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(fd);
	fd = n;
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
		n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(n, 0);
		close(fd);
		fd = n;
	}
	ck_assert_int_eq(symlinkat(w.decoy, fd, "etc"), 0);
	close(fd);
	th_chown_r(w.ws, NOBODY, NOBODY);
	ck_assert_msg(snap_run(w.s, SNAP_OP_RESTORE, &w.p, &r) == 0, "restore: %s", r.detail);
	snap_result_free(&r);
	fd = open(w.ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(faccessat(fd, "junk", F_OK, AT_SYMLINK_NOFOLLOW), -1);
	close(fd);
	world_check_decoy(&w);
	free(passwd);
	world_free(&w);
}
END_TEST

/*
 * 2,000 directories the snapshot lacks, each holding an excluded
 * node_modules: restore removes everything else and keeps those (and the
 * directories leading to them), without rescanning forever.
 */
START_TEST(test_removal_keeps_many_excluded)
{
	struct th_env e;
	struct snap_result r;
	const char *ex[] = { "node_modules" };
	char id[SNAP_ID_LEN + 1], rel[64], *m;

	th_env_open(&e, "manyex");
	th_writes(e.ws, "top", "t");
	e.p.excludes = ex;
	e.p.nexcludes = 1;
	ck_assert_int_eq(snap_run(e.s, SNAP_OP_CREATE, &e.p, &r), 0);
	snprintf(id, sizeof(id), "%s", r.snaps[0].id);
	snap_result_free(&r);
	th_mkdir(e.ws, "later", 0755);
	for (int i = 0; i < 2000; i++) {
		snprintf(rel, sizeof(rel), "later/d%d", i);
		th_mkdir(e.ws, rel, 0755);
		snprintf(rel, sizeof(rel), "later/d%d/node_modules", i);
		th_mkdir(e.ws, rel, 0755);
		snprintf(rel, sizeof(rel), "later/d%d/node_modules/dep", i);
		th_writes(e.ws, rel, "d");
		snprintf(rel, sizeof(rel), "later/d%d/gone", i);
		th_writes(e.ws, rel, "g");
	}
	e.p.excludes = NULL;
	e.p.nexcludes = 0;
	e.p.snapshot = id;
	ck_assert_msg(snap_run(e.s, SNAP_OP_RESTORE, &e.p, &r) == 0, "restore: %s", r.detail);
	snap_result_free(&r);
	for (int i = 0; i < 2000; i++) {
		snprintf(rel, sizeof(rel), "later/d%d/node_modules/dep", i);
		ck_assert_ptr_nonnull(m = th_read(e.ws, rel, NULL));
		free(m);
		snprintf(rel, sizeof(rel), "later/d%d/gone", i);
		ck_assert_ptr_null(th_read(e.ws, rel, NULL));
	}
	th_env_close(&e);
}
END_TEST

/* ---- hostile FUSE workspaces ---- */

struct fworld {
	struct fuse_liar fl;
	struct th_env e;
	char *sub;
};

/* false (test not run, with a message) when FUSE cannot be mounted here. */
static bool fworld_open(struct fworld *w, const char *tag, const char *sub)
{
	char *mnt, why[256];

	th_env_open(&w->e, tag);
	ck_assert(asprintf(&mnt, "%s/mnt", w->e.dir) > 0);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	if (!fuse_liar_start(&w->fl, mnt, why, sizeof(why))) {
		fprintf(stderr, "not run: %s: %s\n", tag, why);
		free(mnt);
		th_env_close(&w->e);
		return false;
	}
	ck_assert(asprintf(&w->sub, "%s/%s", mnt, sub) > 0);
	free(mnt);
	w->e.p.workspace = w->sub;
	return true;
}

static void fworld_close(struct fworld *w)
{
	fuse_liar_stop(&w->fl);
	free(w->sub);
	th_env_close(&w->e);
}

START_TEST(test_fuse_honest_control)
{
	struct fworld w;
	struct snap_result r;
	const char *paths[] = { "a.txt" };
	char id[SNAP_ID_LEN + 1];

	if (!fworld_open(&w, "fuse-honest", "honest"))
		return;
	ck_assert_msg(snap_run(w.e.s, SNAP_OP_CREATE, &w.e.p, &r) == 0, "%s", r.detail);
	ck_assert_int_eq(r.snaps[0].stats.files, 1);
	ck_assert_int_eq(r.snaps[0].stats.bytes, 100);
	memcpy(id, r.snaps[0].id, sizeof(id));
	snap_result_free(&r);
	w.e.p.snapshot = id;
	w.e.p.paths = paths;
	w.e.p.npaths = 1;
	w.e.p.read_length = SNAP_READ_MAX;
	ck_assert_msg(snap_run(w.e.s, SNAP_OP_READ, &w.e.p, &r) == 0, "%s", r.detail);
	ck_assert_int_eq(r.read.size, 100);
	ck_assert_int_eq(r.read.len, 100);
	/* base64 of 100 'a' */
	ck_assert_str_eq(r.read.data, "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"
			 "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYQ==");
	snap_result_free(&r);
	fworld_close(&w);
}
END_TEST

START_TEST(test_fuse_size_liar)
{
	struct fworld w;
	struct snap_result r;
	uint8_t buf[64];
	struct stat st;
	char *p;
	int fd;

	if (!fworld_open(&w, "fuse-liar", "liar"))
		return;
	/* The attack is real: st_size says 10, a read of 11 returns exactly
	 * 10 bytes, and the file goes on. */
	ck_assert(asprintf(&p, "%s/small.txt", w.sub) > 0);
	ck_assert_int_ge(fd = open(p, O_RDONLY), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, FL_SMALL_REPORTED);
	ck_assert_int_eq(read(fd, buf, FL_SMALL_REPORTED + 1), FL_SMALL_REPORTED);
	ck_assert_int_gt(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	free(p);
	/* Never stored truncated: the snapshot fails naming a liar... */
	ck_assert_int_eq(snap_run(w.e.s, SNAP_OP_CREATE, &w.e.p, &r), -EIO);
	ck_assert_msg(strstr(r.detail, "its filesystem reports") != NULL &&
		      (strstr(r.detail, "small.txt") != NULL || strstr(r.detail, "big.bin") != NULL),
		      "%s", r.detail);
	snap_result_free(&r);
	ck_assert_int_eq(snap_run(w.e.s, SNAP_OP_LIST, &w.e.p, &r), 0);
	ck_assert_int_eq(r.nsnaps, 0);
	snap_result_free(&r);
	/* ...or, when the caller allows it, records both as unreadable. */
	w.e.p.allow_unreadable = true;
	ck_assert_msg(snap_run(w.e.s, SNAP_OP_CREATE, &w.e.p, &r) == 0, "%s", r.detail);
	ck_assert_int_eq(r.snaps[0].stats.unreadable, 2);
	snap_result_free(&r);
	fworld_close(&w);
}
END_TEST

START_TEST(test_fuse_endless_directory)
{
	struct fworld w;
	struct snap_result r;

	if (!fworld_open(&w, "fuse-endless", "endless"))
		return;
	w.e.p.max_entries = 20000;
	ck_assert_int_eq(snap_run(w.e.s, SNAP_OP_CREATE, &w.e.p, &r), -E2BIG);
	ck_assert_msg(strstr(r.detail, "max_entries") != NULL, "%s", r.detail);
	snap_result_free(&r);
	fworld_close(&w);
}
END_TEST

START_TEST(test_fuse_long_name)
{
	struct fworld w;
	struct snap_result r;

	if (!fworld_open(&w, "fuse-longname", "longname"))
		return;
	ck_assert_int_eq(snap_run(w.e.s, SNAP_OP_CREATE, &w.e.p, &r), -ENAMETOOLONG);
	ck_assert_msg(strstr(r.detail, "File name too long") != NULL, "%s", r.detail);
	snap_result_free(&r);
	fworld_close(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snap-attack");
	TCase *tc = tcase_create("symlink-swap");

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: the symlink-swap attack test needs root (nonod's situation)\n");
		return 77;
	}
	log_init("test-snap-attack", LOG_LEVEL_ERROR);
	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_control_restore_writes_cfg);
	tcase_add_test(tc, test_swap_before_restore_root_decoy);
	tcase_add_test(tc, test_swap_before_restore_open_decoy);
	tcase_add_test(tc, test_swap_during_restore_root_decoy);
	tcase_add_test(tc, test_swap_during_restore_open_decoy);
	tcase_add_test(tc, test_swap_file_for_symlink);
	tcase_add_test(tc, test_readonly_dir_restore);
	tcase_add_test(tc, test_deep_tree_cannot_block_restore);
	tcase_add_test(tc, test_removal_never_follows_planted_links);
	tcase_add_test(tc, test_removal_keeps_many_excluded);
	suite_add_tcase(s, tc);
	tc = tcase_create("fuse");
	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuse_honest_control);
	tcase_add_test(tc, test_fuse_size_liar);
	tcase_add_test(tc, test_fuse_endless_directory);
	tcase_add_test(tc, test_fuse_long_name);
	suite_add_tcase(s, tc);
	return check_run(s);
}
