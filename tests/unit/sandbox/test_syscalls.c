/*
 * The seccomp baseline, attacked for real. Every attack runs three times:
 *   control        unrestricted child (root keeps its capabilities): the
 *                  call is not refused with the sandbox's errno;
 *   seccomp only   the compiled filter alone, capabilities kept: refused,
 *                  so the filter (not DAC or capabilities) is what denies;
 *   full sandbox   sandbox_enter(): refused.
 * Plus: the arch check kills x32 and int 0x80 callers, and ordinary
 * fork/exec still work inside.
 */
#include "harness.h"
#include "probe.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../check-run.h"

static int pty_slave = -1;
static int pty_master = -1;

static void pty_setup(void)
{
	harness_setup();
	pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (pty_master < 0 || grantpt(pty_master) != 0 || unlockpt(pty_master) != 0)
		ck_abort_msg("openpt: %s", strerror(errno));
	pty_slave = open(ptsname(pty_master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (pty_slave < 0)
		ck_abort_msg("open slave: %s", strerror(errno));
}

static void pty_teardown(void)
{
	close(pty_slave);
	close(pty_master);
	harness_teardown();
}

#define RET(x) ((x) >= 0 ? 0 : errno)

static pid_t spawn_sleeper(void)
{
	pid_t p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return p;
}

static int reap(pid_t p, int r)
{
	kill(p, SIGKILL);
	waitpid(p, NULL, 0);
	return r;
}

static int a_traceme(void *a) { (void)a; return RET(ptrace(PTRACE_TRACEME, 0, 0, 0)); }

static int a_attach(void *a)
{
	pid_t p = spawn_sleeper();

	(void)a;
	if (p < 0)
		return 200;
	return reap(p, RET(ptrace(PTRACE_ATTACH, p, 0, 0)));
}

static char vm_buf[16] = "in-memory secret";

static int a_vm_readv(void *a)
{
	char out[16];
	struct iovec l = { out, sizeof(out) }, r = { vm_buf, sizeof(vm_buf) };
	pid_t p = spawn_sleeper();

	(void)a;
	if (p < 0)
		return 200;
	return reap(p, RET(process_vm_readv(p, &l, 1, &r, 1, 0)));
}

static int a_vm_writev(void *a)
{
	char in[16] = "x";
	struct iovec l = { in, 1 }, r = { vm_buf, 1 };
	pid_t p = spawn_sleeper();

	(void)a;
	if (p < 0)
		return 200;
	return reap(p, RET(process_vm_writev(p, &l, 1, &r, 1, 0)));
}

static int a_keyctl(void *a)
{
	(void)a;
	return RET(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1));
}

static int a_add_key(void *a)
{
	(void)a;
	return RET(syscall(SYS_add_key, "user", "nono-test", "v", 1, KEY_SPEC_PROCESS_KEYRING));
}

static int a_bpf(void *a)
{
	union bpf_attr attr;

	(void)a;
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	return RET(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
}

static int a_perf(void *a)
{
	struct perf_event_attr pe;

	(void)a;
	memset(&pe, 0, sizeof(pe));
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof(pe);
	pe.config = PERF_COUNT_SW_TASK_CLOCK;
	pe.disabled = 1;
	pe.exclude_kernel = 1;
	return RET(syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
}

static int a_userfaultfd(void *a) { (void)a; return RET(syscall(SYS_userfaultfd, O_CLOEXEC)); }

static int a_io_uring(void *a)
{
	struct io_uring_params p;

	(void)a;
	memset(&p, 0, sizeof(p));
	return RET(syscall(SYS_io_uring_setup, 4, &p));
}

static int a_unshare_ns(void *a) { (void)a; return RET(unshare(CLONE_NEWNS)); }
static int a_unshare_user(void *a) { (void)a; return RET(unshare(CLONE_NEWUSER)); }
static int a_unshare_net(void *a) { (void)a; return RET(unshare(CLONE_NEWNET)); }

/* Allowed: ENOENT (no such mountpoint); filtered: EPERM. Never touches a
 * real mount even if the filter were broken. */
static int a_mount(void *a)
{
	(void)a;
	return RET(mount("none", "/nonexistent-nono-test", "tmpfs", 0, NULL));
}

static int a_chroot(void *a) { (void)a; return RET(chroot("/")); }

static int a_clone_newnet(void *a)
{
	long r;

	(void)a;
	r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return RET(r);
}

static int a_clone3(void *a)
{
	struct clone_args ca;
	long r;

	(void)a;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0)
		_exit(0);
	if (r > 0)
		waitpid((pid_t)r, NULL, 0);
	return RET(r);
}

static int a_personality(void *a) { (void)a; return RET(personality(PER_LINUX32)); }

static int a_tiocsti(void *a)
{
	char c = 'x';

	(void)a;
	return RET(ioctl(pty_slave, TIOCSTI, &c));
}

/* The kernel truncates cmd to 32 bits; so must the filter. */
static int a_tiocsti_hibits(void *a)
{
	char c = 'x';

	(void)a;
	return RET(syscall(SYS_ioctl, pty_slave, (1UL << 32) | TIOCSTI, &c));
}

static int a_tioclinux(void *a)
{
	char sub = 6;

	(void)a;
	return RET(ioctl(pty_slave, TIOCLINUX, &sub));
}

struct attack {
	const char *name;
	int (*fn)(void *);
	int denied;      /* errno inside the sandbox */
};

static const struct attack attacks[] = {
	{ "ptrace(TRACEME)", a_traceme, EPERM },
	{ "ptrace(ATTACH)", a_attach, EPERM },
	{ "process_vm_readv", a_vm_readv, EPERM },
	{ "process_vm_writev", a_vm_writev, EPERM },
	{ "keyctl", a_keyctl, EPERM },
	{ "add_key", a_add_key, EPERM },
	{ "bpf", a_bpf, EPERM },
	{ "perf_event_open", a_perf, EPERM },
	{ "userfaultfd", a_userfaultfd, EPERM },
	{ "io_uring_setup", a_io_uring, EPERM },
	{ "unshare(NEWNS)", a_unshare_ns, EPERM },
	{ "unshare(NEWUSER)", a_unshare_user, EPERM },
	{ "unshare(NEWNET)", a_unshare_net, EPERM },
	{ "mount", a_mount, EPERM },
	{ "chroot", a_chroot, EPERM },
	{ "clone(NEWNET)", a_clone_newnet, EPERM },
	{ "clone3", a_clone3, ENOSYS },
	{ "personality(LINUX32)", a_personality, EPERM },
	{ "ioctl(TIOCSTI)", a_tiocsti, EPERM },
	{ "ioctl(TIOCSTI|1<<32)", a_tiocsti_hibits, EPERM },
	{ "ioctl(TIOCLINUX)", a_tioclinux, EPERM },
};

START_TEST(test_attack)
{
	const struct attack *at = &attacks[_i];
	struct harness_spec hs;
	int control, only, full;

	harness_spec_init(&hs);
	control = harness_run_unrestricted(at->fn, NULL);
	only = harness_run_seccomp_only(&hs, at->fn, NULL);
	full = harness_run(&hs, at->fn, NULL);
	ck_assert_msg(control != at->denied, "%s: control got %d (%s)", at->name, control,
		      strerror(control));
	ck_assert_msg(only == at->denied, "%s: seccomp only got %d", at->name, only);
	ck_assert_msg(full == at->denied, "%s: sandbox got %d", at->name, full);
}
END_TEST

/* x32 ABI call (getpid with the x32 bit) and i386 int 0x80: killed. */
#if defined(__x86_64__)
static int a_x32(void *a)
{
	(void)a;
	syscall(0x40000000 | SYS_getpid);
	return 0;
}

static int a_int80(void *a)
{
	long ret;

	(void)a;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");  /* i386 getpid */
	return 0;
}

START_TEST(test_foreign_abi_killed)
{
	struct harness_spec hs;

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run(&hs, a_x32, NULL), 128 + SIGSYS);
	ck_assert_int_eq(harness_run(&hs, a_int80, NULL), 128 + SIGSYS);
}
END_TEST
#endif

static int a_ordinary(void *a)
{
	pid_t p;
	int st;

	(void)a;
	if (personality(0xffffffff) < 0 || personality(PER_LINUX) < 0)
		return 1;
	p = fork();  /* glibc: clone3 -> ENOSYS -> clone without ns flags */
	if (p < 0)
		return errno;
	if (p == 0)
		_exit(7);
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		return 2;
	return 0;
}

START_TEST(test_ordinary_calls_work)
{
	struct harness_spec hs;
	char out[64];
	char *argv[] = { "/bin/sh", "-c", "echo ok", NULL };

	harness_spec_init(&hs);
	ck_assert_int_eq(harness_run(&hs, a_ordinary, NULL), 0);
	ck_assert_int_eq(harness_exec(&hs, argv, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "ok\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sandbox_syscalls");
	TCase *tc = tcase_create("seccomp");

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: the controls need root (capabilities kept)\n");
		return 77;
	}
	if (!sandbox_probe()->seccomp_filter || sandbox_probe()->landlock_abi < 1) {
		fprintf(stderr, "SKIP: needs seccomp filters and Landlock\n");
		return 77;
	}
	tcase_add_unchecked_fixture(tc, pty_setup, pty_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_attack, 0, (int)(sizeof(attacks) / sizeof(attacks[0])));
#if defined(__x86_64__)
	tcase_add_test(tc, test_foreign_abi_killed);
#endif
	tcase_add_test(tc, test_ordinary_calls_work);
	suite_add_tcase(s, tc);
	return check_run(s);
}
