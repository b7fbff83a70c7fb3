/*
 * Store maintenance: delete a snapshot, verify (re-hash every object every
 * snapshot reaches, check the stat cache points only at present objects,
 * count unreferenced objects), and gc with retention.
 *
 * gc runs under the store's exclusive lock (no snapshot is being written),
 * deletes the snapshot rows retention drops, computes the reachable set,
 * first removes stat-cache rows naming unreachable objects (committed), and
 * only then drops unreachable objects: packs (packgc.c) and loose objects of
 * older stores with leftover temp files. A crash in between leaves
 * unreferenced objects, never a reference to a missing one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "snap-int.h"

int snap_delete_run(struct snap_repo *r, const char *id, struct snap_result *res)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(r->db, "DELETE FROM snap_snapshots WHERE id = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snap_set_err(res, -EIO, "cannot delete snapshot %s", id);
		return -EIO;
	}
	if (sqlite3_changes(r->db) == 0) {
		snap_set_err(res, -ENOENT, "no snapshot %s", id);
		return -ENOENT;
	}
	return 0;
}

struct walk {
	struct snap_repo *r;
	struct hset *seen;
	bool verify;
	struct snap_verify_stats *vs;
};

static int note_bad(struct walk *w, int rc)
{
	if (w->vs == NULL)
		return rc == -ENOMEM ? rc : 0; /* gc: tolerate damage, keep what it can */
	if (rc == -ENOENT)
		w->vs->missing++;
	else if (rc == -EBADMSG)
		w->vs->corrupt++;
	else
		return rc;
	return 0;
}

/* Mark h (and, for files and trees, what it names) reachable. */
static int mark(struct walk *w, const uint8_t *h, enum obj_type want)
{
	uint8_t *d = NULL;
	size_t l;
	enum obj_type t;
	int rc = hset_add(w->seen, h);

	if (rc <= 0)
		return rc;
	if (!w->verify && want == OBJ_BLOB)
		return 0; /* gc needs no blob content */
	rc = obj_get(w->r, h, want, w->verify, &d, &l, &t);
	if (rc < 0)
		return note_bad(w, rc);
	if (w->vs) {
		w->vs->objects++;
		w->vs->bytes += l;
	}
	if (t == OBJ_FILE) {
		if (l % 40 != 0)
			rc = note_bad(w, -EBADMSG);
		for (size_t off = 0; rc == 0 && off < l; off += 40)
			rc = mark(w, d + off + 8, OBJ_BLOB);
		free(d);
	} else if (t == OBJ_TREE) {
		struct tree tr;
		rc = tree_decode(d, l, &tr); /* takes d */
		if (rc < 0)
			return note_bad(w, rc);
		for (size_t i = 0; rc == 0 && i < tr.n; i++) {
			const struct tree_ent *e = &tr.ents[i];
			if (e->type == TT_DIR)
				rc = mark(w, e->hash, OBJ_TREE);
			else if (e->type == TT_REG)
				rc = mark(w, e->hash, 0);
			else if (e->type == TT_SYMLINK)
				rc = mark(w, e->hash, OBJ_BLOB);
		}
		tree_release(&tr);
	} else {
		free(d);
	}
	return rc;
}

static int mark_all(struct walk *w, struct snap_result *res, uint64_t *nsnaps)
{
	struct snap_info *v;
	size_t n;
	int rc = index_list(w->r->db, NULL, &v, &n);

	if (rc < 0) {
		snap_set_err(res, rc, "cannot read the snapshot index");
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t h[SNAP_HASH_LEN];
		if (rc == 0 && snap_unhex(v[i].root, h) < 0)
			rc = note_bad(w, -EBADMSG);
		else if (rc == 0)
			rc = mark(w, h, OBJ_TREE);
		snap_info_clear(&v[i]);
	}
	free(v);
	*nsnaps = n;
	return rc;
}

