/* Unit tests for the vault: sealing, providers, failure handling, rotation, blobs. */
#include <check.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "vtest.h"
#include "../check-run.h"

static const char value1[] = "sk-test-value-1";

/* ---- secbuf ---- */

START_TEST(secbuf_basics)
{
	struct secbuf *sb = NULL;

	ck_assert_int_eq(secbuf_new(0, &sb), -EINVAL);
	ck_assert_int_eq(secbuf_new(8, &sb), 0);
	ck_assert(secbuf_locked(sb));
	ck_assert_int_eq(secbuf_append(sb, "abcd", 4), 0);
	ck_assert_int_eq(secbuf_append(sb, "efgh", 4), 0);
	ck_assert_str_eq(secbuf_cstr(sb), "abcdefgh");
	/* Overflow refused, contents unchanged. */
	ck_assert_int_eq(secbuf_append(sb, "i", 1), -ENOSPC);
	ck_assert_str_eq(secbuf_cstr(sb), "abcdefgh");
	ck_assert_int_eq(secbuf_set_len(sb, 9), -ENOSPC);
	ck_assert_int_eq(secbuf_set_len(sb, 2), 0);
	ck_assert_str_eq(secbuf_cstr(sb), "ab");
	/* Shrinking wiped the tail. */
	ck_assert_int_eq(secbuf_data(sb)[3], 0);
	secbuf_clear(sb);
	ck_assert_uint_eq(secbuf_len(sb), 0);
	ck_assert_int_eq(secbuf_data(sb)[0], 0);
	ck_assert_int_eq(secbuf_data(sb)[1], 0);
	secbuf_free(sb);
	secbuf_free(NULL);
}
END_TEST

/* The VmFlags of the mapping holding addr, from /proc/self/smaps. */
static void vm_flags(const void *addr, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[400];
	bool in = false;

	flags[0] = '\0';
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (unsigned long)addr >= lo && (unsigned long)addr < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0)
			snprintf(flags, len, "%s", line + 8);
	}
	fclose(f);
}

/* The kernel really has the buffer locked, out of core dumps, and wiped in a forked child. */
START_TEST(secbuf_kernel_flags)
{
	struct secbuf *sb = NULL;
	char flags[512];
	int status;
	pid_t pid;

	ck_assert_int_eq(secbuf_new(64, &sb), 0);
	ck_assert_int_eq(secbuf_append(sb, "secret-bytes", 12), 0);
	vm_flags(secbuf_data(sb), flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " dd") != NULL, "no dontdump: %s", flags);
	ck_assert_msg(strstr(flags, " wf") != NULL, "no wipeonfork: %s", flags);
#ifndef __SANITIZE_ADDRESS__ /* ASan's mlock interceptor does nothing */
	if (secbuf_locked(sb))
		ck_assert_msg(strstr(flags, " lo") != NULL, "not locked: %s", flags);
#endif
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The whole mapping reads as zeros here, header included. */
		const unsigned char *p = secbuf_data(sb);
		for (int i = 0; i < 12; i++)
			if (p[i] != 0)
				_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "secret visible in a child");
	/* Control: still there in the parent. */
	ck_assert(memcmp(secbuf_data(sb), "secret-bytes", 12) == 0);
	secbuf_free(sb);
}
END_TEST

START_TEST(name_syntax)
{
	char long_name[VAULT_NAME_MAX + 2];

	ck_assert(vault_name_valid("openai"));
	ck_assert(vault_name_valid("a.b-c_D9"));
	ck_assert(!vault_name_valid(""));
	ck_assert(!vault_name_valid(NULL));
	ck_assert(!vault_name_valid("a/b"));
	ck_assert(!vault_name_valid("a b"));
	ck_assert(!vault_name_valid("a}"));
	ck_assert(!vault_name_valid("\xc3\xa9"));
	memset(long_name, 'x', sizeof(long_name));
	long_name[VAULT_NAME_MAX] = '\0';
	ck_assert(vault_name_valid(long_name));
	long_name[VAULT_NAME_MAX] = 'x';
	long_name[VAULT_NAME_MAX + 1] = '\0';
	ck_assert(!vault_name_valid(long_name));
}
END_TEST

