/*
 * Snapshot store unit tests: formats (tree, chunking), create/diff/restore
 * round trips with hostile names and special files, the stat cache, bad
 * input (missing workspace, unreadable and changing files, concurrent
 * snapshots), excludes, partial restore, gc and verify, a 100k-entry tree.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "../check-run.h"
#include "log.h"
#include "snap-int.h"

static void snap(struct th_env *e, struct snap_result *r, char id[SNAP_ID_LEN + 1])
{
	int rc = snap_run(e->s, SNAP_OP_CREATE, &e->p, r);

	ck_assert_msg(rc == 0, "create: %d %s", rc, r->detail);
	ck_assert_int_eq(r->nsnaps, 1);
	if (id)
		memcpy(id, r->snaps[0].id, SNAP_ID_LEN + 1);
}

static int run(struct th_env *e, enum snap_op op, struct snap_result *r)
{
	return snap_run(e->s, op, &e->p, r);
}

static bool has_change(const struct snap_result *r, const char *path, enum snap_change_kind k)
{
	for (size_t i = 0; i < r->nchanges; i++)
		if (strcmp(r->changes[i].path, path) == 0 && r->changes[i].kind == k)
			return true;
	return false;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t *random_buf(size_t n)
{
	uint8_t *b = malloc(n);

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = xrand();
		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
	return b;
}

/* ---- formats ---- */

START_TEST(test_tree_roundtrip)
{
	struct tree_ent e[3] = {
		{ .name = "z", .nlen = 1, .type = TT_REG, .mode = 0100644, .size = 5 },
		{ .name = "a\nb", .nlen = 3, .type = TT_DIR, .mode = 040755 },
		{ .name = "\xff\xfe", .nlen = 2, .type = TT_SYMLINK, .mode = 0120777, .size = 3,
		  .mtime_ns = -5 },
	};
	uint8_t *buf, *copy;
	size_t len;
	struct tree t;

	e[0].hash[0] = 7;
	ck_assert_int_eq(tree_encode(e, 3, &buf, &len), 0);
	copy = malloc(len);
	memcpy(copy, buf, len);
	ck_assert_int_eq(tree_decode(buf, len, &t), 0);
	ck_assert_int_eq(t.n, 3);
	ck_assert_mem_eq(t.ents[0].name, "a\nb", 3);
	ck_assert_mem_eq(t.ents[1].name, "z", 1);
	ck_assert_int_eq(t.ents[1].hash[0], 7);
	ck_assert_mem_eq(t.ents[2].name, "\xff\xfe", 2);
	ck_assert_int_eq(t.ents[2].mtime_ns, -5);
	tree_release(&t);

	/* Truncated, trailing garbage, bad version: rejected, never read past the end. */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *b = malloc(cut ? cut : 1);
		memcpy(b, copy, cut);
		int rc = tree_decode(b, cut, &t);
		/* Only a cut at an entry boundary decodes, to fewer entries. */
		ck_assert(rc == -EBADMSG || (rc == 0 && t.n < 3));
		tree_release(&t);
	}
	/* Non-canonical order: swap the first name byte of entry 0 ("a") to '{'. */
	buf = malloc(len);
	memcpy(buf, copy, len);
	buf[3] = '{';
	ck_assert_int_eq(tree_decode(buf, len, &t), -EBADMSG);
	/* A name with '/', "..", or a duplicate cannot be encoded. */
	struct tree_ent bad[2] = { { .name = "a/b", .nlen = 3, .type = TT_REG } };
	ck_assert_int_eq(tree_encode(bad, 1, &buf, &len), -EINVAL);
	bad[0].name = "..";
	bad[0].nlen = 2;
	ck_assert_int_eq(tree_encode(bad, 1, &buf, &len), -EINVAL);
	bad[0].name = bad[1].name = "x";
	bad[0].nlen = bad[1].nlen = 1;
	ck_assert_int_eq(tree_encode(bad, 2, &buf, &len), -EINVAL);
	free(copy);
}
END_TEST

