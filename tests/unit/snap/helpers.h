/* Helpers for the snapshot store tests: temp dirs, file trees, tree comparison. */
#ifndef TESTS_SNAP_HELPERS_H
#define TESTS_SNAP_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "snap.h"

/* mkdtemp under $TMPDIR (or /tmp); aborts the test on failure. Caller frees. */
char *th_tmpdir(const char *tag);
/* rm -rf without following symlinks. */
void th_rmrf(const char *path);
/* Write a file (creating parents is the caller's job). */
void th_write(const char *dir, const char *rel, const void *data, size_t len, mode_t mode);
void th_writes(const char *dir, const char *rel, const char *s);
void th_mkdir(const char *dir, const char *rel, mode_t mode);
void th_symlink(const char *dir, const char *rel, const char *target);
/* Read a whole file; NULL when missing. Caller frees. */
char *th_read(const char *dir, const char *rel, size_t *len);
/* Recursive listing "type mode size name -> content-hash" lines, sorted; compares two trees. */
char *th_manifest(const char *dir, bool with_mtime);
/* chown -R (lchown) */
void th_chown_r(const char *path, uid_t uid, gid_t gid);
/* Create the store root (0700) inside tmp; returns path (caller frees). */
char *th_store_root(const char *tmp);

/* A temp dir per test case (unchecked fixture: made and removed in the parent). */
extern char *th_tmp;
void th_tmp_setup(void);
void th_tmp_teardown(void);

/* A store and an empty workspace under th_tmp/tag, and create params for them. */
struct snap_store;
struct th_env {
	char *dir, *ws, *root, *packs;  /* packs: the caller's packs/ directory */
	struct snap_store *s;
	struct snap_params p;
};
void th_env_open(struct th_env *e, const char *tag);
void th_env_close(struct th_env *e);

#endif
