/*
 * Strict mode's read-only view of the filesystem: in a private mount
 * namespace, every mount becomes read-only and nosuid (mount_setattr with
 * AT_RECURSIVE on "/"), except the WRITE paths, which are first bind-mounted
 * onto themselves and then made writable again. Landlock has no right for
 * chmod/chown/utimes/xattr; a read-only mount refuses them (EROFS).
 * Not covered: metadata of entries inside a WRITE path (including denied
 * ones carved out of it), which stay on a writable mount.
 *
 * The same namespace hides /tmp, /run and /var/tmp behind empty tmpfs
 * mounts, binding back only the paths the rules allow inside them. Landlock
 * does not restrict connect() to pathname unix sockets, and those
 * directories hold the dangerous ones: tmux and screen servers, ssh and gpg
 * agents, X11, D-Bus, docker.sock, nonod's own socket.
 */
#include "internal.h"
#include "env.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef ST_RDONLY
#define ST_RDONLY 1
#endif

static const char *const mask_dirs[] = { "/tmp", "/run", "/var/tmp" };

static bool path_under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* A policy naming one path twice ($TMPDIR and the session's own rule) gets
 * one mount for it, not two stacked. */
static bool list_has(char *const *list, size_t n, const char *p)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], p) == 0)
			return true;
	return false;
}

/*
 * A kept path inside another kept directory comes along with it: binding it
 * again would resolve its mount point through the user's directory, as root.
 */
static size_t mounts_drop_nested(char **keep, size_t n, bool *is_dir, struct sandbox_inode *inode)
{
	bool drop[SANDBOX_MAX_MASK_KEEP] = { false };
	size_t out = 0;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n && !drop[i]; j++)
			drop[i] = j != i && is_dir[j] && strcmp(keep[i], keep[j]) != 0 &&
				  path_under(keep[i], keep[j]);
	for (size_t i = 0; i < n; i++) {
		if (drop[i]) {
			free(keep[i]);
			continue;
		}
		keep[out] = keep[i];
		is_dir[out] = is_dir[i];
		inode[out] = inode[i];
		out++;
	}
	for (size_t i = out; i < n; i++)
		keep[i] = NULL;
	return out;
}

/*
 * Which of mask_dirs to hide, and which allowed paths to bind back in each.
 * A directory that a rule allows whole (itself or an ancestor) is not
 * hidden; one holding more allowed paths than we bind back is not either,
 * and the report says so.
 */
static int mounts_compile_masks(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
				struct sandbox_compiled *c, char *errbuf, size_t errlen)
{
	size_t nmask = 0, hidden = 0;
	char dir[PATH_MAX];

	for (size_t m = 0; m < sizeof(mask_dirs) / sizeof(mask_dirs[0]); m++) {
		char **keep;
		size_t nkeep = 0;
		bool whole = false, toomany = false;

		if (realpath(mask_dirs[m], dir) == NULL || strcmp(dir, "/") == 0)
			continue;
		for (size_t i = 0; i < nmask; i++)
			if (strcmp(c->masks[i], dir) == 0)
				whole = true; /* /var/run and friends: already there */
		keep = calloc(SANDBOX_MAX_MASK_KEEP + 1, sizeof(*keep));
		if (keep == NULL)
			return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
		for (size_t i = 0; i < spec->npaths && !whole; i++) {
			const struct sandbox_path_res *r = &paths->r[i];

			if (spec->paths[i].access == SANDBOX_DENY || !r->exists)
				continue;
			if (path_under(dir, r->path)) {
				whole = true;
			} else if (path_under(r->path, dir)) {
				if (list_has(keep, nkeep, r->path))
					continue;
				if (nkeep == SANDBOX_MAX_MASK_KEEP) {
					toomany = true;
					break;
				}
				if ((keep[nkeep] = strdup(r->path)) == NULL)
					continue;
				c->mask_keep_dir[nmask][nkeep] = S_ISDIR(r->mode);
				c->mask_keep_inode[nmask][nkeep] =
					(struct sandbox_inode){ .dev = r->dev, .ino = r->ino };
				nkeep++;
			}
		}
		if (whole || toomany) {
			sandbox_env_free(keep);
			if (toomany)
				sandbox_report_add(&c->report, "unix_pathname_sockets", false,
						   "%s not hidden: more than %d allowed paths inside",
						   dir, SANDBOX_MAX_MASK_KEEP);
			continue;
		}
		nkeep = mounts_drop_nested(keep, nkeep, c->mask_keep_dir[nmask],
					   c->mask_keep_inode[nmask]);
		if ((c->masks[nmask] = strdup(dir)) == NULL) {
			sandbox_env_free(keep);
			return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
		}
		c->mask_keep[nmask++] = keep;
		hidden++;
	}
	/* Partial, so not "enforced": sockets elsewhere stay reachable. */
	sandbox_report_add(&c->report, "unix_pathname_sockets", false,
			   "%zu of /tmp, /run, /var/tmp hidden behind an empty tmpfs (their sockets "
			   "cannot be reached); elsewhere connect() to pathname unix sockets is not "
			   "restricted by Landlock", hidden);
	return 0;
}