static size_t chunk_all(const uint8_t *b, size_t n, size_t *cuts)
{
	size_t k = 0;

	for (size_t off = 0; off < n;) {
		size_t c = cdc_cut(b + off, n - off);
		ck_assert(c > 0);
		ck_assert(c <= CDC_MAX);
		ck_assert(c >= CDC_MIN || off + c == n);
		off += c;
		cuts[k++] = off;
	}
	return k;
}

START_TEST(test_cdc_shift)
{
	size_t n = 16u << 20, ca[64], cb[64], na, nb, same = 0;
	uint8_t *a = random_buf(n + 1), *b = malloc(n + 1);

	/* Insert one byte at 5 MiB: cut points after it shift by one. */
	memcpy(b, a, 5u << 20);
	b[5u << 20] = 0x42;
	memcpy(b + (5u << 20) + 1, a + (5u << 20), n - (5u << 20));
	na = chunk_all(a, n, ca);
	nb = chunk_all(b, n + 1, cb);
	ck_assert(na >= 4 && nb >= 4);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (cb[j] == ca[i] + (ca[i] > (5u << 20)))
				same++;
	ck_assert_msg(same + 2 >= na, "only %zu of %zu cut points survived", same, na);
	free(a);
	free(b);
}
END_TEST

/* ---- round trips ---- */

static void make_rich_ws(const char *ws)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t *big = random_buf(2u << 20);
	int fd;

	th_writes(ws, "plain.txt", "hello\n");
	th_write(ws, "secret", "s3", 2, 0600);
	th_write(ws, "run.sh", "#!/bin/sh\n", 10, 0755);
	th_writes(ws, "name\nwith newline", "nl");
	th_writes(ws, "bad-\xff\xfe-utf8", "bytes");
	th_write(ws, "big.bin", big, 2u << 20, 0644);
	th_write(ws, "empty", "", 0, 0644);
	th_mkdir(ws, "sub", 0750);
	th_mkdir(ws, "sub/deeper", 0755);
	th_writes(ws, "sub/deeper/x", "x1");
	th_mkdir(ws, "emptydir", 0700);
	th_symlink(ws, "link", "plain.txt");
	th_symlink(ws, "dangling", "/nonexistent/\n/target");
	char *p;
	ck_assert(asprintf(&p, "%s/fifo", ws) > 0);
	ck_assert_int_eq(mkfifo(p, 0640), 0);
	free(p);
	/* A socket: bind via a relative path to stay under sun_path's limit. */
	int cwd = open(".", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(chdir(ws), 0);
	strcpy(sa.sun_path, "sock");
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(fchdir(cwd), 0);
	close(cwd);
	free(big);
}

