/* Fixture and fork/enter helpers for the sandbox tests; see harness.h. */
#include "harness.h"
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct harness H;

bool harness_is_root(void)
{
	return geteuid() == 0;
}

char *hp(const char *base, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", base, rel);
	return b;
}

static void mk_dir(const char *p, mode_t mode, bool give)
{
	if (mkdir(p, mode) != 0 && errno != EEXIST)
		ck_abort_msg("mkdir %s: %s", p, strerror(errno));
	chmod(p, mode);
	if (give && harness_is_root() && chown(p, HARNESS_NOBODY, HARNESS_NOBODY) != 0)
		ck_abort_msg("chown %s: %s", p, strerror(errno));
}

static void mk_file(const char *p, const char *content, bool give)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		ck_abort_msg("create %s: %s", p, strerror(errno));
	close(fd);
	if (give && harness_is_root() && chown(p, HARNESS_NOBODY, HARNESS_NOBODY) != 0)
		ck_abort_msg("chown %s: %s", p, strerror(errno));
}

void harness_setup(void)
{
	snprintf(H.root, sizeof(H.root), "/tmp/nono-sbtest-XXXXXX");
	if (!mkdtemp(H.root))
		ck_abort_msg("mkdtemp: %s", strerror(errno));
	chmod(H.root, 0755);
	snprintf(H.ws, sizeof(H.ws), "%s/ws", H.root);
	snprintf(H.home, sizeof(H.home), "%s/home", H.root);
	snprintf(H.outside, sizeof(H.outside), "%s/outside", H.root);
	snprintf(H.ro, sizeof(H.ro), "%s/ro", H.root);
	snprintf(H.secret, sizeof(H.secret), "%s/home/.ssh/id_rsa", H.root);
	/* Everything is readable/writable by nobody through DAC, so a denial
	 * can only come from the sandbox. */
	mk_dir(H.ws, 0755, true);
	mk_file(hp(H.ws, "file"), "hello\n", true);
	mk_file(hp(H.ws, "file2"), "move me\n", true);
	mk_dir(hp(H.ws, "sub"), 0755, true);
	mk_file(hp(H.ws, "sub/ok"), "ok\n", true);
	mk_dir(hp(H.ws, "secret"), 0755, true);
	mk_file(hp(H.ws, "secret/key"), "WS-SECRET\n", true);
	mk_dir(H.home, 0755, true);
	mk_file(hp(H.home, ".bashrc"), "# rc\n", true);
	mk_dir(hp(H.home, ".ssh"), 0755, true);
	mk_file(H.secret, "-----BEGIN OPENSSH PRIVATE KEY-----\n", true);
	if (symlink(H.secret, hp(H.ws, "link")) != 0)
		ck_abort_msg("symlink: %s", strerror(errno));
	mk_dir(H.outside, 0777, true);
	mk_file(hp(H.outside, "target"), "outside\n", true);
	mk_dir(H.ro, 0755, true);
	mk_file(hp(H.ro, "file"), "read only\n", true);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

void harness_teardown(void)
{
	if (H.root[0])
		nftw(H.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_spec_init(struct harness_spec *hs)
{
	memset(hs, 0, sizeof(*hs));
	hs->spec.paths = hs->rules;
	hs->spec.netns_fd = -1;
	hs->spec.net = SANDBOX_NET_NONE;
	hs->spec.ports = hs->ports;
	harness_spec_add(hs, "/usr", SANDBOX_READ);
	harness_spec_add(hs, "/etc", SANDBOX_READ);
	harness_spec_add(hs, "/dev/null", SANDBOX_WRITE);
	harness_spec_add(hs, H.ws, SANDBOX_WRITE);
	harness_spec_add(hs, H.ro, SANDBOX_READ);
	if (harness_is_root()) {
		hs->spec.creds.set = true;
		hs->spec.creds.uid = HARNESS_NOBODY;
		hs->spec.creds.gid = HARNESS_NOBODY;
		hs->groups[0] = HARNESS_NOBODY;
		hs->spec.creds.groups = hs->groups;
		hs->spec.creds.ngroups = 1;
	}
	{
		static const char *const pass[] = { "PATH" };

		hs->spec.env.pass = pass;
		hs->spec.env.npass = 1;
	}
}

void harness_spec_add(struct harness_spec *hs, const char *path, enum sandbox_access a)
{
	ck_assert_uint_lt(hs->spec.npaths, sizeof(hs->rules) / sizeof(hs->rules[0]));
	snprintf(hs->paths[hs->spec.npaths], PATH_MAX, "%s", path);
	hs->rules[hs->spec.npaths].path = hs->paths[hs->spec.npaths];
	hs->rules[hs->spec.npaths].access = a;
	hs->rules[hs->spec.npaths].flags = 0;
	hs->spec.npaths++;
}

static int harness_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			ck_abort_msg("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static struct sandbox_compiled *harness_compile(struct harness_spec *hs)
{
	struct sandbox_compiled *c = NULL;
	char err[256];
	int rc = sandbox_compile(&hs->spec, &c, err, sizeof(err));

	ck_assert_msg(rc == 0, "sandbox_compile: %d %s", rc, err);
	return c;
}

int harness_run(struct harness_spec *hs, int (*fn)(void *), void *arg)
{
	return harness_run_after(hs, NULL, fn, arg);
}

int harness_run_after(struct harness_spec *hs, void (*between)(void), int (*fn)(void *),
		      void *arg)
{
	struct sandbox_compiled *c = harness_compile(hs);
	enum sandbox_step step;
	pid_t pid;

	if (between != NULL)
		between();
	pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sandbox_enter(c, &step) != 0)
			_exit(100 + (int)step);
		_exit(fn(arg) & 0xff);
	}
	sandbox_compiled_free(c);
	return harness_wait(pid);
}

int harness_run_plain(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (harness_is_root()) {
			gid_t g = HARNESS_NOBODY;

			if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 ||
			    setresuid(HARNESS_NOBODY, HARNESS_NOBODY, HARNESS_NOBODY) != 0)
				_exit(99);
		}
		_exit(fn(arg) & 0xff);
	}
	return harness_wait(pid);
}

int harness_run_unrestricted(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	return harness_wait(pid);
}

int harness_run_seccomp_only(struct harness_spec *hs, int (*fn)(void *), void *arg)
{
	struct sandbox_compiled *c = harness_compile(hs);
	pid_t pid;

	ck_assert_uint_gt(c->prog.len, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &c->prog) != 0)
			_exit(99);
		_exit(fn(arg) & 0xff);
	}
	sandbox_compiled_free(c);
	return harness_wait(pid);
}

int harness_exec(struct harness_spec *hs, char *const argv[], char *out, size_t outlen)
{
	struct sandbox_compiled *c = harness_compile(hs);
	enum sandbox_step step;
	size_t got = 0;
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (dup2(p[1], 1) < 0)
			_exit(98);
		if (sandbox_enter(c, &step) != 0)
			_exit(100 + (int)step);
		execve(argv[0], argv, sandbox_compiled_envp(c));
		_exit(127);
	}
	close(p[1]);
	sandbox_compiled_free(c);
	for (;;) {
		ssize_t n = read(p[0], out + got, outlen - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == outlen - 1) {
			char sink[256];

			while (read(p[0], sink, sizeof(sink)) > 0)
				;
			break;
		}
	}
	out[got] = '\0';
	close(p[0]);
	return harness_wait(pid);
}

int try_read(void *path)
{
	char buf[16];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	if (read(fd, buf, sizeof(buf)) < 0) {
		int e = errno;

		close(fd);
		return e;
	}
	close(fd);
	return 0;
}

int try_create(void *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}
