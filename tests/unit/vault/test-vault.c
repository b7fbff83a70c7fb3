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
	struct vt t;
	char path[256];
	struct vault_secret_info info;
	struct stat st;
	bool created = false;

	vt_fresh(&t, NULL);
	ck_assert_str_eq(vault_provider_name(t.v), "key-file");
	vt_path(&t, "master.key", path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(st.st_size, 32);

	ck_assert_int_eq(vault_set(t.v, 1000, "tok", value1, strlen(value1), &created, &t.err), 0);
	ck_assert(created);
	ck_assert_int_eq(vault_set(t.v, 1000, "tok", "v2", 2, &created, &t.err), 0);
	ck_assert(!created);
	ck_assert_int_eq(vault_set(t.v, 1001, "tok", "other", 5, &created, &t.err), 0);
	ck_assert(created);
	ck_assert_int_eq(vault_set(t.v, 1000, "bad/name", "x", 1, NULL, &t.err), -EINVAL);

	ck_assert_int_eq(vault_info(t.v, 1000, "tok", &info, &t.err), 0);
	ck_assert_str_eq(info.name, "tok");
	ck_assert_int_eq(info.owner, 1000);
	ck_assert_int_eq(info.backend, VAULT_BACKEND_VAULT);
	ck_assert(info.created > 0 && info.updated >= info.created);
	ck_assert(!info.corrupt);
	ck_assert_int_eq(vault_info(t.v, 1002, "tok", &info, &t.err), -ENOENT);

	/* Owners are separate. */
	ck_assert_int_eq(vt_render(t.v, 1000, "Bearer ${secret:tok}", "Bearer v2", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 1001, "${secret:tok}", "other", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 1002, "${secret:tok}", NULL, &t.err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "tok"));

	ck_assert_int_eq(vault_delete(t.v, 1000, "tok", &t.err), 0);
	ck_assert_int_eq(vault_delete(t.v, 1000, "tok", &t.err), -ENOENT);
	ck_assert_int_eq(vt_render(t.v, 1000, "${secret:tok}", NULL, &t.err), -ENOENT);
	ck_assert_int_eq(vt_render(t.v, 1001, "${secret:tok}", "other", &t.err), 0);
	vt_done(&t);
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
	struct vt t;
	char names[256] = "";

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_set(t.v, 7, "zeta", "1", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 7, "alpha", "2", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 8, "beta", "3", 1, NULL, &t.err), 0);
	ck_assert_int_eq(vault_list(t.v, 7, count_cb, names, &t.err), 0);
	ck_assert_str_eq(names, "alpha,zeta,");
	vt_done(&t);
}
END_TEST

START_TEST(render_templates)
{
	struct vt t;
	struct secbuf *small = NULL;
	static char big[VAULT_VALUE_MAX + 1];

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_set(t.v, 5, "a", "AAA", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "b.c", "B\tB", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "crlf", "x\r\nEvil: 1", 10, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "nul", "x\0y", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "empty", "", 0, NULL, &t.err), 0);

	ck_assert_int_eq(vt_render(t.v, 5, "no refs", "no refs", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "", "", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}:${secret:b.c}!", "AAA:B\tB!", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "x${secret:empty}y", "xy", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "$secret:a $ {", "$secret:a $ {", &t.err), 0);
	/* Malformed references. */
	ck_assert_int_eq(vt_render(t.v, 5, "${env:HOME}", NULL, &t.err), -EINVAL);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a", NULL, &t.err), -EINVAL);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:}", NULL, &t.err), -EINVAL);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a b}", NULL, &t.err), -EINVAL);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:../a}", NULL, &t.err), -EINVAL);
	ck_assert_int_eq(vt_render(t.v, 5, "a\r\nX: ${secret:a}", NULL, &t.err), -EINVAL);
	/* Values that would split a header are refused, and named. */
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:crlf}", NULL, &t.err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "crlf"));
	ck_assert_ptr_null(strstr(t.err.msg, "Evil"));
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:nul}", NULL, &t.err), -EINVAL);

	/* Size limits: exactly 64 KiB is fine, one more byte is not. */
	memset(big, 'k', sizeof(big));
	ck_assert_int_eq(vault_set(t.v, 5, "big", big, VAULT_VALUE_MAX, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "big2", big, VAULT_VALUE_MAX + 1, NULL, &t.err), -E2BIG);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:big}", NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "x${secret:big}", NULL, &t.err), -ENOSPC);
	/* A too-small output buffer fails cleanly and is left empty. */
	ck_assert_int_eq(secbuf_new(4, &small), 0);
	ck_assert_int_eq(vault_render(t.v, 5, "${secret:a}:${secret:a}", small, &t.err), -ENOSPC);
	ck_assert_uint_eq(secbuf_len(small), 0);
	secbuf_free(small);
	vt_done(&t);
}
END_TEST

