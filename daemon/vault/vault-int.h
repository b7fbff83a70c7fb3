/* Internals shared by the vault's files; not for other modules. */
#ifndef VAULT_VAULT_INT_H
#define VAULT_VAULT_INT_H

#include <limits.h>
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
/* key-file rotation: write a fresh random key to path (O_EXCL, 0600, fsync). */
int keyprov_file_create(const char *path, struct secbuf **master, struct vault_err *err);
/* Read a key file, checking type, owner and mode. -ENOENT if absent. */
int keyprov_file_read(const char *path, struct secbuf **master, struct vault_err *err);
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

/* ---- the vault ---- */

struct vault {
	sqlite3 *db;                 /* borrowed */
	enum vault_provider prov;
	char source[PATH_MAX];
	char key_file[PATH_MAX];
	struct vault_keys keys;
	struct secbuf *scratch;      /* unsealed values, VAULT_VALUE_MAX */
	sqlite3_stmt *st_get;        /* cached: sealed, last_used by owner+name */
	sqlite3_stmt *st_touch;      /* cached: last_used update */
	struct sss *sss;             /* NULL when the backend is off */
	uid_t sss_uid;
	unsigned long corrupt;
	bool tx_nested;             /* current transaction is a SAVEPOINT */
};

/* Format err->msg (err may be NULL) and return code. */
int vault_errf(struct vault_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Transactions that nest inside a caller's (SAVEPOINT) or stand alone (BEGIN IMMEDIATE). */
int vault_tx_begin(struct vault *v);
int vault_tx_commit(struct vault *v);
void vault_tx_rollback(struct vault *v);

int64_t vault_now(void);

/* Store the KCV of k and the provider name in vault_meta (inside a transaction). */
int vault_store_kcv(struct vault *v, const struct vault_keys *k);

/* Re-seal everything under new_master in one transaction (rotate.c). */
int vault_reseal_all(struct vault *v, struct vault_keys *newk, struct vault_err *err);

#endif
