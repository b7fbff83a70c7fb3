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

/* A fresh state dir (0700) under the root; path written to dir. */
static __attribute__((unused)) void vt_mkdir(char *dir, size_t len)
{
	snprintf(dir, len, "%s/s.XXXXXX", vt_root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0700);
}

/* Open db + vault in dir with the key-file provider (unless opts says otherwise). */
static __attribute__((unused)) int vt_open(const char *dir, const struct vault_options *opts, sqlite3 **db,
		   struct vault **v, struct vault_err *err)
{
	char path[512];
	static const struct vault_options file_opts = { .provider = "key-file" };
	int rc;

	snprintf(path, sizeof(path), "%s/nonod.db", dir);
	rc = db_open(path, db);
	ck_assert_int_eq(rc, 0);
	rc = vault_open(*db, dir, opts != NULL ? opts : &file_opts, v, err);
	if (rc < 0) {
		db_close(*db);
		*db = NULL;
	}
	return rc;
}

static __attribute__((unused)) void vt_close(sqlite3 *db, struct vault *v)
{
	vault_free(v);
	db_close(db);
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
