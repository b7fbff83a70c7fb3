/*
 * Diff of two trees: a merge of sorted entries, descending only into
 * directories whose hashes differ (equal subtrees are skipped unread).
 * Everything under an added or removed directory is listed too. Content
 * (hash), type and permission bits count; mtimes alone do not.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "snap-int.h"

#define DIFF_REL_MAX (PATH_MAX * 2)

struct dctx {
	struct snap_repo *r;
	struct snap_result *res;
	char rel[DIFF_REL_MAX];
};

static int diff_rec(struct dctx *d, const uint8_t *a, const uint8_t *b, size_t rlen);

static size_t rel_push(struct dctx *d, size_t rlen, const char *name, size_t nlen)
{
	return snap_path_push(d->rel, sizeof(d->rel), rlen, name, nlen);
}

static int one_side(struct dctx *d, const struct tree_ent *e, size_t rlen, bool added)
{
	size_t clen = rel_push(d, rlen, e->name, e->nlen);
	int rc;

	if (clen == 0)
		return -ENAMETOOLONG;
	rc = snap_changes_add(d->res, d->rel, added ? SNAP_ADDED : SNAP_REMOVED);
	if (rc == 0 && e->type == TT_DIR)
		rc = added ? diff_rec(d, NULL, e->hash, clen) : diff_rec(d, e->hash, NULL, clen);
	d->rel[rlen] = '\0';
	return rc;
}

static int both(struct dctx *d, const struct tree_ent *x, const struct tree_ent *y, size_t rlen)
{
	size_t clen = rel_push(d, rlen, x->name, x->nlen);
	int rc = 0;

	if (clen == 0)
		return -ENAMETOOLONG;
	if (x->type != y->type) {
		rc = snap_changes_add(d->res, d->rel, SNAP_TYPE_CHANGED);
	} else if (x->type == TT_DIR) {
		if ((x->mode & 07777) != (y->mode & 07777))
			rc = snap_changes_add(d->res, d->rel, SNAP_MODIFIED);
		if (rc == 0 && memcmp(x->hash, y->hash, SNAP_HASH_LEN) != 0)
			rc = diff_rec(d, x->hash, y->hash, clen);
	} else if (memcmp(x->hash, y->hash, SNAP_HASH_LEN) != 0 || x->mode != y->mode ||
		   ((x->type == TT_CHR || x->type == TT_BLK) && x->size != y->size)) {
		rc = snap_changes_add(d->res, d->rel, SNAP_MODIFIED);
	}
	d->rel[rlen] = '\0';
	return rc;
}

static int diff_rec(struct dctx *d, const uint8_t *a, const uint8_t *b, size_t rlen)
{
	struct tree ta = { 0 }, tb = { 0 };
	size_t i = 0, j = 0;
	int rc = 0;

	if (a != NULL && b != NULL && memcmp(a, b, SNAP_HASH_LEN) == 0)
		return 0;
	if (a != NULL && (rc = tree_load(d->r, a, &ta)) < 0)
		return rc;
	if (b != NULL && (rc = tree_load(d->r, b, &tb)) < 0) {
		tree_release(&ta);
		return rc;
	}
	while (rc == 0 && (i < ta.n || j < tb.n)) {
		int cmp = i >= ta.n ? 1 : j >= tb.n ? -1 :
			  tree_name_cmp(ta.ents[i].name, ta.ents[i].nlen, tb.ents[j].name, tb.ents[j].nlen);
		if (cmp < 0)
			rc = one_side(d, &ta.ents[i++], rlen, false);
		else if (cmp > 0)
			rc = one_side(d, &tb.ents[j++], rlen, true);
		else
			rc = both(d, &ta.ents[i++], &tb.ents[j++], rlen);
	}
	tree_release(&ta);
	tree_release(&tb);
	return rc;
}

int snap_diff_trees(struct snap_repo *r, const uint8_t *a, const uint8_t *b,
		    struct snap_result *res)
{
	struct dctx *d = malloc(sizeof(*d));
	int rc;

	if (d == NULL)
		return -ENOMEM;
	d->r = r;
	d->res = res;
	d->rel[0] = '\0';
	rc = diff_rec(d, a, b, 0);
	free(d);
	if (rc < 0)
		snap_set_err(res, rc, "diff failed: %s", rc == -EBADMSG || rc == -ENOENT ?
			     "store object missing or corrupt (run verify)" : strerror(-rc));
	return rc;
}
