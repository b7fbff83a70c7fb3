/*
 * The one tree remover (see rmtree.h): an iterative walk with a stack of
 * frames and one directory fd open at a time.
 *
 * Each directory is scanned with getdents64: files, symlinks and anything
 * else that is not a directory are unlinked relative to its fd; the first
 * subdirectory met is opened (O_NOFOLLOW|O_DIRECTORY, relative to the same
 * fd) and becomes the current directory, the parent's fd is closed and its
 * scan position kept in its frame. An emptied directory is left through
 * "..", checked against the parent frame's (dev, ino), and removed by name
 * relative to that parent; the parent's scan resumes where it stopped.
 * A scan that resumed once ends with one more pass from the start (a
 * resumed offset may skip entries on filesystems whose offsets are
 * positions in a list), so a directory is done after a pass that never left
 * it. Directories that must stay (they hold kept entries, or could not be
 * emptied) are remembered by (dev, ino) and skipped, so every extra pass
 * removes or skips at least one directory: the walk ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "fsid.h"
#include "log.h"
#include "rmtree.h"

/*
 * A scan reads entries in batches that start small and double: the rest of
 * a batch is read again after coming back from the subdirectory found in
 * it, and in a directory of N subdirectories a 32 KiB batch made that
 * N * 1,000 entries read for nothing.
 */
#define RT_BATCH_MIN 1024

/* One directory on the way down. */
struct rt_frame {
	dev_t dev;
	ino_t ino;
	off_t off;      /* where its scan resumes (a getdents64 d_off) */
	size_t name;    /* offset of its name in rt.names */
	size_t plen;    /* length of its path in opts->path, when named */
	bool named;     /* its path fits in opts->path */
	bool resumed;   /* this pass left it and came back: rescan from 0 at the end */
};

/* Directories left in place, by identity (open addressing). */
struct rt_key {
	dev_t dev;
	ino_t ino;
	bool used;
};

struct rt {
	const struct rmtree_opts *o;
	struct rt_frame *stk;
	size_t depth, cap;
	char *names;    /* the frames' names, NUL-terminated, one after the other */
	size_t nlen, ncap;
	struct rt_key *left;
	size_t nleft, capleft; /* capleft: 0 or a power of two, nleft <= capleft / 2 */
	int err;        /* the first failure */
};

/* Record and report a failure; returns err. */
static int rt_report(struct rt *t, int err, const char *what)
{
	if (t->err == 0)
		t->err = err;
	if (t->o->fail != NULL)
		t->o->fail(t->o->arg, err, what, t->o->path);
	return err;
}

/* A failure about one entry: 0 to go on (keep_going), else err. */
static int rt_fail(struct rt *t, int err, const char *what)
{
	rt_report(t, err, what);
	return t->o->keep_going ? 0 : err;
}

static size_t rt_slot(const struct rt *t, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 17)) * 0x9e3779b97f4a7c15ULL;
	size_t i = (size_t)(h >> 32) & (t->capleft - 1);

	while (t->left[i].used && (t->left[i].dev != dev || t->left[i].ino != ino))
		i = (i + 1) & (t->capleft - 1);
	return i;
}

static bool rt_is_left(const struct rt *t, const struct stat *st)
{
	return t->capleft > 0 && t->left[rt_slot(t, st->st_dev, st->st_ino)].used;
}

static int rt_leave(struct rt *t, dev_t dev, ino_t ino)
{
	size_t i;

	if ((t->nleft + 1) * 2 > t->capleft) {
		size_t nc = t->capleft ? t->capleft * 2 : 16;
		struct rt_key *old = t->left, *nv = calloc(nc, sizeof(*nv));
		size_t oc = t->capleft;
		if (nv == NULL)
			return -ENOMEM;
		t->left = nv;
		t->capleft = nc;
		for (size_t j = 0; j < oc; j++)
			if (old[j].used)
				t->left[rt_slot(t, old[j].dev, old[j].ino)] = old[j];
		free(old);
	}
	i = rt_slot(t, dev, ino);
	if (!t->left[i].used)
		t->nleft++;
	t->left[i] = (struct rt_key){ .dev = dev, .ino = ino, .used = true };
	return 0;
}

/* Append name to the path of length len; the new length, 0 if it does not fit. */
static size_t rt_path_push(const struct rmtree_opts *o, size_t len, const char *name, size_t nlen)
{
	size_t off = len ? len + 1 : 0;

	if (off + nlen + 1 > o->path_size)
		return 0;
	if (len)
		o->path[len] = '/';
	memcpy(o->path + off, name, nlen);
	o->path[off + nlen] = '\0';
	return off + nlen;
}