/* ---- storage and rendering ---- */

START_TEST(set_info_list_delete)
{
	char dir[128], path[256];
	struct vault_secret_info info;
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	struct stat st;
	bool created = false;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_str_eq(vault_provider_name(v), "key-file");
	snprintf(path, sizeof(path), "%s/master.key", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, 32);

	ck_assert_int_eq(vault_set(v, 1000, "tok", value1, strlen(value1), &created, &err), 0);
	ck_assert(created);
	ck_assert_int_eq(vault_set(v, 1000, "tok", "v2", 2, &created, &err), 0);
	ck_assert(!created);
	ck_assert_int_eq(vault_set(v, 1001, "tok", "other", 5, &created, &err), 0);
	ck_assert(created);
	ck_assert_int_eq(vault_set(v, 1000, "bad/name", "x", 1, NULL, &err), -EINVAL);

	ck_assert_int_eq(vault_info(v, 1000, "tok", &info, &err), 0);
	ck_assert_str_eq(info.name, "tok");
	ck_assert_int_eq(info.owner, 1000);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_VAULT);
	ck_assert(info.created > 0 && info.updated >= info.created);
	ck_assert(!info.corrupt);
	ck_assert_int_eq(vault_info(v, 1002, "tok", &info, &err), -ENOENT);

	/* Owners are separate. */
	ck_assert_int_eq(vt_render(v, 1000, "Bearer ${secret:tok}", "Bearer v2", &err), 0);
	ck_assert_int_eq(vt_render(v, 1001, "${secret:tok}", "other", &err), 0);
	ck_assert_int_eq(vt_render(v, 1002, "${secret:tok}", NULL, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "tok"));

	ck_assert_int_eq(vault_delete(v, 1000, "tok", &err), 0);
	ck_assert_int_eq(vault_delete(v, 1000, "tok", &err), -ENOENT);
	ck_assert_int_eq(vt_render(v, 1000, "${secret:tok}", NULL, &err), -ENOENT);
	ck_assert_int_eq(vt_render(v, 1001, "${secret:tok}", "other", &err), 0);
	vt_close(db, v);
}
END_TEST

static int count_cb(void *ctx, const struct vault_secret_info *info)
{
	char *names = ctx;

	strcat(names, info->name);
	strcat(names, info->corrupt ? "!," : ",");
	return 0;
}

START_TEST(list_sorted_per_owner)
{
	char dir[128], names[256] = "";
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 7, "zeta", "1", 1, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 7, "alpha", "2", 1, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 8, "beta", "3", 1, NULL, &err), 0);
	ck_assert_int_eq(vault_list(v, 7, count_cb, names, &err), 0);
	ck_assert_str_eq(names, "alpha,zeta,");
	vt_close(db, v);
}
END_TEST