START_TEST(render_cb_shape)
{
	struct vt t;
	char out[16];
	size_t len = 99;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_set(t.v, 5, "a", "AAA", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vault_render_cb(t.v, 5, "Bearer ${secret:a}", out, sizeof(out), &len), 0);
	ck_assert_str_eq(out, "Bearer AAA");
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(vault_render_cb(t.v, 5, "Bearer ${secret:a}", out, 10, &len), -ENOSPC);
	ck_assert_int_eq(vault_render_cb(t.v, 6, "${secret:a}", out, sizeof(out), &len), -ENOENT);
	vt_done(&t);
}
END_TEST

/* The sealed-row cache never serves a stale or deleted value. */
START_TEST(cache_coherent)
{
	struct vt t;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_set(t.v, 5, "a", "one", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}", "one", &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "a", "two", 3, NULL, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}", "two", &t.err), 0);
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}", "two", &t.err), 0);
	ck_assert_int_eq(vault_delete(t.v, 5, "a", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}", NULL, &t.err), -ENOENT);
	/* Many names through the direct-mapped slots. */
	for (int i = 0; i < 3000; i++) {
		char name[16], val[16], tmpl[32];
		snprintf(name, sizeof(name), "n%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		snprintf(tmpl, sizeof(tmpl), "${secret:n%d}", i);
		ck_assert_int_eq(vault_set(t.v, 5, name, val, strlen(val), NULL, &t.err), 0);
		ck_assert_int_eq(vt_render(t.v, 5, tmpl, val, &t.err), 0);
	}
	for (int i = 0; i < 3000; i += 7) {
		char val[16], tmpl[32];
		snprintf(val, sizeof(val), "v%d", i);
		snprintf(tmpl, sizeof(tmpl), "${secret:n%d}", i);
		ck_assert_int_eq(vt_render(t.v, 5, tmpl, val, &t.err), 0);
		ck_assert_int_eq(vt_render(t.v, 6, tmpl, NULL, &t.err), -ENOENT);
	}
	vt_done(&t);
}
END_TEST

/* A caller's open transaction: the vault nests (SAVEPOINT) and the caller's rollback wins. */
START_TEST(nested_transaction)
{
	struct vt t;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(db_exec(t.db, "BEGIN;"), 0);
	ck_assert_int_eq(vault_set(t.v, 5, "a", "AAA", 3, NULL, &t.err), 0);
	ck_assert_int_eq(db_exec(t.db, "ROLLBACK;"), 0);
	ck_assert_int_eq(vt_render(t.v, 5, "${secret:a}", NULL, &t.err), -ENOENT);
	vt_done(&t);
}
END_TEST

/* ---- attacks on stored rows ---- */

static void sql_exec(sqlite3 *db, const char *sql)
{
	ck_assert_int_eq(db_exec(db, sql), 0);
}

START_TEST(aad_binds_owner_and_name)
{
	struct vt t;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_set(t.v, 1000, "victim", "VICTIM-SECRET", 13, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 2000, "mine", "attacker", 8, NULL, &t.err), 0);
	ck_assert_int_eq(vault_set(t.v, 1000, "other", "x", 1, NULL, &t.err), 0);
	/* Control: the rows unseal where they belong. */
	ck_assert_int_eq(vt_render(t.v, 1000, "${secret:victim}", "VICTIM-SECRET", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 2000, "${secret:mine}", "attacker", &t.err), 0);
	/* Attack 1: copy the victim's sealed row over the attacker's own row. */
	sql_exec(t.db, "UPDATE vault_secrets SET sealed = (SELECT sealed FROM vault_secrets "
		       "WHERE owner = 1000 AND name = 'victim') "
		       "WHERE owner = 2000 AND name = 'mine';");
	vault_cache_flush(t.v);
	ck_assert_int_eq(vt_render(t.v, 2000, "${secret:mine}", NULL, &t.err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "mine"));
	ck_assert_ptr_null(strstr(t.err.msg, "VICTIM"));
	/* Attack 2: same owner, another name. */
	sql_exec(t.db, "UPDATE vault_secrets SET sealed = (SELECT sealed FROM vault_secrets "
		       "WHERE owner = 1000 AND name = 'victim') "
		       "WHERE owner = 1000 AND name = 'other';");
	ck_assert_int_eq(vt_render(t.v, 1000, "${secret:other}", NULL, &t.err), -EBADMSG);
	/* Attack 3: re-own the row itself. */
	sql_exec(t.db, "UPDATE vault_secrets SET owner = 3000 "
		       "WHERE owner = 1000 AND name = 'victim';");
	ck_assert_int_eq(vt_render(t.v, 3000, "${secret:victim}", NULL, &t.err), -EBADMSG);
	vt_done(&t);
}
END_TEST