START_TEST(test_roundtrip)
{
	struct th_env e;
	struct snap_result r, d;
	char id[SNAP_ID_LEN + 1], *before, *after;

	th_env_open(&e, "rt");
	make_rich_ws(e.ws);
	before = th_manifest(e.ws, true);
	snap(&e, &r, id);
	ck_assert_int_eq(r.snaps[0].stats.files, 8);
	ck_assert_int_eq(r.snaps[0].stats.dirs, 3);
	snap_result_free(&r);

	/* Change everything a user can change. */
	th_writes(e.ws, "plain.txt", "changed\n");
	th_write(e.ws, "secret", "s3", 2, 0644);           /* mode only */
	char *p;
	ck_assert(asprintf(&p, "%s/empty", e.ws) > 0);
	unlink(p);
	ck_assert_int_eq(mkdir(p, 0755), 0);                  /* file -> dir */
	free(p);
	ck_assert(asprintf(&p, "%s/sub/deeper/x", e.ws) > 0);
	unlink(p);
	free(p);
	th_writes(e.ws, "new\nfile", "n");
	th_mkdir(e.ws, "newdir", 0755);
	th_writes(e.ws, "newdir/f", "f");
	ck_assert(asprintf(&p, "%s/link", e.ws) > 0);
	unlink(p);
	ck_assert_int_eq(symlink("elsewhere", p), 0);
	free(p);

	e.p.snapshot = id;
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &d), 0);
	ck_assert(has_change(&d, "plain.txt", SNAP_MODIFIED));
	ck_assert(has_change(&d, "secret", SNAP_MODIFIED));
	ck_assert(has_change(&d, "empty", SNAP_TYPE_CHANGED));
	ck_assert(has_change(&d, "sub/deeper/x", SNAP_REMOVED));
	ck_assert(has_change(&d, "new\nfile", SNAP_ADDED));
	ck_assert(has_change(&d, "newdir/f", SNAP_ADDED));
	ck_assert(has_change(&d, "link", SNAP_MODIFIED));
	ck_assert(!has_change(&d, "big.bin", SNAP_MODIFIED));
	ck_assert(!has_change(&d, "bad-\xff\xfe-utf8", SNAP_MODIFIED));
	snap_result_free(&d);

	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), 0);
	ck_assert_int_eq(r.nsnaps, 1); /* the safety snapshot */
	char safety[SNAP_ID_LEN + 1];
	memcpy(safety, r.snaps[0].id, sizeof(safety));
	snap_result_free(&r);
	after = th_manifest(e.ws, true);
	ck_assert_str_eq(before, after);
	free(after);

	/* The restore can itself be undone from the safety snapshot. */
	e.p.snapshot = safety;
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), 0);
	snap_result_free(&r);
	after = th_manifest(e.ws, false);
	ck_assert(strstr(after, "[new\nfile]") != NULL);
	ck_assert(strstr(after, "[plain.txt] ") != NULL);
	free(after);

	/* diff snapshot <-> snapshot, and nothing to verify wrong. */
	e.p.snapshot = id;
	e.p.to = safety;
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &d), 0);
	ck_assert(has_change(&d, "plain.txt", SNAP_MODIFIED));
	snap_result_free(&d);
	e.p.to = NULL;
	ck_assert_int_eq(run(&e, SNAP_OP_VERIFY, &r), 0);
	ck_assert_int_eq(r.verify.missing, 0);
	ck_assert_int_eq(r.verify.corrupt, 0);
	ck_assert_int_ge(r.verify.snapshots, 3);
	snap_result_free(&r);
	free(before);
	th_env_close(&e);
}
END_TEST

START_TEST(test_stat_cache)
{
	struct th_env e;
	struct snap_result r;
	char root1[SNAP_HEX_LEN + 1];

	th_env_open(&e, "sc");
	for (int i = 0; i < 50; i++) {
		char n[32], c[32];
		snprintf(n, sizeof(n), "f%d", i);
		snprintf(c, sizeof(c), "content %d", i);
		th_writes(e.ws, n, c);
	}
	/* Entries are cached only once their ctime is older than the walk's start. */
	sleep(1);
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 50);
	memcpy(root1, r.snaps[0].root, sizeof(root1));
	snap_result_free(&r);
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 0);
	ck_assert_str_eq(r.snaps[0].root, root1);
	snap_result_free(&r);
	th_writes(e.ws, "f7", "other");
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 1);
	ck_assert_str_ne(r.snaps[0].root, root1);
	memcpy(root1, r.snaps[0].root, sizeof(root1));
	snap_result_free(&r);

	/* A damaged shard of the cache is not trusted, not even in part: every
	 * file is read again, the result is the same, and the cache heals. */
	char *dbp;
	sqlite3 *db;
	ck_assert(asprintf(&dbp, "%s/%u/index.db", e.root, (unsigned)getuid()) > 0);
	ck_assert_int_eq(sqlite3_open(dbp, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "UPDATE snap_statcache_shards SET data = X'53433100ff'"
				      " WHERE rowid = (SELECT min(rowid) FROM snap_statcache_shards)",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_changes(db), 1);
	sqlite3_close(db);
	free(dbp);
	sleep(1); /* f7's new ctime must be old enough to be cached */
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 50);
	ck_assert_str_eq(r.snaps[0].root, root1);
	snap_result_free(&r);
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 0);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

