/*
 * Master key rotation: every sealed secret and blob is re-sealed under the
 * new key, and the new KCV stored, in one transaction. A row that does not
 * unseal aborts the whole rotation (nothing is lost or half-converted).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "vault-int.h"

#define BLOB_OWNER UINT32_MAX

/* Re-seal one row's value: unseal with the old keys, seal with the new. */
static int reseal(struct vault *v, struct vault_keys *newk, enum vault_kind kind,
		  uint32_t owner, const char *name, const unsigned char *in, size_t in_len,
		  struct secbuf *tmp, unsigned char **out, size_t *out_len)
{
	int rc = vault_unseal(&v->keys, kind, owner, name, in, in_len, tmp);

	if (rc < 0)
		return rc;
	*out_len = secbuf_len(tmp) + VAULT_SEAL_OVERHEAD;
	*out = malloc(*out_len);
	if (*out == NULL)
		rc = -ENOMEM;
	else
		rc = vault_seal(newk, kind, owner, name, secbuf_cdata(tmp), secbuf_len(tmp), *out);
	secbuf_clear(tmp);
	return rc;
}

/* One row to re-seal, read before any update so the scan never sees its own writes. */
struct row {
	uint32_t owner;
	char *name;
	unsigned char *sealed;
	size_t len;
};

static void rows_free(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].sealed);
	}
	free(rows);
}

/* Read all rows of sql (columns: owner, name, sealed). */
static int rows_read(sqlite3 *db, const char *sql, struct row **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct row *rows = NULL;
	size_t cap = 0;
	int step;

	*n = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		struct row *r;

		if (*n == cap) {
			struct row *nr = realloc(rows, (cap = cap ? cap * 2 : 64) * sizeof(*rows));
			if (nr == NULL)
				break;
			rows = nr;
		}
		r = &rows[(*n)++];
		r->owner = (uint32_t)sqlite3_column_int64(st, 0);
		r->name = strdup(name != NULL ? name : "");
		r->sealed = malloc(len > 0 ? len : 1);
		r->len = len;
		if (r->name == NULL || r->sealed == NULL)
			break;
		memcpy(r->sealed, sqlite3_column_blob(st, 2), len);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		rows_free(rows, *n);
		*n = 0;
		return -EIO;
	}
	*out = rows;
	return 0;
}

static int reseal_table(struct vault *v, struct vault_keys *newk, enum vault_kind kind,
			struct secbuf *tmp, struct vault_err *err)
{
	bool secrets = kind == VAULT_KIND_SECRET;
	sqlite3_stmt *upd = NULL;
	struct row *rows = NULL;
	size_t n = 0;
	int rc;

	rc = rows_read(v->db, secrets ? "SELECT owner, name, sealed FROM vault_secrets"
				      : "SELECT 0, purpose, sealed FROM vault_blobs", &rows, &n);
	if (rc < 0)
		return vault_errf(err, rc, "database error reading sealed rows");
	if (sqlite3_prepare_v2(v->db, secrets
			       ? "UPDATE vault_secrets SET sealed = ?3 WHERE owner = ?1 AND name = ?2"
			       : "UPDATE vault_blobs SET sealed = ?3 WHERE purpose = ?2",
			       -1, &upd, NULL) != SQLITE_OK) {
		rows_free(rows, n);
		return vault_errf(err, -EIO, "database error");
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct row *r = &rows[i];
		uint32_t owner = secrets ? r->owner : BLOB_OWNER;
		unsigned char *sealed = NULL;
		size_t len = 0;

		rc = reseal(v, newk, kind, owner, r->name, r->sealed, r->len, tmp, &sealed, &len);
		if (rc < 0) {
			rc = secrets ? vault_errf(err, -EBADMSG, "secret %s of uid %u does not unseal "
						  "(corrupted); rotation aborted, nothing changed",
						  r->name, (unsigned)owner)
				     : vault_errf(err, -EBADMSG, "blob %s does not unseal (corrupted); "
						  "rotation aborted, nothing changed", r->name);
		} else {
			sqlite3_bind_int64(upd, 1, r->owner);
			sqlite3_bind_text(upd, 2, r->name, -1, SQLITE_STATIC);
			sqlite3_bind_blob(upd, 3, sealed, (int)len, SQLITE_STATIC);
			if (sqlite3_step(upd) != SQLITE_DONE)
				rc = vault_errf(err, -EIO, "database error re-sealing %s", r->name);
			sqlite3_reset(upd);
		}
		free(sealed);
	}
	sqlite3_finalize(upd);
	rows_free(rows, n);
	return rc;
}