int sandbox_mounts_compile(const struct sandbox_spec *spec, const struct sandbox_paths *paths,
			   struct sandbox_compiled *c, char *errbuf, size_t errlen)
{
	const struct sandbox_features *f = sandbox_probe();
	size_t ndev = 0;
	int rc;

	if (!spec->readonly_mounts) {
		sandbox_report_add(&c->report, "metadata", false,
				   "chmod/chown/utimes/xattr are not restricted by Landlock");
		return 0;
	}
	if (!f->cap_sys_admin || !f->mountns) {
		if (!spec->best_effort)
			return sandbox_err(errbuf, errlen, -EOPNOTSUPP,
					   "sandbox feature unavailable: read-only mounts need "
					   "CAP_SYS_ADMIN and mount namespaces");
		sandbox_report_add(&c->report, "metadata", false,
				   "no mount namespace: chmod/chown/utimes/xattr not restricted");
		return 0;
	}
	c->rw_paths = calloc(SANDBOX_MAX_RW_MOUNTS + 1, sizeof(char *));
	if (!c->rw_paths)
		return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
	for (size_t i = 0; i < spec->npaths; i++) {
		const struct sandbox_path_res *r = &paths->r[i];

		if (spec->paths[i].access != SANDBOX_WRITE)
			continue;
		if (!r->exists) /* optional and missing: paths.c refused the others */
			continue;
		/* Device nodes, fifos and sockets are opened for writing on a
		 * read-only mount all the same (only regular files, directories
		 * and links get EROFS); a writable bind would only let the worker
		 * chmod/chown the node itself. */
		if (S_ISCHR(r->mode) || S_ISBLK(r->mode) || S_ISFIFO(r->mode) || S_ISSOCK(r->mode)) {
			ndev++;
			continue;
		}
		if (list_has(c->rw_paths, c->nrw, r->path))
			continue;
		if (c->nrw >= SANDBOX_MAX_RW_MOUNTS)
			return sandbox_err(errbuf, errlen, -E2BIG, "mounts: more than %d WRITE paths",
					   SANDBOX_MAX_RW_MOUNTS);
		c->rw_paths[c->nrw] = strdup(r->path);
		if (!c->rw_paths[c->nrw])
			return sandbox_err(errbuf, errlen, -ENOMEM, "mounts");
		c->rw_inode[c->nrw] = (struct sandbox_inode){ .dev = r->dev, .ino = r->ino };
		c->nrw++;
	}
	if (spec->hide_shared_dirs &&
	    (rc = mounts_compile_masks(spec, paths, c, errbuf, errlen)) < 0)
		return rc;
	/* One bound back into a hidden directory is a mount of its own already. */
	for (size_t m = 0; c->masks[m] != NULL; m++) {
		size_t nkeep = 0;

		while (c->mask_keep[m][nkeep] != NULL)
			nkeep++;
		for (size_t i = 0; i < c->nrw; i++)
			if (list_has(c->mask_keep[m], nkeep, c->rw_paths[i]))
				c->rw_is_mount[i] = true;
	}
	c->mounts_ro = true;
	sandbox_report_add(&c->report, "metadata", true,
			   "private mount namespace: read-only and nosuid except %zu WRITE paths "
			   "(%zu device nodes among them stay writable as devices, not as inodes)",
			   c->nrw, ndev);
	return 0;
}

/* mkdir -p the components of path below dir (the fresh tmpfs), then the
 * last one as a directory or an empty file: a mountpoint. Raw syscalls only. */
