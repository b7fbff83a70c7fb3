/*
 * The walk of a snapshot: list every directory of the workspace with the
 * owner's credentials (openat2 beneath the workspace fd, no symlinks
 * followed; entries stat'ed with fstatat relative to the directory fd,
 * without following), match regular files against the stat cache, and hash
 * the tree of every directory whose files all matched, bottom up, while the
 * walk goes on.
 *
 * Directories are a shared stack that every walking thread pops from and
 * pushes subdirectories to, so the work splits evenly whatever the shape of
 * the tree (one big subdirectory used to be walked by one thread). A
 * directory is read with getdents64 into the walker's 64 KiB buffer and its
 * names go into one arena, not a malloc per entry.
 *
 * Nothing here writes the store: the walking threads run with the owner's
 * filesystem credentials, so write_tree() (create.c) stores trees hashed
 * here on the daemon's side, encoding them again only when the store lacks
 * them (after a no-change walk it has them all).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create-int.h"
#include "log.h"

#define REL_MAX (PATH_MAX * 2)
#define DENTS_BUF (64 * 1024)
#define NAME_MAX_TREE 255       /* tree.c's limit; FUSE can list names up to 1024 bytes */
#define CHARGE_BATCH 256        /* entries a walker charges at once (budget.c) */

struct walkq {
	struct cctx *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fdir **stk;       /* directories to list */
	size_t n, cap;
	int active;              /* directories being listed */
	struct snap_stats st;    /* summed over walkers */
};

struct walker {
	struct cctx *c;
	struct walkq *q;
	struct statcursor cur;   /* where in the stat cache the next file probably is */
	struct snap_stats st;
	uint64_t pend_n, pend_b; /* walked, not yet charged to the budget */
	char rel[REL_MAX];
	_Alignas(8) char dents[DENTS_BUF];
};

static uint8_t type_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return TT_REG;
	case S_IFDIR: return TT_DIR;
	case S_IFLNK: return TT_SYMLINK;
	case S_IFIFO: return TT_FIFO;
	case S_IFSOCK: return TT_SOCK;
	case S_IFCHR: return TT_CHR;
	default: return TT_BLK;
	}
}

void fdir_free(struct fdir *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->ents[i].rel);
		free(d->ents[i].link);
		fdir_free(d->ents[i].dir);
	}
	free(d->ents);
	free(d->names);
	free(d->rel);
	free(d->enc);
	free(d);
}