int vault_reseal_all(struct vault *v, struct vault_keys *newk, struct vault_err *err)
{
	struct secbuf *tmp = NULL;
	int rc;

	if (vault_tx_begin(v) < 0)
		return vault_errf(err, -EIO, "database busy or failing");
	vault_cache_flush(v);
	rc = secbuf_new(VAULT_BLOB_MAX, &tmp);
	if (rc < 0) {
		vault_tx_rollback(v);
		return vault_errf(err, rc, "out of memory");
	}
	rc = reseal_table(v, newk, VAULT_KIND_SECRET, tmp, err);
	if (rc == 0)
		rc = reseal_table(v, newk, VAULT_KIND_BLOB, tmp, err);
	secbuf_free(tmp);
	if (rc == 0 && vault_store_kcv(v, newk) < 0)
		rc = vault_errf(err, -EIO, "cannot store the new key check value");
	if (rc == 0 && vault_tx_commit(v) < 0)
		rc = vault_errf(err, -EIO, "cannot commit the rotation");
	if (rc < 0)
		vault_tx_rollback(v);
	return rc;
}

/* Credential, keyring, keychain: the operator provisioned "<main>.next"; re-seal under it. */
static int rotate_to_next(struct vault *v, struct vault_err *err)
{
	unsigned char cur[VAULT_KCV_LEN], got[VAULT_KCV_LEN];
	char src[PATH_MAX];
	struct keyprov_cfg cfg;
	struct secbuf *nk = NULL;
	struct vault_keys newk;
	struct vault_err e;
	int rc;

	vault_keyprov_cfg(v, &cfg);
	e.msg[0] = '\0';
	rc = keyprov_load_next(&cfg, v->prov, &nk, src, sizeof(src), &e);
	if (rc < 0)
		return vault_errf(err, rc == -ENOKEY ? -ENOKEY : rc, "rotation needs the new key "
				  "provisioned next to the current one in %s: %s",
				  vault_provider_str(v->prov), e.msg);
	rc = vault_keys_init(&newk, nk);
	secbuf_free(nk);
	if (rc < 0)
		return vault_errf(err, rc, "cannot derive the new keys");
	vault_keys_kcv(&v->keys, cur);
	vault_keys_kcv(&newk, got);
	if (CRYPTO_memcmp(cur, got, VAULT_KCV_LEN) == 0) {
		vault_keys_clear(&newk);
		return vault_errf(err, -EINVAL, "%s holds the current key: nothing to rotate to", src);
	}
	rc = vault_reseal_all(v, &newk, err);
	if (rc < 0) {
		vault_keys_clear(&newk);
		return rc;
	}
	vault_keys_clear(&v->keys);
	v->keys = newk;
	log_warnx("master key rotated to %s: make it the main key of %s (until then it is "
		  "used as the next key)", src, vault_provider_str(v->prov));
	snprintf(v->source, sizeof(v->source), "%s", src);
	return 0;
}

int vault_rotate_key_unlocked(struct vault *v, struct vault_err *err)
{
	char next[PATH_MAX + 8];
	struct secbuf *nk = NULL;
	struct vault_keys newk;
	int rc;

	if (v->prov != VAULT_PROV_FILE)
		return rotate_to_next(v, err);
	snprintf(next, sizeof(next), "%s.next", v->key_file);
	if (unlink(next) == 0)
		log_warnx("removed stale %s", next);
	rc = keyprov_file_create(next, &nk, err);
	if (rc < 0)
		return rc;
	rc = vault_keys_init(&newk, nk);
	secbuf_free(nk);
	if (rc < 0) {
		unlink(next);
		return vault_errf(err, rc, "cannot derive the new keys");
	}
	rc = vault_reseal_all(v, &newk, err);
	if (rc < 0) {
		unlink(next);
		vault_keys_clear(&newk);
		log_errorx("key rotation aborted: %s", err != NULL ? err->msg : "");
		return rc;
	}
	/* Committed: from here the new key is the right one, whatever happens to the file. */
	vault_keys_clear(&v->keys);
	v->keys = newk;
	rc = keyprov_file_commit(next, v->key_file);
	if (rc < 0) {
		log_errorx("key rotation committed but rename %s -> %s failed (%s); the next start "
			   "finishes it", next, v->key_file, strerror(-rc));
		return 0;
	}
	log_info("master key rotated (%s)", v->key_file);
	return 0;
}
