/* fd-relative recursive removal that never follows symlinks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "rmtree.h"

#define RMTREE_MAX_DEPTH 256

static int rmtree_at(int dirfd, int depth)
{
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (depth > RMTREE_MAX_DEPTH) {
		close(dirfd);
		return -ELOOP;
	}
	d = fdopendir(dirfd);
	if (d == NULL) {
		rc = -errno;
		close(dirfd);
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		int sub;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd, e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = rc != 0 ? rc : -errno;
			continue;
		}
		sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = rc != 0 ? rc : -errno;
			continue;
		}
		{
			int r = rmtree_at(sub, depth + 1);
			if (r < 0 && rc == 0)
				rc = r;
		}
		if (unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
			rc = -errno;
	}
	closedir(d);
	return rc;
}

int rmtree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = rmtree_at(fd, 0);
	if (rmdir(path) < 0 && errno != ENOENT && rc == 0)
		rc = -errno;
	return rc;
}
