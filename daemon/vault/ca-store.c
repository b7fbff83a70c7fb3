/*
 * The proxy's CA persistence callbacks (struct proxy_config load_ca/store_ca):
 * the certificate and the private key are kept as sealed blobs in the vault,
 * so the key is encrypted at rest and re-sealed by key rotation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vault-int.h"

#define CA_CERT "proxy-ca-cert"
#define CA_KEY "proxy-ca-key"

/* A malloc()ed C string copy of a blob (the proxy frees it, wiping the key). */
static int load_str(struct vault *v, const char *purpose, char **out)
{
	struct secbuf *b = NULL;
	struct vault_err err;
	int rc;

	*out = NULL;
	rc = vault_blob_load(v, purpose, &b, &err);
	if (rc < 0) {
		if (rc != -ENOENT)
			log_errorx("loading %s: %s", purpose, err.msg);
		return rc;
	}
	*out = malloc(secbuf_len(b) + 1);
	if (*out != NULL)
		memcpy(*out, secbuf_cstr(b), secbuf_len(b) + 1);
	secbuf_free(b);
	return *out != NULL ? 0 : -ENOMEM;
}

int vault_proxy_ca_load_unlocked(void *ctx, char **cert_pem, char **key_pem)
{
	struct vault *v = ctx;
	int rc;

	*cert_pem = *key_pem = NULL;
	rc = load_str(v, CA_CERT, cert_pem);
	if (rc == 0)
		rc = load_str(v, CA_KEY, key_pem);
	if (rc < 0) {
		free(*cert_pem);
		*cert_pem = NULL;
		if (rc == -ENOENT)
			return -ENOENT;
	}
	return rc;
}

int vault_proxy_ca_store_unlocked(void *ctx, const char *cert_pem, const char *key_pem)
{
	struct vault *v = ctx;
	struct vault_err err;
	int rc;

	if (vault_tx_begin(v) < 0)
		return -EIO;
	rc = vault_blob_store(v, CA_CERT, cert_pem, strlen(cert_pem), &err);
	if (rc == 0)
		rc = vault_blob_store(v, CA_KEY, key_pem, strlen(key_pem), &err);
	if (rc == 0 && vault_tx_commit(v) < 0)
		rc = -EIO;
	if (rc < 0) {
		vault_tx_rollback(v);
		log_errorx("storing the proxy CA: %s", rc == -EIO ? "database error" : err.msg);
	}
	return rc;
}
