/*
 * The tree remover (daemon/rmtree.h) against what a session can leave in
 * its TMPDIR: a directory chain deeper than a path can name (the recursive
 * version gave up at 256 levels and leaked it), symlinks to directories
 * outside, directories swapped for symlinks or moved out while the walk is
 * inside them (by a hook at a chosen step, and by a racing thread many
 * times over), a filesystem mounted inside, modes without any permission
 * bit, odd names; and the keep callback restore uses. Each attack has its control beside it.
 */
#include <check.h>
#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsid.h"
#include "log.h"
#include "rmtree.h"
#include "../check-run.h"

/* top: made and removed by the parent process (unchecked fixture), so a
 * failing test still leaves nothing behind; base: each test's own directory
 * in it (checked fixture, in the test's process). */
static char top[256], base[512];

static void top_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(top, sizeof(top), "%s/nono-rmtree-XXXXXX", t != NULL && *t ? t : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void top_teardown(void)
{
	DIR *d = opendir(top);
	struct dirent *e;

	/* an immutable file a failed test_undeletable_entry may have left */
	while (d != NULL && (e = readdir(d)) != NULL) {
		char imm[1024];
		int fd, flags = 0;
		snprintf(imm, sizeof(imm), "%s/%s/imm/a/imm", top, e->d_name);
		if ((fd = open(imm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			ioctl(fd, FS_IOC_SETFLAGS, &flags);
			close(fd);
		}
	}
	if (d != NULL)
		closedir(d);
	if (rmtree(top) < 0)
		fprintf(stderr, "teardown: could not remove %s\n", top);
}

static void base_setup(void)
{
	snprintf(base, sizeof(base), "%s/t-XXXXXX", top);
	ck_assert_ptr_nonnull(mkdtemp(base));
}

/* base/name; static, overwritten by the next call with the same slot. */
static const char *P(int slot, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *P(int slot, const char *fmt, ...)
{
	static char buf[8][5000];
	char rel[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", base, rel);
	return buf[slot];
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void mkd(const char *p, mode_t m)
{
	ck_assert_msg(mkdir(p, m) == 0, "mkdir %s: %s", p, strerror(errno));
	ck_assert_int_eq(chmod(p, m), 0);
}

static void mkf(const char *p, const char *content, mode_t m)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	ck_assert_int_eq(fchmod(fd, m), 0);
	close(fd);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* An outside directory with canaries the tree's symlinks point at. */
static void outside_make(void)
{
	mkd(P(0, "outside"), 0755);
	mkf(P(0, "outside/canary"), "precious", 0644);
	mkd(P(0, "outside/sub"), 0755);
	mkf(P(0, "outside/sub/canary"), "precious", 0644);
}

static void outside_check(void)
{
	ck_assert_msg(exists(P(0, "outside/canary")), "outside canary deleted");
	ck_assert_msg(exists(P(0, "outside/sub/canary")), "outside sub/canary deleted");
}

/* A chain of depth directories called name below dir (by fds: the path is
 * longer than PATH_MAX); a file every 1000 levels, and a symlink to target
 * (when given) and a file at the bottom. */
static void chain_make(const char *dir, int depth, const char *name, const char *target)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < depth; i++) {
		ck_assert_int_eq(mkdirat(fd, name, 0755), 0);
		n = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(n, 0);
		close(fd);
		fd = n;
		if (i % 1000 == 999 || i == depth - 1) {
			n = openat(fd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			ck_assert_int_ge(n, 0);
			close(n);
		}
	}
	if (target != NULL)
		ck_assert_int_eq(symlinkat(target, fd, "out"), 0);
	close(fd);
}

/* ---- what a session leaves: depth, width, shapes ---- */

START_TEST(test_shallow_control)
{
	int fds = count_fds();

	mkd(P(0, "t"), 0755);
	mkf(P(0, "t/file"), "x", 0644);
	mkf(P(0, "t/empty"), "", 0644);
	ck_assert_int_eq(mkfifo(P(0, "t/fifo"), 0600), 0);
	ck_assert_int_eq(symlink("file", P(0, "t/link")), 0);
	ck_assert_int_eq(symlink("/nonexistent/dangling", P(0, "t/dangling")), 0);
	ck_assert_int_eq(link(P(0, "t/file"), P(1, "t/hardlink")), 0);
	mkd(P(0, "t/a"), 0755);
	mkd(P(0, "t/a/b"), 0755);
	mkd(P(0, "t/a/b/c"), 0755);
	mkf(P(0, "t/a/b/c/f"), "y", 0644);
	mkd(P(0, "t/empty-dir"), 0755);
	ck_assert_int_eq(rmtree(P(0, "t")), 0);
	ck_assert(!exists(P(0, "t")));
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/*
 * 5,000 levels (10,000 bytes of path). The recursive version stopped at 256
 * with -ELOOP and left the chain on disk. With RLIMIT_NOFILE a few above the
 * fds already open, one descriptor per level would fail at once.
 */
START_TEST(test_deep_chain_removed)
{
	struct rlimit old, tight;
	int fds = count_fds(), maxfd = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	mkd(P(0, "deep"), 0755);
	chain_make(P(0, "deep"), 5000, "d", NULL);
	while ((e = readdir(d)) != NULL)
		if (atoi(e->d_name) > maxfd)
			maxfd = atoi(e->d_name);
	closedir(d);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	tight = old;
	tight.rlim_cur = (rlim_t)maxfd + 4; /* the parent fd, the directory, its ".." */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
	int rc = rmtree(P(0, "deep"));
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert(!exists(P(0, "deep")));
	ck_assert_int_eq(count_fds(), fds);
}
END_TEST

/* Wide: 10,000 files and 10,000 directories (each with a file) side by side. */
START_TEST(test_wide_removed)
{
	mkd(P(0, "wide"), 0755);
	for (int i = 0; i < 10000; i++) {
		mkf(P(0, "wide/f%d", i), "x", 0644);
		mkd(P(0, "wide/d%d", i), 0755);
		mkf(P(0, "wide/d%d/f", i), "x", 0644);
	}
	ck_assert_int_eq(rmtree(P(0, "wide")), 0);
	ck_assert(!exists(P(0, "wide")));
}
END_TEST

/* As root (nonod), modes keep nothing: no bits on files, 000 and 0500 dirs. */
START_TEST(test_no_permission_bits)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP test_no_permission_bits: needs root (nonod removes TMPDIRs as root)\n");
		return;
	}
	mkd(P(0, "perm"), 0755);
	mkf(P(0, "perm/f000"), "x", 0);
	mkf(P(0, "perm/suid"), "x", 06755);
	mkd(P(0, "perm/ro"), 0755);
	mkf(P(0, "perm/ro/f"), "x", 0);
	chmod(P(0, "perm/ro"), 0500);
	mkd(P(0, "perm/none"), 0755);
	mkd(P(0, "perm/none/inner"), 0755);
	mkf(P(0, "perm/none/inner/f"), "x", 0);
	chmod(P(0, "perm/none/inner"), 0);
	chmod(P(0, "perm/none"), 0);
	chmod(P(0, "perm"), 0);
	ck_assert_int_eq(rmtree(P(0, "perm")), 0);
	ck_assert(!exists(P(0, "perm")));
}
END_TEST

START_TEST(test_odd_names)
{
	static const char *names[] = {
		"new\nline", "\n", "\n\n", " ", "-rf", "...", "..x", ".hidden", "back\\slash",
		"\x01\x7f", "\xff\xfe not utf-8", "*", "a b\tc",
	};
	char longname[256];

	memset(longname, 'n', 255);
	longname[255] = '\0';
	mkd(P(0, "odd"), 0755);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		mkf(P(0, "odd/%s", names[i]), "x", 0644);
		mkd(P(0, "odd/%s.d", names[i]), 0755);
		mkf(P(0, "odd/%s.d/%s", names[i], names[i]), "x", 0644);
	}
	mkd(P(0, "odd/%s", longname), 0755);
	mkd(P(0, "odd/%s/%s", longname, longname), 0755);
	mkf(P(0, "odd/%s/%s/%s", longname, longname, longname), "x", 0644);
	ck_assert_int_eq(rmtree(P(0, "odd")), 0);
	ck_assert(!exists(P(0, "odd")));
}
END_TEST

START_TEST(test_path_forms)
{
	char cwd[4096];

	ck_assert_int_eq(rmtree(P(0, "missing")), 0);
	ck_assert_int_eq(rmtree(P(0, "missing/below")), 0);
	ck_assert_int_eq(rmtree("/"), -EINVAL);
	ck_assert_int_eq(rmtree(""), -EINVAL);
	ck_assert_int_eq(rmtree(P(0, ".")), -EINVAL);
	ck_assert_int_eq(rmtree(P(0, "x/..")), -EINVAL);
	ck_assert(exists(base));
	mkd(P(0, "one"), 0755);
	mkd(P(0, "one/two"), 0755);
	ck_assert_int_eq(rmtree_at(AT_FDCWD, P(0, "one/two"), NULL), -EINVAL);
	ck_assert_int_eq(rmtree_at(AT_FDCWD, "", NULL), -EINVAL);
	ck_assert(exists(P(0, "one/two")));
	/* a trailing slash, a regular file, a relative path */
	mkd(P(0, "slash"), 0755);
	mkf(P(0, "slash/f"), "x", 0644);
	ck_assert_int_eq(rmtree(P(0, "slash//")), 0);
	ck_assert(!exists(P(0, "slash")));
	mkf(P(0, "plain"), "x", 0644);
	ck_assert_int_eq(rmtree(P(0, "plain")), 0);
	ck_assert(!exists(P(0, "plain")));
	mkd(P(0, "rel"), 0755);
	mkf(P(0, "rel/f"), "x", 0644);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(base), 0);
	int rc = rmtree("rel");
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert(!exists(P(0, "rel")));
}
END_TEST

/* ---- symlinks out of the tree ---- */

/* Symlinks to the outside directory, its file, at the top and 1,000 deep. */
START_TEST(test_symlinks_not_followed)
{
	outside_make();
	mkd(P(0, "t"), 0755);
	ck_assert_int_eq(symlink(P(1, "outside"), P(0, "t/dirlink")), 0);
	ck_assert_int_eq(symlink(P(1, "outside/canary"), P(0, "t/filelink")), 0);
	ck_assert_int_eq(symlink("../outside", P(0, "t/rellink")), 0);
	mkd(P(0, "t/deep"), 0755);
	chain_make(P(0, "t/deep"), 1000, "d", P(1, "outside"));
	ck_assert_int_eq(rmtree(P(0, "t")), 0);
	ck_assert(!exists(P(0, "t")));
	outside_check();
	ck_assert(exists(P(0, "outside/sub")));
}
END_TEST

/* The TMPDIR itself replaced by a symlink: the link goes, not its target. */
START_TEST(test_root_is_symlink)
{
	outside_make();
	ck_assert_int_eq(symlink(P(1, "outside"), P(0, "tmpdir")), 0);
	ck_assert_int_eq(rmtree(P(0, "tmpdir")), 0);
	ck_assert(!exists(P(0, "tmpdir")));
	outside_check();
}
END_TEST

/*
 * Swaps at chosen steps, driven through the keep callback (it runs for each
 * entry before anything is done to it, with the walk's fd open on the
 * entry's directory). It keeps nothing.
 */
struct hook {
	const char *when;  /* the entry path (relative to base) that fires it */
	int what;          /* 0 control, 1 swap for symlink, 2 move out, 3 move out + symlink */
	bool fired;
};

static bool hook_keep(void *arg, const char *path, const char *name)
{
	struct hook *h = arg;
	size_t bl = strlen(base);

	(void)name;
	if (h->fired || path == NULL || strncmp(path, base, bl) != 0 ||
	    strcmp(path + bl + 1, h->when) != 0)
		return false;
	h->fired = true;
	switch (h->what) {
	case 1: /* t/a/b, about to be looked at, becomes a symlink to outside */
		ck_assert_int_eq(rename(P(0, "t/a/b"), P(1, "t/b-moved")), 0);
		ck_assert_int_eq(symlink(P(1, "outside"), P(0, "t/a/b")), 0);
		break;
	case 2: /* t/a, while the walk is in t/a/b, moves into outside */
		ck_assert_int_eq(rename(P(0, "t/a"), P(1, "outside/a")), 0);
		break;
	case 3: /* t/a moves aside and a symlink to outside takes its name */
		ck_assert_int_eq(rename(P(0, "t/a"), P(1, "t/a-moved")), 0);
		ck_assert_int_eq(symlink(P(1, "outside"), P(0, "t/a")), 0);
		break;
	}
	return false;
}

static int run_hooked(struct hook *h, bool keep_going)
{
	char path[8192];
	struct rmtree_opts o = { .keep = hook_keep, .arg = h, .path = path,
				 .path_size = sizeof(path), .keep_going = keep_going };
	int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	outside_make();
	mkd(P(0, "t"), 0755);
	mkd(P(0, "t/a"), 0755);
	mkd(P(0, "t/a/b"), 0755);
	mkf(P(0, "t/a/b/f"), "x", 0644);
	o.path_len = (size_t)snprintf(path, sizeof(path), "%s/t", base);
	ck_assert_int_ge(dfd, 0);
	rc = rmtree_at(dfd, "t", &o);
	close(dfd);
	ck_assert_msg(h->what == 0 || h->fired, "the hook never ran");
	ck_assert_msg(strcmp(path, P(0, "t")) == 0, "path buffer not restored: %s", path);
	outside_check();
	return rc;
}

START_TEST(test_hook_control)
{
	struct hook h = { .when = "t/a/b/f", .what = 0 };

	ck_assert_int_eq(run_hooked(&h, false), 0);
	ck_assert(!exists(P(0, "t")));
}
END_TEST

/* Swapped between the scan and the stat: the symlink is unlinked. */
START_TEST(test_hook_swap_before_stat)
{
	struct hook h = { .when = "t/a/b", .what = 1 };

	ck_assert_int_eq(run_hooked(&h, false), 0);
	ck_assert(!exists(P(0, "t")));
}
END_TEST

/* The directory above the walk moves outside: ".." no longer matches. */
START_TEST(test_hook_moved_out)
{
	struct hook h = { .when = "t/a/b/f", .what = 2 };

	ck_assert_int_eq(run_hooked(&h, true), -EXDEV);
	ck_assert(exists(P(0, "outside/a"))); /* emptied: its contents were the tree's */
	ck_assert(!exists(P(0, "outside/a/b")));
}
END_TEST

/* Moved aside with a symlink in its place: the rmdir by name fails on the
 * link (and the walk stops there); the target is untouched. */
START_TEST(test_hook_moved_and_symlinked)
{
	struct hook h = { .when = "t/a/b/f", .what = 3 };

	ck_assert_int_eq(run_hooked(&h, false), -ENOTDIR);
	ck_assert(exists(P(0, "t/a")));
}
END_TEST

/* The same, going on: the link is unlinked, the moved directory left. */
START_TEST(test_hook_moved_and_symlinked_keep_going)
{
	struct hook h = { .when = "t/a/b/f", .what = 3 };

	ck_assert_int_eq(run_hooked(&h, true), -ENOTDIR);
	ck_assert(!exists(P(0, "t/a")));
	ck_assert(exists(P(0, "t/a-moved")));
	ck_assert(!exists(P(0, "t/a-moved/b")));
}
END_TEST

/*
 * A racing thread swaps directories of the tree for symlinks to outside
 * and back, and moves one in and out of outside, while rmtree runs; many
 * rounds, so the swaps land between every pair of the walk's steps.
 */
struct racer {
	volatile bool stop;
	unsigned long swaps;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char a[1024], b[1024], link[1024], out[1024], in[1024], away[1024];

	snprintf(link, sizeof(link), "%s/outside", base);
	snprintf(out, sizeof(out), "%s/outside/moved", base);
	while (!r->stop) {
		for (int i = 0; i < 4 && !r->stop; i++) {
			snprintf(a, sizeof(a), "%s/t/d%d", base, i);
			snprintf(b, sizeof(b), "%s/t/d%d.x", base, i);
			if (rename(a, b) == 0) {
				if (symlink(link, a) == 0)
					unlink(a);
				rename(b, a);
				r->swaps++;
			}
			snprintf(a, sizeof(a), "%s/t/d%d/s", base, i);
			snprintf(b, sizeof(b), "%s/t/d%d/s.x", base, i);
			if (rename(a, b) == 0) {
				if (symlink(link, a) == 0)
					unlink(a);
				rename(b, a);
				r->swaps++;
			}
		}
		snprintf(in, sizeof(in), "%s/t/d0/s", base);
		snprintf(away, sizeof(away), "%s", out);
		if (rename(in, away) == 0)
			rename(away, in);
	}
	return NULL;
}

START_TEST(test_race_swaps)
{
	unsigned long swaps = 0;
	int exdev = 0;

	log_set_level(LOG_LEVEL_ERROR); /* rmtree logs each stopped or partial walk */
	outside_make();
	for (int round = 0; round < 300; round++) {
		struct racer r = { 0 };
		pthread_t th;

		mkd(P(0, "t"), 0755);
		for (int i = 0; i < 4; i++) {
			mkd(P(0, "t/d%d", i), 0755);
			mkd(P(0, "t/d%d/s", i), 0755);
			for (int j = 0; j < 8; j++) {
				mkd(P(0, "t/d%d/s/%d", i, j), 0755);
				mkf(P(0, "t/d%d/s/%d/f", i, j), "x", 0644);
				mkf(P(0, "t/d%d/f%d", i, j), "x", 0644);
			}
		}
		ck_assert_int_eq(pthread_create(&th, NULL, race, &r), 0);
		int rc = rmtree(P(0, "t"));
		r.stop = true;
		pthread_join(th, NULL);
		swaps += r.swaps;
		exdev += rc == -EXDEV;
		outside_check();
		ck_assert_int_eq(rmtree(P(0, "t")), 0);
		ck_assert_int_eq(rmtree(P(0, "outside/moved")), 0);
		ck_assert(!exists(P(0, "t")));
	}
	fprintf(stderr, "race: 300 rounds, %lu swaps, %d walks stopped by a move\n", swaps, exdev);
}
END_TEST

/*
 * A filesystem mounted inside the tree (a user can put FUSE on a directory
 * they own): rmtree does not enter it. The control, without xdev, shows
 * the walk would otherwise empty it. In a private mount namespace, so a
 * failed test leaves no mount behind.
 */
static bool mount_tmpfs_here(const char *at)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "SKIP mount tests: no private mount namespace (%s)\n", strerror(errno));
		return false;
	}
	ck_assert_msg(mount("tmpfs", at, "tmpfs", 0, "size=1m") == 0, "mount: %s", strerror(errno));
	mkf(P(5, "t/mnt/canary"), "precious", 0644);
	return true;
}

