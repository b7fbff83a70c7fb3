/*
 * The interception CA: loaded through config->load_ca or generated (ECDSA
 * P-256) and handed to config->store_ca so the vault can seal the key; and
 * per-host leaf certificates (one shared P-256 leaf key, cached by host)
 * served with a check that the client's SNI names the CONNECT host and an
 * ALPN selection that only ever picks http/1.1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "proxy-int.h"

#define CA_BUCKETS 256
#define CA_CACHE_MAX 2048
#define LEAF_DAYS 30
#define LEAF_REISSUE_S (7 * 86400) /* well before LEAF_DAYS */

struct leaf {
	char *host;
	X509 *cert;
	time_t made;
	struct leaf *next;
};

struct ca {
	X509 *cert;
	EVP_PKEY *key;
	EVP_PKEY *leaf_key;
	SSL_CTX *srv;
	char *pem;
	pthread_mutex_t mu; /* the leaf cache: the proxy's loops share it */
	struct leaf *bucket[CA_BUCKETS];
	size_t n_leaf;
};

static int ex_host = -1;   /* SSL ex_data: expected host (borrowed) */
static int ex_reason = -1; /* SSL ex_data: static failure reason */

static EVP_PKEY *
ec_key_new(void)
{
	return EVP_EC_gen("P-256");
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
set_serial(X509 *cert)
{
	unsigned char b[16];
	BIGNUM *bn;
	int r = -1;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f;
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
		r = 0;
	BN_free(bn);
	return r;
}

static X509 *
cert_new(const char *cn, EVP_PKEY *pub, long from_s, long days)
{
	X509 *c = X509_new();
	X509_NAME *n;

	if (c == NULL || X509_set_version(c, 2) != 1 || set_serial(c) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), from_s) ||
	    !X509_time_adj_ex(X509_getm_notAfter(c), (int)days, 0, NULL) ||
	    X509_set_pubkey(c, pub) != 1)
		goto fail;
	n = X509_get_subject_name(c);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	return c;
fail:
	X509_free(c);
	return NULL;
}

static int
ca_generate(struct ca *ca)
{
	unsigned char rnd[4];
	char cn[64];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	snprintf(cn, sizeof(cn), "nono proxy CA %02x%02x%02x%02x", rnd[0],
		 rnd[1], rnd[2], rnd[3]);
	ca->key = ec_key_new();
	if (ca->key == NULL)
		return -EIO;
	ca->cert = cert_new(cn, ca->key, -86400, 3650);
	if (ca->cert == NULL ||
	    X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) == 0)
		return -EIO;
	return 0;
}

static char *
bio_to_str(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	s = malloc((size_t)n + 1);
	if (s) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

/* Serialize cert and key; the key string must be wiped by the caller. */
static int
ca_to_pem(struct ca *ca, char **key_pem)
{
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_secmem());
	int r = -EIO;

	if (bc && bk && PEM_write_bio_X509(bc, ca->cert) == 1 &&
	    PEM_write_bio_PrivateKey(bk, ca->key, NULL, NULL, 0, NULL, NULL) == 1) {
		ca->pem = bio_to_str(bc);
		if (key_pem != NULL)
			*key_pem = bio_to_str(bk);
		r = ca->pem && (!key_pem || *key_pem) ? 0 : -ENOMEM;
	}
	BIO_free(bc);
	BIO_free(bk);
	return r;
}

static int
ca_from_pem(struct ca *ca, const char *cert_pem, const char *key_pem)
{
	BIO *bc = BIO_new_mem_buf(cert_pem, -1);
	BIO *bk = BIO_new_mem_buf(key_pem, -1);
	int r = -EINVAL;

	if (bc && bk) {
		ca->cert = PEM_read_bio_X509(bc, NULL, NULL, NULL);
		ca->key = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
		if (ca->cert && ca->key &&
		    X509_check_private_key(ca->cert, ca->key) == 1 &&
		    X509_check_ca(ca->cert) > 0)
			r = 0;
	}
	BIO_free(bc);
	BIO_free(bk);
	if (r < 0)
		log_warnx("%s: stored CA is invalid (cert/key mismatch or not a CA)",
			  __func__);
	return r;
}

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	const char *want = SSL_get_ex_data(ssl, ex_host);
	const char *got = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (got == NULL || want == NULL || strcasecmp(got, want) != 0) {
		SSL_set_ex_data(ssl, ex_reason,
				got ? "TLS SNI does not match the CONNECT host"
				    : "TLS client sent no SNI");
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
	const unsigned char *in, unsigned int inlen, void *arg)
{
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK; /* no h2: the client falls back to 1.1 */
}

