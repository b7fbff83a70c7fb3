/*
 * AES-256-GCM sealing for the vault: key derivation (HKDF-SHA256), the key
 * check value, and the sealed format  version | nonce | ciphertext | tag.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "log.h"
#include "vault-int.h"

static const char kcv_label[] = "nono-vault key check value v1";
static const char aad_magic[] = "nono-vault"; /* with its NUL */

static int hkdf(const unsigned char *ikm, size_t ikm_len, const char *info,
		unsigned char *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];
	static const char salt[] = "nono-vault";
	int rc = -EIO;

	if (kdf == NULL)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (kctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
						      sizeof(salt) - 1);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		rc = 0;
out:
	if (rc < 0)
		log_warnx("HKDF-SHA256 unavailable in this OpenSSL");
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

void vault_keys_clear(struct vault_keys *k)
{
	EVP_CIPHER_CTX_free(k->enc); /* cleanses the key schedule */
	EVP_CIPHER_CTX_free(k->dec);
	secbuf_free(k->keys);
	memset(k, 0, sizeof(*k));
}

int vault_keys_init(struct vault_keys *k, const struct secbuf *master)
{
	unsigned char *kb;
	int rc;

	memset(k, 0, sizeof(*k));
	if (secbuf_len(master) != VAULT_KEY_LEN)
		return -EINVAL;
	rc = secbuf_new(2 * VAULT_KEY_LEN, &k->keys);
	if (rc < 0)
		return rc;
	kb = secbuf_data(k->keys);
	if (hkdf(secbuf_cdata(master), VAULT_KEY_LEN, "nono-vault seal v1", kb, VAULT_KEY_LEN) < 0 ||
	    hkdf(secbuf_cdata(master), VAULT_KEY_LEN, "nono-vault kcv v1",
		 kb + VAULT_KEY_LEN, VAULT_KEY_LEN) < 0) {
		vault_keys_clear(k);
		return -EIO;
	}
	secbuf_set_len(k->keys, 2 * VAULT_KEY_LEN);
	k->enc = EVP_CIPHER_CTX_new();
	k->dec = EVP_CIPHER_CTX_new();
	if (k->enc == NULL || k->dec == NULL ||
	    EVP_EncryptInit_ex(k->enc, EVP_aes_256_gcm(), NULL, kb, NULL) != 1 ||
	    EVP_DecryptInit_ex(k->dec, EVP_aes_256_gcm(), NULL, kb, NULL) != 1) {
		log_warnx("AES-256-GCM unavailable in this OpenSSL");
		vault_keys_clear(k);
		return -EIO;
	}
	return 0;
}

void vault_keys_kcv(const struct vault_keys *k, unsigned char out[VAULT_KCV_LEN])
{
	unsigned int len = VAULT_KCV_LEN;

	HMAC(EVP_sha256(), secbuf_cdata(k->keys) + VAULT_KEY_LEN, VAULT_KEY_LEN,
	     (const unsigned char *)kcv_label, sizeof(kcv_label) - 1, out, &len);
}

/* magic\0 | version | kind | owner (be32) | name length (be16) | name */
static size_t build_aad(unsigned char *aad, enum vault_kind kind, uint32_t owner,
			const char *name)
{
	size_t nlen = strlen(name), off = 0;
	uint32_t o = htonl(owner);
	uint16_t l = htons((uint16_t)nlen);

	memcpy(aad, aad_magic, sizeof(aad_magic));
	off += sizeof(aad_magic);
	aad[off++] = VAULT_FORMAT_V1;
	aad[off++] = (unsigned char)kind;
	memcpy(aad + off, &o, 4);
	off += 4;
	memcpy(aad + off, &l, 2);
	off += 2;
	memcpy(aad + off, name, nlen);
	return off + nlen;
}

#define AAD_MAX (sizeof(aad_magic) + 2 + 4 + 2 + VAULT_NAME_MAX)