START_TEST(render_templates)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	struct secbuf *small = NULL;
	static char big[VAULT_VALUE_MAX + 1];

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "a", "AAA", 3, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "b.c", "B\tB", 3, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "crlf", "x\r\nEvil: 1", 10, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "nul", "x\0y", 3, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "empty", "", 0, NULL, &err), 0);

	ck_assert_int_eq(vt_render(v, 5, "no refs", "no refs", &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "", "", &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}:${secret:b.c}!", "AAA:B\tB!", &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "x${secret:empty}y", "xy", &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "$secret:a $ {", "$secret:a $ {", &err), 0);
	/* Malformed references. */
	ck_assert_int_eq(vt_render(v, 5, "${env:HOME}", NULL, &err), -EINVAL);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a", NULL, &err), -EINVAL);
	ck_assert_int_eq(vt_render(v, 5, "${secret:}", NULL, &err), -EINVAL);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a b}", NULL, &err), -EINVAL);
	ck_assert_int_eq(vt_render(v, 5, "${secret:../a}", NULL, &err), -EINVAL);
	ck_assert_int_eq(vt_render(v, 5, "a\r\nX: ${secret:a}", NULL, &err), -EINVAL);
	/* Values that would split a header are refused, and named. */
	ck_assert_int_eq(vt_render(v, 5, "${secret:crlf}", NULL, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "crlf"));
	ck_assert_ptr_null(strstr(err.msg, "Evil"));
	ck_assert_int_eq(vt_render(v, 5, "${secret:nul}", NULL, &err), -EINVAL);

	/* Size limits: exactly 64 KiB is fine, one more byte is not. */
	memset(big, 'k', sizeof(big));
	ck_assert_int_eq(vault_set(v, 5, "big", big, VAULT_VALUE_MAX, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "big2", big, VAULT_VALUE_MAX + 1, NULL, &err), -E2BIG);
	ck_assert_int_eq(vt_render(v, 5, "${secret:big}", NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "x${secret:big}", NULL, &err), -ENOSPC);
	/* A too-small output buffer fails cleanly and is left empty. */
	ck_assert_int_eq(secbuf_new(4, &small), 0);
	ck_assert_int_eq(vault_render(v, 5, "${secret:a}:${secret:a}", small, &err), -ENOSPC);
	ck_assert_uint_eq(secbuf_len(small), 0);
	secbuf_free(small);
	vt_close(db, v);
}
END_TEST

START_TEST(render_cb_shape)
{
	char dir[128], out[16];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	size_t len = 99;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "a", "AAA", 3, NULL, &err), 0);
	ck_assert_int_eq(vault_render_cb(v, 5, "Bearer ${secret:a}", out, sizeof(out), &len), 0);
	ck_assert_str_eq(out, "Bearer AAA");
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(vault_render_cb(v, 5, "Bearer ${secret:a}", out, 10, &len), -ENOSPC);
	ck_assert_int_eq(vault_render_cb(v, 6, "${secret:a}", out, sizeof(out), &len), -ENOENT);
	vt_close(db, v);
}
END_TEST

/* The sealed-row cache never serves a stale or deleted value. */
START_TEST(cache_coherent)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "a", "one", 3, NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}", "one", &err), 0);
	ck_assert_int_eq(vault_set(v, 5, "a", "two", 3, NULL, &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}", "two", &err), 0);
	ck_assert_int_eq(vault_rotate_key(v, &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}", "two", &err), 0);
	ck_assert_int_eq(vault_delete(v, 5, "a", &err), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}", NULL, &err), -ENOENT);
	/* Many names through the direct-mapped slots. */
	for (int i = 0; i < 3000; i++) {
		char name[16], val[16], tmpl[32];
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		snprintf(tmpl, sizeof(tmpl), "${secret:n%d}", i);
		ck_assert_int_eq(vault_set(v, 5, name, val, strlen(val), NULL, &err), 0);
		ck_assert_int_eq(vt_render(v, 5, tmpl, val, &err), 0);
	}
	for (int i = 0; i < 3000; i += 7) {
		char val[16], tmpl[32];
		snprintf(val, sizeof(val), "v%d", i);
		snprintf(tmpl, sizeof(tmpl), "${secret:n%d}", i);
		ck_assert_int_eq(vt_render(v, 5, tmpl, val, &err), 0);
		ck_assert_int_eq(vt_render(v, 6, tmpl, NULL, &err), -ENOENT);
	}
	vt_close(db, v);
}
END_TEST

/* A caller's open transaction: the vault nests (SAVEPOINT) and the caller's rollback wins. */
START_TEST(nested_transaction)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(db_exec(db, "BEGIN;"), 0);
	ck_assert_int_eq(vault_set(v, 5, "a", "AAA", 3, NULL, &err), 0);
	ck_assert_int_eq(db_exec(db, "ROLLBACK;"), 0);
	ck_assert_int_eq(vt_render(v, 5, "${secret:a}", NULL, &err), -ENOENT);
	vt_close(db, v);
}
END_TEST

/* ---- attacks on stored rows ---- */

static void sql_exec(sqlite3 *db, const char *sql)
{
	ck_assert_int_eq(db_exec(db, sql), 0);
}