int
ca_new(const struct proxy_config *cfg, struct ca **out)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	char *cert_pem = NULL, *key_pem = NULL;
	int r;

	if (ca == NULL)
		return -ENOMEM;
	pthread_mutex_init(&ca->mu, NULL);
	if (ex_host < 0) {
		ex_host = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		ex_reason = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	}
	r = cfg->load_ca ? cfg->load_ca(cfg->ca_ctx, &cert_pem, &key_pem) : -ENOENT;
	if (r == 0) {
		r = ca_from_pem(ca, cert_pem, key_pem);
		if (r == 0)
			r = ca_to_pem(ca, NULL);
	} else if (r == -ENOENT) {
		r = ca_generate(ca);
		if (r == 0)
			r = ca_to_pem(ca, &key_pem);
		if (r == 0 && cfg->store_ca)
			r = cfg->store_ca(cfg->ca_ctx, ca->pem, key_pem);
	} else {
		log_warnx("%s: load_ca failed (%d)", __func__, r);
	}
	free(cert_pem);
	if (key_pem) {
		OPENSSL_cleanse(key_pem, strlen(key_pem));
		free(key_pem);
	}
	if (r < 0)
		goto fail;
	r = -EIO;
	ca->leaf_key = ec_key_new();
	ca->srv = SSL_CTX_new(TLS_server_method());
	if (ca->leaf_key == NULL || ca->srv == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(ca->srv, TLS1_2_VERSION);
	SSL_CTX_set_options(ca->srv, SSL_OP_IGNORE_UNEXPECTED_EOF |
					     SSL_OP_NO_RENEGOTIATION |
					     SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* outbuf_coalesce() may move output a pending SSL_write will retry */
	SSL_CTX_set_mode(ca->srv, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_tlsext_servername_callback(ca->srv, sni_cb);
	SSL_CTX_set_alpn_select_cb(ca->srv, alpn_cb, NULL);
	SSL_CTX_set_session_cache_mode(ca->srv, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ca->srv, 0);
	*out = ca;
	return 0;
fail:
	log_warnx("%s: CA setup failed", __func__);
	ca_free(ca);
	return r;
}

void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	for (size_t i = 0; i < CA_BUCKETS; i++) {
		struct leaf *l = ca->bucket[i], *n;
		for (; l; l = n) {
			n = l->next;
			X509_free(l->cert);
			free(l->host);
			free(l);
		}
	}
	SSL_CTX_free(ca->srv);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	EVP_PKEY_free(ca->leaf_key);
	free(ca->pem);
	pthread_mutex_destroy(&ca->mu);
	free(ca);
}

const char *
ca_pem(const struct ca *ca)
{
	return ca->pem;
}

static X509 *
leaf_make(struct ca *ca, const char *host)
{
	char san[PROXY_HOST_MAX + 8];
	X509 *c = cert_new(host, ca->leaf_key, -3600, LEAF_DAYS);

	snprintf(san, sizeof(san), "DNS:%s", host);
	if (c == NULL ||
	    X509_set_issuer_name(c, X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(c, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(c, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(c, ca->cert, NID_ext_key_usage, "serverAuth") ||
	    add_ext(c, ca->cert, NID_authority_key_identifier, "keyid:always") ||
	    add_ext(c, ca->cert, NID_subject_alt_name, san) ||
	    X509_sign(c, ca->key, EVP_sha256()) == 0) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static unsigned
host_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % CA_BUCKETS;
}

/* Cached leaf for host (borrowed), made on first use. Under ca->mu. */
static X509 *
leaf_get(struct ca *ca, const char *host)
{
	unsigned h = host_hash(host);
	struct leaf *l;

	for (l = ca->bucket[h]; l; l = l->next) {
		if (strcmp(l->host, host) != 0)
			continue;
		if (time(NULL) - l->made < LEAF_REISSUE_S)
			return l->cert;
		X509 *fresh = leaf_make(ca, host);
		if (fresh == NULL)
			return NULL;
		X509_free(l->cert);
		l->cert = fresh;
		l->made = time(NULL);
		return l->cert;
	}
	if (ca->n_leaf >= CA_CACHE_MAX) {
		/* bounded: drop the bucket's chain rather than grow */
		struct leaf *n;
		for (l = ca->bucket[h]; l; l = n) {
			n = l->next;
			X509_free(l->cert);
			free(l->host);
			free(l);
			ca->n_leaf--;
		}
		ca->bucket[h] = NULL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->host = strdup(host);
	l->cert = leaf_make(ca, host);
	if (l->host == NULL || l->cert == NULL) {
		log_warnx("%s: cannot issue a certificate for %s", __func__, host);
		X509_free(l->cert);
		free(l->host);
		free(l);
		return NULL;
	}
	l->made = time(NULL);
	l->next = ca->bucket[h];
	ca->bucket[h] = l;
	ca->n_leaf++;
	return l->cert;
}

SSL *
ca_server_ssl(struct ca *ca, const char *host)
{
	X509 *leaf;
	SSL *ssl;

	/* a reference of our own: another loop may replace the cached one */
	pthread_mutex_lock(&ca->mu);
	leaf = leaf_get(ca, host);
	if (leaf != NULL && X509_up_ref(leaf) != 1)
		leaf = NULL;
	pthread_mutex_unlock(&ca->mu);
	if (leaf == NULL)
		return NULL;
	ssl = SSL_new(ca->srv);
	if (ssl == NULL || SSL_use_certificate(ssl, leaf) != 1 ||
	    SSL_use_PrivateKey(ssl, ca->leaf_key) != 1 ||
	    SSL_set_ex_data(ssl, ex_host, (void *)host) != 1) {
		SSL_free(ssl);
		ssl = NULL;
	}
	X509_free(leaf);
	return ssl;
}

const char *
ca_ssl_reason(SSL *ssl)
{
	return ssl ? SSL_get_ex_data(ssl, ex_reason) : NULL;
}