/* Push the frame of the open directory fd, called name. */
static int rt_push(struct rt *t, int fd, const char *name)
{
	size_t nl = strlen(name) + 1;
	struct rt_frame *f;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return rt_report(t, -errno, "stat");
	if (t->depth == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		struct rt_frame *ns = realloc(t->stk, nc * sizeof(*ns));
		if (ns == NULL)
			return rt_report(t, -ENOMEM, "remove");
		t->stk = ns;
		t->cap = nc;
	}
	if (t->nlen + nl > t->ncap) {
		size_t nc = t->ncap ? t->ncap * 2 : 4096;
		char *nn;
		while (nc < t->nlen + nl)
			nc *= 2;
		if ((nn = realloc(t->names, nc)) == NULL)
			return rt_report(t, -ENOMEM, "remove");
		t->names = nn;
		t->ncap = nc;
	}
	f = &t->stk[t->depth];
	*f = (struct rt_frame){ .dev = st.st_dev, .ino = st.st_ino, .name = t->nlen };
	memcpy(t->names + t->nlen, name, nl);
	t->nlen += nl;
	if (t->depth == 0) {
		f->plen = t->o->path_len;
		f->named = t->o->path != NULL;
	} else if (f[-1].named) {
		f->plen = rt_path_push(t->o, f[-1].plen, name, nl - 1);
		f->named = f->plen != 0;
	}
	t->depth++;
	return 0;
}

/*
 * One entry n of the directory fd (frame f): left alone when kept, unlinked
 * unless a directory, opened into *child (returns 1) when a directory.
 * Returns 0 to go on, 1, or a negative errno to stop.
 */
/*
 * Open directory n under fd, never through a symlink, and with xdev never
 * into another mount: RESOLVE_NO_XDEV refuses at the mount point (EXDEV)
 * without asking the file system mounted there anything, where a stat or
 * a plain open would wait on it (a user's FUSE server that never answers
 * would hold nonod). So entries are opened before they are stat()ed.
 */
static int rt_open_dir(int fd, const char *n, bool xdev)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   (xdev ? RESOLVE_NO_XDEV : 0),
	};
	int r = (int)syscall(SYS_openat2, fd, n, &how, sizeof(how));

	if (r < 0 && errno == ENOSYS) /* before Linux 5.6 */
		r = openat(fd, n, (int)how.flags);
	return r;
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/*
 * opts.unlock: make entry n of fd 0700 if it is a directory, found without
 * following a symlink or (xdev) entering a mount. Through an O_PATH
 * descriptor, so the mode changed is that of the directory looked at, not
 * of whatever the name points to by then. The kernel refuses (EPERM) a
 * directory the thread's fsuid does not own. Returns 0 or -1.
 */
static int rt_unlock(int fd, const char *n, bool xdev)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   (xdev ? RESOLVE_NO_XDEV : 0),
	};
	int p = (int)syscall(SYS_openat2, fd, n, &how, sizeof(how)), rc = -1;
	struct stat st;

	if (p < 0)
		return -1;
	if (fstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = (int)syscall(SYS_fchmodat2, p, "", S_IRWXU, AT_EMPTY_PATH);
		if (rc < 0 && errno == ENOSYS) { /* before Linux 6.6 */
			char proc[32];
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p);
			rc = chmod(proc, S_IRWXU);
		}
	}
	close(p);
	return rc < 0 ? -1 : 0;
}

/* opts.unlock, after an EACCES in the directory fd being emptied: give it
 * search and write permission. false (errno kept) when not done. */
static bool rt_unlock_fd(const struct rt *t, int fd)
{
	if (!t->o->unlock || errno != EACCES)
		return false;
	if (fchmod(fd, S_IRWXU) == 0)
		return true;
	errno = EACCES;
	return false;
}

