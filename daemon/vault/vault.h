/*
 * The secrets vault: named secrets owned by a uid, sealed at rest in the
 * daemon's SQLite database under a master key that never leaves this module.
 *
 * Sealing: AES-256-GCM, a fresh random 96-bit nonce per seal. A sealed value
 * is  version(1) | nonce(12) | ciphertext | tag(16)  and the additional data
 * binds the format version, the kind (secret or blob), the owner uid and the
 * name, so a row copied to another owner or name does not unseal. The
 * sealing key and a key check value (KCV) are derived from the master key
 * with HKDF-SHA256; the KCV stored in the database tells a wrong master key
 * apart from a corrupted row. A wrong or missing master key is an error
 * naming the provider; nothing stored is ever rewritten because of it.
 *
 * Master-key providers, in the order "auto" tries them (the first one that
 * has a key is used; it must match the database's KCV):
 *   1. systemd-credential  $CREDENTIALS_DIRECTORY/<credential_name>
 *                          (LoadCredential=/LoadCredentialEncrypted=, systemd-creds)
 *   2. kernel-keyring      a "user" key <keyring_desc>, found by request_key(2)
 *                          (thread, process, session keyrings) then
 *                          KEYCTL_SEARCH in the user keyring
 *   3. macos-keychain      generic password service "nono", account
 *                          <keyring_desc> (macOS builds only)
 *   4. key-file            <state_dir>/master.key, 0600, owned by the
 *                          daemon's euid; created with O_EXCL on first start
 *                          (only while the database holds no sealed data)
 * Key material is 32 raw bytes or 64 hex digits (optionally newline-ended).
 *
 * Backends and name resolution: a name is looked up in the vault (SQLite)
 * first; only if it is not there, and the Secret Service backend is enabled
 * for that owner, in org.freedesktop.secrets (items stored with
 * `secret-tool store --label=... service nono username NAME target default`).
 * vault_list() reports both, with the backend, and marks a Secret Service
 * item hidden by a vault secret of the same name as shadowed.
 *
 * Errors: functions return 0 or -errno and, when err is not NULL, a sentence
 * in err->msg for the user (names and providers only, never secret bytes):
 *   -EINVAL bad name/template/value   -ENOENT no such secret
 *   -EBADMSG a row that fails to unseal (corrupted), named in the message
 *   -ENOKEY no master key              -EKEYREJECTED master key mismatch
 *   -EPERM key file with wrong owner/mode   -ENOSPC output buffer too small
 *   -E2BIG value too large             -EROFS secret is not in the vault backend
 *   -EOPNOTSUPP operation not possible with this provider   -EIO database
 *
 * Threading: a vault is used from one thread (the daemon's loop).
 */
#ifndef VAULT_VAULT_H
#define VAULT_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sqlite3.h>

#include "secbuf.h"

#define VAULT_NAME_MAX 128
#define VAULT_VALUE_MAX (64 * 1024)
#define VAULT_RENDER_MAX (64 * 1024)  /* longest template and rendered value */
#define VAULT_BLOB_MAX (1024 * 1024)

struct vault;

struct vault_options {
	const char *provider;        /* NULL or "auto", or one provider name above */
	const char *credential_name; /* NULL: "nono.master-key" */
	const char *keyring_desc;    /* NULL: "nono:master" */
	const char *key_file;        /* NULL: <state_dir>/master.key */
	bool secret_service;         /* enable the Secret Service backend ... */
	uid_t secret_service_uid;    /* ... for this owner (the session bus's user) */
};

struct vault_err {
	char msg[512];
};

enum vault_backend {
	VAULT_BACKEND_VAULT = 0,
	VAULT_BACKEND_SECRET_SERVICE,
};

struct vault_secret_info {
	char name[VAULT_NAME_MAX + 1];
	uid_t owner;
	enum vault_backend backend;
	int64_t created, updated, last_used; /* unix seconds; 0 = unknown or never */
	bool corrupt;   /* does not unseal: reported, never dropped */
	bool shadowed;  /* Secret Service item hidden by a vault secret */
};

struct vault_status {
	const char *provider;       /* vault_provider_name() */
	unsigned long sealed;       /* sealed rows: secrets and stored blobs */
	unsigned long corrupt;      /* rows found corrupted at open or since */
	bool memory_locked;         /* every secbuf so far was mlock()ed */
	bool secret_service;        /* backend enabled */
};

/*
 * Migrate the vault tables, load the master key, check it against the
 * database (storing the KCV on first use), and check every sealed row,
 * logging each corrupted one by owner and name. db and state_dir are
 * borrowed (db must outlive the vault). opts may be NULL (defaults).
 */
int vault_open(sqlite3 *db, const char *state_dir, const struct vault_options *opts,
	       struct vault **out, struct vault_err *err);
void vault_free(struct vault *v);

/* "systemd-credential", "kernel-keyring", "macos-keychain" or "key-file". */
const char *vault_provider_name(const struct vault *v);
/* Where the key came from: a path or a key description. Borrowed. */
const char *vault_provider_source(const struct vault *v);
void vault_get_status(struct vault *v, struct vault_status *st);

