/*
 * Landlock ruleset compilation: handled rights for the ABI, one
 * path-beneath rule per allowed path, DENY carve-outs, TCP connect ports.
 *
 * Carve-out (Landlock only allows): for an allowed path A with denied paths
 * D1..Dn beneath it, A gets no rule of its own. Instead, walking from A down
 * towards each Di, every directory on the way gets READ_DIR only (it can be
 * listed; nothing can be created, removed, renamed or read through it
 * except via the sibling rules), and every entry of such a directory that
 * is neither a Di nor on the way to one gets A's access as its own rule.
 * Landlock rights are inherited by everything beneath a rule, so the
 * READ_DIR kept by the intermediate directories also reaches a denied
 * directory: its entry names can be listed, its files cannot be opened.
 * Symlinks met during the walk get no rule (access through them is checked
 * at their target's real location). Entries created later directly in an
 * intermediate directory are therefore not covered, and cannot be created
 * by the worker either. The walk is done with openat(O_PATH|O_NOFOLLOW)
 * relative to the parent's fd, so a symlink swapped in cannot redirect it.
 */
#include "internal.h"
#include "landlock-abi.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SANDBOX_MAX_FS_RULES 8192

#define LL_READ (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | \
		 LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE (LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
		  LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
		  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
		  LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | \
		  LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE | \
		  LANDLOCK_ACCESS_FS_IOCTL_DEV)
/* Rights that apply to a non-directory (others make add_rule fail). */
#define LL_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
		 LANDLOCK_ACCESS_FS_IOCTL_DEV)

struct fs_ctx {
	int ruleset_fd;
	__u64 handled;
	size_t nrules;
	size_t nredundant;  /* allowed paths covered by another rule: not added */
	char *errbuf;
	size_t errlen;
};

static __u64 fs_handled_for_abi(int abi)
{
	__u64 h = SANDBOX_LL_FS_ABI1;

	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/* Adds a path-beneath rule for fd (an O_PATH fd); path only for messages. */
/*
 * The file type of name under dirfd ("" for dirfd itself), from the
 * attributes the kernel holds (AT_STATX_DONT_SYNC): a carve-out walk meets
 * every sibling of a denied path, and one may be another user's FUSE mount
 * whose server never answers, where a plain stat waits for good (and holds
 * a spawner thread). A file's type never changes, so cached is exact.
 */
static int fs_type(int dirfd, const char *name, mode_t *type)
{
	struct statx sx;
	int fl = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC |
		 (name[0] == '\0' ? AT_EMPTY_PATH : 0);

	if (statx(dirfd, name, fl, STATX_TYPE, &sx) != 0)
		return -errno;
	if (!(sx.stx_mask & STATX_TYPE))
		return -EIO;
	*type = sx.stx_mode & S_IFMT;
	return 0;
}

static int fs_add(struct fs_ctx *x, int fd, const char *path, __u64 access)
{
	struct sandbox_ll_path_beneath_attr pb;
	mode_t type;
	int rc;

	if ((rc = fs_type(fd, "", &type)) < 0)
		return sandbox_err(x->errbuf, x->errlen, rc, "stat %s", path);
	if (type != S_IFDIR)
		access &= LL_FILE;
	access &= x->handled;
	if (access == 0)
		return 0;
	if (++x->nrules > SANDBOX_MAX_FS_RULES)
		return sandbox_err(x->errbuf, x->errlen, -E2BIG,
				   "landlock: more than %d rules (deny carve-out under %s)",
				   SANDBOX_MAX_FS_RULES, path);
	pb.allowed_access = access;
	pb.parent_fd = fd;
	if (sandbox_ll_add_rule(x->ruleset_fd, SANDBOX_LL_RULE_PATH_BENEATH, &pb, 0) != 0)
		return sandbox_err(x->errbuf, x->errlen, -errno, "landlock_add_rule %s", path);
	return 0;
}

/* Is p equal to or beneath dir (both resolved, absolute)? */
static bool path_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static bool path_strictly_within(const char *p, const char *dir)
{
	return path_within(p, dir) && strcmp(p, dir) != 0;
}

static int fs_split(struct fs_ctx *x, int dirfd, const char *dirpath, __u64 access,
		    const char *const *denies, size_t nd);

/* One directory entry during a carve-out walk. */
static int fs_split_entry(struct fs_ctx *x, int dirfd, const char *child, const char *name,
			  __u64 access, const char *const *denies, size_t nd)
{
	const char **sub;
	size_t nsub = 0;
	mode_t type;
	int fd, rc;

	for (size_t i = 0; i < nd; i++)
		if (strcmp(denies[i], child) == 0)
			return 0;  /* the denied entry itself: no rule */
	if ((rc = fs_type(dirfd, name, &type)) < 0)
		return rc == -ENOENT ? 0 : sandbox_err(x->errbuf, x->errlen, rc, "stat %s", child);
	if (type == S_IFLNK)
		return 0;
	sub = calloc(nd, sizeof(*sub));
	if (!sub)
		return sandbox_err(x->errbuf, x->errlen, -ENOMEM, "carve-out %s", child);
	for (size_t i = 0; i < nd; i++)
		if (path_strictly_within(denies[i], child))
			sub[nsub++] = denies[i];
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? 0 : sandbox_err(x->errbuf, x->errlen, -errno, "open %s", child);
	} else if (nsub > 0 && type == S_IFDIR) {
		rc = fs_split(x, fd, child, access, sub, nsub);
		close(fd);
	} else {
		rc = fs_add(x, fd, child, access);
		close(fd);
	}
	free(sub);
	return rc;
}

