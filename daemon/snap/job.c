/*
 * The store manager and its jobs: each operation runs in its own thread
 * with its own repo (sqlite connection, fds); progress and completion come
 * back to the libevent loop through a self-pipe, so the loop never blocks on
 * file or database work. Operations that touch a workspace (create, restore,
 * diff to live) are refused with -EBUSY while another one on the same
 * workspace runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "snap-int.h"

/* snap_store_free waits this long for running jobs. */
#define SNAP_STOP_WAIT_S 10

#define PROGRESS_INTERVAL_NS 250000000LL

#define NONO_STR_(x) #x
#define NONO_STR(x) NONO_STR_(x)

struct snap_job {
	struct snap_store *s;
	enum snap_op op;
	struct snap_params p;        /* deep copy */
	char **strs;                 /* owned strings behind p */
	size_t nstrs;
	snap_progress_fn progress;
	snap_done_fn done;
	void *arg;
	pthread_t th;
	struct job_ctl ctl;
	struct snap_result res;
	atomic_int progress_pending;
	atomic_int finished;
	atomic_int_fast64_t last_progress_ns;
	bool started;                /* has its thread; else waiting in the queue */
	struct snap_job *next;
};

struct snap_store {
	char *root;
	struct event_base *base;
	int pipefd[2];
	struct event *ev;
	pthread_mutex_t mu;
	struct snap_job *jobs;       /* running or finished, not yet reaped */
	unsigned njobs;
	struct snap_job *queue, **queue_tail; /* waiting for a thread, in order */
	unsigned nqueued;
	struct busy *busy;           /* workspaces being walked or restored */
	atomic_bool closing;         /* snap_store_free(): creates give up */
};

struct busy {
	uid_t uid;
	char *workspace;
	struct busy *next;
};