START_TEST(aad_binds_owner_and_name)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 1000, "victim", "VICTIM-SECRET", 13, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 2000, "mine", "attacker", 8, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 1000, "other", "x", 1, NULL, &err), 0);
	/* Control: the rows unseal where they belong. */
	ck_assert_int_eq(vt_render(v, 1000, "${secret:victim}", "VICTIM-SECRET", &err), 0);
	ck_assert_int_eq(vt_render(v, 2000, "${secret:mine}", "attacker", &err), 0);
	/* Attack 1: copy the victim's sealed row over the attacker's own row. */
	sql_exec(db, "UPDATE vault_secrets SET sealed = (SELECT sealed FROM vault_secrets "
		     "WHERE owner = 1000 AND name = 'victim') WHERE owner = 2000 AND name = 'mine';");
	vault_cache_flush(v);
	ck_assert_int_eq(vt_render(v, 2000, "${secret:mine}", NULL, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "mine"));
	ck_assert_ptr_null(strstr(err.msg, "VICTIM"));
	/* Attack 2: same owner, another name. */
	sql_exec(db, "UPDATE vault_secrets SET sealed = (SELECT sealed FROM vault_secrets "
		     "WHERE owner = 1000 AND name = 'victim') WHERE owner = 1000 AND name = 'other';");
	ck_assert_int_eq(vt_render(v, 1000, "${secret:other}", NULL, &err), -EBADMSG);
	/* Attack 3: re-own the row itself. */
	sql_exec(db, "UPDATE vault_secrets SET owner = 3000 WHERE owner = 1000 AND name = 'victim';");
	ck_assert_int_eq(vt_render(v, 3000, "${secret:victim}", NULL, &err), -EBADMSG);
	vt_close(db, v);
}
END_TEST

static uint64_t file_hash(const char *path)
{
	size_t len;
	unsigned char *b = vt_slurp(path, &len);
	uint64_t h = 1469598103934665603ULL;

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	free(b);
	return h;
}

/* Fill a vault in dir with three secrets and close it; returns the db file hash. */
static uint64_t vt_fill(const char *dir)
{
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	char path[256];

	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_set(v, 1, "one", "1111", 4, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 1, "two", "2222", 4, NULL, &err), 0);
	ck_assert_int_eq(vault_set(v, 2, "three", "3333", 4, NULL, &err), 0);
	vt_close(db, v);
	snprintf(path, sizeof(path), "%s/nonod.db", dir);
	return file_hash(path);
}

START_TEST(wrong_master_key)
{
	char dir[128], key[256], db_path[256], saved[256];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	unsigned char other[32];
	uint64_t h;

	vt_mkdir(dir, sizeof(dir));
	h = vt_fill(dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	snprintf(saved, sizeof(saved), "%s/saved.key", dir);
	snprintf(db_path, sizeof(db_path), "%s/nonod.db", dir);
	ck_assert_int_eq(rename(key, saved), 0);
	memset(other, 0x5a, sizeof(other));
	vt_write_file(key, other, sizeof(other), 0600);

	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(err.msg, "key-file"));
	ck_assert_ptr_nonnull(strstr(err.msg, key));
	ck_assert_ptr_nonnull(strstr(err.msg, "untouched"));
	ck_assert(file_hash(db_path) == h);

	/* Control: the right key opens it and every secret is there. */
	ck_assert_int_eq(rename(saved, key), 0);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:one}${secret:two}", "11112222", &err), 0);
	ck_assert_int_eq(vt_render(v, 2, "${secret:three}", "3333", &err), 0);
	vt_close(db, v);
}
END_TEST

START_TEST(missing_master_key)
{
	char dir[128], key[256], db_path[256];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	struct stat st;
	uint64_t h;

	vt_mkdir(dir, sizeof(dir));
	h = vt_fill(dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	snprintf(db_path, sizeof(db_path), "%s/nonod.db", dir);
	ck_assert_int_eq(unlink(key), 0);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(err.msg, "key-file"));
	ck_assert_ptr_nonnull(strstr(err.msg, "sealed via key-file"));
	/* No new key was made for a database that has data. */
	ck_assert_int_eq(stat(key, &st), -1);
	ck_assert(file_hash(db_path) == h);
}
END_TEST

