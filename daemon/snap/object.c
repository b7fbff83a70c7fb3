/*
 * Objects, named by the SHA-256 of (type byte || payload). Stored as one
 * type byte, one compression byte (0 = stored, 1 = zstd frame, level 1),
 * then the stored bytes: new objects as records in pack files (pack.c);
 * stores written before packs existed also hold loose files
 * objects/ab/<62 hex> in the same form, which are still read, verified and
 * collected. Compression keeps the store at restic's size (restic uses zstd
 * too); it is skipped when it does not shrink the payload (already
 * compressed or random data).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "log.h"
#include "snap-int.h"

#define OBJ_ZSTD_LEVEL 1

/* The digest and one context per thread, reused: a first snapshot hashes
 * 30,000 small objects, and a fresh context costs allocations each. */
static EVP_MD *sha256_md;
static pthread_key_t mdctx_key;
static bool mdctx_key_ok;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void mdctx_free(void *c)
{
	EVP_MD_CTX_free(c);
}

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	mdctx_key_ok = pthread_key_create(&mdctx_key, mdctx_free) == 0;
}

static EVP_MD_CTX *mdctx_get(void)
{
	EVP_MD_CTX *c;

	pthread_once(&sha256_once, sha256_fetch);
	if (!mdctx_key_ok)
		return NULL;
	c = pthread_getspecific(mdctx_key);
	if (c == NULL && (c = EVP_MD_CTX_new()) != NULL && pthread_setspecific(mdctx_key, c) != 0) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	return c;
}