static int rt_entry(struct rt *t, int fd, const struct rt_frame *f, const char *n,
		    char *sub, int *child)
{
	const struct rmtree_opts *o = t->o;
	size_t nlen = strlen(n);
	struct stat st;
	int r;

	if (o->keep != NULL) {
		bool kept;
		size_t pl = f->named ? rt_path_push(o, f->plen, n, nlen) : 0;
		kept = o->keep(o->arg, pl != 0 ? o->path : NULL, n);
		if (f->named)
			o->path[f->plen] = '\0';
		if (kept)
			return 0;
	}
	if (nlen > NAME_MAX)
		return rt_fail(t, -ENAMETOOLONG, "name too long in");
	*child = rt_open_dir(fd, n, o->xdev);
	if (*child < 0 && errno == EACCES && o->unlock) {
		/* fd may lack search permission, n read permission: once */
		(void)rt_unlock_fd(t, fd);
		(void)rt_unlock(fd, n, o->xdev);
		*child = rt_open_dir(fd, n, o->xdev);
	}
	if (*child >= 0) {
		if (fstat(*child, &st) < 0) {
			int e = -errno;
			close(*child);
			*child = -1;
			return rt_fail(t, e, "stat");
		}
		if (rt_is_left(t, &st)) { /* emptied already, but for what has to stay */
			close(*child);
			*child = -1;
			return 0;
		}
		if (o->xdev && st.st_dev != t->stk[0].dev) { /* a btrfs subvolume */
			close(*child);
			*child = -1;
			if (rt_leave(t, st.st_dev, st.st_ino) < 0)
				return rt_report(t, -ENOMEM, "remove");
			return rt_fail(t, -EXDEV, "other filesystem in");
		}
		memcpy(sub, n, nlen + 1);
		return 1;
	}
	if (errno == ENOENT)
		return 0;
	if (errno == EXDEV) /* a mount point: not entered, nothing asked of it */
		return rt_fail(t, -EXDEV, "other filesystem in");
	if (errno != ELOOP && errno != ENOTDIR)
		return rt_fail(t, -errno, "open");
	/* not a directory (or swapped for a symlink or a file meanwhile): unlink it */
	r = unlinkat(fd, n, 0);
	if (r < 0 && rt_unlock_fd(t, fd))
		r = unlinkat(fd, n, 0);
	if (r < 0 && errno != ENOENT)
		return rt_fail(t, -errno, "unlink");
	return 0;
}

/*
 * Scan the open directory fd (frame f) from where it stopped. Returns 1
 * with its next subdirectory open in *child and named sub, 0 when only
 * entries that stay are left, or a negative errno to stop.
 */
static int rt_scan(struct rt *t, int fd, struct rt_frame *f, char *sub, int *child)
{
	char buf[32768] __attribute__((aligned(8)));
	size_t want = RT_BATCH_MIN;
	ssize_t got;

	for (;;) {
		if (lseek(fd, f->off, SEEK_SET) < 0)
			return rt_fail(t, -errno, "seek");
		while ((got = getdents64(fd, buf, want)) > 0) {
			if (want < sizeof(buf))
				want *= 2;
			for (size_t off = 0; off < (size_t)got;) {
				struct dirent64 *de = (struct dirent64 *)(buf + off);
				const char *n = de->d_name;
				int rc;

				off += de->d_reclen;
				if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
					continue;
				rc = rt_entry(t, fd, f, n, sub, child);
				if (rc == 1) {
					f->off = de->d_off;
					f->resumed = true;
				}
				if (rc != 0)
					return rc;
			}
		}
		if (got < 0)
			return rt_fail(t, -errno, "readdir");
		if (!f->resumed)
			return 0;
		f->resumed = false;
		f->off = 0;
	}
}

/*
 * Leave the directory *fd (the top frame) for its parent, checked to be the
 * directory we came down from, and remove it there. Returns 0 to go on or
 * a negative errno to stop.
 */
