/* Removing a directory tree owned by someone else, safely, as root. */
#ifndef DAEMON_RMTREE_H
#define DAEMON_RMTREE_H

/*
 * Remove path and everything below it. Every step is relative to a
 * directory fd opened with O_NOFOLLOW, so swapping a directory for a
 * symlink while we walk cannot redirect a deletion outside the tree.
 * Returns 0 or the first -errno met (it still removes what it can).
 */
int rmtree(const char *path);

#endif