int fdir_encode(struct cctx *c, struct fdir *d, uint64_t *charged)
{
	struct tree_ent *te;
	uint64_t enclen = 1;
	size_t n = 0;
	int rc;

	/* The sort array and the encoding, and as much again for the
	 * compressed copy obj_put() may make of it. */
	for (size_t i = 0; i < d->n; i++)
		enclen += TREE_ENT_FIXED + d->ents[i].te.nlen;
	*charged = budget_malloc_cost(d->n * sizeof(*te)) + 2 * budget_malloc_cost(enclen);
	if ((rc = budget_charge(c, 0, *charged)) < 0)
		return rc;
	if ((te = malloc((d->n ? d->n : 1) * sizeof(*te))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++)
		if (!d->ents[i].vanished)
			te[n++] = d->ents[i].te;
	free(d->enc);
	d->enc = NULL;
	rc = tree_encode(te, n, &d->enc, &d->enclen);
	free(te);
	if (rc == 0)
		rc = obj_hash(OBJ_TREE, d->enc, d->enclen, d->hash);
	d->hashed = rc == 0;
	return rc;
}

/*
 * Room for one more entry and nlen + 1 more name bytes: *out, zeroed. The
 * arrays are charged to the budget by capacity, before they grow.
 */
static int fdir_add(struct cctx *c, struct fdir *d, size_t *names_len, size_t *names_cap,
		    size_t nlen, struct fent **out)
{
	int rc;

	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 32;
		if ((rc = budget_charge(c, 0, (nc - d->cap) * sizeof(struct fent))) < 0)
			return rc;
		struct fent *ne = realloc(d->ents, nc * sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		d->ents = ne;
		d->cap = nc;
	}
	if (*names_len + nlen + 1 > *names_cap) {
		size_t nc = *names_cap ? *names_cap * 2 : 1024;
		while (nc < *names_len + nlen + 1)
			nc *= 2;
		if ((rc = budget_charge(c, 0, nc - *names_cap)) < 0)
			return rc;
		char *nn = realloc(d->names, nc);
		if (nn == NULL)
			return -ENOMEM;
		d->names = nn;
		*names_cap = nc;
	}
	memset(&d->ents[d->n], 0, sizeof(d->ents[0]));
	*out = &d->ents[d->n++];
	return 0;
}

/* Charge what this walker has walked since its last charge. */
static int walker_charge(struct walker *w)
{
	int rc = budget_charge(w->c, w->pend_n, w->pend_b);

	w->pend_n = 0;
	w->pend_b = 0;
	return rc;
}

/* Fill e from one directory entry (w->rel[0..rlen) is its path). */
static int walk_entry(struct walker *w, int dfd, const char *name, size_t rlen, struct fent *e)
{
	struct cctx *c = w->c;
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) < 0)
		return -errno;
	e->te.type = type_of(st.st_mode);
	e->te.mode = st.st_mode;
	e->te.mtime_ns = snap_ts_ns(&st.st_mtim);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->ctime_ns = snap_ts_ns(&st.st_ctim);
	switch (e->te.type) {
	case TT_REG: {
		struct statent now = {
			.path = w->rel, .plen = rlen, .dev = e->dev, .ino = e->ino,
			.size = (uint64_t)st.st_size, .mtime_ns = e->te.mtime_ns,
			.ctime_ns = e->ctime_ns,
		};
		e->te.size = (uint64_t)st.st_size;
		w->st.files++;
		w->st.bytes += (uint64_t)st.st_size;
		if (statcache_match(c->cache, &w->cur, &now)) {
			memcpy(e->te.hash, now.hash, SNAP_HASH_LEN);
			return 0;
		}
		e->rel = strndup(w->rel, rlen);
		if (e->rel == NULL)
			return -ENOMEM;
		atomic_fetch_add(&c->ctl->files_total, 1);
		atomic_fetch_add(&c->ctl->bytes_total, (uint64_t)st.st_size);
		return 1; /* to read: create.c's collect_queue() lists it after the walk */
	}
	case TT_SYMLINK: {
		char buf[PATH_MAX + 1];
		ssize_t n = readlinkat(dfd, name, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		if ((size_t)n >= sizeof(buf))
			return -ENAMETOOLONG;
		e->link = malloc((size_t)n + 1);
		if (e->link == NULL)
			return -ENOMEM;
		memcpy(e->link, buf, (size_t)n);
		e->link[n] = '\0';
		e->te.size = (uint64_t)n;
		w->st.others++;
		return obj_hash(OBJ_BLOB, e->link, (size_t)n, e->te.hash);
	}
	case TT_DIR:
		w->st.dirs++;
		return 0;
	case TT_CHR:
	case TT_BLK:
		e->te.size = (uint64_t)st.st_rdev;
		w->st.others++;
		return 0;
	default:
		w->st.others++;
		return 0;
	}
}

/* Read the entries of the open directory fd into d. */
static int list_entries(struct walker *w, struct fdir *d, int fd)
{
	struct cctx *c = w->c;
	size_t rlen = d->rlen, names_len = 0, names_cap = 0;
	bool dirty = false;
	ssize_t got = 0;
	int rc = 0;

	memcpy(w->rel, d->rel, rlen + 1);
	while (rc == 0 && !atomic_load(&c->failed) &&
	       (got = getdents64(fd, w->dents, sizeof(w->dents))) > 0) {
		for (size_t off = 0; rc == 0 && off < (size_t)got;) {
			struct dirent64 *de = (struct dirent64 *)(w->dents + off);
			const char *name = de->d_name;
			size_t nlen = strlen(name), clen = rlen ? rlen + 1 + nlen : nlen;
			struct fent *e;

			off += de->d_reclen;
			if (name[0] == '.' && (nlen == 1 || (nlen == 2 && name[1] == '.')))
				continue;
			if (clen + 1 > REL_MAX || nlen > NAME_MAX_TREE) {
				/* (a name over 255 bytes only comes from FUSE: no tree can hold it) */
				rc = -ENAMETOOLONG;
				break;
			}
			if (rlen)
				w->rel[rlen] = '/';
			memcpy(w->rel + (rlen ? rlen + 1 : 0), name, nlen + 1);
			if (exclude_match(c->o->excludes, c->o->nexcludes, w->rel, name))
				continue;
			if (++w->pend_n >= CHARGE_BATCH && (rc = walker_charge(w)) < 0)
				break;
			if ((rc = fdir_add(c, d, &names_len, &names_cap, nlen, &e)) < 0)
				break;
			rc = walk_entry(w, fd, name, clen, e);
			if (e->rel != NULL)
				w->pend_b += budget_malloc_cost(clen + 1);
			if (e->link != NULL)
				w->pend_b += budget_malloc_cost(e->te.size + 1);
			if (rc == -ENOENT) { /* gone between readdir and stat: not in the snapshot */
				free(e->rel);
				free(e->link);
				d->n--;
				rc = 0;
				continue;
			}
			dirty |= rc == 1;
			rc = rc == 1 ? 0 : rc;
			/* The offset for now: the arena may still move. */
			e->te.name = (const char *)(uintptr_t)names_len;
			e->te.nlen = (uint16_t)nlen;
			memcpy(d->names + names_len, name, nlen + 1);
			names_len += nlen + 1;
		}
	}
	if (rc == 0 && got < 0)
		rc = -errno;
	if (rc == 0 && got > 0)
		rc = -ECANCELED; /* another walker failed (a limit): its error stands */
	for (size_t i = 0; i < d->n; i++)
		d->ents[i].te.name = d->names + (uintptr_t)d->ents[i].te.name;
	if (dirty)
		atomic_store(&d->dirty, true);
	if (rc < 0)
		create_fail(c, rc, "walk", w->rel);
	w->rel[rlen] = '\0';
	return rc;
}