START_TEST(key_file_refused)
{
	char dir[128], key[256], link_path[256];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	vt_fill(dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	/* Group/world readable. */
	ck_assert_int_eq(chmod(key, 0644), 0);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "0644"));
	ck_assert_int_eq(chmod(key, 0600), 0);
	/* Wrong owner (needs root to chown; skip that part otherwise). */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(key, 4321, 4321), 0);
		ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EPERM);
		ck_assert_ptr_nonnull(strstr(err.msg, "4321"));
		ck_assert_int_eq(chown(key, 0, 0), 0);
	}
	/* A symlink in its place. */
	snprintf(link_path, sizeof(link_path), "%s/real.key", dir);
	ck_assert_int_eq(rename(key, link_path), 0);
	ck_assert_int_eq(symlink(link_path, key), 0);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "symlink"));
	/* Control. */
	ck_assert_int_eq(unlink(key), 0);
	ck_assert_int_eq(rename(link_path, key), 0);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	vt_close(db, v);
}
END_TEST

START_TEST(corrupted_row_reported)
{
	char dir[128], names[256] = "";
	struct vault_status st;
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	vt_fill(dir);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	/* Flip one ciphertext byte of "two" behind the vault's back. */
	sql_exec(db, "UPDATE vault_secrets SET sealed = substr(sealed, 1, 14) || "
		     "CAST(X'ff' AS BLOB) || substr(sealed, 16) WHERE name = 'two';");
	vt_close(db, v);

	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	vault_get_status(v, &st);
	ck_assert_uint_eq(st.corrupt, 1);
	ck_assert_uint_eq(st.sealed, 3);
	ck_assert_int_eq(vault_list(v, 1, count_cb, names, &err), 0);
	ck_assert_str_eq(names, "one,two!,");
	ck_assert_int_eq(vt_render(v, 1, "${secret:two}", NULL, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "two"));
	ck_assert_int_eq(vt_render(v, 1, "${secret:one}", "1111", &err), 0);
	/* Rotation refuses to go on, names the row, and changes nothing. */
	ck_assert_int_eq(vault_rotate_key(v, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "two"));
	vt_close(db, v);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 2, "${secret:three}", "3333", &err), 0);
	vt_close(db, v);
}
END_TEST

START_TEST(sealed_rows_without_kcv_refused)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	vt_fill(dir);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	sql_exec(db, "DELETE FROM vault_meta WHERE key = 'kcv';");
	vt_close(db, v);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "key check value"));
}
END_TEST

/* ---- rotation ---- */

START_TEST(rotate_key)
{
	char dir[128], key[256];
	struct secbuf *b = NULL;
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	unsigned char *k1, *k2;
	size_t l1, l2;

	vt_mkdir(dir, sizeof(dir));
	vt_fill(dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	k1 = vt_slurp(key, &l1);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_blob_store(v, "proxy-ca", "PEM", 3, &err), 0);
	ck_assert_int_eq(vault_rotate_key(v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:one}", "1111", &err), 0);
	vt_close(db, v);
	k2 = vt_slurp(key, &l2);
	ck_assert_uint_eq(l1, 32);
	ck_assert_uint_eq(l2, 32);
	ck_assert(memcmp(k1, k2, 32) != 0);
	snprintf(key, sizeof(key), "%s/master.key.next", dir);
	ck_assert_int_eq(access(key, F_OK), -1);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	/* Reopen under the new key: everything unseals. */
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:two}", "2222", &err), 0);
	ck_assert_int_eq(vt_render(v, 2, "${secret:three}", "3333", &err), 0);
	ck_assert_int_eq(vault_blob_load(v, "proxy-ca", &b, &err), 0);
	ck_assert_uint_eq(secbuf_len(b), 3);
	secbuf_free(b);
	vt_close(db, v);
	/* The old key no longer opens it. */
	vt_write_file(key, k1, l1, 0600);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), -EKEYREJECTED);
	free(k1);
	free(k2);
}
END_TEST