int vault_seal(struct vault_keys *k, enum vault_kind kind, uint32_t owner,
	       const char *name, const void *plain, size_t plain_len, unsigned char *out)
{
	unsigned char aad[AAD_MAX];
	unsigned char *nonce = out + 1, *ct = out + 1 + VAULT_NONCE_LEN;
	size_t aad_len;
	int n, fin;

	if (strlen(name) > VAULT_NAME_MAX || plain_len > INT_MAX - VAULT_SEAL_OVERHEAD)
		return -EINVAL;
	aad_len = build_aad(aad, kind, owner, name);
	out[0] = VAULT_FORMAT_V1;
	if (RAND_bytes(nonce, VAULT_NONCE_LEN) != 1) {
		log_warnx("RAND_bytes failed");
		return -EIO;
	}
	if (EVP_EncryptInit_ex(k->enc, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(k->enc, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_EncryptUpdate(k->enc, ct, &n, plain, (int)plain_len) != 1 ||
	    EVP_EncryptFinal_ex(k->enc, ct + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(k->enc, EVP_CTRL_GCM_GET_TAG, VAULT_TAG_LEN,
				ct + plain_len) != 1) {
		log_warnx("AES-256-GCM seal failed");
		return -EIO;
	}
	return 0;
}

int vault_unseal(struct vault_keys *k, enum vault_kind kind, uint32_t owner,
		 const char *name, const unsigned char *in, size_t in_len, struct secbuf *out)
{
	unsigned char aad[AAD_MAX], tag[VAULT_TAG_LEN];
	size_t aad_len, ct_len;
	int n, fin;

	secbuf_clear(out);
	if (in_len < VAULT_SEAL_OVERHEAD || in[0] != VAULT_FORMAT_V1 ||
	    strlen(name) > VAULT_NAME_MAX)
		return -EBADMSG;
	ct_len = in_len - VAULT_SEAL_OVERHEAD;
	if (ct_len > secbuf_cap(out) || ct_len > INT_MAX)
		return -EBADMSG;
	aad_len = build_aad(aad, kind, owner, name);
	memcpy(tag, in + in_len - VAULT_TAG_LEN, VAULT_TAG_LEN);
	if (EVP_DecryptInit_ex(k->dec, NULL, NULL, NULL, in + 1) != 1 ||
	    EVP_DecryptUpdate(k->dec, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(k->dec, secbuf_data(out), &n,
			      in + 1 + VAULT_NONCE_LEN, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(k->dec, EVP_CTRL_GCM_SET_TAG, VAULT_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(k->dec, secbuf_data(out) + n, &fin) != 1) {
		/* Wipe whatever was decrypted before the tag check failed. */
		explicit_bzero(secbuf_data(out), ct_len);
		secbuf_clear(out);
		return -EBADMSG;
	}
	secbuf_set_len(out, ct_len);
	return 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vault_key_parse(const unsigned char *buf, size_t len, struct secbuf **out)
{
	struct secbuf *k = NULL;
	unsigned char *p;
	int rc;

	*out = NULL;
	rc = secbuf_new(VAULT_KEY_LEN, &k);
	if (rc < 0)
		return rc;
	p = secbuf_data(k);
	if (len == VAULT_KEY_LEN) {
		memcpy(p, buf, VAULT_KEY_LEN);
	} else if (len == 2 * VAULT_KEY_LEN ||
		   (len == 2 * VAULT_KEY_LEN + 1 && buf[len - 1] == '\n')) {
		for (size_t i = 0; i < VAULT_KEY_LEN; i++) {
			int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				secbuf_free(k);
				return -EINVAL;
			}
			p[i] = (unsigned char)(hi << 4 | lo);
		}
	} else {
		secbuf_free(k);
		return -EINVAL;
	}
	secbuf_set_len(k, VAULT_KEY_LEN);
	*out = k;
	return 0;
}
