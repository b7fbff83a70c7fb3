/*
 * The baseline seccomp-bpf program (DESIGN.md "Baseline enforcement"),
 * written by hand with <linux/filter.h> macros.
 *
 *   1. arch check: anything but the build arch (x86_64 or aarch64) kills the
 *      process, and so does the x32 syscall bit on x86_64.
 *   2. EPERM for debugging/introspection of other processes, keyrings, bpf,
 *      perf, userfaultfd, io_uring, mounts and namespaces, modules, kexec,
 *      clock setting, swap, reboot, acct.
 *   3. argument checks: clone with namespace flags (EPERM), clone3 (ENOSYS,
 *      so libc falls back to clone whose flags are visible here),
 *      personality other than PER_LINUX / query, ioctl TIOCSTI, TIOCLINUX,
 *      TIOCSETD, and socket(): AF_UNIX always; AF_INET/AF_INET6 only
 *      SOCK_STREAM with protocol 0 or IPPROTO_TCP and only when the network
 *      mode allows TCP; every other family/type (UDP, raw, netlink, packet,
 *      SCTP, MPTCP, vsock...) EPERM.
 *   4. TCP Fast Open: sendto/sendmsg/sendmmsg with MSG_FASTOPEN connect
 *      without passing Landlock's connect hook (verified on 6.18), so the
 *      flag is refused (EPERM) in every mode. In PROXY mode listen() is
 *      refused too: listen() on an unbound TCP socket autobinds an ephemeral
 *      port on all addresses, which Landlock's bind rule does not see
 *      (seccomp cannot tell unix from inet listeners, so both are refused;
 *      strict NETNS mode keeps listen()).
 *   5. everything else is allowed (Landlock and DAC do the rest).
 *
 * Steps 2-5 are one binary search over the syscall numbers of 2-4
 * (emit_tree), not a list of tests.
 *
 * Arguments are compared on their low 32 bits: the kernel truncates socket
 * domain/type/protocol, ioctl cmd and personality to 32 bits itself, and all
 * namespace clone flags live in the low half.
 */
#include "internal.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

#define RET_ERRNO(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define RET_ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define RET_KILL BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(i))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))

/* Plain EPERM, whatever the arguments. */
static const int seccomp_eperm[] = {
	__NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev,
#ifdef __NR_process_madvise
	__NR_process_madvise,
#endif
#ifdef __NR_pidfd_getfd
	__NR_pidfd_getfd,
#endif
	__NR_kcmp,
	__NR_keyctl, __NR_add_key, __NR_request_key,
	__NR_bpf, __NR_perf_event_open, __NR_userfaultfd,
	__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
	__NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
	__NR_move_mount, __NR_open_tree, __NR_fsopen, __NR_fsconfig, __NR_fsmount,
	__NR_fspick, __NR_mount_setattr,
	__NR_unshare, __NR_setns,
	__NR_kexec_load,
#ifdef __NR_kexec_file_load
	__NR_kexec_file_load,
#endif
	__NR_init_module, __NR_finit_module, __NR_delete_module,
	__NR_acct, __NR_swapon, __NR_swapoff, __NR_reboot,
	__NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime, __NR_adjtimex,
	__NR_open_by_handle_at, __NR_quotactl,
#ifdef __NR_iopl
	__NR_iopl,
#endif
#ifdef __NR_ioperm
	__NR_ioperm,
#endif
};

#define SECCOMP_NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
			  CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

#define SECCOMP_MAX_INSNS 512

struct bpf_buf {
	struct sock_filter *f;
	size_t n;
	bool overflow;
};

static void emit(struct bpf_buf *b, const struct sock_filter *insns, size_t n)
{
	if (b->n + n > SECCOMP_MAX_INSNS) {
		b->overflow = true;
		return;
	}
	memcpy(b->f + b->n, insns, n * sizeof(*insns));
	b->n += n;
}

/* "if nr == NR then run block" where block ends in returns. */
static void emit_block(struct bpf_buf *b, int nr, const struct sock_filter *blk, size_t n)
{
	struct sock_filter head[] = { JEQ((unsigned)nr, 0, (unsigned char)n) };

	emit(b, head, 1);
	emit(b, blk, n);
}

/* One syscall the filter does not simply allow, and what it does instead
 * (a block that always returns). */
struct sc_rule {
	int nr;
	const struct sock_filter *blk;
	size_t n;
};

static int sc_rule_cmp(const void *a, const void *b)
{
	const struct sc_rule *x = a, *y = b;

	return (x->nr > y->nr) - (x->nr < y->nr);
}

/*
 * The rules (sorted by nr, A = nr) as a binary search: a JGE at each inner
 * node, and at the leaves a few "nr == X: block" tests falling through to
 * ALLOW. A syscall takes about log2(rules) + 4 comparisons instead of one
 * per rule, and so does the kernel when it installs the filter: it runs
 * the program once per syscall number to find those always allowed
 * (seccomp_cache_prepare), which made a linear list of ~60 tests one of
 * the larger costs of a session start.
 */
#define SC_LEAF 4

