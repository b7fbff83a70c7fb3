/*
 * Kernel enforcement for one worker: compile before fork, apply after fork.
 *
 *   parent:  sandbox_compile(spec) -> struct sandbox_compiled (Landlock
 *            ruleset fd with every rule added, seccomp BPF, envp, rlimits,
 *            credentials) and a report of what is and is not enforced.
 *   child:   sandbox_enter(compiled) right after fork(): only raw,
 *            async-signal-safe syscalls, no allocation, no stdio. Then the
 *            caller execve()s with sandbox_compiled_envp().
 *
 * Nothing here logs. Failures return -errno; sandbox_compile() also writes
 * a one-line reason naming what failed into errbuf, e.g.
 * "landlock_add_rule /home/u/x: No such file or directory".
 *
 * Filesystem access levels (Landlock rights, masked to what the ABI has):
 *   READ   read files, list directories, execute.
 *   WRITE  READ + write, truncate, create/remove files, dirs, symlinks,
 *          fifos and sockets, link/rename within granted trees (refer),
 *          ioctl on devices. Never device nodes (make_char/make_block).
 *   DENY   carved out of allowed parents (see sandbox/fsrules.c): every
 *          allowed ancestor of a denied path loses its own rule; each
 *          directory on the way down keeps READ_DIR only (it can be listed),
 *          and each sibling entry along the path gets the parent's access.
 *          Landlock rights are inherited downwards, so READ_DIR on those
 *          directories also lets the worker list the names inside a denied
 *          directory; it can never read, write or execute its contents.
 *          Consequence: entries created later directly in those
 *          intermediate directories are not covered by the parent's rule,
 *          and new entries cannot be created there. An allow rule inside a
 *          denied path re-grants that subtree (the most specific rule wins);
 *          a deny equal to an allow wins. A deny outside every allowed path
 *          is already denied: it is validated and otherwise a no-op.
 *
 * Landlock does not cover chmod/chown/utimes/xattr (closed by
 * readonly_mounts outside the WRITE paths) or connect() to pathname unix
 * sockets; the report says so.
 */
#ifndef SANDBOX_SANDBOX_H
#define SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct json_object;

enum sandbox_access {
	SANDBOX_READ = 1,
	SANDBOX_WRITE = 2,
	SANDBOX_DENY = 3,
};

/* A missing path is skipped (and listed in the report) instead of failing. */
#define SANDBOX_PATH_OPTIONAL 0x1u

struct sandbox_path_rule {
	const char *path;            /* absolute; symlinks are resolved */
	enum sandbox_access access;
	unsigned int flags;          /* SANDBOX_PATH_* */
};

enum sandbox_net_mode {
	SANDBOX_NET_NONE = 0,        /* no inet sockets at all */
	SANDBOX_NET_PROXY,           /* TCP connect only to ports[]; no bind */
	SANDBOX_NET_NETNS,           /* PROXY rules + enter netns_fd (loopback only) */
};

/* 0 = leave unchanged. Soft and hard limits are both set. Core is always 0. */
struct sandbox_limits {
	uint64_t as;                 /* RLIMIT_AS, bytes */
	uint64_t data;               /* RLIMIT_DATA, bytes */
	uint64_t nproc;              /* RLIMIT_NPROC (counts all of the uid's processes) */
	uint64_t nofile;             /* RLIMIT_NOFILE */
	uint64_t cpu;                /* RLIMIT_CPU, seconds */
	uint64_t fsize;              /* RLIMIT_FSIZE, bytes */
};

struct sandbox_creds {
	bool set;                    /* drop to uid/gid/groups (needs root) */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;         /* supplementary groups, may be NULL */
	size_t ngroups;
};

/*
 * Environment. pass: names copied from `from` (NULL = environ); an entry
 * ending in '*' is a prefix pattern ("LC_*", "*"). Loader and interpreter
 * start-up hooks and agent sockets (LD_*, BASH_ENV, NODE_OPTIONS,
 * SSH_AUTH_SOCK, ...: the list is in sandbox/env.c) are dropped from
 * pattern matches and only get through when named exactly. set:
 * "NAME=value" pairs, applied after pass (a later pair wins). The daemon
 * passes the client's environment as `from`, not its own.
 */
struct sandbox_env_spec {
	const char *const *pass;
	size_t npass;
	const char *const *set;
	size_t nset;
	char *const *from;
};

