/*
 * Restore: take a safety snapshot of the live workspace (with the excludes
 * stored in the snapshot being restored, so excluded paths are in neither
 * tree and are never touched), then walk the two trees together and rewrite
 * only what differs: files and symlinks through a temp name + renameat in
 * the same directory (batched: see RESTORE_BATCH), then modes and mtimes;
 * remove what the snapshot lacks.
 *
 * Safety (nonod is root, the workspace belongs to an agent): all workspace
 * work runs with the owner's fsuid/fsgid/groups (creds.c); every directory
 * is opened relative to its parent's fd with O_NOFOLLOW|O_DIRECTORY, every
 * create uses O_EXCL|O_NOFOLLOW, renames/unlinks are relative to those fds,
 * and metadata is set on fds or with AT_SYMLINK_NOFOLLOW. A directory swapped
 * for a symlink makes the open fail (ELOOP/ENOTDIR): restore never writes
 * through it. Store objects are read with the daemon's credentials.
 * Depth is no weapon: the safety snapshot records what is too deep to open
 * as unreadable, and removal walks any depth with one directory open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rmtree.h"
#include "snap-int.h"

#define RREL_MAX (PATH_MAX * 2)
/*
 * Files are written to temp names and their renames deferred, with the
 * modes and times of the directories they land in: every RESTORE_BATCH of
 * those, the temp files are fsynced, the renames run, then the directory
 * modes (a read-only directory takes no rename) and times (children first),
 * and the directories are fsynced. A crash leaves old or
 * new content under each name, never an empty file. On ext4 the first fsync
 * commits the journal for the whole batch and the others find little left
 * to do: about two flushes per batch instead of two per file, and unlike
 * syncfs() they never wait for other writers' dirty data.
 */
#define RESTORE_BATCH 128

struct rpend {
	int dfd;                 /* dup of the directory's fd */
	int fd;                  /* the temp file, -1 when not a regular file */
	char *rel;               /* for messages; the name is its last component */
	char tmp[48];            /* "" = set the directory's mode and times instead */
	struct timespec ts;
	mode_t mode;             /* directories: set when chmod */
	bool chmod, times;       /* directories: what to set */
};

enum sel { SEL_NONE = 0, SEL_ANCESTOR, SEL_INSIDE };

struct rctx {
	struct snap_repo *r;
	const struct snap_creds *cr;
	struct snap_result *res;
	char *const *excludes;
	size_t nexcludes;
	char **paths;
	size_t npaths;
	uint64_t seq;
	struct rpend *pend;      /* deferred renames and directory times */
	size_t npend;
	char rel[RREL_MAX];
};

static int rfail(struct rctx *c, int err, const char *what)
{
	char p[600];

	snap_path_print(c->rel, p, sizeof(p));
	snap_set_err(c->res, err, "restore: %s %s: %s", what, p[0] ? p : ".", strerror(-err));
	return err;
}

static enum sel selected(const struct rctx *c, size_t rlen)
{
	enum sel s = SEL_NONE;

	if (c->npaths == 0)
		return SEL_INSIDE;
	for (size_t i = 0; i < c->npaths; i++) {
		size_t pl = strlen(c->paths[i]);
		if (rlen >= pl && memcmp(c->rel, c->paths[i], pl) == 0 &&
		    (rlen == pl || c->rel[pl] == '/'))
			return SEL_INSIDE;
		if (pl > rlen && memcmp(c->rel, c->paths[i], rlen) == 0 &&
		    (rlen == 0 || c->paths[i][rlen] == '/'))
			s = SEL_ANCESTOR;
	}
	return s;
}

static size_t rel_push(struct rctx *c, size_t rlen, const char *name, size_t nlen)
{
	return snap_path_push(c->rel, sizeof(c->rel), rlen, name, nlen);
}

/* Store access needs the daemon's credentials; workspace access the user's. */
static int get_obj(struct rctx *c, const uint8_t *h, enum obj_type want, uint8_t **d,
		   size_t *l, enum obj_type *t)
{
	int rc = creds_daemon(c->cr);

	if (rc == 0)
		rc = obj_get(c->r, h, want, false, d, l, t);
	if (creds_user(c->cr) < 0) {
		free(*d);
		*d = NULL;
		return -EPERM;
	}
	return rc;
}