/* FNV-1a of t's database file. */
static uint64_t db_hash(const struct vt *t)
{
	char path[256];
	size_t len;
	unsigned char *b;
	uint64_t h = 1469598103934665603ULL;

	vt_path(t, "nonod.db", path, sizeof(path));
	b = vt_slurp(path, &len);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	free(b);
	return h;
}

/* A fresh state dir in t holding a closed vault with three secrets; returns db_hash(t). */
static uint64_t vt_fill(struct vt *t)
{
	vt_fresh(t, NULL);
	ck_assert_int_eq(vault_set(t->v, 1, "one", "1111", 4, NULL, &t->err), 0);
	ck_assert_int_eq(vault_set(t->v, 1, "two", "2222", 4, NULL, &t->err), 0);
	ck_assert_int_eq(vault_set(t->v, 2, "three", "3333", 4, NULL, &t->err), 0);
	vt_done(t);
	return db_hash(t);
}

START_TEST(wrong_master_key)
{
	struct vt t;
	char key[256], saved[256];
	unsigned char other[32];
	uint64_t h;

	h = vt_fill(&t);
	vt_path(&t, "master.key", key, sizeof(key));
	vt_path(&t, "saved.key", saved, sizeof(saved));
	ck_assert_int_eq(rename(key, saved), 0);
	memset(other, 0x5a, sizeof(other));
	vt_write_file(key, other, sizeof(other), 0600);

	ck_assert_int_eq(vt_open(&t, NULL), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "key-file"));
	ck_assert_ptr_nonnull(strstr(t.err.msg, key));
	ck_assert_ptr_nonnull(strstr(t.err.msg, "untouched"));
	ck_assert(db_hash(&t) == h);

	/* Control: the right key opens it and every secret is there. */
	ck_assert_int_eq(rename(saved, key), 0);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:one}${secret:two}", "11112222", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 2, "${secret:three}", "3333", &t.err), 0);
	vt_done(&t);
}
END_TEST

START_TEST(missing_master_key)
{
	struct vt t;
	char key[256];
	struct stat st;
	uint64_t h;

	h = vt_fill(&t);
	vt_path(&t, "master.key", key, sizeof(key));
	ck_assert_int_eq(unlink(key), 0);
	ck_assert_int_eq(vt_open(&t, NULL), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "key-file"));
	ck_assert_ptr_nonnull(strstr(t.err.msg, "sealed via key-file"));
	/* No new key was made for a database that has data. */
	ck_assert_int_eq(stat(key, &st), -1);
	ck_assert(db_hash(&t) == h);
}
END_TEST

START_TEST(key_file_refused)
{
	struct vt t;
	char key[256], link_path[256];

	vt_fill(&t);
	vt_path(&t, "master.key", key, sizeof(key));
	/* Group/world readable. */
	ck_assert_int_eq(chmod(key, 0644), 0);
	ck_assert_int_eq(vt_open(&t, NULL), -EPERM);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "0644"));
	ck_assert_int_eq(chmod(key, 0600), 0);
	/* Wrong owner (needs root to chown; skip that part otherwise). */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(key, 4321, 4321), 0);
		ck_assert_int_eq(vt_open(&t, NULL), -EPERM);
		ck_assert_ptr_nonnull(strstr(t.err.msg, "4321"));
		ck_assert_int_eq(chown(key, 0, 0), 0);
	}
	/* A symlink in its place. */
	vt_path(&t, "real.key", link_path, sizeof(link_path));
	ck_assert_int_eq(rename(key, link_path), 0);
	ck_assert_int_eq(symlink(link_path, key), 0);
	ck_assert_int_eq(vt_open(&t, NULL), -EPERM);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "symlink"));
	/* Control. */
	ck_assert_int_eq(unlink(key), 0);
	ck_assert_int_eq(rename(link_path, key), 0);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	vt_done(&t);
}
END_TEST

