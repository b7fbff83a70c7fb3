/*
 * Every path rule resolved once per compile, in the caller's filesystem
 * identity, and held open O_PATH: the Landlock rules (fsrules.c) and the
 * mount plan (mounts.c) then use the same resolution, and each Landlock rule
 * is added on the very inode that was resolved (no second lookup that a
 * swapped symlink could redirect).
 *
 * Fast path: openat2(O_PATH, RESOLVE_NO_SYMLINKS) of a path without ".",
 * ".." or "//" components: if the kernel walks it without meeting a
 * symlink, the path as written is its resolved name. Otherwise one
 * openat2(RESOLVE_NO_MAGICLINKS) follows the symlinks in one walk and
 * readlink("/proc/self/fd/N") names the result. glibc's realpath() makes
 * one readlink() per component instead, which was the largest single cost
 * of a session start. realpath() stays as the fallback (no openat2, no
 * /proc, a deleted or unreachable result) and for paths that do not exist
 * yet (deny rules, optional paths).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Beyond this many rules the fds are not kept open (reopened by path when
 * the rule is added), so a long policy cannot run the caller out of fds. */
#define PATHS_KEEP_FDS 256

static bool path_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/*
 * Symlinks into /proc/self resolve to the compiling process, not the worker:
 * a rule there would grant the worker this process's fds and files.
 */
static bool path_is_own_proc(const char *p)
{
	char own[32];

	if (!path_within(p, "/proc"))
		return false;
	snprintf(own, sizeof(own), "/proc/%ld", (long)getpid());
	return path_within(p, own) || path_within(p, "/proc/self") ||
	       path_within(p, "/proc/thread-self");
}

/* Does resolving p cross a magic link (/proc/PID/fd/N, exe, cwd, root)? */
static bool path_crosses_magic_link(const char *p)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof(how));

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == ELOOP;
}

/* A path that does not exist: realpath() of its longest existing prefix plus
 * the missing components (which may not be "." or ".."). */
static int path_resolve_missing(const char *in, char out[PATH_MAX])
{
	char buf[PATH_MAX], tmp[PATH_MAX];
	size_t cut;

	memcpy(buf, in, strlen(in) + 1);
	for (;;) {
		char *slash = strrchr(buf, '/');
		const char *rest;

		if (!slash)
			return -ENOENT;
		cut = (size_t)(slash - buf);
		*slash = '\0';
		if (realpath(cut ? buf : "/", tmp) == NULL) {
			if (errno != ENOENT)
				return -errno;
			continue;
		}
		rest = in + cut;  /* "/missing/components" */
		for (const char *c = rest; *c; ) {
			size_t len;

			while (*c == '/')
				c++;
			len = strcspn(c, "/");
			if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
				return -EINVAL;
			c += len;
		}
		if (snprintf(out, PATH_MAX, "%s%s", strcmp(tmp, "/") == 0 ? "" : tmp, rest) >=
		    PATH_MAX)
			return -ENAMETOOLONG;
		return 0;
	}
}

/* The kernel's name for an O_PATH fd; false when it is not a plain path. */
static bool path_of_fd(int fd, char out[PATH_MAX])
{
	static const char deleted[] = " (deleted)";
	char link[40];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, PATH_MAX - 1);
	if (n <= 0 || n >= PATH_MAX - 1 || out[0] != '/')
		return false;
	out[n] = '\0';
	return !((size_t)n >= sizeof(deleted) - 1 &&
		 strcmp(out + n - (sizeof(deleted) - 1), deleted) == 0);
}

/* No empty, "." or ".." components and no trailing slash: as canonical as
 * a path can be written (symlinks aside). */