static int load_tree(struct rctx *c, const uint8_t *h, struct tree *t)
{
	uint8_t *d = NULL;
	size_t l;
	int rc;

	memset(t, 0, sizeof(*t));
	if (h == NULL)
		return 0;
	rc = get_obj(c, h, OBJ_TREE, &d, &l, NULL);
	return rc < 0 ? rc : tree_decode(d, l, t);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
	return 0;
}

#define HOLE_BLOCK 4096u

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Write n bytes at *off, leaving a hole for every all-zero block (4 KiB of
 * the file, aligned): a chunk with a few bytes of data in a hole restores
 * as those blocks, like cp --sparse=always. *off moves on.
 */
static int put_bytes(int fd, const uint8_t *p, size_t n, uint64_t *off)
{
	size_t i = 0, j, k;
	int rc = 0;

	while (i < n && rc == 0) {
		k = HOLE_BLOCK - (size_t)((*off + i) % HOLE_BLOCK);
		if (k > n - i)
			k = n - i;
		if (all_zero(p + i, k)) {
			i += k;
			continue;
		}
		for (j = i + k; j < n; j += k) {
			k = n - j < HOLE_BLOCK ? n - j : HOLE_BLOCK;
			if (all_zero(p + j, k))
				break;
		}
		rc = pwrite_all(fd, p + i, j - i, *off + i);
		i = j;
	}
	*off += n;
	return rc;
}

/*
 * Write e's content into fd, a new empty file. Zero chunks (chunk.c), known
 * by hash without loading them, and all-zero blocks of other chunks are
 * seeked over; the final ftruncate() gives the file its size, so holes
 * restore as holes. Content whose length is not e->size is a corrupt store.
 */
static int write_content(struct rctx *c, int fd, const struct tree_ent *e)
{
	const struct cdc_zero *z = NULL;
	uint8_t *d = NULL;
	size_t l;
	uint64_t off = 0;
	enum obj_type t;
	int rc = get_obj(c, e->hash, 0, &d, &l, &t);

	if (rc < 0)
		return rc;
	if (cdc_zero_get(&z) < 0)
		z = NULL; /* then the zero chunk is loaded and found all zero below */
	if (t == OBJ_BLOB) {
		rc = put_bytes(fd, d, l, &off);
	} else if (t == OBJ_FILE && l % 40 == 0) {
		for (size_t i = 0; i < l && rc == 0; i += 40) {
			uint64_t clen = 0;
			uint8_t *chunk = NULL;
			size_t cl;
			for (int k = 0; k < 8; k++)
				clen |= (uint64_t)d[i + k] << (8 * k);
			if (clen > CDC_MAX || off + clen > e->size) {
				rc = -EBADMSG;
				break;
			}
			if (z != NULL && clen == z->len &&
			    memcmp(d + i + 8, z->hash, SNAP_HASH_LEN) == 0) {
				off += clen;
				continue;
			}
			rc = get_obj(c, d + i + 8, OBJ_BLOB, &chunk, &cl, NULL);
			if (rc == 0 && cl != clen)
				rc = -EBADMSG;
			if (rc == 0)
				rc = put_bytes(fd, chunk, cl, &off);
			free(chunk);
		}
	} else {
		rc = -EBADMSG;
	}
	free(d);
	if (rc == 0 && off != e->size)
		rc = -EBADMSG;
	if (rc == 0 && ftruncate(fd, (off_t)off) < 0)
		rc = -errno;
	return rc;
}

/* Apply the deferred renames, then directory times (apply false, or on an
 * error: drop the temps instead). */
