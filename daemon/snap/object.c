/*
 * Objects: files named by the SHA-256 of (type byte || payload) under
 * objects/ab/<62 hex>. On disk: one type byte, one compression byte
 * (0 = stored, 1 = zstd frame), then the payload. Compression keeps the store
 * within reach of restic's size (which uses zstd too); it is skipped when it
 * does not shrink the payload (already-compressed data).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "log.h"
#include "snap-int.h"

#define OBJ_ZSTD_LEVEL 3
#define OBJ_MAX_PAYLOAD (1024u * 1024u * 1024u) /* sanity bound when reading */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int obj_hash(enum obj_type t, const void *data, size_t len, uint8_t out[SNAP_HASH_LEN])
{
	uint8_t tb = (uint8_t)t;
	EVP_MD_CTX *c;
	int rc = 0;

	pthread_once(&sha256_once, sha256_fetch);
	c = EVP_MD_CTX_new();
	if (c == NULL || sha256_md == NULL ||
	    EVP_DigestInit_ex(c, sha256_md, NULL) != 1 ||
	    EVP_DigestUpdate(c, &tb, 1) != 1 || EVP_DigestUpdate(c, data, len) != 1 ||
	    EVP_DigestFinal_ex(c, out, NULL) != 1) {
		log_warnx("%s: SHA-256 failed", __func__);
		rc = -ENOMEM;
	}
	EVP_MD_CTX_free(c);
	return rc;
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

int obj_exists(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	char rel[68];
	struct stat st;

	obj_relpath(h, rel);
	if (fstatat(r->objfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISREG(st.st_mode) ? 1 : -EBADMSG;
	return errno == ENOENT ? 0 : -errno;
}

int64_t obj_disk_size(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	char rel[68];
	struct stat st;

	obj_relpath(h, rel);
	if (fstatat(r->objfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return (int64_t)st.st_blocks * 512;
}

static int write_all(int fd, const struct iovec *iov, int n)
{
	struct iovec v[2];

	memcpy(v, iov, (size_t)n * sizeof(*iov));
	while (n > 0) {
		ssize_t w = writev(fd, v, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= v[0].iov_len) {
			w -= (ssize_t)v[0].iov_len;
			v[0] = v[1];
			n--;
		}
		if (n > 0) {
			v[0].iov_base = (char *)v[0].iov_base + w;
			v[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static bool obj_pending(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN])
{
	bool p;

	pthread_mutex_lock(&r->mu);
	p = r->pending != NULL && hset_has(r->pending, h);
	pthread_mutex_unlock(&r->mu);
	return p;
}

int obj_put(struct snap_repo *r, enum obj_type t, const void *data, size_t len,
	    const uint8_t h[SNAP_HASH_LEN])
{
	char rel[68], tmp[128];
	uint8_t hdr[2] = { (uint8_t)t, 0 };
	void *cbuf = NULL;
	struct iovec iov[2];
	struct stat st;
	int fd, rc;

	if (obj_pending(r, h))
		return 0;
	rc = obj_exists(r, h);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	if (len >= 64) {
		size_t bound = ZSTD_compressBound(len);
		cbuf = malloc(bound);
		if (cbuf == NULL)
			return -ENOMEM;
		size_t cl = ZSTD_compress(cbuf, bound, data, len, OBJ_ZSTD_LEVEL);
		if (!ZSTD_isError(cl) && cl + 16 < len) {
			hdr[1] = 1;
			iov[1].iov_base = cbuf;
			iov[1].iov_len = cl;
		}
	}
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	obj_relpath(h, rel);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld-%llu", rel, (long)getpid(),
		 (unsigned long long)atomic_fetch_add(&r->tmpseq, 1));
	fd = openat(r->objfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0) {
		rc = -errno;
		log_warn("create object %s", tmp);
		free(cbuf);
		return rc;
	}
	rc = write_all(fd, iov, 2);
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	close(fd);
	free(cbuf);
	if (rc < 0) {
		log_warnx("write object %s: %s", tmp, strerror(-rc));
		unlinkat(r->objfd, tmp, 0);
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (r->pending == NULL) {
		rc = -ENOMEM;
	} else if ((rc = hset_add(r->pending, h)) == 1) {
		if (r->npending == r->cappending) {
			size_t cap = r->cappending ? r->cappending * 2 : 256;
			char **n = realloc(r->pending_tmp, cap * sizeof(*n));
			if (n == NULL)
				rc = -ENOMEM;
			else {
				r->pending_tmp = n;
				r->cappending = cap;
			}
		}
		if (rc == 1) {
			r->pending_tmp[r->npending] = strdup(tmp);
			if (r->pending_tmp[r->npending] == NULL)
				rc = -ENOMEM;
			else
				r->npending++;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (rc != 1) {
		/* Raced with an identical object (0) or out of memory (<0). */
		unlinkat(r->objfd, tmp, 0);
		return rc < 0 ? rc : 0;
	}
	atomic_fetch_add(&r->new_objects, 1);
	atomic_fetch_add(&r->new_bytes, (uint64_t)st.st_blocks * 512);
	return 0;
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

int obj_get(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], enum obj_type want,
	    bool verify, uint8_t **data, size_t *len, enum obj_type *type)
{
	char rel[68];
	uint8_t *raw = NULL, *payload = NULL;
	size_t rawlen = 0, plen;
	int fd, rc;

	*data = NULL;
	*len = 0;
	obj_relpath(h, rel);
	fd = openat(r->objfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = read_whole(fd, &raw, &rawlen);
	close(fd);
	if (rc < 0)
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