struct sandbox_spec {
	const struct sandbox_path_rule *paths;
	size_t npaths;
	enum sandbox_net_mode net;
	const uint16_t *ports;       /* TCP connect allowed to these (PROXY, NETNS) */
	size_t nports;
	int netns_fd;                /* NETNS mode: from sandbox_netns_create(); else -1 */
	struct sandbox_limits limits;
	struct sandbox_creds creds;
	struct sandbox_env_spec env;
	/* Strict mode: a private mount namespace where every mount is
	 * read-only and nosuid except the WRITE paths, which closes
	 * Landlock's metadata gap (chmod/chown/utimes/xattr) outside them.
	 * Needs CAP_SYS_ADMIN (a root daemon). */
	bool readonly_mounts;
	/* With readonly_mounts: hide /tmp, /run, /var/tmp behind empty tmpfs
	 * mounts, binding back only allowed paths (their unix sockets are out of
	 * reach: Landlock does not restrict connect() to pathname sockets). */
	bool hide_shared_dirs;
	const char *cwd;             /* chdir() here at the end of sandbox_enter
					(after the mounts), or NULL */
	bool best_effort;            /* missing kernel features: report, don't fail */
};

/* What is enforced and what is not, and why. Filled by sandbox_compile(). */
#define SANDBOX_REPORT_MAX 32
struct sandbox_report_item {
	const char *feature;         /* static string, e.g. "landlock.net_tcp" */
	bool enforced;
	char detail[192];
};
struct sandbox_report {
	int landlock_abi;
	bool best_effort;
	size_t n;
	struct sandbox_report_item items[SANDBOX_REPORT_MAX];
};

struct sandbox_compiled;

/*
 * Builds everything the child needs. On success *out is owned by the caller
 * (sandbox_compiled_free). spec and its strings are only borrowed for the
 * call. Returns -EOPNOTSUPP when a needed kernel feature is missing and
 * !best_effort, -EINVAL for a bad spec, -ENOENT for a missing non-optional
 * path, other -errno from the kernel.
 */
int sandbox_compile(const struct sandbox_spec *spec, struct sandbox_compiled **out,
		    char *errbuf, size_t errlen);

/*
 * A copy of spec that owns every string and array it points to (paths,
 * env pass/set/from, ports, groups, cwd), to compile later or on another
 * thread once the originals are gone. NULL on allocation failure. Free
 * with sandbox_spec_dup_free() (NULL is a no-op), never otherwise.
 */
struct sandbox_spec *sandbox_spec_dup(const struct sandbox_spec *spec);
void sandbox_spec_dup_free(struct sandbox_spec *copy);

/* Steps of sandbox_enter(), for the caller's error message. */
enum sandbox_step {
	SANDBOX_STEP_NONE = 0,
	SANDBOX_STEP_SETNS,
	SANDBOX_STEP_MOUNTS,
	SANDBOX_STEP_RLIMIT,
	SANDBOX_STEP_CREDS,
	SANDBOX_STEP_CAPS,
	SANDBOX_STEP_NO_NEW_PRIVS,
	SANDBOX_STEP_LANDLOCK,
	SANDBOX_STEP_SECCOMP,
	SANDBOX_STEP_VERIFY,
	SANDBOX_STEP_CHDIR,
};
const char *sandbox_step_name(enum sandbox_step step);

/*
 * In the forked child (or, for libnono, in-process on the calling thread
 * only, before any other thread exists): setns, read-only mounts,
 * rlimits, credentials, capabilities, no_new_privs, Landlock, seccomp,
 * then verification that each is in force. Async-signal-safe.
 * Returns 0 or -errno; *failed (may be NULL) names the step. On failure the
 * process is partially restricted and must _exit().
 */
int sandbox_enter(const struct sandbox_compiled *c, enum sandbox_step *failed);

/* NULL-terminated "NAME=value" array for execve; borrowed from c. */
char *const *sandbox_compiled_envp(const struct sandbox_compiled *c);

/* Borrowed from c. */
const struct sandbox_report *sandbox_compiled_report(const struct sandbox_compiled *c);

/*
 * The descriptors sandbox_enter() uses (ruleset, verify probe, network
 * namespace), at most SANDBOX_ENTER_FDS, into fds; returns how many. A child
 * may close every other descriptor it inherited before sandbox_enter().
 */
#define SANDBOX_ENTER_FDS 3
size_t sandbox_compiled_fds(const struct sandbox_compiled *c, int fds[SANDBOX_ENTER_FDS]);

/* New json-c object {"landlock_abi":N,"best_effort":b,"features":{name:
 * {"enforced":b,"detail":s}}}; caller owns it. NULL on allocation failure. */
struct json_object *sandbox_report_to_json(const struct sandbox_report *r);

/* Closes the fds and frees everything; NULL is a no-op. */
void sandbox_compiled_free(struct sandbox_compiled *c);

#endif