/* A subdirectory to list: its own fdir, counted as pending in d. */
static int add_subdir(struct fdir *d, struct fent *e)
{
	struct fdir *s = calloc(1, sizeof(*s));
	size_t nlen = e->te.nlen;

	if (s == NULL)
		return -ENOMEM;
	s->rlen = d->rlen ? d->rlen + 1 + nlen : nlen;
	s->rel = malloc(s->rlen + 1);
	if (s->rel == NULL) {
		free(s);
		return -ENOMEM;
	}
	if (d->rlen) {
		memcpy(s->rel, d->rel, d->rlen);
		s->rel[d->rlen] = '/';
	}
	memcpy(s->rel + (d->rlen ? d->rlen + 1 : 0), e->te.name, nlen + 1);
	s->parent = d;
	s->self = e;
	atomic_init(&s->pending, 1);
	e->dir = s;
	return 0;
}

/*
 * One finished listing (or subdirectory): the last one to finish in a
 * directory hashes its tree, unless something below must be read first,
 * and passes the news up.
 */
static void finish(struct cctx *c, struct fdir *d, bool listed)
{
	while (d != NULL && atomic_fetch_sub(&d->pending, 1) == 1) {
		struct fdir *p = d->parent;
		uint64_t charged = 0;
		int rc;

		if (!listed) {
			/* vanished or unreadable: its entry carries no tree */
		} else if (atomic_load(&d->dirty) || atomic_load(&c->failed)) {
			if (p != NULL)
				atomic_store(&p->dirty, true);
		} else if ((rc = fdir_encode(c, d, &charged)) < 0) {
			create_fail(c, rc, "tree", d->rel);
		} else if (d->self != NULL) {
			memcpy(d->self->te.hash, d->hash, SNAP_HASH_LEN);
		}
		/* write_tree() encodes it again if the store lacks it. */
		free(d->enc);
		d->enc = NULL;
		budget_release(c, charged);
		listed = true;
		d = p;
	}
}

static struct fdir *pop(struct walkq *q)
{
	struct fdir *d = NULL;

	pthread_mutex_lock(&q->mu);
	while (q->n == 0 && q->active > 0 && !atomic_load(&q->c->failed))
		pthread_cond_wait(&q->cv, &q->mu);
	if (q->n > 0 && !atomic_load(&q->c->failed)) {
		d = q->stk[--q->n];
		q->active++;
	}
	pthread_mutex_unlock(&q->mu);
	return d;
}

