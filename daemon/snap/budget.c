/*
 * The per-snapshot budget (create-int.h): a hostile workspace (millions of
 * entries, a FUSE directory that never ends, long names everywhere) must
 * not make root nonod hold unbounded memory. The walk charges what it
 * allocates; past a limit the snapshot fails with a sentence naming the
 * limit and the workspace, and create.c frees everything without writing
 * the index (objects already appended stay in uncommitted packs, which gc
 * removes, as after a crash).
 *
 * Walkers charge shared atomics, so with W walkers the totals can pass a
 * limit by at most W batches (walk.c: 256 entries) before the walk stops.
 *
 * Walks run at once (a snapshot job each, job.c admits up to 16), so the
 * bytes are also charged to one total for the whole process: in all,
 * walks may hold SNAP_META_ALL_FACTOR times a walk's max_bytes; the walk
 * that would pass it fails the same way, naming the total. Every charge
 * and release moves both counters alike, and budget_fini() hands back
 * what a walk still holds, so the total returns to zero.
 */
#include <errno.h>
#include <inttypes.h>

#include "create-int.h"
#include "log.h"

#define SNAP_META_ALL_FACTOR 2

static atomic_uint_fast64_t all_bytes; /* every walk's bytes, this process */

void budget_init(struct cctx *c)
{
	c->bud.max_entries = c->o->max_entries ? c->o->max_entries : SNAP_DEFAULT_MAX_ENTRIES;
	c->bud.max_bytes = c->o->max_meta_bytes ? c->o->max_meta_bytes : SNAP_DEFAULT_MAX_META;
	atomic_init(&c->bud.entries, 0);
	atomic_init(&c->bud.bytes, 0);
}

enum budget_limit { LIMIT_ENTRIES, LIMIT_BYTES, LIMIT_ALL_BYTES };

static uint64_t budget_all_max(const struct cctx *c)
{
	return c->bud.max_bytes > UINT64_MAX / SNAP_META_ALL_FACTOR ?
		       UINT64_MAX : c->bud.max_bytes * SNAP_META_ALL_FACTOR;
}

static int budget_fail(struct cctx *c, enum budget_limit which)
{
	bool entries = which == LIMIT_ENTRIES;
	char ws[600];

	snap_path_print(c->o->workspace ? c->o->workspace : "", ws, sizeof(ws));
	pthread_mutex_lock(&c->emu);
	if (which == LIMIT_ALL_BYTES)
		snap_set_err(c->res, -E2BIG, "snapshot of %s: the snapshots in progress would hold "
			     "more than %" PRIu64 " bytes of names and metadata in all (%d times "
			     "nonod.conf snapshot_max_memory); try again when they are done",
			     ws, budget_all_max(c), SNAP_META_ALL_FACTOR);
	else if (entries)
		snap_set_err(c->res, -E2BIG, "workspace %s has more than %" PRIu64 " entries: "
			     "over the snapshot limit max_entries (nonod.conf snapshot_max_entries)",
			     ws, c->bud.max_entries);
	else
		snap_set_err(c->res, -E2BIG, "workspace %s needs more than %" PRIu64 " bytes of "
			     "names and metadata in memory: over the snapshot limit max_meta_bytes "
			     "(nonod.conf snapshot_max_memory)", ws, c->bud.max_bytes);
	if (c->res->err == -E2BIG)
		c->res->field = "workspace";
	pthread_mutex_unlock(&c->emu);
	if (atomic_exchange(&c->failed, 1) == 0)
		log_warnx("snapshot of %s: %s limit reached", ws,
			  entries ? "entry" : which == LIMIT_BYTES ? "memory" : "total memory");
	return -E2BIG;
}

int budget_charge(struct cctx *c, uint64_t n, uint64_t b)
{
	uint64_t e = atomic_fetch_add(&c->bud.entries, n) + n;
	uint64_t m = atomic_fetch_add(&c->bud.bytes, b) + b;
	uint64_t all = atomic_fetch_add(&all_bytes, b) + b;

	if (e > c->bud.max_entries)
		return budget_fail(c, LIMIT_ENTRIES);
	if (m > c->bud.max_bytes)
		return budget_fail(c, LIMIT_BYTES);
	if (all > budget_all_max(c))
		return budget_fail(c, LIMIT_ALL_BYTES);
	return 0;
}

void budget_release(struct cctx *c, uint64_t b)
{
	atomic_fetch_sub(&c->bud.bytes, b);
	atomic_fetch_sub(&all_bytes, b);
}

void budget_fini(struct cctx *c)
{
	atomic_fetch_sub(&all_bytes, atomic_load(&c->bud.bytes));
}

uint64_t snap_meta_bytes_in_use(void)
{
	return atomic_load(&all_bytes);
}
