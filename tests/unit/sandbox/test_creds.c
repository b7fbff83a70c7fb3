/*
 * Privilege: credential drop (root -> nobody, root not regainable),
 * capabilities gone even without a drop, no_new_privs defeats a setuid-root
 * copy of /usr/bin/id, rlimits (nproc fork bomb contained, fsize, core 0),
 * and environment scrubbing seen by a real exec of /usr/bin/env.
 */
#include "harness.h"
#include "probe.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../check-run.h"

static int caps_empty(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, d) != 0)
		return 0;
	return !(d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective |
		 d[1].permitted | d[1].inheritable);
}

static int a_dropped(void *arg)
{
	uid_t r, e, s;
	gid_t gs[4];

	(void)arg;
	if (getresuid(&r, &e, &s) != 0 || r != HARNESS_NOBODY || e != HARNESS_NOBODY ||
	    s != HARNESS_NOBODY)
		return 1;
	if (getgroups(4, gs) != 1 || gs[0] != HARNESS_NOBODY || getegid() != HARNESS_NOBODY)
		return 2;
	if (setuid(0) == 0 || errno != EPERM)
		return 3;
	if (syscall(SYS_setresuid, 0, 0, 0) == 0)
		return 4;
	if (!caps_empty())
		return 5;
	return 0;
}

START_TEST(test_cred_drop)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run(&hs, a_dropped, NULL), 0);
}
END_TEST

static int a_root_powerless(void *arg)
{
	(void)arg;
	if (geteuid() != 0)
		return 1;
	if (!caps_empty())
		return 2;
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
			return 3;
	if (!(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) & (1 << 0)))  /* SECBIT_NOROOT */
		return 4;
	if (chown(H.ws, 0, 0) == 0 || errno != EPERM)  /* CAP_CHOWN gone */
		return 5;
	return 0;
}

START_TEST(test_root_without_drop_has_no_caps)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	hs.spec.creds.set = false;
	ck_assert_int_eq(harness_run(&hs, a_root_powerless, NULL), 0);
}
END_TEST

