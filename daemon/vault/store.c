/* Secrets: set, info, list, delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vault-int.h"

int vault_set_unlocked(struct vault *v, uid_t owner, const char *name, const void *value,
	      size_t len, bool *created, struct vault_err *err)
{
	sqlite3_stmt *st = NULL;
	unsigned char *sealed = NULL;
	size_t sealed_len = len + VAULT_SEAL_OVERHEAD;
	int64_t now = vault_now();
	bool exists;
	int rc;

	if (!vault_name_valid(name))
		return vault_errf(err, -EINVAL, "invalid secret name (want [A-Za-z0-9_.-]{1,%d})",
				  VAULT_NAME_MAX);
	if (len > VAULT_VALUE_MAX)
		return vault_errf(err, -E2BIG, "secret value longer than %d bytes", VAULT_VALUE_MAX);
	sealed = malloc(sealed_len);
	if (sealed == NULL)
		return vault_errf(err, -ENOMEM, "out of memory");
	rc = vault_seal(&v->keys, VAULT_KIND_SECRET, (uint32_t)owner, name, value, len, sealed);
	if (rc < 0) {
		free(sealed);
		return vault_errf(err, rc, "cannot seal secret %s", name);
	}
	if (vault_tx_begin(v) < 0) {
		free(sealed);
		return vault_errf(err, -EIO, "database busy or failing");
	}
	rc = -EIO;
	if (sqlite3_prepare_v2(v->db, "SELECT 1 FROM vault_secrets WHERE owner = ?1 AND name = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	exists = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(v->db, "INSERT INTO vault_secrets(owner, name, sealed, created, updated) "
			       "VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(owner, name) DO UPDATE SET "
			       "sealed = excluded.sealed, updated = excluded.updated",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if (sqlite3_step(st) == SQLITE_DONE && vault_tx_commit(v) == 0)
		rc = 0;
	sqlite3_finalize(st);
	if (rc == 0 && created != NULL)
		*created = !exists;
	vault_cache_forget(v, (uint32_t)owner, name);
out:
	if (rc < 0) {
		log_errorx("storing secret %s of uid %u: %s", name, (unsigned)owner,
			   sqlite3_errmsg(v->db));
		vault_tx_rollback(v);
		vault_errf(err, rc, "cannot store secret %s: database error", name);
	}
	free(sealed);
	return rc;
}

/* Fill info from a vault_secrets row (columns: name, created, updated, last_used, sealed). */
static void row_info(struct vault *v, sqlite3_stmt *st, uid_t owner, struct vault_secret_info *info)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name != NULL ? name : "");
	info->owner = owner;
	info->backend = VAULT_BACKEND_VAULT;
	info->created = sqlite3_column_int64(st, 1);
	info->updated = sqlite3_column_int64(st, 2);
	info->last_used = sqlite3_column_int64(st, 3);
	info->corrupt = vault_unseal(&v->keys, VAULT_KIND_SECRET, (uint32_t)owner, info->name,
				     sqlite3_column_blob(st, 4),
				     (size_t)sqlite3_column_bytes(st, 4), v->scratch) < 0;
	secbuf_clear(v->scratch);
	if (info->corrupt)
		log_errorx("secret %s of uid %u does not unseal: row corrupted", info->name,
			   (unsigned)owner);
}

int vault_info_unlocked(struct vault *v, uid_t owner, const char *name,
	       struct vault_secret_info *out, struct vault_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!vault_name_valid(name))
		return vault_errf(err, -EINVAL, "invalid secret name");
	if (sqlite3_prepare_v2(v->db, "SELECT name, created, updated, last_used, sealed "
			       "FROM vault_secrets WHERE owner = ?1 AND name = ?2",
			       -1, &st, NULL) != SQLITE_OK)
		return vault_errf(err, -EIO, "database error");
	sqlite3_bind_int64(st, 1, owner);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_info(v, st, owner, out);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return vault_errf(err, -EIO, "database error");
	if (v->sss != NULL && owner == v->sss_uid) {
		rc = sss_lookup(v->sss, name, v->scratch, err);
		secbuf_clear(v->scratch);
		if (rc < 0)
			return rc;
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", name);
		out->owner = owner;
		out->backend = VAULT_BACKEND_SECRET_SERVICE;
		return 0;
	}
	return vault_errf(err, -ENOENT, "no secret named %s", name);
}

