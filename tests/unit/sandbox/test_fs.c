/*
 * Filesystem escapes, attacked for real from a sandboxed child, each with a
 * control case: read/write outside, symlink, hardlink, rename out/in, "..",
 * truncate, DENY carve-outs, exec of /bin/cat on the stand-in ~/.ssh/id_rsa.
 */
#include "harness.h"
#include "probe.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../check-run.h"

static int try_symlink_read(void *arg)
{
	char *link = hp(H.ws, "newlink");

	(void)arg;
	if (symlink(H.secret, link) != 0)
		return 200;  /* creating a symlink in ws must work */
	return try_read(link);
}

static int try_hardlink(void *dst)
{
	return link(H.secret, dst) == 0 ? 0 : errno;
}

static int try_rename_out(void *dst)
{
	return rename(hp(H.ws, "file2"), dst) == 0 ? 0 : errno;
}

static int try_rename_in(void *arg)
{
	(void)arg;
	return rename(hp(H.outside, "target"), hp(H.ws, "stolen")) == 0 ? 0 : errno;
}

static int try_truncate(void *path)
{
	return truncate(path, 0) == 0 ? 0 : errno;
}

static int try_list(void *path)
{
	DIR *d = opendir(path);

	if (!d)
		return errno;
	closedir(d);
	return 0;
}

START_TEST(test_read_outside)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	/* control: DAC lets the (dropped) user read it without the sandbox */
	ck_assert_int_eq(harness_run_plain(try_read, H.secret), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, H.secret), EACCES);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.outside, "target")), EACCES);
	/* "..": resolved by the kernel, still outside */
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "../home/.ssh/id_rsa")), EACCES);
	/* pre-existing symlink in the workspace pointing at the key */
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "link")), EACCES);
	/* symlink created by the worker */
	ck_assert_int_eq(harness_run(&hs, try_symlink_read, NULL), EACCES);
}
END_TEST

START_TEST(test_exec_cat)
{
	struct harness_spec hs;
	char out[256];
	char *ok[] = { "/bin/cat", hp(H.ws, "file"), NULL };
	char *bad[] = { "/bin/cat", H.secret, NULL };

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_exec(&hs, ok, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "hello\n");
	ck_assert_int_ne(harness_exec(&hs, bad, out, sizeof(out)), 0);
	ck_assert_ptr_null(strstr(out, "PRIVATE"));
}
END_TEST

START_TEST(test_exec_python)
{
	static const char code[] =
		"import sys\n"
		"try:\n"
		"    open(sys.argv[1]).read()\n"
		"    print('LEAKED')\n"
		"except PermissionError:\n"
		"    print('denied')\n"
		"print(open(sys.argv[2]).read(), end='')\n";
	struct harness_spec hs;
	char out[256];
	char *argv[] = { "/usr/bin/python3", "-S", "-c", (char *)code, H.secret, hp(H.ws, "file"),
			 NULL };

	if (access(argv[0], X_OK) != 0) {
		fprintf(stderr, "not run: test_exec_python (no /usr/bin/python3)\n");
		return;
	}
	harness_spec_init(&hs);
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "denied\nhello\n");
}
END_TEST

START_TEST(test_write_outside)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run_plain(try_create, hp(H.outside, "plain")), 0);
	ck_assert_int_eq(harness_run(&hs, try_create, hp(H.ws, "new")), 0);
	ck_assert_int_eq(harness_run(&hs, try_create, hp(H.outside, "new")), EACCES);
	ck_assert_int_eq(harness_run(&hs, try_create, hp(H.ro, "new")), EACCES);
	ck_assert_int_eq(access(hp(H.outside, "new"), F_OK), -1);
	/* truncate: read-only path denied, workspace allowed */
	ck_assert_int_eq(harness_run(&hs, try_truncate, hp(H.ro, "file")), EACCES);
	ck_assert_int_eq(harness_run(&hs, try_truncate, hp(H.outside, "target")), EACCES);
	ck_assert_int_eq(harness_run_plain(try_truncate, hp(H.ro, "file")), 0);
}
END_TEST

START_TEST(test_link_rename)
{
	struct harness_spec hs;
	int rc;

	harness_spec_init(&hs);
	/* control: without the sandbox the hardlink works (same fs, owned) */
	ck_assert_int_eq(harness_run_plain(try_hardlink, hp(H.outside, "hl-control")), 0);
	rc = harness_run(&hs, try_hardlink, hp(H.ws, "hl"));
	ck_assert_msg(rc == EXDEV || rc == EACCES, "hardlink of the key into ws: %d", rc);
	ck_assert_int_eq(access(hp(H.ws, "hl"), F_OK), -1);
	rc = harness_run(&hs, try_rename_out, hp(H.outside, "file2"));
	ck_assert_msg(rc == EXDEV || rc == EACCES, "rename out: %d", rc);
	rc = harness_run(&hs, try_rename_in, NULL);
	ck_assert_msg(rc == EXDEV || rc == EACCES, "rename in: %d", rc);
	/* control: rename inside the workspace works */
	ck_assert_int_eq(harness_run(&hs, try_rename_out, hp(H.ws, "sub/file2")), 0);
	ck_assert_int_eq(rename(hp(H.ws, "sub/file2"), hp(H.ws, "file2")), 0);
}
END_TEST