START_TEST(test_mount_not_entered)
{
	mkd(P(0, "t"), 0755);
	mkd(P(0, "t/mnt"), 0755);
	mkf(P(0, "t/f"), "x", 0644);
	if (!mount_tmpfs_here(P(0, "t/mnt")))
		return;
	ck_assert_int_eq(rmtree(P(0, "t")), -EXDEV);
	ck_assert(exists(P(0, "t/mnt/canary")));
	ck_assert(!exists(P(0, "t/f")));
	ck_assert_int_eq(umount(P(0, "t/mnt")), 0);
	ck_assert_int_eq(rmtree(P(0, "t")), 0);
}
END_TEST

START_TEST(test_mount_control_without_xdev)
{
	int dfd;

	mkd(P(0, "t"), 0755);
	mkd(P(0, "t/mnt"), 0755);
	if (!mount_tmpfs_here(P(0, "t/mnt")))
		return;
	dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(rmtree_at(dfd, "t", NULL), -EBUSY);
	close(dfd);
	ck_assert(!exists(P(0, "t/mnt/canary")));
	ck_assert_int_eq(umount(P(0, "t/mnt")), 0);
}
END_TEST

/* ---- the keep callback (restore's excluded entries) ---- */

struct keepst {
	unsigned named, unnamed;
	const char *prefix;
};

