/* Helpers shared by the vault's unit tests: temporary state dirs and vaults on real files. */
#ifndef VAULT_VTEST_H
#define VAULT_VTEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "vault.h"

/* The per-TCase root, made and removed by the parent (unchecked fixture), so
 * it goes away even when a test's child process fails or crashes. */
static __attribute__((unused)) char vt_root[64];

static __attribute__((unused)) int vt_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(path) < 0 ? -1 : 0;
}

static __attribute__((unused)) void vt_rm_rf(const char *path)
{
	nftw(path, vt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static __attribute__((unused)) void vt_root_setup(void)
{
	snprintf(vt_root, sizeof(vt_root), "/tmp/nono-vault-test.XXXXXX");
	if (mkdtemp(vt_root) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static __attribute__((unused)) void vt_root_teardown(void)
{
	vt_rm_rf(vt_root);
}

/* A TCase whose tests get the per-TCase root (vt_root), with a timeout in seconds. */
static __attribute__((unused)) TCase *vt_tcase(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, vt_root_setup, vt_root_teardown);
	tcase_set_timeout(tc, timeout);
	return tc;
}

/* One test's vault: its state dir, database and open vault, and the last error. */
struct vt {
	char dir[128];
	sqlite3 *db;
	struct vault *v;
	struct vault_err err;
};

/* Clear t and make it a fresh state dir (0700) under the root; nothing is opened. */
static __attribute__((unused)) void vt_mkdir(struct vt *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "%s/s.XXXXXX", vt_root);
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	chmod(t->dir, 0700);
}

/* Open db + vault in t->dir with the key-file provider (unless opts says otherwise).
 * Returns vault_open's rc; on failure t->db and t->v are NULL and t->err says why. */
static __attribute__((unused)) int vt_open(struct vt *t, const struct vault_options *opts)
{
	char path[512];
	static const struct vault_options file_opts = { .provider = "key-file" };
	int rc;

	snprintf(path, sizeof(path), "%s/nonod.db", t->dir);
	rc = db_open(path, &t->db);
	ck_assert_int_eq(rc, 0);
	rc = vault_open(t->db, t->dir, opts != NULL ? opts : &file_opts, &t->v, &t->err);
	if (rc < 0) {
		db_close(t->db);
		t->db = NULL;
		t->v = NULL;
	}
	return rc;
}

/* Close what vt_open opened (a no-op when nothing is); t->dir stays for a later vt_open. */
static __attribute__((unused)) void vt_done(struct vt *t)
{
	vault_free(t->v);
	db_close(t->db);
	t->v = NULL;
	t->db = NULL;
}

/* A fresh state dir with the vault opened in it (opts as for vt_open); must succeed. */
static __attribute__((unused)) void vt_fresh(struct vt *t, const struct vault_options *opts)
{
	vt_mkdir(t);
	ck_assert_int_eq(vt_open(t, opts), 0);
}

/* path = t->dir/name. */
static __attribute__((unused)) void vt_path(const struct vt *t, const char *name, char *path,
					    size_t len)
{
	ck_assert_int_lt(snprintf(path, len, "%s/%s", t->dir, name), (int)len);
}

/* Render tmpl for owner into a fresh secbuf and compare with want (NULL: expect failure rc). */
static __attribute__((unused)) int vt_render(struct vault *v, uid_t owner, const char *tmpl, const char *want,
		     struct vault_err *err)
{
	struct secbuf *out = NULL;
	int rc;

	ck_assert_int_eq(secbuf_new(VAULT_RENDER_MAX, &out), 0);
	rc = vault_render(v, owner, tmpl, out, err);
	if (rc == 0 && want != NULL) {
		ck_assert_uint_eq(secbuf_len(out), strlen(want));
		ck_assert_str_eq(secbuf_cstr(out), want);
	}
	if (rc < 0)
		ck_assert_uint_eq(secbuf_len(out), 0);
	secbuf_free(out);
	return rc;
}

/* The blob stored under name loads and holds exactly want. */
static __attribute__((unused)) void vt_blob_is(struct vt *t, const char *name, const char *want)
{
	struct secbuf *b = NULL;

	ck_assert_int_eq(vault_blob_load(t->v, name, &b, &t->err), 0);
	ck_assert_uint_eq(secbuf_len(b), strlen(want));
	ck_assert(memcmp(secbuf_cdata(b), want, strlen(want)) == 0);
	secbuf_free(b);
}

/* Read a whole small file into a malloc()ed buffer. */
static __attribute__((unused)) unsigned char *vt_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = fread(buf + *len, 1, cap - *len, f);
		if (n == 0)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

static __attribute__((unused)) void vt_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	fchmod(fd, mode);
	close(fd);
}

#endif
