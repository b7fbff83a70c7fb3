/*
 * Tree objects: the canonical binary encoding of one directory.
 *
 * payload = u8 version (1), then per entry, sorted by name bytes
 * (memcmp, a prefix first), names unique:
 *   u16 name length (1..255), name bytes (no '/', no NUL, not "." or "..";
 *   anything else, newlines and invalid UTF-8 included), u8 type
 *   (enum tree_type), u32 st_mode, u64 size (file size, symlink target
 *   length, or rdev for devices), i64 mtime in ns, 32-byte hash (blob or
 *   chunk list for files, blob of the target for symlinks, tree for
 *   directories, zero otherwise). All integers little-endian.
 * Being length-prefixed binary, any name round-trips and equal directories
 * always encode to equal bytes, so equal subtrees have equal hashes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap-int.h"

#define TREE_VERSION 1
#define ENT_FIXED TREE_ENT_FIXED

int tree_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int ent_cmp(const void *x, const void *y)
{
	const struct tree_ent *a = x, *b = y;

	return tree_name_cmp(a->name, a->nlen, b->name, b->nlen);
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool name_ok(const char *name, size_t n)
{
	if (n == 0 || n > 255 || memchr(name, '/', n) != NULL || memchr(name, '\0', n) != NULL)
		return false;
	return !((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'));
}

int tree_encode(struct tree_ent *ents, size_t n, uint8_t **out, size_t *outlen)
{
	size_t len = 1;
	uint8_t *buf, *p;

	qsort(ents, n, sizeof(*ents), ent_cmp);
	for (size_t i = 0; i < n; i++) {
		if (!name_ok(ents[i].name, ents[i].nlen))
			return -EINVAL;
		if (i > 0 && ent_cmp(&ents[i - 1], &ents[i]) == 0)
			return -EINVAL;
		len += ENT_FIXED + ents[i].nlen;
	}
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	p = buf;
	*p++ = TREE_VERSION;
	for (size_t i = 0; i < n; i++) {
		const struct tree_ent *e = &ents[i];
		p = put_le(p, e->nlen, 2);
		memcpy(p, e->name, e->nlen);
		p += e->nlen;
		*p++ = e->type;
		p = put_le(p, e->mode, 4);
		p = put_le(p, e->size, 8);
		p = put_le(p, (uint64_t)e->mtime_ns, 8);
		memcpy(p, e->hash, SNAP_HASH_LEN);
		p += SNAP_HASH_LEN;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int tree_decode(uint8_t *buf, size_t len, struct tree *t)
{
	size_t off = 1, n = 0, cap = 0;
	struct tree_ent *ents = NULL;

	memset(t, 0, sizeof(*t));
	if (len < 1 || buf[0] != TREE_VERSION)
		goto bad;
	while (off < len) {
		struct tree_ent e;
		if (len - off < 2)
			goto bad;
		e.nlen = (uint16_t)get_le(buf + off, 2);
		if (len - off < (size_t)ENT_FIXED + e.nlen)
			goto bad;
		e.name = (const char *)buf + off + 2;
		if (!name_ok(e.name, e.nlen))
			goto bad;
		off += 2 + e.nlen;
		e.type = buf[off++];
		if (e.type < TT_REG || e.type > TT_UNREADABLE)
			goto bad;
		e.mode = (uint32_t)get_le(buf + off, 4);
		e.size = get_le(buf + off + 4, 8);
		e.mtime_ns = (int64_t)get_le(buf + off + 12, 8);
		memcpy(e.hash, buf + off + 20, SNAP_HASH_LEN);
		off += 20 + SNAP_HASH_LEN;
		if (n > 0 && ent_cmp(&ents[n - 1], &e) >= 0)
			goto bad; /* not canonical: unsorted or duplicate */
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct tree_ent *ne = realloc(ents, nc * sizeof(*ne));
			if (ne == NULL) {
				free(ents);
				free(buf);
				return -ENOMEM;
			}
			ents = ne;
			cap = nc;
		}
		ents[n++] = e;
	}
	t->ents = ents;
	t->n = n;
	t->buf = buf;
	return 0;
bad:
	free(ents);
	free(buf);
	return -EBADMSG;
}

void tree_release(struct tree *t)
{
	if (t == NULL)
		return;
	free(t->ents);
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

int tree_load(struct snap_repo *r, const uint8_t h[SNAP_HASH_LEN], struct tree *t)
{
	uint8_t *data;
	size_t len;
	int rc = obj_get(r, h, OBJ_TREE, false, &data, &len, NULL);

	memset(t, 0, sizeof(*t));
	if (rc < 0)
		return rc;
	return tree_decode(data, len, t);
}