/* A crash after the commit but before the rename: the next open finishes it. */
START_TEST(rotate_interrupted)
{
	char dir[128], key[256], next[256];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	unsigned char *k1, *k2, *k3, junk[32];
	size_t l1, l2, l3;

	vt_mkdir(dir, sizeof(dir));
	vt_fill(dir);
	snprintf(key, sizeof(key), "%s/master.key", dir);
	snprintf(next, sizeof(next), "%s/master.key.next", dir);
	k1 = vt_slurp(key, &l1);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_rotate_key(v, &err), 0);
	vt_close(db, v);
	/* Put the state back to "committed, not renamed". */
	ck_assert_int_eq(rename(key, next), 0);
	vt_write_file(key, k1, l1, 0600);
	k2 = vt_slurp(next, &l2);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:one}", "1111", &err), 0);
	vt_close(db, v);
	k3 = vt_slurp(key, &l3);
	ck_assert(l3 == 32 && memcmp(k2, k3, 32) == 0);
	ck_assert_int_eq(access(next, F_OK), -1);

	/* A rotation that never committed leaves a stray .next: it is discarded. */
	memset(junk, 7, sizeof(junk));
	vt_write_file(next, junk, sizeof(junk), 0600);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:two}", "2222", &err), 0);
	vt_close(db, v);
	ck_assert_int_eq(access(next, F_OK), -1);
	free(k1);
	free(k2);
	free(k3);
}
END_TEST

/* ---- blobs ---- */

START_TEST(blobs)
{
	char dir[128];
	struct secbuf *out = NULL;
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	unsigned char *sealed = NULL;
	size_t len = 0;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_seal_blob(v, "ca-key", "PRIVATE", 7, &sealed, &len, &err), 0);
	ck_assert_uint_eq(len, 7 + 29);
	ck_assert_ptr_null(memmem(sealed, len, "PRIVATE", 7));
	ck_assert_int_eq(vault_unseal_blob(v, "ca-key", sealed, len, &out, &err), 0);
	ck_assert_uint_eq(secbuf_len(out), 7);
	ck_assert(memcmp(secbuf_cdata(out), "PRIVATE", 7) == 0);
	secbuf_free(out);
	/* Bound to its purpose, and tamper-evident. */
	ck_assert_int_eq(vault_unseal_blob(v, "other", sealed, len, &out, &err), -EBADMSG);
	ck_assert_ptr_null(out);
	sealed[len - 1] ^= 1;
	ck_assert_int_eq(vault_unseal_blob(v, "ca-key", sealed, len, &out, &err), -EBADMSG);
	ck_assert_int_eq(vault_unseal_blob(v, "ca-key", sealed, 10, &out, &err), -EBADMSG);
	/* A secret row's ciphertext is not a blob (kind is bound too). */
	free(sealed);
	ck_assert_int_eq(vault_blob_load(v, "nothing", &out, &err), -ENOENT);
	ck_assert_int_eq(vault_blob_store(v, "ca-key", "K1", 2, &err), 0);
	ck_assert_int_eq(vault_blob_store(v, "ca-key", "K22", 3, &err), 0);
	ck_assert_int_eq(vault_blob_load(v, "ca-key", &out, &err), 0);
	ck_assert_str_eq(secbuf_cstr(out), "K22");
	secbuf_free(out);
	vt_close(db, v);
}
END_TEST

START_TEST(proxy_ca_callbacks)
{
	char dir[128];
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	char *cert = NULL, *key = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_proxy_ca_load(v, &cert, &key), -ENOENT);
	ck_assert_ptr_null(cert);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(vault_proxy_ca_store(v, "CERT-PEM", "KEY-PEM"), 0);
	/* Nested in a caller's transaction that rolls back: nothing stored. */
	ck_assert_int_eq(db_exec(db, "BEGIN;"), 0);
	ck_assert_int_eq(vault_proxy_ca_store(v, "CERT2", "KEY2"), 0);
	ck_assert_int_eq(db_exec(db, "ROLLBACK;"), 0);
	vt_close(db, v);
	ck_assert_int_eq(vt_open(dir, NULL, &db, &v, &err), 0);
	ck_assert_int_eq(vault_proxy_ca_load(v, &cert, &key), 0);
	ck_assert_str_eq(cert, "CERT-PEM");
	ck_assert_str_eq(key, "KEY-PEM");
	free(cert);
	free(key);
	vt_close(db, v);
}
END_TEST

