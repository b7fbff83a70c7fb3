/*
 * Crash safety: a child process hammers secret sets and is SIGKILLed in the
 * middle; the database must then pass integrity_check, open under the same
 * master key, and every set the child reported as committed must unseal to
 * its value (or to the one set that was in flight when it died).
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "vtest.h"
#include "../check-run.h"

#define NAMES 50
#define ROUNDS 5
#define OWNER 4242

/* The value for write number i: "v<i>:" padded to a few KiB so writes take a while. */
static size_t make_value(unsigned long i, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "v%lu:", i);
	size_t len = 3000 + (i % 7) * 100;

	memset(buf + n, 'a' + (int)(i % 26), len - (size_t)n);
	buf[len] = '\0';
	return len;
}

/* Child: set k<i % NAMES> to value i for i = start, start + 1, ..., reporting each i on out. */
static void writer(struct vt *t, unsigned long start, int out)
{
	static char value[4096];

	if (vt_open(t, NULL) < 0)
		_exit(2);
	for (unsigned long i = start;; i++) {
		char name[32];
		size_t len = make_value(i, value, sizeof(value));

		snprintf(name, sizeof(name), "k%lu", i % NAMES);
		if (vault_set(t->v, OWNER, name, value, len, NULL, &t->err) < 0)
			_exit(3);
		/* Reported only after the commit returned. */
		if (write(out, &i, sizeof(i)) != sizeof(i))
			_exit(4);
	}
}

/* Child: rotate the master key over and over, reporting each finished rotation on out. */
static void rotator(struct vt *t, unsigned long start, int out)
{
	if (vt_open(t, NULL) < 0)
		_exit(2);
	for (unsigned long i = start;; i++) {
		if (vault_rotate_key(t->v, &t->err) < 0)
			_exit(3);
		if (write(out, &i, sizeof(i)) != sizeof(i))
			_exit(4);
	}
}

/* Fork a child running body(t, start, write end of a pipe); body ends only by _exit or a
 * signal. The parent gets the pipe's read end in *rd. */
static pid_t spawn(void (*body)(struct vt *, unsigned long, int), struct vt *t,
		   unsigned long start, int *rd)
{
	int fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		body(t, start, fds[1]);
		_exit(5);
	}
	close(fds[1]);
	*rd = fds[0];
	return pid;
}

/* SIGKILL pid and reap it; returns its wait status. */
static int kill9(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void check_integrity(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* Read the writer's reports from rd until *seen reaches limit or rd ends, keeping the last
 * write number per name and the highest one. */
static void take_reports(int rd, unsigned long limit, unsigned long *seen, long last[NAMES],
			 unsigned long *maxi)
{
	unsigned long i;

	while (*seen < limit && read(rd, &i, sizeof(i)) == sizeof(i)) {
		last[i % NAMES] = (long)i;
		*maxi = i;
		(*seen)++;
	}
}

START_TEST(kill9_during_writes)
{
	long last[NAMES];
	unsigned long next = 0;
	struct vt t;
	static char want[4096];

	for (int i = 0; i < NAMES; i++)
		last[i] = -1;
	vt_fresh(&t, NULL);
	vt_done(&t);

	for (int round = 0; round < ROUNDS; round++) {
		/* Kill after a different number of reported commits each round. */
		unsigned long target = 40 + (unsigned long)round * 37, seen = 0, maxi = 0;
		int rd, status;
		pid_t pid;

		pid = spawn(writer, &t, next, &rd);
		take_reports(rd, target, &seen, last, &maxi);
		status = kill9(pid);
		/* Drain what the child reported before it died: those are committed too. */
		take_reports(rd, ULONG_MAX, &seen, last, &maxi);
		close(rd);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "writer exited on its own (status %d)", status);
		ck_assert_uint_ge(seen, target);

		ck_assert_int_eq(vt_open(&t, NULL), 0);
		check_integrity(t.db);
		for (int k = 0; k < NAMES; k++) {
			char tmpl[64];
			struct secbuf *out = NULL;
			unsigned long got;

			if (last[k] < 0)
				continue;
			snprintf(tmpl, sizeof(tmpl), "${secret:k%d}", k);
			ck_assert_int_eq(secbuf_new(VAULT_RENDER_MAX, &out), 0);
			ck_assert_msg(vault_render(t.v, OWNER, tmpl, out, &t.err) == 0, "k%d: %s", k,
				      t.err.msg);
			ck_assert_int_eq(sscanf(secbuf_cstr(out), "v%lu:", &got), 1);
			/* The last reported value, or the one in flight at the kill. */
			ck_assert_msg(got == (unsigned long)last[k] || got == maxi + 1,
				      "k%d holds write %lu, want %ld", k, got, last[k]);
			make_value(got, want, sizeof(want));
			ck_assert_str_eq(secbuf_cstr(out), want);
			if (got == maxi + 1)
				last[k] = (long)got;
			secbuf_free(out);
		}
		vt_done(&t);
		next = maxi + 2;
	}
}
END_TEST

/* After an open, no half-written key files or uncommitted .next remain. */
static void no_key_leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		ck_assert_msg(strstr(de->d_name, ".tmp") == NULL && strstr(de->d_name, ".next") == NULL,
			      "left behind: %s", de->d_name);
	closedir(d);
}