static bool path_is_plain(const char *p)
{
	for (const char *c = p; *c; ) {
		size_t len;

		if (*c++ != '/')
			return false;
		len = strcspn(c, "/");
		if (len == 0 ? *c != '\0' || c - 1 != p
			     : (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += len;
	}
	return true;
}

/* A symlink-free path opens as written: its name needs no lookup. */
static int path_open_plain(const char *in, char out[PATH_MAX])
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	int fd;

	if (!path_is_plain(in))
		return -1;
	fd = (int)syscall(SYS_openat2, AT_FDCWD, in, &how, sizeof(how));
	if (fd >= 0)
		memcpy(out, in, strlen(in) + 1);
	return fd;
}

/* Resolves one absolute path into out; *fd is an O_PATH fd of it, or -1 if
 * missing. */
static int path_resolve(const char *in, char out[PATH_MAX], struct sandbox_path_res *r)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS };
	struct stat st;
	int fd;

	r->fd = -1;
	r->exists = false;
	if (!in || in[0] != '/')
		return -EINVAL;
	if (strlen(in) >= PATH_MAX)
		return -ENAMETOOLONG;
	fd = path_open_plain(in, out);
	if (fd >= 0)
		goto found;
	fd = (int)syscall(SYS_openat2, AT_FDCWD, in, &how, sizeof(how));
	if (fd < 0 && errno == ELOOP) {
		/* A symlink loop, or a magic link on the way. */
		fd = open(in, O_PATH | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return -EXDEV;
		}
		return -errno;
	}
	if (fd < 0 && errno != ENOSYS && errno != EINVAL && errno != EPERM)
		return errno == ENOENT ? path_resolve_missing(in, out) : -errno;
	if (fd < 0) {
		/* No openat2 (or a seccomp filter refusing it): resolve in user space. */
		if (realpath(in, out) == NULL)
			return errno == ENOENT ? path_resolve_missing(in, out) : -errno;
		if (path_crosses_magic_link(in))
			return -EXDEV;
		fd = open(out, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else if (!path_of_fd(fd, out) && realpath(in, out) == NULL) {
		int e = errno;

		close(fd);
		return -e;
	}
found:
	if (path_is_own_proc(out) || path_is_own_proc(in) || fstat(fd, &st) != 0) {
		close(fd);
		return -EXDEV;
	}
	r->fd = fd;
	r->exists = true;
	r->mode = st.st_mode;
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return 0;
}

int sandbox_paths_resolve(const struct sandbox_spec *spec, struct sandbox_paths *p,
			  struct sandbox_report *report, char *errbuf, size_t errlen)
{
	p->n = 0;
	p->r = NULL;
	if (spec->npaths == 0)
		return 0;
	p->r = calloc(spec->npaths, sizeof(*p->r));
	if (!p->r)
		return sandbox_err(errbuf, errlen, -ENOMEM, "landlock");
	for (size_t i = 0; i < spec->npaths; i++)
		p->r[i].fd = -1;
	p->n = spec->npaths;
	for (size_t i = 0; i < spec->npaths; i++) {
		const struct sandbox_path_rule *rule = &spec->paths[i];
		struct sandbox_path_res *r = &p->r[i];
		char out[PATH_MAX];
		int rc;

		if (rule->access != SANDBOX_READ && rule->access != SANDBOX_WRITE &&
		    rule->access != SANDBOX_DENY)
			return sandbox_err(errbuf, errlen, -EINVAL, "path rule %zu: bad access level", i);
		rc = path_resolve(rule->path, out, r);
		if (rc == 0 && !(r->path = strdup(out)))
			rc = -ENOMEM;
		if (rc == -EXDEV)
			return sandbox_err(errbuf, errlen, -EINVAL,
					   "%s resolves into /proc/self of the process compiling the "
					   "sandbox, not the worker's: name the real path", rule->path);
		if (rc < 0)
			return sandbox_err(errbuf, errlen, rc, "path rule %zu (%s)", i,
					   rule->path ? rule->path : "(null)");
		if (r->fd >= 0 && (rule->access == SANDBOX_DENY || i >= PATHS_KEEP_FDS)) {
			close(r->fd);
			r->fd = -1;
		}
		if (r->exists || rule->access == SANDBOX_DENY)
			continue;
		if (!(rule->flags & SANDBOX_PATH_OPTIONAL))
			return sandbox_err(errbuf, errlen, -ENOENT, "open %s", rule->path);
		sandbox_report_add(report, "landlock.optional_path", false,
				   "%s does not exist: skipped", rule->path);
		r->path[0] = '\0';
	}
	return 0;
}

void sandbox_paths_release(struct sandbox_paths *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->r[i].fd >= 0)
			close(p->r[i].fd);
		free(p->r[i].path);
	}
	free(p->r);
	p->r = NULL;
	p->n = 0;
}