/* Claim a workspace for this thread's operation; -EBUSY when another holds it. */
static int busy_claim(struct snap_store *s, uid_t uid, const char *ws, struct busy **out)
{
	struct busy *b;

	*out = NULL;
	pthread_mutex_lock(&s->mu);
	for (b = s->busy; b != NULL; b = b->next) {
		if (b->uid == uid && strcmp(b->workspace, ws) == 0) {
			pthread_mutex_unlock(&s->mu);
			return -EBUSY;
		}
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL || (b->workspace = strdup(ws)) == NULL) {
		free(b);
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	b->uid = uid;
	b->next = s->busy;
	s->busy = b;
	pthread_mutex_unlock(&s->mu);
	*out = b;
	return 0;
}

static void busy_release(struct snap_store *s, struct busy *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	for (struct busy **pp = &s->busy; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	free(b->workspace);
	free(b);
}

/* The workspace op will walk or write, or NULL when it touches none. */
static int op_workspace(struct snap_repo *r, enum snap_op op, const struct snap_params *p,
			char **ws)
{
	struct snap_info si;
	int rc;

	*ws = NULL;
	if (op == SNAP_OP_CREATE) {
		*ws = strdup(p->workspace);
		return *ws ? 0 : -ENOMEM;
	}
	if (!(op == SNAP_OP_RESTORE || (op == SNAP_OP_DIFF && p->to == NULL)))
		return 0;
	if ((rc = index_get_snapshot(r->db, p->snapshot ? p->snapshot : "", &si)) < 0)
		return rc;
	*ws = si.workspace;
	si.workspace = NULL;
	snap_info_clear(&si);
	return 0;
}

static void store_wake(struct snap_store *s)
{
	char b = 1;

	/* Non-blocking: a full pipe already holds a wakeup. */
	if (write(s->pipefd[1], &b, 1) < 0 && errno != EAGAIN)
		log_warn("snapshot wakeup");
}

/* Failure of workspace_resolve: err, about the workspace param. */
static int workspace_err(struct snap_result *res, int err, const char *detail)
{
	snap_set_err(res, err, "%s", detail);
	res->field = "workspace";
	return err;
}

/*
 * p->resolve_workspace: q becomes p for the workspace's owner, with the
 * workspace resolved into real (PATH_MAX bytes). Looked up with the
 * client's rights, so nonod tells nobody about paths they cannot reach.
 */
static int workspace_resolve(const struct snap_params *p, struct snap_params *q, char *real,
			     struct snap_result *res)
{
	struct passwd pw, *pwr = NULL;
	struct snap_creds cr;
	struct stat st;
	char buf[4096];
	int rc = 0;

	*q = *p;
	if (p->workspace == NULL || p->workspace[0] != '/')
		return workspace_err(res, -EINVAL, "must be an absolute path");
	if (!p->any_owner && (rc = creds_init(&cr, p->owner, p->group)) < 0)
		return workspace_err(res, rc, "cannot look up the client's credentials");
	if (!p->any_owner && (rc = creds_user(&cr)) < 0) {
		creds_release(&cr);
		return workspace_err(res, rc, "cannot take the client's rights");
	}
	if (realpath(p->workspace, real) == NULL || stat(real, &st) < 0)
		rc = -errno;
	if (!p->any_owner) {
		creds_daemon(&cr);
		creds_release(&cr);
	}
	if (rc == -ENOTDIR || rc == -ENOENT) /* ENOTDIR: a component is a file */
		return workspace_err(res, -ENOENT, strerror(-rc));
	if (rc < 0)
		return workspace_err(res, rc == -ELOOP ? -EINVAL : rc, strerror(-rc));
	if (!S_ISDIR(st.st_mode))
		return workspace_err(res, -EINVAL, "not a directory");
	if (!p->any_owner && st.st_uid != p->owner)
		return workspace_err(res, -EPERM, "you do not own this workspace");
	/* A workspace's snapshots live in its owner's store, done with the owner's rights. */
	q->owner = st.st_uid;
	q->group = getpwuid_r(st.st_uid, &pw, buf, sizeof(buf), &pwr) == 0 && pwr ? pw.pw_gid
										  : st.st_gid;
	q->workspace = real;
	q->resolve_workspace = false;
	return 0;
}

static int run_op(struct snap_store *s, enum snap_op op, const struct snap_params *p,
		  struct job_ctl *ctl, struct snap_result *res)
{
	struct snap_repo *r = NULL;
	struct snap_creds cr;
	struct busy *busy = NULL;
	struct snap_params q;
	char *ws = NULL, real[PATH_MAX];
	int rc;

	if (op == SNAP_OP_CREATE && p->resolve_workspace) {
		if ((rc = workspace_resolve(p, &q, real, res)) < 0)
			return rc;
		p = &q;
	}

	if ((rc = creds_init(&cr, p->owner, p->group)) < 0) {
		snap_set_err(res, rc, "cannot look up the credentials of uid %u", (unsigned)p->owner);
		return rc;
	}
	if ((rc = repo_open(s->root, p->owner, &r)) < 0) {
		snap_set_err(res, rc, "cannot open the snapshot store: %s", strerror(-rc));
		creds_release(&cr);
		return rc;
	}
	if (op == SNAP_OP_CREATE && (p->workspace == NULL || p->workspace[0] != '/')) {
		rc = -EINVAL;
		snap_set_err(res, rc, "workspace must be an absolute path");
		goto out;
	}
	if ((rc = op_workspace(r, op, p, &ws)) < 0) {
		snap_set_err(res, rc, rc == -ENOENT ? "no snapshot %s" : "cannot read snapshot %s",
			     p->snapshot ? p->snapshot : "");
		goto out;
	}
	if (ws != NULL && (rc = busy_claim(s, p->owner, ws, &busy)) < 0) {
		snap_set_err(res, rc, "another snapshot operation on this workspace is running");
		goto out;
	}
	switch (op) {
	case SNAP_OP_CREATE: {
		struct create_opts co = {
			.workspace = p->workspace, .label = p->label,
			.excludes = (char *const *)p->excludes, .nexcludes = p->nexcludes,
			.allow_unreadable = p->allow_unreadable, .commit = true,
			.max_entries = p->max_entries, .max_meta_bytes = p->max_meta_bytes,
			.read_hook = p->read_hook, .read_hook_arg = p->read_hook_arg,
		};
		res->snaps = calloc(1, sizeof(*res->snaps));
		if (res->snaps == NULL) {
			rc = -ENOMEM;
			break;
		}
		if ((rc = repo_lock(r, false)) < 0)
			break;
		rc = snap_create_run(r, &cr, &co, ctl, res, &res->snaps[0]);
		res->nsnaps = rc == 0 ? 1 : 0;
		break;
	}
	case SNAP_OP_LIST:
		rc = index_list(r->db, p->workspace, &res->snaps, &res->nsnaps);
		break;
	case SNAP_OP_DIFF: {
		struct snap_info a = { 0 }, b = { 0 };
		uint8_t ha[SNAP_HASH_LEN], hb[SNAP_HASH_LEN];
		/* Shared: gc moves live records between packs under the exclusive lock. */
		if ((rc = repo_lock(r, false)) < 0) {
			snap_set_err(res, rc, "cannot lock the store");
			break;
		}
		if ((rc = index_get_snapshot(r->db, p->snapshot ? p->snapshot : "", &a)) < 0) {
			snap_set_err(res, rc, "no snapshot %s", p->snapshot ? p->snapshot : "");
			break;
		}
		if (p->to != NULL) {
			rc = index_get_snapshot(r->db, p->to, &b);
			if (rc < 0)
				snap_set_err(res, rc, "no snapshot %s", p->to);
		} else {
			/* Live: an uncommitted snapshot with the same excludes. */
			struct create_opts co = {
				.workspace = a.workspace, .label = "",
				.excludes = a.excludes, .nexcludes = a.nexcludes,
				.allow_unreadable = true, .commit = false,
				.max_entries = p->max_entries,
				.max_meta_bytes = p->max_meta_bytes,
			};
			rc = snap_create_run(r, &cr, &co, ctl, res, &b);
		}
		if (rc == 0 && (snap_unhex(a.root, ha) < 0 || snap_unhex(b.root, hb) < 0))
			rc = -EBADMSG;
		if (rc == 0)
			rc = snap_diff_trees(r, ha, hb, res);
		snap_info_clear(&a);
		snap_info_clear(&b);
		break;
	}
	case SNAP_OP_RESTORE:
		if ((rc = repo_lock(r, false)) == 0)
			rc = snap_restore_run(r, &cr, p, ctl, res);
		break;
	case SNAP_OP_DELETE:
		rc = snap_delete_run(r, p->snapshot ? p->snapshot : "", res);
		break;
	case SNAP_OP_VERIFY:
		rc = snap_verify_run(r, res);
		break;
	case SNAP_OP_GC:
		rc = snap_gc_run(r, p, res);
		break;
	case SNAP_OP_READ:
		rc = snap_read_run(r, p, res);
		break;
	default:
		rc = -EINVAL;
	}
out:
	if (rc < 0)
		snap_set_err(res, rc, "%s", strerror(-rc));
	busy_release(s, busy);
	free(ws);
	repo_close(r);
	creds_release(&cr);
	return rc;
}

int snap_run(struct snap_store *s, enum snap_op op, const struct snap_params *p,
	     struct snap_result *res)
{
	struct job_ctl ctl = { 0 };

	memset(res, 0, sizeof(*res));
	return run_op(s, op, p, &ctl, res);
}

/* ---- jobs ---- */

static void job_progress(struct job_ctl *ctl)
{
	struct snap_job *j = (struct snap_job *)((char *)ctl - offsetof(struct snap_job, ctl));
	int64_t now = snap_now_ns(), last = atomic_load(&j->last_progress_ns);

	if (now - last < PROGRESS_INTERVAL_NS ||
	    !atomic_compare_exchange_strong(&j->last_progress_ns, &last, now))
		return;
	atomic_store(&j->progress_pending, 1);
	store_wake(j->s);
}

static void *job_main(void *arg)
{
	struct snap_job *j = arg;

	run_op(j->s, j->op, &j->p, &j->ctl, &j->res);
	atomic_store(&j->finished, 1);
	store_wake(j->s);
	return NULL;
}

static void job_free(struct snap_job *j)
{
	for (size_t i = 0; i < j->nstrs; i++)
		free(j->strs[i]);
	free(j->strs);
	free((void *)j->p.excludes);
	free((void *)j->p.paths);
	snap_result_free(&j->res);
	free(j);
}

/* Hand j's result to its done callback (which owns it from then on) and
 * free j. */
static void job_deliver(struct snap_job *j)
{
	struct snap_result *res = malloc(sizeof(*res));

	if (res != NULL) {
		*res = j->res;
		memset(&j->res, 0, sizeof(j->res));
	}
	j->done(res, j->arg);
	job_free(j);
}

static void jobs_admit(struct snap_store *s);

static void store_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct snap_store *s = arg;
	char buf[256];
	struct snap_job *done = NULL;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&s->mu);
	for (struct snap_job **pp = &s->jobs; *pp != NULL;) {
		struct snap_job *j = *pp;
		if (atomic_load(&j->finished)) {
			*pp = j->next;
			j->next = done;
			done = j;
			s->njobs--;
			continue;
		}
		pp = &j->next;
	}
	pthread_mutex_unlock(&s->mu);
	/* Progress of running jobs (callbacks run without the lock). */
	for (;;) {
		struct snap_job *pj = NULL;
		struct snap_progress pr;
		pthread_mutex_lock(&s->mu);
		for (struct snap_job *j = s->jobs; j != NULL; j = j->next)
			if (j->progress != NULL && atomic_exchange(&j->progress_pending, 0)) {
				pj = j;
				break;
			}
		if (pj != NULL) {
			pr.op = pj->op;
			pr.files_done = atomic_load(&pj->ctl.files_done);
			pr.files_total = atomic_load(&pj->ctl.files_total);
			pr.bytes_done = atomic_load(&pj->ctl.bytes_done);
			pr.bytes_total = atomic_load(&pj->ctl.bytes_total);
		}
		pthread_mutex_unlock(&s->mu);
		if (pj == NULL)
			break;
		/* The job stays listed (not finished) until a later dispatch reaps it. */
		pj->progress(&pr, pj->arg);
	}
	if (done == NULL)
		return;
	while (done != NULL) {
		struct snap_job *j = done;
		done = j->next;
		pthread_join(j->th, NULL);
		job_deliver(j);
	}
	jobs_admit(s); /* their slots are free */
}

