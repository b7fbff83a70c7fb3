/*
 * The baseline seccomp program (sandbox/seccomp.c) is a binary search over
 * syscall numbers. Run in a small classic-BPF interpreter for every syscall
 * number and the interesting arguments, it must give exactly what the
 * filter documents: EPERM for the listed syscalls, the argument checks for
 * the others it names, ALLOW for every other number, KILL for another arch
 * or the x32 bit. (test_syscalls attacks the real kernel with it.)
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "../check-run.h"

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef ARCH
#define ALLOW SECCOMP_RET_ALLOW
#define EPERM_ (SECCOMP_RET_ERRNO | EPERM)
#define KILL SECCOMP_RET_KILL_PROCESS

static unsigned int run(const struct sock_fprog *p, unsigned int arch, int nr,
			const unsigned long long args[6])
{
	struct seccomp_data d = { .nr = nr, .arch = arch };
	unsigned int a = 0;

	memcpy(d.args, args, sizeof(d.args));
	for (unsigned int pc = 0; pc < p->len; pc++) {
		const struct sock_filter *f = &p->filter[pc];

		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			ck_assert_uint_le(f->k + 4, sizeof(d));
			memcpy(&a, (const char *)&d + f->k, 4);
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= f->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & f->k) ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return f->k;
		default:
			ck_abort_msg("unexpected BPF opcode 0x%x at %u", f->code, pc);
		}
	}
	ck_abort_msg("ran off the end of the program");
	return 0;
}

/* Plain EPERM whatever the arguments (the list in seccomp.c). */
static const int eperm_nrs[] = {
	__NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_process_madvise,
	__NR_pidfd_getfd, __NR_kcmp, __NR_keyctl, __NR_add_key, __NR_request_key, __NR_bpf,
	__NR_perf_event_open, __NR_userfaultfd, __NR_io_uring_setup, __NR_io_uring_enter,
	__NR_io_uring_register, __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
	__NR_move_mount, __NR_open_tree, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
	__NR_mount_setattr, __NR_unshare, __NR_setns, __NR_kexec_load, __NR_kexec_file_load,
	__NR_init_module, __NR_finit_module, __NR_delete_module, __NR_acct, __NR_swapon,
	__NR_swapoff, __NR_reboot, __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime,
	__NR_adjtimex, __NR_open_by_handle_at, __NR_quotactl,
#ifdef __NR_iopl
	__NR_iopl,
#endif
#ifdef __NR_ioperm
	__NR_ioperm,
#endif
};

/* Numbers with argument checks: tested one by one below. */
static const int arg_nrs[] = {
	__NR_clone, __NR_clone3, __NR_personality, __NR_ioctl, __NR_sendto, __NR_sendmsg,
	__NR_sendmmsg, __NR_listen, __NR_socket,
};

static bool in(const int *v, size_t n, int nr)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == nr)
			return true;
	return false;
}

#define N(v) (sizeof(v) / sizeof((v)[0]))

START_TEST(test_every_number)
{
	static const enum sandbox_net_mode modes[] = { SANDBOX_NET_NONE, SANDBOX_NET_PROXY,
						       SANDBOX_NET_NETNS };
	const unsigned long long z[6] = { 0 };

	for (size_t m = 0; m < N(modes); m++) {
		struct sock_fprog p;

		ck_assert_int_eq(sandbox_seccomp_build(modes[m], &p), 0);
		for (int nr = 0; nr < 1024; nr++) {
			unsigned int r = run(&p, ARCH, nr, z);

			if (in(eperm_nrs, N(eperm_nrs), nr))
				ck_assert_msg(r == EPERM_, "nr %d: 0x%x, want EPERM", nr, r);
			else if (!in(arg_nrs, N(arg_nrs), nr))
				ck_assert_msg(r == ALLOW, "nr %d: 0x%x, want ALLOW", nr, r);
			ck_assert_uint_eq(run(&p, ARCH ^ 1, nr, z), KILL);
		}
#if defined(__x86_64__)
		ck_assert_uint_eq(run(&p, ARCH, 0x40000000 | __NR_read, z), KILL);
#endif
		free(p.filter);
	}
}
END_TEST

static unsigned int run1(const struct sock_fprog *p, int nr, unsigned long long a0,
			 unsigned long long a1, unsigned long long a2, unsigned long long a3)
{
	const unsigned long long args[6] = { a0, a1, a2, a3, 0, 0 };

	return run(p, ARCH, nr, args);
}

START_TEST(test_argument_checks)
{
	struct sock_fprog none, proxy, netns;

	ck_assert_int_eq(sandbox_seccomp_build(SANDBOX_NET_NONE, &none), 0);
	ck_assert_int_eq(sandbox_seccomp_build(SANDBOX_NET_PROXY, &proxy), 0);
	ck_assert_int_eq(sandbox_seccomp_build(SANDBOX_NET_NETNS, &netns), 0);
	ck_assert_uint_eq(run1(&none, __NR_clone, SIGCHLD, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_clone, CLONE_NEWNS, 0, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_clone3, 0, 0, 0, 0), SECCOMP_RET_ERRNO | ENOSYS);
	ck_assert_uint_eq(run1(&none, __NR_personality, 0, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_personality, 0xffffffffu, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_personality, 0x0040000, 0, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_ioctl, 0, TIOCSTI, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_ioctl, 0, 0x541C, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_ioctl, 0, TIOCSETD, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_ioctl, 0, TCGETS, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_sendto, 0, 0, 0, MSG_FASTOPEN), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_sendto, 0, 0, 0, MSG_DONTWAIT), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_sendmsg, 0, 0, MSG_FASTOPEN, 0), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_sendmsg, 0, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_sendmmsg, 0, 0, 0, MSG_FASTOPEN), EPERM_);
	ck_assert_uint_eq(run1(&none, __NR_listen, 0, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&proxy, __NR_listen, 0, 0, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&netns, __NR_listen, 0, 0, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_socket, AF_UNIX, SOCK_STREAM, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&none, __NR_socket, AF_INET, SOCK_STREAM, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&proxy, __NR_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0), ALLOW);
	ck_assert_uint_eq(run1(&proxy, __NR_socket, AF_INET6, SOCK_STREAM, IPPROTO_TCP, 0), ALLOW);
	ck_assert_uint_eq(run1(&proxy, __NR_socket, AF_INET, SOCK_DGRAM, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&proxy, __NR_socket, AF_INET, SOCK_STREAM, IPPROTO_SCTP, 0), EPERM_);
	ck_assert_uint_eq(run1(&netns, __NR_socket, AF_NETLINK, SOCK_RAW, 0, 0), EPERM_);
	ck_assert_uint_eq(run1(&netns, __NR_socket, AF_INET, SOCK_RAW, 0, 0), EPERM_);
	free(none.filter);
	free(proxy.filter);
	free(netns.filter);
}
END_TEST
#endif

int main(void)
{
#ifndef ARCH
	fprintf(stderr, "SKIP: no seccomp program for this architecture\n");
	return 77;
#else
	Suite *s = suite_create("sandbox_seccomp_tree");
	TCase *tc = tcase_create("tree");

	tcase_add_test(tc, test_every_number);
	tcase_add_test(tc, test_argument_checks);
	suite_add_tcase(s, tc);
	return check_run(s);
#endif
}