static bool keep_named_keep(void *arg, const char *path, const char *name)
{
	struct keepst *k = arg;

	if (path == NULL) {
		k->unnamed++;
		return false;
	}
	k->named++;
	ck_assert_msg(strncmp(path, k->prefix, strlen(k->prefix)) == 0, "path %s", path);
	ck_assert_str_eq(strrchr(path, '/') + 1, name);
	return strncmp(name, "keep", 4) == 0;
}

START_TEST(test_keep_entries)
{
	char path[4096];
	struct keepst k = { .prefix = "ws/" };
	struct rmtree_opts o = { .keep = keep_named_keep, .arg = &k, .path = path,
				 .path_size = sizeof(path) };
	int dfd;

	mkd(P(0, "t"), 0755);
	mkd(P(0, "t/a"), 0755);
	mkf(P(0, "t/a/keep1"), "k", 0644);
	mkf(P(0, "t/a/other"), "x", 0644);
	mkd(P(0, "t/b"), 0755);
	mkd(P(0, "t/b/c"), 0755);
	mkd(P(0, "t/b/c/keep"), 0755);
	mkf(P(0, "t/b/c/keep/inside"), "k", 0644);
	mkf(P(0, "t/b/c/gone"), "x", 0644);
	mkd(P(0, "t/d"), 0755);
	mkf(P(0, "t/d/f"), "x", 0644);
	o.path_len = (size_t)snprintf(path, sizeof(path), "ws");
	dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(rmtree_at(dfd, "t", &o), 0);
	close(dfd);
	ck_assert_str_eq(path, "ws");
	ck_assert(exists(P(0, "t/a/keep1")));
	ck_assert(!exists(P(0, "t/a/other")));
	ck_assert(exists(P(0, "t/b/c/keep/inside")));
	ck_assert(!exists(P(0, "t/b/c/gone")));
	ck_assert(!exists(P(0, "t/d")));
	ck_assert_int_eq(k.unnamed, 0);
}
END_TEST