static int rt_up(struct rt *t, int *fd)
{
	const struct rmtree_opts *o = t->o;
	const struct rt_frame *f = &t->stk[t->depth - 1], *p = f - 1;
	const char *name = t->names + f->name;
	struct stat st;
	int up = openat(*fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), e = errno, rc = 0;
	int r;

	close(*fd);
	*fd = up;
	t->depth--;
	if (p->named)
		o->path[p->plen] = '\0';
	if (up < 0 || fstat(up, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino)
		return rt_report(t, up < 0 ? -e : -EXDEV, "moved while being removed:");
	if ((r = unlinkat(up, name, AT_REMOVEDIR)) < 0 && rt_unlock_fd(t, up))
		r = unlinkat(up, name, AT_REMOVEDIR);
	if (r < 0 && errno != ENOENT) {
		/* with a keep callback, ENOTEMPTY is what holding kept entries looks like */
		if (errno != ENOTEMPTY || o->keep == NULL)
			rc = rt_fail(t, -errno, "rmdir");
		if (rc == 0 && rt_leave(t, f->dev, f->ino) < 0)
			rc = rt_report(t, -ENOMEM, "remove");
	}
	t->nlen = f->name;
	return rc;
}

int rmtree_at(int dfd, const char *name, const struct rmtree_opts *opts)
{
	static const struct rmtree_opts none;
	struct rt t = { .o = opts != NULL ? opts : &none };
	const struct rmtree_opts *o = t.o;
	char sub[NAME_MAX + 1];
	int fd, child = -1, rc;

	if (name[0] == '\0' || strchr(name, '/') != NULL) /* a path could cross symlinks */
		return rt_report(&t, -EINVAL, "name");
	fd = rt_open_dir(dfd, name, o->xdev);
	if (fd < 0 && errno == EACCES && o->unlock && rt_unlock(dfd, name, o->xdev) == 0)
		fd = rt_open_dir(dfd, name, o->xdev);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR) /* a file, or a symlink: unlink it */
			return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ?
				       rt_report(&t, -errno, "unlink") : 0;
		return rt_report(&t, -errno, "open");
	}
	rc = rt_push(&t, fd, name);
	while (rc == 0) {
		rc = rt_scan(&t, fd, &t.stk[t.depth - 1], sub, &child);
		if (rc == 1) { /* down */
			rc = rt_push(&t, child, sub);
			close(fd);
			fd = child;
			continue;
		}
		if (rc < 0 || t.depth == 1)
			break;
		rc = rt_up(&t, &fd);
	}
	if (fd >= 0)
		close(fd);
	if (o->path != NULL)
		o->path[o->path_len] = '\0';
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT &&
	    (errno != ENOTEMPTY || o->keep == NULL))
		rt_report(&t, -errno, "rmdir");
	free(t.stk);
	free(t.names);
	free(t.left);
	return t.err;
}

struct rmtree_log {
	const char *path;
	bool logged;
};

static void rmtree_log_first(void *arg, int err, const char *what, const char *path)
{
	struct rmtree_log *l = arg;

	(void)path; /* the tree's names are its owner's bytes: not logged */
	if (l->logged)
		return;
	l->logged = true;
	log_msg(LOG_LEVEL_WARN, false, "rmtree", "%s: %s <entry>: %s", l->path, what, strerror(-err));
}

static int rmtree_path(const char *path, bool unlock)
{
	struct rmtree_log l = { .path = path };
	struct rmtree_opts o = { .fail = rmtree_log_first, .arg = &l, .keep_going = true,
				 .xdev = true, .unlock = unlock };
	size_t len = strlen(path);
	char *copy, *slash;
	const char *base = NULL, *dir = NULL;
	int pfd = AT_FDCWD, rc;

	while (len > 1 && path[len - 1] == '/')
		len--;
	if ((copy = strndup(path, len)) == NULL)
		return -ENOMEM;
	slash = strrchr(copy, '/');
	base = slash != NULL ? slash + 1 : copy;
	if (slash == copy) {
		dir = "/";
	} else if (slash != NULL) {
		*slash = '\0'; /* copy is now the parent, base still the name */
		dir = copy;
	}
	if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		free(copy);
		return -EINVAL;
	}
	if (dir != NULL && (pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		free(copy);
		return rc;
	}
	rc = rmtree_at(pfd, base, &o);
	if (pfd >= 0)
		close(pfd);
	free(copy);
	return rc;
}

int rmtree(const char *path)
{
	return rmtree_path(path, false);
}

int rmtree_as(const char *path, uid_t uid, gid_t gid)
{
	struct fsid_saved old;
	gid_t *groups = NULL;
	long ng;
	int rc;

	if (uid == 0) /* root needs no unlocking */
		return rmtree_path(path, false);
	if (geteuid() != 0) /* a user's own daemon: already the owner */
		return rmtree_path(path, true);
	/* The owner's rights, and not those of the daemon's supplementary
	 * groups: set for this thread only (raw syscall; glibc's setgroups()
	 * would change every thread), and put back after. */
	if ((ng = syscall(SYS_getgroups, 0, NULL)) < 0)
		return -errno;
	if (ng > 0 && ((groups = calloc((size_t)ng, sizeof(*groups))) == NULL ||
		       syscall(SYS_getgroups, ng, groups) != ng)) {
		free(groups);
		return -ENOMEM;
	}
	if (syscall(SYS_setgroups, 0, NULL) < 0) {
		rc = -errno;
	} else {
		if ((rc = fsid_enter(uid, gid, &old)) == 0) {
			rc = rmtree_path(path, true);
			fsid_leave(&old);
		}
		if (syscall(SYS_setgroups, (size_t)ng, groups) < 0)
			log_warn("rmtree: cannot restore the thread's groups");
	}
	free(groups);
	return rc;
}