/* dirfd: O_PATH fd of dirpath, which contains at least one of denies. */
static int fs_split(struct fs_ctx *x, int dirfd, const char *dirpath, __u64 access,
		    const char *const *denies, size_t nd)
{
	char child[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rfd, rc;

	rc = fs_add(x, dirfd, dirpath, LANDLOCK_ACCESS_FS_READ_DIR);
	if (rc < 0)
		return rc;
	rfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return sandbox_err(x->errbuf, x->errlen, -errno, "opendir %s", dirpath);
	d = fdopendir(rfd);
	if (!d) {
		rc = -errno;
		close(rfd);
		return sandbox_err(x->errbuf, x->errlen, rc, "opendir %s", dirpath);
	}
	errno = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(child, sizeof(child), "%s/%s", strcmp(dirpath, "/") == 0 ? "" : dirpath,
			     de->d_name) >= (int)sizeof(child)) {
			rc = sandbox_err(x->errbuf, x->errlen, -ENAMETOOLONG, "carve-out in %s",
					 dirpath);
			break;
		}
		rc = fs_split_entry(x, dirfd, child, de->d_name, access, denies, nd);
		errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = sandbox_err(x->errbuf, x->errlen, -errno, "readdir %s", dirpath);
	closedir(d);
	return rc;
}

/* One allowed path: a plain rule, or a carve-out walk when denies lie beneath. */

/* Reopen a resolved path by name: no symlink on the way, the same inode. */
static int fs_reopen(const struct sandbox_path_res *pr)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	struct stat st;
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, pr->path, &how, sizeof(how));

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || st.st_dev != pr->dev || st.st_ino != pr->ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int fs_allow(struct fs_ctx *x, const struct sandbox_path_res *pr, __u64 access,
		    const struct sandbox_paths *paths, const struct sandbox_spec *spec,
		    struct sandbox_report *report)
{
	const char *path = pr->path;
	const char **denies;
	size_t nd = 0;
	int fd, rc;

	denies = calloc(spec->npaths, sizeof(*denies));
	if (!denies)
		return sandbox_err(x->errbuf, x->errlen, -ENOMEM, "landlock");
	for (size_t j = 0; j < spec->npaths; j++) {
		const char *d = paths->r[j].path;

		if (spec->paths[j].access != SANDBOX_DENY || !d[0])
			continue;
		if (strcmp(d, path) == 0) {
			sandbox_report_add(report, "landlock.deny", true,
					   "%s is both allowed and denied: denied", path);
			free(denies);
			return 0;
		}
		if (path_strictly_within(d, path))
			denies[nd++] = d;
	}
	/* The inode resolved in paths.c; reopened only past the fds it keeps,
	 * and then only if it is still that inode (no symlink swapped in). */
	fd = pr->fd >= 0 ? pr->fd : fs_reopen(pr);
	if (fd < 0)
		rc = sandbox_err(x->errbuf, x->errlen, fd, "open %s", path);
	else if (nd == 0)
		rc = fs_add(x, fd, path, access);
	else
		rc = fs_split(x, fd, path, access, denies, nd);
	if (fd >= 0 && fd != pr->fd)
		close(fd);
	free(denies);
	return rc;
}

/*
 * Does rule j make rule i redundant? Landlock grants the union of the
 * rules met walking from a file up to the root, so a rule beneath (or on)
 * another whose rights include its own adds nothing on that walk: i is
 * dropped when j is an allowed path, i's resolved path lies beneath or on
 * j's, j's rights include i's (WRITE includes READ), and j really gets a
 * plain rule of its own: no deny equal to or beneath j (a carve-out gives j
 * no rule, and an allow inside a denied path must keep its re-grant).
 * Dropping a rule can only take access away, never add any; the mount
 * plan keeps every such pair on one walk (a WRITE path is bound onto
 * itself; in a hidden /tmp, /run or /var/tmp a kept path nested in another
 * comes along with the outer one's bind, and a directory with an allowed
 * ancestor outside it is not hidden at all).
 * What is lost: another name of i's inode (a bind mount or hard link
 * elsewhere) that no rule covers is no longer reachable. Equal paths with
 * equal rights keep the first.
 */