START_TEST(corrupted_row_reported)
{
	struct vt t;
	char names[256] = "";
	struct vault_status st;

	vt_fill(&t);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	/* Flip one ciphertext byte of "two" behind the vault's back. */
	sql_exec(t.db, "UPDATE vault_secrets SET sealed = substr(sealed, 1, 14) || "
		       "CAST(X'ff' AS BLOB) || substr(sealed, 16) WHERE name = 'two';");
	vt_done(&t);

	ck_assert_int_eq(vt_open(&t, NULL), 0);
	vault_get_status(t.v, &st);
	ck_assert_uint_eq(st.corrupt, 1);
	ck_assert_uint_eq(st.sealed, 3);
	ck_assert_int_eq(vault_list(t.v, 1, count_cb, names, &t.err), 0);
	ck_assert_str_eq(names, "one,two!,");
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:two}", NULL, &t.err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "two"));
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:one}", "1111", &t.err), 0);
	/* Rotation refuses to go on, names the row, and changes nothing. */
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "two"));
	vt_done(&t);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vt_render(t.v, 2, "${secret:three}", "3333", &t.err), 0);
	vt_done(&t);
}
END_TEST

START_TEST(sealed_rows_without_kcv_refused)
{
	struct vt t;

	vt_fill(&t);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	sql_exec(t.db, "DELETE FROM vault_meta WHERE key = 'kcv';");
	vt_done(&t);
	ck_assert_int_eq(vt_open(&t, NULL), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "key check value"));
}
END_TEST

/* ---- rotation ---- */

START_TEST(rotate_key)
{
	struct vt t;
	char key[256];
	unsigned char *k1, *k2;
	size_t l1, l2;

	vt_fill(&t);
	vt_path(&t, "master.key", key, sizeof(key));
	k1 = vt_slurp(key, &l1);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vault_blob_store(t.v, "proxy-ca", "PEM", 3, &t.err), 0);
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:one}", "1111", &t.err), 0);
	vt_done(&t);
	k2 = vt_slurp(key, &l2);
	ck_assert_uint_eq(l1, 32);
	ck_assert_uint_eq(l2, 32);
	ck_assert(memcmp(k1, k2, 32) != 0);
	vt_path(&t, "master.key.next", key, sizeof(key));
	ck_assert_int_eq(access(key, F_OK), -1);
	vt_path(&t, "master.key", key, sizeof(key));
	/* Reopen under the new key: everything unseals. */
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:two}", "2222", &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 2, "${secret:three}", "3333", &t.err), 0);
	vt_blob_is(&t, "proxy-ca", "PEM");
	vt_done(&t);
	/* The old key no longer opens it. */
	vt_write_file(key, k1, l1, 0600);
	ck_assert_int_eq(vt_open(&t, NULL), -EKEYREJECTED);
	free(k1);
	free(k2);
}
END_TEST

/* A crash after the commit but before the rename: the next open finishes it. */
START_TEST(rotate_interrupted)
{
	struct vt t;
	char key[256], next[256];
	unsigned char *k1, *k2, *k3, junk[32];
	size_t l1, l2, l3;

	vt_fill(&t);
	vt_path(&t, "master.key", key, sizeof(key));
	vt_path(&t, "master.key.next", next, sizeof(next));
	k1 = vt_slurp(key, &l1);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), 0);
	vt_done(&t);
	/* Put the state back to "committed, not renamed". */
	ck_assert_int_eq(rename(key, next), 0);
	vt_write_file(key, k1, l1, 0600);
	k2 = vt_slurp(next, &l2);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:one}", "1111", &t.err), 0);
	vt_done(&t);
	k3 = vt_slurp(key, &l3);
	ck_assert(l3 == 32 && memcmp(k2, k3, 32) == 0);
	ck_assert_int_eq(access(next, F_OK), -1);

	/* A rotation that never committed leaves a stray .next: it is discarded. */
	memset(junk, 7, sizeof(junk));
	vt_write_file(next, junk, sizeof(junk), 0600);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:two}", "2222", &t.err), 0);
	vt_done(&t);
	ck_assert_int_eq(access(next, F_OK), -1);
	free(k1);
	free(k2);
	free(k3);
}
END_TEST