/* Call fn for every object file (and temp file) in the store. */
static int scan_objects(struct snap_repo *r,
			int (*fn)(struct snap_repo *r, int dfd, const char *name, bool tmp,
				  const uint8_t *h, void *arg),
			void *arg)
{
	int rc = 0;

	for (int i = 0; i < 256 && rc == 0; i++) {
		char sub[3];
		DIR *dp;
		struct dirent *de;
		int fd;

		snprintf(sub, sizeof(sub), "%02x", i);
		fd = openat(r->objfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue; /* stores with packs only have no fan-out dirs */
		if (fd < 0)
			return -errno;
		dp = fdopendir(fd);
		if (dp == NULL) {
			close(fd);
			return -errno;
		}
		while (rc == 0 && (de = readdir(dp)) != NULL) {
			char hex[SNAP_HEX_LEN + 1];
			uint8_t h[SNAP_HASH_LEN];
			if (de->d_name[0] == '.')
				continue;
			if (strstr(de->d_name, ".tmp-") != NULL) {
				rc = fn(r, dirfd(dp), de->d_name, true, NULL, arg);
				continue;
			}
			if (strlen(de->d_name) != SNAP_HEX_LEN - 2)
				continue;
			memcpy(hex, sub, 2);
			memcpy(hex + 2, de->d_name, SNAP_HEX_LEN - 2 + 1);
			if (snap_unhex(hex, h) == 0)
				rc = fn(r, dirfd(dp), de->d_name, false, h, arg);
		}
		closedir(dp);
	}
	return rc;
}

struct scan_arg {
	struct hset *seen;
	uint64_t count, bytes;
	bool unlink;
};

static int scan_fn(struct snap_repo *r, int dfd, const char *name, bool tmp,
		   const uint8_t *h, void *arg)
{
	struct scan_arg *a = arg;
	struct stat st;

	(void)r;
	if (!tmp && hset_has(a->seen, h))
		return 0;
	if (tmp && !a->unlink)
		return 0;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		a->bytes += (uint64_t)st.st_blocks * 512;
	a->count += !tmp;
	if (a->unlink && unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
		log_warn("unlink object %s", name);
		return -errno;
	}
	return 0;
}

static bool cache_ok_present(const uint8_t *h, void *arg)
{
	return obj_exists(arg, h) == 1;
}

static bool cache_ok_reachable(const uint8_t *h, void *arg)
{
	return hset_has(arg, h);
}

int snap_verify_run(struct snap_repo *r, struct snap_result *res)
{
	struct walk w = { .r = r, .verify = true, .vs = &res->verify };
	struct scan_arg sa = { 0 };
	uint64_t badcache = 0;
	int rc;

	if ((rc = repo_lock(r, false)) < 0)
		return rc;
	w.seen = hset_new();
	if (w.seen == NULL)
		return -ENOMEM;
	rc = mark_all(&w, res, &res->verify.snapshots);
	if (rc == 0)
		rc = statcache_filter(r->db, cache_ok_present, r, false, &badcache);
	res->verify.missing += badcache;
	sa.seen = w.seen;
	if (rc == 0)
		rc = scan_objects(r, scan_fn, &sa);
	if (rc == 0)
		rc = packgc_unreferenced(r, w.seen, &sa.count);
	res->verify.unreferenced = sa.count;
	hset_free(w.seen);
	if (rc < 0)
		snap_set_err(res, rc, "verify failed: %s", strerror(-rc));
	else if (res->verify.missing || res->verify.corrupt)
		log_warnx("snapshot store of uid %u: %llu missing, %llu corrupt objects",
			  (unsigned)r->uid, (unsigned long long)res->verify.missing,
			  (unsigned long long)res->verify.corrupt);
	return rc;
}

static int apply_retention(struct snap_repo *r, const struct snap_params *p,
			   struct snap_result *res)
{
	struct snap_info *v;
	size_t n;
	int64_t now = time(NULL);
	int rc;

	if (p->keep_last < 0 && p->keep_within < 0)
		return 0;
	if ((rc = index_list(r->db, NULL, &v, &n)) < 0)
		return rc;
	/* v is oldest first; walk newest first, counting per workspace. */
	for (size_t i = n; rc == 0 && i-- > 0;) {
		int64_t newer = 0;
		for (size_t j = i + 1; j < n; j++)
			newer += strcmp(v[j].workspace, v[i].workspace) == 0;
		bool keep = (p->keep_last >= 0 && newer < p->keep_last) ||
			    (p->keep_within >= 0 && v[i].created >= now - p->keep_within);
		if (!keep && (rc = snap_delete_run(r, v[i].id, res)) == 0)
			res->gc.snapshots_deleted++;
	}
	for (size_t i = 0; i < n; i++)
		snap_info_clear(&v[i]);
	free(v);
	return rc;
}

int snap_gc_run(struct snap_repo *r, const struct snap_params *p, struct snap_result *res)
{
	struct walk w = { .r = r };
	struct scan_arg sa = { .unlink = true };
	uint64_t nsnaps, dropped = 0;
	int rc;

	if ((rc = repo_lock(r, true)) < 0)
		return rc;
	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	rc = apply_retention(r, p, res);
	if (rc == 0 && sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc < 0) {
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		snap_set_err(res, rc, "gc: cannot apply retention");
		return rc;
	}
	w.seen = hset_new();
	if (w.seen == NULL)
		return -ENOMEM;
	rc = mark_all(&w, res, &nsnaps);
	if (rc == 0 && sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc == 0) {
		rc = statcache_filter(r->db, cache_ok_reachable, w.seen, true, &dropped);
		if (sqlite3_exec(r->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
			rc = -EIO;
	}
	sa.seen = w.seen;
	if (rc == 0)
		rc = packgc_run(r, w.seen, &res->gc);
	if (rc == 0)
		rc = scan_objects(r, scan_fn, &sa);
	if (rc == 0 && sa.count > 0 && syncfs(r->objfd) < 0)
		rc = -errno;
	/* Fan-out dirs emptied of loose objects go, so writers stop looking there. */
	for (int i = 0; rc == 0 && r->has_loose && i < 256; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		unlinkat(r->objfd, sub, AT_REMOVEDIR); /* ENOENT, ENOTEMPTY: fine */
	}
	res->gc.objects_deleted += sa.count;
	res->gc.bytes_freed += sa.bytes;
	hset_free(w.seen);
	if (rc < 0)
		snap_set_err(res, rc, "gc failed: %s", strerror(-rc));
	return rc;
}
