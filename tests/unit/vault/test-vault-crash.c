/*
 * Crash safety: a child process hammers secret sets and is SIGKILLed in the
 * middle; the database must then pass integrity_check, open under the same
 * master key, and every set the child reported as committed must unseal to
 * its value (or to the one set that was in flight when it died).
 */
#include <check.h>
#include <dirent.h>
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

static void writer(const char *dir, unsigned long start, int out)
{
	static char value[4096];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	if (vt_open(dir, NULL, &db, &v, &err) < 0)
		_exit(2);
	for (unsigned long i = start;; i++) {
		char name[32];
		size_t len = make_value(i, value, sizeof(value));

		snprintf(name, sizeof(name), "k%lu", i % NAMES);
		if (vault_set(v, OWNER, name, value, len, NULL, &err) < 0)
			_exit(3);
		/* Reported only after the commit returned. */
		if (write(out, &i, sizeof(i)) != sizeof(i))
			_exit(4);
	}
}

static void check_integrity(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

START_TEST(kill9_during_writes)
{
	long last[NAMES];
	unsigned long next = 0;
	char dir[128];
	static char want[4096];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	for (int i = 0; i < NAMES; i++)
		last[i] = -1;
	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	vt_close(db, v);

	for (int round = 0; round < ROUNDS; round++) {
		/* Kill after a different number of reported commits each round. */
		unsigned long target = 40 + (unsigned long)round * 37, seen = 0, i, maxi = 0;
		int fds[2], status;
		pid_t pid;

		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			writer(dir, next, fds[1]);
		}
		close(fds[1]);
		while (seen < target && read(fds[0], &i, sizeof(i)) == sizeof(i)) {
			last[i % NAMES] = (long)i;
			maxi = i;
			seen++;
		}
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		/* Drain what the child reported before it died: those are committed too. */
		while (read(fds[0], &i, sizeof(i)) == sizeof(i)) {
			last[i % NAMES] = (long)i;
			maxi = i;
			seen++;
		}
		close(fds[0]);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "writer exited on its own (status %d)", status);
		ck_assert_uint_ge(seen, target);

		ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
		check_integrity(db);
		for (int k = 0; k < NAMES; k++) {
			char tmpl[64];
			struct secbuf *out = NULL;
			unsigned long got;

			if (last[k] < 0)
				continue;
			snprintf(tmpl, sizeof(tmpl), "${secret:k%d}", k);
			ck_assert_int_eq(secbuf_new(VAULT_RENDER_MAX, &out), 0);
			ck_assert_msg(vault_render(v, OWNER, tmpl, out, &err) == 0, "k%d: %s", k, err.msg);
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
		vt_close(db, v);
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
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	for (int i = 0; i < 20; i++) {
		char name[16], val[16];
		snprintf(name, sizeof(name), "r%d", i);
		snprintf(val, sizeof(val), "val-%d", i);
		ck_assert_int_eq(vault_set(v, 9, name, val, strlen(val), NULL, &err), 0);
	}
	ck_assert_int_eq(vault_blob_store(v, "blob", "BLOB", 4, &err), 0);
	vt_close(db, v);

	for (int round = 0; round < 6; round++) {
		unsigned long target = 2 + (unsigned long)round, seen = 0, i;
		int fds[2], status;
		pid_t pid;

		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fds[0]);
			if (vt_open(dir, NULL, &db, &v, &err) < 0)
				_exit(2);
			for (i = 0;; i++) {
				if (vault_rotate_key(v, &err) < 0)
					_exit(3);
				if (write(fds[1], &i, sizeof(i)) != sizeof(i))
					_exit(4);
			}
		}
		close(fds[1]);
		while (seen < target && read(fds[0], &i, sizeof(i)) == sizeof(i))
			seen++;
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		close(fds[0]);
		ck_assert_msg(WIFSIGNALED(status), "rotating child exited (status %d)", status);

		ck_assert_msg(vt_open(dir, NULL, &db, &v, &err) == 0, "round %d: %s", round, err.msg);
		check_integrity(db);
		no_key_leftovers(dir);
		for (int k = 0; k < 20; k++) {
			char tmpl[32], val[16];
			snprintf(tmpl, sizeof(tmpl), "${secret:r%d}", k);
			snprintf(val, sizeof(val), "val-%d", k);
			ck_assert_int_eq(vt_render(v, 9, tmpl, val, &err), 0);
		}
		{
			struct secbuf *b = NULL;
			ck_assert_int_eq(vault_blob_load(v, "blob", &b, &err), 0);
			ck_assert_str_eq(secbuf_cstr(b), "BLOB");
			secbuf_free(b);
		}
		vt_close(db, v);
	}
}
END_TEST

/* Two processes setting and deleting the same names at once: serialized, never torn. */
START_TEST(concurrent_set_delete)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	pid_t pids[2];

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	vt_close(db, v);
	for (int w = 0; w < 2; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			char value[32];
			int bad = 0;

			if (vt_open(dir, NULL, &db, &v, &err) < 0)
				_exit(2);
			for (int i = 0; i < 300; i++) {
				snprintf(value, sizeof(value), "w%d-%d", w, i);
				if (vault_set(v, 1, "same", value, strlen(value), NULL, &err) < 0)
					bad++;
				if (i % 3 == w) {
					int rc = vault_delete(v, 1, "same", &err);
					if (rc < 0 && rc != -ENOENT)
						bad++;
				}
			}
			vt_close(db, v);
			_exit(bad == 0 ? 0 : 3);
		}
	}
	for (int w = 0; w < 2; w++) {
		int status;
		ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", w);
	}
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	check_integrity(db);
	{
		struct secbuf *out = NULL;
		int rc;

		ck_assert_int_eq(secbuf_new(64, &out), 0);
		rc = vault_render(v, 1, "${secret:same}", out, &err);
		ck_assert(rc == 0 || rc == -ENOENT);
		if (rc == 0)
			ck_assert(strncmp(secbuf_cstr(out), "w0-", 3) == 0 ||
				  strncmp(secbuf_cstr(out), "w1-", 3) == 0);
		secbuf_free(out);
	}
	vt_close(db, v);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vault-crash");
	TCase *tc = tcase_create("crash");

	tcase_add_unchecked_fixture(tc, vt_root_setup, vt_root_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, kill9_during_writes);
	tcase_add_test(tc, kill9_during_rotation);
	tcase_add_test(tc, concurrent_set_delete);
	suite_add_tcase(s, tc);
	return check_run(s);
}
