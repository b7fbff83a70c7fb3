/*
 * `nonoctl snapshot diff --patch`: fetch both sides of every change and
 * write git-style unified diffs (unidiff.h).
 */
#ifndef NONOCTL_SNAPSHOT_PATCH_H
#define NONOCTL_SNAPSHOT_PATCH_H

#include <stdint.h>

#include "nonoctl.h"

/*
 * res is snapshot.diff's result from `from` to `to` (NULL = the live
 * workspace); owner is --owner (< 0 when not given). Without --json the
 * patches go to stdout; with --json each change in res gets a "patch"
 * string (and "patch_base64" when the patch is not UTF-8) and res is
 * printed. Content comes from snapshot.read; live files are read here, as
 * the calling user, never through a symlink. Returns the exit code: a
 * change whose content could not be read is reported on stderr and makes
 * it non-zero, the other patches are still written.
 */
int snapshot_patch(struct nonoctl *ctl, struct json_object *res, const char *from,
		   const char *to, int64_t owner);

#endif