/* Runs argv as nobody (no sandbox) and captures stdout. */
static int exec_plain(char *const argv[], char *out, size_t outlen)
{
	int p[2], st;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		gid_t g = HARNESS_NOBODY;

		dup2(p[1], 1);
		if (setgroups(1, &g) || setresgid(g, g, g) ||
		    setresuid(HARNESS_NOBODY, HARNESS_NOBODY, HARNESS_NOBODY))
			_exit(99);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (got < outlen - 1 && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC), out;

	ck_assert_int_ge(in, 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ck_assert_int_ge(out, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

START_TEST(test_setuid_no_gain)
{
	struct harness_spec hs;
	char out[512];
	char *argv[] = { hp(H.ws, "suid-id"), NULL };

	copy_file("/usr/bin/id", argv[0]);
	ck_assert_int_eq(chown(argv[0], 0, 0), 0);
	ck_assert_int_eq(chmod(argv[0], 04755), 0);
	/* control: without the sandbox the copy really is setuid root */
	ck_assert_int_eq(exec_plain(argv, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "euid=0") != NULL, "control: %s", out);
	harness_spec_init(&hs);
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "uid=65534") != NULL && strstr(out, "euid=") == NULL,
		      "sandboxed: %s", out);
	unlink(argv[0]);
}
END_TEST

#define BOMB_MAX 40

static int a_fork_bomb(void *arg)
{
	pid_t kids[BOMB_MAX];
	int n = 0, err = 0;

	(void)arg;
	while (n < BOMB_MAX) {
		pid_t p = fork();

		if (p < 0) {
			err = errno;
			break;
		}
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		kids[n++] = p;
	}
	for (int i = 0; i < n; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	if (n == BOMB_MAX)
		return 100;          /* not contained */
	return err == EAGAIN && n < 16 ? 0 : 101;
}

START_TEST(test_nproc_bomb)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	/* control: the same bomb without a limit reaches BOMB_MAX */
	ck_assert_int_eq(harness_run(&hs, a_fork_bomb, NULL), 100);
	hs.spec.limits.nproc = 16;
	ck_assert_int_eq(harness_run(&hs, a_fork_bomb, NULL), 0);
}
END_TEST

static int a_big_write(void *arg)
{
	char buf[8192];
	struct rlimit rl;
	int fd, err = 0;
	size_t done = 0;

	(void)arg;
	signal(SIGXFSZ, SIG_IGN);
	if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return 2;
	memset(buf, 'a', sizeof(buf));
	fd = open(hp(H.ws, "big"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return 3;
	while (done < sizeof(buf)) {
		ssize_t n = write(fd, buf + done, sizeof(buf) - done);

		if (n < 0) {
			err = errno;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	unlink(hp(H.ws, "big"));
	return err == EFBIG && done == 4096 ? 0 : 4;
}

START_TEST(test_fsize_core)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	hs.spec.limits.fsize = 4096;
	ck_assert_int_eq(harness_run(&hs, a_big_write, NULL), 0);
}
END_TEST

START_TEST(test_env_scrubbed)
{
	static const char *const all[] = { "*" };
	static const char *const exact[] = { "LD_PRELOAD", "PATH" };
	static const char *const set[] = { "NONO_SET=yes" };
	struct harness_spec hs;
	char out[8192];
	char *argv[] = { "/usr/bin/env", NULL };

	ck_assert_int_eq(setenv("LD_PRELOAD", "/nonexistent/evil.so", 1), 0);
	ck_assert_int_eq(setenv("BASH_ENV", "/nonexistent/evil.sh", 1), 0);
	ck_assert_int_eq(setenv("NONO_PLAIN", "1", 1), 0);
	harness_spec_init(&hs);
	hs.spec.env.pass = all;
	hs.spec.env.npass = 1;
	hs.spec.env.set = set;
	hs.spec.env.nset = 1;
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_ptr_null(strstr(out, "LD_PRELOAD="));
	ck_assert_ptr_null(strstr(out, "BASH_ENV="));
	ck_assert_ptr_nonnull(strstr(out, "NONO_PLAIN=1\n"));
	ck_assert_ptr_nonnull(strstr(out, "NONO_SET=yes\n"));
	/* control: named exactly, it does get through */
	hs.spec.env.pass = exact;
	hs.spec.env.npass = 2;
	hs.spec.env.nset = 0;
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "LD_PRELOAD=/nonexistent/evil.so"));
	ck_assert_ptr_null(strstr(out, "NONO_PLAIN"));
	unsetenv("LD_PRELOAD");
	unsetenv("BASH_ENV");
	unsetenv("NONO_PLAIN");
}
END_TEST

static int a_chmod(void *path)
{
	return chmod(path, 0600) == 0 ? 0 : errno;
}

static int a_metadata_outside(void *arg)
{
	(void)arg;
	if (utimensat(AT_FDCWD, hp(H.outside, "target"), NULL, 0) == 0)
		return 1;
	if (errno != EROFS)
		return 2;
	if (setxattr(hp(H.outside, "target"), "user.nono", "x", 1, 0) == 0 || errno != EROFS)
		return 3;
	/* the workspace stays writable, also relative to cwd (= ws) */
	if (try_create("created-rel") != 0 || unlink("created-rel") != 0)
		return 4;
	return 0;
}

START_TEST(test_readonly_mounts)
{
	struct harness_spec hs;
	char *probe = hp(H.outside, "host-probe");

	harness_spec_init(&hs);
	/* control: Landlock alone lets metadata change outside the policy */
	ck_assert_int_eq(harness_run(&hs, a_chmod, hp(H.outside, "target")), 0);
	hs.spec.readonly_mounts = true;
	hs.spec.cwd = H.ws;
	ck_assert_int_eq(harness_run(&hs, a_chmod, hp(H.outside, "target")), EROFS);
	ck_assert_int_eq(harness_run(&hs, a_chmod, hp(H.ws, "file")), 0);
	ck_assert_int_eq(harness_run(&hs, a_metadata_outside, NULL), 0);
	/* the host's mounts are untouched */
	ck_assert_int_eq(try_create(probe), 0);
	ck_assert_int_eq(unlink(probe), 0);
}
END_TEST

/* chmod to the mode it already has: exercises the permission, changes nothing. */
static int a_chmod_same(void *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno;
	return chmod(path, st.st_mode & 07777) == 0 ? 0 : errno;
}

static int a_write_devnull(void *arg)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return errno;
	if (write(fd, "x", 1) != 1) {
		close(fd);
		return errno ? errno : EIO;
	}
	close(fd);
	return 0;
}

/*
 * A WRITE device node (/dev/null) gets no writable bind mount: writing to
 * a device works on a read-only mount all the same, and the node's own
 * metadata stays read-only. Runs as uid 0 without capabilities (the owner
 * of /dev/null), so only the mount can refuse the chmod.
 */
START_TEST(test_readonly_mounts_devices)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	hs.spec.creds.set = false;
	/* control: the owner may chmod it under Landlock alone */
	ck_assert_int_eq(harness_run(&hs, a_chmod_same, "/dev/null"), 0);
	hs.spec.readonly_mounts = true;
	ck_assert_int_eq(harness_run(&hs, a_write_devnull, NULL), 0);
	ck_assert_int_eq(harness_run(&hs, a_chmod_same, "/dev/null"), EROFS);
}
END_TEST

