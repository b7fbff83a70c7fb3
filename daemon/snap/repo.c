/*
 * One user's store opened for one operation: directory fds, the index
 * connection, the store lock, and the objects waiting to be made durable.
 *
 * Durability protocol (a crash at any point leaves the store consistent):
 * new objects are appended to pack files of this operation's own (pack.c);
 * repo_flush() fsyncs those packs and the packs/ directory, then indexes
 * their records in one transaction. Only then is the snapshot row committed.
 * An index row therefore always names complete, durable content; a crash
 * leaves at most a pack no row names, which gc removes.
 */
#include <dirent.h>
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

static bool dir_has_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	bool any = true;        /* when in doubt, look for loose objects */
	DIR *dp;

	if (fd < 0 || (dp = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return any;
	}
	any = false;
	while (!any && (de = readdir(dp)) != NULL)
		any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(dp);
	return any;
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
	/* objects/ holds loose objects of stores older than packs; kept for them. */
	rc = mkdir_at(r->dirfd, "objects");
	if (rc == 0)
		rc = r->objfd = open_dir_at(r->dirfd, "objects");
	if (rc < 0)
		goto fail;
	r->has_loose = dir_has_entries(r->objfd);
	r->lockfd = openat(r->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->lockfd < 0) {
		rc = -errno;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/%u/index.db", root, (unsigned)uid);
	rc = db_open(path, &r->db);
	if (rc < 0)
		goto fail;
	/* A commit must be on disk before what it makes unreachable goes:
	 * gc unlinks packs and objects right after its index commits, and a
	 * committed snapshot must survive power loss, not only a crash. */
	rc = db_exec(r->db, "PRAGMA synchronous=FULL;");
	/* No mmap_size: a mapped index turns a disk error or a truncated file
	 * into SIGBUS in the daemon (every user's sessions), where reads return
	 * an error SQLite reports. Loading a 100k-file stat cache costs 2,300
	 * preads more for it. */
	if (rc == 0)
		rc = index_migrate(r->db);
	if (rc == 0)
		rc = pack_state_new(r);
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
	/* Packs never flushed are garbage: pack_state_free() removes them. */
	pack_state_free(r);
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

int repo_flush(struct snap_repo *r)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = pack_flush(r);
	if (rc < 0)
		log_warnx("%s: making objects durable: %s", __func__, strerror(-rc));
	hset_free(r->pending);
	r->pending = hset_new();
	if (r->pending == NULL && rc == 0)
		rc = -ENOMEM;
	pthread_mutex_unlock(&r->mu);
	return rc;
}