/* 3,000 directories each holding a kept file: all stay, and the walk ends
 * (every rescan skips the directories it already left). */
START_TEST(test_keep_wide)
{
	char path[4096];
	struct keepst k = { .prefix = "t/" };
	struct rmtree_opts o = { .keep = keep_named_keep, .arg = &k, .path = path,
				 .path_size = sizeof(path) };
	int dfd;

	mkd(P(0, "t"), 0755);
	for (int i = 0; i < 3000; i++) {
		mkd(P(0, "t/d%d", i), 0755);
		mkf(P(0, "t/d%d/keep", i), "k", 0644);
		mkf(P(0, "t/d%d/gone", i), "x", 0644);
	}
	o.path_len = (size_t)snprintf(path, sizeof(path), "t");
	dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(rmtree_at(dfd, "t", &o), 0);
	close(dfd);
	for (int i = 0; i < 3000; i++) {
		ck_assert(exists(P(0, "t/d%d/keep", i)));
		ck_assert(!exists(P(0, "t/d%d/gone", i)));
	}
}
END_TEST

/* Past the path buffer, keep is asked with a NULL path; nothing breaks. */
START_TEST(test_keep_beyond_path_buffer)
{
	char path[64];
	struct keepst k = { .prefix = "t" };
	struct rmtree_opts o = { .keep = keep_named_keep, .arg = &k, .path = path,
				 .path_size = sizeof(path) };
	int dfd;

	mkd(P(0, "t"), 0755);
	chain_make(P(0, "t"), 100, "dd", NULL);
	o.path_len = (size_t)snprintf(path, sizeof(path), "t");
	dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(rmtree_at(dfd, "t", &o), 0);
	close(dfd);
	ck_assert_str_eq(path, "t");
	ck_assert(!exists(P(0, "t")));
	ck_assert_uint_gt(k.named, 0);
	ck_assert_uint_gt(k.unnamed, 0);
}
END_TEST