static char *job_strdup(struct snap_job *j, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d != NULL)
		j->strs[j->nstrs++] = d;
	return d;
}

static int job_copy(struct snap_job *j, const struct snap_params *p)
{
	size_t n = 4 + p->nexcludes + p->npaths;

	j->p = *p;
	j->strs = calloc(n, sizeof(char *));
	if (j->strs == NULL)
		return -ENOMEM;
	if ((p->workspace && !(j->p.workspace = job_strdup(j, p->workspace))) ||
	    (p->label && !(j->p.label = job_strdup(j, p->label))) ||
	    (p->snapshot && !(j->p.snapshot = job_strdup(j, p->snapshot))) ||
	    (p->to && !(j->p.to = job_strdup(j, p->to))))
		return -ENOMEM;
	j->p.excludes = calloc(p->nexcludes + 1, sizeof(char *));
	j->p.paths = calloc(p->npaths + 1, sizeof(char *));
	if (j->p.excludes == NULL || j->p.paths == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->nexcludes; i++)
		if (!(((const char **)j->p.excludes)[i] = job_strdup(j, p->excludes[i])))
			return -ENOMEM;
	for (size_t i = 0; i < p->npaths; i++)
		if (!(((const char **)j->p.paths)[i] = job_strdup(j, p->paths[i])))
			return -ENOMEM;
	if (p->npaths == 0) {
		free((void *)j->p.paths);
		j->p.paths = NULL;
	}
	return 0;
}