/* [A-Za-z0-9_.-]{1,VAULT_NAME_MAX} */
bool vault_name_valid(const char *name);

/* Create or replace; *created tells which (may be NULL). len <= VAULT_VALUE_MAX. */
int vault_set(struct vault *v, uid_t owner, const char *name, const void *value,
	      size_t len, bool *created, struct vault_err *err);
/* Metadata of one secret (vault first, then Secret Service). */
int vault_info(struct vault *v, uid_t owner, const char *name,
	       struct vault_secret_info *out, struct vault_err *err);
/* Remove from the vault backend (-EROFS for a Secret Service item). */
int vault_delete(struct vault *v, uid_t owner, const char *name, struct vault_err *err);

/* Calls fn for each secret of owner, vault first, sorted by name. A
 * non-zero return from fn stops the walk and is returned. */
typedef int (*vault_list_fn)(void *ctx, const struct vault_secret_info *info);
int vault_list(struct vault *v, uid_t owner, vault_list_fn fn, void *ctx,
	       struct vault_err *err);

/*
 * Render a header-value template for owner: every ${secret:NAME} is replaced
 * by the secret's value; other text is copied; any other "${" is -EINVAL.
 * Values containing CR, LF, NUL or other control bytes (but TAB) are refused
 * (-EINVAL): they would split the header. out is owned by the caller and
 * overwritten (its previous contents wiped); on failure it is left empty.
 */
int vault_render(struct vault *v, uid_t owner, const char *tmpl, struct secbuf *out,
		 struct vault_err *err);
/*
 * The same into a caller buffer (the proxy's render callback shape):
 * out[0..*len) plus a NUL; -ENOSPC if it does not fit. The caller keeps
 * and wipes out. ctx is the struct vault.
 */
int vault_render_cb(void *ctx, uid_t owner, const char *tmpl, char *out,
		    size_t outlen, size_t *len);

/*
 * vault_render keeps up to 1024 sealed rows (ciphertext only; Secret Service
 * values are sealed by the vault first) for up to 30 s;
 * set, delete and rotation keep it coherent. Call this after changing the
 * database behind the vault's back (tests, offline maintenance).
 */
void vault_cache_flush(struct vault *v);

/*
 * Re-seal every secret and stored blob under a new master key in one
 * transaction. Any row that fails to unseal aborts the rotation (nothing
 * changes), named in err.
 *  key-file: a new random key is written to <file>.next, the transaction
 *    commits, then the file is renamed into place (vault_open finishes or
 *    discards an interrupted rotation).
 *  systemd-credential / kernel-keyring / macos-keychain: the operator first
 *    provisions the new key under the same name plus ".next" (credential
 *    nono.master-key.next, keyring user key nono:master.next); the vault
 *    re-seals under it, and keeps accepting it as "next" (with a warning at
 *    open) until the operator makes it the main key. -ENOKEY if absent.
 */
int vault_rotate_key(struct vault *v, struct vault_err *err);

/*
 * Seal arbitrary bytes for another module (e.g. the proxy's CA key), bound
 * to purpose (a vault name). *sealed is malloc()ed, owned by the caller
 * (not secret: it is ciphertext). A blob sealed this way and kept outside
 * the vault is NOT re-sealed by vault_rotate_key(): prefer vault_blob_store.
 */
int vault_seal_blob(struct vault *v, const char *purpose, const void *plain, size_t len,
		    unsigned char **sealed, size_t *sealed_len, struct vault_err *err);
/* Unseal into a new secbuf (*out owned by the caller, free with secbuf_free). */
int vault_unseal_blob(struct vault *v, const char *purpose, const unsigned char *sealed,
		      size_t sealed_len, struct secbuf **out, struct vault_err *err);
/* Keep a sealed blob in the vault's own table (re-sealed by rotation). */
int vault_blob_store(struct vault *v, const char *purpose, const void *plain, size_t len,
		     struct vault_err *err);
/* -ENOENT when none is stored. */
int vault_blob_load(struct vault *v, const char *purpose, struct secbuf **out,
		    struct vault_err *err);

/*
 * The proxy's CA persistence callbacks (proxy_config.load_ca/store_ca, ctx =
 * the vault): the CA certificate and key are the sealed blobs
 * "proxy-ca-cert" and "proxy-ca-key", stored together in one transaction.
 * load returns -ENOENT when none is stored; its strings are malloc()ed and
 * owned by the caller (who wipes the key).
 */
int vault_proxy_ca_load(void *ctx, char **cert_pem, char **key_pem);
int vault_proxy_ca_store(void *ctx, const char *cert_pem, const char *key_pem);

/*
 * Make the calling process non-dumpable (PR_SET_DUMPABLE 0: no core file,
 * no ptrace by same-uid processes, /proc/PID/mem closed) and set
 * RLIMIT_CORE to 0. Call once, early in main. 0 or -errno.
 */
int vault_harden_process(void);

#endif
