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
 */
#include <errno.h>
#include <inttypes.h>

#include "create-int.h"
#include "log.h"

void budget_init(struct cctx *c)
{
	c->bud.max_entries = c->o->max_entries ? c->o->max_entries : SNAP_DEFAULT_MAX_ENTRIES;
	c->bud.max_bytes = c->o->max_meta_bytes ? c->o->max_meta_bytes : SNAP_DEFAULT_MAX_META;
	atomic_init(&c->bud.entries, 0);
	atomic_init(&c->bud.bytes, 0);
}

static int budget_fail(struct cctx *c, bool entries)
{
	char ws[600];

	snap_path_print(c->o->workspace ? c->o->workspace : "", ws, sizeof(ws));
	pthread_mutex_lock(&c->emu);
	if (entries)
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
		log_warnx("snapshot of %s: %s limit reached", ws, entries ? "entry" : "memory");
	return -E2BIG;
}

int budget_charge(struct cctx *c, uint64_t n, uint64_t b)
{
	uint64_t e = atomic_fetch_add(&c->bud.entries, n) + n;
	uint64_t m = atomic_fetch_add(&c->bud.bytes, b) + b;

	if (e > c->bud.max_entries)
		return budget_fail(c, true);
	if (m > c->bud.max_bytes)
		return budget_fail(c, false);
	return 0;
}

void budget_release(struct cctx *c, uint64_t b)
{
	atomic_fetch_sub(&c->bud.bytes, b);
}