/* ---- blobs ---- */

START_TEST(blobs)
{
	struct vt t;
	struct secbuf *out = NULL;
	unsigned char *sealed = NULL;
	size_t len = 0;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_seal_blob(t.v, "ca-key", "PRIVATE", 7, &sealed, &len, &t.err), 0);
	ck_assert_uint_eq(len, 7 + 29);
	ck_assert_ptr_null(memmem(sealed, len, "PRIVATE", 7));
	ck_assert_int_eq(vault_unseal_blob(t.v, "ca-key", sealed, len, &out, &t.err), 0);
	ck_assert_uint_eq(secbuf_len(out), 7);
	ck_assert(memcmp(secbuf_cdata(out), "PRIVATE", 7) == 0);
	secbuf_free(out);
	/* Bound to its purpose, and tamper-evident. */
	ck_assert_int_eq(vault_unseal_blob(t.v, "other", sealed, len, &out, &t.err), -EBADMSG);
	ck_assert_ptr_null(out);
	sealed[len - 1] ^= 1;
	ck_assert_int_eq(vault_unseal_blob(t.v, "ca-key", sealed, len, &out, &t.err), -EBADMSG);
	ck_assert_int_eq(vault_unseal_blob(t.v, "ca-key", sealed, 10, &out, &t.err), -EBADMSG);
	/* A secret row's ciphertext is not a blob (kind is bound too). */
	free(sealed);
	ck_assert_int_eq(vault_blob_load(t.v, "nothing", &out, &t.err), -ENOENT);
	ck_assert_int_eq(vault_blob_store(t.v, "ca-key", "K1", 2, &t.err), 0);
	ck_assert_int_eq(vault_blob_store(t.v, "ca-key", "K22", 3, &t.err), 0);
	vt_blob_is(&t, "ca-key", "K22");
	vt_done(&t);
}
END_TEST

START_TEST(proxy_ca_callbacks)
{
	struct vt t;
	char *cert = NULL, *key = NULL;

	vt_fresh(&t, NULL);
	ck_assert_int_eq(vault_proxy_ca_load(t.v, &cert, &key), -ENOENT);
	ck_assert_ptr_null(cert);
	ck_assert_ptr_null(key);
	ck_assert_int_eq(vault_proxy_ca_store(t.v, "CERT-PEM", "KEY-PEM"), 0);
	/* Nested in a caller's transaction that rolls back: nothing stored. */
	ck_assert_int_eq(db_exec(t.db, "BEGIN;"), 0);
	ck_assert_int_eq(vault_proxy_ca_store(t.v, "CERT2", "KEY2"), 0);
	ck_assert_int_eq(db_exec(t.db, "ROLLBACK;"), 0);
	vt_done(&t);
	ck_assert_int_eq(vt_open(&t, NULL), 0);
	ck_assert_int_eq(vault_proxy_ca_load(t.v, &cert, &key), 0);
	ck_assert_str_eq(cert, "CERT-PEM");
	ck_assert_str_eq(key, "KEY-PEM");
	free(cert);
	free(key);
	vt_done(&t);
}
END_TEST

/* ---- providers ---- */