START_TEST(test_deny_carveout)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	harness_spec_add(&hs, H.home, SANDBOX_READ);
	harness_spec_add(&hs, hp(H.home, ".ssh"), SANDBOX_DENY);
	harness_spec_add(&hs, hp(H.ws, "secret"), SANDBOX_DENY);
	ck_assert_int_eq(harness_run(&hs, try_read, H.secret), EACCES);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.home, ".bashrc")), 0);
	ck_assert_int_eq(harness_run(&hs, try_list, H.home), 0);
	/* documented limit: READ_DIR of the split parent is inherited, so the
	 * denied directory's names can be listed, never its contents read */
	ck_assert_int_eq(harness_run(&hs, try_list, hp(H.home, ".ssh")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "secret/key")), EACCES);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "sub/ok")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, try_list, H.ws), 0);
	/* siblings keep the parent's access */
	ck_assert_int_eq(harness_run(&hs, try_create, hp(H.ws, "sub/created")), 0);
	ck_assert_int_eq(harness_run(&hs, try_truncate, hp(H.ws, "file2")), 0);
	/* documented consequence: no new entries directly in the split dir */
	ck_assert_int_eq(harness_run(&hs, try_create, hp(H.ws, "created")), EACCES);
	/* the denied dir cannot be renamed into a readable sibling */
	ck_assert_int_ne(harness_run(&hs, try_rename_out, hp(H.ws, "secret/x")), 0);
	if (access(hp(H.ws, "secret/x"), F_OK) == 0)
		rename(hp(H.ws, "secret/x"), hp(H.ws, "file2"));
	/* an allow equal to a deny: the deny wins */
	harness_spec_add(&hs, hp(H.ws, "secret"), SANDBOX_READ);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ws, "secret/key")), EACCES);
}
END_TEST

START_TEST(test_deny_regrant)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	harness_spec_add(&hs, H.home, SANDBOX_READ);
	harness_spec_add(&hs, hp(H.home, ".ssh"), SANDBOX_DENY);
	harness_spec_add(&hs, H.secret, SANDBOX_READ);
	ck_assert_int_eq(harness_run(&hs, try_read, H.secret), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.home, ".bashrc")), 0);
}
END_TEST

/*
 * A rule names the inode that was resolved when the sandbox was compiled
 * (sandbox/paths.c keeps it open for landlock_add_rule): replacing the
 * allowed directory with a symlink to the outside between compile and
 * enter grants nothing there. Control: the moved original stays readable.
 */