/* A WRITE directory swapped for a symlink to "/" (or for another
 * directory) after compile: the child must not mount there. */
static char swap_dir[PATH_MAX], swap_away[PATH_MAX], swap_other[PATH_MAX];

static void swap_for_root_symlink(void)
{
	ck_assert_int_eq(rename(swap_dir, swap_away), 0);
	ck_assert_int_eq(symlink("/", swap_dir), 0);
}

static void swap_for_other_dir(void)
{
	ck_assert_int_eq(rename(swap_dir, swap_away), 0);
	ck_assert_int_eq(rename(swap_other, swap_dir), 0);
}

static void swap_undo(void)
{
	if (unlink(swap_dir) != 0)
		rename(swap_dir, swap_other);
	rename(swap_away, swap_dir);
}

START_TEST(test_readonly_mounts_swap)
{
	struct harness_spec hs;
	char *target = hp(H.outside, "target");

	snprintf(swap_dir, sizeof(swap_dir), "%s", hp(H.root, "swapped"));
	snprintf(swap_away, sizeof(swap_away), "%s", hp(H.root, "swapped.away"));
	snprintf(swap_other, sizeof(swap_other), "%s", hp(H.root, "other"));
	ck_assert_int_eq(mkdir(swap_dir, 0777), 0);
	ck_assert_int_eq(mkdir(swap_other, 0777), 0);
	harness_spec_init(&hs);
	hs.spec.creds.set = false; /* uid 0 without capabilities: only the mount refuses */
	harness_spec_add(&hs, swap_dir, SANDBOX_WRITE);
	hs.spec.readonly_mounts = true;
	/* control: unswapped, the session starts and the rest stays read-only */
	ck_assert_int_eq(harness_run(&hs, a_chmod, target), EROFS);
	/* a symlink to "/" must not make the whole namespace writable */
	ck_assert_int_eq(harness_run_after(&hs, swap_for_root_symlink, a_chmod, target),
			 100 + SANDBOX_STEP_MOUNTS);
	swap_undo();
	/* nor another directory get the writable mount */
	ck_assert_int_eq(harness_run_after(&hs, swap_for_other_dir, a_chmod, target),
			 100 + SANDBOX_STEP_MOUNTS);
	swap_undo();
	ck_assert_int_eq(harness_run(&hs, a_chmod, target), EROFS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_creds");
	TCase *tc = tcase_create("creds");

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: credential, setuid and nproc tests need root\n");
		return 77;
	}
	if (sandbox_probe()->landlock_abi < 6 || !sandbox_probe()->seccomp_filter) {
		fprintf(stderr, "SKIP: needs Landlock ABI >= 6 and seccomp\n");
		return 77;
	}
	tcase_add_unchecked_fixture(tc, harness_setup, harness_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cred_drop);
	tcase_add_test(tc, test_root_without_drop_has_no_caps);
	tcase_add_test(tc, test_setuid_no_gain);
	tcase_add_test(tc, test_nproc_bomb);
	tcase_add_test(tc, test_fsize_core);
	tcase_add_test(tc, test_env_scrubbed);
	if (sandbox_probe()->mountns) {
		tcase_add_test(tc, test_readonly_mounts);
		tcase_add_test(tc, test_readonly_mounts_devices);
		tcase_add_test(tc, test_readonly_mounts_swap);
	}
	else
		fprintf(stderr, "not run: test_readonly_mounts (no mount namespaces)\n");
	suite_add_tcase(s, tc);
	return check_run(s);
}
