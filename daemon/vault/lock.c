/*
 * The vault's lock. The proxy renders header values on its loop threads
 * (vault_render_cb) while the daemon's loop sets, lists, deletes and
 * rotates secrets, so every public entry point holds v->mu for its whole
 * call. The mutex is recursive because entry points call one another (a
 * CA store is two blob stores). The render path reads through a database
 * connection of its own (v->rdb): the daemon's connection is used by the
 * loop thread without SQLite's mutex.
 */
#include <pthread.h>

#include "vault-int.h"

int vault_lock_init(struct vault *v)
{
	pthread_mutexattr_t a;
	int e;

	if ((e = pthread_mutexattr_init(&a)) != 0)
		return -e;
	e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	if (e == 0)
		e = pthread_mutex_init(&v->mu, &a);
	pthread_mutexattr_destroy(&a);
	return -e;
}

#define LOCKED(call)                            \
	do {                                    \
		int rc_;                        \
		pthread_mutex_lock(&v->mu);     \
		rc_ = call;                     \
		pthread_mutex_unlock(&v->mu);   \
		return rc_;                     \
	} while (0)

int vault_set(struct vault *v, uid_t owner, const char *name, const void *value,
	      size_t len, bool *created, struct vault_err *err)
{
	LOCKED(vault_set_unlocked(v, owner, name, value, len, created, err));
}

int vault_info(struct vault *v, uid_t owner, const char *name,
	       struct vault_secret_info *out, struct vault_err *err)
{
	LOCKED(vault_info_unlocked(v, owner, name, out, err));
}

int vault_delete(struct vault *v, uid_t owner, const char *name, struct vault_err *err)
{
	LOCKED(vault_delete_unlocked(v, owner, name, err));
}

int vault_list(struct vault *v, uid_t owner, vault_list_fn fn, void *ctx,
	       struct vault_err *err)
{
	LOCKED(vault_list_unlocked(v, owner, fn, ctx, err));
}

int vault_render(struct vault *v, uid_t owner, const char *tmpl, struct secbuf *out,
		 struct vault_err *err)
{
	LOCKED(vault_render_unlocked(v, owner, tmpl, out, err));
}

int vault_render_cb(void *ctx, uid_t owner, const char *tmpl, char *out,
		    size_t outlen, size_t *len)
{
	struct vault *v = ctx;

	LOCKED(vault_render_cb_unlocked(v, owner, tmpl, out, outlen, len));
}

int vault_rotate_key(struct vault *v, struct vault_err *err)
{
	LOCKED(vault_rotate_key_unlocked(v, err));
}

int vault_seal_blob(struct vault *v, const char *purpose, const void *plain, size_t len,
		    unsigned char **sealed, size_t *sealed_len, struct vault_err *err)
{
	LOCKED(vault_seal_blob_unlocked(v, purpose, plain, len, sealed, sealed_len, err));
}

int vault_unseal_blob(struct vault *v, const char *purpose, const unsigned char *sealed,
		      size_t sealed_len, struct secbuf **out, struct vault_err *err)
{
	LOCKED(vault_unseal_blob_unlocked(v, purpose, sealed, sealed_len, out, err));
}

int vault_blob_store(struct vault *v, const char *purpose, const void *plain, size_t len,
		     struct vault_err *err)
{
	LOCKED(vault_blob_store_unlocked(v, purpose, plain, len, err));
}

int vault_blob_load(struct vault *v, const char *purpose, struct secbuf **out,
		    struct vault_err *err)
{
	LOCKED(vault_blob_load_unlocked(v, purpose, out, err));
}

int vault_proxy_ca_load(void *ctx, char **cert_pem, char **key_pem)
{
	struct vault *v = ctx;

	LOCKED(vault_proxy_ca_load_unlocked(v, cert_pem, key_pem));
}

int vault_proxy_ca_store(void *ctx, const char *cert_pem, const char *key_pem)
{
	struct vault *v = ctx;

	LOCKED(vault_proxy_ca_store_unlocked(v, cert_pem, key_pem));
}

void vault_cache_flush(struct vault *v)
{
	pthread_mutex_lock(&v->mu);
	vault_cache_flush_unlocked(v);
	pthread_mutex_unlock(&v->mu);
}

void vault_get_status(struct vault *v, struct vault_status *st)
{
	pthread_mutex_lock(&v->mu);
	vault_get_status_unlocked(v, st);
	pthread_mutex_unlock(&v->mu);
}