static bool fs_rule_covers(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
			   size_t j, size_t i)
{
	const char *pj = paths->r[j].path, *pi = paths->r[i].path;
	enum sandbox_access aj = spec->paths[j].access, ai = spec->paths[i].access;

	if (j == i || aj == SANDBOX_DENY || !pj[0] || !path_within(pi, pj))
		return false;
	if (!(aj == ai || aj == SANDBOX_WRITE))
		return false;
	if (strcmp(pi, pj) == 0 && aj == ai && j > i)
		return false;   /* the same rule twice: keep the first */
	for (size_t d = 0; d < spec->npaths; d++)
		if (spec->paths[d].access == SANDBOX_DENY && paths->r[d].path[0] &&
		    path_within(paths->r[d].path, pj))
			return false;
	return true;
}

static bool fs_rule_redundant(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
			      size_t i)
{
	for (size_t j = 0; j < spec->npaths; j++)
		if (fs_rule_covers(spec, paths, j, i))
			return true;
	return false;
}

static int fs_paths(struct fs_ctx *x, const struct sandbox_spec *spec,
		    const struct sandbox_paths *paths, struct sandbox_report *report)
{
	for (size_t i = 0; i < spec->npaths; i++) {
		int rc;

		if (spec->paths[i].access == SANDBOX_DENY || !paths->r[i].path[0])
			continue;
		if (fs_rule_redundant(spec, paths, i)) {
			x->nredundant++;
			continue;
		}
		rc = fs_allow(x, &paths->r[i],
			      spec->paths[i].access == SANDBOX_WRITE ? LL_WRITE : LL_READ,
			      paths, spec, report);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int fs_ports(struct fs_ctx *x, const struct sandbox_spec *spec)
{
	if (spec->net == SANDBOX_NET_NONE)
		return 0;
	for (size_t i = 0; i < spec->nports; i++) {
		struct sandbox_ll_net_port_attr np = {
			.allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP,
			.port = spec->ports[i],
		};

		if (spec->ports[i] == 0)
			return sandbox_err(x->errbuf, x->errlen, -EINVAL, "network: port 0");
		if (sandbox_ll_add_rule(x->ruleset_fd, SANDBOX_LL_RULE_NET_PORT, &np, 0) != 0)
			return sandbox_err(x->errbuf, x->errlen, -errno,
					   "landlock_add_rule tcp port %u", spec->ports[i]);
	}
	return 0;
}

/* A directory no rule covers, opened O_PATH: the child checks it is denied. */
static int fs_verify_fd(const struct sandbox_spec *spec, const struct sandbox_paths *paths)
{
	static const char *const candidates[] = {
		"/", "/proc", "/sys", "/dev", "/boot", "/root", "/var", "/etc", "/usr", "/home",
	};

	for (size_t c = 0; c < sizeof(candidates) / sizeof(candidates[0]); c++) {
		bool covered = false;

		for (size_t i = 0; i < spec->npaths && !covered; i++)
			covered = spec->paths[i].access != SANDBOX_DENY && paths->r[i].path[0] &&
				  path_within(candidates[c], paths->r[i].path);
		if (!covered)
			return open(candidates[c], O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return -1;
}

int sandbox_fs_compile(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
		       int abi, int *ruleset_fd, int *verify_fd, struct sandbox_report *report,
		       char *errbuf, size_t errlen)
{
	struct sandbox_ll_ruleset_attr attr = { 0 };
	struct fs_ctx x = { .ruleset_fd = -1, .errbuf = errbuf, .errlen = errlen };
	size_t attr_size = 8;
	int rc;

	*ruleset_fd = -1;
	*verify_fd = -1;
	x.handled = fs_handled_for_abi(abi);
	attr.handled_access_fs = x.handled;
	if (abi >= 4) {
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
					  LANDLOCK_ACCESS_NET_CONNECT_TCP;
		attr_size = 16;
	}
	if (abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		attr_size = 24;
	}
	x.ruleset_fd = sandbox_ll_create_ruleset(&attr, attr_size, 0);
	if (x.ruleset_fd < 0) {
		rc = sandbox_err(errbuf, errlen, -errno, "landlock_create_ruleset (ABI %d)", abi);
		goto out;
	}
	rc = fs_paths(&x, spec, paths, report);
	if (rc == 0 && abi >= 4)
		rc = fs_ports(&x, spec);
	if (rc < 0)
		goto out;
	*verify_fd = fs_verify_fd(spec, paths);
	sandbox_report_add(report, "landlock.fs", true,
			   "%zu path rules (%zu more covered by a parent rule), ABI %d", x.nrules,
			   x.nredundant, abi);
	*ruleset_fd = x.ruleset_fd;
	x.ruleset_fd = -1;
out:
	if (x.ruleset_fd >= 0)
		close(x.ruleset_fd);
	return rc;
}
