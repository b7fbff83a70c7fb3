/* Internals shared by the vault's files; not for other modules. */
#ifndef VAULT_VAULT_INT_H
#define VAULT_VAULT_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <openssl/evp.h>

#include "vault.h"

#define VAULT_KEY_LEN 32
#define VAULT_FORMAT_V1 1
#define VAULT_NONCE_LEN 12
#define VAULT_TAG_LEN 16
#define VAULT_SEAL_OVERHEAD (1 + VAULT_NONCE_LEN + VAULT_TAG_LEN)
#define VAULT_KCV_LEN 32

/* ---- seal.c: keys derived from one master key, AES-256-GCM ---- */

struct vault_keys {
	struct secbuf *keys;   /* seal key (32) | kcv key (32) */
	EVP_CIPHER_CTX *enc;   /* keyed once; only the nonce changes per call */
	EVP_CIPHER_CTX *dec;
};

enum vault_kind {
	VAULT_KIND_SECRET = 'S',
	VAULT_KIND_BLOB = 'B',
};

/* Derive the keys from master (VAULT_KEY_LEN bytes). */
int vault_keys_init(struct vault_keys *k, const struct secbuf *master);
void vault_keys_clear(struct vault_keys *k);
void vault_keys_kcv(const struct vault_keys *k, unsigned char out[VAULT_KCV_LEN]);
/* Seal into out (plain_len + VAULT_SEAL_OVERHEAD bytes). */
int vault_seal(struct vault_keys *k, enum vault_kind kind, uint32_t owner,
	       const char *name, const void *plain, size_t plain_len, unsigned char *out);
/* Unseal into out (overwritten). -EBADMSG on any failure, out left empty. */
int vault_unseal(struct vault_keys *k, enum vault_kind kind, uint32_t owner,
		 const char *name, const unsigned char *in, size_t in_len, struct secbuf *out);
/* Parse key material (32 raw bytes or 64 hex digits, optional newline) into a new secbuf. */
int vault_key_parse(const unsigned char *buf, size_t len, struct secbuf **out);

/* ---- keyprov.c: master-key providers ---- */

enum vault_provider {
	VAULT_PROV_NONE = 0,
	VAULT_PROV_CREDENTIAL,
	VAULT_PROV_KEYRING,
	VAULT_PROV_KEYCHAIN,
	VAULT_PROV_FILE,
};

struct keyprov_cfg {
	enum vault_provider want;   /* NONE = auto */
	const char *credential_name;
	const char *keyring_desc;
	const char *key_file;
	bool may_create;            /* the database holds no sealed data yet */
};

const char *vault_provider_str(enum vault_provider p);
/* -1 for an unknown name; "auto" and NULL give VAULT_PROV_NONE. */
int vault_provider_parse(const char *s);
/*
 * Find the master key. Returns 0 with *master (owned), *prov and source (a
 * path or description); -ENOKEY when no provider has one (err lists where
 * it looked); other -errno for a provider that has a key but refuses it.
 */
int keyprov_load(const struct keyprov_cfg *cfg, struct secbuf **master,
		 enum vault_provider *prov, char *source, size_t source_len,
		 struct vault_err *err);
/*
 * The provider's "next" key, for rotation: credential <name>.next, keyring
 * <desc>.next, keychain account <desc>.next, key file <path>.next. Never
 * creates one. -ENOKEY when absent.
 */
int keyprov_load_next(const struct keyprov_cfg *cfg, enum vault_provider p,
		      struct secbuf **master, char *source, size_t source_len,
		      struct vault_err *err);
/* key-file rotation: write a fresh random key to path (O_EXCL, 0600, fsync). */
int keyprov_file_create(const char *path, struct secbuf **master, struct vault_err *err);
/* Read a key file, checking type, owner and mode. -ENOENT if absent. */
int keyprov_file_read(const char *path, struct secbuf **master, struct vault_err *err);
/* Remove <path>.tmp* and <path>.next.tmp* left by a crash while writing a key. */
void keyprov_file_sweep(const char *path);
/* rename(from, to) and fsync the directory. */
int keyprov_file_commit(const char *from, const char *to);

/* ---- sss.c: the Secret Service backend ---- */

struct sss;
int sss_new(struct sss **out);
void sss_free(struct sss *s);
/* Value of item {service=nono, username=name, target=default}; -ENOENT if none. */
int sss_lookup(struct sss *s, const char *name, struct secbuf *out, struct vault_err *err);
/* Calls fn with the name of every such item. */
int sss_list(struct sss *s, int (*fn)(void *ctx, const char *name), void *ctx,
	     struct vault_err *err);

/* ---- cache.c: sealed rows for vault_render ---- */

#define VAULT_CACHE_SLOTS 1024 /* power of two */
#define VAULT_CACHE_TTL 30     /* seconds */

struct vault_cache_ent {
	uint32_t owner;
	char name[VAULT_NAME_MAX + 1];
	unsigned char *sealed;       /* ciphertext only; NULL = empty slot */
	size_t len;
	int64_t fetched;             /* when read from the database */
	int64_t last_used;           /* as last written to the database */
	bool from_sss;               /* a Secret Service value, sealed by us for the cache */
};