START_TEST(test_rule_binds_resolved_inode)
{
	struct harness_spec hs;
	struct sandbox_compiled *c = NULL;
	enum sandbox_step step;
	char dir[256], moved[256], file[PATH_MAX], err[256];
	int st, fd;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/swap", H.root);
	snprintf(moved, sizeof(moved), "%s/swap.old", H.root);
	snprintf(file, sizeof(file), "%s/target", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	harness_spec_init(&hs);
	harness_spec_add(&hs, dir, SANDBOX_READ);
	ck_assert_msg(sandbox_compile(&hs.spec, &c, err, sizeof(err)) == 0, "%s", err);
	/* the swap: the allowed name now leads to the outside dir */
	ck_assert_int_eq(rename(dir, moved), 0);
	ck_assert_int_eq(symlink(H.outside, dir), 0);
	/* control: without the sandbox the name reaches the outside file */
	ck_assert_int_eq(harness_run_plain(try_read, file), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char again[PATH_MAX];
		int a, b;

		if (sandbox_enter(c, &step) != 0)
			_exit(100 + (int)step);
		snprintf(again, sizeof(again), "%s/target", moved);
		a = try_read(file);       /* outside/target through the swapped name */
		b = try_read(again);      /* the inode the rule was made for */
		_exit(a == EACCES && b == 0 ? 0 : a == 0 ? 1 : 2);
	}
	sandbox_compiled_free(c);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	unlink(dir);
	unlink(hp(moved, "target"));
	rmdir(moved);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

/* A rule path with a symlink component is granted at its target (one
 * kernel walk in sandbox/paths.c, named through /proc/self/fd). */
START_TEST(test_rule_through_symlink)
{
	struct harness_spec hs;
	char link[PATH_MAX];

	snprintf(link, sizeof(link), "%s/ro-link", H.root);
	ck_assert_int_eq(symlink(H.ro, link), 0);
	harness_spec_init(&hs);
	for (size_t i = 0; i < hs.spec.npaths; i++)
		if (strcmp(hs.rules[i].path, H.ro) == 0)
			hs.rules[i].path = link;
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ro, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(link, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, H.secret), EACCES);
	unlink(link);
}
END_TEST

/* "N path rules (M more covered by a parent rule)" from a compile of hs. */
static void rule_counts(struct harness_spec *hs, size_t *added, size_t *covered)
{
	const struct sandbox_report *r;
	struct sandbox_compiled *c = NULL;
	char why[256];
	bool found = false;

	ck_assert_msg(sandbox_compile(&hs->spec, &c, why, sizeof(why)) == 0, "compile: %s", why);
	r = sandbox_compiled_report(c);
	for (size_t i = 0; i < r->n && !found; i++)
		found = strcmp(r->items[i].feature, "landlock.fs") == 0 &&
			sscanf(r->items[i].detail, "%zu path rules (%zu more", added, covered) == 2;
	sandbox_compiled_free(c);
	ck_assert_msg(found, "no landlock.fs report line");
}

static int try_create_write(void *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return errno;
	close(fd);
	unlink(path);
	return 0;
}

/*
 * A rule beneath (or equal to) another whose rights include its own adds
 * nothing to Landlock's walk and is not added (sandbox/fsrules.c). Those
 * that do add something stay: more rights than the parent, a parent split
 * by a deny carve-out, and an allow inside a denied path. Access is the
 * same either way.
 */
START_TEST(test_nested_rules)
{
	struct harness_spec hs;
	size_t added0, covered0, added, covered;
	char w[PATH_MAX + 8], wnew[PATH_MAX + 16];

	snprintf(w, sizeof(w), "%s/w", H.ro);  /* hp() buffers rotate */
	snprintf(wnew, sizeof(wnew), "%s/new", w);

	ck_assert(mkdir(w, 0777) == 0 || errno == EEXIST);
	chmod(w, 0777);
	harness_spec_init(&hs);
	harness_spec_add(&hs, H.home, SANDBOX_READ);
	harness_spec_add(&hs, hp(H.home, ".ssh"), SANDBOX_DENY);
	rule_counts(&hs, &added0, &covered0);

	harness_spec_add(&hs, hp(H.ws, "sub"), SANDBOX_READ);      /* under ws WRITE: covered */
	harness_spec_add(&hs, H.ws, SANDBOX_WRITE);                /* ws twice: covered */
	harness_spec_add(&hs, hp(H.ro, "file"), SANDBOX_READ);     /* under ro READ: covered */
	harness_spec_add(&hs, w, SANDBOX_WRITE);                   /* more than ro: kept */
	harness_spec_add(&hs, hp(H.home, ".bashrc"), SANDBOX_READ); /* home is split: kept */
	harness_spec_add(&hs, H.secret, SANDBOX_READ);             /* inside the deny: kept */
	rule_counts(&hs, &added, &covered);
	ck_assert_uint_eq(covered, covered0 + 3);
	ck_assert_uint_eq(added, added0 + 3);

	/* The covered ones lost nothing: ws/sub is still writable (ws is WRITE). */
	ck_assert_int_eq(harness_run(&hs, try_create_write, hp(H.ws, "sub/new")), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.ro, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, try_create_write, hp(H.ro, "new")), EACCES);
	/* The kept ones still grant what their parent does not. */
	ck_assert_int_eq(harness_run(&hs, try_create_write, wnew), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, H.secret), 0);
	ck_assert_int_eq(harness_run(&hs, try_read, hp(H.home, ".bashrc")), 0);
	/* The carve-out still denies the rest of the denied directory. */
	ck_assert_int_eq(harness_run(&hs, try_create_write, hp(H.home, ".ssh/config")), EACCES);
	rmdir(w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_fs");
	TCase *tc = tcase_create("fs");

	if (sandbox_probe()->landlock_abi < 6) {
		fprintf(stderr, "SKIP: needs Landlock ABI >= 6 (kernel has %d)\n",
			sandbox_probe()->landlock_abi);
		return 77;
	}

	tcase_add_unchecked_fixture(tc, harness_setup, harness_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_read_outside);
	tcase_add_test(tc, test_exec_cat);
	tcase_add_test(tc, test_exec_python);
	tcase_add_test(tc, test_write_outside);
	tcase_add_test(tc, test_link_rename);
	tcase_add_test(tc, test_deny_carveout);
	tcase_add_test(tc, test_deny_regrant);
	tcase_add_test(tc, test_rule_binds_resolved_inode);
	tcase_add_test(tc, test_rule_through_symlink);
	tcase_add_test(tc, test_nested_rules);
	suite_add_tcase(s, tc);
	return check_run(s);
}