/* ---- providers ---- */

START_TEST(credential_provider)
{
	char dir[128], cdir[256], cred[300];
	static const char hex[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	struct vault_options o = { .provider = "auto" };
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	snprintf(cdir, sizeof(cdir), "%s/creds", dir);
	ck_assert_int_eq(mkdir(cdir, 0700), 0);
	snprintf(cred, sizeof(cred), "%s/nono.master-key", cdir);
	vt_write_file(cred, hex, strlen(hex), 0400);
	setenv("CREDENTIALS_DIRECTORY", cdir, 1);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
	ck_assert_str_eq(vault_provider_name(v), "systemd-credential");
	ck_assert_str_eq(vault_provider_source(v), cred);
	ck_assert_int_eq(vault_set(v, 1, "x", "y", 1, NULL, &err), 0);
	vt_close(db, v);
	/* The same key as 32 raw bytes is the same key. */
	{
		unsigned char raw[32];
		for (int i = 0; i < 32; i++)
			raw[i] = (unsigned char)((i % 16) * 0x11);
		unlink(cred);
		vt_write_file(cred, raw, sizeof(raw), 0400);
		ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
		ck_assert_int_eq(vt_render(v, 1, "${secret:x}", "y", &err), 0);
		vt_close(db, v);
	}
	/* Bad material is refused, naming the provider (not skipped to the next one). */
	unlink(cred);
	vt_write_file(cred, "short", 5, 0400);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "systemd-credential"));
	/* Gone: auto falls through to the key file, which the sealed vault never had. */
	unlink(cred);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(err.msg, "sealed via systemd-credential"));
	unsetenv("CREDENTIALS_DIRECTORY");
}
END_TEST

#ifndef KEY_SPEC_PROCESS_KEYRING
#define KEY_SPEC_PROCESS_KEYRING -2
#endif

