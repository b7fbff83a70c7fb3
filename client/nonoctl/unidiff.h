/*
 * Unified diffs in git's patch format, for `nonoctl snapshot diff --patch`.
 *
 * The output applies with `git apply` and `patch -p1`: "diff --git" headers
 * with mode lines (new file, deleted file, old/new mode), C-quoted names
 * where git quotes them, "---"/"+++" lines (a tab after a name holding a
 * space, so patch(1) reads the whole name), hunks with three lines of
 * context, "\ No newline at end of file", symlinks as their target text
 * (mode 120000). Binary content (a NUL byte in the first 8 KiB, as git
 * decides) gets "Binary files ... differ"; a side over UNIDIFF_MAX_BYTES or
 * UNIDIFF_MAX_LINES gets "Files ... differ (file too large to diff)" with
 * no "diff --git" header, so appliers skip it as commentary.
 *
 * The diff is Myers' O(ND) algorithm in linear space (divide at the middle
 * snake), run on interned lines; a subproblem costing more than
 * UNIDIFF_COST_MAX edits is split at the furthest-reaching point instead,
 * so the time stays bounded and the patch stays correct, if not minimal.
 */
#ifndef NONOCTL_UNIDIFF_H
#define NONOCTL_UNIDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define UNIDIFF_MAX_BYTES (4u * 1024u * 1024u) /* per side */
#define UNIDIFF_MAX_LINES 100000u               /* per side */
#define UNIDIFF_BINARY_PROBE 8192u              /* bytes looked at for a NUL */
#define UNIDIFF_CONTEXT 3
#define UNIDIFF_COST_MAX 512

/* git's file modes. */
#define UNIDIFF_MODE_FILE 0100644u
#define UNIDIFF_MODE_EXEC 0100755u
#define UNIDIFF_MODE_LINK 0120000u

/* One side of a change. All pointers are borrowed. */
struct unidiff_side {
	bool present;        /* false: the path does not exist (as a file/symlink) here */
	unsigned mode;       /* UNIDIFF_MODE_* */
	const char *data;    /* content, or a symlink's target; NULL when len is 0 */
	size_t len;          /* bytes at data (a prefix when too_large) */
	bool too_large;      /* data is only a prefix: the whole was over the limit */
};

/* git's test: a NUL byte in the first UNIDIFF_BINARY_PROBE bytes. */
bool unidiff_is_binary(const char *data, size_t len);

/* git's mode for an st_mode: symlink, executable (owner x) or plain file. */
unsigned unidiff_git_mode(unsigned st_mode);

/*
 * Write the patch that turns side a into side b of path (bytes, relative,
 * no NUL). Writes nothing when the sides are equal. A symlink replacing a
 * file (or the reverse) is a deletion then an addition, as git writes it.
 * Returns 0; 1 when the content could not be put in the patch (binary or
 * too large: appliers leave that file as it is); -ENOMEM, or -EIO when
 * writing to out failed.
 */
int unidiff_file(FILE *out, const char *path, const struct unidiff_side *a,
		 const struct unidiff_side *b);

/*
 * Just the hunks ("@@ ... @@" onwards) turning a into b, with context
 * lines of context. 0, -E2BIG (a side over UNIDIFF_MAX_LINES), -ENOMEM or -EIO.
 */
int unidiff_hunks(FILE *out, const char *a, size_t alen, const char *b, size_t blen,
		  unsigned context);

#endif
