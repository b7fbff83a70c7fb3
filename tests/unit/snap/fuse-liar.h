/*
 * A tiny FUSE filesystem for the snapshot tests, spoken straight to
 * /dev/fuse (no libfuse): the hostile filesystems a workspace owner can
 * mount. Subdirectories of the mount:
 *
 *   honest/   a.txt (100 bytes, st_size 100): the control
 *   liar/     small.txt: st_size 10, 5000 bytes of content served at most
 *             10 bytes per read (direct_io, so reads are not clipped to
 *             st_size): a first read of 11 bytes gets exactly st_size
 *             big.bin: st_size 300 KiB, 700 KiB of content (chunked path)
 *   endless/  a directory whose listing never ends (e0, e1, ...: empty files)
 *   longname/ one file with a 300-byte name (Linux FUSE allows up to 1024)
 *
 * Content byte i of a liar file is (i * 7 + 3) & 0xff.
 */
#ifndef TESTS_SNAP_FUSE_LIAR_H
#define TESTS_SNAP_FUSE_LIAR_H

#include <stdbool.h>
#include <sys/types.h>

#define FL_SMALL_REPORTED 10u
#define FL_SMALL_REAL 5000u
#define FL_BIG_REPORTED (300u * 1024u)
#define FL_BIG_REAL (700u * 1024u)
#define FL_LONGNAME_LEN 300

struct fuse_liar {
	char *mnt;          /* the mount point (owned) */
	pid_t server;       /* the serving child */
};

/*
 * Move this process to a private mount namespace (so the mount dies with
 * it even if a test crashes), mount the filesystem on mnt and fork the
 * server. false with a reason in why when this machine cannot (no
 * /dev/fuse, no CAP_SYS_ADMIN): the caller skips.
 */
bool fuse_liar_start(struct fuse_liar *fl, const char *mnt, char *why, size_t whylen);
/* Unmount, kill and reap the server. */
void fuse_liar_stop(struct fuse_liar *fl);

#endif