/* List d, queue its subdirectories, then finish it. */
static void walk_one(struct walker *w, struct fdir *d)
{
	struct cctx *c = w->c;
	struct walkq *q = w->q;
	size_t nsub = 0;
	bool listed = false;
	int fd, rc = 0;

	if (c->ctl->cancel != NULL && atomic_load(c->ctl->cancel)) {
		create_fail(c, -ECANCELED, "walk", d->rel);
		goto out;
	}
	fd = d->rlen == 0 ? openat(c->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) :
			    snap_open_noatime(c->rootfd, d->rel, O_RDONLY | O_DIRECTORY);
	if (d->rlen == 0 && fd < 0)
		fd = -errno;
	if (fd < 0) {
		if (d->self != NULL && fd == -ENOENT) {
			/* Removed between its parent's listing and now: not in the
			 * snapshot, like a file that vanishes before its stat. */
			d->self->vanished = true;
			w->st.dirs--;
		} else if (d->self != NULL && (fd == -EACCES || fd == -EPERM || fd == -ENAMETOOLONG) &&
			   c->o->allow_unreadable) {
			/* (too deep for a path: an agent's chain of directories
			 * must not make restore's safety snapshot impossible) */
			d->self->te.type = TT_UNREADABLE;
			w->st.unreadable++;
		} else {
			create_fail(c, fd, d->self ? "cannot read directory" : "walk", d->rel);
		}
		goto out;
	}
	rc = list_entries(w, d, fd);
	close(fd);
	listed = rc == 0;
	for (size_t i = 0; rc == 0 && i < d->n; i++)
		if (d->ents[i].te.type == TT_DIR && (rc = add_subdir(d, &d->ents[i])) == 0) {
			nsub++;
			/* the listing, its path, its slot on the stack */
			w->pend_b += budget_malloc_cost(sizeof(struct fdir)) +
				     budget_malloc_cost(d->ents[i].dir->rlen + 1) + sizeof(void *);
		}
	if (rc == 0)
		rc = walker_charge(w);
	if (rc < 0) {
		create_fail(c, rc, "walk", d->rel);
		goto out;
	}
	atomic_fetch_add(&d->pending, (int)nsub);
	pthread_mutex_lock(&q->mu);
	if (q->n + nsub > q->cap) {
		size_t nc = q->cap ? q->cap : 256;
		while (nc < q->n + nsub)
			nc *= 2;
		struct fdir **ns = realloc(q->stk, nc * sizeof(*ns));
		if (ns == NULL) {
			rc = -ENOMEM;
		} else {
			q->stk = ns;
			q->cap = nc;
		}
	}
	/* Pushed in reverse so the first entries are popped first. */
	for (size_t i = d->n; rc == 0 && i-- > 0;)
		if (d->ents[i].dir != NULL)
			q->stk[q->n++] = d->ents[i].dir;
	if (nsub > 0)
		pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0)
		create_fail(c, rc, "walk", d->rel);
out:
	finish(c, d, listed);
}

static void *walk_worker(void *arg)
{
	struct walkq *q = arg;
	struct cctx *c = q->c;
	struct walker *w = malloc(sizeof(*w));
	struct fdir *d;
	int rc = w == NULL ? -ENOMEM : creds_user(c->cr);

	if (w != NULL) {
		w->c = c;
		w->q = q;
		w->cur = (struct statcursor){ .shard = -1 };
		memset(&w->st, 0, sizeof(w->st));
		w->pend_n = 0;
		w->pend_b = 0;
	}
	if (rc < 0)
		create_fail(c, rc, "walk: switch credentials", "");
	while (rc == 0 && (d = pop(q)) != NULL) {
		walk_one(w, d);
		pthread_mutex_lock(&q->mu);
		if (--q->active == 0 || atomic_load(&c->failed))
			pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
	}
	if (creds_daemon(c->cr) < 0)
		create_fail(c, -EPERM, "walk: switch credentials back", "");
	pthread_mutex_lock(&q->mu);
	if (rc < 0)
		pthread_cond_broadcast(&q->cv);
	if (w != NULL) {
		q->st.files += w->st.files;
		q->st.dirs += w->st.dirs;
		q->st.others += w->st.others;
		q->st.bytes += w->st.bytes;
		q->st.unreadable += w->st.unreadable;
	}
	pthread_mutex_unlock(&q->mu);
	free(w);
	return NULL;
}

int walk_all(struct cctx *c, struct fdir *root)
{
	struct walkq q = { .c = c };
	pthread_t th[SNAP_MAX_WORKERS];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int n = ncpu < 1 ? 1 : ncpu > SNAP_MAX_WORKERS ? SNAP_MAX_WORKERS : (int)ncpu, started = 0;

	q.stk = malloc(256 * sizeof(*q.stk));
	if (q.stk == NULL)
		return -ENOMEM;
	q.cap = 256;
	q.stk[q.n++] = root;
	atomic_init(&root->pending, 1);
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	for (int i = 1; i < n; i++) {
		if (pthread_create(&th[i], NULL, walk_worker, &q) != 0)
			break;
		started++;
	}
	walk_worker(&q);
	for (int i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	free(q.stk);
	c->st = q.st;
	if (atomic_load(&c->failed))
		return c->res->err ? c->res->err : -EIO;
	return 0;
}
