/*
 * The vault's life cycle: schema, master key, key check value, the check of
 * every sealed row at open, status, and small shared helpers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "db.h"
#include "log.h"
#include "vault-int.h"

static const char *const vault_schema[] = {
	/* 1 */
	"CREATE TABLE vault_meta ("
	"  key TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL);"
	"CREATE TABLE vault_secrets ("
	"  owner INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  sealed BLOB NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  last_used INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (owner, name)) WITHOUT ROWID;"
	"CREATE TABLE vault_blobs ("
	"  purpose TEXT PRIMARY KEY,"
	"  sealed BLOB NOT NULL,"
	"  updated INTEGER NOT NULL);",
};

int vault_errf(struct vault_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int64_t vault_now(void)
{
	return (int64_t)time(NULL);
}

/*
 * The outermost vault transaction is BEGIN IMMEDIATE (the write lock up front,
 * so two writers never deadlock on a lock upgrade), or a SAVEPOINT when the
 * caller already has a transaction open; inner ones are SAVEPOINTs.
 */
int vault_tx_begin(struct vault *v)
{
	bool savepoint;
	int rc;

	if (v->tx_depth == 0)
		v->tx_outer_savepoint = !sqlite3_get_autocommit(v->db);
	savepoint = v->tx_depth > 0 || v->tx_outer_savepoint;
	rc = db_exec(v->db, savepoint ? "SAVEPOINT vault;" : "BEGIN IMMEDIATE;");
	if (rc == 0)
		v->tx_depth++;
	return rc;
}

/* On failure the transaction stays open: the caller rolls it back. */
int vault_tx_commit(struct vault *v)
{
	bool outer = v->tx_depth == 1 && !v->tx_outer_savepoint;
	int rc;

	if (v->tx_depth == 0)
		return -EINVAL;
	rc = db_exec(v->db, outer ? "COMMIT;" : "RELEASE vault;");
	if (rc == 0)
		v->tx_depth--;
	return rc;
}

void vault_tx_rollback(struct vault *v)
{
	bool outer = v->tx_depth == 1 && !v->tx_outer_savepoint;

	if (v->tx_depth == 0)
		return;
	v->tx_depth--;
	if (outer) {
		if (!sqlite3_get_autocommit(v->db))
			db_exec(v->db, "ROLLBACK;");
	} else {
		db_exec(v->db, "ROLLBACK TO vault; RELEASE vault;");
	}
}

bool vault_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL)
		return false;
	for (const char *p = name; *p != '\0'; p++, n++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
		if (n >= VAULT_NAME_MAX)
			return false;
	}
	return n > 0;
}