/* kill -9 while rotating the master key over and over: whatever instant it
 * lands on (before the commit, between the commit and the rename), the next
 * open finds the right key and every secret unseals. */
START_TEST(kill9_during_rotation)
{
	struct vt t;

	vt_fresh(&t, NULL);
	for (int i = 0; i < 20; i++) {
		char name[16], val[16];
		snprintf(name, sizeof(name), "r%d", i);
		snprintf(val, sizeof(val), "val-%d", i);
		ck_assert_int_eq(vault_set(t.v, 9, name, val, strlen(val), NULL, &t.err), 0);
	}
	ck_assert_int_eq(vault_blob_store(t.v, "blob", "BLOB", 4, &t.err), 0);
	vt_done(&t);

	for (int round = 0; round < 6; round++) {
		unsigned long target = 2 + (unsigned long)round, seen = 0, i;
		int rd, status;
		pid_t pid;

		pid = spawn(rotator, &t, 0, &rd);
		while (seen < target && read(rd, &i, sizeof(i)) == sizeof(i))
			seen++;
		status = kill9(pid);
		close(rd);
		ck_assert_msg(WIFSIGNALED(status), "rotating child exited (status %d)", status);

		ck_assert_msg(vt_open(&t, NULL) == 0, "round %d: %s", round, t.err.msg);
		check_integrity(t.db);
		no_key_leftovers(t.dir);
		for (int k = 0; k < 20; k++) {
			char tmpl[32], val[16];
			snprintf(tmpl, sizeof(tmpl), "${secret:r%d}", k);
			snprintf(val, sizeof(val), "val-%d", k);
			ck_assert_int_eq(vt_render(t.v, 9, tmpl, val, &t.err), 0);
		}
		vt_blob_is(&t, "blob", "BLOB");
		vt_done(&t);
	}
}
END_TEST

/* Two processes setting and deleting the same names at once: serialized, never torn. */
START_TEST(concurrent_set_delete)
{
	struct vt t;
	pid_t pids[2];

	vt_fresh(&t, NULL);
	vt_done(&t);
	for (int w = 0; w < 2; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			char value[32];
			int bad = 0;

			if (vt_open(&t, NULL) < 0)
				_exit(2);
			for (int i = 0; i < 300; i++) {
				snprintf(value, sizeof(value), "w%d-%d", w, i);
				if (vault_set(t.v, 1, "same", value, strlen(value), NULL,
					      &t.err) < 0)
					bad++;
				if (i % 3 == w) {
					int rc = vault_delete(t.v, 1, "same", &t.err);
					if (rc < 0 && rc != -ENOENT)
						bad++;
				}
			}
			vt_done(&t);
			_exit(bad == 0 ? 0 : 3);
		}
	}
	for (int w = 0; w < 2; w++) {
		int status;
		ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", w);
	}
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	check_integrity(t.db);
	{
		struct secbuf *out = NULL;
		int rc;

		ck_assert_int_eq(secbuf_new(64, &out), 0);
		rc = vault_render(t.v, 1, "${secret:same}", out, &t.err);
		ck_assert(rc == 0 || rc == -ENOENT);
		if (rc == 0)
			ck_assert(strncmp(secbuf_cstr(out), "w0-", 3) == 0 ||
				  strncmp(secbuf_cstr(out), "w1-", 3) == 0);
		secbuf_free(out);
	}
	vt_done(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vault-crash");
	TCase *tc = vt_tcase("crash", 240);

	tcase_add_test(tc, kill9_during_writes);
	tcase_add_test(tc, kill9_during_rotation);
	tcase_add_test(tc, concurrent_set_delete);
	suite_add_tcase(s, tc);
	return check_run(s);
}