int obj_hash(enum obj_type t, const void *data, size_t len, uint8_t out[SNAP_HASH_LEN])
{
	uint8_t tb = (uint8_t)t;
	EVP_MD_CTX *c = mdctx_get();

	if (c == NULL || sha256_md == NULL ||
	    EVP_DigestInit_ex(c, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(c, &tb, 1) != 1 || EVP_DigestUpdate(c, data, len) != 1 ||
	    EVP_DigestFinal_ex(c, out, NULL) != 1) {
		log_warnx("%s: SHA-256 failed", __func__);
		return -ENOMEM;
	}
	return 0;
}

static void obj_relpath(const uint8_t h[SNAP_HASH_LEN], char out[68])
{
	char hex[SNAP_HEX_LEN + 1];

	snap_hex(h, hex);
	out[0] = hex[0];
	out[1] = hex[1];
	out[2] = '/';
	memcpy(out + 3, hex + 2, SNAP_HEX_LEN - 2 + 1);
}

/* One compression context per thread, reused: a fresh one per object costs
 * more than compressing a small file. Freed when the thread exits. */
static pthread_key_t cctx_key;
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;
static bool cctx_key_ok;

static void cctx_free(void *c)
{
	ZSTD_freeCCtx(c);
}

static void cctx_key_init(void)
{
	cctx_key_ok = pthread_key_create(&cctx_key, cctx_free) == 0;
}

static ZSTD_CCtx *cctx_get(void)
{
	ZSTD_CCtx *c;

	pthread_once(&cctx_once, cctx_key_init);
	if (!cctx_key_ok)
		return NULL;
	c = pthread_getspecific(cctx_key);
	if (c == NULL && (c = ZSTD_createCCtx()) != NULL && pthread_setspecific(cctx_key, c) != 0) {
		ZSTD_freeCCtx(c);
		c = NULL;
	}
	return c;
}

static bool obj_pending(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	return r->pending != NULL && hset_has(r->pending, h);
}

/* A loose object (stores written before packs): 1, 0 or -errno. */
static int loose_exists(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	char rel[68];
	struct stat st;

	obj_relpath(h, rel);
	if (fstatat(r->objfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISREG(st.st_mode) ? 1 : -EBADMSG;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

int obj_exists(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = obj_pending(r, h) ? 1 : pack_lookup(r, h, NULL);
	pthread_mutex_unlock(&r->mu);
	return rc != 0 || !r->has_loose ? rc : loose_exists(r, h);
}

int obj_exists_batch(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = obj_pending(r, h) ? 1 : pack_lookup_batch(r, h);
	pthread_mutex_unlock(&r->mu);
	return rc != 0 || !r->has_loose ? rc : loose_exists(r, h);
}

int obj_put(struct snap_repo *r, enum obj_type t, const void *data, size_t len,
	    const uint8_t h[SNAP_HASH_LEN])
{
	uint8_t hdr[2] = { (uint8_t)t, 0 };
	const void *stored = data;
	size_t slen = len;
	void *cbuf = NULL;
	int rc;

	/* Claim h in pending before compressing, so two threads never both store
	 * it; if the append then fails, the operation fails with it. */
	pthread_mutex_lock(&r->mu);
	rc = obj_pending(r, h) ? 1 : pack_lookup_batch(r, h);
	if (rc == 0 && r->has_loose)
		rc = loose_exists(r, h);
	if (rc == 0 && (r->pending == NULL || hset_add(r->pending, h) < 0))
		rc = -ENOMEM;
	pthread_mutex_unlock(&r->mu);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (len >= 64) {
		size_t bound = ZSTD_compressBound(len);
		ZSTD_CCtx *cc = cctx_get();
		cbuf = malloc(bound);
		if (cbuf == NULL || cc == NULL) {
			free(cbuf);
			return -ENOMEM;
		}
		size_t cl = ZSTD_compressCCtx(cc, cbuf, bound, data, len, OBJ_ZSTD_LEVEL);
		if (!ZSTD_isError(cl) && cl + 16 < len) {
			hdr[1] = 1;
			stored = cbuf;
			slen = cl;
		}
	}
	rc = pack_append(r, h, hdr, stored, slen);
	if (rc == 0) {
		atomic_fetch_add(&r->new_objects, 1);
		atomic_fetch_add(&r->new_bytes, PACK_REC_HDR + slen);
	}
	free(cbuf);
	return rc;
}

static int read_whole(int fd, uint8_t **out, size_t *outlen)
{
	struct stat st;
	uint8_t *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 2 || (uint64_t)st.st_size > OBJ_MAX_PAYLOAD)
		return -EBADMSG;
	buf = malloc((size_t)st.st_size);
	if (buf == NULL)
		return -ENOMEM;
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EBADMSG;
			free(buf);
			return e;
		}
		off += (size_t)n;
	}
	*out = buf;
	*outlen = off;
	return 0;
}

/* The stored form (type, compression, bytes) of h, from a pack or a loose file. */
static int obj_get_raw(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], uint8_t **raw,
		       size_t *rawlen)
{
	struct pack_loc loc;
	char rel[68];
	int fd, rc;

	pthread_mutex_lock(&r->mu);
	rc = pack_lookup(r, h, &loc);
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return pack_read(r, &loc, h, raw, rawlen);
	if (!r->has_loose)
		return -ENOENT;
	obj_relpath(h, rel);
	fd = openat(r->objfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	rc = read_whole(fd, raw, rawlen);
	close(fd);
	return rc;
}

int obj_get(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], enum obj_type want,
	    bool verify, uint8_t **data, size_t *len, enum obj_type *type)
{
	uint8_t *raw = NULL, *payload = NULL;
	size_t rawlen = 0, plen;
	int rc;

	*data = NULL;
	*len = 0;
	if ((rc = obj_get_raw(r, h, &raw, &rawlen)) < 0)
		return rc;
	if ((raw[0] != OBJ_BLOB && raw[0] != OBJ_FILE && raw[0] != OBJ_TREE) ||
	    (want != 0 && raw[0] != (uint8_t)want) || raw[1] > 1) {
		rc = -EBADMSG;
		goto out;
	}
	if (raw[1] == 1) {
		unsigned long long cs = ZSTD_getFrameContentSize(raw + 2, rawlen - 2);
		if (cs == ZSTD_CONTENTSIZE_ERROR || cs == ZSTD_CONTENTSIZE_UNKNOWN ||
		    cs > OBJ_MAX_PAYLOAD) {
			rc = -EBADMSG;
			goto out;
		}
		payload = malloc(cs ? (size_t)cs : 1);
		if (payload == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		plen = ZSTD_decompress(payload, (size_t)cs, raw + 2, rawlen - 2);
		if (ZSTD_isError(plen) || plen != cs) {
			rc = -EBADMSG;
			goto out;
		}
	} else {
		plen = rawlen - 2;
		payload = malloc(plen ? plen : 1);
		if (payload == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(payload, raw + 2, plen);
	}
	if (verify) {
		uint8_t got[SNAP_HASH_LEN];
		if (obj_hash((enum obj_type)raw[0], payload, plen, got) < 0 ||
		    memcmp(got, h, SNAP_HASH_LEN) != 0) {
			rc = -EBADMSG;
			goto out;
		}
	}
	if (type != NULL)
		*type = (enum obj_type)raw[0];
	*data = payload;
	*len = plen;
	payload = NULL;
out:
	free(payload);
	free(raw);
	return rc;
}