/* Read meta value key into buf; returns its length, 0 when absent, <0 on error. */
static int meta_get(sqlite3 *db, const char *key, void *buf, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT value FROM vault_meta WHERE key = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW: {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		if (n > cap) {
			rc = -EOVERFLOW;
			break;
		}
		memcpy(buf, sqlite3_column_blob(st, 0), n);
		rc = (int)n;
		break;
	}
	case SQLITE_DONE:
		break;
	default:
		rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

static int meta_set(sqlite3 *db, const char *key, const void *val, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO vault_meta(key, value) VALUES(?1, ?2) "
			       "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, val, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

int vault_store_kcv(struct vault *v, const struct vault_keys *k)
{
	unsigned char kcv[VAULT_KCV_LEN];
	const char *p = vault_provider_str(v->prov);

	vault_keys_kcv(k, kcv);
	if (meta_set(v->db, "kcv", kcv, sizeof(kcv)) < 0 ||
	    meta_set(v->db, "provider", p, strlen(p)) < 0)
		return -EIO;
	return 0;
}

/* Sealed rows. With cache, the statement is prepared once (daemon.status asks often). */
static unsigned long count_rows_cached(sqlite3 *db, sqlite3_stmt **cache)
{
	sqlite3_stmt *st = cache != NULL ? *cache : NULL;
	unsigned long n = 0;

	if (st == NULL &&
	    sqlite3_prepare_v3(db, "SELECT (SELECT count(*) FROM vault_secrets) + "
			       "(SELECT count(*) FROM vault_blobs)", -1,
			       cache != NULL ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (unsigned long)sqlite3_column_int64(st, 0);
	if (cache != NULL) {
		sqlite3_reset(st);
		*cache = st;
	} else {
		sqlite3_finalize(st);
	}
	return n;
}

static unsigned long count_rows(sqlite3 *db)
{
	return count_rows_cached(db, NULL);
}

/* Check every sealed secret; log each one that does not unseal, by owner and name. */
static void verify_rows(struct vault *v)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(v->db, "SELECT owner, name, sealed FROM vault_secrets",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint32_t owner = (uint32_t)sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const unsigned char *blob = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);

		if (name == NULL || vault_unseal(&v->keys, VAULT_KIND_SECRET, owner, name, blob, len,
						 v->scratch) < 0) {
			v->corrupt++;
			log_errorx("secret %s of uid %u does not unseal: row corrupted (kept, not used)",
				   name != NULL && vault_name_valid(name) ? name : "(invalid name)",
				   (unsigned)owner);
		}
	}
	secbuf_clear(v->scratch);
	sqlite3_finalize(st);
}

void vault_keyprov_cfg(const struct vault *v, struct keyprov_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->want = v->prov;
	cfg->credential_name = v->credential_name;
	cfg->keyring_desc = v->keyring_desc;
	cfg->key_file = v->key_file;
}

/*
 * After a rotation with the credential/keyring/keychain provider, the vault
 * is sealed under the provider's "next" key until the operator promotes it:
 * accept that key (and say so) when the main one does not match.
 */
static int use_next_key(struct vault *v, const unsigned char *kcv, bool *matched)
{
	struct keyprov_cfg cfg;
	struct secbuf *nk = NULL;
	struct vault_keys keys;
	unsigned char got[VAULT_KCV_LEN];
	char src[PATH_MAX];

	vault_keyprov_cfg(v, &cfg);
	if (keyprov_load_next(&cfg, v->prov, &nk, src, sizeof(src), NULL) < 0)
		return 0;
	if (vault_keys_init(&keys, nk) < 0) {
		secbuf_free(nk);
		return -EIO;
	}
	secbuf_free(nk);
	vault_keys_kcv(&keys, got);
	if (CRYPTO_memcmp(got, kcv, VAULT_KCV_LEN) != 0) {
		vault_keys_clear(&keys);
		return 0;
	}
	log_warnx("the vault is sealed under %s (a rotation's new key): make it the main key "
		  "(%s) of %s", src, v->source, vault_provider_str(v->prov));
	vault_keys_clear(&v->keys);
	v->keys = keys;
	snprintf(v->source, sizeof(v->source), "%s", src);
	*matched = true;
	return 0;
}

/* Finish (the new key matches) or discard (it does not) an interrupted key-file rotation. */
static int recover_rotation(struct vault *v, const unsigned char *kcv, bool *matched,
			    struct vault_err *err)
{
	char next[PATH_MAX + 8];
	struct secbuf *nk = NULL;
	struct vault_keys keys;
	unsigned char got[VAULT_KCV_LEN];
	int rc;

	snprintf(next, sizeof(next), "%s.next", v->key_file);
	rc = keyprov_file_read(next, &nk, NULL);
	if (rc < 0)
		return 0;
	rc = vault_keys_init(&keys, nk);
	secbuf_free(nk);
	if (rc < 0)
		return vault_errf(err, rc, "cannot derive keys");
	vault_keys_kcv(&keys, got);
	if (kcv != NULL && CRYPTO_memcmp(got, kcv, VAULT_KCV_LEN) == 0 && !*matched) {
		rc = keyprov_file_commit(next, v->key_file);
		if (rc < 0) {
			vault_keys_clear(&keys);
			return vault_errf(err, rc, "cannot finish key rotation: rename %s: %s", next,
					  strerror(-rc));
		}
		log_warnx("finished an interrupted master key rotation (%s)", v->key_file);
		vault_keys_clear(&v->keys);
		v->keys = keys;
		*matched = true;
		return 0;
	}
	vault_keys_clear(&keys);
	if (*matched) {
		log_warnx("removing %s left by an interrupted key rotation that never committed", next);
		unlink(next);
	}
	return 0;
}

static int check_key(struct vault *v, bool fresh, struct vault_err *err)
{
	unsigned char kcv[VAULT_KCV_LEN], want[VAULT_KCV_LEN];
	char sealed_by[64] = "unknown";
	bool matched;
	int n, rc;

	n = meta_get(v->db, "kcv", want, sizeof(want));
	if (n < 0)
		return vault_errf(err, -EIO, "cannot read the vault's key check value");
	if (fresh) {
		rc = vault_tx_begin(v);
		if (rc == 0)
			rc = vault_store_kcv(v, &v->keys);
		if (rc == 0)
			rc = vault_tx_commit(v);
		if (rc < 0) {
			vault_tx_rollback(v);
			return vault_errf(err, -EIO, "cannot store the key check value");
		}
		return 0;
	}
	if (n != VAULT_KCV_LEN)
		return vault_errf(err, -EBADMSG, "vault key check value is damaged (%d bytes)", n);
	vault_keys_kcv(&v->keys, kcv);
	matched = CRYPTO_memcmp(kcv, want, sizeof(kcv)) == 0;
	if (v->prov == VAULT_PROV_FILE) {
		rc = recover_rotation(v, want, &matched, err);
		if (rc < 0)
			return rc;
	} else if (!matched) {
		rc = use_next_key(v, want, &matched);
		if (rc < 0)
			return vault_errf(err, rc, "cannot derive keys");
	}
	if (matched)
		return 0;
	n = meta_get(v->db, "provider", sealed_by, sizeof(sealed_by) - 1);
	if (n > 0)
		sealed_by[n] = '\0';
	return vault_errf(err, -EKEYREJECTED,
			  "master key from %s (%s) does not match the key that sealed this vault "
			  "(sealed via %s); stored secrets are untouched",
			  vault_provider_str(v->prov), v->source, sealed_by);
}

/*
 * The render path's connection: the proxy's loops render while the daemon's
 * loop uses db, which is opened without SQLite's mutex. The same file, so it
 * sees every committed row; a render never waits long for the write lock (it
 * only writes last_used, best effort). An in-memory database cannot be
 * opened twice: then renders share db, and must come from db's thread.
 */
static int open_render_db(struct vault *v, struct vault_err *err)
{
	const char *path = sqlite3_db_filename(v->db, "main");

	if (path == NULL || *path == '\0') {
		v->rdb = v->db;
		return 0;
	}
	if (db_open(path, &v->rdb) < 0)
		return vault_errf(err, -EIO, "cannot open a second connection to %s", path);
	sqlite3_busy_timeout(v->rdb, 50);
	return 0;
}

int vault_open(sqlite3 *db, const char *state_dir, const struct vault_options *opts,
	       struct vault **out, struct vault_err *err)
{
	static const struct vault_options defaults;
	struct keyprov_cfg cfg = { 0 };
	struct vault_err local;
	struct secbuf *master = NULL;
	struct vault *v;
	unsigned char kcv[VAULT_KCV_LEN];
	int want, rc, has_kcv;
	bool fresh;

	*out = NULL;
	if (err == NULL)
		err = &local;
	err->msg[0] = '\0';
	if (opts == NULL)
		opts = &defaults;
	rc = db_migrate(db, "vault", vault_schema, sizeof(vault_schema) / sizeof(vault_schema[0]));
	if (rc < 0)
		return vault_errf(err, rc, "vault schema migration failed");
	want = vault_provider_parse(opts->provider);
	if (want < 0)
		return vault_errf(err, -EINVAL, "unknown master-key provider %s", opts->provider);
	v = calloc(1, sizeof(*v));
	if (v == NULL || vault_lock_init(v) < 0) {
		free(v);
		return vault_errf(err, -ENOMEM, "out of memory");
	}
	v->db = db;
	if (opts->key_file != NULL)
		rc = snprintf(v->key_file, sizeof(v->key_file), "%s", opts->key_file);
	else
		rc = snprintf(v->key_file, sizeof(v->key_file), "%s/master.key",
			      state_dir != NULL ? state_dir : ".");
	if (rc < 0 || (size_t)rc >= sizeof(v->key_file) - 8) {
		rc = vault_errf(err, -ENAMETOOLONG, "key file path too long");
		goto fail;
	}
	has_kcv = meta_get(db, "kcv", kcv, sizeof(kcv));
	if (has_kcv < 0) {
		rc = vault_errf(err, -EIO, "cannot read the vault's key check value");
		goto fail;
	}
	fresh = has_kcv == 0;
	if (fresh && count_rows(db) > 0) {
		rc = vault_errf(err, -EBADMSG, "vault holds sealed rows but no key check value: refused");
		goto fail;
	}
	if (snprintf(v->credential_name, sizeof(v->credential_name) - 5, "%s",
		     opts->credential_name != NULL ? opts->credential_name : "nono.master-key") >=
		    (int)sizeof(v->credential_name) - 5 ||
	    snprintf(v->keyring_desc, sizeof(v->keyring_desc) - 5, "%s",
		     opts->keyring_desc != NULL ? opts->keyring_desc : "nono:master") >=
		    (int)sizeof(v->keyring_desc) - 5) {
		rc = vault_errf(err, -ENAMETOOLONG, "credential name or keyring description too long");
		goto fail;
	}
	cfg.want = (enum vault_provider)want;
	cfg.credential_name = v->credential_name;
	cfg.keyring_desc = v->keyring_desc;
	cfg.key_file = v->key_file;
	cfg.may_create = fresh;
	rc = keyprov_load(&cfg, &master, &v->prov, v->source, sizeof(v->source), err);
	if (rc < 0) {
		char sealed_by[64];
		int n = meta_get(db, "provider", sealed_by, sizeof(sealed_by) - 1);
		if (rc == -ENOKEY && n > 0) {
			sealed_by[n] = '\0';
			size_t l = strlen(err->msg);
			snprintf(err->msg + l, sizeof(err->msg) - l, "; this vault was sealed via %s",
				 sealed_by);
		}
		goto fail;
	}
	if (v->prov == VAULT_PROV_FILE)
		keyprov_file_sweep(v->key_file);
	rc = vault_keys_init(&v->keys, master);
	secbuf_free(master);
	if (rc < 0) {
		rc = vault_errf(err, rc, "cannot derive the vault keys");
		goto fail;
	}
	rc = secbuf_new(VAULT_VALUE_MAX, &v->scratch);
	if (rc < 0) {
		rc = vault_errf(err, rc, "out of memory");
		goto fail;
	}
	v->cache = calloc(VAULT_CACHE_SLOTS, sizeof(*v->cache));
	if (v->cache == NULL) {
		rc = vault_errf(err, -ENOMEM, "out of memory");
		goto fail;
	}
	rc = check_key(v, fresh, err);
	if (rc < 0)
		goto fail;
	rc = open_render_db(v, err);
	if (rc < 0)
		goto fail;
	if (sqlite3_prepare_v3(v->rdb, "SELECT sealed, last_used FROM vault_secrets "
			       "WHERE owner = ?1 AND name = ?2", -1, SQLITE_PREPARE_PERSISTENT,
			       &v->st_get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(v->rdb, "UPDATE vault_secrets SET last_used = ?3 "
			       "WHERE owner = ?1 AND name = ?2", -1, SQLITE_PREPARE_PERSISTENT,
			       &v->st_touch, NULL) != SQLITE_OK) {
		rc = vault_errf(err, -EIO, "cannot prepare vault statements: %s",
				sqlite3_errmsg(v->rdb));
		goto fail;
	}
	verify_rows(v);
	if (opts->secret_service) {
		rc = sss_new(&v->sss);
		if (rc < 0) {
			rc = vault_errf(err, rc, "cannot set up the Secret Service backend");
			goto fail;
		}
		v->sss_uid = opts->secret_service_uid;
	}
	log_info("vault open: master key from %s (%s), %lu sealed rows, %lu corrupted",
		 vault_provider_str(v->prov), v->source, count_rows(db), v->corrupt);
	*out = v;
	return 0;
fail:
	log_errorx("vault: %s", err->msg);
	vault_free(v);
	return rc;
}

void vault_free(struct vault *v)
{
	if (v == NULL)
		return;
	sqlite3_finalize(v->st_get);
	sqlite3_finalize(v->st_touch);
	sqlite3_finalize(v->st_count);
	if (v->rdb != NULL && v->rdb != v->db)
		sqlite3_close(v->rdb);
	vault_keys_clear(&v->keys);
	secbuf_free(v->scratch);
	secbuf_free(v->render);
	sss_free(v->sss);
	vault_cache_flush(v);
	free(v->cache);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

const char *vault_provider_name(const struct vault *v)
{
	return vault_provider_str(v->prov);
}

const char *vault_provider_source(const struct vault *v)
{
	return v->source;
}

void vault_get_status_unlocked(struct vault *v, struct vault_status *st)
{
	memset(st, 0, sizeof(*st));
	st->provider = vault_provider_str(v->prov);
	/* status is polled; the count may be a second old. */
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		if (v->count_at == 0 || ts.tv_sec != v->count_at) {
			v->count = count_rows_cached(v->db, &v->st_count);
			v->count_at = ts.tv_sec;
		}
	}
	st->sealed = v->count;
	st->corrupt = v->corrupt;
	st->memory_locked = secbuf_unlocked_count() == 0;
	st->secret_service = v->sss != NULL;
}
