/*
 * Landlock UAPI pieces newer than the build host's kernel headers (Debian 12
 * ships 6.1, Landlock ABI 2), plus raw syscall wrappers (glibc has none).
 * Values are from include/uapi/linux/landlock.h of Linux 6.12+; they are
 * stable UAPI. Private to sandbox/.
 */
#ifndef SANDBOX_LANDLOCK_ABI_H
#define SANDBOX_LANDLOCK_ABI_H

#include <linux/landlock.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)            /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)         /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)        /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)         /* ABI 4 */
#endif
#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)      /* ABI 4 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)  /* ABI 6 */
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)                /* ABI 6 */
#endif

/* LANDLOCK_RULE_PATH_BENEATH is 1 in every version; NET_PORT came in ABI 4. */
#define SANDBOX_LL_RULE_PATH_BENEATH 1
#define SANDBOX_LL_RULE_NET_PORT 2

/* Full-size copies of the UAPI structs, so they build against old headers. */
struct sandbox_ll_ruleset_attr {
	__u64 handled_access_fs;
	__u64 handled_access_net;  /* ABI 4 */
	__u64 scoped;              /* ABI 6 */
};

struct sandbox_ll_path_beneath_attr {
	__u64 allowed_access;
	__s32 parent_fd;
} __attribute__((packed));

struct sandbox_ll_net_port_attr {
	__u64 allowed_access;
	__u64 port;
};

/* Every filesystem right of ABI 1..3 and 5 (the full handled set). */
#define SANDBOX_LL_FS_ABI1 ((1ULL << 13) - 1)

static inline int sandbox_ll_create_ruleset(const struct sandbox_ll_ruleset_attr *attr,
					    size_t size, __u32 flags)
{
	return (int)syscall(__NR_landlock_create_ruleset, attr, size, flags);
}

static inline int sandbox_ll_add_rule(int ruleset_fd, int rule_type,
				      const void *attr, __u32 flags)
{
	return (int)syscall(__NR_landlock_add_rule, ruleset_fd, rule_type, attr, flags);
}

static inline int sandbox_ll_restrict_self(int ruleset_fd, __u32 flags)
{
	return (int)syscall(__NR_landlock_restrict_self, ruleset_fd, flags);
}

#endif