START_TEST(keyring_provider)
{
	char dir[128], desc[64], next_desc[80];
	struct vault_options o = { .provider = "auto", .keyring_desc = desc };
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;
	unsigned char k[32], k2[32];
	long serial;

	unsetenv("CREDENTIALS_DIRECTORY");
	snprintf(desc, sizeof(desc), "nono:test-%d", (int)getpid());
	memset(k, 0x42, sizeof(k));
	serial = syscall(SYS_add_key, "user", desc, k, sizeof(k), KEY_SPEC_PROCESS_KEYRING);
	if (serial < 0 && (errno == ENOSYS || errno == EPERM || errno == EACCES)) {
		fprintf(stderr, "keyring_provider: add_key unavailable (%s): part skipped\n",
			strerror(errno));
		return;
	}
	ck_assert_int_ge(serial, 0);
	vt_mkdir(dir, sizeof(dir));
	/* Without a pinned provider the keyring comes before the key file. */
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
	ck_assert_str_eq(vault_provider_name(v), "kernel-keyring");
	ck_assert_ptr_nonnull(strstr(vault_provider_source(v), desc));
	ck_assert_int_eq(vault_set(v, 1, "x", "kr", 2, NULL, &err), 0);
	/* Rotation needs the new key provisioned as "<desc>.next". */
	ck_assert_int_eq(vault_rotate_key(v, &err), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(err.msg, ".next"));
	vt_close(db, v);
	/* A different key in the keyring: clear error naming the provider. */
	memset(k2, 0x43, sizeof(k2));
	ck_assert_int_ge(syscall(SYS_add_key, "user", desc, k2, sizeof(k2),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(err.msg, "kernel-keyring"));
	/* Control: the right key again. */
	ck_assert_int_ge(syscall(SYS_add_key, "user", desc, k, sizeof(k),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:x}", "kr", &err), 0);
	/* Rotate to "<desc>.next" = k2. */
	snprintf(next_desc, sizeof(next_desc), "%s.next", desc);
	ck_assert_int_ge(syscall(SYS_add_key, "user", next_desc, k, sizeof(k),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_eq(vault_rotate_key(v, &err), -EINVAL); /* same key: refused */
	ck_assert_int_ge(syscall(SYS_add_key, "user", next_desc, k2, sizeof(k2),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_eq(vault_rotate_key(v, &err), 0);
	ck_assert_int_eq(vt_render(v, 1, "${secret:x}", "kr", &err), 0);
	vt_close(db, v);
	/* Not promoted yet: the main key is old, the .next one is accepted. */
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
	ck_assert_ptr_nonnull(strstr(vault_provider_source(v), ".next"));
	ck_assert_int_eq(vt_render(v, 1, "${secret:x}", "kr", &err), 0);
	vt_close(db, v);
	/* Promoted: main = k2, .next gone. */
	ck_assert_int_ge(syscall(SYS_add_key, "user", desc, k2, sizeof(k2),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_ge(syscall(SYS_add_key, "user", next_desc, k, sizeof(k),
				 KEY_SPEC_PROCESS_KEYRING), 0);
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), 0);
	ck_assert_ptr_null(strstr(vault_provider_source(v), ".next"));
	ck_assert_int_eq(vt_render(v, 1, "${secret:x}", "kr", &err), 0);
	vt_close(db, v);
}
END_TEST

START_TEST(unknown_provider)
{
	char dir[128];
	struct vault_options o = { .provider = "tpm-magic" };
	struct vault_options mac = { .provider = "macos-keychain" };
	struct vault_err err;
	struct vault *v = NULL;
	sqlite3 *db = NULL;

	vt_mkdir(dir, sizeof(dir));
	ck_assert_int_eq(vt_open(dir, &o, &db, &v, &err), -EINVAL);
#ifndef __APPLE__
	ck_assert_int_eq(vt_open(dir, &mac, &db, &v, &err), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err.msg, "macos-keychain"));
#endif
}
END_TEST

START_TEST(harden)
{
	struct rlimit rl;

	ck_assert_int_eq(vault_harden_process(), 0);
	ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_CORE, &rl), 0);
	ck_assert_uint_eq(rl.rlim_cur, 0);
	ck_assert_uint_eq(rl.rlim_max, 0);
}
END_TEST

static Suite *vault_suite(void)
{
	Suite *s = suite_create("vault");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, vt_root_setup, vt_root_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, secbuf_basics);
	tcase_add_test(tc, secbuf_kernel_flags);
	tcase_add_test(tc, name_syntax);
	tcase_add_test(tc, set_info_list_delete);
	tcase_add_test(tc, list_sorted_per_owner);
	tcase_add_test(tc, render_templates);
	tcase_add_test(tc, render_cb_shape);
	tcase_add_test(tc, cache_coherent);
	tcase_add_test(tc, nested_transaction);
	tcase_add_test(tc, aad_binds_owner_and_name);
	tcase_add_test(tc, wrong_master_key);
	tcase_add_test(tc, missing_master_key);
	tcase_add_test(tc, key_file_refused);
	tcase_add_test(tc, corrupted_row_reported);
	tcase_add_test(tc, sealed_rows_without_kcv_refused);
	tcase_add_test(tc, rotate_key);
	tcase_add_test(tc, rotate_interrupted);
	tcase_add_test(tc, blobs);
	tcase_add_test(tc, proxy_ca_callbacks);
	tcase_add_test(tc, credential_provider);
	tcase_add_test(tc, keyring_provider);
	tcase_add_test(tc, unknown_provider);
	if (getenv("CK_FORK") == NULL || strcmp(getenv("CK_FORK"), "no") != 0)
		tcase_add_test(tc, harden); /* changes the process: only in a forked child */
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(vault_suite());
}