START_TEST(test_big_file_delta)
{
	struct th_env e;
	struct snap_result r;
	size_t n = 24u << 20;
	uint8_t *b = random_buf(n);
	uint64_t first;

	th_env_open(&e, "big");
	th_write(e.ws, "big", b, n, 0644);
	snap(&e, &r, NULL);
	first = r.snaps[0].stats.new_bytes;
	ck_assert_uint_ge(first, n);
	snap_result_free(&r);
	b[n / 2] ^= 1; /* one byte in the middle */
	th_write(e.ws, "big", b, n, 0644);
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 1);
	/* One or two ~1 MiB chunks plus the chunk list and trees, not 24 MiB. */
	ck_assert_msg(r.snaps[0].stats.new_bytes < 8u << 20, "stored %llu bytes",
		      (unsigned long long)r.snaps[0].stats.new_bytes);
	snap_result_free(&r);
	free(b);
	th_env_close(&e);
}
END_TEST

START_TEST(test_excludes)
{
	struct th_env e;
	struct snap_result r, d;
	const char *ex[] = { "node_modules", "/build", "*.o" };
	char id[SNAP_ID_LEN + 1], *m;

	th_env_open(&e, "ex");
	th_writes(e.ws, "keep", "k");
	th_mkdir(e.ws, "node_modules", 0755);
	th_writes(e.ws, "node_modules/pkg", "v1");
	th_mkdir(e.ws, "build", 0755);
	th_writes(e.ws, "build/out", "o1");
	th_mkdir(e.ws, "src", 0755);
	th_writes(e.ws, "src/a.o", "obj");
	th_mkdir(e.ws, "src/build", 0755); /* "/build" is anchored: this one is kept */
	th_writes(e.ws, "src/build/k", "k");
	e.p.excludes = ex;
	e.p.nexcludes = 3;
	snap(&e, &r, id);
	ck_assert_int_eq(r.snaps[0].nexcludes, 3);
	ck_assert_int_eq(r.snaps[0].stats.files, 2);
	snap_result_free(&r);

	/* Excluded paths change and appear; restore must leave them alone. */
	th_writes(e.ws, "node_modules/pkg", "v2");
	th_writes(e.ws, "build/out", "o2");
	th_mkdir(e.ws, "later", 0755);
	th_mkdir(e.ws, "later/node_modules", 0755);
	th_writes(e.ws, "later/node_modules/dep", "d");
	th_writes(e.ws, "later/file", "f");
	/* deeper: a directory left holding only an excluded one */
	th_mkdir(e.ws, "later/deep", 0755);
	th_mkdir(e.ws, "later/deep/node_modules", 0755);
	th_writes(e.ws, "later/deep/node_modules/dep", "d");
	th_writes(e.ws, "later/deep/gone", "g");
	e.p.excludes = NULL;
	e.p.nexcludes = 0;
	e.p.snapshot = id;
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &d), 0);
	ck_assert(has_change(&d, "later/file", SNAP_REMOVED) || has_change(&d, "later", SNAP_ADDED));
	for (size_t i = 0; i < d.nchanges; i++)
		ck_assert_msg(strstr(d.changes[i].path, "node_modules") == NULL, "%s", d.changes[i].path);
	snap_result_free(&d);
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), 0);
	snap_result_free(&r);
	m = th_read(e.ws, "node_modules/pkg", NULL);
	ck_assert_str_eq(m, "v2");
	free(m);
	m = th_read(e.ws, "build/out", NULL);
	ck_assert_str_eq(m, "o2");
	free(m);
	m = th_read(e.ws, "later/node_modules/dep", NULL);
	ck_assert_ptr_nonnull(m); /* kept, though its parent is not in the snapshot */
	free(m);
	ck_assert_ptr_null(th_read(e.ws, "later/file", NULL));
	m = th_read(e.ws, "later/deep/node_modules/dep", NULL);
	ck_assert_ptr_nonnull(m);
	free(m);
	ck_assert_ptr_null(th_read(e.ws, "later/deep/gone", NULL));
	th_env_close(&e);
}
END_TEST

