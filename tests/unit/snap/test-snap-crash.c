/*
 * Crash safety: a child process runs snapshot / restore / gc loops on a
 * temporary store and is SIGKILLed at a random moment, many times. After
 * each kill the parent opens the store, runs verify (nothing missing or
 * corrupt, the stat cache names only present objects) and restores
 * committed snapshots, checking each against a reference copy of the state
 * it was taken from. SNAP_CRASH_ITERS=N runs longer (default 30).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "log.h"
#include "snap.h"
#include "../check-run.h"

#define NSTATES 4

static void clear_dir(const char *dir)
{
	char *cmd;

	/* Only the contents: the workspace directory itself stays. */
	if (asprintf(&cmd, "find '%s' -mindepth 1 -maxdepth 1 -exec rm -rf {} +", dir) > 0) {
		if (system(cmd) != 0)
			_exit(3);
		free(cmd);
	}
}

/* Deterministic workspace state k: small files, a chunked file, links, modes. */
static void write_state(const char *dir, int k)
{
	size_t big = 700 * 1024;
	unsigned char *b = malloc(big);
	char name[64], content[128];

	clear_dir(dir);
	for (int j = 0; j < 20; j++) {
		snprintf(name, sizeof(name), "f%02d", j);
		snprintf(content, sizeof(content), "state %d file %d\n", j % 3 == 0 ? 0 : k, j);
		th_write(dir, name, content, strlen(content), (k % 2 && j == 1) ? 0600 : 0644);
	}
	for (size_t i = 0; i < big; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	memset(b + 100000 * (size_t)k, 'k' + k, 5000);
	th_write(dir, "big.bin", b, big, 0644);
	th_mkdir(dir, "sub", 0755);
	th_symlink(dir, "sub/link", k % 2 ? "../f01" : "../f02");
	if (k % 2 == 0)
		th_mkdir(dir, "empty", 0700);
	snprintf(name, sizeof(name), "sub/only%d", k);
	th_writes(dir, name, "x");
	free(b);
}

static void child_loop(const char *store, const char *ws, unsigned seed)
{
	struct snap_store *s;
	struct snap_params p = { .owner = getuid(), .group = getgid(), .workspace = ws,
				 .keep_last = -1, .keep_within = -1 };
	char label[32];

	srand(seed);
	if (snap_store_new(store, NULL, &s) < 0)
		_exit(2);
	for (unsigned i = 0;; i++) {
		struct snap_result r;
		int k = rand() % NSTATES;

		write_state(ws, k);
		snprintf(label, sizeof(label), "state-%d", k);
		p.label = label;
		p.snapshot = NULL;
		p.keep_last = -1;
		snap_run(s, SNAP_OP_CREATE, &p, &r);
		snap_result_free(&r);
		if (i % 3 == 2) {
			snap_run(s, SNAP_OP_LIST, &p, &r);
			if (r.nsnaps > 0) {
				static char id[SNAP_ID_LEN + 1];
				memcpy(id, r.snaps[rand() % r.nsnaps].id, sizeof(id));
				snap_result_free(&r);
				p.snapshot = id;
				snap_run(s, SNAP_OP_RESTORE, &p, &r);
			}
			snap_result_free(&r);
		}
		if (i % 4 == 3) {
			p.keep_last = 3;
			snap_run(s, SNAP_OP_GC, &p, &r);
			snap_result_free(&r);
		}
	}
}

START_TEST(test_crash_loop)
{
	const char *env = getenv("SNAP_CRASH_ITERS");
	int iters = env ? atoi(env) : 30;
	char *store, *ws, *ref[NSTATES], *want[NSTATES];
	unsigned checked = 0;

	ck_assert(asprintf(&store, "%s/store", th_tmp) > 0);
	ck_assert(asprintf(&ws, "%s/ws", th_tmp) > 0);
	ck_assert_int_eq(mkdir(ws, 0755), 0);
	for (int k = 0; k < NSTATES; k++) {
		ck_assert(asprintf(&ref[k], "%s/ref%d", th_tmp, k) > 0);
		ck_assert_int_eq(mkdir(ref[k], 0755), 0);
		write_state(ref[k], k);
		want[k] = th_manifest(ref[k], false);
	}
	srand((unsigned)time(NULL));
	for (int it = 0; it < iters; it++) {
		struct snap_store *s;
		struct snap_params p = { .owner = getuid(), .group = getgid(),
					 .keep_last = -1, .keep_within = -1 };
		struct snap_result r, v;
		pid_t pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			setpgid(0, 0); /* its helpers (find/rm) die with it */
			child_loop(store, ws, (unsigned)rand());
		}
		setpgid(pid, pid);
		/* A random moment: not a timing assertion, just where the kill lands. */
		usleep(20000 + (useconds_t)(rand() % 400000));
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, NULL, 0), pid);

		ck_assert_int_eq(snap_store_new(store, NULL, &s), 0);
		ck_assert_int_eq(snap_run(s, SNAP_OP_VERIFY, &p, &v), 0);
		ck_assert_msg(v.verify.missing == 0 && v.verify.corrupt == 0,
			      "iteration %d: %llu missing, %llu corrupt", it,
			      (unsigned long long)v.verify.missing, (unsigned long long)v.verify.corrupt);
		snap_result_free(&v);
		/* Every committed state-K snapshot restores to exactly state K: check
		 * the newest and one random one each round. */
		ck_assert_int_eq(snap_run(s, SNAP_OP_LIST, &p, &r), 0);
		for (size_t n = 0, pick = 0; n < 2 && r.nsnaps > 0; n++) {
			struct snap_info *si;
			struct snap_result rr;
			int k;
			pick = n == 0 ? r.nsnaps - 1 : (size_t)rand() % r.nsnaps;
			si = &r.snaps[pick];
			if (sscanf(si->label, "state-%d", &k) != 1 || k < 0 || k >= NSTATES)
				continue; /* safety snapshots hold whatever was live */
			p.snapshot = si->id;
			ck_assert_msg(snap_run(s, SNAP_OP_RESTORE, &p, &rr) == 0, "restore %s: %s",
				      si->id, rr.detail);
			snap_result_free(&rr);
			char *got = th_manifest(ws, false);
			ck_assert_msg(strcmp(got, want[k]) == 0, "iteration %d, snapshot %s (state %d):\n%s\nwant\n%s",
				      it, si->id, k, got, want[k]);
			free(got);
			checked++;
		}
		snap_result_free(&r);
		snap_store_free(s);
	}
	fprintf(stderr, "crash loop: %d kills, %u restores compared\n", iters, checked);
	ck_assert_uint_gt(checked, 0);
	for (int k = 0; k < NSTATES; k++) {
		free(ref[k]);
		free(want[k]);
	}
	free(store);
	free(ws);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snap-crash");
	TCase *tc = tcase_create("sigkill");

	log_init("test-snap-crash", LOG_LEVEL_ERROR);
	tcase_add_unchecked_fixture(tc, th_tmp_setup, th_tmp_teardown);
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, test_crash_loop);
	suite_add_tcase(s, tc);
	return check_run(s);
}
