/*
 * Private to sandbox/: the compiled form handed from sandbox_compile() in the
 * parent to sandbox_enter() in the child, and the helpers that build it.
 */
#ifndef SANDBOX_INTERNAL_H
#define SANDBOX_INTERNAL_H

#include "sandbox.h"

#include <limits.h>
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define SANDBOX_MAX_GROUPS 256
#define SANDBOX_MAX_RLIMITS 8
#define SANDBOX_MAX_RW_MOUNTS 64
#define SANDBOX_MAX_MASKS 4
#define SANDBOX_MAX_MASK_KEEP 16

struct sandbox_rlimit {
	int resource;
	struct rlimit lim;
};

/* What a path resolved to at compile time: the child checks it meets the
 * same inode before it mounts anything there (mounts.c). */
struct sandbox_inode {
	dev_t dev;
	ino_t ino;
};

struct sandbox_compiled {
	int ruleset_fd;              /* -1 when Landlock is not enforced */
	int verify_fd;               /* O_PATH dir that Landlock must deny, or -1 */
	int netns_fd;                /* dup of spec->netns_fd, or -1 */
	struct sock_fprog prog;      /* prog.filter owned; len 0 = no seccomp */
	char **envp;                 /* owned, NULL-terminated */
	struct sandbox_rlimit rlimits[SANDBOX_MAX_RLIMITS];
	size_t nrlimits;
	bool creds_set;
	uid_t uid;
	gid_t gid;
	gid_t groups[SANDBOX_MAX_GROUPS];
	size_t ngroups;
	bool mounts_ro;              /* private mount ns, read-only but rw_paths */
	char **rw_paths;             /* owned, resolved WRITE paths */
	bool rw_is_mount[SANDBOX_MAX_RW_MOUNTS]; /* bound back into a mask: no self-bind */
	struct sandbox_inode rw_inode[SANDBOX_MAX_RW_MOUNTS];
	size_t nrw;
	/* Directories hidden behind an empty tmpfs (sockets live there), and the
	 * allowed paths inside each that are bound back: NULL-terminated, owned. */
	char *masks[SANDBOX_MAX_MASKS + 1];
	char **mask_keep[SANDBOX_MAX_MASKS];
	bool mask_keep_dir[SANDBOX_MAX_MASKS][SANDBOX_MAX_MASK_KEEP];
	struct sandbox_inode mask_keep_inode[SANDBOX_MAX_MASKS][SANDBOX_MAX_MASK_KEEP];
	char *cwd;                   /* owned, or NULL */
	struct sandbox_report report;
};

struct sandbox_features;

/* sandbox_compile() against given features instead of the probed ones
 * (tests use it to play an older kernel). */
int sandbox_compile_with(const struct sandbox_spec *spec, const struct sandbox_features *f,
			 struct sandbox_compiled **out, char *errbuf, size_t errlen);

/* Formats "what: strerror(-err)" into errbuf; returns err (negative). */
int sandbox_err(char *errbuf, size_t errlen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Appends a report line (silently ignored beyond SANDBOX_REPORT_MAX). */
void sandbox_report_add(struct sandbox_report *r, const char *feature, bool enforced,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* paths.c: one spec path rule, resolved. */
struct sandbox_path_res {
	char *path;                  /* owned; resolved, absolute; "" = optional and
					missing; NULL only after a failed resolve */
	int fd;                      /* O_PATH fd of path, or -1 (missing, a deny, or
					beyond the fds kept open: reopen by path) */
	bool exists;
	mode_t mode;                 /* st_mode, when exists */
	dev_t dev;                   /* st_dev and st_ino, when exists: the mount */
	ino_t ino;                   /*   code checks it meets the same inode */
};

struct sandbox_paths {
	size_t n;                    /* = spec->npaths */
	struct sandbox_path_res *r;  /* owned; r[i] for spec->paths[i] */
};

/* Resolves every spec->paths[i] once (symlinks followed, in the caller's fs
 * identity). Fails like the rules would: -ENOENT for a missing non-optional
 * path, -EINVAL for one resolving into /proc/self. Release *p in any case. */
int sandbox_paths_resolve(const struct sandbox_spec *spec, struct sandbox_paths *p,
			  struct sandbox_report *report, char *errbuf, size_t errlen);
void sandbox_paths_release(struct sandbox_paths *p);

/*
 * fsrules.c: creates the ruleset (handled rights = all the ABI has, masked by
 * `abi`), adds the path rules with DENY carve-outs and the TCP port rules.
 * *ruleset_fd owned by the caller on success; *verify_fd (may be -1) too.
 */
int sandbox_fs_compile(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
		       int abi, int *ruleset_fd, int *verify_fd, struct sandbox_report *report,
		       char *errbuf, size_t errlen);

/* mounts.c: plans the read-only mount namespace (spec->readonly_mounts)
 * from the resolved paths, checking the kernel and privilege for it. */
int sandbox_mounts_compile(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
			   struct sandbox_compiled *c, char *errbuf, size_t errlen);
/* mounts.c, in the child: async-signal-safe. */
int sandbox_mounts_enter(const struct sandbox_compiled *c);
bool sandbox_mounts_verify(const struct sandbox_compiled *c);

/* seccomp.c: builds the baseline filter for the host arch. prog->filter is
 * malloc'd and owned by the caller. */
int sandbox_seccomp_build(enum sandbox_net_mode net, struct sock_fprog *prog);

#endif