START_TEST(test_partial_restore)
{
	struct th_env e;
	struct snap_result r;
	const char *paths[] = { "./sub/x/" };
	char id[SNAP_ID_LEN + 1], *m;

	th_env_open(&e, "pr");
	th_mkdir(e.ws, "sub", 0755);
	th_writes(e.ws, "sub/x", "x1");
	th_writes(e.ws, "sub/y", "y1");
	th_writes(e.ws, "top", "t1");
	snap(&e, &r, id);
	snap_result_free(&r);
	th_writes(e.ws, "sub/x", "x2");
	th_writes(e.ws, "sub/y", "y2");
	th_writes(e.ws, "top", "t2");
	th_writes(e.ws, "sub/new", "n");
	e.p.snapshot = id;
	e.p.paths = paths;
	e.p.npaths = 1;
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), 0);
	ck_assert_int_eq(r.nchanges, 1);
	snap_result_free(&r);
	m = th_read(e.ws, "sub/x", NULL);
	ck_assert_str_eq(m, "x1");
	free(m);
	m = th_read(e.ws, "sub/y", NULL);
	ck_assert_str_eq(m, "y2");
	free(m);
	m = th_read(e.ws, "sub/new", NULL);
	ck_assert_str_eq(m, "n");
	free(m);
	/* ".." never selects anything outside. */
	const char *bad[] = { "sub/../../etc" };
	e.p.paths = bad;
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), -EINVAL);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

/* ---- bad input ---- */

START_TEST(test_bad_workspace)
{
	struct th_env e;
	struct snap_result r;
	char *f;

	th_env_open(&e, "bw");
	ck_assert(asprintf(&f, "%s/missing", e.dir) > 0);
	e.p.workspace = f;
	ck_assert_int_eq(run(&e, SNAP_OP_CREATE, &r), -ENOENT);
	ck_assert(strstr(r.detail, "missing") != NULL);
	snap_result_free(&r);
	th_writes(e.dir, "missing", "a file");
	ck_assert_int_eq(run(&e, SNAP_OP_CREATE, &r), -ENOTDIR);
	snap_result_free(&r);
	e.p.workspace = "relative/path";
	ck_assert_int_eq(run(&e, SNAP_OP_CREATE, &r), -EINVAL);
	snap_result_free(&r);
	e.p.snapshot = "000000000000";
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), -ENOENT);
	snap_result_free(&r);
	ck_assert_int_eq(run(&e, SNAP_OP_DELETE, &r), -ENOENT);
	snap_result_free(&r);
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &r), -ENOENT);
	snap_result_free(&r);
	free(f);
	th_env_close(&e);
}
END_TEST

START_TEST(test_unreadable)
{
	struct th_env e;
	struct snap_result r;

	th_env_open(&e, "ur");
	th_writes(e.ws, "ok", "fine");
	th_mkdir(e.ws, "d", 0755);
	th_write(e.ws, "d/locked", "no", 2, 0000);
	if (getuid() == 0) {
		/* As root the snapshot must still use the owner's rights. */
		th_chown_r(e.ws, 65534, 65534);
		e.p.owner = 65534;
		e.p.group = 65534;
	}
	ck_assert_int_eq(run(&e, SNAP_OP_CREATE, &r), -EACCES);
	ck_assert_msg(strstr(r.detail, "d/locked") != NULL, "%s", r.detail);
	snap_result_free(&r);
	e.p.allow_unreadable = true;
	snap(&e, &r, NULL);
	ck_assert_int_eq(r.snaps[0].stats.unreadable, 1);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

static int g_hook_calls;
static void change_hook(const char *rel, int attempt, void *arg)
{
	struct th_env *e = arg;
	char buf[64];

	if (strcmp(rel, "moving") != 0)
		return;
	g_hook_calls++;
	if (attempt == 0 || e->p.label != NULL) {
		snprintf(buf, sizeof(buf), "version %d", g_hook_calls);
		th_writes(e->ws, "moving", buf);
	}
}

START_TEST(test_changing_file)
{
	struct th_env e;
	struct snap_result r;

	th_env_open(&e, "cf");
	th_writes(e.ws, "moving", "version 0");
	e.p.read_hook = change_hook;
	e.p.read_hook_arg = &e;
	/* Changed once: read again, succeeds with the new content. */
	snap(&e, &r, NULL);
	ck_assert_int_eq(g_hook_calls, 2);
	snap_result_free(&r);
	/* Changes on every read: reported by path, the snapshot fails. */
	g_hook_calls = 0;
	e.p.label = "always";
	ck_assert_int_eq(run(&e, SNAP_OP_CREATE, &r), -EAGAIN);
	ck_assert_msg(strstr(r.detail, "moving") != NULL, "%s", r.detail);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

START_TEST(test_special_files)
{
	struct th_env e;
	struct snap_result r, d;
	char id[SNAP_ID_LEN + 1], *p;

	th_env_open(&e, "sp");
	ck_assert(asprintf(&p, "%s/fifo", e.ws) > 0);
	ck_assert_int_eq(mkfifo(p, 0600), 0); /* opening it for reading would block */
	free(p);
	if (getuid() == 0) {
		ck_assert(asprintf(&p, "%s/nulldev", e.ws) > 0);
		ck_assert_int_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
		free(p);
	}
	snap(&e, &r, id);
	ck_assert_int_eq(r.snaps[0].stats.files, 0);
	ck_assert_int_eq(r.snaps[0].stats.others, getuid() == 0 ? 2 : 1);
	snap_result_free(&r);
	ck_assert(asprintf(&p, "%s/fifo", e.ws) > 0);
	unlink(p);
	free(p);
	e.p.snapshot = id;
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &d), 0);
	ck_assert(has_change(&d, "fifo", SNAP_REMOVED));
	ck_assert_int_eq(d.nchanges, 1);
	snap_result_free(&d);
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), 0);
	snap_result_free(&r);
	struct stat st;
	ck_assert(asprintf(&p, "%s/fifo", e.ws) > 0);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	free(p);
	th_env_close(&e);
}
END_TEST