static void emit_tree(struct bpf_buf *b, const struct sc_rule *r, size_t n)
{
	const struct sock_filter allow[] = { RET_ALLOW };
	const struct sock_filter node[] = { BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0, 0, 0) };
	size_t mid = n / 2, at, left;

	if (n <= SC_LEAF) {
		for (size_t i = 0; i < n; i++)
			emit_block(b, r[i].nr, r[i].blk, r[i].n);
		emit(b, allow, 1);
		return;
	}
	at = b->n;
	emit(b, node, 1);
	emit_tree(b, r, mid);          /* nr < r[mid].nr falls through to here */
	if (b->overflow)
		return;
	left = b->n - at - 1;
	if (left > 255) {              /* jump offsets are 8 bits */
		b->overflow = true;
		return;
	}
	b->f[at].k = (unsigned int)r[mid].nr;
	b->f[at].jt = (unsigned char)left;
	emit_tree(b, r + mid, n - mid);
}

#define RULE(nr, blk) ((struct sc_rule){ (nr), (blk), sizeof(blk) / sizeof((blk)[0]) })

int sandbox_seccomp_build(enum sandbox_net_mode net, struct sock_fprog *prog)
{
#ifndef SANDBOX_AUDIT_ARCH
	(void)net;
	prog->filter = NULL;
	prog->len = 0;
	return -EOPNOTSUPP;
#else
	struct bpf_buf b;
	const struct sock_filter head[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		JEQ(SANDBOX_AUDIT_ARCH, 1, 0),
		RET_KILL,
		LD_NR,
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1),
		RET_KILL,
#endif
	};
	const struct sock_filter eperm[] = { RET_ERRNO(EPERM) };
	const struct sock_filter clone_blk[] = {
		LD_ARG(0),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, SECCOMP_NS_FLAGS, 0, 1),
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	const struct sock_filter clone3_blk[] = { RET_ERRNO(ENOSYS) };
	const struct sock_filter personality_blk[] = {
		LD_ARG(0),
		JEQ(0, 2, 0),            /* PER_LINUX */
		JEQ(0xffffffffu, 1, 0),  /* query */
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	const struct sock_filter ioctl_blk[] = {
		LD_ARG(1),
		JEQ(TIOCSTI, 2, 0),
		JEQ(TIOCLINUX, 1, 0),
		JEQ(TIOCSETD, 0, 1),
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	const struct sock_filter sendto_blk[] = {
		LD_ARG(3),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, 0, 1),
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	const struct sock_filter sendmsg_blk[] = {
		LD_ARG(2),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MSG_FASTOPEN, 0, 1),
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	/* socket(): jump offsets count from the next instruction. */
	const struct sock_filter socket_inet[] = {
		/* 0 */ LD_ARG(0),
		/* 1 */ JEQ(AF_UNIX, 9, 0),             /* -> 11 allow */
		/* 2 */ JEQ(AF_INET, 1, 0),             /* -> 4 */
		/* 3 */ JEQ(AF_INET6, 0, 6),            /* -> 4 : -> 10 deny */
		/* 4 */ LD_ARG(1),
		/* 5 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf), /* strip NONBLOCK/CLOEXEC */
		/* 6 */ JEQ(SOCK_STREAM, 0, 3),         /* -> 7 : -> 10 deny */
		/* 7 */ LD_ARG(2),
		/* 8 */ JEQ(0, 2, 0),                   /* -> 11 allow */
		/* 9 */ JEQ(IPPROTO_TCP, 1, 0),         /* -> 11 allow : -> 10 deny */
		/* 10 */ RET_ERRNO(EPERM),
		/* 11 */ RET_ALLOW,
	};
	const struct sock_filter socket_unix[] = {
		LD_ARG(0),
		JEQ(AF_UNIX, 1, 0),
		RET_ERRNO(EPERM),
		RET_ALLOW,
	};
	const size_t neperm = sizeof(seccomp_eperm) / sizeof(seccomp_eperm[0]);
	struct sc_rule rules[sizeof(seccomp_eperm) / sizeof(seccomp_eperm[0]) + 16];
	size_t nr = 0;

	for (size_t i = 0; i < neperm; i++)
		rules[nr++] = RULE(seccomp_eperm[i], eperm);
	rules[nr++] = RULE(__NR_clone, clone_blk);
	rules[nr++] = RULE(__NR_clone3, clone3_blk);
	rules[nr++] = RULE(__NR_personality, personality_blk);
	rules[nr++] = RULE(__NR_ioctl, ioctl_blk);
	rules[nr++] = RULE(__NR_sendto, sendto_blk);
	rules[nr++] = RULE(__NR_sendmsg, sendmsg_blk);
	rules[nr++] = RULE(__NR_sendmmsg, sendto_blk);  /* flags are arg 3 too */
	if (net == SANDBOX_NET_PROXY)
		rules[nr++] = RULE(__NR_listen, eperm);
	if (net != SANDBOX_NET_NONE)
		rules[nr++] = RULE(__NR_socket, socket_inet);
	else
		rules[nr++] = RULE(__NR_socket, socket_unix);
	qsort(rules, nr, sizeof(rules[0]), sc_rule_cmp);
	for (size_t i = 1; i < nr; i++)
		if (rules[i].nr == rules[i - 1].nr)
			return -EINVAL; /* one number twice: the tree would hide one */

	b.n = 0;
	b.overflow = false;
	b.f = calloc(SECCOMP_MAX_INSNS, sizeof(*b.f));
	if (!b.f)
		return -ENOMEM;
	emit(&b, head, sizeof(head) / sizeof(head[0]));
	/* Every block returns, so A holds nr wherever the tree compares it. */
	emit_tree(&b, rules, nr);
	if (b.overflow) {
		free(b.f);
		return -E2BIG;
	}
	prog->filter = b.f;
	prog->len = (unsigned short)b.n;
	return 0;
#endif
}