/* ---- failures: keep going, or stop ---- */

static int fails;

static void count_fail(void *arg, int err, const char *what, const char *path)
{
	(void)arg;
	(void)path;
	ck_assert_int_lt(err, 0);
	ck_assert_ptr_nonnull(what);
	fails++;
}

/* An immutable file cannot go: everything else does (keep_going), or the
 * walk stops at it (the default); the first error comes back either way. */
START_TEST(test_undeletable_entry)
{
	int fd, flags = FS_IMMUTABLE_FL, dfd;
	struct rmtree_opts o = { .fail = count_fail };

	mkd(P(0, "imm"), 0755);
	mkd(P(0, "imm/a"), 0755);
	mkf(P(0, "imm/a/imm"), "x", 0644);
	fd = open(P(0, "imm/a/imm"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) {
		fprintf(stderr, "SKIP test_undeletable_entry: no immutable flag here (%s)\n",
			strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	for (int i = 0; i < 50; i++) {
		mkf(P(0, "imm/a/f%d", i), "x", 0644);
		mkd(P(0, "imm/d%d", i), 0755);
		mkf(P(0, "imm/d%d/f", i), "x", 0644);
	}
	dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(rmtree_at(dfd, "imm", &o), -EPERM);
	ck_assert_int_eq(fails, 1); /* stopped there */
	ck_assert(exists(P(0, "imm/a/imm")));
	fails = 0;
	o.keep_going = true;
	ck_assert_int_eq(rmtree_at(dfd, "imm", &o), -EPERM);
	ck_assert_int_ge(fails, 1);
	close(dfd);
	ck_assert(exists(P(0, "imm/a/imm")));
	for (int i = 0; i < 50; i++) {
		ck_assert(!exists(P(0, "imm/a/f%d", i)));
		ck_assert(!exists(P(0, "imm/d%d", i)));
	}
	/* the rmtree contract: the first -errno, what could go is gone */
	ck_assert_int_eq(rmtree(P(0, "imm")), -EPERM);
	flags = 0;
	fd = open(P(0, "imm/a/imm"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
	close(fd);
	ck_assert_int_eq(rmtree(P(0, "imm")), 0);
	ck_assert(!exists(P(0, "imm")));
}
END_TEST

/* ---- rmtree_as: a TMPDIR is removed with its owner's rights ---- */

#define OWNER 65534 /* nobody: the session's user */

static int give_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return lchown(p, OWNER, OWNER);
}

/* Root only; top and base made like /tmp for the owner: top searchable,
 * base sticky and world-writable (the TMPDIR's parent is /tmp). */
static bool as_owner_setup(const char *name)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root (nonod switches to the owner's ids)\n", name);
		return false;
	}
	ck_assert_int_eq(chmod(top, 0711), 0);
	ck_assert_int_eq(chmod(base, 01777), 0);
	return true;
}

/* The owner's own tree with every mode that stops a removal: none of it
 * is left, because the owner may chmod their own directories. */
static void owner_tree_make(void)
{
	mkd(P(0, "t"), 0755);
	mkf(P(0, "t/f"), "x", 0);
	mkd(P(0, "t/none"), 0755);
	mkd(P(0, "t/none/inner"), 0755);
	mkf(P(0, "t/none/inner/f"), "x", 0);
	mkd(P(0, "t/ro"), 0755);
	mkf(P(0, "t/ro/f"), "x", 0644);
	mkd(P(0, "t/nosearch"), 0755);
	mkf(P(0, "t/nosearch/f"), "x", 0644);
	mkd(P(0, "t/wo"), 0755);
	mkd(P(0, "t/wo/sub"), 0755);
	mkf(P(0, "t/wo/sub/f"), "x", 0644);
	ck_assert_int_eq(nftw(P(0, "t"), give_one, 16, FTW_PHYS), 0);
	chmod(P(0, "t/none/inner"), 0);
	chmod(P(0, "t/none"), 0);
	chmod(P(0, "t/ro"), 0500);
	chmod(P(0, "t/nosearch"), 0600);
	chmod(P(0, "t/wo"), 0300);
	chmod(P(0, "t"), 0);
}

START_TEST(test_as_owner_unlocks_own_dirs)
{
	struct fsid_saved old;

	if (!as_owner_setup("test_as_owner_unlocks_own_dirs"))
		return;
	owner_tree_make();
	/* control: with the owner's ids, a plain removal is stopped by the modes */
	ck_assert_int_eq(fsid_enter(OWNER, OWNER, &old), 0);
	ck_assert_int_eq(rmtree(P(0, "t")), -EACCES);
	fsid_leave(&old);
	ck_assert(exists(P(0, "t")));
	ck_assert_int_eq(rmtree_as(P(0, "t"), OWNER, OWNER), 0);
	ck_assert(!exists(P(0, "t")));
	/* the thread is itself again */
	ck_assert_int_eq(setfsuid((uid_t)-1), 0);
	ck_assert_int_eq(setfsgid((gid_t)-1), 0);
}
END_TEST

/* A user's own nonod (user mode) is the owner already: it unlocks too. */
START_TEST(test_user_daemon_unlocks_own_dirs)
{
	pid_t p;
	int st;

	if (!as_owner_setup("test_user_daemon_unlocks_own_dirs"))
		return;
	owner_tree_make();
	if ((p = fork()) == 0) {
		if (setgroups(0, NULL) < 0 || setgid(OWNER) < 0 || setuid(OWNER) < 0)
			_exit(2);
		_exit(rmtree_as(P(0, "t"), OWNER, OWNER) == 0 && !exists(P(0, "t")) ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(p, &st, 0), p);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
	ck_assert(!exists(P(0, "t")));
}
END_TEST

/* Attack: root-owned things in the owner's TMPDIR (a directory the user
 * could rename in, one they could not even chmod, a symlink to a root-only
 * directory). Removing as root would delete root's files on the user's
 * behalf; as the owner, the kernel keeps them, and the unlock step cannot
 * change a mode that is not the owner's. */
START_TEST(test_as_owner_leaves_root_files)
{
	struct stat st;

	if (!as_owner_setup("test_as_owner_leaves_root_files"))
		return;
	mkd(P(0, "rootonly"), 0700);
	mkf(P(0, "rootonly/canary"), "precious", 0600);
	owner_tree_make();
	chmod(P(0, "t"), 0755);
	mkd(P(0, "t/moved-in"), 01777); /* root's, like a shared scratch dir */
	mkf(P(0, "t/moved-in/roots"), "precious", 0644);
	mkd(P(0, "t/moved-in/rootdir"), 0755);
	mkf(P(0, "t/moved-in/rootdir/f"), "precious", 0644);
	mkd(P(0, "t/locked"), 0755);
	mkf(P(0, "t/locked/f"), "precious", 0644);
	chmod(P(0, "t/locked"), 0);
	ck_assert_int_eq(symlink(P(1, "rootonly"), P(0, "t/link")), 0);
	ck_assert_int_eq(lchown(P(0, "t/link"), OWNER, OWNER), 0);
	chmod(P(0, "t"), 0);

	ck_assert_int_lt(rmtree_as(P(0, "t"), OWNER, OWNER), 0);
	ck_assert(exists(P(0, "t/moved-in/roots")));
	ck_assert(exists(P(0, "t/moved-in/rootdir/f")));
	ck_assert(exists(P(0, "t/locked/f")));
	ck_assert_int_eq(lstat(P(0, "t/locked"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0);
	ck_assert_int_eq(lstat(P(0, "t/moved-in"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 01777);
	ck_assert_int_eq(lstat(P(0, "rootonly"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert(exists(P(0, "rootonly/canary")));
	/* what was the owner's is gone */
	ck_assert(!exists(P(0, "t/f")));
	ck_assert(!exists(P(0, "t/none")));
	ck_assert(!exists(P(0, "t/ro")));
	ck_assert(!exists(P(0, "t/nosearch")));
	ck_assert(!exists(P(0, "t/wo")));
	ck_assert(!exists(P(0, "t/link")));
	/* control: root's own removal takes everything */
	ck_assert_int_eq(rmtree(P(0, "t")), 0);
	ck_assert(!exists(P(0, "t")));
}
END_TEST

static Suite *rmtree_suite(void)
{
	Suite *s = suite_create("rmtree");
	TCase *tc = tcase_create("rmtree");

	tcase_add_unchecked_fixture(tc, top_setup, top_teardown);
	tcase_add_checked_fixture(tc, base_setup, NULL);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_shallow_control);
	tcase_add_test(tc, test_deep_chain_removed);
	tcase_add_test(tc, test_wide_removed);
	tcase_add_test(tc, test_no_permission_bits);
	tcase_add_test(tc, test_odd_names);
	tcase_add_test(tc, test_path_forms);
	tcase_add_test(tc, test_symlinks_not_followed);
	tcase_add_test(tc, test_root_is_symlink);
	tcase_add_test(tc, test_hook_control);
	tcase_add_test(tc, test_hook_swap_before_stat);
	tcase_add_test(tc, test_hook_moved_out);
	tcase_add_test(tc, test_hook_moved_and_symlinked);
	tcase_add_test(tc, test_hook_moved_and_symlinked_keep_going);
	tcase_add_test(tc, test_race_swaps);
	tcase_add_test(tc, test_mount_not_entered);
	tcase_add_test(tc, test_mount_control_without_xdev);
	tcase_add_test(tc, test_keep_entries);
	tcase_add_test(tc, test_keep_wide);
	tcase_add_test(tc, test_keep_beyond_path_buffer);
	tcase_add_test(tc, test_undeletable_entry);
	tcase_add_test(tc, test_as_owner_unlocks_own_dirs);
	tcase_add_test(tc, test_user_daemon_unlocks_own_dirs);
	tcase_add_test(tc, test_as_owner_leaves_root_files);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(rmtree_suite());
}