static int mounts_make_point(const char *dir, const char *path, bool is_dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), start = strlen(dir);
	int fd;

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = start + 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (syscall(SYS_mkdirat, AT_FDCWD, buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = '/';
	}
	if (is_dir)
		return syscall(SYS_mkdirat, AT_FDCWD, buf, 0755) == 0 || errno == EEXIST ? 0 : -errno;
	fd = (int)syscall(SYS_openat, AT_FDCWD, buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Open a compiled path again in the child (as root, in the new namespace)
 * without following any symlink, and only if it is still the inode the
 * policy resolved: a process of the user swapping a component for a
 * symlink or another directory between compile and here gets the session
 * refused, never a mount somewhere else. Raw syscalls only.
 */
static int mounts_open_checked(const char *path, const struct sandbox_inode *want)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	struct stat st;
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || st.st_dev != want->dev || st.st_ino != want->ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* A detached copy of the tree at fd. */
static int mounts_clone(int fd)
{
	int tree = (int)syscall(SYS_open_tree, fd, "",
				OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);

	return tree < 0 ? -errno : tree;
}

/* Hide dir behind an empty tmpfs and bind back the allowed paths in it. */
static int mounts_mask(const char *dir, char *const *keep, const bool *keep_dir,
		       const struct sandbox_inode *keep_inode)
{
	int trees[SANDBOX_MAX_MASK_KEEP];
	size_t n = 0;
	int rc = 0;

	/* Detached copies of what stays visible, taken before the tmpfs covers them. */
	for (; keep[n] != NULL; n++) {
		int fd = mounts_open_checked(keep[n], &keep_inode[n]);

		trees[n] = fd < 0 ? fd : mounts_clone(fd);
		if (fd >= 0)
			close(fd);
		if (trees[n] < 0) {
			rc = trees[n];
			goto out;
		}
	}
	if (syscall(SYS_mount, "tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		    "mode=0755,size=64k") != 0) {
		rc = -errno;
		goto out;
	}
	/* The mount points are made in the fresh tmpfs, which only we can
	 * reach: no component there is the user's. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = mounts_make_point(dir, keep[i], keep_dir[i]);
		if (rc == 0 && syscall(SYS_move_mount, trees[i], "", AT_FDCWD, keep[i],
				       MOVE_MOUNT_F_EMPTY_PATH) != 0)
			rc = -errno;
	}
out:
	for (size_t i = 0; i < n; i++)
		if (trees[i] >= 0)
			close(trees[i]);
	return rc;
}

int sandbox_mounts_enter(const struct sandbox_compiled *c)
{
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
	struct mount_attr rw = { .attr_clr = MOUNT_ATTR_RDONLY };
	int rwfd[SANDBOX_MAX_RW_MOUNTS];
	int rc = 0;
	size_t i;

	if (!c->mounts_ro)
		return 0;
	if (unshare(CLONE_NEWNS) != 0)
		return -errno;
	if (syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -errno;
	for (size_t m = 0; c->masks[m] != NULL; m++) {
		rc = mounts_mask(c->masks[m], c->mask_keep[m], c->mask_keep_dir[m],
				 c->mask_keep_inode[m]);
		if (rc < 0)
			return rc;
	}
	/* Each WRITE path becomes a mount of its own (bound onto the very
	 * inode checked; one bound back into a mask is one already), and the
	 * fd kept names that mount when it is made writable again below. */
	for (i = 0; i < c->nrw && rc == 0; i++) {
		int fd = mounts_open_checked(c->rw_paths[i], &c->rw_inode[i]), tree;

		rwfd[i] = fd;
		if (fd < 0 || c->rw_is_mount[i]) {
			rc = fd < 0 ? fd : 0;
			continue;
		}
		tree = mounts_clone(fd);
		if (tree < 0) {
			rc = tree;
		} else if (syscall(SYS_move_mount, tree, "", fd, "",
				   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
			rc = -errno;
			close(tree);
		} else {
			close(fd);
			rwfd[i] = tree; /* attached now: the new mount's root */
		}
	}
	if (rc == 0 &&
	    syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) != 0)
		rc = -errno;
	for (size_t j = 0; j < i && rc == 0; j++)
		if (syscall(SYS_mount_setattr, rwfd[j], "", AT_EMPTY_PATH | AT_RECURSIVE, &rw,
			    sizeof(rw)) != 0)
			rc = -errno;
	for (size_t j = 0; j < i; j++)
		if (rwfd[j] >= 0)
			close(rwfd[j]);
	return rc;
}

bool sandbox_mounts_verify(const struct sandbox_compiled *c)
{
	struct statfs sf;

	if (!c->mounts_ro)
		return true;
	return statfs("/", &sf) == 0 && (sf.f_flags & ST_RDONLY);
}