/* Under s->mu: how many of owner's jobs run, and wait. */
static unsigned jobs_running_of(const struct snap_store *s, uid_t owner)
{
	unsigned n = 0;

	for (const struct snap_job *j = s->jobs; j != NULL; j = j->next)
		n += j->p.owner == owner;
	return n;
}

static unsigned jobs_queued_of(const struct snap_store *s, uid_t owner)
{
	unsigned n = 0;

	for (const struct snap_job *j = s->queue; j != NULL; j = j->next)
		n += j->p.owner == owner;
	return n;
}

/* Under s->mu: may a job of owner have a thread now? */
static bool job_may_run(const struct snap_store *s, uid_t owner)
{
	return s->njobs < SNAP_JOBS_RUNNING && jobs_running_of(s, owner) < SNAP_JOBS_PER_UID;
}

/* Under s->mu: give j its thread and put it on the running list. */
static int job_run(struct snap_store *s, struct snap_job *j)
{
	int rc = pthread_create(&j->th, NULL, job_main, j);

	if (rc != 0)
		return -rc;
	j->started = true;
	j->next = s->jobs;
	s->jobs = j;
	s->njobs++;
	return 0;
}

/* On the loop, after jobs ended: start the waiting jobs that now fit, in
 * order (a job whose owner has no free slot lets later owners' jobs pass).
 * One that cannot have a thread ends at once with that error. */