static struct th_env *g_busy_env;
static int g_busy_rc = 1;
static void busy_hook(const char *rel, int attempt, void *arg)
{
	struct snap_result r;
	struct snap_params p = g_busy_env->p;

	(void)rel;
	(void)attempt;
	(void)arg;
	if (g_busy_rc != 1)
		return;
	p.read_hook = NULL;
	g_busy_rc = snap_run(g_busy_env->s, SNAP_OP_CREATE, &p, &r);
	snap_result_free(&r);
}

START_TEST(test_concurrent_same_workspace)
{
	struct th_env e;
	struct snap_result r;

	th_env_open(&e, "busy");
	th_writes(e.ws, "f", "x");
	g_busy_env = &e;
	e.p.read_hook = busy_hook;
	snap(&e, &r, NULL); /* while it reads f, a second snapshot is attempted */
	snap_result_free(&r);
	ck_assert_int_eq(g_busy_rc, -EBUSY);
	/* Once the first is done, the workspace is free again. */
	e.p.read_hook = NULL;
	snap(&e, &r, NULL);
	snap_result_free(&r);
	th_env_close(&e);
}
END_TEST

START_TEST(test_gc_verify)
{
	struct th_env e;
	struct snap_result r;
	char a[SNAP_ID_LEN + 1], b[SNAP_ID_LEN + 1];
	uint8_t *big = random_buf(1u << 20);

	th_env_open(&e, "gc");
	th_write(e.ws, "data", big, 1u << 20, 0644);
	snap(&e, &r, a);
	snap_result_free(&r);
	big[0] ^= 1;
	th_write(e.ws, "data", big, 1u << 20, 0644);
	snap(&e, &r, b);
	snap_result_free(&r);
	e.p.keep_last = 1;
	ck_assert_int_eq(run(&e, SNAP_OP_GC, &r), 0);
	ck_assert_int_eq(r.gc.snapshots_deleted, 1);
	ck_assert_int_ge(r.gc.objects_deleted, 2); /* old blob and old root tree */
	snap_result_free(&r);
	ck_assert_int_eq(run(&e, SNAP_OP_VERIFY, &r), 0);
	ck_assert_int_eq(r.verify.snapshots, 1);
	ck_assert_int_eq(r.verify.missing + r.verify.corrupt + r.verify.unreferenced, 0);
	snap_result_free(&r);
	e.p.snapshot = a;
	ck_assert_int_eq(run(&e, SNAP_OP_RESTORE, &r), -ENOENT);
	snap_result_free(&r);
	/* Unchanged file after gc: the stat cache must not name a deleted object. */
	snap(&e, &r, NULL);
	snap_result_free(&r);
	ck_assert_int_eq(run(&e, SNAP_OP_VERIFY, &r), 0);
	ck_assert_int_eq(r.verify.missing + r.verify.corrupt, 0);
	snap_result_free(&r);

	/* Corrupt the payload of one object in a pack: verify says so. */
	char *cmd;
	ck_assert(asprintf(&cmd, "f=$(find %s/store -name '*.pack' -size +100k | head -1);"
			   " [ -n \"$f\" ] && chmod u+w \"$f\" &&"
			   " printf 'XX' | dd of=\"$f\" bs=1 seek=4096 conv=notrunc 2>/dev/null",
			   e.dir) > 0);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	ck_assert_int_eq(run(&e, SNAP_OP_VERIFY, &r), 0);
	ck_assert_int_ge(r.verify.corrupt, 1);
	snap_result_free(&r);
	free(big);
	th_env_close(&e);
}
END_TEST

