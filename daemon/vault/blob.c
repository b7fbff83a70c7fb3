/* Sealed blobs for other modules (the proxy's CA key), kept by them or in vault_blobs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vault-int.h"

#define BLOB_OWNER UINT32_MAX /* no uid: blobs belong to the daemon */

int vault_seal_blob_unlocked(struct vault *v, const char *purpose, const void *plain, size_t len,
		    unsigned char **sealed, size_t *sealed_len, struct vault_err *err)
{
	unsigned char *buf;
	int rc;

	*sealed = NULL;
	*sealed_len = 0;
	if (!vault_name_valid(purpose))
		return vault_errf(err, -EINVAL, "invalid blob purpose");
	if (len > VAULT_BLOB_MAX)
		return vault_errf(err, -E2BIG, "blob longer than %d bytes", VAULT_BLOB_MAX);
	buf = malloc(len + VAULT_SEAL_OVERHEAD);
	if (buf == NULL)
		return vault_errf(err, -ENOMEM, "out of memory");
	rc = vault_seal(&v->keys, VAULT_KIND_BLOB, BLOB_OWNER, purpose, plain, len, buf);
	if (rc < 0) {
		free(buf);
		return vault_errf(err, rc, "cannot seal blob %s", purpose);
	}
	*sealed = buf;
	*sealed_len = len + VAULT_SEAL_OVERHEAD;
	return 0;
}

int vault_unseal_blob_unlocked(struct vault *v, const char *purpose, const unsigned char *sealed,
		      size_t sealed_len, struct secbuf **out, struct vault_err *err)
{
	struct secbuf *sb = NULL;
	size_t cap;
	int rc;

	*out = NULL;
	if (!vault_name_valid(purpose))
		return vault_errf(err, -EINVAL, "invalid blob purpose");
	if (sealed_len < VAULT_SEAL_OVERHEAD || sealed_len - VAULT_SEAL_OVERHEAD > VAULT_BLOB_MAX)
		return vault_errf(err, -EBADMSG, "sealed blob %s has an impossible size", purpose);
	cap = sealed_len - VAULT_SEAL_OVERHEAD;
	rc = secbuf_new(cap > 0 ? cap : 1, &sb);
	if (rc < 0)
		return vault_errf(err, rc, "out of memory");
	rc = vault_unseal(&v->keys, VAULT_KIND_BLOB, BLOB_OWNER, purpose, sealed, sealed_len, sb);
	if (rc < 0) {
		secbuf_free(sb);
		log_errorx("sealed blob %s does not unseal: corrupted or sealed under another key",
			   purpose);
		return vault_errf(err, -EBADMSG, "sealed blob %s does not unseal: corrupted or sealed "
				  "under another master key", purpose);
	}
	*out = sb;
	return 0;
}

int vault_blob_store_unlocked(struct vault *v, const char *purpose, const void *plain, size_t len,
		     struct vault_err *err)
{
	sqlite3_stmt *st = NULL;
	unsigned char *sealed = NULL;
	size_t sealed_len;
	int rc;

	rc = vault_seal_blob(v, purpose, plain, len, &sealed, &sealed_len, err);
	if (rc < 0)
		return rc;
	rc = -EIO;
	if (vault_tx_begin(v) == 0 &&
	    sqlite3_prepare_v2(v->db, "INSERT INTO vault_blobs(purpose, sealed, updated) "
			       "VALUES(?1, ?2, ?3) ON CONFLICT(purpose) DO UPDATE SET "
			       "sealed = excluded.sealed, updated = excluded.updated",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, purpose, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, sealed, (int)sealed_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, vault_now());
		if (sqlite3_step(st) == SQLITE_DONE && vault_tx_commit(v) == 0)
			rc = 0;
	}
	sqlite3_finalize(st);
	free(sealed);
	if (rc < 0) {
		vault_tx_rollback(v);
		return vault_errf(err, rc, "cannot store blob %s: database error", purpose);
	}
	return 0;
}

int vault_blob_load_unlocked(struct vault *v, const char *purpose, struct secbuf **out,
		    struct vault_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (!vault_name_valid(purpose))
		return vault_errf(err, -EINVAL, "invalid blob purpose");
	if (sqlite3_prepare_v2(v->db, "SELECT sealed FROM vault_blobs WHERE purpose = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return vault_errf(err, -EIO, "database error");
	sqlite3_bind_text(st, 1, purpose, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = vault_unseal_blob(v, purpose, sqlite3_column_blob(st, 0),
				       (size_t)sqlite3_column_bytes(st, 0), out, err);
	else if (rc == SQLITE_DONE)
		rc = vault_errf(err, -ENOENT, "no stored blob %s", purpose);
	else
		rc = vault_errf(err, -EIO, "database error");
	sqlite3_finalize(st);
	return rc;
}