static int rp_flush(struct rctx *c, bool apply)
{
	bool renames = false;
	int rc = apply ? 0 : -ECANCELED;

	for (size_t i = 0; i < c->npend; i++)
		renames |= c->pend[i].tmp[0] != '\0';
	for (size_t i = 0; rc == 0 && renames && i < c->npend; i++)
		if (c->pend[i].fd >= 0 && fsync(c->pend[i].fd) < 0)
			rc = -errno;
	for (size_t i = 0; i < c->npend; i++) {
		struct rpend *p = &c->pend[i];
		const char *slash = strrchr(p->rel, '/'), *name = slash ? slash + 1 : p->rel;
		if (p->tmp[0] == '\0' || rc < 0)
			continue;
		if (renameat(p->dfd, p->tmp, p->dfd, name) < 0) {
			rc = -errno;
			snprintf(c->rel, sizeof(c->rel), "%s", p->rel);
			rfail(c, rc, "rename into place");
		}
		p->tmp[0] = '\0';
	}
	for (size_t i = 0; rc == 0 && i < c->npend; i++) {
		struct rpend *p = &c->pend[i];
		struct timespec ts[2] = { p->ts, p->ts };
		if (p->tmp[0] != '\0')
			continue;
		if (p->chmod && fchmod(p->dfd, p->mode) < 0)
			rc = -errno;
		else if (p->times && futimens(p->dfd, ts) < 0)
			rc = -errno;
		if (rc < 0) {
			snprintf(c->rel, sizeof(c->rel), "%s", p->rel);
			rfail(c, rc, "set mode and times of");
		}
	}
	for (size_t i = 0; rc == 0 && i < c->npend; i++)
		if (fsync(c->pend[i].dfd) < 0)
			rc = -errno;
	for (size_t i = 0; i < c->npend; i++) {
		if (c->pend[i].tmp[0] != '\0')
			unlinkat(c->pend[i].dfd, c->pend[i].tmp, 0);
		if (c->pend[i].fd >= 0)
			close(c->pend[i].fd);
		close(c->pend[i].dfd);
		free(c->pend[i].rel);
	}
	c->npend = 0;
	return rc;
}

/* Defer a rename of tmp (written through fd, or -1; taken either way) to
 * the current entry (c->rel) in dfd, or (tmp NULL) setting dfd's own mode
 * (when chmod) and times (when times) once the renames into it are done. */
