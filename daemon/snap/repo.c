/*
 * One user's store opened for one operation: directory fds, the index
 * connection, the store lock, and the batch of objects waiting to be made
 * durable.
 *
 * Durability protocol (a crash at any point leaves the store consistent):
 * objects are written under temp names in their fan-out dir; repo_flush()
 * makes their bytes durable (fsync each, or one syncfs() for big batches),
 * renames each to its final name, and makes the names durable (fsync of the
 * fan-out dirs, or syncfs() again). Only then is the snapshot
 * row committed. A final name therefore always holds complete content; a
 * crash leaves at most temp files and unreferenced objects, which gc removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "snap-int.h"

static int mkdir_at(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int repo_open(const char *root, uid_t uid, struct snap_repo **out)
{
	struct snap_repo *r;
	char name[32], path[4096];
	int rootfd, rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->dirfd = r->objfd = r->lockfd = -1;
	r->uid = uid;
	pthread_mutex_init(&r->mu, NULL);
	r->pending = hset_new();
	if (r->pending == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		log_warn("open %s", root);
		goto fail;
	}
	snprintf(name, sizeof(name), "%u", (unsigned)uid);
	rc = mkdir_at(rootfd, name);
	if (rc == 0)
		rc = r->dirfd = open_dir_at(rootfd, name);
	close(rootfd);
	if (rc < 0)
		goto fail;
	rc = mkdir_at(r->dirfd, "objects");
	if (rc == 0)
		rc = r->objfd = open_dir_at(r->dirfd, "objects");
	if (rc < 0)
		goto fail;
	rc = 0;
	for (int i = 0; i < 256 && rc == 0; i++) {
		snprintf(name, sizeof(name), "%02x", i);
		rc = mkdir_at(r->objfd, name);
	}
	if (rc < 0)
		goto fail;
	r->lockfd = openat(r->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->lockfd < 0) {
		rc = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%u/index.db", root, (unsigned)uid);
	rc = db_open(path, &r->db);
	if (rc < 0)
		goto fail;
	rc = index_migrate(r->db);
	if (rc < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	if (rc != -ENOMEM)
		log_warnx("%s: store for uid %u: %s", __func__, (unsigned)uid, strerror(-rc));
	repo_close(r);
	return rc;
}

void repo_close(struct snap_repo *r)
{
	if (r == NULL)
		return;
	/* Temp objects never flushed are garbage: remove what we can now. */
	for (size_t i = 0; i < r->npending; i++) {
		unlinkat(r->objfd, r->pending_tmp[i], 0);
		free(r->pending_tmp[i]);
	}
	free(r->pending_tmp);
	hset_free(r->pending);
	db_close(r->db);
	if (r->lockfd >= 0)
		close(r->lockfd);
	if (r->objfd >= 0)
		close(r->objfd);
	if (r->dirfd >= 0)
		close(r->dirfd);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int repo_lock(struct snap_repo *r, bool exclusive)
{
	while (flock(r->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int fsync_at(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Small batches (an incremental snapshot) fsync each object and then each
 * fan-out directory touched: cheap, and independent of other writers on the
 * filesystem. Large batches use syncfs(), one flush for thousands of files.
 */
#define FLUSH_FSYNC_MAX 64

static int flush_data(struct snap_repo *r, bool small)
{
	if (!small)
		return syncfs(r->objfd) < 0 ? -errno : 0;
	for (size_t i = 0; i < r->npending; i++) {
		int rc = fsync_at(r->objfd, r->pending_tmp[i], 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int flush_names(struct snap_repo *r, bool small)
{
	bool done[256] = { false };

	if (!small)
		return syncfs(r->objfd) < 0 ? -errno : 0;
	for (size_t i = 0; i < r->npending; i++) {
		char sub[3] = { r->pending_tmp[i][0], r->pending_tmp[i][1], '\0' };
		unsigned v = (unsigned)strtoul(sub, NULL, 16) & 255;
		int rc;
		if (done[v])
			continue;
		done[v] = true;
		if ((rc = fsync_at(r->objfd, sub, O_DIRECTORY)) < 0)
			return rc;
	}
	return 0;
}

int repo_flush(struct snap_repo *r)
{
	bool small;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (r->npending == 0)
		goto out;
	small = r->npending <= FLUSH_FSYNC_MAX;
	if ((rc = flush_data(r, small)) < 0) {
		log_warnx("%s: making objects durable: %s", __func__, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < r->npending; i++) {
		char final[80];
		const char *dot = strchr(r->pending_tmp[i], '.');
		size_t l = (size_t)(dot - r->pending_tmp[i]);

		memcpy(final, r->pending_tmp[i], l);
		final[l] = '\0';
		if (rc == 0 && renameat(r->objfd, r->pending_tmp[i], r->objfd, final) < 0) {
			rc = -errno;
			log_warn("rename object %s", final);
		}
	}
	if (rc == 0 && (rc = flush_names(r, small)) < 0)
		log_warnx("%s: making object names durable: %s", __func__, strerror(-rc));
out:
	for (size_t i = 0; i < r->npending; i++) {
		if (rc < 0)
			unlinkat(r->objfd, r->pending_tmp[i], 0);
		free(r->pending_tmp[i]);
	}
	r->npending = 0;
	hset_free(r->pending);
	r->pending = hset_new();
	if (r->pending == NULL && rc == 0)
		rc = -ENOMEM;
	pthread_mutex_unlock(&r->mu);
	return rc;
}