static void jobs_admit(struct snap_store *s)
{
	struct snap_job *failed = NULL;

	pthread_mutex_lock(&s->mu);
	for (struct snap_job **pp = &s->queue; *pp != NULL && s->njobs < SNAP_JOBS_RUNNING;) {
		struct snap_job *j = *pp;
		int rc;

		if (!job_may_run(s, j->p.owner)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (*pp == NULL)
			s->queue_tail = pp;
		s->nqueued--;
		if ((rc = job_run(s, j)) < 0) {
			snap_set_err(&j->res, rc, "cannot start the snapshot job: %s", strerror(-rc));
			j->next = failed;
			failed = j;
		}
	}
	pthread_mutex_unlock(&s->mu);
	for (struct snap_job *j = failed, *nx; j != NULL; j = nx) {
		nx = j->next;
		job_deliver(j);
	}
}

int snap_job_start(struct snap_store *s, enum snap_op op, const struct snap_params *p,
		   snap_progress_fn progress, snap_done_fn done, void *arg)
{
	struct snap_job *j;
	int rc;

	if (s->base == NULL || done == NULL)
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->s = s;
	j->op = op;
	j->progress = progress;
	j->done = done;
	j->arg = arg;
	j->ctl.progress = job_progress;
	j->ctl.cancel = &s->closing;
	if ((rc = job_copy(j, p)) < 0) {
		job_free(j);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	/* An owner's jobs start in the order asked; other owners may pass. */
	if (job_may_run(s, p->owner) && jobs_queued_of(s, p->owner) == 0) {
		rc = job_run(s, j);
	} else if (s->nqueued < SNAP_JOBS_QUEUED &&
		   jobs_queued_of(s, p->owner) < SNAP_JOBS_QUEUED_PER_UID) {
		*s->queue_tail = j;
		s->queue_tail = &j->next;
		s->nqueued++;
		rc = 0;
	} else {
		rc = -E2BIG;
	}
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		job_free(j);
	return rc;
}

const char *snap_job_strerror(int err)
{
	if (err == -E2BIG) /* the admission queue is full */
		return "resource exhausted: too many snapshot operations waiting to run (at most "
		       NONO_STR(SNAP_JOBS_QUEUED_PER_UID) " per user, " NONO_STR(SNAP_JOBS_QUEUED)
		       " in all)";
	return strerror(-err);
}

unsigned snap_store_jobs(struct snap_store *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->njobs + s->nqueued;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int snap_store_new(const char *root, struct event_base *base, struct snap_store **out)
{
	struct snap_store *s;
	struct stat st;

	*out = NULL;
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		log_warn("mkdir %s", root);
		return -errno;
	}
	if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		log_warnx("%s: %s must be a 0700 directory owned by the daemon", __func__, root);
		return -EPERM;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->pipefd[0] = s->pipefd[1] = -1;
	s->queue_tail = &s->queue;
	pthread_mutex_init(&s->mu, NULL);
	s->root = strdup(root);
	if (s->root == NULL)
		goto fail;
	if (base != NULL) {
		if (pipe2(s->pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
			goto fail;
		s->base = base;
		s->ev = event_new(base, s->pipefd[0], EV_READ | EV_PERSIST, store_dispatch, s);
		if (s->ev == NULL || event_add(s->ev, NULL) < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	snap_store_free(s);
	return -ENOMEM;
}

void snap_store_free(struct snap_store *s)
{
	struct timespec until;
	bool abandoned = false;

	if (s == NULL)
		return;
	/* A create gives up at its next chunk (nothing of it is committed);
	 * the others cannot stop mid-write safely. Wait for them all, then
	 * hand each its result as the loop would have, so whoever started it
	 * frees what it holds for it. But not forever: a job reading a file
	 * system that never answers (a user's FUSE mount in a workspace) is
	 * stuck in the kernel, and would hold nonod's exit with it. Such a job
	 * is abandoned to the process exit, with the store it uses. */
	atomic_store(&s->closing, true);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SNAP_STOP_WAIT_S;
	for (struct snap_job *j = s->queue, *nx; j != NULL; j = nx) {
		nx = j->next; /* never started: nothing to wait for */
		snap_set_err(&j->res, -ECANCELED, "nonod is stopping");
		job_deliver(j);
	}
	s->queue = NULL;
	s->queue_tail = &s->queue;
	s->nqueued = 0;
	for (struct snap_job *j = s->jobs, *nx; j != NULL; j = nx) {
		nx = j->next;
		if (pthread_timedjoin_np(j->th, NULL, &until) != 0) {
			log_warnx("snapshot store %s: a job is still running after %d s (its files do "
				  "not answer): abandoned at exit", s->root, SNAP_STOP_WAIT_S);
			abandoned = true;
			continue;
		}
		job_deliver(j);
	}
	s->jobs = NULL;
	if (s->ev != NULL)
		event_free(s->ev);
	if (abandoned)
		return; /* the job still uses s, its mutex and its pipe */
	if (s->pipefd[0] >= 0)
		close(s->pipefd[0]);
	if (s->pipefd[1] >= 0)
		close(s->pipefd[1]);
	pthread_mutex_destroy(&s->mu);
	free(s->root);
	free(s);
}