static int rp_add(struct rctx *c, int dfd, const char *tmp, int fd, struct timespec ts,
		  bool chmod, mode_t mode, bool times)
{
	struct rpend *p;
	int rc;

	if (c->pend == NULL && (c->pend = calloc(RESTORE_BATCH, sizeof(*c->pend))) == NULL) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	if (c->npend == RESTORE_BATCH && (rc = rp_flush(c, true)) < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	p = &c->pend[c->npend];
	p->fd = fd;
	p->ts = ts;
	p->chmod = chmod;
	p->mode = mode;
	p->times = times;
	p->tmp[0] = '\0';
	if (tmp != NULL)
		snprintf(p->tmp, sizeof(p->tmp), "%s", tmp);
	if ((p->rel = strdup(c->rel)) == NULL ||
	    (p->dfd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) < 0) {
		rc = p->rel == NULL ? -ENOMEM : -errno;
		free(p->rel);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	c->npend++;
	return 0;
}

static void tmp_name(struct rctx *c, char *buf, size_t len)
{
	snprintf(buf, len, ".nono-restore-%ld-%llu", (long)getpid(),
		 (unsigned long long)c->seq++);
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec t = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec--;
	}
	return t;
}

/* Create entry e as name in dfd, replacing a non-directory of that name. */
static int put_entry(struct rctx *c, int dfd, const struct tree_ent *e, const char *name)
{
	char tmp[64];
	struct timespec ts[2];
	int rc = 0, fd;

	ts[0] = ts[1] = ns_ts(e->mtime_ns);
	tmp_name(c, tmp, sizeof(tmp));
	fd = -1;
	switch (e->type) {
	case TT_REG:
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return rfail(c, -errno, "create");
		rc = write_content(c, fd, e);
		if (rc == 0 && fchmod(fd, e->mode & 07777) < 0)
			rc = -errno;
		if (rc == 0 && futimens(fd, ts) < 0)
			rc = -errno;
		if (rc < 0) {
			close(fd);
			fd = -1;
		}
		break;
	case TT_SYMLINK: {
		uint8_t *d = NULL;
		size_t l;
		rc = get_obj(c, e->hash, OBJ_BLOB, &d, &l, NULL);
		if (rc == 0 && (l == 0 || memchr(d, '\0', l) != NULL))
			rc = -EBADMSG;
		if (rc == 0) {
			char *target = strndup((char *)d, l);
			rc = target == NULL ? -ENOMEM : symlinkat(target, dfd, tmp) < 0 ? -errno : 0;
			free(target);
		}
		free(d);
		if (rc == 0 && utimensat(dfd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		break;
	}
	case TT_FIFO:
	case TT_SOCK:
		if (mknodat(dfd, tmp, (e->type == TT_FIFO ? S_IFIFO : S_IFSOCK) | (e->mode & 07777), 0) < 0)
			return rfail(c, -errno, "mknod");
		if (utimensat(dfd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		break;
	default:
		/* Devices need CAP_MKNOD, which the owner's credentials do not carry. */
		log_info("restore: not recreating device or unreadable entry");
		return 0;
	}
	if (rc == 0)
		rc = rp_add(c, dfd, tmp, fd, ts[0], false, 0, false); /* takes fd */
	if (rc < 0) {
		unlinkat(dfd, tmp, 0);
		return rfail(c, rc, "write");
	}
	return 0;
}

/* rmtree_at's keep: excluded entries stay (see exclude.c). */
static bool rm_excluded(void *arg, const char *path, const char *name)
{
	const struct rctx *c = arg;

	/* beyond what a path can name, no rule can match either */
	return path != NULL && exclude_match(c->excludes, c->nexcludes, path, name);
}

static void rm_failed(void *arg, int err, const char *what, const char *path)
{
	(void)path; /* it is c->rel */
	rfail(arg, err, what);
}

/*
 * Remove name in dfd (rlen: its path in c->rel) and everything below it
 * but excluded entries, and the directories that lead to them. The shared
 * remover (rmtree.h) walks any depth with one directory open, never
 * follows a symlink, and checks ".." by (dev, ino) on the way up: a
 * directory moved meanwhile fails the restore instead of leading the
 * removal outside the workspace.
 */
static int remove_entry(struct rctx *c, int dfd, const char *name, size_t rlen)
{
	struct rmtree_opts o = {
		.keep = rm_excluded, .fail = rm_failed, .arg = c,
		.path = c->rel, .path_size = sizeof(c->rel), .path_len = rlen,
	};

	return rmtree_at(dfd, name, &o);
}

static int restore_dir(struct rctx *c, int dfd, size_t rlen, const uint8_t *tgt,
		       const uint8_t *live, bool *changed);

/* Bring directory entry y (target) into place where x (live) may be. */
static int restore_subdir(struct rctx *c, int dfd, const struct tree_ent *x,
			  const struct tree_ent *y, size_t clen, enum sel s, bool *changed)
{
	char name[256];
	struct timespec ts[2];
	bool sub_changed = false;
	int fd, rc;

	memcpy(name, y->name, y->nlen);
	name[y->nlen] = '\0';
	if (x == NULL) {
		if (mkdirat(dfd, name, 0700) < 0)
			return rfail(c, -errno, "mkdir");
		*changed = true;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return rfail(c, -errno, "open directory");
	rc = restore_dir(c, fd, clen, y->hash, x ? x->hash : NULL, &sub_changed);
	if (rc == 0 && s == SEL_INSIDE) {
		/* After the renames into it: they change its times, and a mode
		 * without write permission would refuse them. */
		bool set_mode = x == NULL || (x->mode & 07777) != (y->mode & 07777);
		bool times = sub_changed || x == NULL || x->mtime_ns != y->mtime_ns;
		ts[0] = ts[1] = ns_ts(y->mtime_ns);
		if ((set_mode || times) &&
		    (rc = rp_add(c, fd, NULL, -1, ts[0], set_mode, y->mode & 07777, times)) < 0)
			rfail(c, rc, "set mode and times of");
	}
	close(fd);
	return rc;
}

static int restore_pair(struct rctx *c, int dfd, const struct tree_ent *x,
			const struct tree_ent *y, size_t rlen, bool *changed)
{
	const struct tree_ent *e = y ? y : x;
	char name[256];
	size_t clen = rel_push(c, rlen, e->name, e->nlen);
	enum sel s;
	int rc = 0;

	if (clen == 0)
		return rfail(c, -ENAMETOOLONG, "path");
	memcpy(name, e->name, e->nlen);
	name[e->nlen] = '\0';
	s = selected(c, clen);
	if (s == SEL_NONE || (y == NULL && s != SEL_INSIDE))
		goto out;
	if (y == NULL) {
		rc = remove_entry(c, dfd, name, clen);
		if (rc == 0)
			rc = snap_changes_add(c->res, c->rel, SNAP_REMOVED);
		*changed = true;
		goto out;
	}
	if (x != NULL && x->type != y->type) {
		if ((rc = remove_entry(c, dfd, name, clen)) < 0)
			goto out;
		rc = snap_changes_add(c->res, c->rel, SNAP_TYPE_CHANGED);
		*changed = true;
		x = NULL;
		if (rc < 0)
			goto out;
	} else if (x == NULL && s == SEL_INSIDE) {
		if ((rc = snap_changes_add(c->res, c->rel, SNAP_ADDED)) < 0)
			goto out;
	}
	if (y->type == TT_DIR) {
		if (x == NULL || memcmp(x->hash, y->hash, SNAP_HASH_LEN) != 0 ||
		    x->mode != y->mode || x->mtime_ns != y->mtime_ns)
			rc = restore_subdir(c, dfd, x, y, clen, s, changed);
		goto out;
	}
	if (s != SEL_INSIDE || y->type == TT_UNREADABLE)
		goto out;
	if (x == NULL || memcmp(x->hash, y->hash, SNAP_HASH_LEN) != 0 || x->mode != y->mode ||
	    ((y->type == TT_CHR || y->type == TT_BLK) && x->size != y->size)) {
		if (x != NULL && (rc = snap_changes_add(c->res, c->rel, SNAP_MODIFIED)) < 0)
			goto out;
		rc = put_entry(c, dfd, y, name);
		*changed = true;
	} else if (x->mtime_ns != y->mtime_ns) {
		struct timespec ts[2] = { ns_ts(y->mtime_ns), ns_ts(y->mtime_ns) };
		if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
			rc = rfail(c, -errno, "utimes");
	}
out:
	c->rel[rlen] = '\0';
	return rc;
}

static int restore_dir(struct rctx *c, int dfd, size_t rlen, const uint8_t *tgt,
		       const uint8_t *live, bool *changed)
{
	struct tree tt, tl;
	size_t i = 0, j = 0;
	int rc;

	if ((rc = load_tree(c, tgt, &tt)) < 0)
		return rfail(c, rc, "read snapshot tree of");
	if ((rc = load_tree(c, live, &tl)) < 0) {
		tree_release(&tt);
		return rfail(c, rc, "read safety tree of");
	}
	while (rc == 0 && (i < tt.n || j < tl.n)) {
		int cmp = i >= tt.n ? 1 : j >= tl.n ? -1 :
			  tree_name_cmp(tt.ents[i].name, tt.ents[i].nlen, tl.ents[j].name, tl.ents[j].nlen);
		if (cmp < 0)
			rc = restore_pair(c, dfd, NULL, &tt.ents[i++], rlen, changed);
		else if (cmp > 0)
			rc = restore_pair(c, dfd, &tl.ents[j++], NULL, rlen, changed);
		else
			rc = restore_pair(c, dfd, &tl.ents[j++], &tt.ents[i++], rlen, changed);
	}
	tree_release(&tt);
	tree_release(&tl);
	return rc;
}

/* "./a//b/" -> "a/b"; NULL for "..", absolute escapes or empty results. */
static char *norm_path(const char *p)
{
	char *out = malloc(strlen(p) + 1), *o = out;

	if (out == NULL)
		return NULL;
	while (*p) {
		const char *s = p;
		size_t l;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		while (*p == '/')
			p++;
		if (l == 0 || (l == 1 && s[0] == '.'))
			continue;
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			free(out);
			return NULL;
		}
		if (o != out)
			*o++ = '/';
		memcpy(o, s, l);
		o += l;
	}
	*o = '\0';
	if (o == out) {
		free(out);
		return NULL;
	}
	return out;
}

int snap_restore_run(struct snap_repo *r, const struct snap_creds *cr,
		     const struct snap_params *p, struct job_ctl *ctl, struct snap_result *res)
{
	struct snap_info target = { 0 }, safety = { 0 };
	struct create_opts co = { 0 };
	struct rctx *c = calloc(1, sizeof(*c));
	uint8_t th[SNAP_HASH_LEN], lh[SNAP_HASH_LEN];
	char label[64];
	struct stat st;
	bool changed = false;
	int64_t t0 = 0;
	int rc, rootfd = -1;

	if (c == NULL)
		return -ENOMEM;
	rc = p->snapshot ? index_get_snapshot(r->db, p->snapshot, &target) : -ENOENT;
	if (rc < 0) {
		snap_set_err(res, rc, "no snapshot %s", p->snapshot ? p->snapshot : "(none)");
		goto out;
	}
	c->r = r;
	c->cr = cr;
	c->res = res;
	c->excludes = target.excludes;
	c->nexcludes = target.nexcludes;
	if (p->npaths > 0 && (c->paths = calloc(p->npaths, sizeof(char *))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->npaths; i++) {
		if ((c->paths[i] = norm_path(p->paths[i])) == NULL) {
			rc = -EINVAL;
			snap_set_err(res, rc, "invalid path in paths[%zu]: empty or contains ..", i);
			goto out;
		}
		c->npaths++;
	}
	snprintf(label, sizeof(label), "safety: before restore of %s", target.id);
	co.workspace = target.workspace;
	co.label = label;
	co.excludes = target.excludes;
	co.nexcludes = target.nexcludes;
	co.allow_unreadable = true; /* such files differ from the target and get rewritten */
	co.commit = true;
	co.max_entries = p->max_entries; /* the safety snapshot is bounded like any other */
	co.max_meta_bytes = p->max_meta_bytes;
	rc = snap_create_run(r, cr, &co, ctl, res, &safety);
	if (rc < 0)
		goto out;
	t0 = snap_now_ns();
	if (p->restore_hook != NULL)
		p->restore_hook(p->restore_hook_arg);
	if ((rc = snap_unhex(target.root, th)) < 0 || (rc = snap_unhex(safety.root, lh)) < 0)
		goto out;
	if ((rc = creds_user(cr)) < 0)
		goto out;
	rootfd = open(target.workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	rc = rootfd < 0 ? -errno : fstat(rootfd, &st) < 0 ? -errno : 0;
	if (rc == 0 && cr->active && st.st_uid != cr->uid)
		rc = -EPERM;
	if (rc < 0)
		snap_set_err(res, rc, "cannot open workspace: %s", strerror(-rc));
	else
		rc = restore_dir(c, rootfd, 0, th, lh, &changed);
	log_debug("restore %s: trees compared, files written (%.1f ms)", target.id,
		  (double)(snap_now_ns() - t0) / 1e6);
	if (rc == 0)
		rc = rp_flush(c, true);
	else
		rp_flush(c, false);
	log_debug("restore %s: renamed, durable (%.1f ms)", target.id,
		  (double)(snap_now_ns() - t0) / 1e6);
	if (creds_daemon(cr) < 0 && rc == 0)
		rc = -EPERM;
out:
	if (rc == 0 || safety.id[0] != '\0') {
		/* Report the safety snapshot even on failure: it is the way back. */
		res->snaps = calloc(1, sizeof(*res->snaps));
		if (res->snaps != NULL) {
			res->snaps[0] = safety;
			res->nsnaps = 1;
			memset(&safety, 0, sizeof(safety));
		}
	}
	if (rc < 0)
		snap_set_err(res, rc, "restore failed: %s", strerror(-rc));
	if (rootfd >= 0)
		close(rootfd);
	for (size_t i = 0; i < c->npaths; i++)
		free(c->paths[i]);
	free(c->paths);
	free(c->pend);
	free(c);
	snap_info_clear(&safety);
	snap_info_clear(&target);
	return rc;
}