struct vault;
struct vault_cache_ent *vault_cache_get(struct vault *v, uint32_t owner, const char *name,
					int64_t now);
struct vault_cache_ent *vault_cache_put(struct vault *v, uint32_t owner, const char *name,
					const void *sealed, size_t len, int64_t last_used,
					int64_t now, bool from_sss);
void vault_cache_forget(struct vault *v, uint32_t owner, const char *name);

/* ---- the vault ---- */

struct vault {
	pthread_mutex_t mu;          /* recursive; held by every public entry point (lock.c) */
	sqlite3 *db;                 /* borrowed */
	sqlite3 *rdb;                /* the render path's own connection (or db, for :memory:) */
	enum vault_provider prov;
	char source[PATH_MAX];
	char key_file[PATH_MAX];
	char credential_name[NAME_MAX + 1];
	char keyring_desc[256];
	struct vault_keys keys;
	struct secbuf *scratch;      /* unsealed values, VAULT_VALUE_MAX */
	struct secbuf *render;       /* vault_render_cb's output, made on first use */
	sqlite3_stmt *st_get;        /* cached, on rdb: sealed, last_used by owner+name */
	sqlite3_stmt *st_touch;      /* cached, on rdb: last_used update */
	sqlite3_stmt *st_count;      /* cached: sealed rows, for status */
	unsigned long count;         /* sealed rows as of count_at (monotonic seconds) */
	time_t count_at;
	struct vault_cache_ent *cache; /* VAULT_CACHE_SLOTS entries */
	struct sss *sss;             /* NULL when the backend is off */
	uid_t sss_uid;
	bool sss_warned;             /* a listing failure was logged once */
	unsigned long corrupt;
	unsigned int tx_depth;       /* vault transactions open (vault_tx_begin) */
	bool tx_outer_savepoint;     /* the outermost one nests in the caller's */
};

/* lock.c: v->mu (recursive). The public functions of vault.h take it and
 * call these, which expect it held. */
int vault_lock_init(struct vault *v);
int vault_set_unlocked(struct vault *v, uid_t owner, const char *name, const void *value,
		       size_t len, bool *created, struct vault_err *err);
int vault_info_unlocked(struct vault *v, uid_t owner, const char *name,
			struct vault_secret_info *out, struct vault_err *err);
int vault_delete_unlocked(struct vault *v, uid_t owner, const char *name,
			  struct vault_err *err);
int vault_list_unlocked(struct vault *v, uid_t owner, vault_list_fn fn, void *ctx,
			struct vault_err *err);
int vault_render_unlocked(struct vault *v, uid_t owner, const char *tmpl,
			  struct secbuf *out, struct vault_err *err);
int vault_render_cb_unlocked(void *ctx, uid_t owner, const char *tmpl, char *out,
			     size_t outlen, size_t *len);
int vault_rotate_key_unlocked(struct vault *v, struct vault_err *err);
int vault_seal_blob_unlocked(struct vault *v, const char *purpose, const void *plain,
			     size_t len, unsigned char **sealed, size_t *sealed_len,
			     struct vault_err *err);
int vault_unseal_blob_unlocked(struct vault *v, const char *purpose,
			       const unsigned char *sealed, size_t sealed_len,
			       struct secbuf **out, struct vault_err *err);
int vault_blob_store_unlocked(struct vault *v, const char *purpose, const void *plain,
			      size_t len, struct vault_err *err);
int vault_blob_load_unlocked(struct vault *v, const char *purpose, struct secbuf **out,
			     struct vault_err *err);
int vault_proxy_ca_load_unlocked(void *ctx, char **cert_pem, char **key_pem);
int vault_proxy_ca_store_unlocked(void *ctx, const char *cert_pem, const char *key_pem);
void vault_cache_flush_unlocked(struct vault *v);
void vault_get_status_unlocked(struct vault *v, struct vault_status *st);

/* Format err->msg (err may be NULL) and return code. */
int vault_errf(struct vault_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Transactions that nest inside a caller's (SAVEPOINT) or stand alone (BEGIN IMMEDIATE). */
int vault_tx_begin(struct vault *v);
int vault_tx_commit(struct vault *v);
void vault_tx_rollback(struct vault *v);

int64_t vault_now(void);

/* Find name for owner (vault, then Secret Service) and unseal it into out. */
int vault_resolve(struct vault *v, uid_t owner, const char *name, struct secbuf *out,
		  enum vault_backend *backend, struct vault_err *err);

/* The provider configuration this vault was opened with (want = its provider). */
void vault_keyprov_cfg(const struct vault *v, struct keyprov_cfg *cfg);

/* Store the KCV of k and the provider name in vault_meta (inside a transaction). */
int vault_store_kcv(struct vault *v, const struct vault_keys *k);

/* Re-seal everything under new_master in one transaction (rotate.c). */
int vault_reseal_all(struct vault *v, struct vault_keys *newk, struct vault_err *err);

#endif