START_TEST(credential_provider)
{
	struct vt t;
	char cdir[256], cred[300];
	static const char hex[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	struct vault_options o = { .provider = "auto" };

	vt_mkdir(&t);
	vt_path(&t, "creds", cdir, sizeof(cdir));
	ck_assert_int_eq(mkdir(cdir, 0700), 0);
	snprintf(cred, sizeof(cred), "%s/nono.master-key", cdir);
	vt_write_file(cred, hex, strlen(hex), 0400);
	setenv("CREDENTIALS_DIRECTORY", cdir, 1);
	ck_assert_int_eq(vt_open(&t, &o), 0);
	ck_assert_str_eq(vault_provider_name(t.v), "systemd-credential");
	ck_assert_str_eq(vault_provider_source(t.v), cred);
	ck_assert_int_eq(vault_set(t.v, 1, "x", "y", 1, NULL, &t.err), 0);
	vt_done(&t);
	/* The same key as 32 raw bytes is the same key. */
	{
		unsigned char raw[32];
		for (int i = 0; i < 32; i++)
			raw[i] = (unsigned char)((i % 16) * 0x11);
		unlink(cred);
		vt_write_file(cred, raw, sizeof(raw), 0400);
		ck_assert_int_eq(vt_open(&t, &o), 0);
		ck_assert_int_eq(vt_render(t.v, 1, "${secret:x}", "y", &t.err), 0);
		vt_done(&t);
	}
	/* Bad material is refused, naming the provider (not skipped to the next one). */
	unlink(cred);
	vt_write_file(cred, "short", 5, 0400);
	ck_assert_int_eq(vt_open(&t, &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "systemd-credential"));
	/* Gone: auto falls through to the key file, which the sealed vault never had. */
	unlink(cred);
	ck_assert_int_eq(vt_open(&t, &o), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "sealed via systemd-credential"));
	unsetenv("CREDENTIALS_DIRECTORY");
}
END_TEST

#ifndef KEY_SPEC_PROCESS_KEYRING
#define KEY_SPEC_PROCESS_KEYRING -2
#endif

/* Put the 32-byte key k into this process's keyring as "user" key desc. */
static void keyring_put(const char *desc, const unsigned char k[32])
{
	ck_assert_int_ge(syscall(SYS_add_key, "user", desc, k, 32, KEY_SPEC_PROCESS_KEYRING), 0);
}

START_TEST(keyring_provider)
{
	struct vt t;
	char desc[64], next_desc[80];
	struct vault_options o = { .provider = "auto", .keyring_desc = desc };
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
	/* Without a pinned provider the keyring comes before the key file. */
	vt_fresh(&t, &o);
	ck_assert_str_eq(vault_provider_name(t.v), "kernel-keyring");
	ck_assert_ptr_nonnull(strstr(vault_provider_source(t.v), desc));
	ck_assert_int_eq(vault_set(t.v, 1, "x", "kr", 2, NULL, &t.err), 0);
	/* Rotation needs the new key provisioned as "<desc>.next". */
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), -ENOKEY);
	ck_assert_ptr_nonnull(strstr(t.err.msg, ".next"));
	vt_done(&t);
	/* A different key in the keyring: clear error naming the provider. */
	memset(k2, 0x43, sizeof(k2));
	keyring_put(desc, k2);
	ck_assert_int_eq(vt_open(&t, &o), -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "kernel-keyring"));
	/* Control: the right key again. */
	keyring_put(desc, k);
	ck_assert_int_eq(vt_open(&t, &o), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:x}", "kr", &t.err), 0);
	/* Rotate to "<desc>.next" = k2. */
	snprintf(next_desc, sizeof(next_desc), "%s.next", desc);
	keyring_put(next_desc, k);
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), -EINVAL); /* same key: refused */
	keyring_put(next_desc, k2);
	ck_assert_int_eq(vault_rotate_key(t.v, &t.err), 0);
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:x}", "kr", &t.err), 0);
	vt_done(&t);
	/* Not promoted yet: the main key is old, the .next one is accepted. */
	ck_assert_int_eq(vt_open(&t, &o), 0);
	ck_assert_ptr_nonnull(strstr(vault_provider_source(t.v), ".next"));
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:x}", "kr", &t.err), 0);
	vt_done(&t);
	/* Promoted: main = k2, .next gone. */
	keyring_put(desc, k2);
	keyring_put(next_desc, k);
	ck_assert_int_eq(vt_open(&t, &o), 0);
	ck_assert_ptr_null(strstr(vault_provider_source(t.v), ".next"));
	ck_assert_int_eq(vt_render(t.v, 1, "${secret:x}", "kr", &t.err), 0);
	vt_done(&t);
}
END_TEST

START_TEST(unknown_provider)
{
	struct vt t;
	struct vault_options o = { .provider = "tpm-magic" };
	struct vault_options mac = { .provider = "macos-keychain" };

	vt_mkdir(&t);
	ck_assert_int_eq(vt_open(&t, &o), -EINVAL);
#ifndef __APPLE__
	ck_assert_int_eq(vt_open(&t, &mac), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(t.err.msg, "macos-keychain"));
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
	TCase *tc = vt_tcase("core", 60);

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