int vault_delete_unlocked(struct vault *v, uid_t owner, const char *name, struct vault_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -EIO, changes = 0;

	if (!vault_name_valid(name))
		return vault_errf(err, -EINVAL, "invalid secret name");
	if (vault_tx_begin(v) < 0)
		return vault_errf(err, -EIO, "database busy or failing");
	if (sqlite3_prepare_v2(v->db, "DELETE FROM vault_secrets WHERE owner = ?1 AND name = ?2",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, owner);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE) {
			changes = sqlite3_changes(v->db);
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = vault_tx_commit(v);
	vault_cache_forget(v, (uint32_t)owner, name);
	if (rc < 0) {
		vault_tx_rollback(v);
		return vault_errf(err, -EIO, "cannot delete secret %s: database error", name);
	}
	if (changes > 0)
		return 0;
	if (v->sss != NULL && owner == v->sss_uid &&
	    sss_lookup(v->sss, name, v->scratch, NULL) == 0) {
		secbuf_clear(v->scratch);
		return vault_errf(err, -EROFS, "secret %s is stored in the Secret Service; remove it "
				  "there (secret-tool clear service nono username %s)", name, name);
	}
	return vault_errf(err, -ENOENT, "no secret named %s", name);
}

struct sss_walk {
	struct vault *v;
	uid_t owner;
	vault_list_fn fn;
	void *ctx;
};

static int sss_list_one(void *ctx, const char *name)
{
	struct sss_walk *w = ctx;
	struct vault_secret_info info = { 0 };
	sqlite3_stmt *st = NULL;

	if (!vault_name_valid(name))
		return 0; /* not addressable as ${secret:NAME}: skip */
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.owner = w->owner;
	info.backend = VAULT_BACKEND_SECRET_SERVICE;
	if (sqlite3_prepare_v2(w->v->db, "SELECT 1 FROM vault_secrets WHERE owner = ?1 AND name = ?2",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, w->owner);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		info.shadowed = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	return w->fn(w->ctx, &info);
}

int vault_list_unlocked(struct vault *v, uid_t owner, vault_list_fn fn, void *ctx,
	       struct vault_err *err)
{
	struct vault_secret_info info;
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	if (sqlite3_prepare_v2(v->db, "SELECT name, created, updated, last_used, sealed "
			       "FROM vault_secrets WHERE owner = ?1 ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		return vault_errf(err, -EIO, "database error");
	sqlite3_bind_int64(st, 1, owner);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row_info(v, st, owner, &info);
		rc = fn(ctx, &info);
		if (rc != 0)
			break;
	}
	sqlite3_finalize(st);
	if (rc != 0)
		return rc;
	if (step != SQLITE_DONE)
		return vault_errf(err, -EIO, "database error");
	if (v->sss != NULL && owner == v->sss_uid) {
		struct sss_walk w = { v, owner, fn, ctx };
		struct vault_err e;

		rc = sss_list(v->sss, sss_list_one, &w, &e);
		/* The vault's own secrets are listed; an absent desktop keyring is not an error. */
		/* Warn once per vault; a desktop session may simply have no keyring. */
		if (rc < 0 && !v->sss_warned)
			log_warnx("listing the Secret Service: %s", e.msg);
		else if (rc < 0)
			log_debug("listing the Secret Service: %s", e.msg);
		if (rc < 0)
			v->sss_warned = true;
		if (rc > 0)
			return rc;
	}
	return 0;
}
