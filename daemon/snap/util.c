/* Small helpers for the snapshot store: hex, error text, a 32-byte hash set. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snap-int.h"

void snap_hex(const uint8_t h[SNAP_HASH_LEN], char out[SNAP_HEX_LEN + 1])
{
	static const char d[] = "0123456789abcdef";

	for (int i = 0; i < SNAP_HASH_LEN; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[SNAP_HEX_LEN] = '\0';
}

static int unhex1(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int snap_unhex(const char *s, uint8_t h[SNAP_HASH_LEN])
{
	if (s == NULL || strlen(s) != SNAP_HEX_LEN)
		return -EINVAL;
	for (int i = 0; i < SNAP_HASH_LEN; i++) {
		int a = unhex1(s[2 * i]), b = unhex1(s[2 * i + 1]);
		if (a < 0 || b < 0)
			return -EINVAL;
		h[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

void snap_set_err(struct snap_result *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (r == NULL || r->err != 0)
		return; /* keep the first error: it is the cause */
	r->err = err;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

void snap_path_print(const char *path, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return;
	for (const unsigned char *p = (const unsigned char *)path; *p && o + 5 < outlen; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = '\0';
}

int64_t snap_ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

int64_t snap_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return snap_ts_ns(&ts);
}

const char *snap_change_kind_name(enum snap_change_kind k)
{
	switch (k) {
	case SNAP_ADDED: return "added";
	case SNAP_REMOVED: return "removed";
	case SNAP_MODIFIED: return "modified";
	case SNAP_TYPE_CHANGED: return "type_changed";
	}
	return "unknown";
}

int snap_changes_add(struct snap_result *res, const char *path, enum snap_change_kind k)
{
	if ((res->nchanges & (res->nchanges - 1)) == 0) {
		size_t cap = res->nchanges ? res->nchanges * 2 : 16;
		struct snap_change *n = realloc(res->changes, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		res->changes = n;
	}
	res->changes[res->nchanges].path = strdup(path);
	if (res->changes[res->nchanges].path == NULL)
		return -ENOMEM;
	res->changes[res->nchanges++].kind = k;
	return 0;
}

void snap_result_free(struct snap_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nsnaps; i++)
		snap_info_clear(&r->snaps[i]);
	free(r->snaps);
	for (size_t i = 0; i < r->nchanges; i++)
		free(r->changes[i].path);
	free(r->changes);
	free(r->read.data);
	memset(r, 0, sizeof(*r));
}

/* ---- hash set ---- */

struct hset {
	uint8_t *keys;  /* cap * 32 */
	uint8_t *used;
	size_t cap, n;
};

struct hset *hset_new(void)
{
	struct hset *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->cap = 1024;
	h->keys = malloc(h->cap * SNAP_HASH_LEN);
	h->used = calloc(h->cap, 1);
	if (h->keys == NULL || h->used == NULL) {
		hset_free(h);
		return NULL;
	}
	return h;
}

void hset_free(struct hset *h)
{
	if (h == NULL)
		return;
	free(h->keys);
	free(h->used);
	free(h);
}

static size_t hset_slot(const struct hset *h, const uint8_t *k)
{
	uint64_t v;

	memcpy(&v, k, sizeof(v)); /* SHA-256 output is uniform */
	return (size_t)(v & (h->cap - 1));
}

static int hset_insert(struct hset *h, const uint8_t *k)
{
	size_t i = hset_slot(h, k);

	while (h->used[i]) {
		if (memcmp(h->keys + i * SNAP_HASH_LEN, k, SNAP_HASH_LEN) == 0)
			return 0;
		i = (i + 1) & (h->cap - 1);
	}
	h->used[i] = 1;
	memcpy(h->keys + i * SNAP_HASH_LEN, k, SNAP_HASH_LEN);
	h->n++;
	return 1;
}

int hset_add(struct hset *h, const uint8_t k[SNAP_HASH_LEN])
{
	if ((h->n + 1) * 2 > h->cap) {
		struct hset g = { .cap = h->cap * 2 };
		g.keys = malloc(g.cap * SNAP_HASH_LEN);
		g.used = calloc(g.cap, 1);
		if (g.keys == NULL || g.used == NULL) {
			free(g.keys);
			free(g.used);
			return -ENOMEM;
		}
		for (size_t i = 0; i < h->cap; i++)
			if (h->used[i])
				hset_insert(&g, h->keys + i * SNAP_HASH_LEN);
		free(h->keys);
		free(h->used);
		*h = g;
	}
	return hset_insert(h, k);
}

bool hset_has(const struct hset *h, const uint8_t k[SNAP_HASH_LEN])
{
	size_t i = hset_slot(h, k);

	while (h->used[i]) {
		if (memcmp(h->keys + i * SNAP_HASH_LEN, k, SNAP_HASH_LEN) == 0)
			return true;
		i = (i + 1) & (h->cap - 1);
	}
	return false;
}

size_t hset_count(const struct hset *h)
{
	return h->n;
}

size_t snap_path_push(char *buf, size_t cap, size_t len, const char *name, size_t nlen)
{
	size_t off = len ? len + 1 : 0;

	if (off + nlen + 1 > cap)
		return 0;
	if (len)
		buf[len] = '/';
	memcpy(buf + off, name, nlen);
	buf[off + nlen] = '\0';
	return off + nlen;
}