/* ndirs x per files: snapshot, an unchanged snapshot that reads nothing,
 * and a diff to the live tree that finds nothing. */
static void many_entries(int ndirs, int per)
{
	struct th_env e;
	struct snap_result r, d;
	char id[SNAP_ID_LEN + 1];
	struct timespec t0, t1;
	char tag[32];

	snprintf(tag, sizeof(tag), "many-%d", ndirs * per);
	th_env_open(&e, tag);
	for (int i = 0; i < ndirs; i++) {
		char dn[32];
		snprintf(dn, sizeof(dn), "d%04d", i);
		th_mkdir(e.ws, dn, 0755);
		for (int j = 0; j < per; j++) {
			char fn[48], c[48];
			snprintf(fn, sizeof(fn), "%s/f%04d.c", dn, j);
			snprintf(c, sizeof(c), "int v%d_%d;\n", i, j);
			th_writes(e.ws, fn, c);
		}
	}
	sleep(1); /* let ctimes fall behind the next walk's start so they are cached */
	snap(&e, &r, id);
	ck_assert_int_eq(r.snaps[0].stats.files, (uint64_t)ndirs * (uint64_t)per);
	snap_result_free(&r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snap(&e, &r, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(r.snaps[0].stats.read_files, 0);
	fprintf(stderr, "%d entries: no-change snapshot %.0f ms (informational)\n", ndirs * per,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	snap_result_free(&r);
	e.p.snapshot = id;
	ck_assert_int_eq(run(&e, SNAP_OP_DIFF, &d), 0);
	ck_assert_int_eq(d.nchanges, 0);
	snap_result_free(&d);
	th_env_close(&e);
}

START_TEST(test_many_entries)
{
	many_entries(100, 1000);
}
END_TEST

/* The "tree with a million entries" (about 4 GiB on a tmpfs TMPDIR). */
START_TEST(test_million_entries)
{
	struct statvfs sv;

	if (statvfs(th_tmp, &sv) == 0 &&
	    ((uint64_t)sv.f_bavail * sv.f_frsize < (6ULL << 30) || sv.f_favail < 1100000)) {
		fprintf(stderr, "not run: test_million_entries needs 6 GiB and 1.1M inodes free "
			"in %s\n", th_tmp);
		return;
	}
	many_entries(1000, 1000);
}
END_TEST

static Suite *snap_suite(void)
{
	Suite *s = suite_create("snap");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 600);
	/* SNAP_TEST=name runs one test (debugging with CK_FORK=no). */
#define ADD(t) if (getenv("SNAP_TEST") == NULL || strcmp(getenv("SNAP_TEST"), #t) == 0) \
		tcase_add_test(tc, t)
	ADD(test_tree_roundtrip);
	ADD(test_cdc_shift);
	ADD(test_roundtrip);
	ADD(test_stat_cache);
	ADD(test_big_file_delta);
	ADD(test_excludes);
	ADD(test_partial_restore);
	ADD(test_bad_workspace);
	ADD(test_unreadable);
	ADD(test_changing_file);
	ADD(test_special_files);
	ADD(test_concurrent_same_workspace);
	ADD(test_gc_verify);
	ADD(test_many_entries);
	ADD(test_million_entries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_init("test-snap", LOG_LEVEL_WARN);
	return check_run(snap_suite());
}
